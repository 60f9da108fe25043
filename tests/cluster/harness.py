"""A cluster in this process (identity stage and shards on their own files, over a given log), a
single node beside it, and what both stored, read straight from their files."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import apsw

from audiences_server.cluster.front import Front
from audiences_server.cluster.identity import IdentityStage
from audiences_server.cluster.log import JetStreamLog, Log
from audiences_server.cluster.roles import copy_partition
from audiences_server.cluster.shard import TICK, Shard
from audiences_server.engine.clock import Clock, ManualClock
from audiences_server.engine.computations import Spec
from audiences_server.engine.engine import Engine
from audiences_server.engine.ingest import ACCEPTED, Sender
from audiences_server.settings import Settings
from audiences_server.store import cluster as cluster_store
from tests.cluster.conftest import free_port

T = TypeVar("T")
SPACE = 1  # the space every role's bootstrap makes first


# The evaluator's tick interval of engines on the system clock (`manual=False`).
TICK_INTERVAL_MS = 50


def engine_at(db: Path, start_ms: int, manual: bool = True) -> Engine:
    """An engine on a manual clock (or, not `manual`, on the system clock with a short tick
    interval, its evaluator loop not started), with its bootstrap space."""
    engine = Engine(Settings(db=db, manual_clock=manual, clock_start=start_ms if manual else None,
                             tick_interval_ms=TICK_INTERVAL_MS, credentials_file=str(db.with_suffix(".json"))))
    engine.bootstrap()
    return engine


class LoopThread:
    """An event loop on a thread of its own, for the roles' coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cluster-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Cluster:
    """One identity stage and `shards` partitions, all in this process. With `processes`, the
    partitions are spread over that many shard processes' data directories (partition p in
    `process-<p mod processes>/partition-<p>.db`), as `cluster shard --data-dir` keeps them, and
    can be moved between them (`move`); without it, partition p is on `shard-<p>.db`. Not `manual`,
    the shards' evaluators and the front run on the system clock (the shards tick on their own)."""

    def __init__(self, tmp: Path, connect: Callable[[], Awaitable[Log]], shards: int, start_ms: int,
                 processes: int | None = None, manual: bool = True) -> None:
        self._tmp = tmp
        self._start_ms = start_ms
        self._processes = processes
        self._manual = manual
        self._loop = LoopThread()
        self.log = self._loop.run(_awaited(connect()))
        self.identity_engine = engine_at(tmp / "identity.db", start_ms)
        self.identity = IdentityStage(self.identity_engine.writer, self.log, shards)
        # Where each partition runs: its process's number (or its own, without `processes`).
        self.placement = {p: p % processes if processes else p for p in range(shards)}
        self.shards = [Shard(engine_at(self.path(i), start_ms, manual), self.log, i) for i in range(shards)]
        if not manual:
            for shard in self.shards:
                shard.engine.start()  # the evaluator ticks on the system clock, as `cluster shard` does
        self.front = Front(self.log, ManualClock(start_ms) if manual else Clock())
        self._stop = self._loop.run(_event())
        self._identity_task = self._loop.start(self.identity.run(self._stop))
        self._stops = [self._loop.run(_event()) for _ in self.shards]
        self._shard_tasks = [self._loop.start(shard.run(stop))
                             for shard, stop in zip(self.shards, self._stops, strict=True)]

    @property
    def _tasks(self) -> list[Future[Any]]:
        return [self._identity_task, *self._shard_tasks]

    def path(self, partition: int) -> Path:
        """The partition's file where it runs now."""
        if self._processes is None:
            return self._tmp / f"shard-{partition}.db"
        return self._tmp / f"process-{self.placement[partition]}" / f"partition-{partition}.db"

    def move(self, partition: int, to: int) -> None:
        """Moves a partition to process `to` as `cluster shard` processes do: the partition is stopped
        where it runs (its consumer, then its engine), its file copied into the other process's
        directory with SQLite's backup, the old file removed, and the partition started there, from
        the position its file holds."""
        assert self._processes is not None
        assert self.placement[partition] != to
        source = self.path(partition)
        self._loop.loop.call_soon_threadsafe(self._stops[partition].set)
        self._shard_tasks[partition].result(30)
        stopped = self.shards[partition]
        held = (stopped.position(), stopped.tick)
        stopped.engine.close()
        self.placement[partition] = to
        copy_partition(source, self.path(partition))
        for leftover in source.parent.glob(source.name + "*"):
            leftover.unlink()
        shard = Shard(engine_at(self.path(partition), self._start_ms, self._manual), self.log, partition)
        if not self._manual:
            shard.engine.start()
        # It resumes where it stopped, not from the log's start.
        assert (shard.position(), shard.tick) == held, f"partition {partition} moved from {held}"
        self.shards[partition] = shard
        self._stops[partition] = self._loop.run(_event())
        self._shard_tasks[partition] = self._loop.start(shard.run(self._stops[partition]))

    def loop_run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the roles' loop and returns its result."""
        return self._loop.run(coro)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the roles and the log run on."""
        return self._loop.loop

    def send(self, calls: Sequence[dict[str, Any]]) -> None:
        results = self._loop.run(self.front.submit(SPACE, calls))
        assert all(r.status == ACCEPTED for r in results), results

    def define(self, spec: Spec) -> None:
        self._loop.run(self.front.define(SPACE, spec))

    def tick(self, at: int, timeout_s: float = 60) -> None:
        """Moves the clock; returns once every shard has run this tick at `at` (all before it applied)."""
        number = self._loop.run(self.front.set_clock(at))
        deadline = time.monotonic() + timeout_s
        while any(shard.tick < number for shard in self.shards):
            for task in self._tasks:
                if task.done():
                    task.result()  # a role that failed says why
            assert time.monotonic() < deadline, "the shards did not reach the tick"
            time.sleep(0.01)

    def close(self) -> None:
        for stop in (self._stop, *self._stops):
            self._loop.loop.call_soon_threadsafe(stop.set)
        for task in self._tasks:
            task.result(30)
        self._loop.run(self.log.close())
        self._loop.close()
        for engine in (self.identity_engine, *(shard.engine for shard in self.shards)):
            engine.close()

    def stored(self) -> Stored:
        found = Stored()
        for shard in self.shards:
            found.add(shard.engine.readers.get())
        return found


class SingleNode:
    """The reference: one engine, fed the same calls, definitions and clock moves."""

    def __init__(self, tmp: Path, start_ms: int, source: str = "", manual: bool = True) -> None:
        self.engine = engine_at(tmp / "single.db", start_ms, manual)
        if not manual:
            self.engine.start()
        self.source = source  # the events' source, as a front's write token's label gives it

    def send(self, calls: Sequence[dict[str, Any]]) -> None:
        results = self.engine.ingest.record(Sender(SPACE, self.source), calls)
        assert all(r.status == ACCEPTED for r in results), results

    def define(self, spec: Spec) -> None:
        self.engine.computations.create(SPACE, spec)

    def tick(self, at: int) -> None:
        if at > self.engine.clock.now_ms():
            self.engine.set_clock(at, None)
        self.engine.evaluator.run_tick(until_idle=True)

    def stored(self) -> Stored:
        found = Stored()
        found.add(self.engine.readers.get())
        return found

    def close(self) -> None:
        self.engine.close()


class Stored:
    """What a set of files holds for the profiles they own (references to other shards' profiles aside)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, int], str] = {}
        self.changes: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.traits: dict[tuple[int, str], Any] = {}
        self.events: set[tuple[int | None, str, int]] = set()
        self.profiles: dict[int, str] = {}

    def add(self, conn: apsw.Connection) -> None:
        live = "SELECT profile_id FROM profiles WHERE merged_into IS NULL OR merged_into != profile_id"
        for key, pid, value in conn.execute(
                "SELECT c.key, v.profile_id, v.value FROM computed_values v JOIN computations c USING (computation_id)"
                f" WHERE v.profile_id IN ({live})"):
            _put(self.values, (key, pid), value)
        # Each definition's records of a profile in order, those of a tick's time by definition:
        # the order of two definitions' records within one tick is not a result (a shard records
        # its account audiences in a job of their own, one node with its users' work).
        for pid, *change in conn.execute(
                "SELECT h.profile_id, c.key, h.change, h.old_value, h.new_value, h.at_ms FROM changes h"
                " JOIN computations c USING (computation_id) WHERE h.change IN ('entered', 'exited', 'changed')"
                " ORDER BY h.at_ms, c.key, h.change_id"):
            self.changes[pid].append(tuple(change))
        for pid, key, value in conn.execute(f"SELECT profile_id, key, value FROM traits WHERE profile_id IN ({live})"):
            _put(self.traits, (pid, key), value)
        for row in conn.execute("SELECT profile_id, message_id, seq FROM events"):
            assert row not in self.events, f"stored twice: {row}"
            self.events.add(row)
        for pid, collection in conn.execute("SELECT profile_id, collection FROM profiles WHERE merged_into IS NULL"):
            _put(self.profiles, pid, collection)


def _reader(path: Path) -> apsw.Connection:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    conn.setbusytimeout(5000)
    return conn


def _put(found: dict[Any, Any], key: Any, value: Any) -> None:
    assert key not in found, f"{key} is kept by two shards"
    found[key] = value


async def _awaited(value: Awaitable[T]) -> T:
    return await value


async def _event() -> asyncio.Event:
    return asyncio.Event()


class ProcessCluster:
    """The identity stage and the shards as `audiences-server cluster` processes over a nats-server;
    this process is the front. Roles can be killed (SIGKILL) and started again on their files."""

    def __init__(self, tmp: Path, nats_url: str, shards: int, start_ms: int, reads: bool = False,
                 processes: int | None = None) -> None:
        """`reads`: every partition serves its read endpoint (`--listen`), at `read_addresses`.
        `processes`: the `shards` partitions run in that many `cluster shard --data-dir` processes
        (roles `shards-<k>`, partition p in the k = p mod `processes`), and can be moved (`move`)."""
        self._tmp = tmp
        self.read_addresses = [f"127.0.0.1:{free_port()}" for _ in range(shards)] if reads else []
        self._url = nats_url
        self._start_ms = start_ms
        self._shards = shards
        self._processes = processes
        self.placement = {p: p % processes if processes else p for p in range(shards)}
        self._loop = LoopThread()
        self.log = self._loop.run(JetStreamLog.connect(nats_url))
        self.front = Front(self.log, ManualClock(start_ms))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        runners = [f"shards-{k}" for k in range(processes)] if processes else [f"shard-{p}" for p in range(shards)]
        for role in ["identity", *runners]:
            self.start(role)

    def path(self, partition: int) -> Path:
        """The partition's file where it runs now."""
        if self._processes is None:
            return self._tmp / f"shard-{partition}.db"
        return self._tmp / f"shards-{self.placement[partition]}" / f"partition-{partition}.db"

    def _command(self, role: str) -> list[str]:
        me = [sys.executable, "-m", "audiences_server.cli", "cluster"]
        common = ["--nats", self._url, "--manual-clock", "--clock-start", str(self._start_ms)]
        if role == "identity":
            return [*me, "identity", "--db", str(self._tmp / "identity.db"), *common,
                    "--partitions", str(self._shards)]
        if role.startswith("shards-"):
            k = int(role.removeprefix("shards-"))
            mine = [p for p in range(self._shards) if self.placement[p] == k]
            return [*me, "shard", "--data-dir", str(self._tmp / role), *common,
                    *(f"--partition={p}" for p in mine),
                    *(f"--listen={self.read_addresses[p]}" for p in mine if self.read_addresses)]
        partition = int(role.removeprefix("shard-"))
        listen = ["--listen", self.read_addresses[partition]] if self.read_addresses else []
        return [*me, "shard", "--db", str(self._tmp / f"{role}.db"), *common, "--partition", str(partition),
                *listen]

    def stop(self, role: str) -> None:
        """SIGTERM (a clean stop), and wait for the process to be gone."""
        self.processes[role].terminate()
        assert self.processes[role].wait(30) == 0, (self._tmp / f"{role}.log").read_text()[-3000:]

    def move(self, partition: int, to: int) -> None:
        """The documented procedure (docs/scaling.md, "Moving a partition"): the process running the
        partition stopped and started again without it, the file copied with `cluster
        copy-partition` into the other process's directory (the old one removed), and the other
        process stopped and started again with it."""
        assert self._processes is not None
        assert self.placement[partition] != to
        source, before = self.path(partition), f"shards-{self.placement[partition]}"
        self.stop(before)
        held = self._position(source)
        self.placement[partition] = to
        self.start(before)
        subprocess.run([sys.executable, "-m", "audiences_server.cli", "cluster", "copy-partition",
                        str(source), str(self.path(partition))], check=True)
        assert self._position(self.path(partition)) == held != (0, 0)  # it resumes where it stopped
        for leftover in source.parent.glob(source.name + "*"):
            leftover.unlink()
        self.stop(f"shards-{to}")
        self.start(f"shards-{to}")

    def start(self, role: str) -> None:
        with (self._tmp / f"{role}.log").open("ab") as output:
            self.processes[role] = subprocess.Popen(self._command(role), stdout=output, stderr=output)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the log runs on."""
        return self._loop.loop

    def wait_tick(self, number: int, timeout_s: float = 120) -> None:
        """Returns once every partition has run the tick of that number."""
        deadline = time.monotonic() + timeout_s
        for p in range(self._shards):
            while self._tick(p) < number:
                for role, process in self.processes.items():
                    assert process.poll() is None, f"{role} exited: {(self._tmp / f'{role}.log').read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"shard {p} did not reach tick {number}"
                time.sleep(0.05)

    def kill(self, role: str) -> None:
        """kill -9, and wait for the process to be gone."""
        self.processes[role].send_signal(signal.SIGKILL)
        self.processes[role].wait(10)

    def send(self, calls: Sequence[dict[str, Any]]) -> None:
        results = self._loop.run(self.front.submit(SPACE, calls))
        assert all(r.status == ACCEPTED for r in results), results

    def define(self, spec: Spec) -> None:
        self._loop.run(self.front.define(SPACE, spec))

    def tick(self, at: int, timeout_s: float = 120) -> None:
        self.wait_tick(self._loop.run(self.front.set_clock(at)), timeout_s)

    @staticmethod
    def _position(path: Path) -> tuple[int, int]:
        with contextlib.closing(_reader(path)) as conn:
            return cluster_store.position(conn, f"shard-{path.stem.removeprefix('partition-')}")

    def _tick(self, partition: int) -> int:
        path = self.path(partition)
        if not path.exists():
            return 0
        with contextlib.closing(_reader(path)) as conn:
            try:
                return cluster_store.count(conn, TICK)
            except apsw.Error:
                return 0  # the role is starting: its tables are not made yet, or are being made

    def stored(self) -> Stored:
        found = Stored()
        for p in range(self._shards):
            with contextlib.closing(_reader(self.path(p))) as conn:
                found.add(conn)
        return found

    def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(30)
        self._loop.run(self.log.close())
        self._loop.close()
