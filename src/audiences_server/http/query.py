"""Reading an HTTP request's query parameters, shared by the Profile API and the console's API."""

from __future__ import annotations

from datetime import UTC, datetime

from multidict import MultiMapping

from audiences_server.core.tracking import iso_time
from audiences_server.errors import FieldViolation, InvalidArgument


def bad_parameter(name: str, message: str, reason: str) -> InvalidArgument:
    """A refused parameter: `INVALID_ARGUMENT` naming it (HTTP 400)."""
    return InvalidArgument(message, reason=reason, violations=[FieldViolation(name, message)])


def query_time(query: MultiMapping[str], name: str) -> int | None:
    """An ISO-8601 date (`2018-01-02`, midnight UTC) or time (`2018-01-02T10:00:00Z`; no offset is
    UTC), in epoch milliseconds, exact to the millisecond over every year a datetime holds; None
    when the parameter is absent or empty."""
    text = query.get(name)
    if not text:
        return None
    try:
        moment = iso_time(text)
    except ValueError:
        raise bad_parameter(name, f"`{name}` is not an ISO-8601 date or time: {text!r}", "TIMESTAMP_INVALID") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
