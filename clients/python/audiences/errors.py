"""The client's one error type: a failed call with its gRPC code and the server's details.

The server encodes every error as a `google.rpc.Status` whose details hold an `ErrorInfo`
(an UPPER_SNAKE `reason` and string `metadata`) and, for bad fields, a `BadRequest` with field
violations. `AudiencesError.from_rpc_error` reads them back so callers never handle a bare
`grpc.RpcError`. What the client refuses before calling (a malformed token, an unreadable TLS
file, a string protobuf cannot encode, a timeout that is not a number of seconds) is an
`InvalidArgument`, an `AudiencesError` that is also a `ValueError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["AudiencesError", "FieldViolation", "InvalidArgument", "QueueFull"]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as the server's `BadRequest` detail names it."""

    field: str
    description: str


@dataclass(eq=False)
class AudiencesError(Exception):
    """A call that failed, or a client-side refusal, with everything the server said about it.

    Attributes:
        code: The gRPC status code (for example `grpc.StatusCode.NOT_FOUND`).
        message: The status message, a sentence for people. For an invalid definition it holds
            the error, the offending line and a caret under the fault.
        reason: The `ErrorInfo` reason, UPPER_SNAKE (`SCOPE_MISSING`, `INVALID_DEFINITION`, …);
            empty when the server sent none (for example when it could not be reached).
        metadata: The `ErrorInfo` metadata (for example `required_scope`, `line`, `column`).
        violations: The `BadRequest` field violations, in the order the server gave them.
        request_id: The `x-request-id` the server answered with, for finding its log line.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)
    request_id: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Dataclass exceptions do not pickle by default (Exception.__reduce__ passes only args).
        return (_rebuild, (self.code.name, self.message, self.reason, self.metadata, self.violations, self.request_id))

    @property
    def line(self) -> int | None:
        """For an invalid definition, the line of the error (from 1); else None."""
        return _int_or_none(self.metadata.get("line"))

    @property
    def column(self) -> int | None:
        """For an invalid definition, the column of the error (from 1); else None."""
        return _int_or_none(self.metadata.get("column"))

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AudiencesError:
        """Builds the error from a failed call, reading its `google.rpc.Status` details."""
        code = error.code() if _is_call(error) else grpc.StatusCode.UNKNOWN
        message = (error.details() if _is_call(error) else str(error)) or ""
        built = cls(code=code or grpc.StatusCode.UNKNOWN, message=message, request_id=_request_id(error))
        status = _status_of(error)
        for detail in status.details if status is not None else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                built.reason, built.metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                built.violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        return built


class QueueFull(AudiencesError):
    """The client's send queue is full and its overflow policy is `raise`."""

    def __init__(self, max_queue_size: int) -> None:
        super().__init__(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the send queue holds {max_queue_size} messages already; the message was not queued",
            reason="QUEUE_FULL",
            metadata={"max_queue_size": str(max_queue_size)},
        )


def closed_error() -> AudiencesError:
    """What a call on a closed client raises (a method, or a tracking call queued after
    `close()`): FAILED_PRECONDITION `CLIENT_CLOSED`."""
    return AudiencesError(grpc.StatusCode.FAILED_PRECONDITION, "the client is closed", reason="CLIENT_CLOSED")


class InvalidArgument(AudiencesError, ValueError):
    """An argument the client refused before calling the server, code INVALID_ARGUMENT.

    Raised where the mistake is made (the constructor for files and timeouts, the method for
    strings and tokens) instead of a bare OSError, UnicodeEncodeError or OverflowError from deep
    inside gRPC or protobuf, so "every failure is an AudiencesError" holds; it is a `ValueError`
    too, as such mistakes conventionally are. Reasons: `TLS_FILE_UNREADABLE`, `TOKEN_MALFORMED`,
    `STRING_NOT_ENCODABLE`, `TIMEOUT_INVALID`, `DURATION_INVALID`, `VERSION_INVALID`. The server's own
    INVALID_ARGUMENT refusals are plain `AudiencesError`s.
    """

    def __init__(self, message: str, reason: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message, reason=reason, metadata=dict(metadata or {}))

    def __reduce__(self) -> tuple[Any, ...]:
        return (InvalidArgument, (self.message, self.reason, self.metadata))


def _rebuild(
    code: str, message: str, reason: str, metadata: dict[str, str], violations: list[FieldViolation], request_id: str
) -> AudiencesError:
    return AudiencesError(grpc.StatusCode[code], message, reason, metadata, violations, request_id)


def _is_call(error: grpc.RpcError) -> bool:
    """Whether the error carries a status (a failed call, blocking or grpc.aio)."""
    return isinstance(error, grpc.Call | grpc.aio.AioRpcError)


def _status_of(error: grpc.RpcError) -> Any:
    if not _is_call(error):
        return None
    try:
        return rpc_status.from_call(error)
    except ValueError:  # a status whose details disagree with the call's code: keep the plain code
        return None


def _request_id(error: grpc.RpcError) -> str:
    if not _is_call(error):
        return ""
    # Trailing metadata on every call; initial metadata too when the response is a stream.
    for key, value in (*(error.trailing_metadata() or ()), *(error.initial_metadata() or ())):
        if key == "x-request-id" and isinstance(value, str):
            return value
    return ""


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
