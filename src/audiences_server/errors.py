"""The one error tree of the server.

Each error names a gRPC status code (by name, so that the engine does not import grpc) and an
UPPER_SNAKE reason. `api.interceptor` is the single place that turns them into `google.rpc.Status`.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, reported as a `BadRequest.FieldViolation`."""

    field: str
    description: str


@dataclass(frozen=True)
class DefinitionProblem:
    """Where and why a definition is wrong, reported as a `DefinitionError` status detail."""

    reason: str
    message: str
    line: int = 0
    column: int = 0
    offending_text: str = ""
    expected: tuple[str, ...] = ()
    caret_display: str = ""
    cycle_keys: tuple[str, ...] = ()


class AudiencesError(Exception):
    """Base of every error the server reports on purpose."""

    code: str = "INTERNAL"
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: list[FieldViolation] | None = None,
        metadata: dict[str, str] | None = None,
        definition: DefinitionProblem | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations = violations or []
        self.metadata = metadata or {}
        self.definition = definition


class InvalidArgument(AudiencesError):
    """The request itself is wrong and would be wrong whatever the server's state."""

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class NotFound(AudiencesError):
    """The thing named does not exist in this space."""

    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(AudiencesError):
    """Something with that key already exists in this space."""

    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(AudiencesError):
    """The request is valid but the server's state refuses it (e.g. a delete others depend on)."""

    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Aborted(AudiencesError):
    """A change lost a race: what it was based on changed meanwhile (read it again, then retry)."""

    code = "ABORTED"
    default_reason = "ABORTED"


class Unauthenticated(AudiencesError):
    """No token, or a token the server does not know."""

    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class OutOfRange(AudiencesError):
    """A position past what is kept (a feed cursor whose following records were pruned)."""

    code = "OUT_OF_RANGE"
    default_reason = "OUT_OF_RANGE"


class PermissionDenied(AudiencesError):
    """A known token whose scope does not allow this call."""

    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(AudiencesError):
    """A limit was reached (batch size, queue depth)."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(AudiencesError):
    """The server is shutting down or overloaded; retrying later may succeed."""

    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class Unimplemented(AudiencesError):
    """The call is part of the contract but not built yet."""

    code = "UNIMPLEMENTED"
    default_reason = "UNIMPLEMENTED"


def disk_full(error: BaseException) -> Unavailable | None:
    """What a request is told when SQLite found the database's disk full (`SQLITE_FULL`): its
    transaction was rolled back, so nothing of it is stored, and it succeeds once space is freed.
    None for any other failure."""
    if not isinstance(error, apsw.FullError):
        return None
    return Unavailable("the database's disk is full: nothing of this request was stored; retry once space is freed",
                       reason="DISK_FULL", metadata={"retry_after_s": "5"})
