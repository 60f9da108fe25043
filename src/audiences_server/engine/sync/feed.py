"""The change feed of feed destinations (`grpc_feed`): pages after a cursor, and a live watch.

A cursor is the id of a feed record: records are only ever appended, and an id is never issued
again once its record is removed (AUTOINCREMENT, migration 0021), so "after the cursor" never
misses or repeats one. Reading after a cursor acknowledges every record up to it, which
is how a feed connection counts what was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import apsw

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Queue, invalid
from audiences_server.engine.sync.payloads import select_ids
from audiences_server.engine.sync.service import Sync
from audiences_server.errors import FailedPrecondition, InvalidArgument, NotFound, OutOfRange
from audiences_server.store import evaluation
from audiences_server.store import retention as retention_store
from audiences_server.store import sync as store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.writer import Writer

# Runs a blocking function away from the event loop: `await blocking(fn, *args)`.
Blocking = Callable[..., Awaitable[Any]]
# The largest record id SQLite can hold: a cursor past it was never issued.
MAX_RECORD_ID = 2**63 - 1


@dataclass(frozen=True)
class FeedRecord:
    """One record as consumers see it."""

    cursor: str
    computation: ComputationRow
    profile_public_id: str
    external_ids: list[tuple[str, str]]
    change: str
    old: Any
    new: Any
    at_ms: int
    message_id: str


@dataclass(frozen=True)
class Heartbeat:
    """Said on a quiet stream."""

    at_ms: int
    latest_cursor: str


def parse_cursor(text: str, field: str = "start_cursor") -> int:
    """A cursor as a record id; empty means before the first record. Record ids are SQLite
    integers, so one past 2^63 - 1 was never issued (and SQLite could not compare it)."""
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_RECORD_ID:
        raise _not_issued(field)
    return int(text)


def _not_issued(field: str) -> InvalidArgument:
    return invalid(field, f"`{field}` is not a cursor this feed issued", "CURSOR_INVALID")


class Feed:
    """Reading `grpc_feed` destinations."""

    def __init__(self, writer: Writer, readers: Readers, sync: Sync) -> None:
        self._writer = writer
        self._readers = readers
        self._sync = sync
        self._signals: dict[asyncio.AbstractEventLoop, _FeedSignal] = {}

    def destination_id(self, space_id: int, key: str) -> int:
        """The feed destination's row id.

        Raises:
            NotFound: no such destination. FailedPrecondition: NOT_A_FEED, it is another kind.
        """
        destination = self._sync.destination(space_id, key)
        if registry.get(destination.kind).queue is not Queue.FEED:
            raise FailedPrecondition(f"destination {key!r} is a {destination.kind} destination, not a change feed",
                                     reason="NOT_A_FEED")
        return destination.destination_id

    def page(self, space_id: int, key: str, after: int, limit: int) -> tuple[list[FeedRecord], bool]:
        """Records after a cursor; and whether more are waiting."""
        destination_id = self.destination_id(space_id, key)
        self.check_issued(destination_id, after)  # before acknowledging anything up to it
        if after:  # stored before the page is answered, so that a status read after it shows it
            self._writer.submit(_ack(destination_id, after), keeps_events=True).result()
        records = self._records(destination_id, space_id, after, limit + 1)
        return records[:limit], len(records) > limit

    def ack(self, space_id: int, key: str, cursor: int) -> None:
        """Acknowledges the records up to a cursor (AckChanges), returning once that is stored.

        Raises:
            NotFound, FailedPrecondition: as `destination_id`. InvalidArgument: CURSOR_INVALID.
        """
        destination_id = self.destination_id(space_id, key)
        self.check_issued(destination_id, cursor, "cursor")
        self._writer.submit(_ack(destination_id, cursor), keeps_events=True).result()

    def _records(self, destination_id: int, space_id: int, after: int, limit: int) -> list[FeedRecord]:
        conn = self._readers.get()
        _check_kept(conn, destination_id, after)
        rows = store.feed_after(conn, destination_id, after, limit)
        if not rows:
            return []
        comps = {c.computation_id: c for c in evaluation.computations(conn, space_id)}
        connections = {c.connection_id: c for c in store.connections_of(conn, destination_id)}
        out = []
        for record_id, computation_id, _pid, message_id, text in rows:
            record = json.loads(text)
            options = next((c.options for c in connections.values() if c.computation_id == computation_id), {})
            ids = select_ids(record["ids"], options.get("identifier_selection", "all"),
                             options.get("external_id_types", []), record["change"] == "exited")
            if computation_id in comps:
                out.append(FeedRecord(str(record_id), comps[computation_id], record["profile"], ids,
                                      record["change"], record["old"], record["new"], record["at_ms"], message_id))
        return out

    async def watch(self, space_id: int, key: str, after: int, heartbeat_s: float,
                    blocking: Blocking) -> AsyncIterator[FeedRecord | Heartbeat]:
        """The records after a cursor, then each new one, with heartbeats on a quiet stream.

        It waits on the event loop: an idle watcher holds no thread, and wakes only when a
        record is queued for any feed (or its heartbeat is due). Reads run through `blocking`.
        A heartbeat due on a destination deleted meanwhile ends the stream with NOT_FOUND.

        The start cursor is acknowledged, as a page's is; the records streamed are not: having
        sent one says nothing of whether the consumer processed it (it may stop before it
        does), so a consumer acknowledges them with `ack`, or by resuming after them. Were they
        acknowledged as sent, a profile's deletion could remove an exit its consumer never saw.
        """
        destination_id = await blocking(self.destination_id, space_id, key)
        await blocking(self.check_issued, destination_id, after)
        if after:
            await asyncio.wrap_future(self._writer.submit(_ack(destination_id, after), keeps_events=True))
        signal = self._signal()
        quiet_since = time.monotonic()
        while not self._sync.stopping:
            woken = signal.armed()  # armed before reading, so a record queued meanwhile is not missed
            records = await blocking(self._records, destination_id, space_id, after, 500)
            for record in records:
                yield record
                after = int(record.cursor)
            if records:
                quiet_since = time.monotonic()
                continue
            due = heartbeat_s - (time.monotonic() - quiet_since)
            if due <= 0:
                latest = await blocking(self._latest, destination_id, key)
                yield Heartbeat(int(time.time() * 1000), str(latest) if latest else "")
                quiet_since = time.monotonic()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), due)

    def check_issued(self, destination_id: int, after: int, field: str = "start_cursor") -> None:
        """Refuses a cursor past every record the feed has issued (`CURSOR_INVALID`): reading
        after it would acknowledge records nobody read, and wait for ids far ahead. Issued is up
        to the newest record kept, removed (by retention, a profile's deletion or a
        disconnection), or read. A cursor naming a kept record of another feed is refused too
        (`CURSOR_OTHER_FEED`)."""
        if not after:
            return
        conn = self._readers.get()
        destination = store.destination_by_id(conn, destination_id)
        issued = max(store.feed_latest(conn, destination_id), retention_store.pruned_through(conn, destination_id),
                     *((destination.feed_acked, destination.feed_removed_through) if destination is not None else ()))
        if after > issued:
            raise _not_issued(field)
        other = store.feed_record_destination(conn, after)
        if other is not None and other != destination_id:
            # Another feed's record, still kept (one read or removed since cannot be told apart).
            raise invalid(field, f"`{field}` was issued for another feed, not this destination", "CURSOR_OTHER_FEED")

    def _latest(self, destination_id: int, key: str) -> int:
        """The feed's newest record id, for a heartbeat; NotFound once the destination was
        deleted, which ends the stream (it would otherwise beat for ever over a feed that is gone)."""
        conn = self._readers.get()
        if store.destination_by_id(conn, destination_id) is None:
            raise NotFound(f"destination {key!r} was deleted", reason="DESTINATION_NOT_FOUND")
        return store.feed_latest(conn, destination_id)

    def _signal(self) -> _FeedSignal:
        loop = asyncio.get_running_loop()
        signal = self._signals.get(loop)
        if signal is None:
            signal = self._signals[loop] = _FeedSignal(loop)
            self._sync.feed_listeners.append(signal.fire)
        return signal


class _FeedSignal:
    """Wakes the watchers of one event loop when a feed record is queued (from any thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def armed(self) -> asyncio.Event:
        """The event the next `fire` sets."""
        return self._event

    def fire(self) -> None:
        """Thread-safe: sets the current event and arms a new one."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._swap)

    def _swap(self) -> None:
        fired, self._event = self._event, asyncio.Event()
        fired.set()


def _check_kept(conn: apsw.Connection, destination_id: int, after: int) -> None:
    """Refuses a cursor some of whose following records the feed's retention removed (an empty
    cursor reads from the oldest record kept)."""
    pruned = retention_store.pruned_through(conn, destination_id)
    if after and after < pruned:
        raise OutOfRange(f"records after cursor {after} are past the feed's retention and were removed; resume from"
                         " the empty cursor (the oldest record kept)", reason="CURSOR_PRUNED",
                         metadata={"pruned_through": str(pruned)})


def _ack(destination_id: int, record_id: int) -> Callable[[apsw.Connection], None]:
    return lambda conn: store.ack_feed(conn, destination_id, record_id)
