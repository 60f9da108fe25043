"""IngestService: tracking calls in, per-call outcomes out."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from audiences.v1 import ingest_pb2, ingest_pb2_grpc
from google.protobuf.message import Message

from audiences_server.api import convert
from audiences_server.api.context import TOKEN_RECHECK_S, grant, sender
from audiences_server.core import tracking
from audiences_server.engine.engine import Engine
from audiences_server.engine.ingest import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    CallResult,
    PendingBatch,
    Sender,
    check_batch_limits,
    rejection_error,
)

_STATUS = {
    ACCEPTED: ingest_pb2.MESSAGE_STATUS_ACCEPTED,
    DUPLICATE: ingest_pb2.MESSAGE_STATUS_DUPLICATE,
    REJECTED: ingest_pb2.MESSAGE_STATUS_REJECTED,
}
# A stream is committed in chunks of this many calls, or sooner when a chunk gets this old.
_STREAM_CHUNK = 500
_STREAM_CHUNK_SECONDS = 0.05
_STREAM_MAX_PENDING = 8
_STREAM_MAX_LISTED = 1000

R = TypeVar("R", bound=Message)


def _result(result: CallResult, make: Callable[..., Any] = ingest_pb2.MessageResult) -> Any:
    """One call's outcome, made by `make`: a `MessageResult`, or a batch response's `results.add`."""
    if not (result.reason or result.detail):
        # Most results: empty fields are proto3 defaults, and leaving them out is cheaper.
        return make(index=result.index, message_id=result.message_id, status=_STATUS[result.status])
    return make(index=result.index, message_id=result.message_id, status=_STATUS[result.status],
                reason=result.reason, detail=result.detail)


Response = TypeVar("Response", ingest_pb2.BatchResponse, ingest_pb2.BatchJsonResponse)


def _batch_response(response_type: type[Response], results: Sequence[CallResult]) -> Response:
    """A batch's response: each call's outcome, added in place (a list of results built first
    and then copied into the response cost a third more, per call of every batch)."""
    statuses = [r.status for r in results]
    response = response_type(accepted_count=statuses.count(ACCEPTED), duplicate_count=statuses.count(DUPLICATE),
                             rejected_count=statuses.count(REJECTED))
    add = response.results.add
    for result in results:
        _result(result, add)
    return response


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """Decodes tracking calls and hands them to the engine.

    Every method is a coroutine: a call waits for its commit on the event loop, not on a thread.
    Decoding a whole batch runs on the engine's pool, so that the loop stays free for other calls.
    """

    def __init__(self, engine: Engine, pool: Executor) -> None:
        self._ingest = engine.ingest
        self._auth = engine.auth
        self._pool = pool

    async def _one(self, kind: str, call: Message, response_type: Callable[..., R]) -> R:
        pending = self._ingest.submit_one(sender(), convert.call_to_dict(kind, call))
        result = (await pending.committed())[0]
        if result.status == REJECTED:  # refused in the writer job: it carries a suppressed identifier
            raise rejection_error(tracking.Rejection(result.reason, result.detail, result.message_id))
        return response_type(message_id=result.message_id, status=_STATUS[result.status])

    async def Track(self, request: ingest_pb2.TrackRequest, context: Any) -> ingest_pb2.TrackResponse:
        return await self._one("track", request.track, ingest_pb2.TrackResponse)

    async def Identify(self, request: ingest_pb2.IdentifyRequest, context: Any) -> ingest_pb2.IdentifyResponse:
        return await self._one("identify", request.identify, ingest_pb2.IdentifyResponse)

    async def Page(self, request: ingest_pb2.PageRequest, context: Any) -> ingest_pb2.PageResponse:
        return await self._one("page", request.page, ingest_pb2.PageResponse)

    async def Screen(self, request: ingest_pb2.ScreenRequest, context: Any) -> ingest_pb2.ScreenResponse:
        return await self._one("screen", request.screen, ingest_pb2.ScreenResponse)

    async def Group(self, request: ingest_pb2.GroupRequest, context: Any) -> ingest_pb2.GroupResponse:
        return await self._one("group", request.group, ingest_pb2.GroupResponse)

    async def Alias(self, request: ingest_pb2.AliasRequest, context: Any) -> ingest_pb2.AliasResponse:
        return await self._one("alias", request.alias, ingest_pb2.AliasResponse)

    async def _in_pool(self, work: Callable[[], PendingBatch]) -> list[CallResult]:
        copied = contextvars.copy_context()
        pending = await asyncio.get_running_loop().run_in_executor(self._pool, copied.run, work)
        return await pending.committed()

    async def Batch(self, request: ingest_pb2.BatchRequest, context: Any) -> ingest_pb2.BatchResponse:
        return _batch_response(ingest_pb2.BatchResponse, await self._in_pool(lambda: self._submit_batch(request)))

    def _submit_batch(self, request: ingest_pb2.BatchRequest) -> PendingBatch:
        check_batch_limits(len(request.batch), request.ByteSize())
        defaults = tracking.BatchDefaults(
            convert.struct_or_none(request, "context"), convert.struct_or_none(request, "integrations"),
            convert.time_or_none(request, "sent_time"),
        )
        return self._ingest.submit(sender(), [convert.tracking_call(c) for c in request.batch], defaults)

    async def BatchJson(self, request: ingest_pb2.BatchJsonRequest, context: Any) -> ingest_pb2.BatchJsonResponse:
        return _batch_response(ingest_pb2.BatchJsonResponse,
                               await self._in_pool(lambda: self._ingest.submit_json(sender(), request.body)))

    async def StreamCalls(self, request_iterator: AsyncIterator[ingest_pb2.StreamCallsRequest],
                          context: Any) -> ingest_pb2.StreamCallsResponse:
        stream = _StreamState(self._ingest, sender())
        add = stream.add
        caller, checked = grant(), time.monotonic()
        loop = asyncio.get_running_loop()
        async for request in request_iterator:
            if time.monotonic() - checked >= TOKEN_RECHECK_S:
                # A token revoked or expired since the stream opened ends it, before this message
                # joins a chunk (one may go to the writer with it): what came since the last chunk
                # handed to the writer is not stored (docs/operations.md).
                await loop.run_in_executor(self._pool, contextvars.copy_context().run, self._auth.still_granted,
                                           caller)
                checked = time.monotonic()
            if add(request.call):  # a plain call per message; a coroutine only when the stream must wait
                await stream.settle_some()
        await stream.finish()
        return ingest_pb2.StreamCallsResponse(
            rejected=[_result(r) for r in stream.rejected], **_counts_of(stream)
        )


def _counts_of(stream: _StreamState) -> dict[str, int]:
    return {"accepted_count": stream.accepted, "duplicate_count": stream.duplicates,
            "rejected_count": stream.rejected_total}


class _StreamState:
    """Chunks a stream of calls into writer jobs, with a bounded number in flight.

    A chunk holds the messages' calls as they arrived; they are decoded (JSON or typed) and
    normalised together when the chunk is handed to the writer, in one pass per chunk instead
    of a step per message.
    """

    def __init__(self, ingest: Any, space: Sender) -> None:
        self._ingest = ingest
        self._space = space
        self._chunk: list[Any] = []
        self._chunk_started = 0.0
        self._offset = 0
        self._pending: list[PendingBatch] = []
        self.accepted = self.duplicates = self.rejected_total = 0
        self.rejected: list[CallResult] = []

    def add(self, item: Any) -> bool:
        """Queues one message's call; True when too many chunks are in flight (`settle_some`)."""
        chunk = self._chunk
        if not chunk:
            self._chunk_started = time.monotonic()
        chunk.append(item)
        if len(chunk) >= _STREAM_CHUNK or time.monotonic() - self._chunk_started > _STREAM_CHUNK_SECONDS:
            self._flush()
            return len(self._pending) > _STREAM_MAX_PENDING
        return False

    async def settle_some(self) -> None:
        """Waits for the oldest chunks until at most _STREAM_MAX_PENDING are in flight."""
        while len(self._pending) > _STREAM_MAX_PENDING:
            await self._settle(self._pending.pop(0))

    async def finish(self) -> None:
        self._flush()
        while self._pending:
            await self._settle(self._pending.pop(0))

    def _flush(self) -> None:
        if self._chunk:
            calls = [convert.tracking_call(item) for item in self._chunk]
            self._pending.append(self._ingest.submit(self._space, calls, offset=self._offset))
            self._offset += len(self._chunk)
            self._chunk = []

    async def _settle(self, batch: PendingBatch) -> None:
        for result in await batch.committed():
            if result.status == ACCEPTED:
                self.accepted += 1
            elif result.status == DUPLICATE:
                self.duplicates += 1
            else:
                self.rejected_total += 1
                if len(self.rejected) < _STREAM_MAX_LISTED:
                    self.rejected.append(result)
