"""The single writer: one thread owns the write connection and runs jobs sent to it.

A job is a function of a connection. The writer takes every job waiting in its queue, runs them
in one `BEGIN IMMEDIATE` transaction (each in a savepoint, so a failing job is rolled back alone)
and commits once: group commit. A job's future resolves only after that commit, so an RPC that
waits on it acknowledges durable data.

A long job (an evaluator job: a quarter of a second under load) is submitted `alone`: it runs
in a transaction of its own, so that the short jobs queued beside it (ingest requests, waiting
on their answers) neither wait for it inside its group nor for its commit. The short jobs
waiting when the writer takes its next group all go in it, before or behind a job alone in the
queue; once a job alone is the first of those waiting, it is passed so once at most, then runs.
Short jobs keep their order among themselves, and jobs alone among themselves. (The evaluator
waits for each of its jobs, so one job alone waits at a time.)

The writer counts the groups it commits that may have changed events (`generation`): every
group but those whose jobs all said they change none (`keeps_events`: the evaluator's, which
write what it derives from events, sync's (its queues, acknowledgements, destinations and
connections), tokens', definitions', the audit log's, CORS origins', CSV exports' marks and the
manual clock's). A job that says nothing counts, so a job that forgets costs speed, never
correctness. A reading of events made on a snapshot taken at one generation still holds at a
later job if the generation has not moved (engine/scan_ahead.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import apsw
import structlog

from audiences_server.store.db import DatabaseGone, connect

log = structlog.get_logger(__name__)

T = TypeVar("T")
Job = Callable[[apsw.Connection], Any]
_Item = tuple[Job, "Future[Any]", bool, bool]  # a job, its future, whether it runs alone, keeps events

_STOP = object()


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode (None: no file at the path)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class WriterClosed(RuntimeError):
    """The writer is shut down and takes no more work."""


class Writer:
    """Runs write jobs on one connection in group-committed transactions."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", max_group: int = 256,
                 on_group: Callable[[int, float], None] | None = None) -> None:
        """`on_group` is told, on the writer thread, each committed group's size and seconds (metrics)."""
        self._conn = connect(path, synchronous=synchronous)
        self._path = path
        self._file = _identity(path)
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        # What the writer thread has taken from the queue and not run yet, in the order queued.
        self._pending: list[_Item | object] = []
        # Whether the first job alone in `_pending` has let short jobs queued behind it go first.
        self._yielded = False
        self._max_group = max_group
        self._on_group = on_group
        self._closed = False
        # Groups committed that held a job not `keeps_events` (read and changed on the writer thread only).
        self.generation = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[apsw.Connection], T], *, alone: bool = False, keeps_events: bool = False
               ) -> Future[T]:
        """Queues a job; its future resolves with its result once the transaction commits.
        `alone`: in a transaction of its own, after the short jobs queued with it (see above).
        `keeps_events`: the job changes no event, so it leaves `generation` as it is."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise WriterClosed("the writer is closed")
            self._queue.put((job, future, alone, keeps_events))
        return future

    @property
    def depth(self) -> int:
        """Jobs queued and not yet taken into a group (approximate while the writer runs)."""
        return self._queue.qsize() + len(self._pending)

    def run(self, job: Callable[[apsw.Connection], T], timeout: float | None = None, *, alone: bool = False,
            keeps_events: bool = False) -> T:
        """Runs a job and waits for its committed result."""
        return self.submit(job, alone=alone, keeps_events=keeps_events).result(timeout)

    def close(self) -> None:
        """Finishes every job already queued, then stops the thread and closes the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            self._commit_group(group)

    def _take_group(self) -> list[_Item] | None:
        """The next group to run (None: the writer stops): every short job waiting, in order
        and up to `max_group`, unless the first job alone waiting has already let short jobs
        pass it once; then that job, alone."""
        pending = self._pending
        if not pending:
            pending.append(self._queue.get())
        with contextlib.suppress(queue.Empty):
            while True:
                pending.append(self._queue.get_nowait())
        # Nothing is queued after the stop (`close` refuses more), so jobs before it are all here.
        items: list[_Item] = list(itertools.takewhile(lambda item: item is not _STOP, pending))  # type: ignore[arg-type]
        if not items:
            return None
        first_alone = next((i for i, item in enumerate(items) if item[2]), len(items))
        short = [i for i, item in enumerate(items) if not item[2]][:self._max_group]
        if short and not (self._yielded and first_alone < short[0]):
            if first_alone < short[-1]:
                self._yielded = True  # the first job alone is passed, once
            chosen = set(short)
        else:
            chosen = {first_alone}
            self._yielded = False
        group = [items[i] for i in sorted(chosen)]
        self._pending = [item for i, item in enumerate(items) if i not in chosen] + pending[len(items):]
        return group

    def _commit_group(self, group: list[_Item]) -> None:
        started = time.perf_counter()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        if not all(keeps for *_, keeps in group):
            # Counted before the group runs: a job reading it sees the generation its own writes make.
            self.generation += 1
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for job, future, _, _ in group:
                # A job whose caller cancelled its future before it ran is not run: its outcome
                # has no one to reach (and a cancelled future takes no result).
                if future.set_running_or_notify_cancel():
                    outcomes.append((future, *self._run_job(job)))
            self.check_file()
            self._conn.execute("COMMIT")
        except BaseException as failure:
            # The commit itself failed: nothing of the group is durable, so every job fails.
            self._rollback()
            # The waiting callers first: nothing after this may leave them waiting.
            for _, future, _, _ in group:
                if not future.done():
                    future.set_exception(failure)
            log.exception("write_group_failed", jobs=len(group))
            return
        if self._on_group is not None:
            try:
                self._on_group(len(group), time.perf_counter() - started)
            except Exception:
                # An observer (metrics) failing must not stop the writer: every caller would wait.
                log.exception("write_group_observer_failed", jobs=len(group))
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        log.debug("write_group_committed", jobs=len(group), ms=round((time.perf_counter() - started) * 1000, 2))

    def file_gone(self) -> bool:
        """Whether the database file at the path is no longer the one the writer opened."""
        return _identity(self._path) != self._file

    def check_file(self) -> None:
        """Refuses to go on when the database file at the path is not the one the writer opened
        (removed, or replaced): a commit would go to a file nobody can open again, acknowledged
        and then lost when the server stops.

        Raises:
            DatabaseGone: the file was removed or replaced.
        """
        if self.file_gone():
            raise DatabaseGone(self._path)

    def _run_job(self, job: Job) -> tuple[bool, Any]:
        self._conn.execute("SAVEPOINT job")
        try:
            value = job(self._conn)
        except Exception as failure:
            self._conn.execute("ROLLBACK TO job")
            self._conn.execute("RELEASE job")
            return False, failure
        self._conn.execute("RELEASE job")
        return True, value

    def _rollback(self) -> None:
        with contextlib.suppress(apsw.Error):
            self._conn.execute("ROLLBACK")
