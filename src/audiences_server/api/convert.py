"""Turning typed tracking calls into the tracking spec's JSON shape, which the engine takes."""

from __future__ import annotations

import json
from typing import Any

from audiences.v1 import tracking_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from audiences_server.core.tracking import Rejection

# proto field name -> tracking spec key
_KEYS = {
    "message_id": "messageId", "user_id": "userId", "anonymous_id": "anonymousId",
    "group_id": "groupId", "previous_id": "previousId", "event_time": "timestamp",
    "original_time": "originalTimestamp", "sent_time": "sentAt",
}


def _value(value: Any) -> Any:
    if isinstance(value, struct_pb2.Struct):
        return json_format.MessageToDict(value)
    if isinstance(value, timestamp_pb2.Timestamp):
        return value.ToJsonString()
    return value


def call_to_dict(kind: str, message: Message) -> dict[str, Any]:
    """A typed call (Track, Identify, …) as the tracking API's JSON object."""
    out: dict[str, Any] = {"type": kind}
    for field, value in message.ListFields():
        out[_KEYS.get(field.name, field.name)] = _value(value)
    return out


def struct_or_none(message: Message, field: str) -> dict[str, Any] | None:
    """A Struct field as a dict, or None when it is not set."""
    return json_format.MessageToDict(getattr(message, field)) if message.HasField(field) else None


def tracking_call(item: tracking_pb2.TrackingCall) -> dict[str, Any] | Rejection:
    """One item of a batch or stream, whichever form it was sent in."""
    kind = item.WhichOneof("call")
    if kind is None:
        return Rejection("bad_request", "the item holds no call: set one of `track`, `identify`, …, `json`")
    if kind == "json":
        return decode_json_call(item.json)
    return call_to_dict(kind, getattr(item, kind))


def decode_json_call(data: bytes) -> dict[str, Any] | Rejection:
    """One call given as JSON bytes."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as bad:
        return Rejection("bad_request", f"the `json` item is not valid JSON: {bad}")
    if not isinstance(value, dict):
        return Rejection("bad_request", "the `json` item must be a JSON object")
    return value
