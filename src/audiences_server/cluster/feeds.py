"""Change feeds and dead letters through a cluster's front (docs/scaling.md, "Destinations on a
cluster").

Each partition's shard keeps its own profiles' feed records and dead letters, numbered in its own
file, and serves them at its read endpoint (cluster/reads.py) with one node's code. A front
answers `ListChanges`, `WatchChanges`, `AckChanges`, `ListDeadLetters` and `RedriveDeadLetters` from
them:

- A front's feed cursor is a position per partition (the last record read from each), signed as
  page tokens are (engine/page_tokens.py) and naming the destination it was issued for, so a
  consumer resuming after it reads every record once and none twice whatever order the
  partitions' records were merged in. `ListChanges` interleaves the partitions' records by change
  time, then partition; `WatchChanges` passes each partition's records on as they come. Either
  way each partition's records keep their order, so each profile's records keep one node's.
- A dead letter's id on a front names its partition (`dlq_p<partition>-<id>`); `ListDeadLetters`
  lists partition after partition, each in its own order, and `RedriveDeadLetters` sends the ids
  to the partitions that hold them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from audiences.v1 import sync_pb2, sync_pb2_grpc
from grpc import aio

from audiences_server import errors
from audiences_server.api.computations import timestamp
from audiences_server.api.sync import duration
from audiences_server.cluster.reads import TIMEOUT_S, ShardReads, _as_error
from audiences_server.core.numbers import MAX_ID
from audiences_server.engine.engine import Engine
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.engine.sync.configs import invalid

_DEAD_LETTER = re.compile(r"dlq_p([0-9]{1,6})-([0-9]{1,19})")  # ASCII digits, as one node reads ids
# How many records a watcher holds from one partition before that partition's stream waits for
# the consumer (so a slow consumer slows the shards' streams instead of filling the front's memory).
_BUFFER = 500


def _unavailable(failure: grpc.RpcError, what: str) -> errors.AudiencesError:
    """A shard's refusal as it is (a pruned cursor, an unknown destination), or SHARD_UNAVAILABLE
    when the shard did not answer."""
    refusal = _as_error(failure)  # codes a shard does not refuse with (a deadline) are UNAVAILABLE too
    if refusal.code == "UNAVAILABLE":
        return errors.Unavailable(f"a shard did not serve {what}: {refusal.message}", reason="SHARD_UNAVAILABLE")
    return refusal


class FeedCursors:
    """A front's feed cursors: the last record read from each partition, for one destination."""

    def __init__(self, tokens: PageTokens, partitions: int) -> None:
        self._tokens = tokens
        self.partitions = partitions

    @staticmethod
    def _scope(space_id: int) -> dict[str, Any]:
        return {"space": space_id, "list": "cluster_feed_cursor"}

    def encode(self, space_id: int, destination: str, positions: Sequence[int]) -> str:
        """The cursor after `positions` (one record id per partition, 0 before its first)."""
        return self._tokens.encode({"d": destination, "p": list(positions)}, self._scope(space_id))

    def decode(self, space_id: int, destination: str, text: str, field: str = "start_cursor") -> list[int]:
        """The positions a cursor holds; the empty cursor is before every partition's first record.

        Raises:
            InvalidArgument: CURSOR_INVALID, not a cursor a front issued (altered, garbled, one
                node's or a shard's); CURSOR_OTHER_FEED, issued for another destination (or an
                earlier destination of the same key).
        """
        if not text:
            return [0] * self.partitions
        try:
            cursor = self._tokens.decode(text, self._scope(space_id))
        except errors.InvalidArgument:
            raise invalid(field, f"`{field}` is not a cursor this cluster's feeds issued", "CURSOR_INVALID") from None
        positions = cursor.get("p") if isinstance(cursor, dict) else None
        if not (isinstance(positions, list) and len(positions) == self.partitions
                and all(isinstance(p, int) and p >= 0 for p in positions)):
            raise invalid(field, f"`{field}` does not hold a position for each of the {self.partitions} partitions",
                          "CURSOR_INVALID")
        if cursor.get("d") != destination:
            raise invalid(field, f"`{field}` was issued for another feed, not this destination", "CURSOR_OTHER_FEED")
        return positions


def _merge(pages: list[list[sync_pb2.ChangeRecord]], limit: int) -> list[tuple[int, sync_pb2.ChangeRecord]]:
    """Up to `limit` records from the partitions' pages, each page's order kept, the next taken
    being the one with the earliest change time (then the lowest partition) among the heads."""
    heads = [0] * len(pages)
    out: list[tuple[int, sync_pb2.ChangeRecord]] = []
    while len(out) < limit:
        ready = [(pages[p][heads[p]].change_time.ToMilliseconds(), p) for p in range(len(pages))
                 if heads[p] < len(pages[p])]
        if not ready:
            break
        _, p = min(ready)
        out.append((p, pages[p][heads[p]]))
        heads[p] += 1
    return out


class ClusterSync:
    """A front's change feeds and dead letters, from the shards' read endpoints (one per
    partition, in partition order)."""

    def __init__(self, engine: Engine, shards: ShardReads, timeout_s: float = TIMEOUT_S) -> None:
        self._engine = engine
        self._addresses = shards.addresses
        self._stubs = shards.sync
        self._timeout_s = timeout_s
        self.cursors = FeedCursors(engine.page_tokens, len(self._addresses))

    # -- the change feed -----------------------------------------------------------------------

    def _feed(self, space_id: int, key: str) -> str:
        """The feed's public id in the front's file (one node's refusals: not found, NOT_A_FEED)."""
        self._engine.feed.destination_id(space_id, key)
        return self._engine.sync.destination(space_id, key).public_id

    def list_changes(self, space_id: int, request: sync_pb2.ListChangesRequest) -> sync_pb2.ListChangesResponse:
        """A page of the merged feed after a cursor (or a page token); its records carry the front's
        cursors. Asking a shard for records after a position acknowledges its records up to it.

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer within the timeout.
        """
        destination = self._feed(space_id, request.destination_key)
        scope = {"space": space_id, "list": "changes", "destination": request.destination_key,
                 "start": request.start_cursor}
        after = self._engine.page_tokens.decode(request.page_token, scope)
        positions = (self.cursors.decode(space_id, destination, request.start_cursor) if after is None
                     else list(after))
        size = page_size(request.page_size, 100, 1000)
        calls = [stub.ListChanges.future(sync_pb2.ListChangesRequest(
            destination_key=request.destination_key, start_cursor=str(position) if position else "",
            page_size=size), timeout=self._timeout_s, wait_for_ready=True)
            for stub, position in zip(self._stubs, positions, strict=True)]
        pages = []
        for call in calls:
            try:
                pages.append(call.result())
            except grpc.RpcError as failure:
                raise _unavailable(failure, "its change feed") from None
        records = [list(page.changes) for page in pages]
        taken = _merge(records, size)
        changes = []
        for p, record in taken:
            positions[p] = int(record.cursor)
            out = sync_pb2.ChangeRecord()
            out.CopyFrom(record)
            out.cursor = self.cursors.encode(space_id, destination, positions)
            changes.append(out)
        more = len(taken) < sum(map(len, records)) or any(page.next_page_token for page in pages)
        token = self._engine.page_tokens.encode(positions, scope) if more else ""
        return sync_pb2.ListChangesResponse(changes=changes, next_page_token=token)

    def ack_changes(self, space_id: int, request: sync_pb2.AckChangesRequest) -> None:
        """Acknowledges each partition's records up to its position in the cursor, on its shard.

        Raises:
            InvalidArgument: CURSOR_INVALID, CURSOR_OTHER_FEED.
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer within the timeout.
        """
        destination = self._feed(space_id, request.destination_key)
        positions = self.cursors.decode(space_id, destination, request.cursor, "cursor")
        calls = [stub.AckChanges.future(sync_pb2.AckChangesRequest(
            destination_key=request.destination_key, cursor=str(position)), timeout=self._timeout_s,
            wait_for_ready=True) for stub, position in zip(self._stubs, positions, strict=True) if position]
        for call in calls:
            try:
                call.result()
            except grpc.RpcError as failure:
                raise _unavailable(failure, "its change feed") from None

    async def watch_changes(self, space_id: int, request: sync_pb2.WatchChangesRequest, heartbeat_s: float,
                            blocking: Callable[..., Awaitable[Any]]) -> AsyncIterator[sync_pb2.WatchChangesResponse]:
        """Every partition's records after the cursor, then each new one as its shard queues it,
        and a heartbeat (with the cursor of everything passed on) after `heartbeat_s` of quiet.

        It holds no thread: one stream per shard on the front's event loop, each feeding a bounded
        queue. A shard whose endpoint does not accept a connection within the timeout, or whose
        stream breaks, ends the watch with UNAVAILABLE, SHARD_UNAVAILABLE (a shard's own refusal,
        such as CURSOR_PRUNED, with its code and reason).
        """
        destination = await blocking(self._feed, space_id, request.destination_key)
        positions = self.cursors.decode(space_id, destination, request.start_cursor)
        channels = [aio.insecure_channel(address) for address in self._addresses]
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(_BUFFER)
        pumps: list[asyncio.Task[None]] = []
        try:
            try:
                await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), self._timeout_s)
            except TimeoutError:
                raise errors.Unavailable(f"a shard's endpoint did not accept a connection within {self._timeout_s} s",
                                         reason="SHARD_UNAVAILABLE") from None
            for p, (channel, position) in enumerate(zip(channels, positions, strict=True)):
                stream = sync_pb2_grpc.SyncServiceStub(channel).WatchChanges(sync_pb2.WatchChangesRequest(
                    destination_key=request.destination_key, start_cursor=str(position) if position else "",
                    heartbeat_interval=duration(round(heartbeat_s * 1000))))  # the request's, or the default when unset
                pumps.append(asyncio.create_task(_pump(p, stream, queue)))
            quiet_since = time.monotonic()
            while not self._engine.sync.stopping:
                due = heartbeat_s - (time.monotonic() - quiet_since)
                if due <= 0:
                    yield sync_pb2.WatchChangesResponse(heartbeat=sync_pb2.Heartbeat(
                        heartbeat_time=timestamp(int(time.time() * 1000)),
                        latest_cursor=self.cursors.encode(space_id, destination, positions)))
                    quiet_since = time.monotonic()
                    continue
                try:
                    p, item = await asyncio.wait_for(queue.get(), due)
                except TimeoutError:
                    continue
                if isinstance(item, grpc.RpcError):
                    raise _unavailable(item, "its change feed")
                if item is None:
                    raise errors.Unavailable(f"partition {p}'s shard ended its change feed (it is stopping)",
                                             reason="SHARD_UNAVAILABLE")
                if item.HasField("change"):
                    positions[p] = int(item.change.cursor)
                    out = sync_pb2.ChangeRecord()
                    out.CopyFrom(item.change)
                    out.cursor = self.cursors.encode(space_id, destination, positions)
                    yield sync_pb2.WatchChangesResponse(change=out)
                    quiet_since = time.monotonic()
        finally:
            for pump in pumps:
                pump.cancel()
            for channel in channels:
                with contextlib.suppress(Exception):
                    await channel.close()

    # -- dead letters --------------------------------------------------------------------------

    def list_dead_letters(self, space_id: int, request: sync_pb2.ListDeadLettersRequest,
                          ref: tuple[str, str, str] | None) -> sync_pb2.ListDeadLettersResponse:
        """The partitions' dead letters, partition after partition, each in its own order; a page
        token holds the partition and that shard's own page token.

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer within the timeout.
        """
        self._engine.sync.dead_letters(space_id, request.destination_key, ref, 0, 0)  # one node's refusals
        scope = {"space": space_id, "list": "cluster_dead_letters", "destination": request.destination_key,
                 "ref": ref}
        after = self._engine.page_tokens.decode(request.page_token, scope)
        partition, shard_token = (0, "") if after is None else (int(after[0]), str(after[1]))
        size = page_size(request.page_size, 50, 1000)
        letters: list[sync_pb2.DeadLetter] = []
        while partition < len(self._stubs) and len(letters) < size:
            page = self._dead_letters(partition, request, size - len(letters), shard_token)
            for letter in page.dead_letters:
                out = sync_pb2.DeadLetter()
                out.CopyFrom(letter)
                out.id = f"dlq_p{partition}-{letter.id.removeprefix('dlq_')}"
                letters.append(out)
            shard_token = page.next_page_token
            if not shard_token:
                partition += 1
        # A full page ends with a token only if something follows it (as on one node).
        more = partition < len(self._stubs) and (bool(shard_token) or any(
            self._dead_letters(p, request, 1, "").dead_letters for p in range(partition, len(self._stubs))))
        token = self._engine.page_tokens.encode([partition, shard_token], scope) if more else ""
        return sync_pb2.ListDeadLettersResponse(dead_letters=letters, next_page_token=token)

    def _dead_letters(self, partition: int, request: sync_pb2.ListDeadLettersRequest, limit: int, token: str
                      ) -> sync_pb2.ListDeadLettersResponse:
        asked = sync_pb2.ListDeadLettersRequest(destination_key=request.destination_key, page_size=limit,
                                                page_token=token)
        if request.HasField("computation"):
            asked.computation.CopyFrom(request.computation)
        try:
            page: sync_pb2.ListDeadLettersResponse = self._stubs[partition].ListDeadLetters(
                asked, timeout=self._timeout_s, wait_for_ready=True)
        except grpc.RpcError as failure:
            raise _unavailable(failure, "its dead letters") from None
        return page

    def redrive(self, space_id: int, request: sync_pb2.RedriveDeadLettersRequest,
                ref: tuple[str, str, str] | None) -> int:
        """Puts parked deliveries back on the shards that hold them (every partition's, when no
        ids are given); unknown ids refuse the whole request before any shard redrives.

        Raises:
            InvalidArgument: DEAD_LETTER_ID_INVALID, an id that is not a front's (`dlq_p<p>-<n>`)
                or names no partition; KEY_REQUIRED.
            NotFound: DEAD_LETTER_NOT_FOUND, an id its partition does not hold parked.
            Unavailable: SHARD_UNAVAILABLE.
        """
        if not request.destination_key:
            raise invalid("destination_key", "`destination_key` is required", "KEY_REQUIRED")
        self._engine.sync.dead_letters(space_id, request.destination_key, ref, 0, 0)  # one node's refusals
        named: dict[int, list[str]] = {}
        for text in request.dead_letter_ids:
            found = _DEAD_LETTER.fullmatch(text)
            if found is None or int(found[1]) >= len(self._stubs) or int(found[2]) > MAX_ID:
                raise invalid("dead_letter_ids", f"{text!r} is not a cluster's dead letter id (dlq_p<partition>-<n>)",
                              "DEAD_LETTER_ID_INVALID")
            named.setdefault(int(found[1]), []).append(f"dlq_{int(found[2])}")
        partitions = sorted(named) if named else list(range(len(self._stubs)))
        for partition in sorted(named):
            parked = {letter.id for letter in self._all_dead_letters(partition, request)}
            missing = [f"dlq_p{partition}-{i.removeprefix('dlq_')}" for i in named[partition] if i not in parked]
            if missing:
                raise errors.NotFound(f"dead letter ids not found for {request.destination_key!r}: {missing}",
                                      reason="DEAD_LETTER_NOT_FOUND")
        calls: list[futures.Future[Any]] = []
        for partition in partitions:
            asked = sync_pb2.RedriveDeadLettersRequest(destination_key=request.destination_key,
                                                       dead_letter_ids=named.get(partition, []))
            if request.HasField("computation"):
                asked.computation.CopyFrom(request.computation)
            calls.append(self._stubs[partition].RedriveDeadLetters.future(asked, timeout=self._timeout_s,
                                                                          wait_for_ready=True))
        count = 0
        for call in calls:
            try:
                count += call.result().redriven_count
            except grpc.RpcError as failure:
                raise _unavailable(failure, "the redrive") from None
        return count

    def _all_dead_letters(self, partition: int, request: sync_pb2.RedriveDeadLettersRequest
                          ) -> list[sync_pb2.DeadLetter]:
        asked = sync_pb2.ListDeadLettersRequest(destination_key=request.destination_key)
        if request.HasField("computation"):
            asked.computation.CopyFrom(request.computation)
        out: list[sync_pb2.DeadLetter] = []
        token = ""
        while True:
            page = self._dead_letters(partition, asked, 1000, token)
            out.extend(page.dead_letters)
            token = page.next_page_token
            if not token:
                return out


async def _pump(partition: int, stream: Any, queue: asyncio.Queue[tuple[int, Any]]) -> None:
    """Passes one shard's stream into the watcher's queue: its items, then None when it ends, or
    the error that broke it."""
    try:
        async for item in stream:
            await queue.put((partition, item))
    except grpc.RpcError as failure:
        await queue.put((partition, failure))
        return
    await queue.put((partition, None))
