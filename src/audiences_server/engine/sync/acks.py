"""One destination's writes in flight, and their outcomes on their way to the database.

A write's deliveries stay in flight (never handed to the sink again) until their outcome is
committed: delivered ones removed from the queue, failed ones rescheduled with backoff or parked.
A destination keeps at most one job waiting in the writer's queue; when the writer runs it, it
takes every outcome that arrived until then. So outcomes that arrive together share a commit,
one that arrives alone is committed at once, and an outcome waits at most for the commit under
way and its own (the writer's group commit), never for a job of its destination to finish
before its own is submitted. After a crash, only writes in flight (sent, outcome not committed)
are sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import apsw
import structlog

from audiences_server.engine.destinations.base import Done, Outcome
from audiences_server.engine.sync.configs import backoff_ms
from audiences_server.store import sync as store
from audiences_server.store.sync import Delivery, DestinationRow
from audiences_server.store.writer import Writer, WriterClosed

log = structlog.get_logger(__name__)

# Consecutive writes parked at once (a status not worth retrying) after which the destination
# pauses for PAUSE_MS: a receiver refusing everything costs a few attempts per pause.
FAILURES_BEFORE_PAUSE = 3
PAUSE_MS = 1000
# Outcomes whose commit failed before it ran are submitted again after RETRY_MIN_S, doubling up
# to RETRY_MAX_S while the writer keeps failing.
RETRY_MIN_S = 0.1
RETRY_MAX_S = 5.0


@dataclass
class _Write:
    """One write handed to a sink: the deliveries whose outcome is not committed yet, and those
    the sink has not answered (a write holds its slot until they are answered 2xx, or until a
    failure is committed)."""

    remaining: set[int]
    unanswered: set[int]
    untold: set[int] = field(default_factory=set)
    """Deliveries the sink has said nothing of yet (see `Acks.write`)."""
    probe: bool = False
    """Sent while probing (one write at a time after a failure worth retrying)."""


@dataclass
class _Settled:
    """Outcomes of some deliveries of one write, to commit."""

    write: _Write
    done: list[Delivery] = field(default_factory=list)
    failed: list[tuple[Delivery, str, int | None]] = field(default_factory=list)


class Acks:
    """Tracks what is in flight for one destination and commits outcomes as they come."""

    def __init__(self, writer: Writer, on_freed: Callable[[], None]) -> None:
        self._writer = writer
        self._on_freed = on_freed  # told when slots may have come free: a 2xx answer, or a commit
        self._lock = threading.Lock()
        self._flying: set[int] = set()
        self._writes = 0
        self._answered = 0  # writes answered 2xx whose outcome is not committed yet
        self._waiting: list[_Settled] = []
        self._submitted = False  # a job is in the writer's queue and has not taken its outcomes yet
        self._streak = 0
        self._retry_s = 0.0  # the pause before outcomes are submitted again after a failed commit
        self.paused_until = 0
        # After a failure worth retrying, one write at a time until one succeeds: an outage then
        # costs one attempt per backoff, not one per delivery in flight.
        self.probing = False
        # Writes failed worth retrying in a row (those in flight when probing began count as one):
        # the destination's pause after each is the policy's backoff for that many attempts.
        self._retried = 0

    def in_flight(self) -> set[int]:
        """The deliveries handed to the sink whose outcome is not committed yet."""
        with self._lock:
            return set(self._flying)

    def writes_in_flight(self) -> int:
        """Writes handed to the sink and not answered (a failed one: until its outcome is
        committed)."""
        with self._lock:
            return self._writes

    def answered(self) -> int:
        """Writes answered 2xx whose outcome is not committed yet (sent again after a crash)."""
        with self._lock:
            return self._answered

    def write(self, row: DestinationRow, batch: Sequence[Delivery], write: Callable[[Done], None]) -> None:
        """Marks a write in flight and runs it (`write(done)`, the sink's `write_batch`). Should it
        raise (a header value httpx cannot encode, a host the resolver refuses, a bug), the
        deliveries it has not told of fail as worth retrying, with the error as their last
        error: left in flight, they would never be sent again, and the destination's next
        settings would wait for them for ever."""
        state, done = self._start(row, batch)
        try:
            write(done)
        except Exception as failure:
            log.exception("sync_write_failed", destination=row.key)
            with self._lock:
                untold = [d for d in batch if d.delivery_id in state.untold]
            if untold:
                done(untold, Outcome(False, True, f"unexpected error: {type(failure).__name__}: {failure}"
                                     .rstrip(": ")))

    def _start(self, row: DestinationRow, batch: Sequence[Delivery]) -> tuple[_Write, Done]:
        """Marks a write in flight; the sink tells the returned function how it went."""
        ids = {d.delivery_id for d in batch}
        with self._lock:
            write = _Write(ids, set(ids), set(ids), probe=self.probing)
            self._flying |= write.remaining
            self._writes += 1

        def done(deliveries: Sequence[Delivery], outcome: Outcome) -> None:
            with self._lock:
                write.untold.difference_update(d.delivery_id for d in deliveries)
            self._settle(row, write, deliveries, outcome)

        return write, done

    def _settle(self, row: DestinationRow, write: _Write, deliveries: Sequence[Delivery], outcome: Outcome) -> None:
        now = _wall_ms()
        settled = _Settled(write)
        if outcome.ok:
            settled.done = list(deliveries)
        elif not outcome.skipped:
            settled.failed = self._plan(row, deliveries, outcome, now)
        with self._lock:
            # Retried failures pause the destination with their backoff; parked ones only here.
            self._streak = 0 if outcome.ok or outcome.retry else self._streak + (not outcome.skipped)
            self.probing = (self.probing or outcome.retry) and not outcome.ok
            if outcome.ok:
                self._retried = 0
            elif outcome.retry:
                # The pause is the destination's, not the failed deliveries' (each has its own
                # next attempt): one change failing again and again pauses it for the first
                # backoff each time, while a receiver failing every probe pauses it for longer.
                self._retried = self._retried + 1 if write.probe else max(self._retried, 1)
                self.paused_until = max(self.paused_until,
                                        now + backoff_ms(self._retried, row.policy, outcome.retry_after_ms))
            if self._streak >= FAILURES_BEFORE_PAUSE:
                self.paused_until = max(self.paused_until, now + PAUSE_MS)
            if outcome.skipped:
                self._release(write, [d.delivery_id for d in deliveries])
                return
            freed = False
            if outcome.ok and write.unanswered:
                # Answered 2xx: the slot goes to the next write now, while the outcome waits for
                # its commit (the deliveries stay in flight, so none is sent twice meanwhile).
                write.unanswered.difference_update(d.delivery_id for d in deliveries)
                if not write.unanswered:
                    self._writes -= 1
                    self._answered += 1
                    freed = True
            self._waiting.append(settled)
            submit = not self._submitted
            self._submitted = True
        if submit:
            self._submit()  # otherwise the job waiting in the writer's queue will take it
        if freed:
            self._on_freed()

    def _plan(self, row: DestinationRow, deliveries: Sequence[Delivery], outcome: Outcome, now: int
              ) -> list[tuple[Delivery, str, int | None]]:
        """Failed deliveries' next attempt (None: parked).

        Deliveries failed together share it, so they are due together again, and it sets them
        apart from every other delivery in the queue: a batching sink sends them again as the
        same write, its requests keeping their ids (engine.destinations.batching), also after a
        restart."""
        most = int(row.policy["max_attempts"])
        retried = outcome.retry and any(d.attempts + 1 < most for d in deliveries)
        wait = backoff_ms(max((d.attempts for d in deliveries), default=0) + 1, row.policy, outcome.retry_after_ms)
        next_ms = now + wait if retried else None
        planned = []
        for delivery in deliveries:
            attempts = delivery.attempts + 1
            retry = next_ms if attempts < most else None
            log.warning("delivery_failed", destination=row.key, message_id=delivery.message_id, attempt=attempts,
                        error=outcome.error, parked=retry is None)
            planned.append((delivery, outcome.error, retry))
        return planned

    def _submit(self) -> None:
        taken: list[_Settled] = []

        def job(conn: apsw.Connection) -> None:
            with self._lock:
                taken.append(_Settled(_Write(set(), set())))  # marks the job as run, even with nothing to take
                taken.extend(self._waiting)
                self._waiting, self._submitted = [], False
            now = _wall_ms()
            store.delivered(conn, [d for s in taken for d in s.done], now)
            for settled in taken:
                for delivery, error, next_ms in settled.failed:
                    store.failed(conn, delivery, error, now, next_ms)

        try:
            future = self._writer.submit(job, keeps_events=True)
        except WriterClosed:
            return  # shutting down: what was in flight is sent again at start
        future.add_done_callback(lambda f: self._committed(f, taken))

    def _committed(self, future: Future[None], taken: list[_Settled]) -> None:
        """On the writer's thread: frees what was committed (or, if the commit failed, what will
        be sent again)."""
        if future.exception() is not None:
            log.error("delivery_outcomes_not_committed", error=str(future.exception()))
        with self._lock:
            for settled in taken:
                self._release(settled.write, [d.delivery_id for d in settled.done]
                              + [d.delivery_id for d, _, _ in settled.failed])
            # A group that failed before running the job: its outcomes are still waiting, and
            # are submitted again after a pause (a failing database would otherwise be asked
            # again at once, in a loop), longer each time until a commit goes through.
            again = not taken and self._submitted
            if future.exception() is None:
                self._retry_s = 0.0
            elif again:
                self._retry_s = min(RETRY_MAX_S, max(RETRY_MIN_S, self._retry_s * 2))
            delay = self._retry_s
        if again:
            timer = threading.Timer(delay, self._submit)
            timer.daemon = True
            timer.start()
        self._on_freed()

    def _release(self, write: _Write, ids: list[int]) -> None:
        """Under the lock: these deliveries are no longer in flight; the write is settled once
        none of its deliveries is."""
        self._flying.difference_update(ids)
        if write.remaining:
            write.remaining.difference_update(ids)
            if write.remaining:
                return
            if write.unanswered:
                write.unanswered.clear()
                self._writes -= 1  # its slot, held until now by a failure or a skip
            else:
                self._answered -= 1


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
