"""The HTTP listener behind a proxy (`http.proxies`, `--trusted-proxies`): a trusted proxy's
connections have no per-address cap, and each of its requests is from the client its
X-Forwarded-For names, which the body budgets and the `http` log line then count and name; any
other peer is its own client whatever it sends.

The servers here take 8 connections, 2 per address (set on `http.connections` before they start),
and trust 127.0.0.1 and 127.0.0.5, or no one; every wait is on what the server does, within a
generous timeout."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from audiences_server import cli, logs
from audiences_server.http import tracking
from audiences_server.http.proxies import Proxies
from audiences_server.http.tracking import TRACKING, TrackingApi
from audiences_server.settings import Settings, ip_networks, resolve
from tests.conftest import Running, start
from tests.http.conftest import PATIENCE_S, basic, closed, connect_from, read_answer, serve_with_figures, stop
from tests.sync.conftest import wait_for

TRACK = b'{"userId": "ada", "event": "Order Completed"}'
# A body that stalls: all of it but its last byte is sent.
STALLED = 990
TRUSTED = "127.0.0.1,127.0.0.5"

Headers = list[tuple[str, str]]


def _serve(path: Path, **settings: Any) -> Running:
    figures = {"MAX_CONNECTIONS": 8, "MAX_CONNECTIONS_PER_CLIENT": 2, "HEAD_TIMEOUT_S": 120.0, "IDLE_TIMEOUT_S": 120.0}
    return serve_with_figures(path, figures, **settings)


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server trusting the proxies at 127.0.0.1 and 127.0.0.5."""
    running = _serve(tmp_path_factory.mktemp("trusting"), trusted_proxies=ip_networks(TRUSTED))
    yield running
    stop(running)


@pytest.fixture(scope="module")
def trusting_none(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server trusting no proxy (the default)."""
    running = _serve(tmp_path_factory.mktemp("trusting-none"))
    yield running
    stop(running)


@pytest.fixture(autouse=True)
def _bodies_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies held on purpose here are not timed out meanwhile."""
    monkeypatch.setattr(tracking, "BODY_TIMEOUT_S", 120.0)




def _head(method: str, path: str, headers: Headers) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(sock: socket.socket) -> tuple[int, Any]:
    """The status and JSON body of the next answer on a connection."""
    status, body = read_answer(sock)
    return status, json.loads(body) if body else None




def _forwarded(*values: str) -> Headers:
    return [("X-Forwarded-For", value) for value in values]


def _logged(running: Running, headers: Headers, source: str = "127.0.0.1") -> list[dict[str, Any]]:
    """What is logged of a GET /healthz sent with these headers (it is answered)."""
    with capture_logs() as logged, connect_from(running, source) as sock:
        sock.sendall(_head("GET", "/healthz", headers))
        assert _answer(sock)[0] == 200
    return logged


def _logged_client(running: Running, headers: Headers, source: str = "127.0.0.1") -> str:
    """The client the `http` line names for a GET /healthz sent with these headers."""
    [line] = [entry for entry in _logged(running, headers, source) if entry["event"] == "http"]
    return str(line["client"])


def _busy(running: Running, source: str, headers: Headers) -> socket.socket:
    """A connection with a call in progress: its body on its way (a tenth of it sent)."""
    sock = connect_from(running, source)
    sent = [("Authorization", basic(running.tokens["write"])["Authorization"]),
            ("Content-Length", str(len(TRACK))), *headers]
    sock.sendall(_head("POST", "/v1/track", sent) + TRACK[:10])
    return sock


def _finish(sock: socket.socket) -> int:
    """Sends the rest of `_busy`'s body; the status of the answer."""
    sock.sendall(TRACK[10:])
    return _answer(sock)[0]


def _api(running: Running) -> TrackingApi:
    listener = running.server.http
    assert listener is not None
    return listener.app[TRACKING]


def _open(running: Running) -> int:
    listener = running.server.http
    assert listener is not None
    assert listener.connections is not None
    return listener.connections.count


def _reading(running: Running, bodies: int) -> None:
    """Waits until the tracking API reads that many `_busy` bodies."""
    wait_for(lambda: _api(running).bodies.held >= 10 * bodies, what=f"{bodies} bodies being read")


# -- connections -------------------------------------------------------------------------------------


def test_a_trusted_proxy_holds_more_connections_than_an_address_may_up_to_the_total(trusting: Running) -> None:
    """A trusted proxy's connections (8, where an address may hold 2) are all kept, each with a call
    in progress, and all answered; the total cap still holds: a ninth is closed at once."""
    held = [_busy(trusting, "127.0.0.1", _forwarded(f"203.0.113.{index}")) for index in range(8)]
    try:
        _reading(trusting, 8)
        assert _open(trusting) == 8
        with connect_from(trusting) as ninth:
            assert closed(ninth)
        assert [_finish(sock) for sock in held] == [200] * 8
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: _open(trusting) == 0, what="connections closed")


@pytest.mark.parametrize("server", ["trusting_none", "trusting"])
def test_a_peer_not_trusted_is_its_own_client_whatever_it_forwards(server: str,
                                                                   request: pytest.FixtureRequest) -> None:
    """From a peer that is not a trusted proxy (no one is, or not this address), a forged
    X-Forwarded-For changes nothing: the address's cap holds (a third connection, its 2 busy, is
    closed at once), and the log names the peer."""
    running: Running = request.getfixturevalue(server)
    source = "127.0.0.2"
    with capture_logs() as logged:
        held = [_busy(running, source, _forwarded(f"203.0.113.{index}")) for index in range(2)]
        try:
            _reading(running, 2)
            with connect_from(running, source) as third:
                third.sendall(_head("GET", "/healthz", _forwarded("203.0.113.9")))
                assert closed(third)
            assert [_finish(sock) for sock in held] == [200, 200]
        finally:
            for sock in held:
                sock.close()
    assert [entry["client"] for entry in logged if entry["event"] == "http"] == [source, source]
    assert _logged_client(running, _forwarded("203.0.113.9"), source) == source
    wait_for(lambda: _open(running) == 0, what="connections closed")


# -- the client's address -----------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "client"), [
    (_forwarded("198.51.100.7"), "198.51.100.7"),
    (_forwarded("203.0.113.9, 198.51.100.7, 127.0.0.5"), "198.51.100.7"),  # past a trusted proxy, no further
    (_forwarded("203.0.113.9", "198.51.100.7,127.0.0.5"), "198.51.100.7"),  # headers read as one list
    (_forwarded("not an address, 198.51.100.7"), "198.51.100.7"),  # what is left of the client is never read
    (_forwarded("198.51.100.7, , 127.0.0.5"), "198.51.100.7"),  # an empty element is skipped
    (_forwarded("127.0.0.5, 127.0.0.1"), "127.0.0.5"),  # every hop trusted: the first proxy's request
    (_forwarded("2001:db8::7"), "2001:db8::7"),
    (_forwarded("[2001:db8::7]:4711"), "2001:db8::7"),
    (_forwarded("198.51.100.7:4711"), "198.51.100.7"),
    (_forwarded("::ffff:198.51.100.7"), "198.51.100.7"),
], ids=["one", "chain", "two-headers", "garbage-left", "empty-element", "all-trusted", "ipv6", "ipv6-port",
        "ipv4-port", "ipv4-mapped"])
def test_a_trusted_proxy_s_request_is_from_the_rightmost_address_it_does_not_trust(
        trusting: Running, headers: Headers, client: str) -> None:
    """A trusted proxy's request is from the rightmost X-Forwarded-For address that is not a trusted
    proxy's: the `http` line names it."""
    assert _logged_client(trusting, headers) == client


@pytest.mark.parametrize(("headers", "reason"), [
    ([], "absent"), (_forwarded(""), "empty"), (_forwarded(" , "), "empty"), (_forwarded("nginx"), "malformed"),
    (_forwarded("198.51.100.7, unknown"), "malformed"), (_forwarded("198.51.100.7, 127.0.0.5, 300.1.1.1"), "malformed"),
    (_forwarded("fe80::1%eth0"), "malformed"), (_forwarded("198.51.100.0/24"), "malformed"),
], ids=["absent", "empty", "only-commas", "name", "malformed-last", "malformed-past-a-proxy", "zone", "network"])
def test_an_unreadable_x_forwarded_for_gives_the_peer(trusting: Running, headers: Headers, reason: str) -> None:
    """A trusted proxy's X-Forwarded-For that is absent, empty, or not an address where it is read
    gives the peer as the client; the request is answered as any other, and a debug line says why
    (without the header's bytes)."""
    logs.configure("json", "debug")
    logged = _logged(trusting, headers)
    assert [entry["client"] for entry in logged if entry["event"] == "http"] == ["127.0.0.1"]
    [ignored] = [entry for entry in logged if entry["event"] == "http_forwarded_for_ignored"]
    assert (ignored["log_level"], ignored["peer"], ignored["reason"]) == ("debug", "127.0.0.1", reason)
    assert all(value not in json.dumps(logged) for _, value in headers if value.strip(" ,"))


# -- body budgets -------------------------------------------------------------------------------------


def _stall(running: Running, source: str, headers: Headers) -> socket.socket:
    """A connection posting a batch of STALLED + 1 bytes, with the write key, and sending all but the last."""
    sock = connect_from(running, source)
    sent = [("Content-Length", str(STALLED + 1)),
            ("Authorization", basic(running.tokens["write"])["Authorization"]), *headers]
    sock.sendall(_head("POST", "/v1/batch", sent) + b" " * STALLED)
    return sock


def _post(running: Running, source: str, headers: Headers) -> tuple[int, Any]:
    """One call posted with the write key from a loopback address of our choosing."""
    with connect_from(running, source) as sock:
        sent = [("Content-Length", str(len(TRACK))),
                ("Authorization", basic(running.tokens["write"])["Authorization"]), *headers]
        sock.sendall(_head("POST", "/v1/track", sent) + TRACK)
        return _answer(sock)


def test_body_budgets_are_each_forwarded_client_s(trusting: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a trusted proxy each client has its own share of the bytes held (1,000 here): two
    clients each hold a stalled body of 990 bytes (through one proxy address, which alone may not
    hold both); a client whose share is full is refused (429, naming it), another is taken; and
    once its body goes, its share is free again."""
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES_PER_CLIENT", 1000)
    bodies = _api(trusting).bodies
    first = _stall(trusting, "127.0.0.1", _forwarded("203.0.113.1"))
    second = _stall(trusting, "127.0.0.1", _forwarded("203.0.113.2, 127.0.0.5"))
    try:
        wait_for(lambda: bodies.by_client.get("203.0.113.1", 0) >= STALLED
                 and bodies.by_client.get("203.0.113.2", 0) >= STALLED, what="both bodies held")
        assert "127.0.0.1" not in bodies.by_client
        status, answer = _post(trusting, "127.0.0.1", _forwarded("203.0.113.1"))
        assert (status, answer["code"]) == (429, "REQUESTS_SATURATED")
        assert "203.0.113.1" in answer["message"]
        assert _post(trusting, "127.0.0.1", _forwarded("203.0.113.3"))[0] == 200
    finally:
        first.close()
        second.close()
    wait_for(lambda: bodies.held == 0, what="the bodies given back")
    assert _post(trusting, "127.0.0.1", _forwarded("203.0.113.1"))[0] == 200


def test_a_forged_x_forwarded_for_does_not_buy_a_budget(trusting_none: Running,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """From a peer not trusted, a body is the peer's whatever X-Forwarded-For says: a stalled one
    fills the peer's share, and the peer's next call, forwarded for someone else, is refused."""
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES_PER_CLIENT", 1000)
    bodies = _api(trusting_none).bodies
    stalled = _stall(trusting_none, "127.0.0.3", _forwarded("203.0.113.1"))
    try:
        wait_for(lambda: bodies.by_client.get("127.0.0.3", 0) >= STALLED, what="the body held")
        status, answer = _post(trusting_none, "127.0.0.3", _forwarded("203.0.113.2"))
        assert (status, answer["code"]) == (429, "REQUESTS_SATURATED")
        assert "127.0.0.3" in answer["message"]
    finally:
        stalled.close()
    wait_for(lambda: bodies.held == 0, what="the body given back")


# -- IPv6 ----------------------------------------------------------------------------------------------


def test_an_ipv6_proxy_forwards_for_ipv6_clients_counted_by_their_64(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An IPv6 proxy (::1 here) is trusted by its address, and the IPv6 clients it forwards for hold
    bodies by their /64, as connections from them would count."""
    monkeypatch.setattr(tracking, "MAX_HELD_BYTES_PER_CLIENT", 1000)
    running = start(tmp_path / "audiences.db", http_listen="[::1]:0", trusted_proxies=ip_networks("::1"))
    try:
        bodies = _api(running).bodies
        with socket.create_connection(("::1", running.server.http_port), timeout=PATIENCE_S) as stalled:
            stalled.sendall(_head("POST", "/v1/batch", [
                ("Content-Length", str(STALLED + 1)),
                ("Authorization", basic(running.tokens["write"])["Authorization"]),
                *_forwarded("2001:db8:1:2::7")]) + b" " * STALLED)
            wait_for(lambda: bodies.by_client.get("2001:db8:1:2::/64", 0) >= STALLED, what="the body held")
            with capture_logs() as logged, socket.create_connection(("::1", running.server.http_port),
                                                                    timeout=PATIENCE_S) as sock:
                sock.sendall(_head("POST", "/v1/track", [
                    ("Content-Length", str(len(TRACK))),
                    ("Authorization", basic(running.tokens["write"])["Authorization"]),
                    *_forwarded("2001:db8:1:2::8")]) + TRACK)
                status, answer = _answer(sock)
        assert (status, answer["code"]) == (429, "REQUESTS_SATURATED")
        assert [entry["client"] for entry in logged if entry["event"] == "http"] == ["2001:db8:1:2::8"]
    finally:
        stop(running)


# -- the setting ---------------------------------------------------------------------------------------


def test_the_setting_takes_addresses_and_networks_of_both_families() -> None:
    """`--trusted-proxies` is a comma-separated list of IPv4 and IPv6 addresses and CIDR networks
    (spaces and a trailing comma allowed; an IPv4-mapped address as its IPv4); empty, the default,
    trusts no one."""
    assert resolve({}, {}).trusted_proxies == () == Settings().trusted_proxies
    settings = resolve({"trusted_proxies": " 10.0.0.0/8, 192.0.2.7,2001:db8::/32 ,::1, ::ffff:198.51.100.7,"}, {})
    assert [str(network) for network in settings.trusted_proxies] == [
        "10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128", "198.51.100.7/32"]
    from_env = resolve({}, {"AUDIENCES_TRUSTED_PROXIES": "172.16.0.0/12"})
    assert [str(network) for network in from_env.trusted_proxies] == ["172.16.0.0/12"]
    proxies = Proxies(settings.trusted_proxies)
    assert [proxies.trusts(host) for host in ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8:ffff::1", "::1",
                                              "192.0.2.8", "11.0.0.1", "")] == [
        True, True, True, True, False, False, False]


@pytest.mark.parametrize(("given", "said"), [
    ("10.0.0.0/8,nginx", "'nginx' is not an IP address or CIDR network"),
    ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; the network is 10.0.0.0/8"),
    ("2001:db8::/129", "'2001:db8::/129' is not an IP address or CIDR network"),
    ("fe80::1%eth0", "'fe80::1%eth0' has a zone"),
])
def test_a_bad_entry_is_refused_at_startup_in_one_line_naming_it(given: str, said: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bad entry stops `serve` before it starts (status 2) with one line naming the setting and
    the entry, as flag or environment variable."""
    assert cli.main(["serve", "--db", str(tmp_path / "audiences.db"), "--trusted-proxies", given]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("audiences-server: --trusted-proxies / AUDIENCES_TRUSTED_PROXIES: ")
    assert said in error
    with pytest.raises(ValueError, match="--trusted-proxies / AUDIENCES_TRUSTED_PROXIES"):
        resolve({}, {"AUDIENCES_TRUSTED_PROXIES": given})
    assert not (tmp_path / "audiences.db").exists()
