"""Segment's own libraries, unchanged, pointed at the server: analytics-python and
@segment/analytics-node send every call type over the HTTP tracking API; the calls are stored,
their identities resolve into profiles, and a live audience follows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from segment.analytics.client import Client

from tests.conftest import Running
from tests.http.conftest import Site


def _stored_types(site: Site) -> list[str]:
    return sorted(event["type"] for event in site.events())


@pytest.mark.parametrize("gzip", [False, True])
def test_analytics_python_sends_every_call_type(site: Site, gzip: bool) -> None:
    """analytics-python with `host` set to the server and the write token as write key sends
    identify, track, page, screen, group and alias (gzip or not) without an error; every call is
    stored, the user's identities and traits resolve, and a live audience admits her."""
    site.create_audience("buyers", "event('Order Completed').count() >= 1")
    errors: list[Any] = []
    client = Client(write_key=site.write_key, host=site.running.http_url, gzip=gzip, upload_interval=0.05,
                    max_retries=1, on_error=lambda error, _batch: errors.append(error))
    client.identify("ada", {"email": "ada@example.com", "plan": "pro"}, anonymous_id="py-anon")
    client.track("ada", "Order Completed", {"revenue": 120})
    client.page("ada", "Docs", "Home", {"url": "https://shop.example/"})
    client.screen("ada", "Mobile", "Settings")
    client.group("ada", "acme", {"name": "Acme"})
    client.alias("py-visitor", "ada")
    client.flush()
    client.shutdown()
    assert errors == []
    assert _stored_types(site) == sorted(["identify", "track", "page", "screen", "group", "alias"])
    assert all(event["context"]["library"]["name"] == "analytics-python" for event in site.events())
    site.tick()
    traits = site.traits("anonymous_id:py-anon")
    assert (traits["email"], traits["plan"], traits["buyers"]) == ("ada@example.com", "pro", True)
    assert {"user_id:ada", "anonymous_id:py-anon", "email:ada@example.com"} <= site.external_ids("user_id:ada")


def test_analytics_node_sends_every_call_type(site: Site, node_library: Path) -> None:
    """@segment/analytics-node, run by Node with the server's URL as `host` and the write token
    as write key, sends every call type and gets 200 for each batch; the calls are stored, the
    user's identities and traits resolve, and a live audience admits her."""
    site.create_audience("buyers", "event('Order Completed').count() >= 1")
    ran = subprocess.run(["node", "send.js", site.running.http_url, site.write_key], cwd=node_library,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert set(report["statuses"]) == {200}
    assert _stored_types(site) == sorted(["identify", "track", "page", "screen", "group", "alias"])
    assert all(event["context"]["library"]["name"] == "@segment/analytics-node" for event in site.events())
    site.tick()
    traits = site.traits("user_id:grace")
    assert (traits["email"], traits["plan"], traits["buyers"]) == ("grace@example.com", "team", True)
    assert {"user_id:grace", "anonymous_id:node-anon", "email:grace@example.com"} <= site.external_ids(
        "anonymous_id:node-anon")


def test_the_readme_snippet_sends_as_written(tracking_server: Running, tmp_path: Path) -> None:
    """The README's analytics-python snippet, run verbatim (only the host pointed at the test's
    server) from a folder holding the server's var/credentials.json, stores its track call."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Sending from Segment's libraries\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    snippet = found.group(1)
    assert '"http://127.0.0.1:8080"' in snippet
    (tmp_path / "var").mkdir()
    shutil.copy(tracking_server.db.parent / "credentials.json", tmp_path / "var" / "credentials.json")
    code = snippet.replace('"http://127.0.0.1:8080"', json.dumps(tracking_server.http_url))
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    rows = tracking_server.query(
        "SELECT e.event, e.body FROM events e JOIN spaces s USING (space_id)"
        " WHERE s.name = 'default' AND e.user_id = 'sam'")
    assert [(event, json.loads(body)) for event, body in rows] == [("Order Completed", {"revenue": 120})]
