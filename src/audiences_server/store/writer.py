"""The single writer: one thread owns the write connection and runs jobs sent to it.

A job is a function of a connection. The writer takes every job waiting in its queue, runs them
in one `BEGIN IMMEDIATE` transaction (each in a savepoint, so a failing job is rolled back alone)
and commits once: group commit. A job's future resolves only after that commit, so an RPC that
waits on it acknowledges durable data.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import apsw
import structlog

from audiences_server.store.db import connect

log = structlog.get_logger(__name__)

T = TypeVar("T")
Job = Callable[[apsw.Connection], Any]

_STOP = object()


class WriterClosed(RuntimeError):
    """The writer is shut down and takes no more work."""


class Writer:
    """Runs write jobs on one connection in group-committed transactions."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", max_group: int = 256,
                 on_group: Callable[[int, float], None] | None = None) -> None:
        """`on_group` is told, on the writer thread, each committed group's size and seconds (metrics)."""
        self._conn = connect(path, synchronous=synchronous)
        self._queue: queue.SimpleQueue[tuple[Job, Future[Any]] | object] = queue.SimpleQueue()
        self._max_group = max_group
        self._on_group = on_group
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[apsw.Connection], T]) -> Future[T]:
        """Queues a job; its future resolves with its result once the transaction commits."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise WriterClosed("the writer is closed")
            self._queue.put((job, future))
        return future

    @property
    def depth(self) -> int:
        """Jobs queued and not yet taken into a group (approximate while the writer runs)."""
        return self._queue.qsize()

    def run(self, job: Callable[[apsw.Connection], T], timeout: float | None = None) -> T:
        """Runs a job and waits for its committed result."""
        return self.submit(job).result(timeout)

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
        stopping = False
        while not stopping:
            group, stopping = self._take_group()
            if group:
                self._commit_group(group)

    def _take_group(self) -> tuple[list[tuple[Job, Future[Any]]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        group: list[tuple[Job, Future[Any]]] = [first]  # type: ignore[list-item]
        while len(group) < self._max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            group.append(item)  # type: ignore[arg-type]
        return group, False

    def _commit_group(self, group: list[tuple[Job, Future[Any]]]) -> None:
        started = time.perf_counter()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for job, future in group:
                outcomes.append((future, *self._run_job(job)))
            self._conn.execute("COMMIT")
        except BaseException as failure:
            # The commit itself failed: nothing of the group is durable, so every job fails.
            self._rollback()
            # The waiting callers first: nothing after this may leave them waiting.
            for _, future in group:
                if not future.done():
                    future.set_exception(failure)
            log.exception("write_group_failed", jobs=len(group))
            return
        if self._on_group is not None:
            self._on_group(len(group), time.perf_counter() - started)
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        log.debug("write_group_committed", jobs=len(group), ms=round((time.perf_counter() - started) * 1000, 2))

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
