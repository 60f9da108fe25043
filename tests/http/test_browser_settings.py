"""The settings analytics.js loads (`GET /v1/projects/{writeKey}/settings`, `http.browser_settings`):
their shape, that what they name reaches the server, the keys that get none, CORS, the host a
trusted proxy forwards, hosts that are refused, HEAD and TLS."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from audiences_server.settings import ip_networks
from tests.conftest import Running, start
from tests.evaluator.conftest import T0
from tests.http.conftest import Reply, Site, basic, new_site, send

SHOP = "https://shop.example"
BLOG = "https://blog.example"
NOWHERE = "https://nowhere.example"
PROXY = "127.0.0.5"  # the trusted proxy of `proxied`; 127.0.0.1 is not trusted there
PATIENCE_S = 10.0


def settings_url(running: Running, key: str) -> str:
    return f"{running.http_url}/v1/projects/{key}/settings"


def get(running: Running, key: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """The settings of a key, fetched as analytics.js fetches them (a plain GET)."""
    return send(settings_url(running, key), b"", headers, method=method)


def raw_get(running: Running, key: str, headers: dict[str, str], source: str = "127.0.0.1",
            method: str = "GET") -> Reply:
    """A request whose Host (and every other header) is ours to choose, sent from a loopback address."""
    connection = http.client.HTTPConnection("127.0.0.1", running.server.http_port, timeout=PATIENCE_S,
                                            source_address=(source, 0))
    try:
        connection.putrequest(method, f"/v1/projects/{key}/settings", skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Reply(response.status, dict(response.headers), response.read())
    finally:
        connection.close()


def preflight(running: Running, key: str, origin: str | None, **extra: str) -> Reply:
    headers = {"Access-Control-Request-Method": "GET", **extra}
    if origin is not None:
        headers["Origin"] = origin
    return send(settings_url(running, key), b"", headers, method="OPTIONS")


def expected(key: str, api_host: str, protocol: str = "http") -> dict[str, Any]:
    return {
        "integrations": {"Segment.io": {"apiKey": key, "apiHost": api_host, "protocol": protocol}},
        "metrics": {"sampleRate": 0},
        "plan": {},
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "edgeFunction": {},
    }


def send_as_analytics_js(settings: dict[str, Any], event: str, context: ssl.SSLContext | None = None) -> int:
    """Posts a track call where the settings say, as analytics.js's Segment.io plugin does: to
    `{protocol}://{apiHost}/t`, text/plain, the key in the body and as HTTP Basic."""
    segment = settings["integrations"]["Segment.io"]
    body = {"type": "track", "event": event, "userId": "ada", "messageId": f"ajs-{event}",
            "writeKey": segment["apiKey"]}
    request = urllib.request.Request(f"{segment['protocol']}://{segment['apiHost']}/t",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "text/plain", **basic(segment["apiKey"])})
    with urllib.request.urlopen(request, timeout=PATIENCE_S, context=context) as response:
        return int(response.status)


def _stop(running: Running) -> None:
    running.channel.close()
    running.server.stop(grace=1)


# -- the settings --------------------------------------------------------------------------------------


def test_a_write_key_gets_settings_naming_this_server(site: Site) -> None:
    """A write key's settings are exactly what analytics.js reads: the key, this listener's host
    and path (no scheme) and protocol, telemetry off, and nothing of Segment's; JSON that the
    browser alone may keep for a minute."""
    port = site.running.server.http_port
    reply = get(site.running, site.write_key)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "private, max-age=60"
    assert reply.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in reply.headers  # no Origin, no CORS
    assert reply.body == expected(site.write_key, f"127.0.0.1:{port}/v1")


def test_a_call_sent_where_the_settings_say_is_stored(site: Site) -> None:
    """What analytics.js builds from the settings, `{protocol}://{apiHost}/t`, is the tracking API:
    a call posted there as analytics.js posts it is stored in the key's space."""
    settings = get(site.running, site.write_key).body
    assert send_as_analytics_js(settings, "Settings Followed") == 200
    assert [(e["type"], e["event"], e["userId"]) for e in site.events()] == [("track", "Settings Followed", "ada")]


def test_head_answers_the_get_s_head(site: Site) -> None:
    """HEAD answers as GET does, without the body; an unknown key's HEAD is 404."""
    reply = get(site.running, site.write_key, method="HEAD")
    assert (reply.status, reply.raw) == (200, b"")
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "private, max-age=60"
    assert get(site.running, "aud_write_nobody", method="HEAD").status == 404


# -- keys that get no settings -------------------------------------------------------------------------


def _not_found(reply: Reply) -> str:
    """Checks a 404 in the tracking API's error shape; its message."""
    assert reply.status == 404
    body = reply.body
    assert body["success"] is False
    assert body["code"] == "WRITE_KEY_NOT_FOUND"
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["reason"] == "WRITE_KEY_NOT_FOUND"
    assert reply.headers["Cache-Control"] == "no-store"
    return str(body["message"])


def test_an_unknown_key_is_not_found(site: Site) -> None:
    """A key the server does not know is 404, as Segment's CDN answers it."""
    message = _not_found(get(site.running, "aud_write_" + "x" * 43))
    assert site.name not in message


def test_keys_of_other_scopes_and_revoked_keys_are_not_found_alike(site: Site) -> None:
    """A read or admin token of a real space, and a revoked write token, get the very answer an
    unknown key gets: nothing tells that the token exists, which space it is of, or its scope."""
    auth = site.running.server.engine.auth
    revoked = auth.create_token(site.name, "write", 0, label="revoked")
    auth.revoke(revoked.token_id)
    unknown = _not_found(get(site.running, "aud_write_" + "x" * 43))
    for key in (site.tokens["read"], site.tokens["admin"], revoked.token):
        reply = get(site.running, key)
        assert _not_found(reply) == unknown
        assert site.name not in reply.raw.decode()
        assert "scope" not in reply.raw.decode()


# -- CORS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tracking_server: Running) -> Site:
    """A space that allows pages of SHOP, beside one that allows pages of BLOG; waits until the
    server sees both."""
    shop, blog = new_site(tracking_server), new_site(tracking_server)
    assert shop.set_origins(SHOP).returncode == 0
    assert blog.set_origins(BLOG).returncode == 0
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline and (get(tracking_server, shop.write_key, {"Origin": SHOP}).status != 200
                                           or get(tracking_server, blog.write_key, {"Origin": BLOG}).status != 200):
        time.sleep(0.1)
    return shop


def test_an_allowed_origin_reads_the_settings(shop: Site) -> None:
    """A page of an origin the key's space allows gets the settings, readable by it, and told that
    the answer varies with the origin."""
    reply = get(shop.running, shop.write_key, {"Origin": SHOP})
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == SHOP
    assert reply.headers["Vary"] == "Origin"
    assert reply.body["integrations"]["Segment.io"]["apiKey"] == shop.write_key


def test_an_origin_the_key_s_space_does_not_allow_is_refused(shop: Site) -> None:
    """A page of an origin another space allows gets the tracking API's 403 ORIGIN_NOT_ALLOWED
    (readable, so that the page's console says why); one that no space allows gets it unreadable."""
    elsewhere = get(shop.running, shop.write_key, {"Origin": BLOG})
    assert (elsewhere.status, elsewhere.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert elsewhere.body["error"]["code"] == "PERMISSION_DENIED"
    assert elsewhere.headers["Access-Control-Allow-Origin"] == BLOG
    assert "integrations" not in elsewhere.body
    nowhere = get(shop.running, shop.write_key, {"Origin": NOWHERE})
    assert (nowhere.status, nowhere.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in nowhere.headers


def test_an_unknown_key_from_an_allowed_origin_is_not_found(shop: Site) -> None:
    """The key is judged before the origin: an unknown key is 404 whatever the page."""
    _not_found(get(shop.running, "aud_write_nobody", {"Origin": SHOP}))
    _not_found(get(shop.running, "aud_write_nobody", {"Origin": NOWHERE}))


def test_the_preflight_is_judged_by_the_key_s_space(shop: Site) -> None:
    """The key is in the path, so the preflight is judged by its own space: its origin passes
    (GET allowed, a max age, Chrome's private-network question answered), another is 403, an
    unknown key 404; an OPTIONS that is no preflight lists the methods."""
    allowed = preflight(shop.running, shop.write_key, SHOP, **{"Access-Control-Request-Private-Network": "true"})
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert "GET" in allowed.headers["Access-Control-Allow-Methods"]
    assert int(allowed.headers["Access-Control-Max-Age"]) > 0
    assert allowed.headers["Access-Control-Allow-Private-Network"] == "true"
    refused = preflight(shop.running, shop.write_key, NOWHERE)
    assert (refused.status, refused.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert preflight(shop.running, shop.write_key, BLOG).status == 403
    _not_found(preflight(shop.running, "aud_write_nobody", SHOP))
    plain = send(settings_url(shop.running, shop.write_key), b"", {}, method="OPTIONS")
    assert plain.status == 204
    assert set(plain.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}


# -- the host ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "api_host"), [
    ("Track.Shop.Example", "track.shop.example/v1"),
    ("track.shop.example:8443", "track.shop.example:8443/v1"),
    ("shop.example.", "shop.example./v1"),
    ("192.0.2.7:80", "192.0.2.7:80/v1"),
    ("[2001:DB8:0::7]:8080", "[2001:db8::7]:8080/v1"),
])
def test_the_host_is_the_request_s(site: Site, host: str, api_host: str) -> None:
    """`apiHost` is the request's Host (lower-cased), with its port, and the API's path."""
    reply = raw_get(site.running, site.write_key, {"Host": host})
    assert reply.status == 200, reply.raw
    assert reply.body["integrations"]["Segment.io"]["apiHost"] == api_host


@pytest.mark.parametrize("host", [
    "shop.example/evil", "shop.example/v1?x=", "shop example", "<script>", "user@shop.example",
    "shop.example:", "shop.example:0", "shop.example:99999", "-shop.example", "shop_example.com",
    "999.1.1.1", "1.2.3", "[::1%eth0]", "[not:v6]", "::1", "\"shop.example\"", "a" * 64 + ".example",
    ".".join(["a" * 63] * 4) + ".ex",
])
def test_a_host_that_is_not_one_is_refused(site: Site, host: str) -> None:
    """A Host that is not a host name or IP address with an optional port is 400 HOST_INVALID, and
    its text is not repeated in the answer."""
    reply = raw_get(site.running, site.write_key, {"Host": host})
    assert reply.status == 400, reply.raw
    assert (reply.body["code"], reply.body["error"]["code"]) == ("HOST_INVALID", "INVALID_ARGUMENT")
    assert host not in reply.raw.decode()
    assert "integrations" not in reply.body


def test_a_request_with_no_host_or_two_is_refused(site: Site) -> None:
    """Without a Host header (HTTP/1.0 allows it) there is no host to name: 400 HOST_INVALID. Two
    Host headers never reach the route (aiohttp's parser refuses them): 400 too."""
    for head, code in ((f"GET /v1/projects/{site.write_key}/settings HTTP/1.0\r\n\r\n", "HOST_INVALID"),
                       (f"GET /v1/projects/{site.write_key}/settings HTTP/1.1\r\nHost: a.example\r\n"
                        "Host: b.example\r\nConnection: close\r\n\r\n", None)):
        with socket.create_connection(("127.0.0.1", site.running.server.http_port), timeout=PATIENCE_S) as sock:
            sock.sendall(head.encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"400", answer
        if code is not None:
            assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == code


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server trusting the proxy at 127.0.0.5 only."""
    running = start(Path(tmp_path_factory.mktemp("proxied")) / "audiences.db", manual_clock=True,
                    trusted_proxies=ip_networks(PROXY))
    running.server.engine.clock.set(T0)
    yield running
    _stop(running)


FORWARDED = {"Host": "10.0.0.7:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "track.shop.example"}


def test_a_trusted_proxy_s_forwarded_host_and_proto_are_used(proxied: Running) -> None:
    """Behind a trusted proxy, the settings name the host and protocol the browser used, as the
    proxy forwards them (X-Forwarded-Host's first value), not the proxy's connection to the server."""
    site = new_site(proxied)
    reply = raw_get(proxied, site.write_key, FORWARDED, source=PROXY)
    assert reply.status == 200
    assert reply.body == expected(site.write_key, "track.shop.example/v1", "https")
    several = raw_get(proxied, site.write_key, {**FORWARDED, "X-Forwarded-Host": "Edge.Shop.Example:443, inner.example",
                                                "X-Forwarded-Proto": "HTTP,https"}, source=PROXY)
    assert several.body["integrations"]["Segment.io"] == {
        "apiKey": site.write_key, "apiHost": "edge.shop.example:443/v1", "protocol": "http"}
    host_only = raw_get(proxied, site.write_key, {"Host": "track.shop.example"}, source=PROXY)
    assert host_only.body["integrations"]["Segment.io"]["apiHost"] == "track.shop.example/v1"
    assert host_only.body["integrations"]["Segment.io"]["protocol"] == "http"


def test_a_trusted_proxy_s_bad_forwarded_headers_are_refused(proxied: Running) -> None:
    """What a trusted proxy forwards is checked as a Host is: 400, not repeated."""
    site = new_site(proxied)
    for name, value in (("X-Forwarded-Host", "evil.example/<x>"), ("X-Forwarded-Proto", "javascript")):
        reply = raw_get(proxied, site.write_key, {**FORWARDED, name: value}, source=PROXY)
        assert (reply.status, reply.body["code"]) == (400, "HOST_INVALID")
        assert value not in reply.raw.decode()


def test_an_untrusted_peer_s_forwarded_headers_are_ignored(proxied: Running) -> None:
    """A peer that is not a trusted proxy cannot make the settings name another server: its
    X-Forwarded-Proto and X-Forwarded-Host are not read, even malformed."""
    site = new_site(proxied)
    reply = raw_get(proxied, site.write_key, FORWARDED, source="127.0.0.1")
    assert reply.body == expected(site.write_key, "10.0.0.7:8080/v1", "http")
    odd = raw_get(proxied, site.write_key, {**FORWARDED, "X-Forwarded-Host": "evil.example/<x>"}, source="127.0.0.1")
    assert odd.status == 200


def test_over_tls_the_protocol_is_https(tmp_path: Path) -> None:
    """On a TLS listener the settings say https, and analytics.js's call over it is stored."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    running = start(tmp_path / "audiences.db", manual_clock=True, tls_cert=str(tmp_path / "server.pem"),
                    tls_key=str(tmp_path / "server.key"))
    try:
        running.server.engine.clock.set(T0)
        site = new_site(running)
        context = ssl.create_default_context()
        authority.configure_trust(context)
        port = running.server.http_port
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/v1/projects/{site.write_key}/settings",
                                    timeout=PATIENCE_S, context=context) as response:
            settings = json.loads(response.read())
        assert settings == expected(site.write_key, f"127.0.0.1:{port}/v1", "https")
        assert send_as_analytics_js(settings, "Over TLS", context) == 200
        assert [e["event"] for e in site.events()] == ["Over TLS"]
    finally:
        _stop(running)
