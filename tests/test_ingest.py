"""IngestService through the generated client against a real server and SQLite file."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import ingest_pb2, tracking_pb2
from google.protobuf import struct_pb2, timestamp_pb2

from audiences_server.engine.ingest import Sender
from audiences_server.store import events
from tests.conftest import Running, error_reason, field_violations, start

ACCEPTED = ingest_pb2.MESSAGE_STATUS_ACCEPTED
DUPLICATE = ingest_pb2.MESSAGE_STATUS_DUPLICATE
REJECTED = ingest_pb2.MESSAGE_STATUS_REJECTED


def struct(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def ts(text: str) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromJsonString(text)
    return out


def batch_json(running: Running, body: Any) -> ingest_pb2.BatchJsonResponse:
    request = ingest_pb2.BatchJsonRequest(body=json.dumps(body).encode())
    return running.ingest.BatchJson(request, metadata=running.auth("write"))


def stored(running: Running, message_id: str) -> dict[str, Any]:
    rows = running.query(
        "SELECT type, event, user_id, anonymous_id, group_id, ts, received_ms, body, context, extra"
        " FROM events WHERE message_id = ?", (message_id,))
    assert len(rows) == 1, f"{message_id} stored {len(rows)} times"
    names = ("type", "event", "user_id", "anonymous_id", "group_id", "ts", "received_ms", "body", "context", "extra")
    row = dict(zip(names, rows[0], strict=True))
    for key in ("body", "context", "extra"):
        row[key] = json.loads(row[key])
    return row


UNARY_CASES = [
    ("Track", ingest_pb2.TrackRequest(track=tracking_pb2.Track(
        message_id="m-track", user_id="u1", event="Order Completed", properties=struct(revenue=12.5))),
     {"type": "track", "event": "Order Completed", "user_id": "u1", "body": {"revenue": 12.5}}),
    ("Identify", ingest_pb2.IdentifyRequest(identify=tracking_pb2.Identify(
        message_id="m-identify", user_id="u1", traits=struct(email="a@example.com", plan="pro"))),
     {"type": "identify", "event": None, "body": {"email": "a@example.com", "plan": "pro"}}),
    ("Page", ingest_pb2.PageRequest(page=tracking_pb2.Page(
        message_id="m-page", anonymous_id="a1", name="Pricing", category="Docs", properties=struct(path="/pricing"))),
     {"type": "page", "event": "Page Viewed", "anonymous_id": "a1",
      "body": {"path": "/pricing", "page_name": "Pricing", "page_category": "Docs"}}),
    ("Screen", ingest_pb2.ScreenRequest(screen=tracking_pb2.Screen(
        message_id="m-screen", user_id="u1", name="Home")),
     {"type": "screen", "event": "Screen Viewed", "body": {"screen_name": "Home"}}),
    ("Group", ingest_pb2.GroupRequest(group=tracking_pb2.Group(
        message_id="m-group", user_id="u1", group_id="acme", traits=struct(employees=40))),
     {"type": "group", "group_id": "acme", "body": {"employees": 40}}),
    ("Alias", ingest_pb2.AliasRequest(alias=tracking_pb2.Alias(
        message_id="m-alias", user_id="u1", previous_id="a1")),
     {"type": "alias", "user_id": "u1", "extra": {"previousId": "a1"}}),
]


@pytest.mark.parametrize(("rpc", "request_message", "expected"), UNARY_CASES, ids=[c[0] for c in UNARY_CASES])
def test_every_call_type_is_stored(running: Running, rpc: str, request_message: Any, expected: dict[str, Any]) -> None:
    """Each unary RPC accepts its call type and stores it in the shape the evaluator reads."""
    reply = getattr(running.ingest, rpc)(request_message, metadata=running.auth("write"))
    assert reply.status == ACCEPTED
    row = stored(running, reply.message_id)
    for key, value in expected.items():
        if key == "extra":
            assert value.items() <= row["extra"].items()
        else:
            assert row[key] == value, key


def test_missing_message_id_is_assigned(running: Running) -> None:
    """A call without messageId gets one from the server, returned in the reply."""
    reply = running.ingest.Track(
        ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u1", event="Signed Up")),
        metadata=running.auth("write"))
    assert reply.message_id
    assert stored(running, reply.message_id)["event"] == "Signed Up"


def test_unary_repeat_is_a_duplicate_stored_once(running: Running) -> None:
    """Sending the same messageId twice stores it once and says `duplicate` the second time."""
    request = ingest_pb2.TrackRequest(track=tracking_pb2.Track(message_id="same", user_id="u1", event="E"))
    first = running.ingest.Track(request, metadata=running.auth("write"))
    second = running.ingest.Track(request, metadata=running.auth("write"))
    assert (first.status, second.status) == (ACCEPTED, DUPLICATE)
    assert running.query("SELECT count(*) FROM events WHERE message_id = 'same'") == [(1,)]


def test_unary_rejection_is_invalid_argument_with_reason_and_field(running: Running) -> None:
    """A refused unary call fails with INVALID_ARGUMENT, the tracking code as reason, and the field."""
    with pytest.raises(grpc.RpcError) as caught:
        running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(event="E")),
                             metadata=running.auth("write"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "NO_USER_ANON_ID"
    assert field_violations(caught.value)[0][0] == "userId"


BIG = "x" * 40_000
REJECTIONS = [
    ("not an object", ["track"], "bad_request"),
    ("unknown type", {"type": "launch", "userId": "u"}, "type_not_valid"),
    ("no type", {"userId": "u", "event": "E"}, "type_not_valid"),
    ("no ids", {"type": "track", "event": "E"}, "no_user_anon_id"),
    ("empty ids", {"type": "identify", "userId": "", "anonymousId": ""}, "no_user_anon_id"),
    ("no event", {"type": "track", "userId": "u"}, "event_not_defined"),
    ("event not string", {"type": "track", "userId": "u", "event": 12}, "event_not_string"),
    ("properties not object", {"type": "track", "userId": "u", "event": "E", "properties": [1]},
     "properties_not_object"),
    ("traits not object", {"type": "identify", "userId": "u", "traits": "pro"}, "traits_not_object"),
    ("context not object", {"type": "track", "userId": "u", "event": "E", "context": 3}, "context_not_object"),
    ("unlink not boolean", {"type": "group", "userId": "u", "groupId": "g", "context": {"unlink": "yes"}},
     "unlink_not_boolean"),
    ("integrations not object", {"type": "track", "userId": "u", "event": "E", "integrations": "all"},
     "integrations_not_object"),
    ("user id not string", {"type": "track", "userId": {"id": 1}, "event": "E"}, "id_not_string"),
    ("anonymous id bool", {"type": "track", "anonymousId": True, "event": "E"}, "id_not_string"),
    ("message id not string", {"type": "track", "userId": "u", "event": "E", "messageId": 5},
     "message_id_not_string"),
    ("message id too long", {"type": "track", "userId": "u", "event": "E", "messageId": "m" * 101},
     "message_id_too_long"),
    ("group without groupId", {"type": "group", "userId": "u"}, "group_id_not_defined"),
    ("groupId too long", {"type": "group", "userId": "u", "groupId": "g" * 501}, "group_id_too_long"),
    ("alias without previousId", {"type": "alias", "userId": "u"}, "previous_id_not_defined"),
    ("alias without userId", {"type": "alias", "previousId": "a", "anonymousId": "a"}, "user_id_not_defined"),
    ("too many properties", {"type": "track", "userId": "u", "event": "E",
                             "properties": {f"p{i}": i for i in range(301)}}, "too_many_properties"),
    ("too many traits", {"type": "identify", "userId": "u", "traits": {f"t{i}": i for i in range(301)}},
     "too_many_traits"),
    ("message over 32 KB", {"type": "track", "userId": "u", "event": "E", "properties": {"blob": BIG}},
     "message_too_large"),
    ("bad timestamp", {"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"},
     "timestamp_not_valid"),
    ("page name not string", {"type": "page", "userId": "u", "name": 4}, "name_not_string"),
]


@pytest.mark.parametrize(("call", "reason"), [c[1:] for c in REJECTIONS], ids=[c[0] for c in REJECTIONS])
def test_every_rejection_code(running: Running, call: Any, reason: str) -> None:
    """Each invalid call is rejected with the tracking API's reason code, and nothing is stored."""
    reply = batch_json(running, {"batch": [call]})
    (result,) = reply.results
    assert (result.status, result.reason) == (REJECTED, reason)
    assert result.detail
    assert running.query("SELECT count(*) FROM events") == [(0,)]


def test_batch_mixes_good_bad_and_duplicate(running: Running) -> None:
    """One bad call never rejects the good ones; repeats inside and across batches are duplicates."""
    running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(message_id="old", user_id="u", event="E")),
                         metadata=running.auth("write"))
    calls = [
        {"type": "track", "userId": "u", "event": "A", "messageId": "m1"},
        {"type": "track", "userId": "u", "messageId": "m2"},
        {"type": "track", "userId": "u", "event": "B", "messageId": "old"},
        {"type": "identify", "userId": "u", "messageId": "m3"},
        {"type": "track", "userId": "u", "event": "A", "messageId": "m1"},
    ]
    reply = batch_json(running, {"batch": calls})
    assert [(r.index, r.message_id, r.status, r.reason) for r in reply.results] == [
        (0, "m1", ACCEPTED, ""), (1, "m2", REJECTED, "event_not_defined"), (2, "old", DUPLICATE, ""),
        (3, "m3", ACCEPTED, ""), (4, "m1", DUPLICATE, ""),
    ]
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (2, 2, 1)
    assert running.query("SELECT count(*) FROM events") == [(3,)]


def test_lookups_past_one_chunk_of_values(running: Running) -> None:
    """A batch of more ids than one lookup query takes (512) finds every stored message id and
    every known user: a repeat of the whole batch is all duplicates, and new calls of the same
    users make no new profiles."""
    calls = [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}"} for i in range(1100)]
    assert batch_json(running, {"batch": calls}).accepted_count == 1100
    assert batch_json(running, {"batch": calls}).duplicate_count == 1100
    again = [{**call, "messageId": f"n{i}"} for i, call in enumerate(calls)]
    assert batch_json(running, {"batch": again}).accepted_count == 1100
    assert running.query("SELECT count(*) FROM profiles WHERE collection = 'users'") == [(1100,)]
    assert running.query("SELECT count(DISTINCT profile_id) FROM events") == [(1100,)]


def test_typed_batch_with_batch_level_fields(running: Running) -> None:
    """Batch context and integrations apply under each call's own; batch sentAt corrects skew."""
    request = ingest_pb2.BatchRequest(
        batch=[
            tracking_pb2.TrackingCall(track=tracking_pb2.Track(
                message_id="b1", user_id="u", event="E", context=struct(ip="1.2.3.4"),
                original_time=ts("2026-01-01T00:00:00Z"))),
            tracking_pb2.TrackingCall(json=b'{"type":"identify","userId":"u","messageId":"b2"}'),
            tracking_pb2.TrackingCall(json=b"{not json"),
            tracking_pb2.TrackingCall(),
        ],
        context=struct(library={"name": "svc"}, ip="0.0.0.0"),
        sent_time=ts("2026-01-01T00:00:10Z"),
    )
    reply = running.ingest.Batch(request, metadata=running.auth("write"))
    assert [r.status for r in reply.results] == [ACCEPTED, ACCEPTED, REJECTED, REJECTED]
    assert [r.reason for r in reply.results[2:]] == ["bad_request", "bad_request"]
    row = stored(running, "b1")
    assert row["context"] == {"library": {"name": "svc"}, "ip": "1.2.3.4"}
    # receivedAt − (sentAt − originalTimestamp): ten seconds before the server got it.
    assert row["ts"] == row["received_ms"] - 10_000


SKEW_CASES = [
    ("explicit timestamp wins", {"timestamp": "2026-03-01T12:00:00.123Z", "sentAt": "2030-01-01T00:00:00Z"},
     lambda rec: 1772366400123),
    ("original corrected by sentAt", {"originalTimestamp": "2026-03-01T12:00:00Z", "sentAt": "2026-03-01T12:00:05Z"},
     lambda rec: rec - 5000),
    ("original without sentAt kept", {"originalTimestamp": "2026-03-01T12:00:00+02:00"}, lambda rec: 1772359200000),
    ("nothing: receive time", {}, lambda rec: rec),
    ("sentAt alone: receive time", {"sentAt": "2020-01-01T00:00:00Z"}, lambda rec: rec),
]


@pytest.mark.parametrize(("times", "expected"), [c[1:] for c in SKEW_CASES], ids=[c[0] for c in SKEW_CASES])
def test_clock_skew_correction(running: Running, times: dict[str, str], expected: Any) -> None:
    """The stored event time follows the tracking spec's clock-skew rule, to the millisecond."""
    batch_json(running, {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "t", **times}]})
    row = stored(running, "t")
    assert row["ts"] == expected(row["received_ms"])


def test_batch_over_2500_calls_is_refused_whole(running: Running) -> None:
    """A batch over 2,500 calls is INVALID_ARGUMENT BATCH_TOO_LARGE and stores nothing."""
    calls = [{"type": "track", "userId": "u", "event": "E"}] * 2501
    with pytest.raises(grpc.RpcError) as caught:
        batch_json(running, {"batch": calls})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "BATCH_TOO_LARGE"
    assert running.query("SELECT count(*) FROM events") == [(0,)]


def test_batch_over_500_kb_is_refused_whole(running: Running) -> None:
    """A typed batch over 500 KB is refused as a whole with BATCH_TOO_LARGE."""
    track = tracking_pb2.Track(user_id="u", event="E", properties=struct(b="y" * 20_000))
    call = tracking_pb2.TrackingCall(track=track)
    with pytest.raises(grpc.RpcError) as caught:
        running.ingest.Batch(ingest_pb2.BatchRequest(batch=[call] * 30), metadata=running.auth("write"))
    assert error_reason(caught.value) == "BATCH_TOO_LARGE"


@pytest.mark.parametrize("body", [b"{oops", b"[1, 2]", b'{"batch": 3}'])
def test_unreadable_batch_body(running: Running, body: bytes) -> None:
    """A BatchJson body that is not a batch is INVALID_ARGUMENT BAD_REQUEST naming the body."""
    with pytest.raises(grpc.RpcError) as caught:
        running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=running.auth("write"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "BAD_REQUEST"
    assert field_violations(caught.value)[0][0] == "body"


def test_single_call_json_body(running: Running) -> None:
    """BatchJson also takes one call object, as the tracking API's single-call endpoints do."""
    reply = batch_json(running, {"type": "screen", "anonymousId": "a", "name": "Cart", "messageId": "s1"})
    assert reply.accepted_count == 1
    assert stored(running, "s1")["body"] == {"screen_name": "Cart"}


def test_stream_counts_and_lists_rejections(running: Running) -> None:
    """A client stream commits every good call and reports the bad ones with their index."""
    def calls() -> Any:
        for i in range(1200):
            body = {"type": "track", "userId": f"u{i % 7}", "event": "Viewed", "messageId": f"s{i}"}
            if i % 100 == 99:
                del body["event"]
            yield ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(json=json.dumps(body).encode()))
        yield ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(
            track=tracking_pb2.Track(message_id="s0", user_id="u0", event="Viewed")))

    reply = running.ingest.StreamCalls(calls(), metadata=running.auth("write"))
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (1188, 1, 12)
    assert [r.index for r in reply.rejected] == list(range(99, 1200, 100))
    assert {r.reason for r in reply.rejected} == {"event_not_defined"}
    assert running.query("SELECT count(*) FROM events") == [(1188,)]


# -- requests stored together -------------------------------------------------------------------

def _held_writer(running: Running) -> threading.Event:
    """Keeps the writer busy until the returned event is set, so that requests queue up."""
    gate, started = threading.Event(), threading.Event()

    def hold(_: Any) -> None:
        started.set()
        gate.wait(30)

    running.server.engine.writer.submit(hold)
    started.wait(30)
    return gate


def _sender(running: Running, source: str = "") -> Sender:
    return Sender(running.server.engine.auth.list_spaces()[0].space_id, source)


def test_requests_stored_together_get_their_own_results(running: Running) -> None:
    """Requests waiting for the writer share one job, yet each gets the outcome of its own calls,
    numbered within the request; a repeat of another request's call is its duplicate."""
    ingest = running.server.engine.ingest
    gate = _held_writer(running)
    first = ingest.submit(_sender(running), [
        {"type": "track", "userId": "u1", "event": "E", "messageId": "t1"},
        {"type": "track", "userId": "u1"},
        {"type": "track", "userId": "u2", "event": "E", "messageId": "t2"},
    ])
    second = ingest.submit(_sender(running, "other"), [
        {"type": "track", "userId": "u2", "event": "E", "messageId": "t2"},
        {"type": "track", "userId": "u3", "event": "E", "messageId": "t3"},
    ], offset=10)
    third = ingest.submit(_sender(running), [{"type": "track", "userId": "u1", "event": "E", "messageId": "t1"}])
    gate.set()
    assert [(r.index, r.status) for r in first.results()] == [(0, "accepted"), (1, "rejected"), (2, "accepted")]
    assert [(r.index, r.status) for r in second.results()] == [(10, "duplicate"), (11, "accepted")]
    assert [(r.index, r.status) for r in third.results()] == [(0, "duplicate")]
    assert running.query("SELECT message_id, source_id FROM events ORDER BY seq") == [
        ("t1", ""), ("t2", ""), ("t3", "other")]


class _StoreFault(Exception):
    """The fault a test makes the store raise for one message."""


def test_a_failing_request_fails_alone(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """When one of the requests stored together cannot be stored (the store fails on one of its
    calls), the others are still committed and only that request fails, as if each were alone."""
    insert = events.insert_calls

    def failing_on_b1(conn: Any, space_id: int, calls: Any, *args: Any) -> None:
        if any(call.message_id == "b1" for call in calls):
            raise _StoreFault("b1 cannot be stored")
        insert(conn, space_id, calls, *args)

    monkeypatch.setattr(events, "insert_calls", failing_on_b1)
    ingest = running.server.engine.ingest
    gate = _held_writer(running)
    good = ingest.submit(_sender(running), [{"type": "track", "userId": "u1", "event": "E", "messageId": "g1"}])
    bad = ingest.submit(_sender(running), [{"type": "track", "userId": "u2", "event": "E", "messageId": "b1"}])
    after = ingest.submit(_sender(running), [{"type": "track", "userId": "u2", "event": "E", "messageId": "g2"}])
    gate.set()
    assert [r.status for r in good.results()] == ["accepted"]
    with pytest.raises(_StoreFault):
        bad.results()
    assert [r.status for r in after.results()] == ["accepted"]
    assert running.query("SELECT message_id FROM events ORDER BY seq") == [("g1",), ("g2",)]
    assert running.query("SELECT count(*) FROM profiles") == [(2,)]


# Calls that create, attach, merge, block, link and unlink, and reuse ids after a merge.
_IDENTITY_CALLS: list[dict[str, Any]] = [
    {"type": "track", "anonymousId": "a1", "event": "Viewed"},
    {"type": "track", "anonymousId": "a2", "event": "Viewed"},
    {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "e1@x.io", "plan": "free"}},
    {"type": "alias", "userId": "u1", "previousId": "a2"},
    {"type": "track", "anonymousId": "a2", "event": "Bought"},
    {"type": "track", "userId": "u2", "anonymousId": "a1", "event": "Viewed"},
    {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    {"type": "group", "userId": "u1", "groupId": "g1", "context": {"unlink": True}},
    {"type": "group", "userId": "u2", "groupId": "g1"},
    {"type": "track", "anonymousId": "a3", "event": "Viewed", "context": {"traits": {"email": "e1@x.io"}}},
    {"type": "identify", "userId": "u3", "anonymousId": "a4", "traits": {"plan": "pro"}},
    {"type": "track", "anonymousId": "a4", "userId": "u3", "event": "Viewed", "context": {"externalIds": [
        {"type": "crm", "id": "c9", "collection": "users", "encoding": "none"}]}},
    {"type": "page", "anonymousId": "anonymous", "name": "Home"},
    {"type": "identify", "anonymousId": "a3", "userId": "u1", "traits": {"plan": "pro"}},
]


def _identity_state(running: Running) -> dict[str, Any]:
    """What identity resolution produced, with profiles named by their identifiers."""
    names = {pid: ",".join(sorted(f"{t}:{v}" for t, v in running.query(
        "SELECT id_type, id_value FROM identifiers WHERE profile_id = ?", (pid,))))
        for (pid,) in running.query("SELECT profile_id FROM profiles")}
    events = running.query("SELECT message_id, profile_id FROM events ORDER BY seq")
    survivors = running.query("SELECT profile_id FROM profiles WHERE merged_into IS NULL")
    return {
        "events": [(m, names.get(p)) for m, p in events],
        "traits": sorted((names[p], k, v) for p, k, v in running.query("SELECT profile_id, key, value FROM traits")),
        "links": sorted((names[u], names[a]) for u, a in running.query("SELECT user_id, account_id FROM links")),
        "merges": sorted((names[s], m) for s, m in running.query("SELECT survivor_id, message_id FROM merges")),
        "violations": running.query("SELECT kind, id_type, count FROM identity_violations ORDER BY kind, id_type"),
        "survivors": sorted(names[p] for (p,) in survivors),
    }


def test_one_batch_resolves_as_calls_sent_one_by_one(tmp_path: Path) -> None:
    """Identity resolution of a whole batch at once (ids looked up together, then kept up to date
    through creations and merges) ends where sending each call alone does."""
    calls = [{**call, "messageId": f"m{i}", "timestamp": f"2027-01-0{1 + i // 10}T00:00:{i % 60:02d}Z"}
             for i, call in enumerate(_IDENTITY_CALLS)]
    states = []
    for name, bodies in (("together", [{"batch": calls}]), ("alone", calls)):
        running = start(tmp_path / name / "audiences.db")
        try:
            for body in bodies:
                assert batch_json(running, body).rejected_count == 0
            states.append(_identity_state(running))
        finally:
            running.channel.close()
            running.server.stop(grace=1)
    assert states[0] == states[1]
    assert states[0]["merges"]
    assert states[0]["violations"]


class _GroupBreaker(BaseException):
    """Escapes a job's savepoint, so the writer fails its whole group."""


def test_requests_of_a_failed_group_fail_and_later_ones_are_stored(running: Running) -> None:
    """When the writer's group fails before the job holding waiting requests runs, those requests
    fail with the group's error, and requests that come later are stored as usual."""
    def breaks(_: Any) -> None:
        raise _GroupBreaker

    ingest = running.server.engine.ingest
    gate = _held_writer(running)
    running.server.engine.writer.submit(breaks)
    lost = ingest.submit(_sender(running), [{"type": "track", "userId": "u1", "event": "E", "messageId": "l1"}])
    gate.set()
    with pytest.raises(_GroupBreaker):
        lost.results()
    later = ingest.submit(_sender(running), [{"type": "track", "userId": "u1", "event": "E", "messageId": "l2"}])
    assert [r.status for r in later.results()] == ["accepted"]
    assert running.query("SELECT message_id FROM events") == [("l2",)]


def test_a_full_disk_is_unavailable_disk_full_and_nothing_is_lost(running: Running) -> None:
    """With the database unable to grow (SQLite's SQLITE_FULL, as on a full disk), a batch is
    UNAVAILABLE `DISK_FULL` over gRPC and 503 over HTTP, both retryable, with nothing of it stored;
    once there is room, the same batch is stored."""
    import base64
    import urllib.error
    import urllib.request

    body = {"batch": [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"full-{i}",
                       "properties": {"pad": "x" * 2000}} for i in range(200)]}
    writer = running.server.engine.writer
    pages = writer.run(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
    writer.run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
    try:
        with pytest.raises(grpc.RpcError) as caught:
            batch_json(running, body)
        assert (caught.value.code(), error_reason(caught.value)) == (grpc.StatusCode.UNAVAILABLE, "DISK_FULL")
        request = urllib.request.Request(f"{running.http_url}/v1/batch", data=json.dumps(body).encode(), headers={
            "Authorization": "Basic " + base64.b64encode(f"{running.tokens['write']}:".encode()).decode(),
            "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 503
        assert json.loads(refused.value.read())["code"] == "DISK_FULL"
        assert running.query("SELECT count(*) FROM events WHERE message_id LIKE 'full-%'") == [(0,)]
    finally:
        writer.run(lambda conn: conn.execute("PRAGMA max_page_count = 4294967294"))
    assert batch_json(running, body).accepted_count == 200
