"""Segment's HTTP tracking API through a real server and a real HTTP client: paths, auth, bodies,
limits, statuses, per-call rejections, backpressure, and what the calls become."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
import urllib.error
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from audiences_server.http import tracking
from audiences_server.http.tracking import SINGLE_PATHS
from audiences_server.testing import ServerProcess
from tests.conftest import start
from tests.http.conftest import Site, basic, new_site, send

# A valid call of each type, without its `type`.
CALLS: dict[str, dict[str, Any]] = {
    "track": {"userId": "ada", "event": "Order Completed", "properties": {"revenue": 12}},
    "identify": {"userId": "ada", "traits": {"plan": "pro", "email": "ada@example.com"}},
    "page": {"userId": "ada", "name": "Home", "category": "Docs"},
    "screen": {"userId": "ada", "name": "Settings"},
    "group": {"userId": "ada", "groupId": "acme", "traits": {"name": "Acme"}},
    "alias": {"userId": "ada", "previousId": "anon-1"},
}


def every_type() -> list[dict[str, Any]]:
    """One call of each type, typed, with message ids."""
    return [{"type": kind, "messageId": f"m-{kind}", **call} for kind, call in CALLS.items()]


def messages(site: Site, outcome: str, reason: str = "") -> float:
    """The `audiences_messages` count of an outcome and reason, read from /metrics."""
    text = send(f"{site.running.http_url}/metrics", b"", method="GET").raw.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "audiences_messages_total" and sample.labels == {"outcome": outcome, "reason": reason}:
                return sample.value
    return 0.0


@pytest.mark.parametrize(("path", "kind"), sorted(SINGLE_PATHS.items()))
def test_each_single_call_path_stores_a_call_of_its_type(site: Site, path: str, kind: str) -> None:
    """Every single-call path, Segment's and analytics.js's one-letter ones, answers 200
    `{"success": true}` and stores one call of the type its path names (the body has none)."""
    reply = site.post(f"/v1/{path}", CALLS[kind])
    assert (reply.status, reply.body) == (200, {"success": True})
    assert reply.headers["Content-Type"].startswith("application/json")
    [event] = site.events()
    assert event["type"] == kind
    assert event["userId"] == "ada"


def test_page_and_screen_paths_store_viewed_events(site: Site) -> None:
    """Over HTTP too, a page call is the event `Page Viewed` and a screen call `Screen Viewed`,
    their name and category as properties."""
    site.post("/v1/p", CALLS["page"])
    site.post("/v1/screen", CALLS["screen"])
    page, screen = site.events()
    assert (page["event"], page["body"]) == ("Page Viewed", {"page_name": "Home", "page_category": "Docs"})
    assert (screen["event"], screen["body"]) == ("Screen Viewed", {"screen_name": "Settings"})


def test_the_path_sets_the_type_over_the_body(site: Site) -> None:
    """A single-call path's type wins over a `type` in the body that disagrees, as on Segment's API."""
    reply = site.post("/v1/track", {"type": "identify", **CALLS["track"]})
    assert reply.status == 200
    assert [(e["type"], e["event"]) for e in site.events()] == [("track", "Order Completed")]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/b"])
def test_batch_paths_store_every_call_with_the_batch_fields(site: Site, path: str) -> None:
    """`/v1/batch`, `/v1/import` and analytics.js's `/v1/b` store every call of the batch, the
    batch's `context` merged under each call's and its `integrations` kept with each call."""
    body = {"batch": every_type(), "context": {"ip": "10.0.0.1"}, "integrations": {"All": False},
            "sentAt": "2027-01-15T08:00:00Z"}
    reply = site.post(path, body)
    assert (reply.status, reply.body) == (200, {"success": True})
    events = site.events()
    assert [e["type"] for e in events] == list(CALLS)
    assert all(e["context"] == {"ip": "10.0.0.1"} for e in events)
    assert all(e["extra"]["integrations"] == {"All": False} for e in events)


def test_a_batch_body_with_one_call_object_is_read_as_batch_json_reads_it(site: Site) -> None:
    """A batch path given one call object with a `type` (no `batch` list) stores that call, as
    `BatchJson` does with the same body."""
    reply = site.post("/v1/batch", {"type": "track", **CALLS["track"]})
    assert reply.status == 200
    assert [e["type"] for e in site.events()] == ["track"]


def test_write_key_in_the_body_authenticates_and_is_never_stored(site: Site) -> None:
    """analytics.js's form: `writeKey` in the body (at the top and in each call), Content-Type
    text/plain, no Authorization header; the calls are stored and the key is in none of them."""
    plain = {"Content-Type": "text/plain"}
    call = {**CALLS["track"], "writeKey": site.write_key}
    single = site.post("/v1/t", call, plain, auth=False)
    batch = site.post("/v1/b", {"batch": [{"type": "track", **call}], "writeKey": site.write_key}, plain, auth=False)
    assert (single.status, batch.status) == (200, 200)
    events = site.events()
    assert len(events) == 2
    assert site.write_key not in json.dumps(events)


def test_basic_wins_over_a_disagreeing_body_key(site: Site) -> None:
    """With both, HTTP Basic decides: a good Basic key stores in its own space whatever key the
    body holds, and a bad Basic key is 401 even beside a good body key."""
    other = new_site(site.running)
    good = site.post("/v1/track", {**CALLS["track"], "writeKey": other.write_key})
    bad = site.post("/v1/track", {**CALLS["track"], "writeKey": site.write_key}, basic("aud_write_unknown"))
    assert (good.status, bad.status) == (200, 401)
    assert len(site.events()) == 1
    assert other.events() == []


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "TOKEN_MISSING"),
    (basic("aud_write_unknown"), "TOKEN_UNKNOWN"),
    ({"Authorization": "Bearer an-access-token"}, "TOKEN_MISSING"),
    ({"Authorization": "Digest aud_write_unknown"}, "TOKEN_MALFORMED"),
    ({"Authorization": "Basic %%%"}, "TOKEN_MALFORMED"),
])
def test_bad_credentials_are_401(site: Site, headers: dict[str, str], reason: str) -> None:
    """No key, an unknown key or a malformed Authorization header is 401 with WWW-Authenticate and
    a JSON body giving the reason (also as top-level `code` and `message`, which Segment's
    libraries log); nothing is stored."""
    reply = site.post("/v1/track", CALLS["track"], headers, auth=False)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert reply.body["success"] is False
    assert reply.body["code"] == reply.body["error"]["reason"] == reason
    assert reply.body["message"]
    assert site.events() == []


def test_segments_oauth_form_is_authenticated_by_the_body_key(site: Site) -> None:
    """Segment's OAuth form, `Authorization: Bearer <access token>` with the write key in the body
    (what analytics-python sends with OAuth on): the access token is not the server's to check,
    and the body's key authenticates as without it; an unknown body key is still 401."""
    bearer = {"Authorization": "Bearer an-access-token"}
    reply = site.post("/v1/batch", {"batch": every_type(), "writeKey": site.write_key}, bearer, auth=False)
    assert (reply.status, reply.body) == (200, {"success": True})
    assert len(site.events()) == len(CALLS)
    reply = site.post("/v1/batch", {"batch": every_type(), "writeKey": "aud_write_unknown"}, bearer, auth=False)
    assert (reply.status, reply.body["code"]) == (401, "TOKEN_UNKNOWN")


def test_an_unknown_body_key_is_401(site: Site) -> None:
    """A `writeKey` in the body that the server does not know is 401 TOKEN_UNKNOWN."""
    reply = site.post("/v1/b", {"batch": every_type(), "writeKey": "aud_write_unknown"}, auth=False)
    assert (reply.status, reply.body["code"]) == (401, "TOKEN_UNKNOWN")
    assert site.events() == []


@pytest.mark.parametrize("scope", ["read", "admin"])
def test_a_key_of_another_scope_is_403(site: Site, scope: str) -> None:
    """A known token that is not a write token is 403 SCOPE_MISSING, in Basic or in the body."""
    by_header = site.post("/v1/track", CALLS["track"], basic(site.tokens[scope]))
    in_body = site.post("/v1/track", {**CALLS["track"], "writeKey": site.tokens[scope]}, auth=False)
    assert (by_header.status, in_body.status) == (403, 403)
    assert by_header.body["code"] == in_body.body["code"] == "SCOPE_MISSING"
    assert site.events() == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_inflated(site: Site, encoding: str) -> None:
    """A body with Content-Encoding gzip (analytics-python's `gzip=True`) or deflate is inflated."""
    body = json.dumps({"batch": every_type()}).encode()
    data = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    reply = site.post("/v1/batch", data, {"Content-Encoding": encoding})
    assert (reply.status, reply.body) == (200, {"success": True})
    assert len(site.events()) == len(CALLS)


def test_a_body_that_is_not_valid_gzip_is_400(site: Site) -> None:
    """A body said to be gzip that is not is 400 BAD_REQUEST."""
    reply = site.post("/v1/batch", b"\x1f\x8b\x08\x00 certainly not gzip", {"Content-Encoding": "gzip"})
    assert (reply.status, reply.body["code"]) == (400, "BAD_REQUEST")


def test_an_unsupported_content_encoding_is_400(site: Site) -> None:
    """A Content-Encoding other than gzip, deflate or identity is 400 CONTENT_ENCODING_UNSUPPORTED."""
    reply = site.post("/v1/batch", {"batch": every_type()}, {"Content-Encoding": "compress"})
    assert (reply.status, reply.body["code"]) == (400, "CONTENT_ENCODING_UNSUPPORTED")
    assert site.events() == []


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/track", b"not json"),
    ("/v1/track", b'"a string"'),
    ("/v1/batch", b"[1, 2]"),
    ("/v1/batch", b'{"batch": {"type": "track"}}'),
    ("/v1/batch", b"\xff\xfe"),
])
def test_a_body_that_is_not_a_json_object_is_400(site: Site, path: str, body: bytes) -> None:
    """A body that is not JSON, not an object, or (on a batch path) holds no `batch` list is 400
    BAD_REQUEST with a JSON error body."""
    reply = site.post(path, body)
    assert (reply.status, reply.body["success"], reply.body["code"]) == (400, False, "BAD_REQUEST")


@pytest.mark.parametrize("body", [b'[{"userId": "a", "event": "E"}]', b"null"])
def test_a_single_call_path_says_it_wants_one_call_object(site: Site, body: bytes) -> None:
    """On a single-call path the path sets the type: a body that is not an object is told so,
    not about the batch shape."""
    reply = site.post("/v1/track", body)
    assert (reply.status, reply.body["code"]) == (400, "BAD_REQUEST")
    assert reply.body["message"] == "the body must be one track call, a JSON object"


def _times(site: Site) -> list[tuple[str, int, int]]:
    return [tuple(row) for row in site.running.query(
        "SELECT message_id, ts, received_ms FROM events WHERE space_id = ? ORDER BY seq", (site.space_id,))]


def test_a_client_side_call_is_corrected_for_the_devices_clock(site: Site) -> None:
    """analytics.js sends `timestamp` and `sentAt` from the browser's clock: on its paths the
    event time is receivedAt − (sentAt − timestamp), the sent time kept as `originalTimestamp`,
    as Segment's servers do. On the server libraries' paths an explicit `timestamp` is the event
    time as sent (a back-fill keeps its times), and so is one with no `sentAt`."""
    plain = {"Content-Type": "text/plain"}
    skewed = {"userId": "ada", "event": "Clicked", "timestamp": "2020-01-01T00:00:00.000Z",
              "sentAt": "2020-01-01T00:00:00.050Z", "writeKey": site.write_key}
    assert site.post("/v1/t", {**skewed, "messageId": "browser"}, plain, auth=False).status == 200
    batch = {"batch": [{"type": "track", **{k: v for k, v in skewed.items() if k != "sentAt"}, "messageId": "mobile"}],
             "sentAt": "2020-01-01T00:00:00.050Z", "writeKey": site.write_key}
    assert site.post("/v1/b", batch, plain, auth=False).status == 200
    assert site.post("/v1/track", {**skewed, "messageId": "server"}).status == 200
    no_sent = {k: v for k, v in skewed.items() if k != "sentAt"}
    assert site.post("/v1/t", {**no_sent, "messageId": "unsent"}, plain, auth=False).status == 200
    times = {message_id: (ts, received) for message_id, ts, received in _times(site)}
    epoch_2020 = 1_577_836_800_000
    assert times["browser"][0] == times["browser"][1] - 50
    assert times["mobile"][0] == times["mobile"][1] - 50
    assert times["server"][0] == times["unsent"][0] == epoch_2020
    browser = next(e for e in site.events() if e["messageId"] == "browser")
    assert browser["extra"]["originalTimestamp"] == "2020-01-01T00:00:00.000Z"


def test_a_client_side_or_direct_call_gets_the_senders_address(site: Site) -> None:
    """A call on a client-side path, or with `context.direct: true`, gets the address it came from
    as `context.ip` unless it (or its batch) has one; other calls are stored as sent."""
    plain = {"Content-Type": "text/plain"}
    call = {"userId": "ada", "event": "Clicked", "writeKey": site.write_key}
    site.post("/v1/t", {**call, "messageId": "browser"}, plain, auth=False)
    site.post("/v1/t", {**call, "messageId": "own", "context": {"ip": "203.0.113.9"}}, plain, auth=False)
    site.post("/v1/track", {**call, "messageId": "direct", "context": {"direct": True}})
    site.post("/v1/track", {**call, "messageId": "server"})
    site.post("/v1/b", {"batch": [{"type": "track", **call, "messageId": "batched"}], "context": {"ip": "198.51.100.7"},
                        "writeKey": site.write_key}, plain, auth=False)
    contexts = {e["messageId"]: e["context"] for e in site.events()}
    assert contexts == {"browser": {"ip": "127.0.0.1"}, "own": {"ip": "203.0.113.9"},
                        "direct": {"direct": True, "ip": "127.0.0.1"}, "server": {}, "batched": {"ip": "198.51.100.7"}}


def test_segments_batch_example_times_are_read(site: Site) -> None:
    """The times of Segment's own batch example (`2015-2-02T00:30:08.276Z`: a month of one digit)
    and a lower-case `t` or `z`, which Segment's API takes, are read; a month 13 is refused."""
    for message_id, text in (("one-digit", "2015-2-02T00:30:08.276Z"), ("lower", "2015-02-02t00:30:08.276z")):
        reply = site.post("/v1/track", {"userId": "ada", "event": "E", "messageId": message_id, "timestamp": text})
        assert reply.status == 200
    assert [ts for _, ts, _ in _times(site)] == [1_422_837_008_276] * 2
    reply = site.post("/v1/track", {"userId": "ada", "event": "E", "timestamp": "2015-13-02T00:30:08Z"})
    assert (reply.status, reply.body["code"]) == (400, "TIMESTAMP_NOT_VALID")


def test_a_call_over_32_kb_is_400_and_one_under_is_stored(site: Site) -> None:
    """A single call over 32 KB is 400 MESSAGE_TOO_LARGE, Segment's status for a payload too
    large; a call of 30 KB is stored."""
    over = site.post("/v1/track", {**CALLS["track"], "properties": {"text": "x" * (33 * 1024)}})
    under = site.post("/v1/track", {**CALLS["track"], "properties": {"text": "x" * (30 * 1024)}})
    assert (over.status, over.body["code"]) == (400, "MESSAGE_TOO_LARGE")
    assert under.status == 200
    assert len(site.events()) == 1


def test_a_batch_over_500_kb_is_400_whether_plain_or_compressed(site: Site) -> None:
    """A batch body over 500 KB is 400 BATCH_TOO_LARGE, both when its Content-Length says so and
    when it only inflates past the limit; nothing of it is stored."""
    calls = [{"type": "track", "userId": f"u{i}", "event": "E", "properties": {"pad": "x" * 1000}} for i in range(600)]
    body = json.dumps({"batch": calls}).encode()
    plain = site.post("/v1/batch", body)
    packed = site.post("/v1/batch", gzip.compress(body), {"Content-Encoding": "gzip"})
    assert (plain.status, plain.body["code"]) == (400, "BATCH_TOO_LARGE")
    assert (packed.status, packed.body["code"]) == (400, "BATCH_TOO_LARGE")
    assert site.events() == []


def test_a_batch_of_more_than_2500_calls_is_400(site: Site) -> None:
    """More than 2,500 calls in one batch is 400 BATCH_TOO_LARGE (the engine's limit, as for
    `BatchJson`); nothing of it is stored."""
    calls = [{"type": "track", "userId": "u", "event": "E"} for _ in range(2501)]
    reply = site.post("/v1/batch", {"batch": calls})
    assert (reply.status, reply.body["code"]) == (400, "BATCH_TOO_LARGE")
    assert site.events() == []


def test_an_integer_longer_than_python_reads_rejects_only_its_call(site: Site) -> None:
    """A batch whose one call holds an integer of 5,000 digits (valid JSON) is 200 with that call
    listed as rejected and the other stored; as a single call, it is a 400 naming the field."""
    long = "9" * 5000
    body = ('{"batch": [{"type": "track", "userId": "ada", "event": "A", "messageId": "m1"}, {"type": "track",'
            ' "userId": "ada", "event": "B", "messageId": "m2", "properties": {"n": ' + long + "}}]}").encode()
    reply = site.post("/v1/batch", body)
    assert reply.status == 200
    assert [(r["index"], r["messageId"], r["reason"]) for r in reply.body["rejected"]] == [(1, "m2", "bad_request")]
    assert [e["messageId"] for e in site.events()] == ["m1"]
    single = site.post("/v1/track", ('{"userId": "ada", "event": "C", "properties": {"n": ' + long + "}}").encode())
    assert (single.status, single.body["code"]) == (400, "BAD_REQUEST")
    assert single.body["message"].startswith("`properties` holds an integer of 5,000 digits")


def test_rejected_calls_of_a_batch_are_listed_and_the_good_ones_stored(site: Site) -> None:
    """One bad call never refuses the others: 200 with `success: true`, each refused call listed
    with its index, messageId, reason and detail, the good calls stored, every outcome counted
    in /metrics."""
    rejected_before = messages(site, "rejected", "no_user_anon_id")
    accepted_before = messages(site, "accepted")
    batch = [
        {"type": "track", "userId": "ada", "event": "A", "messageId": "m1"},
        {"type": "track", "event": "B", "messageId": "m2"},
        {"type": "track", "userId": "ada", "messageId": "m3"},
        {"type": "identify", "userId": "ada", "messageId": "m4"},
    ]
    reply = site.post("/v1/batch", {"batch": batch})
    assert reply.status == 200
    assert reply.body == {"success": True, "rejected": [
        {"index": 1, "messageId": "m2", "reason": "no_user_anon_id",
         "detail": "a call needs `userId` or `anonymousId`"},
        {"index": 2, "messageId": "m3", "reason": "event_not_defined", "detail": "a track call needs `event`"},
    ]}
    assert [e["messageId"] for e in site.events()] == ["m1", "m4"]
    assert messages(site, "rejected", "no_user_anon_id") == rejected_before + 1
    assert messages(site, "accepted") == accepted_before + 2


def test_a_rejected_single_call_is_400_with_its_reason(site: Site) -> None:
    """A single call the tracking spec refuses is 400 with its reason, and counted as rejected."""
    before = messages(site, "rejected", "previous_id_not_defined")
    reply = site.post("/v1/alias", {"userId": "ada"})
    assert reply.status == 400
    assert reply.body["code"] == reply.body["error"]["reason"] == "PREVIOUS_ID_NOT_DEFINED"
    assert "previousId" in reply.body["message"]
    assert messages(site, "rejected", "previous_id_not_defined") == before + 1
    assert site.events() == []


def test_a_repeated_message_id_is_acknowledged_and_stored_once(site: Site) -> None:
    """Resending a call, as a library does after a timeout, answers 200 again and stores it once."""
    before = messages(site, "duplicate")
    call = {"type": "track", "messageId": "again", **CALLS["track"]}
    replies = [site.post("/v1/batch", {"batch": [call]}), site.post("/v1/track", call)]
    assert [r.status for r in replies] == [200, 200]
    assert [e["messageId"] for e in site.events()] == ["again"]
    assert messages(site, "duplicate") == before + 1


def test_calls_resolve_into_profiles_and_move_a_live_audience(site: Site) -> None:
    """What arrives over HTTP is what arrives over gRPC: identities merge into one profile (read
    back through the gRPC Profiles API), and a live audience admits its member at the next tick."""
    site.create_audience("buyers", "event('Order Completed').count() >= 1")
    site.tick()
    site.post("/v1/i", {"anonymousId": "dev-1", "traits": {"plan": "pro"}})
    site.post("/v1/batch", {"batch": [
        {"type": "identify", "userId": "ada", "anonymousId": "dev-1", "traits": {"email": "ada@example.com"}},
        {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 12}},
    ]})
    assert site.traits("user_id:ada").get("buyers") is not True
    site.tick()
    traits = site.traits("anonymous_id:dev-1")
    assert traits["plan"] == "pro"
    assert traits["email"] == "ada@example.com"
    assert traits["buyers"] is True
    assert {"user_id:ada", "anonymous_id:dev-1", "email:ada@example.com"} <= site.external_ids("user_id:ada")


def test_bodies_past_the_read_budget_are_429(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bytes of request bodies the server holds at once, a request is refused with 429
    REQUESTS_SATURATED and Retry-After before it is read further; the bytes held are given back,
    so the next request within the budget passes."""
    body = json.dumps({"batch": every_type()}).encode()
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES", len(body) - 1)
    refused = site.post("/v1/batch", body)
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES", len(body))
    passed = site.post("/v1/batch", body)
    again = site.post("/v1/batch", body)
    assert (refused.status, refused.body["code"], refused.headers["Retry-After"]) == (429, "REQUESTS_SATURATED", "1")
    assert (passed.status, again.status) == (200, 200)
    assert len(site.events()) == len(CALLS)


def test_a_saturated_writer_answers_429_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When too many calls wait for the writer, a request is refused whole with 429, Retry-After
    and X-RateLimit-Reset (what Segment's libraries wait on before retrying); the calls already
    waiting are stored once the writer moves on, the refused ones are not."""
    running = start(tmp_path / "saturated.db")
    gate = threading.Event()
    try:
        site = new_site(running)
        ingest = running.server.engine.ingest
        monkeypatch.setattr(ingest._waiting, "_max_waiting", 1)
        running.server.engine.writer.submit(lambda _conn: gate.wait(30))
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(site.post, "/v1/track", {"messageId": "first", **CALLS["track"]})
            deadline = time.monotonic() + 10
            while ingest.waiting == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = site.post("/v1/track", {"messageId": "refused", **CALLS["track"]})
            gate.set()
            assert first.result(timeout=30).status == 200
        assert (refused.status, refused.body["code"]) == (429, "WRITER_SATURATED")
        assert refused.headers["Retry-After"] == refused.headers["X-RateLimit-Reset"] == "1"
        assert [e["messageId"] for e in site.events()] == ["first"]
    finally:
        gate.set()
        running.channel.close()
        running.server.stop(grace=1)


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _inflating_to(size: int) -> bytes:
    """A gzip body starting a batch and then inflating to `size` bytes of blanks in all.

    After a full flush deflate starts afresh, so each MiB of blanks packs to the same bytes: the
    body repeats them instead of packing a GiB (its trailer is not the real checksum, and the
    server must stop reading long before it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    blanks = b" " * (1 << 20)
    head = packer.compress(b'{"batch": [') + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(blanks) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + block * (size >> 20) + packer.compress(b"]}") + packer.flush()


def test_a_compression_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A gzip body inflating to 1 GiB is refused (400, or the connection closed once the server stops
    reading), the server's peak memory grows by far less than the inflated size, and the server
    goes on answering."""
    server = ServerProcess(tmp_path / "bomb.db")
    try:
        url = f"{server.http_url}/v1/batch"
        key = basic(server.tokens["write"])
        assert send(url, json.dumps({"batch": every_type()}).encode(), key).status == 200
        before = _peak_rss_bytes(server.proc.pid)
        bomb = _inflating_to(1 << 30)
        try:
            status = send(url, bomb, {**key, "Content-Encoding": "gzip"}).status
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError):
            status = 0  # closed before the answer could be read: allowed for a bomb
        grown = _peak_rss_bytes(server.proc.pid) - before
        assert status in {0, 400}
        assert grown < 64 << 20, f"peak memory grew by {grown >> 20} MiB"
        assert send(url, json.dumps({"batch": every_type()}).encode(), key).status == 200
    finally:
        server.stop()
