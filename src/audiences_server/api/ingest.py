"""IngestService: tracking calls in, per-call outcomes out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import grpc
from audiences.v1 import ingest_pb2, ingest_pb2_grpc
from google.protobuf.message import Message

from audiences_server.api import convert
from audiences_server.api.context import sender
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
)
from audiences_server.errors import FieldViolation, InvalidArgument

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


def _result(result: CallResult) -> ingest_pb2.MessageResult:
    if not (result.reason or result.detail):
        # Most results: empty fields are proto3 defaults, and leaving them out is cheaper.
        return ingest_pb2.MessageResult(index=result.index, message_id=result.message_id, status=_STATUS[result.status])
    return ingest_pb2.MessageResult(
        index=result.index, message_id=result.message_id, status=_STATUS[result.status],
        reason=result.reason, detail=result.detail,
    )


def _counts(results: Sequence[CallResult]) -> dict[str, int]:
    statuses = [r.status for r in results]
    return {
        "accepted_count": statuses.count(ACCEPTED),
        "duplicate_count": statuses.count(DUPLICATE),
        "rejected_count": statuses.count(REJECTED),
    }


def _batch_json_body(body: bytes) -> tuple[list[Any], tracking.BatchDefaults]:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as bad:
        raise InvalidArgument(f"the body is not valid JSON: {bad}", reason="BAD_REQUEST",
                              violations=[FieldViolation("body", "not valid JSON")]) from None
    if isinstance(decoded, dict) and isinstance(decoded.get("batch"), list):
        defaults = tracking.batch_defaults(decoded)
        if isinstance(defaults, tracking.Rejection):
            raise InvalidArgument(defaults.detail, reason=defaults.reason.upper(),
                                  violations=[FieldViolation(defaults.field, defaults.detail)])
        return decoded["batch"], defaults
    if isinstance(decoded, dict) and "type" in decoded:
        return [decoded], tracking.BatchDefaults()
    raise InvalidArgument('the body must be {"batch": [...]} or one call object with a `type`',
                          reason="BAD_REQUEST", violations=[FieldViolation("body", "no `batch` list")])


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """Decodes tracking calls and hands them to the engine."""

    def __init__(self, engine: Engine) -> None:
        self._ingest = engine.ingest

    def _one(self, kind: str, call: Message, response_type: type[R]) -> R:
        result = self._ingest.record_one(sender(), convert.call_to_dict(kind, call))
        return response_type(message_id=result.message_id, status=_STATUS[result.status])

    def Track(self, request: ingest_pb2.TrackRequest, context: grpc.ServicerContext) -> ingest_pb2.TrackResponse:
        return self._one("track", request.track, ingest_pb2.TrackResponse)

    def Identify(self, request: ingest_pb2.IdentifyRequest,
                 context: grpc.ServicerContext) -> ingest_pb2.IdentifyResponse:
        return self._one("identify", request.identify, ingest_pb2.IdentifyResponse)

    def Page(self, request: ingest_pb2.PageRequest, context: grpc.ServicerContext) -> ingest_pb2.PageResponse:
        return self._one("page", request.page, ingest_pb2.PageResponse)

    def Screen(self, request: ingest_pb2.ScreenRequest, context: grpc.ServicerContext) -> ingest_pb2.ScreenResponse:
        return self._one("screen", request.screen, ingest_pb2.ScreenResponse)

    def Group(self, request: ingest_pb2.GroupRequest, context: grpc.ServicerContext) -> ingest_pb2.GroupResponse:
        return self._one("group", request.group, ingest_pb2.GroupResponse)

    def Alias(self, request: ingest_pb2.AliasRequest, context: grpc.ServicerContext) -> ingest_pb2.AliasResponse:
        return self._one("alias", request.alias, ingest_pb2.AliasResponse)

    def Batch(self, request: ingest_pb2.BatchRequest, context: grpc.ServicerContext) -> ingest_pb2.BatchResponse:
        check_batch_limits(len(request.batch), request.ByteSize())
        defaults = tracking.BatchDefaults(
            convert.struct_or_none(request, "context"), convert.struct_or_none(request, "integrations"),
            request.sent_time.ToJsonString() if request.HasField("sent_time") else None,
        )
        results = self._ingest.record(sender(), [convert.tracking_call(c) for c in request.batch], defaults)
        return ingest_pb2.BatchResponse(results=[_result(r) for r in results], **_counts(results))

    def BatchJson(self, request: ingest_pb2.BatchJsonRequest,
                  context: grpc.ServicerContext) -> ingest_pb2.BatchJsonResponse:
        calls, defaults = _batch_json_body(request.body)
        check_batch_limits(len(calls), len(request.body))
        results = self._ingest.record(sender(), calls, defaults)
        return ingest_pb2.BatchJsonResponse(results=[_result(r) for r in results], **_counts(results))

    def StreamCalls(self, request_iterator: Iterator[ingest_pb2.StreamCallsRequest],
                    context: grpc.ServicerContext) -> ingest_pb2.StreamCallsResponse:
        stream = _StreamState(self._ingest, sender())
        for request in request_iterator:
            stream.add(convert.tracking_call(request.call))
        stream.finish()
        return ingest_pb2.StreamCallsResponse(
            rejected=[_result(r) for r in stream.rejected], **_counts_of(stream)
        )


def _counts_of(stream: _StreamState) -> dict[str, int]:
    return {"accepted_count": stream.accepted, "duplicate_count": stream.duplicates,
            "rejected_count": stream.rejected_total}


class _StreamState:
    """Chunks a stream of calls into writer jobs, with a bounded number in flight."""

    def __init__(self, ingest: Any, space: Sender) -> None:
        self._ingest = ingest
        self._space = space
        self._chunk: list[Any] = []
        self._chunk_started = 0.0
        self._offset = 0
        self._pending: list[PendingBatch] = []
        self.accepted = self.duplicates = self.rejected_total = 0
        self.rejected: list[CallResult] = []

    def add(self, call: Any) -> None:
        if not self._chunk:
            self._chunk_started = time.monotonic()
        self._chunk.append(call)
        if len(self._chunk) >= _STREAM_CHUNK or time.monotonic() - self._chunk_started > _STREAM_CHUNK_SECONDS:
            self._flush()
        while len(self._pending) > _STREAM_MAX_PENDING:
            self._settle(self._pending.pop(0))

    def finish(self) -> None:
        self._flush()
        while self._pending:
            self._settle(self._pending.pop(0))

    def _flush(self) -> None:
        if self._chunk:
            self._pending.append(self._ingest.submit(self._space, self._chunk, offset=self._offset))
            self._offset += len(self._chunk)
            self._chunk = []

    def _settle(self, batch: PendingBatch) -> None:
        for result in batch.results():
            if result.status == ACCEPTED:
                self.accepted += 1
            elif result.status == DUPLICATE:
                self.duplicates += 1
            else:
                self.rejected_total += 1
                if len(self.rejected) < _STREAM_MAX_LISTED:
                    self.rejected.append(result)
