"""Time for the server: the system clock, or a manual one that only tests move."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Milliseconds since the epoch, UTC, from the system clock."""

    manual = False

    def now_ms(self) -> int:
        """The current time."""
        return time.time_ns() // 1_000_000


class ManualClock(Clock):
    """A clock that stands still until it is set; for tests of time windows.

    `save`, if given, is called with each time set, before `set` returns: the engine keeps the
    time in the database with it, so that a restart resumes it.
    """

    manual = True

    def __init__(self, start_ms: int | None = None, save: Callable[[int], None] | None = None) -> None:
        self._now = start_ms if start_ms is not None else super().now_ms()
        self._lock = threading.Lock()
        # Saves happen one at a time, in the order of the sets, without holding readers of the time.
        self._saving = threading.Lock()
        self._save = save

    def now_ms(self) -> int:
        """The time last set."""
        with self._lock:
            return self._now

    def set(self, now_ms: int) -> None:
        """Moves the clock, forwards or backwards, and saves the new time."""
        with self._saving:
            with self._lock:
                self._now = now_ms
            if self._save is not None:
                self._save(now_ms)
