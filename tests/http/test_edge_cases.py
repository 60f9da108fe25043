"""What fuzzing a running server found at the HTTP edge, each kept as a plain test: credentials and
numbers no handler expected, bodies in encodings the server does not inflate or that fail to
inflate, clients that leave mid-body, and times before the year 1000."""

from __future__ import annotations

import gzip
import logging
import socket
import time
import zlib
from typing import BinaryIO

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from audiences_server.core.tracking import format_time
from tests.http.conftest import Site, basic, send

TRACK = b'{"userId": "ada", "event": "Order Completed"}'


def _profile_url(site: Site, address: str, endpoint: str) -> str:
    return f"{site.running.http_url}/v1/spaces/{site.name}/collections/users/profiles/{address}/{endpoint}"


def _calls(site: Site, method: str, code: str) -> float:
    """`audiences_calls_total` of an HTTP route and status, read from /metrics."""
    text = send(f"{site.running.http_url}/metrics", b"", method="GET").raw.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "audiences_calls_total" and sample.labels == {
                    "transport": "http", "method": method, "code": code}:
                return sample.value
    return 0.0


def _unhandled(records: list[logging.LogRecord]) -> list[str]:
    """What aiohttp itself logged as an error (plain text, outside the JSON log)."""
    return [record.getMessage() for record in records if record.name.startswith("aiohttp")
            and record.levelno >= logging.ERROR]


def _request(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _response(stream: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """One response read off a connection: status, headers (lower-case names) and body."""
    status = stream.readline()
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status.split()[1]), headers, stream.read(int(headers.get("content-length", "0")))


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Basic \u00c3\u00a9", "Basic \u00ff\u00fe", "\u00c3\u00a9 abc"])
def test_a_non_ascii_authorization_header_is_401(site: Site, header: str) -> None:
    """An Authorization header of bytes that are not ASCII (sent as raw UTF-8 or Latin-1) is 401
    TOKEN_MALFORMED on the tracking API and the Profile API, not a failure inside."""
    tracked = site.post("/v1/track", TRACK, {"Authorization": header}, auth=False)
    read = send(_profile_url(site, "user_id:ada", "traits"), b"", {"Authorization": header}, method="GET")
    for reply in (tracked, read):
        assert (reply.status, reply.body["error"]["reason"]) == (401, "TOKEN_MALFORMED")
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert tracked.body["code"] == "TOKEN_MALFORMED"
    assert site.events() == []


def test_a_lone_surrogate_as_the_body_key_is_401(site: Site) -> None:
    """A `writeKey` in the body that is a lone surrogate (`\\ud800`, which UTF-8 cannot write) is an
    unknown key: 401 TOKEN_UNKNOWN in the tracking API's shape, and nothing is stored."""
    reply = site.post("/v1/track", b'{"userId": "wk1", "event": "E", "writeKey": "\\ud800"}', auth=False)
    assert (reply.status, reply.body["success"], reply.body["code"]) == (401, False, "TOKEN_UNKNOWN")
    assert reply.body["error"]["reason"] == "TOKEN_UNKNOWN"
    assert site.events() == []


def test_the_origin_refusal_says_the_space_does_not_allow_it(site: Site) -> None:
    """The 403 for a page of an origin its key's space does not allow says so ("does not allow")."""
    reply = site.post("/v1/track", TRACK, {"Origin": "https://evil.example"})
    assert (reply.status, reply.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert reply.body["message"].startswith(
        f"space {site.name!r} does not allow calls from pages of origin 'https://evil.example'")


# -- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["9" * 5000, "1" + "0" * 4400], ids=["5000-nines", "10**4400"])
def test_a_limit_of_thousands_of_digits_is_400(site: Site, limit: str) -> None:
    """A `limit` longer than Python converts to an integer (4,300 digits) is 400 LIMIT_INVALID."""
    reply = send(f"{_profile_url(site, 'user_id:ada', 'traits')}?limit={limit}", b"",
                 basic(site.tokens["read"]), method="GET")
    assert (reply.status, reply.body["error"]["reason"]) == (400, "LIMIT_INVALID")


def test_leading_zeros_do_not_make_a_limit_too_long(site: Site) -> None:
    """A `limit` of thousands of leading zeros before a small number is that number, as before."""
    site.post("/v1/identify", {"userId": "zeros", "traits": {"plan": "pro"}})
    reply = send(f"{_profile_url(site, 'user_id:zeros', 'traits')}?limit={'0' * 5000}7", b"",
                 basic(site.tokens["read"]), method="GET")
    assert reply.status == 200
    assert reply.body["cursor"]["limit"] == 7


# -- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ms", "text"), [
    (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
    (-30_641_760_000_000, "0999-01-01T00:00:00.000Z"),
    (-59_042_995_199_999, "0099-01-01T00:00:00.001Z"),
    (0, "1970-01-01T00:00:00.000Z"),
    (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
])
def test_times_always_have_four_digit_years(ms: int, text: str) -> None:
    """Output times are ISO-8601 with a four-digit year, also before the year 1000."""
    assert format_time(ms) == text


def test_an_event_of_the_year_999_reads_back_with_a_padded_year(site: Site) -> None:
    """An event timed in the year 999 comes back from the Profile API as `0999-…`, as sent."""
    stored = site.post("/v1/identify", {"userId": "old", "traits": {"plan": "x"}, "messageId": "m-999",
                                        "timestamp": "0999-06-01T00:00:00Z"})
    assert stored.status == 200
    site.post("/v1/track", {"userId": "old", "event": "E", "timestamp": "0050-06-01T00:00:00Z"})
    body = send(_profile_url(site, "user_id:old", "events"), b"", basic(site.tokens["read"]), method="GET").body
    assert [event["timestamp"] for event in body["data"]] == ["0050-06-01T00:00:00.000Z"]


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip"])
def test_an_encoding_the_server_does_not_inflate_is_its_own_json_400(site: Site, encoding: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A Content-Encoding the server does not inflate, even one aiohttp knows by name (br, zstd),
    is the tracking API's JSON 400 CONTENT_ENCODING_UNSUPPORTED with its request id, and aiohttp
    logs nothing of its own."""
    reply = site.post("/v1/track", TRACK, {"Content-Encoding": encoding})
    assert (reply.status, reply.body["success"], reply.body["code"]) == (400, False, "CONTENT_ENCODING_UNSUPPORTED")
    assert reply.headers["x-request-id"]
    assert _unhandled(caplog.records) == []
    assert site.events() == []


def test_two_content_encoding_headers_are_refused(site: Site) -> None:
    """Two Content-Encoding headers (identity, then gzip) describe a body encoded twice: refused,
    whatever the first one says."""
    with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=10) as sock:
        auth = "Authorization: " + basic(site.write_key)["Authorization"]
        sock.sendall(_request("/v1/track", gzip.compress(TRACK), auth, "Content-Encoding: identity",
                              "Content-Encoding: gzip"))
        status, _, body = _response(sock.makefile("rb"))
    assert (status, b"CONTENT_ENCODING_UNSUPPORTED" in body) == (400, True)


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", b"\x1f\x8b\x08\x00 certainly not gzip"),
    ("gzip", b"plainly not compressed"),
    ("gzip", gzip.compress(TRACK)[:-8]),
    ("gzip", gzip.compress(TRACK) + b"junk"),
    ("deflate", b"\x78\x9c not deflate either"),
], ids=["bad-gzip-data", "no-gzip-header", "no-gzip-trailer", "junk-after-gzip", "bad-deflate-data"])
def test_a_body_that_fails_to_inflate_leaves_the_connection_usable(site: Site, encoding: str, body: bytes,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A body that is not valid gzip or deflate is 400 BAD_REQUEST, nothing is logged outside the
    JSON log, and the next request pipelined on the same connection is answered."""
    auth = "Authorization: " + basic(site.write_key)["Authorization"]
    bad = _request("/v1/track", body, auth, f"Content-Encoding: {encoding}")
    good = _request("/v1/track", b'{"userId": "after", "event": "E"}', auth)
    with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=10) as sock:
        sock.sendall(bad + good)
        stream = sock.makefile("rb")
        first, _, refused = _response(stream)
        second, _, accepted = _response(stream)
    assert (first, b'"BAD_REQUEST"' in refused) == (400, True)
    assert (second, accepted) == (200, b'{"success":true}')
    time.sleep(0.2)
    assert _unhandled(caplog.records) == []
    assert [event["userId"] for event in site.events()] == ["after"]


def test_gzip_members_one_after_another_are_one_body(site: Site) -> None:
    """A gzip body of several members (concatenated files) is inflated whole, as before."""
    body = gzip.compress(b'{"userId": "members", ') + gzip.compress(b'"event": "E"}')
    reply = site.post("/v1/track", body, {"Content-Encoding": "gzip"})
    assert reply.status == 200
    assert [event["userId"] for event in site.events()] == ["members"]


def test_x_gzip_is_read_as_gzip(site: Site) -> None:
    """`x-gzip`, the name HTTP says to read as gzip, is inflated like `gzip`."""
    reply = site.post("/v1/track", gzip.compress(b'{"userId": "x-gzip", "event": "E"}'), {"Content-Encoding": "x-gzip"})
    assert reply.status == 200
    assert [event["userId"] for event in site.events()] == ["x-gzip"]


def test_a_compressed_body_padded_past_the_limit_as_sent_is_refused(site: Site) -> None:
    """A gzip body that inflates within the limit but is sent far larger (members that inflate to
    nothing after the call) is refused as too large, not read for as long as it is sent."""
    padding = gzip.compress(b"") * (600_000 // len(gzip.compress(b"")))
    reply = site.post("/v1/track", gzip.compress(b'{"userId": "padded", "event": "E"}') + padding,
                      {"Content-Encoding": "gzip"})
    assert (reply.status, reply.body["code"]) == (400, "MESSAGE_TOO_LARGE")
    assert site.events() == []


def test_raw_deflate_is_inflated_too(site: Site) -> None:
    """A deflate body without zlib's header (raw deflate, which some clients send) is inflated."""
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    reply = site.post("/v1/track", packer.compress(TRACK) + packer.flush(), {"Content-Encoding": "deflate"})
    assert reply.status == 200


# -- clients that leave -----------------------------------------------------------------------


def test_a_client_leaving_mid_body_is_499_not_a_server_error(site: Site) -> None:
    """A client that closes its connection before sending the body it announced is logged at info
    as gone and counted with code 499, not as a 500 with a traceback."""
    route = "POST /v1/track"
    before = (_calls(site, route, "499"), _calls(site, route, "500"))
    with capture_logs() as logged:
        with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=10) as sock:
            head = f"POST /v1/track HTTP/1.1\r\nHost: test\r\nAuthorization: {basic(site.write_key)['Authorization']}"
            sock.sendall(f"{head}\r\nContent-Length: 100\r\n\r\n".encode() + TRACK[:29])
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while _calls(site, route, "499") == before[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert (_calls(site, route, "499"), _calls(site, route, "500")) == (before[0] + 1, before[1])
    assert [entry for entry in logged if entry["log_level"] in ("error", "critical")] == []
    gone = [entry for entry in logged if entry["event"] == "http_client_gone"]
    assert [(entry["log_level"], entry["route"]) for entry in gone] == [("info", "/v1/track")]


def test_what_aiohttp_logs_of_a_malformed_request_is_a_line_of_the_log(site: Site) -> None:
    """A request aiohttp cannot parse (a chunk size that is no number) is answered by aiohttp
    itself; what it logs goes through the server's log, one structured record naming its logger,
    not plain text around the JSON lines."""
    with capture_logs() as logged:
        with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=10) as sock:
            sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            status, _, _ = _response(sock.makefile("rb"))
        deadline = time.monotonic() + 10
        while not [e for e in logged if e.get("logger", "").startswith("aiohttp")] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert status == 400
    theirs = [entry for entry in logged if entry.get("logger", "").startswith("aiohttp")]
    assert theirs
    assert all(isinstance(entry["event"], str) for entry in theirs)
