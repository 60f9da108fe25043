"""Retention: each space's events older than its `event_retention`, and each change feed's
records older than its `retention`, are deleted in the background (docs/operations.md).

A sweep is a series of small writer jobs (`SCAN` arrivals, or `BATCH` feed records, each) run
by the lifecycle worker with a pause between them, so ingestion never waits for more than one.
Since deleted events would change what a definition reading further back computes, a space
cannot keep events for less time than an enabled definition of it reads back: setting such a
retention, or saving such a definition, is refused (`RETENTION_CONFLICT`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import apsw
import structlog

from audiences_server.core import ql
from audiences_server.engine.clock import Clock
from audiences_server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from audiences_server.store import evaluation, spaces
from audiences_server.store import retention as store
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
MIN_EVENT_RETENTION_MS = DAY_MS
MAX_EVENT_RETENTION_MS = 100_000 * DAY_MS
SCAN = 5000  # arrivals looked at (so at most this many events deleted) per job
BATCH = 5000  # feed records removed per job
SWEEP_EVERY_S = 3600.0


def _reads_past(definition: str, kind: str, collection: str, retention_ms: int) -> bool:
    """Whether a definition reads events older than the retention (or at any age)."""
    try:
        summary = ql.parse_and_check(definition, kind=kind, collection=collection).summary  # type: ignore[arg-type]
    except ql.QueryError:
        return False  # refused for its own reasons elsewhere
    return summary.reads_events and (summary.lookback_ms is None or summary.lookback_ms > retention_ms)


def _conflict(message: str, violations: list[FieldViolation]) -> FailedPrecondition:
    return FailedPrecondition(message, reason="RETENTION_CONFLICT", violations=violations)


def refuse_past_retention(conn: apsw.Connection, space_id: int, kind: str, collection: str, definition: str) -> None:
    """Refuses an enabled definition that reads events further back than its space keeps them.

    Raises:
        FailedPrecondition: `RETENTION_CONFLICT`.
    """
    space = spaces.space_by_id(conn, space_id)
    kept = space.event_retention_ms if space else None
    if kept is not None and _reads_past(definition, kind, collection, kept):
        days = kept / DAY_MS
        raise _conflict(
            f"the space keeps events for {days:g} days, and this definition reads events older than that (its"
            " windows are longer, or it has none): give every event() a within() of at most that, or change the"
            " space's event retention", [FieldViolation("definition", f"reads events past {days:g} days")])


def check_event_retention(retention_ms: int | None) -> None:
    """Refuses a retention outside 1 day to 100,000 days."""
    if retention_ms is not None and not MIN_EVENT_RETENTION_MS <= retention_ms <= MAX_EVENT_RETENTION_MS:
        raise InvalidArgument("`event_retention` must be at least 1 day and at most 100,000 days",
                              reason="RETENTION_INVALID",
                              violations=[FieldViolation("space.event_retention", "out of range")])


class Retention:
    """Setting retentions, and the sweeps that apply them."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._sweep: Iterator[None] | None = None
        self._next_sweep = time.monotonic()

    def set_event_retention(self, space_name: str, retention_ms: int | None) -> spaces.Space:
        """Sets how long a space keeps events (None: for ever), refused while an enabled
        definition of the space reads further back."""
        check_event_retention(retention_ms)

        def job(conn: apsw.Connection) -> spaces.Space:
            space = spaces.find_space(conn, space_name)
            if space is None:
                raise NotFound(f"space {space_name!r} not found", reason="SPACE_NOT_FOUND")
            if retention_ms is not None:
                self._refuse_conflicts(conn, space.space_id, retention_ms)
            spaces.set_event_retention(conn, space.space_id, retention_ms)
            return spaces.space_by_id(conn, space.space_id) or space

        return self._writer.run(job)

    @staticmethod
    def _refuse_conflicts(conn: apsw.Connection, space_id: int, retention_ms: int) -> None:
        reading = [c for c in evaluation.computations(conn, space_id)
                   if c.enabled and _reads_past(c.definition, c.kind, c.collection, retention_ms)]
        if reading:
            keys = ", ".join(f"{c.collection}/{c.key}" for c in reading)
            raise _conflict(
                f"these definitions read events older than {retention_ms / DAY_MS:g} days: {keys}; shorten their"
                " windows (within()), disable or delete them first",
                [FieldViolation(f"{c.collection}/{c.key}", "reads events past the retention") for c in reading])

    def request_sweep(self) -> None:
        """Makes the next step start a sweep (after one in progress ends)."""
        self._next_sweep = time.monotonic()

    def step(self) -> bool:
        """Runs one job of the current sweep, starting one when due; False when there was none."""
        if self._sweep is None:
            if time.monotonic() < self._next_sweep:
                return False
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            self._sweep = self._jobs()
        if next(self._sweep, StopIteration) is StopIteration:
            self._sweep = None
            return time.monotonic() >= self._next_sweep  # asked for again meanwhile: the next step starts it
        return True

    def _jobs(self) -> Iterator[None]:
        """The jobs of one sweep: expired events, then each feed's expired records."""
        now = self._clock.now_ms()
        deleted = 0
        after: int | None = 0 if store.any_event_retention(self._readers.get()) else None
        while after is not None:
            after, count = self._writer.run(functools.partial(store.sweep_events, after_seq=after, scan=SCAN,
                                                              now_ms=now))
            deleted += count
            yield
        pruned = 0
        for destination_id, retention_ms in store.feeds(self._readers.get()):
            before = time.time_ns() // 1_000_000 - retention_ms  # feed records are stamped on the wall clock
            count = BATCH
            while count == BATCH:
                count = self._writer.run(functools.partial(store.prune_feed, destination_id=destination_id,
                                                           before_ms=before, limit=BATCH))
                pruned += count
                yield
        if deleted or pruned:
            log.info("retention_swept", events_deleted=deleted, feed_records_pruned=pruned)
