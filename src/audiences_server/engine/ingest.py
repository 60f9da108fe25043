"""Recording tracking calls: validate, normalise, store durably, report per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import apsw

from audiences_server.core import tracking
from audiences_server.engine.clock import Clock
from audiences_server.engine.resolution import Resolver
from audiences_server.errors import FieldViolation, InvalidArgument, Unavailable
from audiences_server.store import events
from audiences_server.store.writer import Writer, WriterClosed

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class Sender:
    """Who sends calls: a space, and the source (the write token's label) the events come from."""

    space_id: int
    source_id: str = ""


@dataclass(frozen=True)
class CallResult:
    """The outcome of one call of a batch."""

    index: int
    message_id: str
    status: str
    reason: str = ""
    detail: str = ""


class PendingBatch:
    """A batch handed to the writer; `results()` waits for its commit."""

    def __init__(self, normalized: list[tracking.Call | tracking.Rejection],
                 stored: Future[events.StoredCalls] | None, offset: int) -> None:
        self._normalized = normalized
        self._stored = stored
        self._offset = offset

    def results(self) -> list[CallResult]:
        """Per-call outcomes, once the accepted calls are committed."""
        stored = self._stored.result() if self._stored is not None else events.StoredCalls([], [])
        valid = [i for i, n in enumerate(self._normalized) if isinstance(n, tracking.Call)]
        status = {valid[i]: ACCEPTED for i in stored.accepted} | {valid[i]: DUPLICATE for i in stored.duplicates}
        return [self._result(i, item, status) for i, item in enumerate(self._normalized)]

    def _result(self, i: int, item: tracking.Call | tracking.Rejection, status: dict[int, str]) -> CallResult:
        if isinstance(item, tracking.Rejection):
            return CallResult(i + self._offset, item.message_id, REJECTED, item.reason, item.detail)
        return CallResult(i + self._offset, item.message_id, status[i])


def check_batch_limits(calls: int, size_bytes: int) -> None:
    """Refuses a batch over the tracking API's limits as a whole."""
    if calls > tracking.MAX_BATCH_CALLS:
        raise InvalidArgument(
            f"the batch has {calls} calls; at most {tracking.MAX_BATCH_CALLS}",
            reason="BATCH_TOO_LARGE", violations=[FieldViolation("batch", "too many calls")],
        )
    if size_bytes > tracking.MAX_BATCH_BYTES:
        raise InvalidArgument(
            f"the batch is {size_bytes} bytes; at most {tracking.MAX_BATCH_BYTES}",
            reason="BATCH_TOO_LARGE", violations=[FieldViolation("batch", "too many bytes")],
        )


def rejection_error(rejection: tracking.Rejection) -> InvalidArgument:
    """The error a unary call returns for a refused call."""
    return InvalidArgument(
        rejection.detail, reason=rejection.reason.upper(),
        violations=[FieldViolation(rejection.field, rejection.detail)],
        metadata={"code": rejection.reason},
    )


class Ingest:
    """The ingest use cases."""

    def __init__(self, writer: Writer, clock: Clock) -> None:
        self._writer = writer
        self._clock = clock
        self.listeners: list[Callable[[], None]] = []

    def submit(self, sender: Sender, raws: Sequence[Any], defaults: tracking.BatchDefaults | None = None,
               offset: int = 0) -> PendingBatch:
        """Validates calls and queues the valid ones for the writer without waiting."""
        received_ms = self._clock.now_ms()
        return self._queue(sender, [tracking.normalize(raw, received_ms, defaults) for raw in raws], offset)

    def _queue(self, sender: Sender, normalized: list[tracking.Call | tracking.Rejection], offset: int) -> PendingBatch:
        valid = [n for n in normalized if isinstance(n, tracking.Call)]
        future = None
        if valid:
            try:
                future = self._writer.submit(lambda conn: self._store(conn, sender, valid))
                future.add_done_callback(lambda _: self._notify())
            except WriterClosed:
                raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN") from None
        return PendingBatch(normalized, future, offset)

    def record(self, sender: Sender, raws: Sequence[Any],
               defaults: tracking.BatchDefaults | None = None) -> list[CallResult]:
        """Records a batch and returns once the accepted calls are durable."""
        return self.submit(sender, raws, defaults).results()

    def record_one(self, sender: Sender, raw: dict[str, Any]) -> CallResult:
        """Records one call; a refused call is an INVALID_ARGUMENT error."""
        received_ms = self._clock.now_ms()
        call = tracking.normalize(raw, received_ms)
        if isinstance(call, tracking.Rejection):
            raise rejection_error(call)
        return self._queue(sender, [call], 0).results()[0]

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _store(self, conn: apsw.Connection, sender: Sender, calls: list[tracking.Call]) -> events.StoredCalls:
        # Identity resolution joins this transaction, so a read after the RPC sees its profile.
        split = events.split_duplicates(conn, sender.space_id, calls)
        accepted = [calls[i] for i in split.accepted]
        first_seq = events.next_seq(conn)
        resolver = Resolver(conn, sender.space_id, self._clock.now_ms())
        profile_ids = [resolver.resolve(call, first_seq + i) for i, call in enumerate(accepted)]
        events.insert_calls(conn, sender.space_id, accepted, profile_ids, first_seq, sender.source_id)
        resolver.finish()
        return split
