"""A manual-clock server shared by the tracking API's tests, each test sending into a space of its own,
and a plain HTTP client (urllib) that sends as Segment's libraries do."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import admin_pb2, common_pb2, profiles_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import T0

_names = itertools.count(1)


@dataclass
class Reply:
    """An HTTP response."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


def basic(token: str) -> dict[str, str]:
    """HTTP Basic as Segment's libraries send it: the write key as user name, an empty password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


def send(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> Reply:
    """Sends a request and returns the answer, whatever its status."""
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


@dataclass
class Site:
    """One space of the shared server: its name, id and a token per scope."""

    running: Running
    name: str
    space_id: int
    tokens: dict[str, str]

    @property
    def write_key(self) -> str:
        return self.tokens["write"]

    def post(self, path: str, payload: Any, headers: dict[str, str] | None = None, *, auth: bool = True) -> Reply:
        """POSTs a JSON payload (bytes are sent as they are) to a tracking path, with Basic auth unless told not."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {**(basic(self.write_key) if auth else {}), **(headers or {})}
        return send(f"{self.running.http_url}{path}", body, sent)

    def events(self) -> list[dict[str, Any]]:
        """The space's stored events, in arrival order."""
        rows = self.running.query(
            "SELECT message_id, type, event, user_id, anonymous_id, group_id, body, context, extra FROM events"
            " WHERE space_id = ? ORDER BY seq", (self.space_id,))
        names = ("messageId", "type", "event", "userId", "anonymousId", "groupId", "body", "context", "extra")
        return [{**dict(zip(names, row, strict=True)),
                 **{k: json.loads(row[i]) for i, k in ((6, "body"), (7, "context"), (8, "extra"))}} for row in rows]

    def traits(self, address: str) -> dict[str, Any]:
        """A user's traits (custom, computed and audiences) by key, through the gRPC Profiles API."""
        reply = self.running.profiles.ListTraits(
            profiles_pb2.ListTraitsRequest(profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS,
                                                                         id=address), page_size=200),
            metadata=bearer(self.tokens["read"]))
        return {trait.key: _value(trait.value) for trait in reply.traits}

    def external_ids(self, address: str) -> set[str]:
        """A user's identifiers (`type:value`), through the gRPC Profiles API."""
        reply = self.running.profiles.ListExternalIds(
            profiles_pb2.ListExternalIdsRequest(profile=common_pb2.ProfileRef(
                collection=common_pb2.COLLECTION_USERS, id=address), page_size=200),
            metadata=bearer(self.tokens["read"]))
        return {f"{item.type}:{item.value}" for item in reply.external_ids}

    def create_audience(self, key: str, definition: str) -> None:
        """Creates a users audience in this space."""
        self.running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key=key, collection=common_pb2.COLLECTION_USERS, definition=definition)),
            metadata=bearer(self.tokens["admin"]))

    def tick(self) -> None:
        """Runs evaluator ticks until nothing is left to do."""
        self.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=bearer(self.tokens["admin"]))

    def set_origins(self, *origins: str) -> subprocess.CompletedProcess[str]:
        """Sets the space's allowed origins as an operator does, with the `audiences-server` command."""
        return operator(self.running.db, "spaces", "origins", self.name, *origins)


def operator(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `audiences-server ARGS --db DB`, as an operator does next to the running server."""
    return subprocess.run([sys.executable, "-m", "audiences_server.cli", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=60, check=False)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    return None if kind == "null_value" else getattr(value, kind)


def new_site(running: Running) -> Site:
    """A fresh space with its own tokens, so that tests never see each other's calls."""
    auth = running.server.engine.auth
    name = f"site{next(_names)}"
    space = auth.create_space(name, 0)
    tokens = {scope: auth.create_token(name, scope, 0, label=f"{name}-{scope}").token
              for scope in ("write", "read", "admin")}
    return Site(running, name, space.space_id, tokens)


@pytest.fixture(scope="package")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server for the tracking API's tests."""
    running = start(Path(tmp_path_factory.mktemp("tracking")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture
def site(tracking_server: Running) -> Site:
    """A fresh space on the shared server."""
    return new_site(tracking_server)


# -- raw connections to the HTTP listener (the connection tests, the proxy tests) ---------------

PATIENCE_S = 10.0


def serve_with_figures(path: Path, figures: dict[str, Any], **settings: Any) -> Running:
    """A server started with these figures of `http.connections` (read as its listener starts)."""
    from audiences_server.http import connections

    with pytest.MonkeyPatch.context() as patch:
        for name, value in figures.items():
            patch.setattr(connections, name, value)
        return start(path / "audiences.db", **settings)


def stop(running: Running) -> None:
    running.channel.close()
    running.server.stop(grace=1)


def connect_from(running: Running, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the server's HTTP listener from a loopback address of our choosing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(PATIENCE_S)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", running.server.http_port))
    return sock


def closed(sock: socket.socket) -> bool:
    """Whether the server closes the connection (within PATIENCE_S), whatever it answered before."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the next answer on a kept-alive connection (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    length = int(found.group(1)) if found else 0
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split()[1]), rest[:length]


# -- Segment's JavaScript libraries (tests/http/node) ---------------------------------------------

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_library() -> Path:
    """tests/http/node with its locked packages installed (`npm ci`, again only when the lock
    changed): Segment's Node and browser libraries and jsdom. npm is required, not skipped for:
    these tests are what shows Segment's own libraries work unchanged."""
    npm = shutil.which("npm")
    assert npm is not None, "npm (and Node 20 or later) must be installed to run Segment's JavaScript libraries"
    stamp = NODE_DIR / "node_modules" / ".installed-stamp"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                   text=True, timeout=600, check=False)
        assert installed.returncode == 0, installed.stderr
        stamp.touch()
    return NODE_DIR
