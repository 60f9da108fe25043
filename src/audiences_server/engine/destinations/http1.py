"""POSTing to one URL over HTTP/1.1 from an event loop, on kept-alive connections.

EVENT-style webhooks send a request per change, thousands a second, so a request must cost
little: here it is one write of prepared bytes on an asyncio transport, and its answer is parsed
by httptools (llhttp, the C parser Node.js uses) and handed to a callback, with no task, client
object or thread per request. Measured on the 2-core VM: ~0.1 ms of CPU per request, against
~0.65 ms through httpx's pooled transport and ~0.3-0.4 ms through aiohttp's client.

What it does, all of it on the loop's thread:
- up to `connections` connections to the URL's origin (TLS for https, with the same CA bundle as
  the other HTTP destinations), each reused while the receiver keeps it alive; requests beyond
  that wait for one to be free;
- a timeout (`request_timeout` of the delivery policy) for connecting and, separately, for the
  whole answer once the request is written; on expiry the connection is closed;
- answers with a body of known length, chunked, or ended by closing the connection; 1xx
  answers are skipped; only the status, `Retry-After` and the first 200 bytes are kept;
- a request that failed on a reused connection before any byte of its answer arrived (the
  receiver closed an idle connection as the request went out) is written once more on a new
  connection, as browsers and HTTP clients do.
Outcomes are classified as by `http.Poster`: 2xx delivered; 408, 429, 5xx and network errors
retried; any other status parked; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import httptools

from audiences_server.engine.destinations.base import Outcome, request_url
from audiences_server.engine.destinations.http import RETRIED_STATUSES, USER_AGENT, retry_after_ms, tls_context

# Told, on the loop's thread, how one request went.
Answered = Callable[[Outcome], None]
EXCERPT_BYTES = 200


def header_lines(headers: Mapping[str, str] | list[tuple[str, str]]) -> bytes:
    """Header lines as written on the wire (`Name: value\\r\\n` each)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in pairs)


def outcome_of(status: int, retry_after: str | None, excerpt: bytes) -> Outcome:
    """A status as an outcome: 2xx delivered; 408, 429 and 5xx retried; any other parked."""
    if 200 <= status < 300:
        return Outcome(ok=True)
    retry = status in RETRIED_STATUSES or status >= 500
    wait = retry_after_ms(retry_after, time.time_ns() // 1_000_000)
    text = excerpt.decode("utf-8", "replace")
    return Outcome(False, retry, f"HTTP {status}: {text}".strip(), wait)


def network_error(kind: str, detail: object = "") -> Outcome:
    """A failure before any answer: worth retrying."""
    return Outcome(False, True, f"network error: {kind}: {detail}".rstrip(": "))


class _Exchange:
    """One request: its bytes, who is told, and whether it may be written once more."""

    __slots__ = ("answered", "data", "resent")

    def __init__(self, data: bytes, answered: Answered) -> None:
        self.data = data
        self.answered = answered
        self.resent = False


class _Connection(asyncio.Protocol):
    """One kept-alive connection: a request at a time, its answer parsed as it arrives."""

    def __init__(self, client: LoopPoster) -> None:
        self._client = client
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: _Exchange | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._answering = False  # a byte of the current answer has arrived
        self._headers_done = False
        self._retry_after: str | None = None
        self._excerpt = b""
        self.served = 0
        self.closed = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._exchange is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted any more
            return
        self._answering = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as failure:
            self._fail(network_error("bad answer", failure))

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._client.forget(self)
        if self._exchange is None:
            return
        if self._headers_done:
            # An answer whose body ends with the connection (no length given): it is complete.
            self._finish(self._parser.get_status_code(), keep=False)
        else:
            self._fail(network_error("connection closed", exc or "before an answer"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers_done, self._retry_after, self._excerpt = False, None, b""

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if len(self._excerpt) < EXCERPT_BYTES:
            self._excerpt += body[: EXCERPT_BYTES - len(self._excerpt)]

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._headers_done = False  # an interim answer (100 Continue, 103): the real one follows
            return
        self._finish(status, keep=self._parser.should_keep_alive())

    # -- requests --------------------------------------------------------------------------

    def send(self, exchange: _Exchange, timeout_s: float, loop: asyncio.AbstractEventLoop) -> None:
        """Writes a request; its answer (or failure) is told to the exchange."""
        assert self._transport is not None
        self._exchange, self._answering, self._headers_done = exchange, False, False
        self._timer = loop.call_later(timeout_s, self._timed_out)
        self._transport.write(exchange.data)

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(network_error("ReadTimeout", "no answer within the request timeout"), resend=False)

    def _finish(self, status: int, keep: bool) -> None:
        # Classified before the request is taken: had this raised once it was, nobody would
        # ever answer it, and its delivery would stay in flight for ever.
        outcome = outcome_of(status, self._retry_after, self._excerpt)
        exchange = self._take()
        if exchange is None:
            return
        self.served += 1
        if keep and not self.closed:
            self._client.release(self)
        else:
            self.close()
        exchange.answered(outcome)

    def _fail(self, outcome: Outcome, resend: bool = True) -> None:
        reused, answering = self.served > 0, self._answering
        exchange = self._take()
        self.close()
        if exchange is None:
            return
        if resend and reused and not answering and not exchange.resent:
            exchange.resent = True
            self._client.submit(exchange)
            return
        exchange.answered(outcome)

    def _take(self) -> _Exchange | None:
        """The current request, no longer this connection's; None when there is none, or when
        the client is closed (abandoned requests are not answered)."""
        exchange, self._exchange = self._exchange, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return None if self._client.closed else exchange

    def close(self) -> None:
        """Closes the connection (a request on it is told by `connection_lost`)."""
        if not self.closed:
            self.closed = True
            self._client.forget(self)
            if self._transport is not None:
                self._transport.close()


class LoopPoster:
    """One destination's POSTs to one URL, on the loop; every method runs on the loop's thread
    except the constructor."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str, timeout_s: float, connections: int,
                 headers: Mapping[str, str]) -> None:
        # Read as httpx reads it, so this request line and Host are the LIST style's: the host
        # in its `xn--` form, path and query percent-encoded (raises ValueError for a URL no
        # request can go to).
        parts = request_url(url)
        self._loop = loop
        self._tls = parts.scheme == "https"
        self._host = parts.raw_host.decode("ascii")
        self._port = parts.port or (443 if self._tls else 80)
        self._timeout_s = timeout_s
        self._limit = max(1, connections)
        target = parts.raw_path.decode("ascii")
        host = parts.netloc.decode("ascii")
        defaults = {"Host": host, "User-Agent": USER_AGENT, "Content-Type": "application/json"}
        chosen = {name.lower() for name in headers}
        self._head = f"POST {target} HTTP/1.1\r\n".encode() + header_lines(
            [*((n, v) for n, v in defaults.items() if n.lower() not in chosen), *headers.items()])
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._connecting = 0
        self._waiting: list[_Exchange] = []
        self.closed = False

    def request(self, body: bytes, headers: bytes) -> bytes:
        """A request's bytes: the prepared head, `headers` (lines as `header_lines` makes them)
        and the body. Any thread."""
        return b"%s%sContent-Length: %d\r\n\r\n%s" % (self._head, headers, len(body), body)

    def post(self, data: bytes, answered: Answered) -> None:
        """Sends a request made by `request`; `answered` is told how it went."""
        self.submit(_Exchange(data, answered))

    def submit(self, exchange: _Exchange) -> None:
        """Sends on a free connection, opens one if the pool has room, or waits for one."""
        if self.closed:
            return  # abandoned: sent again after a restart
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                self._busy.add(connection)
                connection.send(exchange, self._timeout_s, self._loop)
                return
        if len(self._busy) + self._connecting < self._limit:
            self._connecting += 1
            self._loop.create_task(self._connect(exchange))
        else:
            self._waiting.append(exchange)

    async def _connect(self, exchange: _Exchange) -> None:
        try:
            _, connection = await asyncio.wait_for(self._loop.create_connection(
                lambda: _Connection(self), self._host, self._port, ssl=tls_context() if self._tls else None),
                self._timeout_s)
        except Exception as failure:  # whatever fails, the request is answered
            self._connecting -= 1
            kind = "ConnectTimeout" if isinstance(failure, TimeoutError) else "ConnectError"
            exchange.answered(network_error(kind, failure))
            self._next()
            return
        self._connecting -= 1
        if self.closed:
            connection.close()
            return
        self._busy.add(connection)
        connection.send(exchange, self._timeout_s, self._loop)

    def release(self, connection: _Connection) -> None:
        """A connection whose answer is complete: the next waiting request, or the idle pool."""
        self._busy.discard(connection)
        if self.closed:
            connection.close()
            return
        self._idle.append(connection)
        self._next()

    def forget(self, connection: _Connection) -> None:
        """A connection closed: its place in the pool is free."""
        self._busy.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        self._next()

    def _next(self) -> None:
        if self._waiting and not self.closed and (self._idle or len(self._busy) + self._connecting < self._limit):
            self.submit(self._waiting.pop(0))

    def close(self) -> None:
        """Closes every connection; requests in flight or waiting are abandoned, unanswered."""
        self.closed = True
        self._waiting.clear()
        for connection in [*self._idle, *self._busy]:
            connection.close()
