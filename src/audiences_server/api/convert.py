"""Turning typed tracking calls into the tracking spec's JSON shape, which the engine takes.

A typed call can hold what its JSON form cannot: a Timestamp out of its documented range, a
Struct number that is NaN or infinite. Such a call is refused here, as its JSON form would be
by the tracking API: a unary call with INVALID_ARGUMENT, a call of a batch or stream alone.
"""

from __future__ import annotations

import json
import math
from typing import Any

from audiences.v1 import tracking_pb2
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from audiences_server.core.tracking import MAX_MESSAGE_ID_CHARS, Rejection
from audiences_server.engine.ingest import long_integer_rejection, rejection_error, too_many_digits
from audiences_server.errors import FieldViolation, InvalidArgument

# proto field name -> tracking spec key
_KEYS = {
    "message_id": "messageId", "user_id": "userId", "anonymous_id": "anonymousId",
    "group_id": "groupId", "previous_id": "previousId", "event_time": "timestamp",
    "original_time": "originalTimestamp", "sent_time": "sentAt",
}
# What google.protobuf.Timestamp documents as valid: 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999999999Z, nanos 0 to 999,999,999.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_MAX_NANOS = 999_999_999


class _Refused(Exception):
    """A typed value the tracking spec's JSON cannot hold."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def timestamp_text(value: timestamp_pb2.Timestamp, field: str) -> str:
    """A Timestamp as ISO-8601 text.

    Raises:
        _Refused: the Timestamp is outside the range the type documents.
    """
    if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos <= _MAX_NANOS):
        raise _Refused("timestamp_not_valid", f"`{field}` (seconds {value.seconds}, nanos {value.nanos}) is not a"
                                              " valid Timestamp: seconds must be years 1 to 9999, nanos 0 to 999999999")
    return value.ToJsonString()


def struct_dict(value: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct as a dict.

    Raises:
        _Refused: it holds NaN or an infinity, which JSON (and so the tracking spec) cannot.
    """
    try:
        return _struct(value)
    except ValueError:
        raise _Refused("bad_request", f"`{field}` holds NaN or an infinity, which JSON cannot store") from None


def _struct(value: struct_pb2.Struct) -> dict[str, Any]:
    """What json_format.MessageToDict gives for a Struct (numbers as floats, an unset Value as
    None), walked directly: the generic printer was a fifth of a Track's handling."""
    return {key: _json(item) for key, item in value.fields.items()}


def _json(value: struct_pb2.Value) -> Any:
    which = value.WhichOneof("kind")
    if which == "string_value":
        return value.string_value
    if which == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError("NaN or an infinity")
        return number
    if which == "bool_value":
        return value.bool_value
    if which == "struct_value":
        return _struct(value.struct_value)
    if which == "list_value":
        return [_json(item) for item in value.list_value.values]
    return None  # null_value, or nothing set


def _value(field: str, value: Any) -> Any:
    if isinstance(value, struct_pb2.Struct):
        return struct_dict(value, field)
    if isinstance(value, timestamp_pb2.Timestamp):
        return timestamp_text(value, field)
    return value


def _call(kind: str, message: Message) -> dict[str, Any] | Rejection:
    out: dict[str, Any] = {"type": kind}
    try:
        for field, value in message.ListFields():
            out[_KEYS.get(field.name, field.name)] = _value(field.name, value)
    except _Refused as refused:
        message_id = getattr(message, "message_id", "")
        return Rejection(refused.reason, refused.detail, message_id if len(message_id) <= MAX_MESSAGE_ID_CHARS else "")
    return out


def call_to_dict(kind: str, message: Message) -> dict[str, Any]:
    """A typed call (Track, Identify, …) as the tracking API's JSON object.

    Raises:
        InvalidArgument: the call holds a value its JSON form cannot (a Timestamp out of range,
            NaN or an infinity in a Struct), with the tracking code as reason.
    """
    call = _call(kind, message)
    if isinstance(call, Rejection):
        raise rejection_error(call)
    return call


def struct_or_none(message: Message, field: str) -> dict[str, Any] | None:
    """A request-level Struct field (a batch's `context`, `integrations`) as a dict, or None when unset.

    Raises:
        InvalidArgument: it holds NaN or an infinity (reason BAD_REQUEST, naming the field).
    """
    if not message.HasField(field):
        return None
    try:
        return struct_dict(getattr(message, field), field)
    except _Refused as refused:
        raise _request_error(field, refused) from None


def time_or_none(message: Message, field: str) -> str | None:
    """A request-level Timestamp field (a batch's `sent_time`) as ISO-8601 text, or None when unset.

    Raises:
        InvalidArgument: it is out of the Timestamp range (reason TIMESTAMP_NOT_VALID, naming the field).
    """
    if not message.HasField(field):
        return None
    try:
        return timestamp_text(getattr(message, field), field)
    except _Refused as refused:
        raise _request_error(field, refused) from None


def _request_error(field: str, refused: _Refused) -> InvalidArgument:
    return InvalidArgument(refused.detail, reason=refused.reason.upper(),
                           violations=[FieldViolation(field, refused.detail)], metadata={"code": refused.reason})


def tracking_call(item: tracking_pb2.TrackingCall) -> dict[str, Any] | Rejection:
    """One item of a batch or stream, whichever form it was sent in."""
    kind = item.WhichOneof("call")
    if kind is None:
        return Rejection("bad_request", "the item holds no call: set one of `track`, `identify`, …, `json`")
    if kind == "json":
        return decode_json_call(item.json)
    return _call(kind, getattr(item, kind))


def decode_json_call(data: bytes) -> dict[str, Any] | Rejection:
    """One call given as JSON bytes."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as bad:
        long = long_integer_rejection(data) if too_many_digits(bad) else None
        return long or Rejection("bad_request", f"the `json` item is not valid JSON: {bad}")
    except RecursionError:
        # Nested deeper than the decoder goes (about a thousand levels): far past what a call may hold.
        return Rejection("nesting_too_deep", "the `json` item nests objects and arrays too deep to read")
    if not isinstance(value, dict):
        return Rejection("bad_request", "the `json` item must be a JSON object")
    return value
