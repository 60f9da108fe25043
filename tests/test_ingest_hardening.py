"""Hostile input on every ingest path: refused precisely, per call when it is one call's fault,
never INTERNAL, and never at the expense of the good calls sent with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, ingest_pb2, profiles_pb2, tracking_pb2
from google.protobuf import struct_pb2, timestamp_pb2

from audiences_server.api import convert
from audiences_server.core import tracking
from audiences_server.errors import InvalidArgument
from tests.conftest import Running, error_reason, field_violations

ACCEPTED = ingest_pb2.MESSAGE_STATUS_ACCEPTED
REJECTED = ingest_pb2.MESSAGE_STATUS_REJECTED
GOOD = {"type": "track", "userId": "good", "event": "Signed In", "messageId": "good-1"}


def nested(levels: int, leaf: Any = 1) -> Any:
    """A value of `levels` arrays, one inside the other."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def batch_json(running: Running, body: bytes) -> ingest_pb2.BatchJsonResponse:
    return running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=running.auth("write"))


def typed_batch(running: Running, *calls: tracking_pb2.TrackingCall, **fields: Any) -> ingest_pb2.BatchResponse:
    request = ingest_pb2.BatchRequest(batch=list(calls), **fields)
    return running.ingest.Batch(request, metadata=running.auth("write"))


def stream(running: Running, *calls: tracking_pb2.TrackingCall) -> ingest_pb2.StreamCallsResponse:
    def requests() -> Iterator[ingest_pb2.StreamCallsRequest]:
        for call in calls:
            yield ingest_pb2.StreamCallsRequest(call=call)

    return running.ingest.StreamCalls(requests(), metadata=running.auth("write"))


def json_item(call: Any) -> tracking_pb2.TrackingCall:
    return tracking_pb2.TrackingCall(json=call if isinstance(call, bytes) else json.dumps(call).encode())


def good_item() -> tracking_pb2.TrackingCall:
    return tracking_pb2.TrackingCall(track=tracking_pb2.Track(user_id="good", event="Signed In", message_id="good-1"))


def outcomes(reply: Any) -> list[tuple[int, str]]:
    return [(r.status, r.reason) for r in reply.results]


def stored_ids(running: Running) -> list[str]:
    return [row[0] for row in running.query("SELECT message_id FROM events ORDER BY seq")]


def refused(call: Any) -> grpc.RpcError:
    """The error of a unary call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def struct(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


# -- nesting --------------------------------------------------------------------------------------

def test_a_call_nested_too_deep_is_rejected_alone_in_a_json_body(running: Running) -> None:
    """A call whose properties nest past the limit is `nesting_too_deep`; the call beside it is stored."""
    deep = {"type": "track", "userId": "u", "event": "E", "messageId": "deep", "properties": {"p": nested(200)}}
    reply = batch_json(running, json.dumps({"batch": [deep, GOOD]}).encode())
    assert outcomes(reply) == [(REJECTED, "nesting_too_deep"), (ACCEPTED, "")]
    assert "properties" in reply.results[0].detail
    assert stored_ids(running) == ["good-1"]


@pytest.mark.parametrize("field", ["properties", "context", "integrations", "custom"])
def test_a_thousand_levels_in_a_json_item_reject_that_item(running: Running, field: str) -> None:
    """A typed batch's JSON item nested a thousand levels (too deep for any decoder to be asked to
    read), in any field, is rejected alone; the stream path does the same."""
    text = ('{"type":"track","userId":"u","event":"E","' + field + '":{"x":' + "[" * 1000 + "]" * 1000 + "}}").encode()
    reply = typed_batch(running, json_item(text), good_item())
    assert outcomes(reply) == [(REJECTED, "nesting_too_deep"), (ACCEPTED, "")]
    streamed = stream(running, json_item(text), good_item())
    assert (streamed.accepted_count, streamed.duplicate_count, streamed.rejected_count) == (0, 1, 1)
    assert streamed.rejected[0].reason == "nesting_too_deep"


def test_the_deepest_call_allowed_is_stored_and_reads_back(running: Running) -> None:
    """A call exactly at the nesting limit (the call, properties, then arrays) is accepted, and a
    default client reads it back through ListEvents; one level more is refused."""
    at_limit = {"type": "track", "userId": "deep", "event": "E", "properties": {"p": nested(tracking.MAX_DEPTH - 2)}}
    over = {**at_limit, "properties": {"p": nested(tracking.MAX_DEPTH - 1)}}
    context_at_limit = {"type": "track", "userId": "deep", "event": "C",
                        "context": {"c": _objects(tracking.MAX_DEPTH - 2)}}
    reply = batch_json(running, json.dumps({"batch": [at_limit, over, context_at_limit]}).encode())
    assert outcomes(reply) == [(ACCEPTED, ""), (REJECTED, "nesting_too_deep"), (ACCEPTED, "")]
    profile = common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id="user_id:deep")
    events = running.profiles.ListEvents(profiles_pb2.ListEventsRequest(profile=profile), metadata=running.auth("read"))
    assert sorted(e.event for e in events.events) == ["C", "E"]


def _objects(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_a_typed_struct_nested_too_deep_is_invalid_argument(running: Running) -> None:
    """A typed Track whose Struct nests past the limit fails with INVALID_ARGUMENT NESTING_TOO_DEEP."""
    track = tracking_pb2.Track(user_id="u", event="E", properties=struct(p=nested(tracking.MAX_DEPTH)))
    error = refused(lambda: running.ingest.Track(ingest_pb2.TrackRequest(track=track), metadata=running.auth("write")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "NESTING_TOO_DEEP")
    assert field_violations(error)[0][0] == "properties"


# -- strings UTF-8 cannot hold ----------------------------------------------------------------------

SURROGATES = [
    ("userId", b'{"type":"track","userId":"\\ud800","event":"x","messageId":"s1"}', "userId"),
    ("property value", b'{"type":"track","userId":"u","event":"x","properties":{"a":"\\udfff"}}', "properties"),
    ("context key", b'{"type":"track","userId":"u","event":"x","context":{"\\udc00":1}}', "context"),
    ("event", b'{"type":"track","userId":"u","event":"\\ud800x"}', "event"),
    ("other field", b'{"type":"track","userId":"u","event":"x","custom":["\\ud83d"]}', "custom"),
    ("messageId", b'{"type":"track","userId":"u","event":"x","messageId":"\\ud800"}', "messageId"),
    ("trait", b'{"type":"identify","userId":"u","traits":{"name":"\\ud800"}}', "traits"),
]


@pytest.mark.parametrize(("text", "field"), [c[1:] for c in SURROGATES], ids=[c[0] for c in SURROGATES])
def test_a_lone_surrogate_rejects_only_its_call(running: Running, text: bytes, field: str) -> None:
    """A string with a lone surrogate escape is `string_not_utf8` naming its field, on the JSON body,
    the typed batch and the stream alike; the good call sent with it is stored."""
    body = b'{"batch":[' + text + b"," + json.dumps(GOOD).encode() + b"]}"
    reply = batch_json(running, body)
    assert outcomes(reply) == [(REJECTED, "string_not_utf8"), (ACCEPTED, "")]
    assert f"`{field}`" in reply.results[0].detail
    typed = typed_batch(running, json_item(text), json_item({**GOOD, "messageId": "good-2"}))
    assert outcomes(typed) == [(REJECTED, "string_not_utf8"), (ACCEPTED, "")]
    streamed = stream(running, json_item(text), json_item({**GOOD, "messageId": "good-3"}))
    assert (streamed.accepted_count, streamed.rejected_count) == (1, 1)
    assert stored_ids(running) == ["good-1", "good-2", "good-3"]


def test_an_identifier_that_is_not_text_is_not_an_identifier(running: Running) -> None:
    """A lone surrogate where an id is read but nothing is stored (a track call's `traits.email`)
    names no identifier: the call is stored under its other ids, and the good call sent with it too."""
    odd = b'{"type":"track","userId":"u1","event":"Viewed","messageId":"odd","traits":{"email":"\\ud800"}}'
    reply = batch_json(running, b'{"batch":[' + odd + b"," + json.dumps(GOOD).encode() + b"]}")
    assert outcomes(reply) == [(ACCEPTED, ""), (ACCEPTED, "")]
    assert stored_ids(running) == ["odd", "good-1"]
    assert running.query("SELECT DISTINCT id_type FROM identifiers ORDER BY 1") == [("user_id",)]


# -- typed values the JSON form cannot hold ---------------------------------------------------------

BAD_TIMES = [
    ("seconds past 9999", {"seconds": 253402300800}),
    ("negative nanos", {"nanos": -1}),
    ("a whole second of nanos", {"nanos": 10**9}),
    ("seconds before year 1", {"seconds": -62135596801}),
]
TIME_FIELDS = ["event_time", "original_time", "sent_time"]


@pytest.mark.parametrize("field", TIME_FIELDS)
@pytest.mark.parametrize("stamp", [c[1] for c in BAD_TIMES], ids=[c[0] for c in BAD_TIMES])
def test_a_typed_timestamp_out_of_range_is_refused(running: Running, field: str, stamp: dict[str, int]) -> None:
    """A Timestamp outside what the type allows fails a unary call with TIMESTAMP_NOT_VALID naming
    the field, and in a batch rejects that call alone."""
    track = tracking_pb2.Track(user_id="u", event="E", **{field: timestamp_pb2.Timestamp(**stamp)})
    error = refused(lambda: running.ingest.Track(ingest_pb2.TrackRequest(track=track), metadata=running.auth("write")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "TIMESTAMP_NOT_VALID")
    assert field_violations(error)[0][0] == field
    reply = typed_batch(running, tracking_pb2.TrackingCall(track=track), good_item())
    assert outcomes(reply) == [(REJECTED, "timestamp_not_valid"), (ACCEPTED, "")]


@pytest.mark.parametrize("stamp", [c[1] for c in BAD_TIMES], ids=[c[0] for c in BAD_TIMES])
def test_a_batch_sent_time_out_of_range_is_invalid_argument(running: Running, stamp: dict[str, int]) -> None:
    """A typed batch whose own `sent_time` is out of range is refused whole, naming the field, and
    stores nothing."""
    error = refused(lambda: typed_batch(running, good_item(), sent_time=timestamp_pb2.Timestamp(**stamp)))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "TIMESTAMP_NOT_VALID")
    assert field_violations(error)[0][0] == "sent_time"
    assert running.query("SELECT count(*) FROM events") == [(0,)]


def test_the_extreme_valid_timestamps_are_accepted(running: Running) -> None:
    """The first and last instants a Timestamp holds are valid event times."""
    first = tracking_pb2.Track(user_id="u", event="E", event_time=timestamp_pb2.Timestamp(seconds=-62135596800))
    last = tracking_pb2.Track(user_id="u", event="E",
                              event_time=timestamp_pb2.Timestamp(seconds=253402300799, nanos=999_999_999))
    for track in (first, last):
        reply = running.ingest.Track(ingest_pb2.TrackRequest(track=track), metadata=running.auth("write"))
        assert reply.status == ACCEPTED
    assert running.query("SELECT min(ts), max(ts) FROM events") == [(tracking.MIN_TIME_MS, tracking.MAX_TIME_MS)]


def test_a_json_time_that_corrects_past_year_9999_is_rejected(running: Running) -> None:
    """Clock-skew correction that lands outside years 1 to 9999 is `timestamp_not_valid`, and an
    invalid `sentAt` is refused even when `timestamp` decides the event time."""
    skewed = {"type": "track", "userId": "u", "event": "E", "originalTimestamp": "0001-01-01T00:00:00Z",
              "sentAt": "9999-12-31T00:00:00Z"}
    bad_sent = {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-01-01T00:00:00Z", "sentAt": "soon"}
    reply = batch_json(running, json.dumps({"batch": [skewed, bad_sent, GOOD]}).encode())
    assert outcomes(reply) == [(REJECTED, "timestamp_not_valid"), (REJECTED, "timestamp_not_valid"), (ACCEPTED, "")]


NON_FINITE = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("number", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_in_a_typed_struct_are_bad_request(running: Running, number: float) -> None:
    """NaN or an infinity in properties, traits or context fails a unary call with BAD_REQUEST naming
    the field, rejects that call alone in a batch, and in a batch's context refuses the batch."""
    track = tracking_pb2.Track(user_id="u", event="E", properties=struct(x=number))
    error = refused(lambda: running.ingest.Track(ingest_pb2.TrackRequest(track=track), metadata=running.auth("write")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST")
    assert field_violations(error)[0][0] == "properties"
    identify = tracking_pb2.Identify(user_id="u", traits=struct(score={"deep": [number]}))
    error = refused(lambda: running.ingest.Identify(ingest_pb2.IdentifyRequest(identify=identify),
                                                    metadata=running.auth("write")))
    assert field_violations(error)[0][0] == "traits"
    in_context = tracking_pb2.Track(user_id="u", event="E", context=struct(screen={"density": number}))
    reply = typed_batch(running, tracking_pb2.TrackingCall(track=in_context), good_item())
    assert outcomes(reply) == [(REJECTED, "bad_request"), (ACCEPTED, "")]
    error = refused(lambda: typed_batch(running, good_item(), context=struct(x=number)))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST")
    assert field_violations(error)[0][0] == "context"
    assert stored_ids(running) == ["good-1"]


# -- sizes ------------------------------------------------------------------------------------------

def test_a_huge_user_id_and_event_name_are_refused(running: Running) -> None:
    """A 400 KB userId and a 5 MiB event name are refused with their own reason codes, by unary
    and batch calls alike, and nothing is stored."""
    error = refused(lambda: running.ingest.Track(
        ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u" * 400_000, event="E")),
        metadata=running.auth("write")))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "USER_ID_TOO_LONG")
    error = refused(lambda: running.ingest.Track(
        ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u", event="E" * 5 * 1024 * 1024)),
        metadata=running.auth("write")))
    assert error_reason(error) == "EVENT_TOO_LONG"
    assert running.query("SELECT count(*) FROM events") == [(0,)]


ID_LIMITS = [
    ("userId", {"userId": "u" * 501}, "user_id_too_long"),
    ("anonymousId", {"anonymousId": "a" * 501}, "anonymous_id_too_long"),
    ("previousId", {"type": "alias", "userId": "u", "previousId": "p" * 501}, "previous_id_too_long"),
    ("groupId", {"type": "group", "userId": "u", "groupId": "g" * 501}, "group_id_too_long"),
    ("event", {"userId": "u", "event": "e" * 501}, "event_too_long"),
    ("messageId", {"userId": "u", "messageId": "m" * 101}, "message_id_too_long"),
]


@pytest.mark.parametrize(("fields", "reason"), [c[1:] for c in ID_LIMITS], ids=[c[0] for c in ID_LIMITS])
def test_every_id_and_name_is_bounded(running: Running, fields: dict[str, Any], reason: str) -> None:
    """Ids and event names one character over their bound are rejected; at the bound they are stored."""
    call = {"type": "track", "event": "E", **fields}
    at_bound = {key: value[:-1] if isinstance(value, str) and len(value) > 100 else value
                for key, value in call.items()}
    at_bound["messageId"] = at_bound.get("messageId", "m")[:100]
    reply = batch_json(running, json.dumps({"batch": [call, at_bound]}).encode())
    assert outcomes(reply) == [(REJECTED, reason), (ACCEPTED, "")]


def test_the_32_kb_limit_counts_every_field_in_utf8_bytes(running: Running) -> None:
    """The per-call limit weighs the whole call in UTF-8 bytes whatever its path: properties just
    under 32 KB plus long ids and event name pass it, and so do 11,000 three-byte characters."""
    base = {"type": "track", "userId": "u" * 500, "anonymousId": "a" * 500, "event": "e" * 500}
    just_under = {**base, "messageId": "under", "properties": {"blob": "x" * 31_000}}
    with_ids = {**base, "messageId": "ids", "properties": {"blob": "x" * 32_000}}
    multibyte = {"type": "track", "userId": "u", "event": "E", "messageId": "euro",
                 "properties": {"blob": "€" * 11_000}}
    reply = batch_json(running, json.dumps({"batch": [just_under, with_ids, multibyte]}, ensure_ascii=False).encode())
    assert outcomes(reply) == [(ACCEPTED, ""), (REJECTED, "message_too_large"), (REJECTED, "message_too_large")]
    typed = tracking_pb2.Track(user_id="u" * 500, anonymous_id="a" * 500, event="e" * 500,
                               properties=struct(blob="x" * 32_000))
    error = refused(lambda: running.ingest.Track(ingest_pb2.TrackRequest(track=typed), metadata=running.auth("write")))
    assert error_reason(error) == "MESSAGE_TOO_LARGE"


# -- whole requests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 1030 + b"]" * 1030, b'{"batch":[{"type":"track","userId":"u","event":"E",'
                                  b'"properties":{"p":' + b"[" * 1030 + b"]" * 1030 + b"}}]}",
                                  b'{"batch":[{"type":"track","userId":"u","event":"E","properties":{"n":'
                                  b'1234567890123456789,"p":' + b"[" * 1000 + b"]" * 1000 + b"}}]}"])
def test_a_body_nested_past_what_can_be_read_is_bad_request(running: Running, body: bytes) -> None:
    """A BatchJson body nested past 1,024 levels cannot be read at all (nor past about 990 when it
    holds an integer of 19 digits or more, which Python's own decoder reads): INVALID_ARGUMENT
    BAD_REQUEST naming the body, nothing stored."""
    error = refused(lambda: batch_json(running, body))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST")
    assert field_violations(error)[0][0] == "body"
    assert stored_ids(running) == []


def test_a_call_nested_a_thousand_levels_in_a_readable_body_is_rejected_alone(running: Running) -> None:
    """A call nesting a thousand levels in a body that can be read is `nesting_too_deep` alone;
    the call beside it is stored."""
    deep = (b'{"type":"track","userId":"u","event":"E","messageId":"deep","properties":{"p":'
            + b"[" * 1000 + b"]" * 1000 + b"}}")
    reply = batch_json(running, b'{"batch":[' + deep + b"," + json.dumps(GOOD).encode() + b"]}")
    assert outcomes(reply) == [(REJECTED, "nesting_too_deep"), (ACCEPTED, "")]
    assert stored_ids(running) == ["good-1"]


def test_an_integer_longer_than_python_reads_rejects_only_its_call(running: Running) -> None:
    """Valid JSON with an integer of 5,000 digits in one call's properties: that call alone is
    rejected `bad_request`, naming the field and the digits, and the call beside it is stored;
    in a batch-level field it refuses the request whole, naming that field."""
    long = "9" * 5000
    body = ('{"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "long",'
            ' "properties": {"n": [1, {"x": -' + long + '}]}}, ' + json.dumps(GOOD) + "]}").encode()
    reply = batch_json(running, body)
    assert outcomes(reply) == [(REJECTED, "bad_request"), (ACCEPTED, "")]
    assert reply.results[0].message_id == "long"
    assert reply.results[0].detail.startswith("`properties` holds an integer of 5,000 digits")
    assert stored_ids(running) == ["good-1"]
    error = refused(lambda: batch_json(running, ('{"batch": [], "context": {"n": ' + long + "}}").encode()))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST")
    assert field_violations(error)[0][0] == "context"


def test_an_integer_longer_than_python_reads_in_a_json_item_rejects_that_item(running: Running) -> None:
    """A typed batch's or a stream's `json` item with an integer of 5,000 digits is rejected alone,
    naming its field, not as 'not valid JSON' with advice about Python."""
    text = ('{"type": "track", "userId": "u", "event": "E", "context": {"n": ' + "7" * 5000 + "}}").encode()
    reply = typed_batch(running, json_item(text), good_item())
    assert outcomes(reply) == [(REJECTED, "bad_request"), (ACCEPTED, "")]
    assert reply.results[0].detail.startswith("`context` holds an integer of 5,000 digits")
    streamed = stream(running, json_item(text), good_item())
    assert (streamed.rejected_count, streamed.rejected[0].reason) == (1, "bad_request")
    assert streamed.rejected[0].detail.startswith("`context` holds an integer of 5,000 digits")


def test_a_batch_json_sent_at_that_is_not_a_time_refuses_the_batch(running: Running) -> None:
    """A BatchJson batch-level `sentAt` applies to every call, so one that is not a time refuses the
    request whole: INVALID_ARGUMENT TIMESTAMP_NOT_VALID naming `sentAt`, nothing stored."""
    body = json.dumps({"batch": [GOOD], "sentAt": "9999-99-99"}).encode()
    error = refused(lambda: batch_json(running, body))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "TIMESTAMP_NOT_VALID")
    assert field_violations(error)[0][0] == "sentAt"
    assert stored_ids(running) == []


@pytest.mark.parametrize("stamp", [c[1] for c in BAD_TIMES], ids=[c[0] for c in BAD_TIMES])
def test_a_request_time_out_of_range_is_invalid_argument_naming_it(stamp: dict[str, int]) -> None:
    """The request-level time reader (a typed batch's `sent_time`) refuses a Timestamp out of range
    with TIMESTAMP_NOT_VALID naming the field, and reads a valid one as ISO-8601 text."""
    with pytest.raises(InvalidArgument) as caught:
        convert.time_or_none(ingest_pb2.BatchRequest(sent_time=timestamp_pb2.Timestamp(**stamp)), "sent_time")
    assert caught.value.reason == "TIMESTAMP_NOT_VALID"
    assert [v.field for v in caught.value.violations] == ["sent_time"]
    valid = ingest_pb2.BatchRequest(sent_time=timestamp_pb2.Timestamp(seconds=0))
    assert convert.time_or_none(valid, "sent_time") == "1970-01-01T00:00:00Z"
    assert convert.time_or_none(ingest_pb2.BatchRequest(), "sent_time") is None
