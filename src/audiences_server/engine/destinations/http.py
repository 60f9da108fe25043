"""POSTing JSON over a pooled, kept-alive HTTP client (httpx), for the kinds that speak HTTP.

One client per destination, its pool sized to the requests the destination may have in flight,
so connections are opened once and reused instead of once per request. Every request has a
timeout (`request_timeout` of the delivery policy, for connecting, each read and each write), so
a slow receiver costs its own destination that long and nothing else. An outcome says whether a
failure is worth retrying and how long the receiver asked to wait (`Retry-After`, seconds or an
HTTP date).
"""

from __future__ import annotations

import functools
import math
import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import certifi
import httpx
import orjson

from audiences_server import __version__
from audiences_server.engine.destinations.base import Outcome

RETRIED_STATUSES = {408, 429}
# The longest wait a Retry-After header is read as (a day; the delivery policy's `max_backoff`,
# at most a day, caps it again), so that any value is a number the database stores.
RETRY_AFTER_MAX_MS = 86_400_000
USER_AGENT = f"audiences/{__version__}"


def json_body(value: Any) -> bytes:
    """A body as sent: compact JSON with sorted keys (what a signature covers)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def retry_after_ms(value: str | None, now_ms: int) -> int | None:
    """A Retry-After header (seconds or an HTTP date) in milliseconds from now, at most
    RETRY_AFTER_MAX_MS: a receiver asking for longer (`Infinity`, `1e300`, a date centuries
    ahead) would otherwise hold its deliveries for ever, or fail the outcome's commit with a
    number SQLite cannot store. None when it is neither seconds nor a date (`NaN` included)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_ms / 1000
        except (TypeError, ValueError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return int(min(max(0.0, seconds * 1000), RETRY_AFTER_MAX_MS))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context (certifi's CA bundle, as httpx uses) for every client: loading the bundle
    costs tens of milliseconds, which a destination would otherwise pay each time it starts."""
    return ssl.create_default_context(cafile=certifi.where())


class Poster:
    """A destination's HTTP client: httpx's pooled transport, kept-alive connections reused by
    every request, safe to share between threads.

    Requests go to the transport directly: a destination sends bare POSTs (no cookies, no
    authentication flow, no redirects followed: a 3xx parks the delivery like any other status
    not worth retrying), and skipping the client's layers for them costs a third less CPU per
    request. Each URL is parsed once.
    """

    def __init__(self, timeout_s: float, connections: int, headers: Mapping[str, str] | None = None) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._transport = httpx.HTTPTransport(verify=tls_context(), limits=limits)
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        self._urls: dict[str, httpx.URL] = {}

    def post(self, url: str, body: bytes, headers: Mapping[str, str], now_ms: int) -> Outcome:
        """Sends one request and classifies the answer: 2xx is delivered; 408, 429 and 5xx are
        retried, as are network errors and timeouts; any other status parks the delivery."""
        target = self._urls.get(url)
        if target is None:
            target = self._urls[url] = httpx.URL(url)
        request = httpx.Request("POST", target, content=body, headers={**self._headers, **headers},
                                extensions={"timeout": self._timeout})
        try:
            response = self._transport.handle_request(request)
            try:
                content = response.read()
            finally:
                response.close()
        except httpx.TransportError as failure:
            return Outcome(False, True, f"network error: {type(failure).__name__}: {failure}".rstrip(": "))
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(ok=True)
        excerpt = content[:200].decode("utf-8", "replace")
        retry = status in RETRIED_STATUSES or status >= 500
        wait = retry_after_ms(response.headers.get("Retry-After"), now_ms)
        return Outcome(False, retry, f"HTTP {status}: {excerpt}".strip(), wait)

    def close(self) -> None:
        """Closes the pool's connections."""
        self._transport.close()
