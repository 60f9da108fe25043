"""The tracking API's bodies against clients that stall (`http.tracking`): a body has a deadline,
after which it is refused (408) and its bytes given back; one client address holds at most its
share of the bytes held; bodies whose key was not checked first have a budget of their own.

The figures are set small on the shared server for each test (the API reads them as it goes);
every wait is on what the server does, within a generous timeout."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from audiences_server.http import tracking
from audiences_server.http.tracking import TRACKING, TrackingApi
from tests.http.conftest import Site, basic
from tests.sync.conftest import wait_for

PATIENCE_S = 10.0
TRACK = b'{"userId": "ada", "event": "Order Completed"}'
# A body that stalls: all of it but its last byte is sent.
STALLED = 990


def _api(site: Site) -> TrackingApi:
    listener = site.running.server.http
    assert listener is not None
    return listener.app[TRACKING]


def _connect(site: Site, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(PATIENCE_S)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", site.running.server.http_port))
    return sock


def _head(path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {length}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _stall(site: Site, source: str, headers: dict[str, str] | None = None) -> socket.socket:
    """A connection posting a batch of STALLED + 1 bytes and sending all but the last."""
    sock = _connect(site, source)
    sock.sendall(_head("/v1/batch", STALLED + 1, headers or {}) + b" " * STALLED)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """The status, headers (names in lower case) and JSON body of the answer on a connection."""
    stream = sock.makefile("rb")
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(stream.read(int(headers["content-length"])))


def _post(site: Site, source: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """One call posted from a loopback address of our choosing."""
    with _connect(site, source) as sock:
        sock.sendall(_head("/v1/track", len(body), headers) + body)
        status, _, answer = _answer(sock)
    return status, answer


def test_a_stalled_body_is_refused_and_its_bytes_given_back(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body that stops short holds its bytes only until the body deadline: then it is answered
    408 BODY_TIMEOUT in the tracking API's shape, its connection closed, and its bytes are given
    back, so that the calls refused while it held the budget are taken again."""
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES", 1000)
    monkeypatch.setattr(tracking, "BODY_TIMEOUT_S", 3.0)
    api = _api(site)
    with _stall(site, "127.0.0.1") as stalled:
        wait_for(lambda: api.bodies.held >= STALLED)
        refused = site.post("/v1/track", TRACK)
        assert (refused.status, refused.body["code"]) == (429, "REQUESTS_SATURATED")
        status, headers, answer = _answer(stalled)
        answered = time.monotonic()
        stalled.settimeout(PATIENCE_S)
        assert stalled.recv(1) == b""  # closed with the answer, not after aiohttp's 10 s lingering read
        assert time.monotonic() - answered < 5
    assert (status, headers["connection"]) == (408, "close")
    assert answer == {"success": False, "code": "BODY_TIMEOUT", "message": answer["message"],
                      "error": {"code": "DEADLINE_EXCEEDED", "reason": "BODY_TIMEOUT", "message": answer["message"]}}
    assert "3 s" in answer["message"]
    wait_for(lambda: api.bodies.held == 0)
    assert site.post("/v1/track", TRACK).status == 200
    assert len(site.events()) == 1


def test_one_address_holds_at_most_its_share(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies stalled from one address fill its share only: its next call is refused (429), calls
    from other addresses are taken, and once its connection goes its share is free again."""
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES_PER_CLIENT", 1000)
    api = _api(site)
    key = basic(site.write_key)
    stalled = _stall(site, "127.0.0.2", key)
    try:
        wait_for(lambda: api.bodies.by_client.get("127.0.0.2", 0) >= STALLED)
        status, answer = _post(site, "127.0.0.2", TRACK, key)
        assert (status, answer["code"]) == (429, "REQUESTS_SATURATED")
        assert "127.0.0.2" in answer["message"]
        assert _post(site, "127.0.0.3", TRACK, key)[0] == 200
        assert site.post("/v1/track", TRACK).status == 200
    finally:
        stalled.close()
    wait_for(lambda: api.bodies.held == 0)
    assert _post(site, "127.0.0.2", TRACK, key)[0] == 200


def test_bodies_without_a_checked_key_have_a_budget_of_their_own(site: Site,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies sent with no Basic key (anyone can send those) are held within a smaller budget:
    once stalled ones fill it, another call with its key in the body is refused (429, saying to
    send the key with HTTP Basic), while a call whose Basic key is checked first is taken."""
    monkeypatch.setattr(tracking, "MAX_UNCHECKED_HELD_BYTES", 1000)
    api = _api(site)
    in_body = json.dumps({"userId": "ada", "event": "Order Completed", "writeKey": site.write_key}).encode()
    stalled = _stall(site, "127.0.0.4")
    try:
        wait_for(lambda: api.unchecked.held >= STALLED)
        status, answer = _post(site, "127.0.0.5", in_body, {})
        assert (status, answer["code"]) == (429, "REQUESTS_SATURATED")
        assert "HTTP Basic" in answer["message"]
        assert _post(site, "127.0.0.5", TRACK, basic(site.write_key))[0] == 200
    finally:
        stalled.close()
    wait_for(lambda: api.unchecked.held == 0 and api.bodies.held == 0)
    assert _post(site, "127.0.0.5", in_body, {})[0] == 200
