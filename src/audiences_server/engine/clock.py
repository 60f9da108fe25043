"""Time for the server: the system clock, or a manual one that only tests move."""

from __future__ import annotations

import threading
import time


class Clock:
    """Milliseconds since the epoch, UTC, from the system clock."""

    manual = False

    def now_ms(self) -> int:
        """The current time."""
        return time.time_ns() // 1_000_000


class ManualClock(Clock):
    """A clock that stands still until it is set; for tests of time windows."""

    manual = True

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else super().now_ms()
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        """The time last set."""
        with self._lock:
            return self._now

    def set(self, now_ms: int) -> None:
        """Moves the clock, forwards or backwards."""
        with self._lock:
            self._now = now_ms
