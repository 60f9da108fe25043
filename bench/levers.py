"""Levers of the evaluator's cost, measured on a real server's database: set-based writes, how
much of a backfill a faster scan could save, and what one tick job costs.

A manual-clock server (bench/evaluator.py's) loads the synthetic shop of bench/data.py
(`--users`, `--events`), the five audiences of bench/evaluator.py and the realistic space's
other definitions (bench/space.py, `--space`) are created and backfilled, and the server stops.
Everything else runs in this process on a copy of its database file, each measurement in a
transaction that is rolled back, so every round sees the same state:

1. `levers.writes.<table>` (values, changes): the evaluator's writes of one computation's
   results for every user, set-based (one `INSERT … SELECT` from a JSON array of the rows, the
   array made in the timing) against apsw `executemany` of the same rows (a row bound per step,
   the tuples made in the timing), alternating. µs per row; a ratio below 1 means the set-based
   write is the cheaper. The evaluator writes change records set-based, values with
   `executemany` (store/evaluation.py); next change times are a row per profile, written once
   per job (`store.DueTimes`).
2. `levers.scan_share.<x>` (shapes a, b, c): an in-process backfill of the shape alone (the
   evaluator's own backfill jobs), and the same chunks' scan query alone, fetched but not
   decoded: the share of the backfill's CPU time its scan SQL takes, the most a faster scan (a
   columnar copy of the events, typed property columns) could take off it. The figure's
   `decoded_share` adds the decoding of the scan's rows (reducers, fields), which would stay in
   Python unless the reducers moved into the other engine too.
3. `levers.job.small` and `levers.job.big`: one evaluator job in process, as the writer runs it
   (taking the touches and due times, collecting the work, evaluating it), after 25 users each
   got a copy of one of their events (whatever its name: what a job under a live stream holds),
   or after 1,000 users each got an `Order Completed` (`tick.k1000.d200`'s job). CPU ms per job,
   with the statements it ran and the definitions it evaluated beside; the same users and events
   for every build, so that two builds compare on one database.

Prints each run and a table, and writes bench/results/levers.json. Benchmarks never assert timings.

    python bench/levers.py                      # 20k users / 200k events, about two minutes
    python bench/levers.py --users 100000 --events 1000000
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import apsw
import orjson
from common import RESULTS, alternate, figure, report
from evaluator import NOW_MS, SHAPES, Server, define_all, load_server
from space import realistic

from audiences_server import logs
from audiences_server.engine.evaluator import Evaluation, Evaluator, TickReport, complete_work
from audiences_server.engine.registry import Compiled, Registry
from audiences_server.store import evaluation as store
from audiences_server.store.db import connect
from audiences_server.store.identity import touch
from audiences_server.store.sql.plans import Plan, _register

T = TypeVar("T")
# The two forms of each write: apsw `executemany`, a row bound per step (the baseline), and one
# `INSERT … SELECT` from a JSON array of the rows.
_SET_BASED = {
    "values": "INSERT INTO computed_values (computation_id, profile_id, value, updated_ms)"
              " SELECT :cid, value ->> 0, value ->> 1, :now FROM json_each(:rows) WHERE true"
              " ON CONFLICT (profile_id, computation_id) DO UPDATE SET value = excluded.value,"
              " updated_ms = excluded.updated_ms",
    "changes": "INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
               " SELECT :space, :cid, value ->> 0, value ->> 1, value ->> 2, value ->> 3, :now"
               " FROM json_each(:rows) ORDER BY key",
}
_PER_ROW = {
    "values": store._STORE_VALUE,  # the server's own statement
    "changes": "INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)",
}


class Rolled:
    """A connection to the copy, each run in a transaction rolled back."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path, synchronous="NORMAL")

    def run(self, work: Callable[[apsw.Connection], T]) -> T:
        self.conn.execute("BEGIN")
        try:
            return work(self.conn)
        finally:
            self.conn.execute("ROLLBACK")


def _computation(conn: apsw.Connection, key: str) -> tuple[int, int]:
    row = conn.execute("SELECT computation_id, space_id FROM computations WHERE key = ?", (key,)).fetchone()
    return int(row[0]), int(row[1])


def write_figures(db: Rolled, repeats: int) -> list[dict[str, Any]]:
    """Writes of shape a's results for every user, row by row and set-based."""
    conn = db.conn
    cid, space = _computation(conn, SHAPES[0].key)
    users = [int(p) for (p,) in conn.execute(
        "SELECT profile_id FROM profiles WHERE collection = 'users' AND merged_into IS NULL ORDER BY profile_id")]
    # New values and change records for every user, so that every row is written.
    values = [(pid, "true" if pid % 3 else "false") for pid in users]
    changes = [store.ChangeRecord(space, cid, pid, "entered", None, "true") for pid in users]
    # Each form's rows are made inside its timing (the tuples, or the JSON array).
    as_json: dict[str, Callable[[], bytes]] = {
        "values": lambda: orjson.dumps(values),
        "changes": lambda: orjson.dumps([(r.profile_id, r.change, r.old, r.new) for r in changes]),
    }
    per_row: dict[str, Callable[[], list[tuple[Any, ...]]]] = {
        "values": lambda: [(cid, pid, value, NOW_MS) for pid, value in values],
        "changes": lambda: [(space, cid, r.profile_id, r.change, r.old, r.new, NOW_MS) for r in changes],
    }

    def timed(write: Callable[[apsw.Connection], Any]) -> float:
        def work(c: apsw.Connection) -> float:
            started = time.process_time()
            write(c)
            return (time.process_time() - started) / len(users) * 1e6
        return db.run(work)

    results = []
    for table in ("values", "changes"):
        base, samples = alternate(
            repeats, lambda _i, t=table: timed(lambda c: c.executemany(_PER_ROW[t], per_row[t]())),
            lambda _i, t=table: timed(lambda c: c.execute(
                _SET_BASED[t], {"cid": cid, "space": space, "now": NOW_MS, "rows": as_json[t]()})),
            f"writes.{table}", "µs/row")
        results.append(figure(f"levers.writes.{table}", f"{table}: one computation's rows for {len(users):,} users,"
                              " set-based (one INSERT … SELECT from a JSON array);"
                              " baseline executemany, a row bound per step", samples, "µs/row", 3, base))
    return results


def _backfill(conn: apsw.Connection, key: str) -> tuple[float, list[list[int]], Compiled]:
    """The CPU seconds of an in-process backfill of one definition alone, with the chunks it took."""
    conn.execute("UPDATE computations SET enabled = (key = ?)", (key,))
    for table in ("computed_values", "due", "member_results", "changes", "touches"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("UPDATE computations SET status = 'BACKFILLING', backfill_cursor = 0, progress_done = 0")
    registry = Registry(store.computations(conn))
    (comp,) = registry.order
    chunks: list[list[int]] = []
    taking = store.profiles_after

    def noted(*args: Any) -> list[int]:
        found = taking(*args)
        chunks.append(found)
        return found

    store.profiles_after = noted
    evaluator = types.SimpleNamespace(_backfill=Evaluator._backfill, _backfill_cap=None, scan_ahead=None,
                                      _scanned_ahead=lambda *_: None)
    started = time.process_time()
    try:
        while True:
            evaluation = Evaluation(conn, registry, NOW_MS)
            chunk = Evaluator._backfill_next(evaluator, conn, registry)  # type: ignore[arg-type]
            if chunk is None:
                break
            Evaluator._backfill_chunk(evaluator, conn, registry, evaluation, chunk)  # type: ignore[arg-type]
            evaluation.flush()  # as the job's end does
    finally:
        store.profiles_after = taking
    return time.process_time() - started, [c for c in chunks if c], comp


def _scan(conn: apsw.Connection, plan: Plan, chunks: list[list[int]], decode: bool) -> float:
    """The CPU seconds of the plan's scan over the chunks, its rows decoded or only fetched."""
    _register(conn)
    assert plan.sql is not None
    started = time.process_time()
    for pids in chunks:
        if decode:
            plan.scan(conn, pids, NOW_MS, None)
        else:
            list(conn.execute(plan.sql, dict(plan.bound(NOW_MS), ids=json.dumps(pids))))
    return time.process_time() - started


def _shares(conn: apsw.Connection, key: str) -> tuple[float, float, float]:
    """A backfill's CPU seconds, and its chunks' scan's: SQL only, then with decoding."""
    total, chunks, comp = _backfill(conn, key)
    assert isinstance(comp.plan, Plan)
    return total, _scan(conn, comp.plan, chunks, decode=False), _scan(conn, comp.plan, chunks, decode=True)


def scan_share_figures(db: Rolled, repeats: int) -> list[dict[str, Any]]:
    """The share of each user shape's backfill that its scan takes."""
    results = []
    for shape in SHAPES[:3]:
        shares: list[float] = []
        decoded: list[float] = []
        totals: list[float] = []
        key = shape.key
        for i in range(repeats):
            total, sql, whole = db.run(functools.partial(_shares, key=key))
            totals.append(total)
            shares.append(sql / total)
            decoded.append(whole / total)
            print(f"  scan_share.{shape.tag} round {i}: backfill {total * 1000:,.0f} ms CPU, scan SQL"
                  f" {shares[-1]:.0%}, with decoding {decoded[-1]:.0%}", flush=True)
        results.append(figure(f"levers.scan_share.{shape.tag}", f"{shape.tag}: {shape.label}: share of an in-process"
                              " backfill's CPU time in its scan SQL (fetched, not decoded)", shares, "share", 3,
                              backfill_cpu_ms=round(statistics.median(totals) * 1000, 1),
                              decoded_share=round(statistics.median(decoded), 3)))
    return results


def _copied_events(conn: apsw.Connection, users: list[int], event: str | None, salt: int) -> list[tuple[int, str]]:
    """A new event for each user at NOW_MS − i s: a copy of one of its events (of `event`, else
    any), picked by `salt`; returns the (profile, event name) touches they make."""
    columns = [str(r[1]) for r in conn.execute("PRAGMA table_info(events)")]
    copied = ", ".join({"seq": "?1", "message_id": "'levers-' || ?1", "ts": "?2"}.get(c, c) for c in columns)
    seq = int(conn.execute("SELECT max(seq) FROM events").fetchone()[0])
    for i, pid in enumerate(users, 1):
        conn.execute(f"INSERT INTO events ({', '.join(columns)}) SELECT {copied} FROM events WHERE profile_id = ?3"
                     " AND (?4 IS NULL OR event = ?4) ORDER BY (seq * ?5) % 1009 LIMIT 1",
                     (seq + i, NOW_MS - i * 1000, pid, event, salt))
    return [(int(p), str(e)) for p, e in conn.execute("SELECT profile_id, event FROM events WHERE seq > ?", (seq,))]


def _job(conn: apsw.Connection, registry: Registry, users: list[int], event: str | None, salt: int
         ) -> tuple[float, int, int]:
    """One job after the users' new events: its CPU ms, statements and definitions evaluated."""
    touch(conn, [(pid, "event", name) for pid, name in _copied_events(conn, users, event, salt)])
    statements = 0

    def counted(*_args: Any) -> bool:
        nonlocal statements
        statements += 1
        return True

    conn.exec_trace = counted
    started = time.process_time()
    evaluation = Evaluation(conn, registry, NOW_MS)
    touches = store.take_touches(conn, 5000, 0)
    due = evaluation.due.take(NOW_MS, 5000)
    evaluation.run(complete_work(conn, registry, evaluation, NOW_MS, touches, due))
    spent = (time.process_time() - started) * 1000
    conn.exec_trace = None
    done = TickReport(NOW_MS)
    done.add(evaluation.report)
    return spent, statements, done.definitions_evaluated


def job_figures(db: Rolled, repeats: int) -> list[dict[str, Any]]:
    """Small and big tick jobs, in process, each round on other users (the same for every build)."""
    conn = db.conn
    registry = Registry(store.computations(conn))  # kept across jobs, as the server keeps it
    ordered = [int(p) for (p,) in conn.execute(
        "SELECT DISTINCT profile_id FROM events WHERE event = 'Order Completed' ORDER BY profile_id")]
    results = []
    for name, count, event, what in (("small", 25, None, "25 users each got a copy of one of their events"),
                                     ("big", 1000, "Order Completed", "1,000 users each got an Order Completed")):
        rng = random.Random(7)
        rounds = repeats * (20 if name == "small" else 2)
        warm = rng.sample(ordered, min(count, len(ordered)))
        db.run(lambda c, p=warm, e=event: _job(c, registry, p, e, 1))  # warms the caches
        samples, statements, definitions = [], [], []
        for _ in range(rounds):
            picked, salt = rng.sample(ordered, min(count, len(ordered))), rng.randrange(1, 1000)
            ms, ran, evaluated = db.run(lambda c, p=picked, e=event, s=salt: _job(c, registry, p, e, s))
            samples.append(ms)
            statements.append(ran)
            definitions.append(evaluated)
        print(f"  job.{name}: {statistics.median(samples):,.1f} ms CPU, {statistics.median(statements):,.0f}"
              f" statements, {statistics.median(definitions):,.0f} definitions a job", flush=True)
        results.append(figure(f"levers.job.{name}", f"one evaluator job in process after {what}: CPU per job",
                              samples, "ms", 2, statements=statistics.median(statements),
                              definitions=statistics.median(definitions)))
    return results


def live_space(server: Server, count: int, timeout: float) -> None:
    """The first `count` definitions of the realistic space (bench/space.py) created beside the
    five and backfilled: the tables the writes go to hold theirs too, as in a real space."""
    started = time.perf_counter()
    for definition in realistic(count):
        server.create(definition)
    while time.perf_counter() - started < timeout:
        server.tick(timeout=timeout)
        if "BACKFILLING" not in server.statuses().values():
            break
    print(f"[{server.name}] {count} more definitions live in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--space", type=int, default=195, help="definitions of bench/space.py created beside the five")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS / "levers.json")
    args = parser.parse_args()
    logs.configure("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = load_server(root, "levers", args.users, args.events, args.seed, senders=4)
        try:
            define_all(server, args.timeout)
            live_space(server, args.space, args.timeout)
        finally:
            server.stop()
        copy = root / "copy.db"
        for suffix in ("", "-wal"):  # the server checkpoints as it stops; a WAL left over is copied too
            if Path(f"{server.db}{suffix}").exists():
                shutil.copy(f"{server.db}{suffix}", f"{copy}{suffix}")
        db = Rolled(copy)
        results = write_figures(db, args.repeats) + scan_share_figures(db, args.repeats) + job_figures(db, args.repeats)
        db.conn.close()
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
