"""CORS for analytics.js on other origins: the per-space origins an operator sets with
`audiences-server spaces origins`, the preflight, and Access-Control-Allow-Origin on every answer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import apsw
import pytest

from audiences_server.http.tracking import BATCH_PATHS, SINGLE_PATHS
from tests.conftest import Running
from tests.http.conftest import Reply, Site, basic, new_site, operator, send

SHOP = "https://shop.example"
BLOG = "https://blog.example"
NOWHERE = "https://nowhere.example"
TRACK = {"userId": "ada", "event": "Order Completed"}


@dataclass
class Sites:
    """Two spaces: `shop` allows pages of SHOP, `blog` pages of BLOG."""

    shop: Site
    blog: Site


def preflight(running: Running, path: str, origin: str | None, **extra: str) -> Reply:
    """A browser's preflight of a POST with analytics.js's headers (a retry adds x-retry-count)."""
    headers = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type,x-retry-count", **extra}
    if origin is not None:
        headers["Origin"] = origin
    return send(f"{running.http_url}{path}", b"", headers, method="OPTIONS")


def from_page(site: Site, path: str, payload: object, origin: str, key: str | None = None) -> Reply:
    """A call as analytics.js posts it from a page: text/plain, the key in the body and in Basic."""
    body = {**payload, "writeKey": key or site.write_key} if isinstance(payload, dict) else payload
    headers = {"Origin": origin, "Content-Type": "text/plain", **basic(key or site.write_key)}
    return site.post(path, body, headers, auth=False)


@pytest.fixture(scope="module")
def sites(tracking_server: Running) -> Sites:
    """The two spaces, their origins set by the operator command; waits until the server sees them."""
    shop, blog = new_site(tracking_server), new_site(tracking_server)
    assert shop.set_origins(SHOP).returncode == 0
    assert blog.set_origins(BLOG).returncode == 0
    # The settings GET is judged by the key's space (a preflight, by any space's origins, would
    # already pass for origins other tests' spaces allow on this server).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            send(f"{site.running.http_url}/v1/projects/{site.write_key}/settings", b"", {"Origin": origin},
                 method="GET").status != 200
            for site, origin in ((shop, SHOP), (blog, BLOG))):
        time.sleep(0.1)
    return Sites(shop, blog)


def test_the_preflight_allows_analytics_js_on_every_path(sites: Sites) -> None:
    """For an origin a space allows, every tracking path answers the preflight 204 with the origin,
    POST, the headers analytics.js asks for (authorization, content-type, x-retry-count) and a
    max age, so that browsers need not ask before every call."""
    for path in [*SINGLE_PATHS, *BATCH_PATHS]:
        reply = preflight(sites.shop.running, f"/v1/{path}", SHOP)
        assert reply.status == 204, path
        assert reply.headers["Access-Control-Allow-Origin"] == SHOP
        assert "POST" in reply.headers["Access-Control-Allow-Methods"]
        allowed = {h.strip() for h in reply.headers["Access-Control-Allow-Headers"].lower().split(",")}
        assert {"authorization", "content-type", "x-retry-count"} <= allowed
        assert int(reply.headers["Access-Control-Max-Age"]) > 0


def test_the_preflight_refuses_an_origin_no_space_allows(sites: Sites) -> None:
    """An origin no space allows gets 403 ORIGIN_NOT_ALLOWED and no Access-Control-Allow-Origin:
    the browser does not send the call."""
    reply = preflight(sites.shop.running, "/v1/t", NOWHERE)
    assert (reply.status, reply.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_an_options_request_without_origin_lists_the_methods(sites: Sites) -> None:
    """OPTIONS from something that is not a browser's preflight answers 204 with Allow."""
    reply = preflight(sites.shop.running, "/v1/batch", None)
    assert (reply.status, reply.headers["Allow"]) == (204, "POST, OPTIONS")


def test_a_private_network_preflight_is_allowed(sites: Sites) -> None:
    """A public page calling a server on a private network (Chrome asks with
    Access-Control-Request-Private-Network) is told it may."""
    reply = preflight(sites.shop.running, "/v1/t", SHOP, **{"Access-Control-Request-Private-Network": "true"})
    assert reply.headers["Access-Control-Allow-Private-Network"] == "true"


def test_a_call_from_an_allowed_origin_is_stored_and_readable(sites: Sites) -> None:
    """analytics.js's call from a page of an allowed origin is stored, and its 200 carries
    Access-Control-Allow-Origin (and exposes Retry-After), so the page reads it and does not resend."""
    single = from_page(sites.shop, "/v1/t", TRACK, SHOP)
    batch = from_page(sites.shop, "/v1/b", {"batch": [{"type": "page", "userId": "ada"}]}, SHOP)
    for reply in (single, batch):
        assert (reply.status, reply.body) == (200, {"success": True})
        assert reply.headers["Access-Control-Allow-Origin"] == SHOP
        assert "Retry-After" in reply.headers["Access-Control-Expose-Headers"]
    assert [e["type"] for e in sites.shop.events()][-2:] == ["track", "page"]


@pytest.mark.parametrize(("payload", "key", "status"), [
    (b"not json", None, 400),
    ({"userId": "ada"}, None, 400),
    (TRACK, "aud_write_unknown", 401),
    ({**TRACK, "properties": {"text": "x" * (33 * 1024)}}, None, 400),
])
def test_errors_to_an_allowed_origin_are_readable(sites: Sites, payload: object, key: str | None,
                                                 status: int) -> None:
    """Errors too carry Access-Control-Allow-Origin for an allowed origin: a response the page may
    not read counts as a failure, and analytics.js would send the call again and again."""
    reply = from_page(sites.shop, "/v1/t", payload, SHOP, key)
    assert reply.status == status
    assert reply.headers["Access-Control-Allow-Origin"] == SHOP


def test_a_call_from_an_origin_its_space_does_not_allow_is_403(sites: Sites) -> None:
    """The preflight passes an origin that any space allows; the call itself is then refused, 403
    ORIGIN_NOT_ALLOWED, when its own key's space does not allow the origin (readable by the page,
    so that it stops), and nothing is stored."""
    stored = len(sites.shop.events())
    reply = from_page(sites.shop, "/v1/t", {**TRACK, "messageId": "from-blog"}, BLOG)
    assert (reply.status, reply.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert reply.headers["Access-Control-Allow-Origin"] == BLOG
    assert len(sites.shop.events()) == stored


def test_a_call_from_an_origin_no_space_allows_is_403_unreadable(sites: Sites) -> None:
    """A call that skipped the preflight (text/plain, the key only in the body: a simple request)
    from an origin no space allows is refused and not stored, and gets no Access-Control-Allow-Origin."""
    stored = len(sites.shop.events())
    body = {**TRACK, "writeKey": sites.shop.write_key}
    reply = sites.shop.post("/v1/t", body, {"Origin": NOWHERE, "Content-Type": "text/plain"}, auth=False)
    assert (reply.status, reply.body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert len(sites.shop.events()) == stored


def test_calls_without_an_origin_are_not_concerned(sites: Sites) -> None:
    """Server libraries send no Origin: their calls are stored whatever the space's origins."""
    reply = sites.blog.post("/v1/track", TRACK)
    assert reply.status == 200
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_the_operator_command_normalises_lists_and_clears_origins(tracking_server: Running) -> None:
    """`audiences-server spaces origins NAME ORIGIN…` replaces the list, written as browsers send
    origins (lower case, no default port, no slash); without origins it prints them; `--clear`
    empties it; `*` allows every origin."""
    site = new_site(tracking_server)
    set_ = site.set_origins("HTTPS://Shop.Example:443/", "http://localhost:3000", "*")
    assert (set_.returncode, set_.stdout.split()) == (0, ["*", "http://localhost:3000", "https://shop.example"])
    assert site.set_origins().stdout.split() == ["*", "http://localhost:3000", "https://shop.example"]
    cleared = operator(site.running.db, "spaces", "origins", site.name, "--clear")
    assert (cleared.returncode, cleared.stdout.strip()) == (0, f"space {site.name} allows no origin")
    assert site.set_origins().stdout.strip() == f"space {site.name} allows no origin"
    # Each change (not a listing) is in the space's audit log, as the operator's other actions are.
    conn = apsw.Connection(str(site.running.db), flags=apsw.SQLITE_OPEN_READONLY)
    audited = conn.execute(
        "SELECT actor, action, target_type, target, detail FROM audit_log WHERE action = 'update' AND space_id ="
        " (SELECT space_id FROM spaces WHERE name = ?) ORDER BY audit_id", (site.name,)).fetchall()
    conn.close()
    assert [(actor, action, kind, target, json.loads(detail)) for actor, action, kind, target, detail in audited] == [
        ("local: audiences-server", "update", "space", site.name,
         {"allowed_origins": ["*", "http://localhost:3000", "https://shop.example"]}),
        ("local: audiences-server", "update", "space", site.name, {"allowed_origins": []})]


def test_the_operator_command_refuses_what_is_not_an_origin(tracking_server: Running) -> None:
    """A path, another scheme, a bad port, or origins with `--clear` are refused with a message and
    exit status 1, and the list stays as it was."""
    site = new_site(tracking_server)
    for args, message in [
        (["https://shop.example/checkout"], "is not an origin"),
        (["ftp://shop.example"], "is not an origin"),
        (["https://shop.example:99999"], "ports are 1 to 65535"),
        (["https://shop.example", "--clear"], "not both"),
    ]:
        refused = operator(site.running.db, "spaces", "origins", site.name, *args)
        assert (refused.returncode, message in refused.stderr) == (1, True), (args, refused.stderr)
    assert site.set_origins().stdout.strip() == f"space {site.name} allows no origin"


def test_the_operator_command_refuses_an_unknown_space(tracking_server: Running) -> None:
    """Origins of a space that does not exist: exit status 1, `space … not found`."""
    refused = operator(tracking_server.db, "spaces", "origins", "no-such-space", SHOP)
    assert refused.returncode == 1
    assert "not found" in refused.stderr


def test_any_origin_is_allowed_by_a_star(tracking_server: Running) -> None:
    """A space whose origins include `*` accepts calls from pages of any origin."""
    site = new_site(tracking_server)
    assert site.set_origins("*").returncode == 0
    deadline = time.monotonic() + 10
    reply = from_page(site, "/v1/t", TRACK, "https://anything.example")
    while reply.status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        reply = from_page(site, "/v1/t", TRACK, "https://anything.example")
    site.set_origins("--clear")
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "https://anything.example"
