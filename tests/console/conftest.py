"""A system-clock server shared by the console's tests (the evaluator ticks on its own, as under
`make run`), each test in a space of its own, and a JSON client of the console's API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Running, start
from tests.evaluator.conftest import Space, new_space

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, headless, with nothing that would reach the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Answer:
    """A console API response: its status and JSON body."""

    status: int
    body: Any
    headers: dict[str, str]


def call(running: Running, method: str, path: str, token: str | None = None, body: Any = None,
         raw: bytes | None = None, authorization: str | None = None,
         headers: dict[str, str] | None = None) -> Answer:
    """Calls `/console/api{path}` with a Bearer token (or the Authorization header given), and any
    other headers given."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"{running.http_url}/console/api{path}", data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, json.loads(response.read()), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, json.loads(error.read()), dict(error.headers))


@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server for the console's tests, on the system clock with a short tick interval."""
    running = start(Path(tmp_path_factory.mktemp("console")) / "audiences.db", tick_interval_ms=50)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture
def space(console_server: Running) -> Space:
    """A fresh space on the shared server."""
    return new_space(console_server)


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (as `make test` does); nothing is skipped."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("Chromium is not installed and cannot be installed here (apt-get as root is needed)")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    return CHROMIUM
