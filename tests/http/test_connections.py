"""The HTTP listener's connections (`http.connections`): request heads and idle connections have
deadlines, connections are capped in all and per client address, and what floods repeat (or a
request aiohttp cannot parse) is logged without flooding the log or quoting the request.

Each server here runs with small figures, set on the module before it starts; every wait is on
what the server does (a connection closed, a count reached), within a generous timeout."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from structlog.testing import capture_logs

from audiences_server.http import connections, tracking
from audiences_server.http.connections import Connections, Limits, ServerLog, client_of
from audiences_server.http.tracking import TRACKING
from tests.conftest import Running, start
from tests.http.conftest import PATIENCE_S, Site, basic, closed, connect_from, read_answer, serve_with_figures, stop

# How long a test waits for the server to do something it must do.
TRACK = b'{"userId": "ada", "event": "Order Completed"}'


def _serve(path: Path, **figures: Any) -> Running:
    return serve_with_figures(path, figures)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server whose heads and idle connections have half a second and a second."""
    running = _serve(tmp_path_factory.mktemp("quick"), HEAD_TIMEOUT_S=0.5, IDLE_TIMEOUT_S=1.0)
    yield running
    stop(running)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server taking 8 connections, 2 per address, with deadlines too long to matter here."""
    running = _serve(tmp_path_factory.mktemp("capped"), MAX_CONNECTIONS=8, MAX_CONNECTIONS_PER_CLIENT=2,
                     HEAD_TIMEOUT_S=120.0, IDLE_TIMEOUT_S=120.0)
    yield running
    stop(running)




def _get(sock: socket.socket, path: str = "/healthz") -> int:
    """Sends a GET on a kept-alive connection and returns the status of its answer."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return _status(sock)


def _status(sock: socket.socket) -> int:
    return read_answer(sock)[0]


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _open(running: Running) -> int:
    listener = running.server.http
    assert listener is not None
    assert listener.connections is not None
    return listener.connections.count


# -- deadlines ---------------------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(quick: Running) -> None:
    """A connection that never sends a byte is closed once the head deadline passes."""
    with connect_from(quick) as sock:
        assert closed(sock)
    assert _until(lambda: _open(quick) == 0)


def test_a_head_never_finished_is_closed_and_counted_in_the_log(tmp_path: Path) -> None:
    """Headers that never end (no blank line) close the connection at the head deadline, and the
    log says so (`http_head_timeouts`, at info, with a count). (A server of its own: the first
    time out of a period is logged at once, the others at the period's end.)"""
    running = _serve(tmp_path, HEAD_TIMEOUT_S=0.5)
    try:
        with capture_logs() as logged:
            with connect_from(running) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
                assert closed(sock)
            assert _until(lambda: any(entry["event"] == "http_head_timeouts" for entry in logged))
    finally:
        stop(running)
    line = next(entry for entry in logged if entry["event"] == "http_head_timeouts")
    assert (line["log_level"], line["client"], line["count"]) == ("info", "127.0.0.1", 1)


def test_a_kept_alive_connection_serves_requests_then_closes_when_idle(quick: Running) -> None:
    """Requests one after the other on one connection are answered; once it stays idle past the
    idle timeout, it is closed."""
    with connect_from(quick) as sock:
        assert [_get(sock) for _ in range(3)] == [200, 200, 200]
        assert closed(sock)


def test_a_next_head_left_unfinished_is_closed(quick: Running) -> None:
    """After an answered request, a next request whose head never ends is closed too."""
    with connect_from(quick) as sock:
        assert _get(sock) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: te")
        assert closed(sock)


def test_a_request_being_handled_has_no_connection_deadline(quick: Running) -> None:
    """A request whose head is complete is the route's: its body may take longer than the head
    deadline and the idle timeout (the tracking API has its own deadline, far longer)."""
    authorization = basic(quick.tokens["write"])["Authorization"]
    head = (f"POST /v1/track HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n"
            f"Content-Length: {len(TRACK)}\r\n\r\n")
    with connect_from(quick) as sock:
        sock.sendall(head.encode() + TRACK[:10])
        time.sleep(1.5)  # past both deadlines of this server
        sock.sendall(TRACK[10:])
        assert _status(sock) == 200


def test_over_tls_the_deadlines_count_from_the_connection(tmp_path: Path) -> None:
    """On a TLS listener a connection is counted and timed from its TCP connection: one that never
    starts its handshake is closed at the head deadline, and is not counted once closed; a
    client that does its handshake is answered on a kept-alive connection, then closed when idle."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connections, "HEAD_TIMEOUT_S", 0.5)
        patch.setattr(connections, "IDLE_TIMEOUT_S", 1.0)
        running = start(tmp_path / "audiences.db", tls_cert=str(tmp_path / "server.pem"),
                        tls_key=str(tmp_path / "server.key"))
    try:
        with connect_from(running) as silent:
            assert _until(lambda: _open(running) == 1)
            assert closed(silent)
        assert _until(lambda: _open(running) == 0)
        context = ssl.create_default_context()
        authority.configure_trust(context)
        with context.wrap_socket(connect_from(running), server_hostname="127.0.0.1") as secure:
            assert [_get(secure) for _ in range(2)] == [200, 200]
            assert closed(secure)
    finally:
        stop(running)


# -- caps --------------------------------------------------------------------------------------------


def _busy(running: Running, source: str) -> socket.socket:
    """A connection with a request in progress: a call whose body is on its way (a tenth of it sent)."""
    authorization = basic(running.tokens["write"])["Authorization"]
    sock = connect_from(running, source)
    sock.sendall(f"POST /v1/track HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n"
                 f"Content-Length: {len(TRACK)}\r\n\r\n".encode() + TRACK[:10])
    return sock


def _finish(sock: socket.socket) -> int:
    """Sends the rest of `_busy`'s body; the status of the answer."""
    sock.sendall(TRACK[10:])
    return _status(sock)


def _reading(running: Running, connections_reading: int) -> bool:
    """Waits until the tracking API reads that many bodies (their requests are in progress)."""
    listener = running.server.http
    assert listener is not None
    api = listener.app[TRACKING]
    return _until(lambda: api.bodies.held >= 10 * connections_reading)


def test_past_its_address_cap_a_connection_takes_the_place_of_one_with_no_request(capped: Running) -> None:
    """An address holding its share of connections (2 here) that never sent a request: its next
    connection takes the place of the oldest of them, and is answered."""
    with capture_logs() as logged:
        first, second = connect_from(capped), connect_from(capped)
        assert _until(lambda: _open(capped) == 2)
        with connect_from(capped) as third:
            assert _get(third) == 200
            assert closed(first)
            assert _get(third) == 200
        first.close()
        second.close()
    assert _until(lambda: _open(capped) == 0)
    evicted = [entry for entry in logged if entry["event"] == "http_connections_evicted"]
    assert [(entry["log_level"], entry["state"], entry["client"]) for entry in evicted][:1] == [
        ("info", "waiting", "127.0.0.1")]


def test_past_its_address_cap_with_requests_in_progress_a_connection_is_closed_at_once(
        capped: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """An address whose connections (2 here) all have a request in progress gets its next one closed
    at once, while other addresses are answered; once one of its requests is answered, that
    connection (idle now) is the one to make room."""
    monkeypatch.setattr(tracking, "BODY_TIMEOUT_S", 120.0)
    with capture_logs() as logged:
        held = [_busy(capped, "127.0.0.1") for _ in range(2)]
        try:
            assert _reading(capped, 2)
            with connect_from(capped) as refused:
                assert closed(refused)
            with connect_from(capped, "127.0.0.2") as other:
                assert _get(other) == 200
            assert _finish(held[0]) == 200
            with connect_from(capped) as newcomer:
                assert _get(newcomer) == 200
                assert closed(held[0])
            assert _finish(held[1]) == 200
        finally:
            for sock in held:
                sock.close()
    assert _until(lambda: _open(capped) == 0)
    refused_lines = [entry for entry in logged if entry["event"] == "http_connections_refused"]
    assert [(entry["log_level"], entry["reason"], entry["client"], entry["limit"]) for entry in refused_lines][:1] == [
        ("warning", "too_many_from_client", "127.0.0.1", 2)]


def test_past_the_total_cap_new_connections_are_closed_and_open_ones_answer(
        capped: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every connection taken (8 here, from 4 addresses) by requests in progress, a new one is
    closed at once, and the open ones are still answered. An answered (idle) connection is then
    the one to make room: the next new connection takes its place."""
    monkeypatch.setattr(tracking, "BODY_TIMEOUT_S", 120.0)
    held = [_busy(capped, f"127.0.0.{2 + index // 2}") for index in range(8)]
    try:
        assert _reading(capped, 8)
        assert _open(capped) == 8
        with connect_from(capped, "127.0.0.9") as refused:
            assert closed(refused)
        assert _finish(held[0]) == 200  # an open connection is answered; it is idle from here
        with connect_from(capped, "127.0.0.9") as newcomer:
            assert _get(newcomer) == 200
            assert closed(held[0])
        assert _finish(held[1]) == 200
    finally:
        for sock in held:
            sock.close()
    assert _until(lambda: _open(capped) == 0)


def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    """One host may use a whole /64 of IPv6 addresses: its connections count together."""
    assert client_of("2001:db8:1:2:aaaa::1") == client_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_of("192.0.2.7") == "192.0.2.7"


# -- what is logged ----------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [
    b"POST /v1/track HTTP/1.1\r\nHost: test\r\nAuthorization: Basic s3cr3t\x01t0ken\r\n\r\n",
    b"POST /v1/track HTTP/1.1\r\nHost: test\r\nX-Folded: s3cr3t\r\n t0ken\r\n\r\n",
    b"POST /v1/track HTTP/1.1\r\nHost: test\rAuthorization: Basic s3cr3t\r\n\r\n",
], ids=["control-character", "folded-header", "bare-cr"])
def test_a_malformed_request_is_one_info_line_without_its_bytes(site: Site, head: bytes,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A request aiohttp cannot parse is answered 400 by aiohttp and logged as one info line
    (`http_request_malformed`: status, error class, the parser's fixed description), with not a
    byte of the request in it: not at error level, not with a traceback, never a credential."""
    with capture_logs() as logged:
        with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=PATIENCE_S) as sock:
            sock.sendall(head)
            assert _status(sock) == 400
        assert _until(lambda: any(entry["event"] == "http_request_malformed" for entry in logged))
    line = next(entry for entry in logged if entry["event"] == "http_request_malformed")
    assert (line["log_level"], line["status"], line["logger"]) == ("info", 400, "aiohttp.server")
    assert "exc_info" not in line
    written = json.dumps(logged, default=str) + " ".join(record.getMessage() for record in caplog.records)
    assert "s3cr3t" not in written
    assert "t0ken" not in written
    assert [entry for entry in logged if entry["log_level"] in ("error", "critical")] == []
    assert [record for record in caplog.records if record.name.startswith("aiohttp")
            and record.levelno >= logging.ERROR] == []


def test_other_aiohttp_errors_keep_their_level(caplog: pytest.LogCaptureFixture) -> None:
    """What aiohttp logs that is not a request it cannot parse goes to its logger as before."""
    server_log = ServerLog(logging.getLogger("aiohttp.server"), {})
    with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
        server_log.exception("Unhandled exception", exc_info=RuntimeError("handler broke"))
    assert [(record.name, record.levelno, record.getMessage()) for record in caplog.records] == [
        ("aiohttp.server", logging.ERROR, "Unhandled exception")]


def test_accept_failures_are_logged_once_per_period_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """asyncio reports each failed accept() (no file descriptor left) to the loop's exception
    handler; the listener logs the first at once and then how many more came, per period, while
    every other report reaches the handler it reached before."""
    loop = asyncio.new_event_loop()
    try:
        guard = Connections(loop, cast(Any, None), None, Limits(8, 2, 1.0, 1.0))
        guard.install()
        failure = OSError(errno.EMFILE, "Too many open files")
        with capture_logs() as logged:

            async def flood() -> None:
                for _ in range(1000):
                    loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                                 "exception": failure})

            loop.run_until_complete(flood())
            with caplog.at_level(logging.ERROR, logger="asyncio"):
                loop.call_exception_handler({"message": "something else went wrong"})
            guard.close()
        lines = [entry for entry in logged if entry["event"] == "http_accept_failed"]
        assert [(entry["log_level"], entry["error"], entry["count"]) for entry in lines] == [
            ("error", "EMFILE", 1), ("error", "EMFILE", 999)]
        assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == [
            "something else went wrong"]
        assert loop.get_exception_handler() is None  # given back as it was
    finally:
        loop.close()


@pytest.mark.parametrize(("request_bytes", "status", "reason"), [
    (b"POST /v1/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "REQUEST_MALFORMED"),
    (b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, "REQUEST_MALFORMED"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "REQUEST_MALFORMED"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9_000 + b"\r\n\r\n", 400, "REQUEST_MALFORMED"),
])
def test_a_request_the_parser_refuses_is_answered_in_json(quick: Running, request_bytes: bytes, status: int,
                                                         reason: str) -> None:
    """What aiohttp's parser refuses before any route runs is answered as the routes answer
    errors (JSON, the reason in both APIs' places), not in plain text quoting the request back;
    the connection is closed."""
    sock = connect_from(quick)
    try:
        sock.sendall(request_bytes)
        found, body = read_answer(sock)
        answer = json.loads(body)
        assert found == status
        assert (answer["success"], answer["code"], answer["error"]["reason"]) == (False, reason, reason)
        assert b"aaaa" not in body
        assert closed(sock)
    finally:
        sock.close()


def test_a_request_line_of_tens_of_kilobytes_is_read(quick: Running) -> None:
    """A request line up to 64 KiB is read (a Profile API `include` of hundreds of trait keys)."""
    sock = connect_from(quick)
    try:
        assert _get(sock, "/healthz?" + "x" * 40_000) == 200
    finally:
        sock.close()
