"""Validation and normalisation of tracking-spec calls (Segment's track, identify, page, …).

Input is one call as the tracking API's JSON object (a dict); output is either a `Call` ready
to store or a `Rejection` with the tracking API's reason code. Nothing here raises on bad input:
a bad call is a value, so that one bad call in a batch never rejects the good ones.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2500
MAX_MESSAGE_ID_CHARS = 100
# `userId`, `anonymousId`, `previousId` and `groupId`: every id becomes an identifier that the
# Profiles API lists, so each is bounded on its own, not only by the call's 32 KB.
MAX_ID_CHARS = 500
MAX_GROUP_ID_CHARS = MAX_ID_CHARS
MAX_EVENT_CHARS = 500
MAX_KEYS = 300
# Levels of objects and arrays in a call, the call itself being the first and `properties` the
# second. A stored call must stay readable by a default gRPC client: protobuf decoders stop at
# 100 nested messages, and each JSON object level in a Struct costs three (Struct, map entry,
# Value), so ListEvents can return about 33 levels under `properties`; 32 in all keeps a margin.
MAX_DEPTH = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # UTC without an offset: `format_time` writes it as `Z`
# The range a google.protobuf.Timestamp can hold (years 1 to 9999): every stored time is
# returned as one.
MIN_TIME_MS = -62_135_596_800_000
MAX_TIME_MS = 253_402_300_799_999
_FIELD_IN_DETAIL = re.compile(r"`([A-Za-z_]+)`")

# Fields that have a column of their own; everything else of a call is kept in `extra`.
_COLUMN_FIELDS = frozenset({
    "type", "messageId", "userId", "anonymousId", "event", "groupId", "properties", "traits",
    "context", "timestamp", "receivedAt",
})
_VIEW_EVENTS = {"page": ("Page Viewed", "page_name"), "screen": ("Screen Viewed", "screen_name")}
_BODY_FIELD = {"track": "properties", "page": "properties", "screen": "properties",
               "identify": "traits", "group": "traits", "alias": None}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a call was refused: the tracking API's reason code and a sentence for people."""

    reason: str
    detail: str
    message_id: str = ""

    @property
    def field(self) -> str:
        """The call field at fault: every detail names it first, in backquotes."""
        match = _FIELD_IN_DETAIL.search(self.detail)
        return match.group(1) if match else ""


@dataclass(slots=True)
class Call:
    """A valid call, normalised to what is stored.

    `message` is the whole call as a dict in the tracking spec's shape, with `messageId` filled
    in (times are in `timestamp_ms` and `received_ms`); the `*_json` fields are its parts as
    stored text.
    """

    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    timestamp_ms: int
    received_ms: int
    body_json: str
    context_json: str
    extra_json: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchDefaults:
    """Batch-level fields that apply to every call of the batch."""

    context: Mapping[str, Any] | None = None
    integrations: Mapping[str, Any] | None = None
    sent_at: str | None = None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_time(value: object, field: str) -> int:
    """Parses an ISO-8601 time to milliseconds since the epoch (UTC; naive times are UTC)."""
    if not isinstance(value, str):
        raise _Reject("timestamp_not_valid", f"`{field}` must be an ISO-8601 string")
    try:
        parsed = iso_time(value)
    except ValueError:
        parsed = _lenient_time(value, field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Integer arithmetic: float seconds would lose the last millisecond of some times. The
    # difference's days and seconds are whole milliseconds, so only its microseconds round.
    delta = parsed - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


# An ISO-8601 date or time as `iso_time` reads it (a calendar or week date, extended or basic
# format, `T`, `t` or a space between date and time, an optional fraction and zone):
# `fromisoformat` of Python 3.11 also takes any character between the date and the time, and one
# stray character before the zone.
_ISO_SHAPE = re.compile(
    r"\d{4}(?:-?\d{2}-?\d{2}|-?W\d{2}(?:-?\d)?)(?:[Tt ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?"
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?)?")


def iso_time(text: str) -> datetime:
    """`datetime.fromisoformat` of an ISO-8601 date or time, and of nothing else.

    Raises:
        ValueError: the text is not one.
    """
    if _ISO_SHAPE.fullmatch(text) is None:
        raise ValueError(f"not an ISO-8601 date or time: {text!r}")
    return datetime.fromisoformat(text)


# What Segment's API also takes and `fromisoformat` does not: a month, day or hour of one digit
# (`2015-2-02T00:30:08.276Z`, in Segment's own batch example) and a lower-case `t` or `z`.
_LENIENT_TIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2})(:.*)?)?")


def _lenient_time(value: str, field: str) -> datetime:
    """Parses a time `fromisoformat` refused with its one-digit parts padded and `t`/`z` upper-cased."""
    match = _LENIENT_TIME.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, separator, hour, rest = match.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}"
        if separator is not None:
            text += f"T{int(hour):02d}{rest or ''}".replace("z", "Z")
        return iso_time(text)
    except ValueError:
        raise _Reject("timestamp_not_valid", f"`{field}` is not an ISO-8601 time: {value!r}") from None


def format_time(ms: int) -> str:
    """Formats milliseconds since the epoch as ISO-8601 UTC with milliseconds."""
    return _second(ms // 1000) + f"{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _second(seconds: int) -> str:
    """A second's text up to its fraction; the calls of a burst share a few seconds, and
    formatting was a tenth of the cost of sending a change. isoformat, not strftime("%Y"), which
    glibc writes without padding before the year 1000 (`999-06-01`)."""
    return (_NAIVE_EPOCH + timedelta(seconds=seconds)).isoformat() + "."


_ID_TOO_LONG = {"userId": "user_id_too_long", "anonymousId": "anonymous_id_too_long",
                "previousId": "previous_id_too_long", "groupId": "group_id_too_long"}


def _id_field(raw: Mapping[str, Any], field: str) -> str | None:
    value = raw.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # `7.0` is `7`, as JSON's numbers and Segment's libraries' ids are (analytics-python
        # sends a number id as it is: a whole one from a float column is `7.0`)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Reject("id_not_string", f"`{field}` must be a string or a whole number")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_CHARS:
        raise _Reject(_ID_TOO_LONG[field], f"`{field}` has {len(text)} characters; at most {MAX_ID_CHARS}")
    return text


def _object_field(raw: Mapping[str, Any], field: str, reason: str) -> dict[str, Any]:
    value = raw.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Reject(reason, f"`{field}` must be an object")
    return value


def _bounded_object(raw: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = _object_field(raw, field, f"{field}_not_object")
    if len(value) > MAX_KEYS:
        raise _Reject(f"too_many_{field}", f"`{field}` has {len(value)} keys; at most {MAX_KEYS}")
    return value


def _message_id(raw: Mapping[str, Any]) -> str:
    value = raw.get("messageId")
    if value is None or value == "":
        return f"srv-{uuid.uuid4()}"
    if not isinstance(value, str):
        raise _Reject("message_id_not_string", "`messageId` must be a string")
    if len(value) > MAX_MESSAGE_ID_CHARS:
        raise _Reject(
            "message_id_too_long",
            f"`messageId` has {len(value)} characters; at most {MAX_MESSAGE_ID_CHARS}",
        )
    return value


def event_time(raw: Mapping[str, Any], received_ms: int, sent_at: object) -> int:
    """The call's event time: an explicit `timestamp` wins; otherwise `originalTimestamp`
    corrected for the sender's clock skew with `sentAt` (receivedAt − (sentAt − original));
    otherwise `originalTimestamp` as is; otherwise the receive time.

    Each of the three times that is present must be valid, used or not, and the result must
    be a time of years 1 to 9999.
    """
    sent_ms = parse_time(sent_at, "sentAt") if sent_at is not None else None
    original = raw.get("originalTimestamp")
    original_ms = parse_time(original, "originalTimestamp") if original is not None else None
    if raw.get("timestamp") is not None:
        moment, field = parse_time(raw["timestamp"], "timestamp"), "timestamp"
    elif original_ms is not None:
        moment = original_ms if sent_ms is None else received_ms - (sent_ms - original_ms)
        field = "originalTimestamp"
    else:
        return received_ms
    if not MIN_TIME_MS <= moment <= MAX_TIME_MS:
        raise _Reject("timestamp_not_valid", f"`{field}` gives an event time outside years 1 to 9999")
    return moment


def _event_name(raw: Mapping[str, Any], kind: str) -> str | None:
    if kind in _VIEW_EVENTS:
        return _VIEW_EVENTS[kind][0]
    if kind != "track":
        return None
    name = raw.get("event")
    if name is None or name == "":
        raise _Reject("event_not_defined", "a track call needs `event`")
    if not isinstance(name, str):
        raise _Reject("event_not_string", "`event` must be a string")
    if len(name) > MAX_EVENT_CHARS:
        raise _Reject("event_too_long", f"`event` has {len(name)} characters; at most {MAX_EVENT_CHARS}")
    return name


def _view_properties(raw: Mapping[str, Any], kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Page and screen calls become events; their name and category become properties."""
    name_key = _VIEW_EVENTS[kind][1]
    extra = {}
    for field, key in (("name", name_key), ("category", "page_category")):
        value = raw.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _Reject(f"{field}_not_string", f"`{field}` must be a string")
        extra[key] = value
    return {**body, **extra} if extra else body


def _check_kind(raw: Mapping[str, Any], kind: str, user_id: str | None, anon: str | None) -> None:
    if kind == "alias":
        if user_id is None:
            raise _Reject("user_id_not_defined", "an alias call needs `userId`")
        if _id_field(raw, "previousId") is None:
            raise _Reject("previous_id_not_defined", "an alias call needs `previousId`")
    elif user_id is None and anon is None:
        raise _Reject("no_user_anon_id", "a call needs `userId` or `anonymousId`")


def _group_id(raw: Mapping[str, Any], kind: str) -> str | None:
    group_id = _id_field(raw, "groupId") if kind == "group" else None
    if kind == "group" and group_id is None:
        raise _Reject("group_id_not_defined", "a group call needs `groupId`")
    return group_id


def _with_defaults(raw: dict[str, Any], defaults: BatchDefaults) -> dict[str, Any]:
    merged = dict(raw)
    for field, value in (("context", defaults.context), ("integrations", defaults.integrations)):
        own = raw.get(field)
        if value and (own is None or isinstance(own, dict)):
            merged[field] = {**value, **(own or {})}
    if defaults.sent_at is not None and raw.get("sentAt") is None:
        merged["sentAt"] = defaults.sent_at
    return merged


# One encoder for the process: json.dumps with options builds a new encoder on every call.
_stdlib_dump = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
# Where orjson's text can differ from the stdlib's: `null` (orjson writes NaN and infinities so,
# where the stdlib refuses them) and floats under 1e-4 (`0.00001`, `1.5e-7` where the stdlib
# writes `1e-05`, `1.5e-07`). A value always follows `:`, `,` or `[` in compact JSON; a match
# inside a string only costs the slower path.
_MAYBE_DIFFERENT = re.compile(rb"[:,\[](?:null|-?0\.0000|-?[0-9][0-9.]*e-)")
# Hands subclasses (int and str enums…), datetimes and dataclasses to `_refuse`, as the stdlib
# would not write them the same or at all.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is left to the stdlib encoder")


def _dump(value: dict[str, Any]) -> str:
    """The stored JSON text of a value: exactly the stdlib's compact, non-ASCII-escaping,
    NaN-refusing text (and its errors), made by orjson when orjson's text is the same.

    orjson refuses what it cannot write the same (integers beyond 64 bits, lone surrogates,
    non-string keys, deep nesting, and with `_ORJSON_OPTIONS` subclasses, datetimes and
    dataclasses, which the stdlib refuses); those and the texts `_MAYBE_DIFFERENT` flags go
    through the stdlib encoder.
    """
    try:
        text = orjson.dumps(value, _refuse, _ORJSON_OPTIONS)
    except TypeError:
        return _stdlib_dump(value)
    if (b"null" in text or b"0.0000" in text or b"e-" in text) and _MAYBE_DIFFERENT.search(text):
        return _stdlib_dump(value)
    return text.decode()


def _build(raw: dict[str, Any], received_ms: int) -> Call:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CALL_TYPES:
        raise _Reject("type_not_valid", f"`type` must be one of {', '.join(sorted(CALL_TYPES))}")
    message_id = _message_id(raw)
    user_id, anon = _id_field(raw, "userId"), _id_field(raw, "anonymousId")
    _check_kind(raw, kind, user_id, anon)
    event = _event_name(raw, kind)
    group_id = _group_id(raw, kind)
    body_field = _BODY_FIELD[kind]
    body = _bounded_object(raw, body_field) if body_field else {}
    if kind in _VIEW_EVENTS:
        body = _view_properties(raw, kind, body)
    context = _object_field(raw, "context", "context_not_object")
    if kind == "group" and not isinstance(context.get("unlink", False), bool):
        raise _Reject("unlink_not_boolean", "`context.unlink` must be true or false")
    _object_field(raw, "integrations", "integrations_not_object")
    timestamp_ms = event_time(raw, received_ms, raw.get("sentAt"))
    extra = {} if raw.keys() <= _COLUMN_FIELDS else {k: v for k, v in raw.items() if k not in _COLUMN_FIELDS}
    parts = {body_field or "properties": body, "context": context, **extra}
    body_json, context_json, extra_json = _texts(body, context, extra, parts)
    message = {**raw, "messageId": message_id}
    if body_field:
        message[body_field] = body
    if event is not None:
        message["event"] = event
    call = Call(
        message_id=message_id, type=kind, event=event, user_id=user_id, anonymous_id=anon,
        group_id=group_id, timestamp_ms=timestamp_ms, received_ms=received_ms,
        body_json=body_json, context_json=context_json, extra_json=extra_json, message=message,
    )
    _check_stored(call, body_field or "properties", parts)
    return call


def _texts(body: dict[str, Any], context: dict[str, Any], extra: dict[str, Any],
           parts: dict[str, Any]) -> tuple[str, str, str]:
    """The stored JSON texts of a call's body, context and other fields."""
    try:
        return (_dump(body) if body else "{}", _dump(context) if context else "{}",
                _dump(extra) if extra else "{}")
    except RecursionError:
        # Only a value nested hundreds of levels deep makes the encoder recurse that far.
        _check_depth(parts)
        raise


def _openings(text: str) -> int:
    """How many objects and arrays a JSON text opens at most (brackets inside strings count too)."""
    return text.count("{") + text.count("[")


def _check_depth(parts: dict[str, Any]) -> None:
    """Refuses a call whose fields nest deeper than MAX_DEPTH levels, naming the first such field.

    Iterative, so that a value nested thousands of levels deep costs no recursion.
    """
    for field, value in parts.items():
        stack = [(value, 2)]  # a field's value is the second level of the call
        while stack:
            item, level = stack.pop()
            children = item.values() if isinstance(item, dict) else item
            if level > MAX_DEPTH:
                raise _Reject("nesting_too_deep", f"`{field}` nests objects and arrays more than {MAX_DEPTH} "
                                                  "levels deep, counting the call as the first")
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))


# The stored parts of a call that are not JSON texts, and the field each one comes from.
_COLUMN_TEXTS = (("messageId", "message_id"), ("userId", "user_id"), ("anonymousId", "anonymous_id"),
                 ("event", "event"), ("groupId", "group_id"))


def _check_stored(call: Call, body_field: str, parts: dict[str, Any]) -> None:
    """Refuses a call nested too deep, holding a string UTF-8 cannot encode (a lone surrogate,
    which JSON's `\\ud800` escapes can make), or over MAX_CALL_BYTES in all."""
    texts = (call.body_json, call.context_json, call.extra_json)
    # All fields' openings together first: only when those reach the limit can one field alone.
    if _openings("".join(texts)) >= MAX_DEPTH - 1 and (
            1 + _openings(texts[0]) > MAX_DEPTH or 1 + _openings(texts[1]) > MAX_DEPTH
            or _openings(texts[2]) > MAX_DEPTH):
        _check_depth(parts)  # the cheap count says it may be too deep; the walk says for sure
    whole = "".join((*texts, call.message_id, call.user_id or "", call.anonymous_id or "", call.event or "",
                     call.group_id or ""))
    if whole.isascii():  # every character one byte: the usual call, measured at once
        if len(whole) > MAX_CALL_BYTES:
            raise _Reject("message_too_large", f"the call is {len(whole)} bytes; at most {MAX_CALL_BYTES}")
        return
    size = 0
    for field, text in ((body_field, texts[0]), ("context", texts[1])):
        size += _utf8_size(text, field)
    size += _utf8_size(texts[2], "") if texts[2].isascii() else _extra_size(parts, body_field, texts[2])
    for field, attribute in _COLUMN_TEXTS:
        value = getattr(call, attribute)
        size += _utf8_size(value, field) if value else 0
    if size > MAX_CALL_BYTES:
        raise _Reject("message_too_large", f"the call is {size} bytes; at most {MAX_CALL_BYTES}")


def _utf8_size(text: str, field: str) -> int:
    """The UTF-8 size of a stored text; refuses a text that has no UTF-8 form."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise _Reject("string_not_utf8", f"`{field}` holds a lone surrogate (\\ud800 to \\udfff), which is "
                                         "not text and cannot be stored") from None


def _extra_size(parts: dict[str, Any], body_field: str, extra_json: str) -> int:
    """The UTF-8 size of the other fields' text, naming the field at fault when it has no UTF-8 form."""
    try:
        return len(extra_json.encode())
    except UnicodeEncodeError:
        for field, value in parts.items():
            if field not in {body_field, "context"}:
                # The key itself may hold the surrogate: the detail shows it escaped.
                _utf8_size(_dump({field: value}), field.encode("utf-8", "backslashreplace").decode())
        raise


def _echoed_id(message_id: object) -> str:
    """The `messageId` a rejection repeats: only a valid one, since the reply must carry it as text."""
    if not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_CHARS:
        return ""
    return message_id if message_id.isascii() or encodable(message_id) else ""


def encodable(text: str) -> bool:
    """Whether UTF-8 can write the text (it cannot when it holds a lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def normalize(raw: object, received_ms: int, defaults: BatchDefaults | None = None) -> Call | Rejection:
    """Validates one call and normalises it for storage.

    Args:
        raw: the call as decoded from the tracking API's JSON.
        received_ms: when the server received it, in ms since the epoch.
        defaults: batch-level context, integrations and sentAt.

    Returns:
        The normalised call, or the reason it is refused.
    """
    if isinstance(raw, Rejection):
        return raw  # refused while decoding, before it was a call
    if not isinstance(raw, dict):
        return Rejection("bad_request", "a call must be a JSON object")
    if defaults is not None and (defaults.context or defaults.integrations or defaults.sent_at is not None):
        raw = _with_defaults(raw, defaults)
    try:
        return _build(raw, received_ms)
    except _Reject as refused:
        return Rejection(refused.reason, refused.detail, _echoed_id(raw.get("messageId")))
    except (ValueError, TypeError, OverflowError, RecursionError) as bad:
        # A value JSON cannot hold (NaN, a non-string key) or a time out of range.
        detail = str(bad)
        if "Out of range float" in detail:  # json.dumps's word for NaN, ±Infinity and 1e400 (read as infinite)
            detail = ("a number is NaN, Infinity or a decimal beyond a double (±1.8e308), which JSON cannot"
                      " hold; an integer that large, written without a fraction or exponent, is kept exactly")
        return Rejection("bad_request", f"the call cannot be stored: {detail}", _echoed_id(raw.get("messageId")))


def batch_defaults(body: Mapping[str, Any]) -> BatchDefaults | Rejection:
    """Reads the batch-level fields of a tracking API batch body."""
    for field in ("context", "integrations"):
        if body.get(field) is not None and not isinstance(body[field], dict):
            return Rejection(f"{field}_not_object", f"batch `{field}` must be an object")
    sent_at = body.get("sentAt")
    if sent_at is not None:
        try:
            parse_time(sent_at, "sentAt")
        except _Reject as refused:
            return Rejection(refused.reason, f"batch {refused.detail}")
    return BatchDefaults(body.get("context"), body.get("integrations"), sent_at)


def unlinks(call: Call) -> bool:
    """Whether a group call removes the user's link to the account (`context.unlink: true`)
    instead of making it."""
    context = call.message.get("context")
    return isinstance(context, dict) and context.get("unlink") is True
