"""Segment's browser library, @segment/analytics-next, unchanged, in a jsdom page (Node, no
browser) loaded with only `writeKey` and `cdnURL` pointed at the server: it fetches its settings
from the server, sends every call type where they say, and each call is stored.

What jsdom does not do, the page's `fetch` in tests/http/node/browser.js does as a browser does:
jsdom has no `fetch` (the library would use Node's, which sends no `Origin` and applies no CORS),
so the page's adds `Origin`, preflights a request with a header that is not CORS-safelisted
(analytics.js adds `Authorization`) and fails on an answer the page may not read. CORS is thus
checked as the Fetch standard says, not by a browser engine; the HTTP-level CORS tests are in
test_tracking_cors.py and test_browser_settings.py. The script refuses every TCP connection
but to the server and every resource jsdom would load, and reports each attempt."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Running
from tests.http.conftest import Site, new_site, send

PAGE = "https://shop.example"
TYPES = ("identify", "track", "page", "screen", "group", "alias")


def http_calls(running: Running) -> Counter[tuple[str, str]]:
    """The HTTP calls the server answered, by `METHOD route` and status (`audiences_calls`, /metrics)."""
    text = send(f"{running.http_url}/metrics", b"", method="GET").raw.decode()
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "audiences_calls_total" and sample.labels["transport"] == "http":
                counts[(sample.labels["method"], sample.labels["code"])] += int(sample.value)
    return counts


def run_page(site: Site, library: Path, page: str = PAGE) -> dict[str, Any]:
    """Runs tests/http/node/browser.js: a page of origin `page` loading analytics.js from the server."""
    ran = subprocess.run(["node", "browser.js", site.running.http_url, site.write_key, page], cwd=library,
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    return report


def test_analytics_next_in_a_page_loads_from_the_server_and_sends_every_call_type(
        site: Site, node_library: Path) -> None:
    """A page of an origin the space allows loads analytics.js with `{writeKey, cdnURL}` only:
    the settings come from the server (nothing else is reached, no telemetry `/m` is attempted),
    the calls go to the one-letter paths as text/plain with the page's `Origin`, after a preflight
    for `authorization`, every answer is readable by the page, and every call is stored with the
    page's context."""
    assert site.set_origins(PAGE).returncode == 0
    before = http_calls(site.running)
    report = run_page(site, node_library)
    after = http_calls(site.running)

    assert "loadError" not in report
    assert report["errors"] == []
    assert (report["refusedConnections"], report["refusedResources"]) == ([], [])
    assert report["delivered"] == dict.fromkeys(TYPES, True)
    base = site.running.http_url
    requests = report["requests"]
    assert all(request["url"].startswith(base + "/") for request in requests)
    assert not any(request["url"].rstrip("/").endswith("/m") for request in requests)

    # The settings: one plain GET from the page's origin, no preflight.
    settings = [request for request in requests if "/settings" in request["url"]]
    assert [(r["method"], r["url"], r["origin"], r["status"]) for r in settings] == [
        ("GET", f"{base}/v1/projects/{site.write_key}/settings", PAGE, 200)]

    # The calls: a preflight asking for `authorization`, then a text/plain POST with Basic auth.
    calls = [request for request in requests if request["method"] == "POST"]
    paths = {type_: f"{base}/v1/{type_[0]}" for type_ in TYPES}
    assert [(r["url"], r["origin"], r["contentType"], r["authorization"], r["status"]) for r in calls] == [
        (paths[type_], PAGE, "text/plain", True, 200) for type_ in TYPES]
    assert [call["body"]["type"] for call in calls] == list(TYPES)
    assert all(call["body"]["writeKey"] == site.write_key for call in calls)
    preflights = [request for request in requests if request["method"] == "OPTIONS"]
    assert {(r["url"], r["origin"], r["requestHeaders"], r["status"]) for r in preflights} == {
        (paths[type_], PAGE, "authorization", 204) for type_ in TYPES}

    # The server saw the same: by route and status, and nothing else (no `/v1/m`, nothing unmatched).
    served = after - before
    served.pop(("GET /metrics", "200"), None)
    expected = Counter({("GET /v1/projects/{writeKey}/settings", "200"): 1})
    expected.update({(f"POST /v1/{type_[0]}", "200"): 1 for type_ in TYPES})
    expected.update({(f"OPTIONS /v1/{type_[0]}", "204"): 1 for type_ in TYPES})
    assert served == expected

    # Stored, with what the page gave them.
    events = site.events()
    assert [event["type"] for event in events] == list(TYPES)
    by_type = {event["type"]: event for event in events}
    assert by_type["track"]["event"] == "Order Completed"
    assert by_type["track"]["body"] == {"revenue": 42}
    assert by_type["group"]["groupId"] == "initech"
    assert by_type["identify"]["userId"] == "linus"
    assert by_type["identify"]["anonymousId"] == report["anonymousId"]
    for event in events:
        assert event["context"]["library"]["name"] == "analytics.js"
        assert event["context"]["page"]["url"] == f"{PAGE}/checkout?step=2"
    site.tick()
    traits = site.traits("user_id:linus")
    assert (traits["email"], traits["plan"]) == ("linus@example.com", "free")
    assert {"user_id:linus", f"anonymous_id:{report['anonymousId']}", "email:linus@example.com"} <= (
        site.external_ids("user_id:linus"))


def test_analytics_next_in_a_page_of_an_origin_not_allowed_does_not_load(site: Site, node_library: Path) -> None:
    """A page of an origin that no space allows gets `403` for the settings, without
    `Access-Control-Allow-Origin`: the page may not read it, analytics.js fails to load, and
    sends nothing (nor reaches anything else). A page of an origin another space allows reads the
    `403` (as the tracking API's errors are readable) and fails to load too."""
    other = new_site(site.running)
    assert other.set_origins(PAGE).returncode == 0
    settings = f"{site.running.http_url}/v1/projects/{site.write_key}/settings"
    unreadable = run_page(site, node_library, page="https://elsewhere.example")
    assert unreadable["loadError"] == "Failed to fetch"  # what a browser's fetch rejects with
    readable = run_page(site, node_library, page=PAGE)
    assert json.loads(readable["loadError"])["code"] == "ORIGIN_NOT_ALLOWED"  # the library throws the body
    for page, report in (("https://elsewhere.example", unreadable), (PAGE, readable)):
        assert (report["refusedConnections"], report["refusedResources"]) == ([], [])
        assert [(r["method"], r["url"], r["origin"], r["status"]) for r in report["requests"]] == [
            ("GET", settings, page, 403)]
    assert site.events() == []
