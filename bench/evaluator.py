"""Evaluator cost through a real server in a child process, against DuckDB as the baseline.

On the synthetic shop of bench/data.py, with a manual clock driven through `SetClock` and
`RunTick`:

1. Backfill (`backfill.a` … `backfill.e`): five definition shapes (count in a window, a filtered
   sum, a funnel with a parent reference, an audience of audiences, an account ANY) on the big
   data set, each timed from its create (or, in later rounds, an edit that restarts its
   backfill) to status LIVE. Each round runs the hand-written DuckDB SQL of the shape first
   (2 threads, typed columns, the median of `--duck-repeats` runs: the baseline; JSON text
   properties as a second figure), then ours: baseline, ours, baseline, ours, …
2. Peak memory (`memory.backfill.peak`): the server process's VmHWM, reset just before the
   backfills (Linux `clear_refs`), read after them.
3. Tick after k touched (`tick.k1000`, `tick.k1000.per_definition`): one new `Order Completed`
   for k = 1,000 distinct existing users of the big data set, then `RunTick` until idle (the
   server's own tick durations, summed); alternating with the baseline, DuckDB's full query of
   the same five definitions over the same JSON text properties.
4. Growth with size (`tick.growth.k100`): the same for k = 100 on a small data set (1k users /
   10k events) and on the big one, alternating; the ratio is big / small.
5. Tick cost by k (`tick.small.k<K>`, `tick.big.k<K>`): the tick after k = 1, 100 and 10,000
   touched users on each data set (k capped at the data set's users), a few runs each.
6. SQLite's floor (`tick.k1000.floor`, `tick.k1000.vs_floor`): in each round of 3, between the
   touch and our tick, the same touched users' set-based tick of the count-in-window shape in SQL
   alone (bench/floor.py), once per definition of the five, rolled back.
7. The realistic space (`backfill.d200`, `tick.k1000.d200`): 195 more definitions
   (bench/space.py) created together on the big server, timed until all are LIVE, then the tick
   after k touched with all 200, against the five-definition tick of step 3; the server's peak
   RSS over both (`memory.d200.peak`, VmHWM reset before them).

The five audiences exist on both servers during the ticks; sizes are compared with DuckDB's as
a check of both. Prints figures as it goes and a table at the end, and writes
bench/results/evaluator.json (see bench/common.py for the figures' fields). Figures move
±10–25% from run to run on a 2-core machine; the ratios, measured in the same run, are what to
compare. Benchmarks never assert timings.

    python bench/evaluator.py --quick            # 5k users / 50k events, under a minute
    python bench/evaluator.py                    # 100k users / 1M events: slow
    python bench/evaluator.py --users 20000 --events 200000 --timeout 300
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import data  # bench/data.py: a script's own folder is on sys.path
import grpc
import space
from audiences.v1 import admin_pb2, admin_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc
from common import RESULTS, alternate, figure, peak_rss_mib, report, reset_peak
from floor import Floor
from google.protobuf import field_mask_pb2, timestamp_pb2
from space import Definition, realistic

from audiences_server.testing import ServerProcess

NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z: the data set ends here, and the manual clock stands here
DAY_MS = data.DAY_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BATCH = 500
COLLECTION = {"users": common_pb2.COLLECTION_USERS, "accounts": common_pb2.COLLECTION_ACCOUNTS}
STATUS = {v: k.removeprefix("COMPUTATION_STATUS_") for k, v in admin_pb2.ComputationStatus.items()}


# ------------------------------------------------------------------ the definitions


@dataclass(frozen=True)
class Shape:
    """One definition shape, as a saved audience and as SQL.

    The SQL selects the members' ids; `{ev}` is the events table, `{rev}` / `{cur}` the
    expressions of the revenue and currency properties, `{now}` and `{d30}` … are bound.
    """

    tag: str
    key: str
    label: str
    collection: str
    definition: str
    sql: str


A_SQL = (
    "SELECT user_id FROM {ev} WHERE event = 'Order Completed' AND ts BETWEEN {now} - {d30} AND {now}"
    " GROUP BY user_id HAVING count(*) >= 3"
)
B_SQL = (
    "SELECT user_id FROM {ev} WHERE event = 'Order Completed' AND ts BETWEEN {now} - {d30} AND {now}"
    " AND {rev} > 100 GROUP BY user_id HAVING sum({rev}) >= 500"
)
SHAPES = (
    Shape("a", "orders_3_in_30d", "count in window", "users",
          "event('Order Completed').within(30 days).count() >= 3", A_SQL),
    Shape("b", "spent_500_in_30d", "sum with property filter", "users",
          "event('Order Completed').where(property('revenue') > 100).within(30 days).sum('revenue') >= 500",
          B_SQL),
    Shape("c", "cart_then_order_7d", "funnel with parent reference", "users",
          "event('Product Added').where(event('Order Completed')"
          ".where(property('currency') = property(parent: 'currency')).within(parent: 1 days).count() >= 1)"
          ".within(7 days).count() >= 1",
          # A cart event of the last 7 days followed, within a day and by now, by an order in its currency.
          "SELECT DISTINCT p.user_id FROM {ev} p WHERE p.event = 'Product Added'"
          " AND p.ts BETWEEN {now} - {d7} AND {now} AND EXISTS (SELECT 1 FROM {ev} c"
          " WHERE c.user_id = p.user_id AND c.event = 'Order Completed' AND c.ts BETWEEN p.ts AND p.ts + {d1}"
          " AND c.ts <= {now} AND {c_cur} = {p_cur})"),
    Shape("d", "loyal_big_spenders", "audience of audiences (a AND b)", "users",
          "trait('orders_3_in_30d') = true AND trait('spent_500_in_30d') = true",
          f"({A_SQL}) INTERSECT ({B_SQL})"),
    Shape("e", "accounts_ordering_30d", "account ANY (order in 30 days)", "accounts",
          "ANY (event('Order Completed').within(30 days).count() >= 1)",
          "SELECT DISTINCT group_id FROM links WHERE user_id IN (SELECT user_id FROM {ev}"
          " WHERE event = 'Order Completed' AND ts BETWEEN {now} - {d30} AND {now})"),
)


# ------------------------------------------------------------------ figures


# ------------------------------------------------------------------ the server


class BackfillTimeout(Exception):
    """A backfill did not go LIVE within the time allowed."""


@dataclass(frozen=True)
class TickSum:
    """The ticks of one `RunTick(until_idle)`: their durations by the server's clock, summed."""

    ms: float
    profiles_evaluated: int
    definitions_evaluated: int
    values_changed: int
    ticks: int
    # The server's CPU time over the call (every thread), steadier than `ms` on a shared machine.
    cpu_ms: float = 0.0


def cpu_ns(pid: int) -> int:
    """A process's CPU time so far, in nanoseconds: the sum of its threads' `schedstat`, and of
    its running child processes' (the scan-ahead process, which scans part of a big tick's
    profiles: a tick's CPU time is both processes')."""
    total = 0
    children: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):  # the process ended
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
            children.update(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total + sum(cpu_ns(child) for child in children)


class Server:
    """A manual-clock server in a child process, with the stubs the benchmark calls."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.process = ServerProcess(root / name / "audiences.db", "--manual-clock", "true", "--synchronous", "NORMAL")
        self.channel = grpc.insecure_channel(self.process.address, options=[("grpc.max_send_message_length", 16 << 20)])
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AudienceAdminServiceStub(self.channel)
        self.write = (("authorization", f"Bearer {self.process.tokens['write']}"),)
        self.meta = (("authorization", f"Bearer {self.process.tokens['admin']}"),)
        self.users = 0
        self.events = 0

    @property
    def db(self) -> Path:
        return self.process.db

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def stop(self) -> None:
        self.channel.close()
        self.process.stop()

    def set_clock(self, ms: int) -> None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromMilliseconds(ms)
        self.admin.SetClock(admin_pb2.SetClockRequest(clock_time=stamp), metadata=self.meta)

    def tick(self, timeout: float | None = None) -> TickSum:
        """Runs ticks until idle; returns what they did together."""
        before = cpu_ns(self.pid)
        reply = self.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=self.meta, timeout=timeout)
        return TickSum(
            ms=sum(t.duration.ToNanoseconds() for t in reply.ticks) / 1e6,
            profiles_evaluated=sum(t.profiles_evaluated for t in reply.ticks),
            definitions_evaluated=max((t.definitions_evaluated for t in reply.ticks), default=0),
            values_changed=sum(t.values_changed for t in reply.ticks), ticks=len(reply.ticks),
            cpu_ms=(cpu_ns(self.pid) - before) / 1e6)

    def send(self, body: bytes) -> None:
        reply = self.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=self.write, timeout=600)
        if reply.rejected_count or reply.duplicate_count:
            bad = [r for r in reply.results if r.status != ingest_pb2.MESSAGE_STATUS_ACCEPTED][:3]
            raise RuntimeError(
                f"{self.name}: {reply.rejected_count} rejected, {reply.duplicate_count} duplicates: {bad}"
            )

    def load(self, calls: Iterable[dict[str, Any]], senders: int, sink: Callable[[dict[str, Any]], None]) -> int:
        """Sends the calls in batches of 500 from several client threads; returns how many."""
        pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4 * senders)
        failures: list[BaseException] = []

        def worker() -> None:
            while (body := pending.get()) is not None:
                if failures:
                    continue
                try:
                    self.send(body)
                except BaseException as failure:  # re-raised in the caller
                    failures.append(failure)

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(senders)]
        for thread in pool:
            thread.start()
        count, batch = 0, []
        for call in calls:
            sink(call)
            batch.append(call)
            if len(batch) == BATCH:
                pending.put(json.dumps({"batch": batch}).encode())
                count, batch = count + len(batch), []
            if failures:
                break
        if batch:
            pending.put(json.dumps({"batch": batch}).encode())
            count += len(batch)
        for _ in pool:
            pending.put(None)
        for thread in pool:
            thread.join()
        if failures:
            raise failures[0]
        return count

    # -- audiences ----------------------------------------------------------------------

    def audience(self, shape: Shape) -> admin_pb2.Audience:
        request = admin_pb2.GetAudienceRequest(collection=COLLECTION[shape.collection], key=shape.key)
        return self.admin.GetAudience(request, metadata=self.meta).audience

    def define(self, shape: Shape, text: str, create: bool) -> admin_pb2.Audience:
        message = admin_pb2.Audience(key=shape.key, collection=COLLECTION[shape.collection], definition=text)
        if create:
            return self.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=message),
                                             metadata=self.meta).audience
        mask = field_mask_pb2.FieldMask(paths=["definition"])
        return self.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=message, update_mask=mask),
                                         metadata=self.meta).audience

    def create(self, definition: Definition) -> None:
        """Creates one audience or computed trait of the realistic space (bench/space.py)."""
        space.create(self.admin, self.meta, definition)

    def statuses(self) -> dict[str, str]:
        """Every audience's and computed trait's status, by key."""
        found: dict[str, str] = {}
        for collection in COLLECTION.values():
            audiences = self.admin.ListAudiences(admin_pb2.ListAudiencesRequest(collection=collection, page_size=1000),
                                                 metadata=self.meta).audiences
            traits = self.admin.ListComputedTraits(
                admin_pb2.ListComputedTraitsRequest(collection=collection, page_size=1000), metadata=self.meta
            ).computed_traits
            found.update((item.key, STATUS[item.status]) for item in [*audiences, *traits])
        return found

    def disable(self, shape: Shape) -> None:
        message = admin_pb2.Audience(key=shape.key, collection=COLLECTION[shape.collection], enabled=False)
        mask = field_mask_pb2.FieldMask(paths=["enabled"])
        self.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=message, update_mask=mask),
                                  metadata=self.meta, timeout=600)

    def backfill(self, shape: Shape, text: str, create: bool, timeout: float) -> tuple[float, admin_pb2.Audience]:
        """Creates or edits the audience, then ticks until it is LIVE; returns the seconds taken.

        Raises:
            BackfillTimeout: not LIVE within `timeout` seconds; the audience is then disabled
                and the server left idle.
        """
        started = time.perf_counter()
        deadline = started + timeout
        defined = self.define(shape, text, create)
        if defined.status != admin_pb2.COMPUTATION_STATUS_BACKFILLING:
            print(f"  warning: {shape.key} is {STATUS[defined.status]} after {'create' if create else 'edit'},"
                  " not BACKFILLING", flush=True)
        while True:
            remaining = deadline - time.perf_counter()
            try:
                if remaining <= 0:
                    raise BackfillTimeout
                self.tick(timeout=remaining)
            except (BackfillTimeout, grpc.RpcError) as stopped:
                if isinstance(stopped, grpc.RpcError) and stopped.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                # The server's tick goes on after the client gives up: switch the audience off
                # (applied between two jobs), then wait for the tick in progress to end.
                self.disable(shape)
                self.tick(timeout=None)
                raise BackfillTimeout from None
            found = self.audience(shape)
            if found.status != admin_pb2.COMPUTATION_STATUS_BACKFILLING:
                return time.perf_counter() - started, found


# ------------------------------------------------------------------ DuckDB


class Baseline:
    """The same events in DuckDB, and the shapes as SQL over them."""

    def __init__(self, root: Path, threads: int) -> None:
        import duckdb

        self.path = root / "events.ndjson"
        self.out = self.path.open("w")
        self.links: list[tuple[str, str]] = []
        self.db = duckdb.connect(str(root / "baseline.duckdb"))
        self.db.execute(f"SET threads = {threads}")
        self.rows = 0

    def sink(self, call: dict[str, Any]) -> None:
        """Keeps what the baseline needs of one generated call."""
        kind = call["type"]
        if kind == "group":
            self.links.append((call["userId"], call["groupId"]))
            return
        if kind not in {"track", "page"}:
            return
        name = call["event"] if kind == "track" else "Page Viewed"
        ts = (datetime.fromisoformat(call["timestamp"]) - EPOCH) // timedelta(milliseconds=1)
        self.out.write(json.dumps({"u": call["userId"], "e": name, "ts": ts, "p": json.dumps(call["properties"])}))
        self.out.write("\n")
        self.rows += 1

    def finish_load(self) -> float:
        """Builds the tables (not timed in the figures); returns the seconds it took."""
        self.out.close()
        started = time.perf_counter()
        self.db.execute(
            "CREATE TABLE events_json AS SELECT u AS user_id, e AS event, ts, p::JSON AS props FROM read_json(?,"
            " format = 'newline_delimited', columns = {u: 'VARCHAR', e: 'VARCHAR', ts: 'BIGINT', p: 'VARCHAR'})",
            [str(self.path)],
        )
        self.db.execute(
            "CREATE TABLE events AS SELECT user_id, event, ts, TRY_CAST(json_extract(props, '$.revenue') AS DOUBLE)"
            " AS revenue, json_extract_string(props, '$.currency') AS currency FROM events_json"
        )
        links = self.path.with_name("links.ndjson")
        links.write_text("".join(json.dumps({"u": u, "g": g}) + "\n" for u, g in self.links))
        self.db.execute(
            "CREATE TABLE links AS SELECT u AS user_id, g AS group_id FROM read_json(?,"
            " format = 'newline_delimited', columns = {u: 'VARCHAR', g: 'VARCHAR'})",
            [str(links)],
        )
        self.db.execute("CHECKPOINT")
        return time.perf_counter() - started

    def sql(self, shape: Shape, typed: bool) -> str:
        if typed:
            names = {"ev": "events", "rev": "revenue", "c_cur": "c.currency", "p_cur": "p.currency"}
        else:
            names = {"ev": "events_json", "rev": "CAST(json_extract(props, '$.revenue') AS DOUBLE)",
                     "c_cur": "json_extract_string(c.props, '$.currency')",
                     "p_cur": "json_extract_string(p.props, '$.currency')"}
        return shape.sql.format(now=NOW_MS, d30=30 * DAY_MS, d7=7 * DAY_MS, d1=DAY_MS, **names)

    def run(self, shape: Shape, typed: bool = True) -> tuple[float, int]:
        """Seconds to compute the members (fetched into Python), and how many there are."""
        text = self.sql(shape, typed)
        started = time.perf_counter()
        members = self.db.execute(text).fetchall()
        return time.perf_counter() - started, len(members)


# ------------------------------------------------------------------ the parts


def load_server(root: Path, name: str, users: int, events: int, seed: int, senders: int,
                sink: Callable[[dict[str, Any]], None] = lambda _: None) -> Server:
    server = Server(root, name)
    server.set_clock(NOW_MS)
    server.users = users
    server.events = events
    started = time.perf_counter()
    count = server.load(data.generate(users, events, NOW_MS, seed), senders, sink)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    drained = server.tick(timeout=3600)
    print(f"[{name}] loaded {count:,} calls ({users:,} users, {events:,} events) in {loaded:.1f} s"
          f" ({count / loaded:,.0f} calls/s incl. generation); a first tick with no definitions drained the"
          f" load's touches in {time.perf_counter() - started:.1f} s ({drained.profiles_evaluated} evaluated)",
          flush=True)
    return server



def define_all(server: Server, timeout: float) -> None:
    """Creates the five audiences on a server and backfills them (timed only for information)."""
    for shape in SHAPES:
        try:
            seconds, found = server.backfill(shape, shape.definition, True, timeout)
        except BackfillTimeout:
            print(f"[{server.name}] {shape.tag}: TIMEOUT after {timeout:g} s, disabled", flush=True)
            continue
        print(f"[{server.name}] {shape.tag} backfilled in {seconds:.2f} s, size {found.size:,}"
              f" ({STATUS[found.status]})", flush=True)


class Toucher:
    """Sends one new `Order Completed` to k distinct existing users of a server."""

    def __init__(self, seed: int, tag: str = "tick") -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.sent = 0

    def touch(self, server: Server, k: int) -> list[str]:
        """Sends the events; returns the users' ids."""
        calls = []
        for index in self.rng.sample(range(server.users), k):
            self.sent += 1
            calls.append({
                "type": "track", "messageId": f"{self.tag}-{server.name}-{self.sent}", "userId": data.user_id(index),
                "event": "Order Completed", "timestamp": data.iso(NOW_MS - self.sent % 3_600_000),
                "properties": {"order_id": f"{self.tag}-{self.sent}", "revenue": round(self.rng.uniform(20, 400), 2),
                               "currency": "USD", "products": [{"product_id": "p00001", "price": 20, "quantity": 1}]},
            })
        for start in range(0, len(calls), BATCH):
            server.send(json.dumps({"batch": calls[start:start + BATCH]}).encode())
        return [call["userId"] for call in calls]


@dataclass
class Backfills:
    """Per shape: our seconds, DuckDB's (typed and JSON, the median of each round), sizes, failures."""

    ours: dict[str, list[float]] = field(default_factory=dict)
    profiles: dict[str, int] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    duck: dict[str, list[float]] = field(default_factory=dict)
    duck_json: dict[str, list[float]] = field(default_factory=dict)
    duck_size: dict[str, int] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


def run_backfills(server: Server, baseline: Baseline, rounds: int, duck_repeats: int, timeout: float) -> Backfills:
    """Alternates DuckDB's query of each shape with our backfill of it, for a few rounds.

    Round 0 creates the audiences; later rounds edit each definition (one more trailing space,
    same meaning), which restarts its backfill from scratch.
    """
    out = Backfills()
    for shape in SHAPES:
        for typed in (True, False):  # warm DuckDB up once per query
            baseline.run(shape, typed)
    for rnd in range(rounds):
        for shape in SHAPES:
            typed_runs, json_runs = [], []
            for _ in range(duck_repeats):
                seconds, out.duck_size[shape.tag] = baseline.run(shape)
                typed_runs.append(seconds)
                json_runs.append(baseline.run(shape, typed=False)[0])
            out.duck.setdefault(shape.tag, []).append(statistics.median(typed_runs))
            out.duck_json.setdefault(shape.tag, []).append(statistics.median(json_runs))
            print(f"  {shape.tag} duckdb round {rnd}: {out.duck[shape.tag][-1] * 1000:8.1f} ms typed,"
                  f" {out.duck_json[shape.tag][-1] * 1000:8.1f} ms JSON  size {out.duck_size[shape.tag]:,}", flush=True)
            if shape.tag == "d" and ("a" in out.broken or "b" in out.broken):
                out.broken.setdefault("d", "skipped: a or b did not go live")
            if shape.tag in out.broken:
                continue
            try:
                seconds, found = server.backfill(shape, shape.definition + " " * rnd, rnd == 0, timeout)
            except BackfillTimeout:
                out.broken[shape.tag] = f"timeout: not LIVE after {timeout:g} s"
                print(f"  {shape.tag} ours: TIMEOUT after {timeout:g} s", flush=True)
                continue
            if found.status != admin_pb2.COMPUTATION_STATUS_LIVE:
                out.broken[shape.tag] = f"{STATUS[found.status]}: {found.failure.message}"
                print(f"  {shape.tag} ours: {out.broken[shape.tag]}", flush=True)
                continue
            out.ours.setdefault(shape.tag, []).append(seconds)
            out.profiles[shape.tag] = found.backfill.profiles_total
            out.size[shape.tag] = found.size
            print(f"  {shape.tag} ours   round {rnd}: {seconds:8.2f} s  {found.backfill.profiles_total:>8,} profiles"
                  f"  {found.backfill.profiles_total / seconds:>10,.0f} profiles/s  size {found.size:,}", flush=True)
    return out


def backfill_figures(backfills: Backfills, scale: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for shape in SHAPES:
        tag = shape.tag
        name, label = f"backfill.{tag}", f"backfill {tag}: {shape.label}, {scale}; baseline DuckDB typed columns"
        json_ms = round(statistics.median(backfills.duck_json[tag]), 4)
        if tag in backfills.ours:
            seconds = backfills.ours[tag]
            fig = figure(name, label, seconds, "s", 3, backfills.duck[tag][:len(seconds)],
                         baseline_json=json_ms, ratio_json=round(statistics.median(seconds) / json_ms, 1),
                         profiles=backfills.profiles[tag],
                         profiles_per_s=round(backfills.profiles[tag] / statistics.median(seconds)),
                         size=backfills.size[tag], baseline_size=backfills.duck_size[tag])
            notes = []
            if backfills.size[tag] != backfills.duck_size[tag]:
                notes.append(f"size {backfills.size[tag]:,} ≠ DuckDB's {backfills.duck_size[tag]:,}")
            if tag in backfills.broken:  # some rounds went live, a later one did not
                notes.append(backfills.broken[tag])
            if notes:
                fig["note"] = "; ".join(notes)
            results.append(fig)
        else:
            results.append({"name": name, "label": label, "value": None, "unit": "s",
                            "baseline": round(statistics.median(backfills.duck[tag]), 4), "ratio": None,
                            "repeats": 0, "spread": 0.0, "baseline_json": json_ms,
                            "note": backfills.broken.get(tag, "not run")})
    return results


def tick_figures(small: Server, big: Server, baseline: Baseline, k: int, growth_k: int, repeats: int,
                 seed: int, not_live: list[str], by_k: Sequence[int] = ()) -> list[dict[str, Any]]:
    """The tick after k touched against DuckDB's full query, growth small → big for growth_k, and
    the tick for each k of `by_k` on both data sets."""
    toucher = Toucher(seed)
    for server in (small, big):  # warm-up: the first tick after the backfills compiles and caches
        toucher.touch(server, 1)
        server.tick(timeout=600)
    for shape in SHAPES:
        baseline.run(shape, typed=False)
    kk = min(k, big.users)
    definitions: list[int] = []
    profiles: list[int] = []

    def duck_all(_: int) -> float:
        return sum(baseline.run(shape, typed=False)[0] for shape in SHAPES) * 1000

    floor = Floor(big.db, SHAPES[0].key, len(SHAPES))
    floors: list[float] = []
    floors_cpu: list[float] = []
    cpu: list[float] = []

    def ours_big(_: int) -> float:
        touched = toucher.touch(big, kk)
        wall, spent = floor.run(touched, NOW_MS)
        floors.append(wall)
        floors_cpu.append(spent)
        tick = big.tick(timeout=3600)
        cpu.append(tick.cpu_ms)
        definitions.append(tick.definitions_evaluated)
        profiles.append(tick.profiles_evaluated)
        return tick.ms

    print(f"tick after {kk:,} touched of {big.users:,} users, against DuckDB's five queries over JSON:", flush=True)
    try:
        duck, ours = alternate(repeats, duck_all, ours_big, f"tick k={kk}", "ms")
    finally:
        floor.close()
    print(f"  floor (the count-in-window shape in SQL alone, x{len(SHAPES)}):"
          f" {', '.join(f'{ms:,.1f}' for ms in floors)} ms; CPU {', '.join(f'{ms:,.1f}' for ms in floors_cpu)} ms",
          flush=True)
    print(f"  ours, the server's CPU per tick: {', '.join(f'{ms:,.1f}' for ms in cpu)} ms", flush=True)
    scale = f"{kk:,} touched of {big.users:,} users / {big.events:,} events"
    note = f"not LIVE on the big server: {', '.join(not_live)}" if not_live else ""
    extra: dict[str, Any] = {"profiles_evaluated": int(statistics.median(profiles)),
                             "definitions_evaluated": int(statistics.median(definitions))}
    if note:
        extra["note"] = note
    results = [figure(f"tick.k{kk}", f"tick after {scale}, all definitions; baseline DuckDB full query of the same"
                      f" {len(SHAPES)} definitions over JSON properties", ours, "ms", 1, duck, **extra)]
    results.append(figure(f"tick.k{kk}.cpu", f"tick after {scale}: the server's CPU time (all threads, and its"
                          " scan-ahead process's)", cpu, "ms", 1))
    results.append(figure(f"tick.k{kk}.floor", f"SQLite's floor for that tick: the count-in-window shape for the"
                          f" {kk:,} touched, evaluated, diffed and written in SQL alone, x{len(SHAPES)} definitions"
                          " (bench/floor.py), measured in the same rounds", floors, "ms", 1, cpu_ms=floors_cpu))
    results.append(figure(f"tick.k{kk}.vs_floor", f"tick after {scale} (value) against SQLite's floor for it"
                          " (baseline), same rounds, CPU time of each (wall times in tick.k1000 and its floor)",
                          cpu, "ms", 1, floors_cpu))
    per_def = [ms / max(n, 1) for ms, n in zip(ours, definitions, strict=True)]
    results.append(figure(f"tick.k{kk}.per_definition", f"tick after {scale}, per definition evaluated; baseline"
                          " DuckDB per definition", per_def, "ms", 2, [ms / len(SHAPES) for ms in duck], **extra))

    gk = min(growth_k, small.users)

    evaluated: dict[str, list[int]] = {small.name: [], big.name: []}

    def tick_on(server: Server) -> Callable[[int], float]:
        def run(_: int) -> float:
            toucher.touch(server, gk)
            tick = server.tick(timeout=3600)
            evaluated[server.name].append(tick.profiles_evaluated)
            return tick.ms
        return run

    print(f"tick after {gk} touched, small then big:", flush=True)
    small_ms, big_ms = alternate(repeats, tick_on(small), tick_on(big), f"tick k={gk} small/big", "ms")
    results.append(figure("tick.growth.k100", f"tick after {gk} touched: {big.users:,} users / {big.events:,}"
                          f" events (value) vs {small.users:,} / {small.events:,} (baseline)", big_ms, "ms", 1,
                          small_ms, profiles_evaluated=int(statistics.median(evaluated[big.name])),
                          baseline_profiles_evaluated=int(statistics.median(evaluated[small.name])),
                          **({"note": note} if note else {})))
    results += by_k_figures(toucher, small, big, by_k, max(3, repeats // 2))
    return results


def by_k_figures(toucher: Toucher, small: Server, big: Server, ks: Sequence[int],
                 repeats: int) -> list[dict[str, Any]]:
    """The tick after k touched users for each k, on both data sets (k capped at the users there)."""
    results = []
    for server in (small, big):
        for k in ks:
            kk = min(k, server.users)
            samples: list[float] = []
            evaluated: list[int] = []
            for _ in range(repeats):
                toucher.touch(server, kk)
                tick = server.tick(timeout=3600)
                samples.append(tick.ms)
                evaluated.append(tick.profiles_evaluated)
            print(f"  tick k={kk:,} on {server.name}: {', '.join(f'{ms:,.1f}' for ms in samples)} ms", flush=True)
            results.append(figure(f"tick.{server.name}.k{kk}", f"tick after {kk:,} touched of {server.users:,} users /"
                                  f" {server.events:,} events, all definitions", samples, "ms", 2,
                                  profiles_evaluated=int(statistics.median(evaluated))))
    return results


def d200_figures(big: Server, toucher: Toucher, extra: int, k: int, repeats: int, timeout: float,
                 five: Sequence[float], five_cpu: Sequence[float]) -> list[dict[str, Any]]:
    """The realistic space on the big server: `extra` definitions of bench/space.py created
    together beside the five (`backfill.d200`: from the first create until every one is LIVE),
    then the tick after k touched with them all live (`tick.k<k>.d<n>`), against the five-definition
    tick's samples of the same run (`five`, and their CPU times `five_cpu`)."""
    space = realistic(extra)
    total = len(space) + len(SHAPES)
    started = time.perf_counter()
    for definition in space:
        big.create(definition)
    created = time.perf_counter() - started
    ticks = 0
    while True:
        big.tick(timeout=max(1.0, timeout - (time.perf_counter() - started)))
        ticks += 1
        statuses = big.statuses()
        waiting = [key for key, status in statuses.items() if status == "BACKFILLING"]
        if not waiting or time.perf_counter() - started > timeout:
            break
    seconds = time.perf_counter() - started
    broken = {key: status for key, status in statuses.items() if status != "LIVE"}
    scale = f"{big.users:,} users / {big.events:,} events"
    print(f"backfill of {len(space)} definitions created together ({total} in all): {seconds:.1f} s"
          f" ({created:.1f} s of creates, then {ticks} ticks), {len(broken)} not LIVE", flush=True)
    results = [{"name": f"backfill.d{total}", "label": f"{len(space)} definitions of a realistic space (bench/space.py)"
                f" created together, until all are LIVE, {scale}", "value": round(seconds, 1), "unit": "s",
                "repeats": 1, "spread": 0.0, "creates_s": round(created, 1),
                **({"note": f"not LIVE: {broken}"[:300]} if broken else {})}]
    toucher.touch(big, 1)
    big.tick(timeout=3600)  # warm-up
    kk = min(k, big.users)
    samples: list[float] = []
    cpu: list[float] = []
    evaluated: list[tuple[int, int, int]] = []
    for _ in range(repeats):
        toucher.touch(big, kk)
        tick = big.tick(timeout=3600)
        samples.append(tick.ms)
        cpu.append(tick.cpu_ms)
        evaluated.append((tick.profiles_evaluated, tick.definitions_evaluated, tick.values_changed))
        print(f"  tick k={kk:,} with {total} definitions: {tick.ms:,.1f} ms, CPU {tick.cpu_ms:,.1f} ms"
              f" ({tick.profiles_evaluated:,} profiles,"
              f" {tick.definitions_evaluated} definitions, {tick.values_changed:,} values changed)", flush=True)
    middle = sorted(evaluated)[len(evaluated) // 2]
    results.append(figure(f"tick.k{kk}.d{total}", f"tick after {kk:,} touched of {scale} with {total} definitions"
                          f" (value) against tick.k{kk} with the five (baseline), same run", samples, "ms", 1,
                          list(five), profiles_evaluated=middle[0], definitions_evaluated=middle[1],
                          values_changed=middle[2]))
    results.append(figure(f"tick.k{kk}.d{total}.cpu", f"the same tick with {total} definitions: the server's CPU"
                          f" time (value) against tick.k{kk}.cpu with the five (baseline)", cpu, "ms", 1,
                          list(five_cpu)))
    return results


@dataclass
class Config:
    """The scale of the evaluator figures."""

    users: int = 100_000
    events: int = 1_000_000
    small_users: int = 1_000
    small_events: int = 10_000
    rounds: int = 3
    duck_repeats: int = 3
    tick_repeats: int = 7
    tick_k: int = 1_000
    growth_k: int = 100
    # The tick after k touched, on both data sets (the small one caps k at its users).
    by_k: tuple[int, ...] = (1, 100, 10_000)
    timeout: float = 600
    # Definitions of the realistic space created beside the five (0: none), and the ticks after
    # they are live.
    d200: int = 195
    d200_repeats: int = 5
    d200_timeout: float = 1800
    senders: int = 4
    seed: int = 1


def collect(config: Config, root: Path | None = None,
            on_big: Callable[[Server], list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Runs every evaluator figure; `on_big` may add figures taken on the big server at the end."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = root or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        small = big = None
        try:
            small = load_server(workdir, "small", config.small_users, config.small_events, config.seed, config.senders)
            define_all(small, config.timeout)
            baseline = Baseline(workdir, threads=2)
            big = load_server(workdir, "big", config.users, config.events, config.seed, config.senders, baseline.sink)
            print(f"[duckdb] {baseline.rows:,} events and {len(baseline.links):,} links loaded in"
                  f" {baseline.finish_load():.1f} s (not timed in the figures)", flush=True)
            scale = f"{config.users:,} users / {config.events:,} events"
            print(f"backfills on {scale}, {config.rounds} round(s):", flush=True)
            loaded_peak = peak_rss_mib(big.pid)
            reset = reset_peak(big.pid)
            backfills = run_backfills(big, baseline, config.rounds, config.duck_repeats, config.timeout)
            peak = peak_rss_mib(big.pid)
            results += backfill_figures(backfills, scale)
            results.append({"name": "memory.backfill.peak", "label": f"server's peak RSS (VmHWM) during the backfills,"
                            f" {scale}", "value": round(peak, 1), "unit": "MiB", "repeats": 1, "spread": 0.0,
                            "peak_since_start": round(max(peak, loaded_peak), 1),
                            **({} if reset else {"note": "VmHWM could not be reset: peak since the server started"})})
            print(f"  peak RSS of the big server during the backfills: {peak:,.0f} MiB"
                  f" (since start: {max(peak, loaded_peak):,.0f} MiB)", flush=True)
            not_live = [s.tag for s in SHAPES if big.audience(s).status != admin_pb2.COMPUTATION_STATUS_LIVE]
            ticks = tick_figures(small, big, baseline, config.tick_k, config.growth_k, config.tick_repeats,
                                 config.seed, not_live, config.by_k)
            results += ticks
            if config.d200:
                kk = min(config.tick_k, big.users)
                five = next(f["samples"] for f in ticks if f["name"] == f"tick.k{kk}")
                five_cpu = next(f["samples"] for f in ticks if f["name"] == f"tick.k{kk}.cpu")
                reset = reset_peak(big.pid)
                results += d200_figures(big, Toucher(config.seed + 1, "d200"), config.d200, config.tick_k,
                                        config.d200_repeats, config.d200_timeout, five, five_cpu)
                peak = peak_rss_mib(big.pid)
                total = config.d200 + len(SHAPES)
                results.append({"name": f"memory.d{total}.peak", "value": round(peak, 1), "unit": "MiB", "repeats": 1,
                                "spread": 0.0, "label": f"server's peak RSS (VmHWM) during the backfill of the"
                                f" {config.d200} more definitions and the ticks with {total} LIVE, {scale}",
                                **({} if reset else {"note": "VmHWM not reset: peak since the server started"})})
                print(f"  peak RSS of the big server with {total} definitions: {peak:,.0f} MiB", flush=True)
            if on_big is not None:
                results += on_big(big)
        finally:
            for server in (small, big):
                if server is not None:
                    server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Config()
    parser.add_argument("--users", type=int, default=defaults.users, help="users of the big data set")
    parser.add_argument("--events", type=int, default=defaults.events, help="events of the big data set")
    parser.add_argument("--small-users", type=int, default=defaults.small_users)
    parser.add_argument("--small-events", type=int, default=defaults.small_events)
    parser.add_argument("--quick", action="store_true", help="5k users / 50k events instead, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="backfills of each shape, alternating with DuckDB's")
    parser.add_argument("--duck-repeats", type=int, default=defaults.duck_repeats, choices=range(1, 100), metavar="N",
                        help="DuckDB runs per shape and round (their median is the round's baseline)")
    parser.add_argument("--tick-repeats", type=int, default=defaults.tick_repeats)
    parser.add_argument("--tick-k", type=int, default=defaults.tick_k, help="profiles touched before a tick")
    parser.add_argument("--timeout", type=float, default=defaults.timeout,
                        help="seconds a backfill may take before it is given up")
    parser.add_argument("--d200", type=int, default=defaults.d200,
                        help="definitions of the realistic space (bench/space.py) added beside the five; 0: none")
    parser.add_argument("--d200-repeats", type=int, default=defaults.d200_repeats)
    parser.add_argument("--senders", type=int, default=defaults.senders, help="client threads loading the data")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workdir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS / "evaluator.json")
    args = parser.parse_args()
    config = Config(users=args.users, events=args.events, small_users=args.small_users,
                    small_events=args.small_events, rounds=args.rounds or defaults.rounds,
                    duck_repeats=args.duck_repeats, tick_repeats=args.tick_repeats, tick_k=args.tick_k,
                    timeout=args.timeout, senders=args.senders, seed=args.seed, d200=args.d200,
                    d200_repeats=args.d200_repeats)
    if args.quick:
        config.users, config.events = 5_000, 50_000
        config.rounds = args.rounds or 2
        config.tick_repeats = min(config.tick_repeats, 5)
    results = collect(config, args.workdir)
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
