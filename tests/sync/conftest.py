"""A local HTTP receiver that can be told to fail, and a manual-clock server shared by the sync tests."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from audiences.v1 import common_pb2, sync_pb2
from google.protobuf import duration_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import T0, Space, new_space
from tests.sync.pg import PostgresServer

# A Standard Webhooks secret: `whsec_` and the base64 of 32 bytes.
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@dataclass
class Request:
    """One request the receiver answered with 2xx."""

    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records what it accepts and fails on demand.

    `failures` is a queue of scripted answers, used one per request before any 2xx:
    an int status, ("sleep", seconds) to outlast the client's timeout, or ("429", seconds).
    """

    port: int = 0
    accepted: list[Request] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)
    attempts: int = 0
    # What a receiver of signed webhooks does: verify each request (400 when it does not verify)
    # and process each webhook-id once (a replay is answered 200 and not processed again; an id
    # counts as processed only once answered 2xx, so a retry after a failure is processed).
    verifying: bool = False
    refused: list[Request] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    fail_when: Callable[[Any], int | None] | None = None
    retry_after: str = "0.3"  # sent with a 429
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                refusal = receiver._refusal(Request(self.path, dict(self.headers), None, raw))
                if refusal is not None:
                    self.send_response(refusal)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, wait = receiver._answer(json.loads(raw))
                if wait:
                    time.sleep(wait)
                if status < 300:
                    # Recorded before answering: once the sender sees the answer it may send the
                    # next request, which must not be recorded first.
                    with receiver.lock:
                        receiver.accepted.append(Request(self.path, dict(self.headers), json.loads(raw), raw))
                        # Processed: a later request with this id is a replay (or a resend).
                        receiver.seen_ids.add(self.headers.get("webhook-id", ""))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _refusal(self, request: Request) -> int | None:
        """When verifying: 400 for a request that does not verify, 200 (acknowledged, not
        processed) for a webhook-id already processed; None to process the request."""
        if not self.verifying:
            return None
        try:
            standardwebhooks.Webhook(SECRET).verify(request.raw, request.headers)
        except standardwebhooks.WebhookVerificationError:
            with self.lock:
                self.refused.append(request)
            return 400
        with self.lock:
            replay = request.headers["webhook-id"] in self.seen_ids
            if replay:
                self.refused.append(request)
        return 200 if replay else None

    def _answer(self, body: Any) -> tuple[int, float]:
        with self.lock:
            self.attempts += 1
            scripted = self.failures.pop(0) if self.failures else None
        if scripted is None and self.fail_when is not None:
            scripted = self.fail_when(body)
        if scripted is None:
            return 200, 0
        if isinstance(scripted, tuple) and scripted[0] == "sleep":
            return 200, scripted[1]
        return int(scripted), 0

    def stop(self) -> None:
        """Stops listening: connections are refused until `start` again (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def calls(self) -> list[dict[str, Any]]:
        """Every call accepted, in arrival order (batches flattened)."""
        with self.lock:
            bodies = [r.body for r in self.accepted]
        return [c for b in bodies for c in (b.get("batch", [b]))]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that accepts everything until told otherwise."""
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="package")
def sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server for the sync tests (deliveries run on the wall clock)."""
    running = start(Path(tmp_path_factory.mktemp("sync")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture(scope="package")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the sync tests that need one (in a folder of /tmp that
    the `postgres` user can reach when the tests run as root)."""
    root = Path(tempfile.mkdtemp(prefix="audiences-pg-"))
    server = PostgresServer(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def space(sync_server: Running) -> Space:
    """A fresh space on the shared server."""
    return new_space(sync_server)


def ms(value: int) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromMilliseconds(value)
    return out


FAST = sync_pb2.DeliveryPolicy(max_attempts=6, initial_backoff=ms(20), max_backoff=ms(200),
                               request_timeout=ms(400))


def admin(space: Space) -> tuple[tuple[str, str], ...]:
    return bearer(space.tokens["admin"])


def ref(key: str, kind: str = "audience", collection: str = "users") -> common_pb2.ComputationRef:
    kinds = {"audience": common_pb2.COMPUTATION_KIND_AUDIENCE,
             "computed_trait": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT}
    collections = {"users": common_pb2.COLLECTION_USERS, "accounts": common_pb2.COLLECTION_ACCOUNTS}
    return common_pb2.ComputationRef(kind=kinds[kind], collection=collections[collection], key=key)


def webhook(space: Space, key: str, url: str, *, style: int = sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT,
            policy: sync_pb2.DeliveryPolicy = FAST, **extra: Any) -> sync_pb2.Destination:
    """Creates a webhook destination signed with SECRET."""
    config = sync_pb2.WebhookConfig(url=url, signing_secret=SECRET, payload_style=style,
                                    **{"headers": {"X-Team": "growth"}, **extra})
    message = sync_pb2.Destination(key=key, webhook=config, delivery_policy=policy)
    return space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                                metadata=admin(space)).destination


def connect(space: Space, destination: str, key: str, kind: str = "audience", collection: str = "users",
            **options: Any) -> sync_pb2.Connection:
    connection = sync_pb2.Connection(destination_key=destination, computation=ref(key, kind, collection), **options)
    return space.running.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=connection),
                                                 metadata=admin(space)).connection


def wait_for(condition: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Polls until the condition holds; fails the test after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def verify_signature(request: Request) -> bool:
    """What a receiver does: verify the Standard Webhooks signature over the raw body, as sent."""
    try:
        standardwebhooks.Webhook(SECRET).verify(request.raw, request.headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True
