"""Evaluator cost through a real server in a child process, against DuckDB as the baseline.

Three parts, on the synthetic shop of bench/data.py:

1. Backfill: five definition shapes (count in a window, a filtered sum, a funnel with a parent
   reference, an audience of audiences, an account ANY) on the big data set; each is timed from
   its create (or, in later rounds, an edit that restarts its backfill) to status LIVE, driving
   `RunTick` by hand on a manual clock.
2. Tick: one new `Order Completed` for k distinct existing users, then one `RunTick`; on a small
   data set and on the big one, so that the cost can be seen to follow k and not the size.
3. Baseline: the same five backfills as hand-written SQL in DuckDB (2 threads) over the same
   events, loaded once (not timed), with typed columns; and with JSON text properties as a
   second figure. The sizes are compared with the server's, as a check of both.

Prints figures as it goes and a table at the end, and writes bench/results/evaluator.json: a
list of {name, value, unit, baseline?, ratio?, repeats, spread}, where `value` is the median
of `repeats` runs and `spread` is (max − min) / median. Figures move ±10–25% from run to run on
a 2-core machine; compare ratios measured in the same run. Benchmarks never assert timings.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import data  # bench/data.py: a script's own folder is on sys.path
import grpc
from audiences.v1 import admin_pb2, admin_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

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


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and relative spread ((max − min) / median)."""
    mid = statistics.median(samples)
    return mid, ((max(samples) - min(samples)) / mid if mid else 0.0)


def figure(name: str, samples: list[float], unit: str, digits: int = 3, **extra: Any) -> dict[str, Any]:
    mid, spread = summary(samples)
    return {"name": name, "value": round(mid, digits), "unit": unit, **extra, "repeats": len(samples),
            "spread": round(spread, 3)}


# ------------------------------------------------------------------ the server


class BackfillTimeout(Exception):
    """A backfill did not go LIVE within the time allowed."""


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

    def stop(self) -> None:
        self.channel.close()
        self.process.stop()

    def set_clock(self, ms: int) -> None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromMilliseconds(ms)
        self.admin.SetClock(admin_pb2.SetClockRequest(clock_time=stamp), metadata=self.meta)

    def tick(self, timeout: float | None = None) -> admin_pb2.Tick:
        reply = self.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=self.meta, timeout=timeout)
        return reply.ticks[-1]

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


@dataclass
class Backfills:
    """Per shape: our seconds, DuckDB's seconds (typed and JSON), sizes, and whether it failed."""

    ours: dict[str, list[float]] = field(default_factory=dict)
    profiles: dict[str, int] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    duck: dict[str, list[float]] = field(default_factory=dict)
    duck_json: dict[str, list[float]] = field(default_factory=dict)
    duck_size: dict[str, int] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


def run_backfills(server: Server, baseline: Baseline, rounds: int, duck_repeats: int, timeout: float) -> Backfills:
    """Alternates our backfill of each shape with DuckDB's query, for a few rounds.

    Round 0 creates the audiences; later rounds edit each definition (one more trailing space,
    same meaning), which restarts its backfill from scratch.
    """
    out = Backfills()
    for shape in SHAPES:
        for typed in (True, False):  # warm DuckDB up once per query
            baseline.run(shape, typed)
    for rnd in range(rounds):
        for shape in SHAPES:
            if shape.tag == "d" and ("a" in out.broken or "b" in out.broken):
                out.broken.setdefault("d", "skipped: a or b did not go live")
            if shape.tag not in out.broken:
                try:
                    seconds, found = server.backfill(shape, shape.definition + " " * rnd, rnd == 0, timeout)
                except BackfillTimeout:
                    out.broken[shape.tag] = f"timeout: not LIVE after {timeout:g} s"
                    print(f"  {shape.tag} ours: TIMEOUT after {timeout:g} s", flush=True)
                else:
                    if found.status != admin_pb2.COMPUTATION_STATUS_LIVE:
                        out.broken[shape.tag] = f"{STATUS[found.status]}: {found.failure.message}"
                        print(f"  {shape.tag} ours: {out.broken[shape.tag]}", flush=True)
                    else:
                        out.ours.setdefault(shape.tag, []).append(seconds)
                        out.profiles[shape.tag] = found.backfill.profiles_total
                        out.size[shape.tag] = found.size
                        print(f"  {shape.tag} ours  round {rnd}: {seconds:8.2f} s  {found.backfill.profiles_total:>8,}"
                              f" profiles  {found.backfill.profiles_total / seconds:>10,.0f} profiles/s"
                              f"  size {found.size:,}", flush=True)
            for _ in range(duck_repeats):
                seconds, size = baseline.run(shape)
                out.duck.setdefault(shape.tag, []).append(seconds)
                out.duck_size[shape.tag] = size
                out.duck_json.setdefault(shape.tag, []).append(baseline.run(shape, typed=False)[0])
            typed_ms = statistics.median(out.duck[shape.tag][-duck_repeats:]) * 1000
            json_ms = statistics.median(out.duck_json[shape.tag][-duck_repeats:]) * 1000
            print(f"  {shape.tag} duckdb round {rnd}: {typed_ms:8.1f} ms typed, {json_ms:8.1f} ms JSON"
                  f"  size {out.duck_size[shape.tag]:,}", flush=True)
    return out


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

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent = 0

    def touch(self, server: Server, k: int) -> None:
        calls = []
        for index in self.rng.sample(range(server.users), k):
            self.sent += 1
            calls.append({
                "type": "track", "messageId": f"tick-{server.name}-{self.sent}", "userId": data.user_id(index),
                "event": "Order Completed", "timestamp": data.iso(NOW_MS - self.sent % 3_600_000),
                "properties": {"order_id": f"tick-{self.sent}", "revenue": round(self.rng.uniform(20, 400), 2),
                               "currency": "USD", "products": [{"product_id": "p00001", "price": 20, "quantity": 1}]},
            })
        for start in range(0, len(calls), BATCH):
            server.send(json.dumps({"batch": calls[start:start + BATCH]}).encode())


@dataclass
class Ticks:
    """Per (server name, k): server-side ms, wall ms, profiles evaluated."""

    server_ms: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    wall_ms: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    profiles: dict[tuple[str, int], list[int]] = field(default_factory=dict)


def run_ticks(servers: list[Server], ks: list[int], repeats: int, seed: int) -> Ticks:
    """Alternates the servers and the k values, `repeats` times."""
    toucher, out = Toucher(seed), Ticks()
    for server in servers:  # warm-up: the first tick after the backfills compiles and caches
        toucher.touch(server, 1)
        server.tick(timeout=600)
    for rep in range(repeats):
        for k in ks:
            for server in servers:
                kk = min(k, server.users)
                if kk > 1000 and rep >= 3:
                    continue  # large touches are slow and steady: three repeats are enough
                toucher.touch(server, kk)
                started = time.perf_counter()
                tick = server.tick(timeout=3600)
                wall = (time.perf_counter() - started) * 1000
                key = (server.name, kk)
                out.server_ms.setdefault(key, []).append(tick.duration.ToNanoseconds() / 1e6)
                out.wall_ms.setdefault(key, []).append(wall)
                out.profiles.setdefault(key, []).append(tick.profiles_evaluated)
                print(f"  tick {server.name:>5} k={kk:>6,}: {out.server_ms[key][-1]:9.1f} ms in the server,"
                      f" {wall:9.1f} ms wall, {tick.profiles_evaluated:,} profiles,"
                      f" {tick.definitions_evaluated} definitions, {tick.values_changed} changes", flush=True)
    return out


# ------------------------------------------------------------------ report


def report(args: argparse.Namespace, backfills: Backfills, ticks: Ticks, small: Server, big: Server,
           ks: list[int]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    scale = f"{args.users:,} users / {args.events:,} events"
    for shape in SHAPES:
        tag = shape.tag
        duck, _ = summary(backfills.duck[tag])
        base = {"name": f"backfill {tag}: {shape.label}, {scale}"}
        if tag in backfills.ours:
            seconds = backfills.ours[tag]
            results.append({**figure(base["name"], seconds, "s", baseline=round(duck, 4),
                                     ratio=round(statistics.median(seconds) / duck, 1)),
                            "profiles": backfills.profiles[tag], "size": backfills.size[tag],
                            "baseline_size": backfills.duck_size[tag]})
            if tag in backfills.broken:  # some rounds went live, a later one did not
                results[-1]["note"] = backfills.broken[tag]
            results.append(figure(f"backfill {tag}: throughput", [backfills.profiles[tag] / s for s in seconds],
                                  "profiles/s", 0))
        else:
            results.append({**base, "value": None, "unit": "s", "baseline": round(duck, 4), "repeats": 0,
                            "spread": 0.0, "note": backfills.broken.get(tag, "not run")})
        results.append(figure(f"baseline {tag}: DuckDB, typed columns, 2 threads", backfills.duck[tag], "s", 4))
        results.append(figure(f"baseline {tag}: DuckDB, json_extract, 2 threads", backfills.duck_json[tag], "s", 4))
    seen = set()
    for k in ks:
        for server in (small, big):
            key = (server.name, min(k, server.users))
            if key not in ticks.server_ms or key in seen:
                continue
            seen.add(key)
            results.append({
                **figure(f"tick: {key[1]:,} touched of {server.users:,} users ({server.name})", ticks.server_ms[key],
                         "ms", 1),
                "wall_ms": round(statistics.median(ticks.wall_ms[key]), 1),
                "profiles_evaluated": int(statistics.median(ticks.profiles[key])),
                "ms_per_profile": round(statistics.median(
                    ms / max(n, 1) for ms, n in zip(ticks.server_ms[key], ticks.profiles[key], strict=True)), 3),
            })
    k = 100
    if (small.name, min(k, small.users)) in ticks.server_ms and (big.name, min(k, big.users)) in ticks.server_ms:
        b = statistics.median(ticks.server_ms[(big.name, min(k, big.users))])
        s = statistics.median(ticks.server_ms[(small.name, min(k, small.users))])
        results.append({"name": f"tick: {k} touched, big/small ({big.users:,} vs {small.users:,} users)",
                        "value": round(b / s, 2), "unit": "x", "baseline": round(s, 1), "ratio": round(b / s, 2),
                        "repeats": len(ticks.server_ms[(big.name, min(k, big.users))]), "spread": 0.0})
        if backfills.broken:
            results[-1]["note"] = "not comparable: some definitions are not live on the big server"
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    width = max(len(r["name"]) for r in results)
    print(f"\n{'figure':<{width}}  {'median':>12} {'unit':<10} {'baseline':>10} {'ours/base':>9} {'n':>3} {'spread':>7}"
          "  notes")
    print("-" * (width + 70))
    for r in results:
        value = "—" if r["value"] is None else f"{r['value']:,.4g}" if r["value"] < 100 else f"{r['value']:,.0f}"
        baseline = f"{r['baseline']:.4g}" if "baseline" in r else ""
        ratio = f"{r['ratio']:.1f}" if "ratio" in r else ""
        notes = []
        if "size" in r:
            same = "=" if r["size"] == r["baseline_size"] else "≠ DuckDB"
            notes.append(f"size {r['size']:,} {same} {r['baseline_size']:,}")
        if "profiles_evaluated" in r:
            notes.append(f"{r['profiles_evaluated']:,} profiles evaluated ({r['ms_per_profile']:.2f} ms each),"
                         f" wall {r['wall_ms']:,.1f} ms")
        if "note" in r:
            notes.append(r["note"])
        print(f"{r['name']:<{width}}  {value:>12} {r['unit']:<10} {baseline:>10} {ratio:>9} {r['repeats']:>3}"
              f" {r['spread'] * 100:>6.0f}%  {'; '.join(notes)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000, help="users of the big data set")
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the big data set")
    parser.add_argument("--small-users", type=int, default=1_000)
    parser.add_argument("--small-events", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="5k users / 50k events instead")
    parser.add_argument("--rounds", type=int, default=3, help="backfills of each shape, alternating with DuckDB's")
    parser.add_argument("--duck-repeats", type=int, default=5, choices=range(1, 100), metavar="N",
                        help="DuckDB runs per shape and round")
    parser.add_argument("--tick-repeats", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a backfill may take before it is given up")
    parser.add_argument("--senders", type=int, default=4, help="client threads loading the data")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "evaluator.json")
    args = parser.parse_args()
    if args.quick:
        args.users, args.events = 5_000, 50_000
    rounds = args.rounds
    full_scale = args.users >= 100_000
    ks = [1, 100, 10_000] if full_scale else [1, 100]
    ks = sorted({min(k, args.users) for k in ks})

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        small = big = None
        try:
            small = load_server(root, "small", args.small_users, args.small_events, args.seed, args.senders)
            define_all(small, args.timeout)
            baseline = Baseline(root, threads=2)
            big = load_server(root, "big", args.users, args.events, args.seed, args.senders, baseline.sink)
            print(f"[duckdb] {baseline.rows:,} events and {len(baseline.links):,} links loaded in"
                  f" {baseline.finish_load():.1f} s (not timed in the figures)", flush=True)
            print(f"backfills on {args.users:,} users / {args.events:,} events, {rounds} round(s):", flush=True)
            backfills = run_backfills(big, baseline, rounds, args.duck_repeats, args.timeout)
            print("ticks:", flush=True)
            ticks = run_ticks([small, big], ks, args.tick_repeats, args.seed)
        finally:
            for server in (small, big):
                if server is not None:
                    server.stop()
        results = report(args, backfills, ticks, small, big, ks)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
