"""The HTTP listener's connections: how many there may be, from whom, and for how long.

aiohttp keeps a connection for as long as its client likes: one that sent nothing, or half a
request head, was still open after 400 s, and about 20,000 of them took every file descriptor of
the process, after which neither HTTP nor gRPC answered. Here every connection is counted and
timed from the moment it is accepted (docs/operations.md, "HTTP connections"):

- a request head (the TLS handshake included, for the first) must be complete `HEAD_TIMEOUT_S`
  after the connection opened, or after the first byte of a later request;
- a connection with no request in progress is closed `IDLE_TIMEOUT_S` after its last answer,
  whether it waits quietly or does not read that answer;
- connections are capped in all (`MAX_CONNECTIONS`, at most half the process's open-file limit,
  so that gRPC and the database keep theirs) and per client address
  (`MAX_CONNECTIONS_PER_CLIENT`; not for a trusted proxy's address, `http.proxies`, which speaks
  for many clients). A connection past a cap takes the place of the oldest one with
  no request in progress (of its address, for the address's cap): an idle one first, else the
  one that has waited longest for its head; only when every connection has a request in
  progress is the new one closed at once. An idle keep-alive connection costs its client one
  reconnection, a request in progress is never cut, and connections held open without ever
  sending a request (what a flood holds) cannot keep new clients out: they are the first to go.

What a flood repeats (connections refused or evicted, heads that never came, `accept()` failing
for want of file descriptors) is logged once per `LOG_PERIOD_S` with a count, not once per event,
and a request aiohttp cannot parse is logged at info without its bytes (`ServerLog`).

Why a protocol wrapped around aiohttp's rather than a subclass of it: aiohttp builds its
`RequestHandler` inside `web.Server.__call__` with no class to substitute, and its timers
(`_keepalive_handle`, `_process_keepalive`, `_waiter`) are private and have changed across 3.x
releases (the keep-alive default among them). What is public and stable is the asyncio protocol
interface and `web.Server` being the protocol factory (what aiohttp's own sites hand to
`loop.create_server`). A protocol that wraps the handler aiohttp makes sees each connection
before aiohttp does, so one over a cap never gets a handler or a task, and sees every byte; the
application's middleware says when a request started (its head was complete) and when its
answer is ready (`started`, `finished`). TLS is started by the wrapper (`loop.start_tls`) rather
than given to `create_server`: with `create_server(ssl=…)` the protocol hears of a connection
only once its handshake is done, so clients that never send a ClientHello would hold file
descriptors no cap sees.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, cast

import structlog
from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from multidict import MultiMapping

from audiences_server.http.proxies import Proxies

log = structlog.get_logger("audiences_server.http")

# A request head must be complete this long after the connection opened (its TLS handshake
# included) or after the first byte of a later request. A head is a few hundred bytes, sent in
# one round trip; 20 s is Apache's default (mod_reqtimeout) and leaves a slow mobile link its
# retransmissions, while a connection that sends nothing, or half a head, goes within 20 s.
HEAD_TIMEOUT_S = 20.0
# A connection with no request in progress is closed this long after its last answer. aiohttp
# 3.14's own default (keepalive_timeout) is 3,630 s; 75 s is nginx's, longer than the 60 s after which
# common proxies and load balancers (nginx's upstream keep-alive, AWS's ALB) drop an idle
# connection themselves, so a proxy in front closes first and never reuses a connection the
# server has just closed.
IDLE_TIMEOUT_S = 75.0
# The longest request line read, and the longest header line: aiohttp's 8,190 bytes refused a
# Profile API call with an `include` of some 900 trait keys; a header stays at its default.
MAX_LINE_BYTES = 65_536
MAX_FIELD_BYTES = 8_190
# The reason of a request aiohttp's parser refuses, by status.
_UNREADABLE = {400: "REQUEST_MALFORMED", 413: "PAYLOAD_TOO_LARGE", 431: "HEADERS_TOO_LARGE"}
# Connections open at once, at most; fewer when half the process's open-file limit is lower
# (`limits`). Past this, the oldest connection with no request in progress is closed to make
# room (`Connections._evict`), or, when every one has a request in progress, the new one is.
MAX_CONNECTIONS = 4096
# Connections of one client address (an IPv6 address counts by its /64, `client_of`), at most;
# never more than a quarter of the total, so one address cannot hold them all. A trusted proxy's
# address has no such cap (only the total's): it speaks for many clients.
MAX_CONNECTIONS_PER_CLIENT = 256
# What a flood repeats is logged at most once per this period, with a count.
LOG_PERIOD_S = 10.0
# The listening socket's backlog (connections the kernel completed and the server has not
# accepted yet).
BACKLOG = 1024
# What asyncio reports, through the loop's exception handler, when accept() fails for want of
# file descriptors or memory (`BaseSelectorEventLoop._accept_connection`).
_ACCEPT_FAILED = "socket.accept() out of system resource"

# A connection's states: waiting for a request head, handling a request, idle between requests.
_WAITING, _BUSY, _IDLE = "waiting", "busy", "idle"
# At most this many connections of each state (idle, then waiting) are looked at to find one to
# evict, the oldest first: an eviction costs the same however many connections are open.
_EVICTION_CANDIDATES = 16


@dataclass(frozen=True)
class Limits:
    """The figures a listener runs with."""

    total: int
    per_client: int
    head_timeout_s: float
    idle_timeout_s: float


def limits() -> Limits:
    """The module's figures as they are now, the caps held under the process's open-file limit:
    at most half of it for HTTP connections, the rest left to gRPC, the database and the logs."""
    total = MAX_CONNECTIONS
    soft = open_file_limit()
    if soft is not None:
        total = min(total, soft // 2)
    total = max(1, total)
    per_client = max(1, min(MAX_CONNECTIONS_PER_CLIENT, total // 4))
    return Limits(total, per_client, HEAD_TIMEOUT_S, IDLE_TIMEOUT_S)


def open_file_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on a POSIX system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


@functools.lru_cache(maxsize=4096)
def client_of(host: str | None) -> str:
    """The address a client is counted under: its IP address; an IPv6 address by its /64 (what one
    subscriber is given: a single host may use all of it), an IPv4-mapped IPv6 address as IPv4."""
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _host(peername: Any) -> str | None:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return None


class Tally:
    """An event a flood repeats, logged at most once per `LOG_PERIOD_S`: the first at once, then,
    at the end of each period in which more came, one line saying how many (`count`, with the
    fields of the latest)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: str, level: str) -> None:
        self._loop = loop
        self._event = event
        self._level = level
        self._count = 0
        self._fields: dict[str, Any] = {}
        self._handle: asyncio.TimerHandle | None = None

    def add(self, **fields: Any) -> None:
        """Counts one occurrence."""
        if self._handle is not None:
            self._count += 1
            self._fields = fields
            return
        self._emit(1, fields)
        self._handle = self._loop.call_later(LOG_PERIOD_S, self._flush)

    def close(self) -> None:
        """Logs what is counted and not logged yet; the next occurrence is logged at once."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._count:
            self._emit(self._count, self._fields)
            self._count = 0

    def _flush(self) -> None:
        self._handle = None
        if self._count:
            self._emit(self._count, self._fields)
            self._count = 0
            self._handle = self._loop.call_later(LOG_PERIOD_S, self._flush)

    def _emit(self, count: int, fields: dict[str, Any]) -> None:
        getattr(log, self._level)(self._event, count=count, period_s=LOG_PERIOD_S, **fields)


class _Client:
    """One client address's connections: how many, and those with no request in progress, the
    oldest first (dicts keep their insertion order)."""

    __slots__ = ("count", "idle", "waiting")

    def __init__(self) -> None:
        self.count = 0
        self.idle: dict[_Connection, None] = {}
        self.waiting: dict[_Connection, None] = {}


class Connections:
    """Every connection of a listener: the protocol factory given to `loop.create_server`, the caps,
    and what the middleware tells of requests (`started`, `finished`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: web.Server, ssl_context: ssl.SSLContext | None,
                 figures: Limits, proxies: Proxies | None = None) -> None:
        self.loop = loop
        self.ssl = ssl_context
        self.limits = figures
        self.proxies = proxies if proxies is not None else Proxies()
        self._server = server
        self._open: set[_Connection] = set()
        self._clients: dict[str, _Client] = {}
        self._all = _Client()  # every address's connections together
        self._by_handler: dict[web.RequestHandler, _Connection] = {}
        # One tally per reason, so that a flood of one kind does not hide the other in the counts.
        self.refused = {reason: Tally(loop, "http_connections_refused", "warning")
                        for reason in ("too_many_from_client", "too_many_connections")}
        self.evicted = {state: Tally(loop, "http_connections_evicted", "info") for state in (_IDLE, _WAITING)}
        self.timed_out = Tally(loop, "http_head_timeouts", "info")
        self.accept_failed = Tally(loop, "http_accept_failed", "error")
        self._previous_handler: Any = None
        self._installed = False

    def protocol(self) -> asyncio.Protocol:
        """A new connection's protocol (the factory given to `loop.create_server`)."""
        return _Connection(self)

    @property
    def count(self) -> int:
        """Connections open and counted."""
        return len(self._open)

    def started(self, handler: object) -> None:
        """A request of the connection of aiohttp's `handler` (`request.protocol`) reached the routes."""
        connection = self._by_handler.get(cast(web.RequestHandler, handler))
        if connection is not None:
            connection.busy()

    def finished(self, handler: object, payload: StreamReader) -> None:
        """That request's answer is ready (aiohttp writes it next); `payload` is its body."""
        connection = self._by_handler.get(cast(web.RequestHandler, handler))
        if connection is not None:
            connection.done(payload)

    def trusted(self, handler: object) -> bool:
        """Whether the peer of the connection of aiohttp's `handler` is a trusted proxy."""
        connection = self._by_handler.get(cast(web.RequestHandler, handler))
        return connection is not None and connection.trusted

    def client(self, handler: object, headers: MultiMapping[str]) -> str | None:
        """The address of the client a request of the connection of aiohttp's `handler` is from: the
        peer's, or, from a trusted proxy, whom its X-Forwarded-For `headers` name (`Proxies.client`);
        None for a connection not counted here."""
        connection = self._by_handler.get(cast(web.RequestHandler, handler))
        if connection is None:
            return None
        if not connection.trusted:
            return connection.host
        return self.proxies.client(connection.host, headers.getall("X-Forwarded-For", ()))

    def install(self) -> None:
        """Takes the loop's exception handler, to log accept() failures once per period (asyncio
        reports each with a traceback, up to the backlog's length at every turn of the loop:
        ~10,000 lines a second once file descriptors ran out). Every other report goes where it
        went before."""
        self._previous_handler = self.loop.get_exception_handler()
        self.loop.set_exception_handler(self._exception)
        self._installed = True

    def close(self) -> None:
        """Closes what is left (connections aiohttp does not know of: handshakes, refusals), logs the
        counts not logged yet, and gives the loop its exception handler back."""
        for connection in list(self._open):
            connection.abort()
        for tally in (*self.refused.values(), *self.evicted.values(), self.timed_out, self.accept_failed):
            tally.close()
        if self._installed and self.loop.get_exception_handler() == self._exception:
            self.loop.set_exception_handler(self._previous_handler)
        self._installed = False

    def _exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        failure = context.get("exception")
        if context.get("message") == _ACCEPT_FAILED and isinstance(failure, OSError):
            name = errno.errorcode.get(failure.errno or 0, str(failure.errno))
            try:
                address = str(context["socket"].getsockname())
            except (KeyError, OSError):
                address = ""
            # asyncio stops accepting for a second, then tries again; the kernel keeps what comes meanwhile.
            self.accept_failed.add(error=name, address=address,
                                   message=f"accept() failed: {failure.strerror}; new connections wait until it "
                                   "succeeds (EMFILE: the process's open-file limit is reached)")
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    # -- the connections' bookkeeping (called by `_Connection`) ---------------------------------------

    def admit(self, connection: _Connection) -> bool:
        """Counts a new connection, making room if need be (`_evict`); False when it is refused."""
        client = self._clients.get(connection.client)
        if client is None:
            client = self._clients[connection.client] = _Client()
        if client.count >= self.limits.per_client and not connection.trusted and not self._evict(client):
            self._refuse(connection, "too_many_from_client", self.limits.per_client)
            return False
        if self._all.count >= self.limits.total and not self._evict(self._all):
            self._refuse(connection, "too_many_connections", self.limits.total)
            if client.count == 0:
                del self._clients[connection.client]
            return False
        client.count += 1
        self._all.count += 1
        self._open.add(connection)
        return True

    def move(self, connection: _Connection, state: str) -> None:
        """Files a counted connection under its new state (the newest of it)."""
        if connection not in self._open:
            return
        client = self._clients.get(connection.client)
        for group in (self._all, client) if client is not None else (self._all,):
            group.idle.pop(connection, None)
            group.waiting.pop(connection, None)
            if state == _IDLE:
                group.idle[connection] = None
            elif state == _WAITING:
                group.waiting[connection] = None

    def release(self, connection: _Connection) -> None:
        """Forgets a connection that is closed or being closed."""
        if connection not in self._open:
            return
        self.move(connection, _BUSY)  # out of the idle and waiting lists
        self._open.discard(connection)
        if connection.handler is not None:
            self._by_handler.pop(connection.handler, None)
        self._all.count -= 1
        client = self._clients.get(connection.client)
        if client is not None:
            client.count -= 1
            if client.count <= 0:
                del self._clients[connection.client]

    def attach(self, connection: _Connection) -> web.RequestHandler:
        """aiohttp's handler for an admitted connection."""
        handler = self._server()
        if type(handler) is web.RequestHandler:  # as aiohttp makes it, answering parse errors as JSON
            handler.__class__ = _JsonErrors
        self._by_handler[handler] = connection
        return handler

    def _evict(self, group: _Client) -> bool:
        """Closes the group's oldest connection with no request in progress: an idle one that has
        written all of its answers, else the one waiting longest for a head; False if none."""
        for state, candidates in ((_IDLE, group.idle), (_WAITING, group.waiting)):
            for index, connection in enumerate(candidates):
                if index >= _EVICTION_CANDIDATES:
                    break
                if state == _WAITING or connection.written():
                    self.evicted[state].add(state=state, client=connection.client)
                    connection.abort()
                    return True
        return False

    def _refuse(self, connection: _Connection, reason: str, limit: int) -> None:
        self.refused[reason].add(reason=reason, limit=limit, client=connection.client)


class _Connection(asyncio.Protocol):
    """One accepted connection, around aiohttp's handler for it (see the module's docstring)."""

    __slots__ = ("_app", "_early", "_eof", "_guard", "_raw", "_requests", "_state", "_timer", "_tls",
                 "_unread", "client", "closed", "handler", "host", "trusted")

    def __init__(self, guard: Connections) -> None:
        self._guard = guard
        self.host = ""  # the peer's address
        self.client = ""  # what the peer is counted under (`client_of`)
        self.trusted = False  # whether the peer is a trusted proxy
        self.handler: web.RequestHandler | None = None
        self.closed = False
        self._raw: asyncio.Transport | None = None  # the TCP connection
        self._app: asyncio.Transport | None = None  # what aiohttp writes to: the TCP connection, or TLS over it
        self._state = _BUSY  # filed as waiting once admitted
        self._requests = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tls: asyncio.Task[None] | None = None
        self._early: list[bytes] = []  # TLS: bytes decrypted before aiohttp's handler was made
        self._eof = False
        self._unread: StreamReader | None = None  # the body of the last request, if not read to its end

    # -- asyncio's protocol interface -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        self._raw = raw
        self.host = _host(raw.get_extra_info("peername")) or ""
        self.client = client_of(self.host)
        self.trusted = self._guard.proxies.trusts(self.host)
        if not self._guard.admit(self):
            self.closed = True
            raw.abort()
            return
        self._enter(_WAITING, self._guard.limits.head_timeout_s)
        if self._guard.ssl is None:
            self._attach(raw)
            return
        # Reading waits for the handshake: start_tls takes the connection over in a later step.
        raw.pause_reading()
        self._tls = self._guard.loop.create_task(self._start_tls(raw, self._guard.ssl))

    def data_received(self, data: bytes) -> None:
        handler = self.handler
        if handler is None:
            if not self.closed:
                self._early.append(data)
            return
        if self._state == _IDLE and (self._unread is None or self._unread.is_eof()):
            # The first byte of the next request (not the rest of a body its route did not read,
            # which aiohttp reads and drops): its head has HEAD_TIMEOUT_S from now.
            self._enter(_WAITING, self._guard.limits.head_timeout_s)
        handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self.handler is None:
            self._eof = True
        else:
            self.handler.eof_received()  # returns None: the transport closes its side
        return None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._forget()
        if self.handler is not None:
            self.handler.connection_lost(exc)
        unread, self._unread = self._unread, None
        if unread is not None and not unread.is_eof():
            # aiohttp reads what is left of a body its route did not read (to take the next request
            # on the connection), for up to 10 s, and a lost connection does not end that wait: the
            # task would outlive the connection, and a stop of the server. No byte can come now.
            unread.feed_eof()

    # -- requests (from the middleware, through `Connections`) ------------------------------------------

    def busy(self) -> None:
        """A request is being handled: no deadline runs (the routes keep their own)."""
        self._requests += 1
        self._unread = None
        if not self.closed:
            self._enter(_BUSY, None)

    def done(self, payload: StreamReader) -> None:
        """A request's answer is ready: idle from here, until the next request's first byte."""
        self._requests -= 1
        self._unread = None if payload.is_eof() else payload
        if self._requests > 0 or self.closed:
            return
        self._enter(_IDLE, self._guard.limits.idle_timeout_s)

    def written(self) -> bool:
        """Whether everything answered so far was handed to the kernel."""
        return all(transport.get_write_buffer_size() == 0 for transport in (self._app, self._raw)
                   if transport is not None and not transport.is_closing())

    def abort(self) -> None:
        """Closes the connection now, dropping what it has not written, and forgets it."""
        self._forget()
        if self._tls is not None:
            self._tls.cancel()
        if self._raw is not None:
            self._raw.abort()

    # -- inside -------------------------------------------------------------------------------------------

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = self._guard.loop
        try:
            transport = await loop.start_tls(raw, self, context, server_side=True,
                                             ssl_handshake_timeout=self._guard.limits.head_timeout_s)
        except asyncio.CancelledError:
            self._forget()
            raise
        except Exception:  # a handshake that failed or was abandoned: asyncio logs none either
            self._forget()
            raw.abort()
            return
        finally:
            self._tls = None
        if transport is None or self.closed:  # the connection went during the handshake
            self._forget()
            return
        self._attach(transport)

    def _attach(self, transport: asyncio.Transport) -> None:
        self._app = transport
        handler = self.handler = self._guard.attach(self)
        handler.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)
        if self._eof:
            handler.eof_received()

    def _enter(self, state: str, seconds: float | None) -> None:
        """Moves to `state`, with `seconds` to leave it (None: no deadline)."""
        self._state = state
        self._guard.move(self, state)
        self._cancel_timer()
        if seconds is not None:
            self._timer = self._guard.loop.call_later(seconds, self._expire)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.closed or self._state == _BUSY:
            return
        if self._state == _WAITING:
            # No complete head in time: whoever sent half of one (or nothing) is not waited for.
            self._guard.timed_out.add(client=self.client, timeout_s=self._guard.limits.head_timeout_s)
            self.abort()
        elif self.handler is not None and self.written():
            # An idle keep-alive connection, closed as aiohttp closes one (and counted until it is).
            self.handler.force_close()
        else:
            self.abort()  # an answer its client does not read

    def _forget(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._cancel_timer()
        self._early = []
        self._guard.release(self)


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger (`logger` of its `RequestHandler`), with what it logs of requests it
    cannot parse made one info line.

    aiohttp logs each of those ("Error handling request") at error level, with a traceback whose
    message quotes the offending line as received: anyone could write error lines at will, and an
    Authorization header with a control character in it would be logged in clear. Here such a
    request is `http_request_malformed` at info (at debug for bytes that are not HTTP at all, as
    aiohttp itself does for them): the status answered, the parser's error class and, when it is
    llhttp's own fixed description, that description, and never a byte of the request. Everything
    else aiohttp logs goes to its logger as before, at its level.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        failure = kwargs.get("exc_info")
        if not isinstance(failure, HttpProcessingError):
            super().log(level, msg, *args, **kwargs)
            return
        fields: dict[str, Any] = {"logger": self.logger.name, "status": failure.code,
                                  "error": type(failure).__name__}
        detail = _parser_description(failure.message)
        if detail:
            fields["detail"] = detail
        if len(args) == 1 and isinstance(args[0], str):  # "Error handling request from %s", request.remote
            fields["client"] = args[0]
        (log.debug if level <= logging.DEBUG else log.info)("http_request_malformed", **fields)


# llhttp's descriptions of its errors are fixed English phrases ("Invalid header value char");
# aiohttp writes one before ":\n\n" and the offending bytes after it.
_DESCRIPTION = re.compile(r"[A-Za-z][A-Za-z0-9 ,.'()_/-]{0,99}")


def _parser_description(message: str) -> str | None:
    """llhttp's fixed description of a parser error, without the bytes aiohttp quotes after it; None
    when the message is not of that form (aiohttp's own errors quote the bytes in their text)."""
    head, separator, _ = message.partition(":\n\n")
    if not separator:
        return None
    head = head.rpartition("\n")[2].strip()  # BadStatusLine puts "Bad status line:" first
    return head if _DESCRIPTION.fullmatch(head) else None


class _JsonErrors(web.RequestHandler):
    """aiohttp's handler, answering a request its parser refuses as the routes answer errors."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        return _json_error(super().handle_error(request, status, exc, message), status, exc, message)


def _json_error(response: web.StreamResponse, status: int, exc: BaseException | None,
                message: str | None) -> web.StreamResponse:
    """aiohttp's answer to a request its parser refuses (a request line or header too long, a
    malformed chunk, Content-Length with chunked), as the routes answer errors: JSON with the
    reason in both the tracking API's and the Profile API's places, not plain text quoting the
    request's bytes back. Any other answer (a 500) is aiohttp's own."""
    reason = _UNREADABLE.get(status)
    if reason is None or not isinstance(response, web.Response) or response.content_type != "text/plain":
        return response
    said = _parser_description(message) if message else None
    text = f"the request cannot be read: {said or 'it is not HTTP/1.1 this server reads'}"
    if isinstance(exc, LineTooLong):
        text = (f"the request cannot be read: its request line is longer than {MAX_LINE_BYTES:,} bytes or a header"
                f" longer than {MAX_FIELD_BYTES:,}")
    answer = web.json_response({"success": False, "code": reason, "message": text,
                                "error": {"code": "INVALID_ARGUMENT", "reason": reason, "message": text}},
                               status=status)
    answer.force_close()
    return answer
