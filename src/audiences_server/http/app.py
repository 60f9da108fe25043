"""The HTTP listener, on the same event loop as the gRPC server (aiohttp).

Routes: `/healthz` (alive), `/readyz` (migrations done and not shutting down), `/metrics`
(Prometheus), the Segment-compatible APIs registered by `http.tracking`, `http.browser_settings`
(the settings analytics.js loads) and `http.profiles`, and the web console (`http.console`,
docs/console.md). Once shutdown starts only the first three answer; every other new request is
refused (503 SHUTTING_DOWN) while those in flight finish. Every response is JSON (or the metrics'
text, or the console's pages), every request gets an `x-request-id` and one log
line, and a domain error becomes the status and body `http.errors` gives it. A client that leaves
before its request is read is no failure of the server's: it is logged at info and counted with
code 499 (nginx's "client closed request"). Bodies reach the routes as sent: the routes that read
one inflate it themselves (`http.bodies` says why). Connections are counted, capped and timed by
`http.connections`, which also decides what of aiohttp's own logging reaches the log. Each
request's client is its peer or, behind a trusted proxy, whom the proxy forwards for
(`http.proxies`): what the routes count by address and the log line names.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import structlog
from aiohttp import web

from audiences_server.engine.engine import Engine
from audiences_server.errors import AudiencesError, Unavailable, disk_full
from audiences_server.http.connections import BACKLOG, MAX_FIELD_BYTES, MAX_LINE_BYTES, Connections, ServerLog, limits
from audiences_server.http.errors import error_response
from audiences_server.http.proxies import CLIENT, FROM_PROXY, Proxies
from audiences_server.logs import request_id_of
from audiences_server.metrics import CONTENT_TYPE

log = structlog.get_logger("audiences_server.http")

T = TypeVar("T")

# The largest request body read at all (Segment's batch limit is 500 KB; the tracking routes
# apply their own limits, with Segment's codes). A larger body is answered 413 unread.
MAX_BODY_BYTES = 4 * 1024 * 1024
# The status counted (and logged) for a request whose client closed the connection before it was
# read: nobody reads the answer, and it is not a server error (nginx's code for the same).
CLIENT_CLOSED_REQUEST = 499
# What is still answered once shutdown starts (`HttpListener.refuse_new`): the probes, and the
# metrics, which store nothing; every other new request is refused (503 SHUTTING_DOWN).
ANSWERED_WHILE_STOPPING = frozenset({"/healthz", "/readyz", "/metrics"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorAnswer = Callable[[AudiencesError, web.Request], web.Response]


class Edge:
    """What the HTTP routes share: the engine, and a way to run its blocking work off the loop."""

    def __init__(self, engine: Engine, pool: Executor) -> None:
        self.engine = engine
        self._pool = pool

    async def blocking(self, function: Callable[..., T], *args: Any) -> T:
        """Runs a blocking engine call on the pool, with this request's context (log fields)."""
        copied = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, copied.run, function, *args)


EDGE = web.AppKey("edge", Edge)
# How a route answers a domain error raised before its handler runs (a request refused during
# shutdown), by route, for routes whose errors have a shape of their own (the tracking API's); the
# others answer with `http.errors.error_response`.
ERROR_ANSWERS = web.AppKey("error_answers", dict[str, ErrorAnswer])


class HttpListener:
    """The aiohttp application and its socket."""

    def __init__(self, engine: Engine, pool: Executor, ssl_context: ssl.SSLContext | None) -> None:
        self.edge = Edge(engine, pool)
        self.ready = False
        # Set once shutdown starts: new requests are refused, those in flight run to their end.
        self.stopping = False
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._ssl = ssl_context
        self._socket: socket.socket | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self.connections: Connections | None = None
        self.app = self._build()

    def _build(self) -> web.Application:
        from audiences_server.http import browser_settings, console, profiles, tracking

        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        app[EDGE] = self.edge
        app[ERROR_ANSWERS] = {}
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        tracking.add_routes(app)
        browser_settings.add_routes(app)
        profiles.add_routes(app)
        console.add_routes(app)
        return app

    async def bind(self, address: str) -> int:
        """Binds HOST:PORT (port 0 picks one) without serving yet; returns the port."""
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # No SO_REUSEPORT: a second server on the same port must fail to bind, not share it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except (OSError, ValueError) as failed:
            sock.close()
            raise OSError(f"could not listen for HTTP on {address}: {failed}") from None
        sock.listen(BACKLOG)
        sock.setblocking(False)
        self._socket = sock
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        """Serves on the bound socket."""
        figures = limits()
        # auto_decompress off: aiohttp would answer br and zstd bodies itself, in plain text, and
        # leave a body that fails to inflate unreadable; the routes inflate (`http.bodies`).
        # keepalive_timeout: aiohttp's default is 3,630 s; `http.connections` closes idle
        # connections after IDLE_TIMEOUT_S, and aiohttp is told the same so that the two agree.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0, auto_decompress=False,
                                     keepalive_timeout=figures.idle_timeout_s, max_line_size=MAX_LINE_BYTES,
                                     max_field_size=MAX_FIELD_BYTES,
                                     logger=ServerLog(logging.getLogger("aiohttp.server"), {}))
        await self._runner.setup()
        assert self._socket is not None, "bind() comes before start()"
        assert self._runner.server is not None
        loop = asyncio.get_running_loop()
        proxies = Proxies(self.edge.engine.settings.trusted_proxies)
        self.connections = Connections(loop, self._runner.server, self._ssl, figures, proxies)
        self.connections.install()
        # Served without an aiohttp site: `http.connections` wraps each connection's protocol (and
        # starts its TLS itself), so that it is counted and timed from the moment it is accepted.
        self._server = await loop.create_server(self.connections.protocol, sock=self._socket, backlog=BACKLOG)
        self.ready = True

    def refuse_new(self) -> None:
        """Shutdown starts: `/readyz` answers 503, and every new request but those of
        `ANSWERED_WHILE_STOPPING` is refused (503 SHUTTING_DOWN); requests in flight go on."""
        self.ready = False
        self.stopping = True
        if self._in_flight == 0:
            self._drained.set()

    async def drain(self, grace: float) -> None:
        """Waits until no request is in flight (after `refuse_new`), for `grace` seconds at most."""
        try:
            async with asyncio.timeout(max(grace, 0.0)):
                await self._drained.wait()
        except TimeoutError:
            log.info("http_drain_timed_out", in_flight=self._in_flight, grace_s=grace)

    async def stop(self) -> None:
        """Stops serving and closes the socket."""
        self.ready = False
        if self._server is not None:
            self._server.close()  # no new connections; those open are aiohttp's to finish
        if self._runner is not None:
            await self._runner.cleanup()
        elif self._socket is not None:
            self._socket.close()
        if self.connections is not None:
            self.connections.close()
            await asyncio.sleep(0)  # the connections closed last are told so, and their tasks end

    async def _readyz(self, _request: web.Request) -> web.Response:
        if not self.ready:
            return web.json_response({"status": "not ready"}, status=503)
        if self.edge.engine.writer.file_gone():  # nothing can be stored: take it out of rotation
            return web.json_response({"status": "not ready", "reason": "DATABASE_GONE"}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await self.edge.blocking(self.edge.engine.metrics.render)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connections = self.connections
        if connections is None:
            return await self._handle(request, handler)
        # The request's head is complete and its answer will be ready when this returns: its
        # connection has no deadline meanwhile, and is idle from then on (`http.connections`).
        protocol = request.protocol
        connections.started(protocol)
        try:
            return await self._handle(request, handler)
        finally:
            connections.finished(protocol, request.content)

    def _client(self, request: web.Request) -> str:
        """The address of the client the request is from: its peer's, or, from a trusted proxy, whom
        it forwards for (`http.proxies`)."""
        connections = self.connections
        client = None if connections is None else connections.client(request.protocol, request.headers)
        return client or request.remote or ""

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        structlog.contextvars.clear_contextvars()
        request_id = request_id_of(request.headers.get("x-request-id"))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        request[CLIENT] = self._client(request)
        request[FROM_PROXY] = self.connections is not None and self.connections.trusted(request.protocol)
        started = time.perf_counter()
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        self._in_flight += 1
        try:
            if self.stopping and route not in ANSWERED_WHILE_STOPPING:
                raise Unavailable("the server is shutting down; retry shortly", reason="SHUTTING_DOWN",
                                  metadata={"retry_after_s": "1"})
            response = await handler(request)
        except web.HTTPException as http_error:
            response = _plain_error(http_error)
        except AudiencesError as error:
            response = request.app[ERROR_ANSWERS].get(route, error_response)(error, request)
        except Exception as failure:
            response = _failed(request, route, failure, request_id)
        finally:
            self._in_flight -= 1
            if self.stopping and self._in_flight == 0:
                self._drained.set()
        response.headers["x-request-id"] = request_id
        response.headers["Request-Id"] = request_id  # where Segment's Profile API reference says it is
        seconds = time.perf_counter() - started
        log.info("http", method=request.method, route=route, status=response.status,
                 duration_ms=round(seconds * 1000, 3), client=request[CLIENT])
        self.edge.engine.metrics.observe_call("http", f"{request.method} {route}", str(response.status), seconds)
        return response


def _failed(request: web.Request, route: str, failure: Exception, request_id: str) -> web.Response:
    """The answer to a request whose handler failed: a 500 logged with its traceback, unless the
    client closed the connection before its request was read, which no one will read (499, at info).
    Logged by route, as the access line is, not by path: paths carry write keys (analytics.js's
    settings) and profile identifiers (the Profile API's `email:…`)."""
    if isinstance(failure, ConnectionResetError) and _client_gone(request):
        log.info("http_client_gone", method=request.method, route=route)
        return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
    # In the route's own shape (the tracking API's, the Profile API's `server_error`).
    answer = request.app[ERROR_ANSWERS].get(route, error_response)
    full = disk_full(failure)
    if full is not None:  # nothing stored, and retrying once space is freed succeeds
        log.error("disk_full", route=route, error=str(failure))
        return answer(full, request)
    log.exception("http_failed", route=route, exc_info=failure)
    return answer(AudiencesError(f"internal error; request id {request_id}"), request)


def _client_gone(request: web.Request) -> bool:
    """Whether the request's connection is closed (aiohttp drops the transport when it is lost)."""
    transport = request.transport
    return transport is None or transport.is_closing()


# The reasons of aiohttp's own answers, by status, where the code is not one (its code otherwise).
PLAIN_REASONS = {413: "BODY_TOO_LARGE"}


def _plain_error(http_error: web.HTTPException) -> web.Response:
    """aiohttp's own answers (no such route, method not allowed, body too large) as JSON errors,
    in the shape of every other: `{"error": {"code", "reason", "message"}}`."""
    code = http_error.reason.upper().replace(" ", "_")
    body = {"error": {"code": code, "reason": PLAIN_REASONS.get(http_error.status, code),
                      "message": http_error.reason}}
    response = web.json_response(body, status=http_error.status)
    for name in ("Allow", "Retry-After"):
        if name in http_error.headers:
            response.headers[name] = http_error.headers[name]
    return response


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})
