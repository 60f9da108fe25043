"""The lifecycle worker: one background thread carrying out profile deletions and retention
sweeps, a small writer job at a time, and writing down when tokens were last used.

Between two jobs it pauses (`PAUSE_S`), so that ingestion's jobs always come in between; with
nothing to do it waits to be woken (a deletion asked for, a retention set, the manual clock
moved) or for its next look (`WAITING_S` while a deletion waits for its exits to be delivered,
`IDLE_S` otherwise).
"""

from __future__ import annotations

import threading
import time

import structlog

from audiences_server.engine.auth import Auth
from audiences_server.engine.deletion import Deletions
from audiences_server.engine.retention import Retention

log = structlog.get_logger(__name__)

PAUSE_S = 0.02
WAITING_S = 0.25
IDLE_S = 10.0
USAGE_EVERY_S = 60.0


class Lifecycle:
    """Runs deletions and retention in the background."""

    def __init__(self, deletions: Deletions, retention: Retention, auth: Auth) -> None:
        self.deletions = deletions
        self.retention = retention
        self._auth = auth
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._usage_due = time.monotonic() + USAGE_EVERY_S

    def start(self) -> None:
        """Starts the worker thread."""
        self._thread = threading.Thread(target=self._loop, name="lifecycle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the worker after its current job."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def wake(self) -> None:
        """Says work may be waiting."""
        self._wake.set()

    def sweep(self) -> None:
        """Starts a retention sweep now (the clock moved, or a retention changed)."""
        self.retention.request_sweep()
        self.wake()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("lifecycle_failed")
                busy = False
            wait = PAUSE_S if busy else (WAITING_S if self.deletions.pending() else IDLE_S)
            self._wake.wait(wait)
            self._wake.clear()

    def step(self) -> bool:
        """One round: a job of each deletion under way and of the retention sweep; returns
        whether any ran."""
        busy = self.deletions.step()
        busy = self.retention.step() or busy
        if time.monotonic() >= self._usage_due:
            self._usage_due = time.monotonic() + USAGE_EVERY_S
            self._auth.flush_usage()
        return busy
