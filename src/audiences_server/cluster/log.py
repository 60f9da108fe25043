"""The log between the cluster's roles (docs/scaling.md): append, read from a position, ack.

Two implementations of one small interface: `LocalLog`, in this process's memory (tests, and
trying the roles in one process), and `JetStreamLog` over NATS JetStream. A reader's position
is kept by the reader, in its own SQLite file with the writes each entry caused; a consumer is
always opened *after* a position, so the log's own cursor is never trusted over the file.

Positions are stream sequence numbers: every subject of one stream shares one sequence, so
positions of one partition are increasing but not consecutive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

# The streams and their subjects: calls from the fronts, and one subject per partition.
CALLS_STREAM, CALLS = "AUD_CALLS", "aud.calls"
PARTS_STREAM, PARTS = "AUD_PARTS", "aud.part"
# Where the cluster's number of partitions is kept, so that every role agrees on it.
META_BUCKET, PARTITIONS_KEY = "AUD_META", "partitions"

log = structlog.get_logger("audiences_server.cluster.log")


def partition_subject(partition: int) -> str:
    """The subject of one partition."""
    return f"{PARTS}.{partition}"


def stream_of(subject: str) -> str:
    """The stream a subject belongs to."""
    return CALLS_STREAM if subject == CALLS else PARTS_STREAM


@dataclass(frozen=True)
class Entry:
    """One stored entry: its subject, its position in its stream, its bytes."""

    subject: str
    seq: int
    data: bytes
    handle: Any = field(default=None, compare=False, repr=False)


class Consumer(Protocol):
    """Reads one subject in order, from after a position."""

    async def fetch(self, max_entries: int, timeout_s: float) -> list[Entry]:
        """The next entries (at most `max_entries`), or none if none came within the timeout."""

    async def ack(self, entry: Entry) -> None:
        """Says that the entry's effects are committed (the log may forget it for this reader)."""

    async def close(self) -> None:
        """Stops reading."""


class Log(Protocol):
    """Append and read."""

    async def append(self, subject: str, data: bytes, msg_id: str | None = None) -> int:
        """Appends an entry; returns its position once it is stored durably.

        An entry with the `msg_id` of one already appended (within the log's duplicate window)
        is not stored again: the first one's position is returned.
        """

    async def consumer(self, subject: str, durable: str, after: int) -> Consumer:
        """A consumer of `subject` named `durable`, starting at the entry after position `after`."""

    async def agree_partitions(self, partitions: int | None) -> int | None:
        """The cluster's number of partitions: the first role to ask with a number records it in
        the log, and every role after it gets that number back (to compare with its own). With
        None, only reads it: None if no role has recorded one yet."""

    async def close(self) -> None:
        """Closes the connection."""

    @property
    def connected(self) -> bool:
        """Whether an append can reach the log now (False while the connection is down)."""

    @property
    def max_entry_bytes(self) -> int:
        """The largest entry an append stores (a larger one is refused): what goes over it is
        split by its writer (`front.append_calls`, `Shard._hand_over`)."""


class EntryTooLarge(ValueError):
    """An entry over the log's `max_entry_bytes`."""


class LocalLog:
    """The log in this process's memory: one sequence per stream, waiting readers woken on append.

    Nothing survives the process; it exists so that the roles can run, and be tested, without a
    log server.
    """

    def __init__(self, max_entry_bytes: int = 1 << 20) -> None:
        self.max_entry_bytes = max_entry_bytes  # NATS's default maximum payload, unless told
        self._entries: dict[str, list[Entry]] = {CALLS_STREAM: [], PARTS_STREAM: []}
        self._ids: dict[str, int] = {}
        self._appended = asyncio.Condition()
        self._partitions: int | None = None

    @property
    def connected(self) -> bool:
        """Always: the log is in this process."""
        return True

    async def agree_partitions(self, partitions: int | None) -> int | None:
        """The cluster's P (see `Log.agree_partitions`)."""
        if self._partitions is None:
            self._partitions = partitions
        return self._partitions

    async def append(self, subject: str, data: bytes, msg_id: str | None = None) -> int:
        """Appends an entry (see `Log.append`)."""
        if len(data) > self.max_entry_bytes:
            raise EntryTooLarge(f"an entry of {len(data)} bytes; at most {self.max_entry_bytes}")
        async with self._appended:
            if msg_id is not None and msg_id in self._ids:
                return self._ids[msg_id]
            stream = self._entries[stream_of(subject)]
            seq = len(stream) + 1
            stream.append(Entry(subject, seq, data))
            if msg_id is not None:
                self._ids[msg_id] = seq
            self._appended.notify_all()
            return seq

    async def consumer(self, subject: str, durable: str, after: int) -> Consumer:
        """A consumer of `subject` (see `Log.consumer`)."""
        return _LocalConsumer(self, subject, after)

    def entries(self, subject: str) -> list[Entry]:
        """Every entry of a subject (for tests)."""
        return [e for e in self._entries[stream_of(subject)] if e.subject == subject]

    async def close(self) -> None:
        """Nothing to close."""

    async def _next(self, subject: str, after: int, limit: int, timeout_s: float) -> list[Entry]:
        stream = self._entries[stream_of(subject)]

        def found() -> list[Entry]:
            return [e for e in stream[after:] if e.subject == subject][:limit]

        async with self._appended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait_for(lambda: bool(found())), timeout_s)
            return found()


class _LocalConsumer:
    def __init__(self, log: LocalLog, subject: str, after: int) -> None:
        self._log = log
        self._subject = subject
        self._after = after

    async def fetch(self, max_entries: int, timeout_s: float) -> list[Entry]:
        entries = await self._log._next(self._subject, self._after, max_entries, timeout_s)
        if entries:
            self._after = entries[-1].seq
        return entries

    async def ack(self, entry: Entry) -> None:
        return None

    async def close(self) -> None:
        return None


class LogNotThisFile(ValueError):
    """The log holds fewer entries than a role's file has read: it is not the log the file read."""


# What a published entry's headers (its `Nats-Msg-Id`) may take of the NATS server's maximum payload.
ENTRY_HEADERS_BYTES = 4096
# The least maximum payload a cluster runs with: a call (at most 32 KB as stored) travels as one
# entry with its message and what the roles add, about 70 KB at most (NATS's default is 1 MB).
MIN_MAX_PAYLOAD = 128 * 1024


class JetStreamLog:
    """The log on NATS JetStream: two file-backed streams, pull consumers, publish acknowledgements."""

    # Entries a reader may hold unacknowledged (a shard reads ahead while it waits for a
    # hand-over), and how long before JetStream sends one again (a reader drops repeats by position).
    MAX_ACK_PENDING = 1_000_000
    ACK_WAIT_S = 600.0

    def __init__(self, nc: Any, js: Any, replicas: int = 1, events: _ConnectionEvents | None = None) -> None:
        self._nc = nc
        self._js = js
        self._replicas = replicas
        self._events = events

    @classmethod
    async def connect(cls, servers: Sequence[str] | str, replicas: int = 1, *,
                      buffered: bool = True) -> JetStreamLog:
        """Connects and makes sure both streams exist (`replicas` copies of each, on a NATS cluster).

        `buffered=False` (a front's): while the connection is down, an append fails at once
        instead of waiting in the client's buffer. A front answers a call the log did not
        acknowledge `LOG_UNAVAILABLE`, so its caller retries; a buffered copy would reach the
        log once NATS is back and be stored too (a definition the front rolled back created on
        the shards, a call refused and then stored twice). Only what was already written to a
        connection as it broke can still arrive late."""
        import nats  # the `cluster` extra; the single-process server never imports it
        from nats.js import api

        events = _ConnectionEvents()
        nc = await nats.connect(servers=list(servers) if not isinstance(servers, str) else [servers],
                                max_reconnect_attempts=-1, error_cb=events.error,
                                disconnected_cb=events.disconnected, reconnected_cb=events.reconnected,
                                **({} if buffered else {"pending_size": 0}))
        if nc.max_payload < MIN_MAX_PAYLOAD:
            await nc.close()
            raise ValueError(f"the NATS server's max_payload is {nc.max_payload:,} bytes; a cluster needs at least "
                             f"{MIN_MAX_PAYLOAD:,} (one call, with what the log adds to it, is one entry)")
        js = nc.jetstream()
        for name, subjects in ((CALLS_STREAM, [CALLS]), (PARTS_STREAM, [f"{PARTS}.*"])):
            config = api.StreamConfig(name=name, subjects=subjects, storage=api.StorageType.FILE,
                                      num_replicas=replicas, duplicate_window=600.0)
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(config)
        return cls(nc, js, replicas, events)

    async def agree_partitions(self, partitions: int | None) -> int | None:
        """The cluster's P (see `Log.agree_partitions`), kept under `partitions` in the key-value
        bucket `AUD_META`: created by the first role to record it, and read by every other."""
        from nats.js import api
        from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError

        try:
            bucket = await self._js.key_value(META_BUCKET)
        except BucketNotFoundError:
            if partitions is None:
                return None
            bucket = await self._js.create_key_value(api.KeyValueConfig(
                bucket=META_BUCKET, storage=api.StorageType.FILE, replicas=self._replicas))
        if partitions is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                await bucket.create(PARTITIONS_KEY, str(partitions).encode())
                return partitions
        try:
            entry = await bucket.get(PARTITIONS_KEY)
        except KeyNotFoundError:
            return None
        return int(entry.value or b"0")

    @property
    def max_entry_bytes(self) -> int:
        """The NATS server's maximum payload (1 MB unless configured), less room for the headers."""
        return int(self._nc.max_payload) - ENTRY_HEADERS_BYTES

    async def append(self, subject: str, data: bytes, msg_id: str | None = None) -> int:
        """Publishes and waits for JetStream's acknowledgement (see `Log.append`).

        The message is in the connection's outgoing buffer before the first await (the client's
        request subscription was made at `connect`), so appends started one after another on
        one loop reach the server, and a stream, in that order even when awaited together.
        """
        headers = {"Nats-Msg-Id": msg_id} if msg_id is not None else None
        ack = await self._js.publish(subject, data, timeout=30, headers=headers)
        return int(ack.seq)

    async def consumer(self, subject: str, durable: str, after: int) -> Consumer:
        """A durable pull consumer made anew at the position after `after` (see `Log.consumer`)."""
        return _JetStreamConsumer(self, subject, durable, after, await self._subscribe(subject, durable, after))

    async def _subscribe(self, subject: str, durable: str, after: int) -> Any:
        from nats.js import api, errors

        stream = stream_of(subject)
        last = (await self._js.stream_info(stream)).state.last_seq
        if after > last:
            # Sequence numbers only grow, whatever retention removed: a stream whose last is below
            # what the file read is another stream (NATS lost its store, or another cluster's).
            raise LogNotThisFile(
                f"this file has read {stream} up to entry {after}, but the log ends at entry {last}: it is not"
                " the log this file read (was NATS's store lost or replaced?); nothing is read, so that no"
                " entry is skipped. Restore NATS's store, or start every role of the cluster on new files"
                " (docs/scaling.md)")
        with contextlib.suppress(errors.NotFoundError):
            await self._js.delete_consumer(stream, durable)
        config = api.ConsumerConfig(
            durable_name=durable, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1,
            ack_policy=api.AckPolicy.EXPLICIT, filter_subject=subject, max_ack_pending=self.MAX_ACK_PENDING,
            ack_wait=self.ACK_WAIT_S,
        )
        return await self._js.pull_subscribe(subject, durable=durable, stream=stream, config=config)

    @property
    def connected(self) -> bool:
        """Whether the connection to NATS is up (not while it reconnects)."""
        return bool(self._nc.is_connected)

    @property
    def reconnects(self) -> int:
        """How many times the connection was made again since `connect`."""
        return int(self._nc.stats["reconnects"])

    async def close(self) -> None:
        """Drains and closes the connection."""
        if self._events is not None:
            self._events.closing = True  # the client says "disconnected" as it closes: not news
        await self._nc.close()


class _ConnectionEvents:
    """The NATS connection's ups and downs as lines of the role's log: one line each, without the
    client library's traceback, and a failing reconnect said once per `QUIET_S` rather than every
    attempt (every two seconds while NATS is away)."""

    QUIET_S = 30.0

    def __init__(self) -> None:
        self._said: dict[str, float] = {}
        self.closing = False

    async def error(self, problem: Exception) -> None:
        text = str(problem) or type(problem).__name__
        now = asyncio.get_running_loop().time()
        if now - self._said.get(text, -self.QUIET_S) < self.QUIET_S:
            return
        self._said[text] = now
        log.warning("nats_error", error=text, kind=type(problem).__name__)

    async def disconnected(self) -> None:
        if not self.closing:
            log.warning("nats_disconnected")

    async def reconnected(self) -> None:
        self._said.clear()
        log.info("nats_reconnected")


class _JetStreamConsumer:
    """A pull consumer that hands out each entry once, in order, and made anew after its
    connection was: entries JetStream delivered as the connection broke never arrived, and it
    would send them again only after ACK_WAIT_S, behind entries handed out since (so dropped as
    repeats by position, and never read). Made anew at the position after the last entry handed
    out, it delivers them again at once, in order."""

    def __init__(self, log: JetStreamLog, subject: str, durable: str, after: int, subscription: Any) -> None:
        self._log = log
        self._subject = subject
        self._durable = durable
        self._subscription = subscription
        self._reconnects = log.reconnects
        self._last = after  # entries JetStream sends again after ACK_WAIT_S are dropped here

    async def fetch(self, max_entries: int, timeout_s: float) -> list[Entry]:
        from nats import errors

        reconnects = self._log.reconnects
        if reconnects != self._reconnects:
            with contextlib.suppress(Exception):  # the old subscription went with its connection
                await self._subscription.unsubscribe()
            try:
                self._subscription = await self._log._subscribe(self._subject, self._durable, self._last)
            except LogNotThisFile as problem:  # not the log read before: nothing read, said loudly
                log.error("log_not_this_file", durable=self._durable, error=str(problem))
                await asyncio.sleep(min(timeout_s, 1.0))
                return []
            except Exception as problem:  # the log away again: nothing read, the next fetch tries again
                log.warning("log_consumer_not_remade", durable=self._durable,
                            error=str(problem) or type(problem).__name__)
                await asyncio.sleep(min(timeout_s, 1.0))
                return []
            self._reconnects = reconnects
            log.info("log_consumer_remade", durable=self._durable, after=self._last)
        try:
            messages = await self._subscription.fetch(max_entries, timeout=timeout_s)
        except (TimeoutError, errors.TimeoutError):
            return []
        if self._log.reconnects != self._reconnects:
            # The connection was made anew during the fetch (the client counts a reconnect before
            # anything arrives on the new connection): what came may follow entries lost with the
            # old one. None is handed out; the next fetch makes the consumer anew after the last
            # entry handed out, which delivers them all again, in order.
            return []
        entries = []
        for message in messages:
            seq = int(message.metadata.sequence.stream)
            if seq > self._last:
                entries.append(Entry(message.subject, seq, message.data, message))
                self._last = seq
        return entries

    async def ack(self, entry: Entry) -> None:
        await entry.handle.ack()

    async def close(self) -> None:
        await self._subscription.unsubscribe()
