"""The single writer's groups (`store.writer.Writer`) on a real SQLite file: short jobs waiting
together commit in one group, a job submitted `alone` runs in a transaction of its own and lets
the short jobs waiting beside it go first once at most, and every job's writes are durable when
its future resolves.

The writer is held busy by a job that waits on an event, so that what the test queues meanwhile
is all waiting when the writer next takes a group.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.store.db import connect
from audiences_server.store.writer import Job, Writer


class Recorder:
    """A writer whose jobs note what they ran and in which group (by the group's first job)."""

    def __init__(self, path: Path, max_group: int = 256) -> None:
        self.groups: list[int] = []
        self.ran: list[tuple[str, int]] = []  # (job, the group it ran in, counted from 0)
        self.writer = Writer(path, synchronous="NORMAL", max_group=max_group,
                             on_group=lambda size, seconds: self.groups.append(size))
        self.writer.run(lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS t (name TEXT)"))
        self.groups.clear()

    def job(self, name: str, then: Callable[[], None] | None = None) -> Job:
        def run(conn: apsw.Connection) -> str:
            self.ran.append((name, len(self.groups)))
            conn.execute("INSERT INTO t (name) VALUES (?)", (name,))
            if then is not None:
                then()
            return name
        return run

    def hold(self) -> tuple[threading.Event, Future[Any]]:
        """Keeps the writer busy until the event is set; returns it and the holding job's future."""
        release, started = threading.Event(), threading.Event()

        def holding(conn: apsw.Connection) -> None:
            started.set()
            assert release.wait(10)

        future = self.writer.submit(holding)
        assert started.wait(10)
        return release, future

    def order(self) -> list[str]:
        return [name for name, _ in self.ran]

    def together(self) -> list[list[str]]:
        """The jobs of each group that ran one, in order."""
        by_group: dict[int, list[str]] = {}
        for name, group in self.ran:
            by_group.setdefault(group, []).append(name)
        return list(by_group.values())


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    recorder = Recorder(tmp_path / "w.db")
    yield recorder
    recorder.writer.close()


def test_short_jobs_waiting_together_commit_in_one_group(recorder: Recorder) -> None:
    release, held = recorder.hold()
    futures = [recorder.writer.submit(recorder.job(name)) for name in "abc"]
    release.set()
    assert [f.result(10) for f in futures] == ["a", "b", "c"]
    assert recorder.together() == [["a", "b", "c"]]
    held.result(10)


def test_a_job_alone_lets_the_short_jobs_waiting_beside_it_commit_first(recorder: Recorder) -> None:
    release, held = recorder.hold()
    a = recorder.writer.submit(recorder.job("a"))
    long = recorder.writer.submit(recorder.job("long"), alone=True)
    b = recorder.writer.submit(recorder.job("b"))
    release.set()
    for future in (a, long, b):
        future.result(10)
    # The short jobs, the one queued behind it too, commit in one group before it; it runs alone.
    assert recorder.together() == [["a", "b"], ["long"]]
    assert recorder.groups[-2:] == [2, 1]
    held.result(10)


def test_a_job_alone_is_passed_once_at_most(recorder: Recorder) -> None:
    """Short jobs queued while the passing group runs wait for the job alone: a steady stream of
    ingest cannot keep the evaluator from the writer."""
    release, held = recorder.hold()
    later: list[Future[Any]] = []
    long = recorder.writer.submit(recorder.job("long"), alone=True)
    a = recorder.writer.submit(recorder.job("a", then=lambda: later.append(recorder.writer.submit(recorder.job("c")))))
    release.set()
    for future in (long, a):
        future.result(10)
    later[0].result(10)
    assert recorder.order() == ["a", "long", "c"]
    assert recorder.together() == [["a"], ["long"], ["c"]]
    held.result(10)


def test_every_job_alone_lets_the_short_jobs_waiting_beside_it_go_first(recorder: Recorder) -> None:
    """Once a job alone has been passed and has run, the next job alone is passed in turn: the
    short jobs do not go back to waiting behind the evaluator's jobs after the first."""
    for n in (1, 2):
        release, held = recorder.hold()
        futures = [recorder.writer.submit(recorder.job(f"long{n}"), alone=True),
                   recorder.writer.submit(recorder.job(f"s{n}"))]
        release.set()
        for future in futures:
            future.result(10)
        held.result(10)
    assert recorder.order() == ["s1", "long1", "s2", "long2"]


def test_jobs_alone_run_one_per_transaction_in_their_order(recorder: Recorder) -> None:
    release, held = recorder.hold()
    futures = [recorder.writer.submit(recorder.job(name), alone=True) for name in ("x", "y")]
    release.set()
    assert [f.result(10) for f in futures] == ["x", "y"]
    assert recorder.together() == [["x"], ["y"]]
    held.result(10)


def test_a_failing_job_alone_fails_alone(recorder: Recorder) -> None:
    release, held = recorder.hold()

    def failing(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO t (name) VALUES ('undone')")
        raise ValueError("broken")

    bad = recorder.writer.submit(failing, alone=True)
    good = recorder.writer.submit(recorder.job("kept"))
    release.set()
    with pytest.raises(ValueError, match="broken"):
        bad.result(10)
    assert good.result(10) == "kept"
    held.result(10)
    names = recorder.writer.run(lambda conn: [r[0] for r in conn.execute("SELECT name FROM t ORDER BY rowid")])
    assert names == ["kept"]


def test_close_runs_every_job_queued_before_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "w.db")
    release, held = recorder.hold()
    futures = [recorder.writer.submit(recorder.job(name), alone=name == "long") for name in ("a", "long", "b")]
    closing = threading.Thread(target=recorder.writer.close)
    closing.start()
    # The stop is queued behind the three before the writer takes its next group.
    deadline = time.monotonic() + 10
    while recorder.writer.depth < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert recorder.writer.depth == 4
    release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert [f.result(0) for f in futures] == ["a", "long", "b"]
    conn = connect(tmp_path / "w.db")
    assert sorted(r[0] for r in conn.execute("SELECT name FROM t")) == ["a", "b", "long"]
    conn.close()
    held.result(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(1, 4))
def test_groups_against_the_rule(tmp_path_factory: pytest.TempPathFactory, alone: list[bool], max_group: int) -> None:
    """Random queues of short jobs and jobs alone, all waiting at once: every job runs once and
    is durable; short jobs keep their order, and so do jobs alone; a job alone is in a group of
    its own; groups of short jobs hold at most `max_group`; and once a job alone is the first
    of those left, it runs before any short job queued after the first group that passes it."""
    recorder = Recorder(tmp_path_factory.mktemp("w") / "w.db", max_group=max_group)
    try:
        release, held = recorder.hold()
        names = [f"{'L' if is_alone else 's'}{i}" for i, is_alone in enumerate(alone)]
        futures = [recorder.writer.submit(recorder.job(name), alone=is_alone)
                   for name, is_alone in zip(names, alone, strict=True)]
        release.set()
        assert [f.result(10) for f in futures] == names
        held.result(10)
        order = recorder.order()
        assert sorted(order) == sorted(names)
        assert [n for n in order if n[0] == "s"] == [n for n in names if n[0] == "s"]
        assert [n for n in order if n[0] == "L"] == [n for n in names if n[0] == "L"]
        groups = recorder.together()
        for group in groups:
            assert len(group) == 1 or all(n[0] == "s" for n in group)
            assert len(group) <= max_group
        # A job alone waits for one group at most once it is first among the jobs alone left.
        for k, group in enumerate(groups):
            if group[0][0] == "L":
                continue
            waiting_alone = [n for n in names if n[0] == "L" and n not in {x for g in groups[:k + 1] for x in g}]
            if waiting_alone and k + 1 < len(groups):
                passed_before = any(
                    names.index(waiting_alone[0]) < names.index(n) for n in group)
                if passed_before:
                    assert groups[k + 1] == [waiting_alone[0]]
        stored = recorder.writer.run(lambda conn: sorted(r[0] for r in conn.execute("SELECT name FROM t")))
        assert stored == sorted(names)
    finally:
        recorder.writer.close()


def test_a_job_cancelled_before_it_runs_is_skipped_and_the_writer_goes_on(recorder: Recorder) -> None:
    release, held = recorder.hold()
    dropped = recorder.writer.submit(recorder.job("dropped"))
    kept = recorder.writer.submit(recorder.job("kept"))
    assert dropped.cancel()
    release.set()
    assert kept.result(10) == "kept"
    held.result(10)
    assert recorder.writer.submit(recorder.job("after")).result(10) == "after"
    assert recorder.order() == ["kept", "after"]


def test_an_observer_that_fails_does_not_stop_the_writer(tmp_path: Path) -> None:
    failures = []

    def observer(size: int, seconds: float) -> None:
        failures.append(size)
        raise RuntimeError("metrics broke")

    writer = Writer(tmp_path / "w.db", synchronous="NORMAL", on_group=observer)
    try:
        assert writer.submit(lambda conn: conn.execute("SELECT 1").fetchone()[0]).result(10) == 1
        assert writer.submit(lambda conn: conn.execute("SELECT 2").fetchone()[0], alone=True).result(10) == 2
        assert failures == [1, 1]
    finally:
        writer.close()


def test_the_generation_counts_groups_that_may_change_events(tmp_path: Path) -> None:
    """Jobs that keep events leave the generation as it is; a group holding any other job moves
    it once, before its jobs run (a job sees the generation its own group makes)."""
    writer = Writer(tmp_path / "w.db", synchronous="NORMAL")
    try:
        seen = writer.run(lambda conn: writer.generation, keeps_events=True)
        assert writer.run(lambda conn: writer.generation, keeps_events=True, alone=True) == seen
        assert writer.run(lambda conn: writer.generation) == seen + 1
        assert writer.run(lambda conn: writer.generation, keeps_events=True) == seen + 1
        failing = writer.submit(lambda conn: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(10)
        assert writer.run(lambda conn: writer.generation, keeps_events=True) == seen + 2  # counted all the same
    finally:
        writer.close()
