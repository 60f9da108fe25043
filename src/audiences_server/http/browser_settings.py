"""The settings analytics.js loads before it sends, served as Segment's CDN serves them.

    GET /v1/projects/{writeKey}/settings    (and HEAD, and OPTIONS for a browser's preflight)

analytics.js (`@segment/analytics-next`) starts by fetching `${cdnURL}/v1/projects/${writeKey}/settings`
(its "CDN settings") and fails to load on anything but a 2xx. With `cdnURL` pointing at this
listener, a page needs nothing inlined: the answer names this server as the place to send.

The body holds only what the library reads, none of Segment's destinations:

- `integrations["Segment.io"]`: `apiKey` (the key itself), `apiHost` (host and path, no scheme:
  `track.shop.example/v1`; the library posts to `${protocol}://${apiHost}/t` and the like) and
  `protocol`. A page may still override them, or add `deliveryStrategy`, in its load options.
- `metrics: {"sampleRate": 0}`: without it the library samples every telemetry counter and posts
  them to Segment's `api.segment.io/v1/m`; at 0 it starts no telemetry timer and keeps nothing,
  so a page loaded this way sends nothing to Segment's servers.
- `plan`, `middlewareSettings`, `enabledMiddleware`, `legacyVideoPluginsEnabled`,
  `remotePlugins`, `edgeFunction`: empty or off, so that the library loads no destination,
  middleware or plugin (from Segment's CDN or anywhere).

The host is the request's `Host` and the protocol its connection's (https on a TLS listener).
From a trusted proxy (`http.proxies`, `--trusted-proxies`), `X-Forwarded-Proto` and
`X-Forwarded-Host` are believed instead when present, their first value (what the proxy nearest
the browser saw); from any other peer they are ignored, so a client that connects directly cannot
make the settings name another server. Whichever header is used must be a host name or IP address
with an optional port, or the request is refused (400): nothing else is written into a body.

The answer depends on `Host`, so only the browser may keep it (`Cache-Control: private`, a
minute); errors are not kept at all, so a key created a moment later works on the next load.

The key must be a `write` token, checked as the tracking API checks it; any other key (unknown,
revoked, expired, or a token of another scope) is answered 404 in the tracking API's error shape,
as Segment's CDN answers a write key it does not know, with one message whatever the cause, so
the answer tells nothing about spaces or tokens. The page fetches the settings from its own
origin, so the tracking API's CORS rule applies: a request with an `Origin` gets the settings
only when the key's space allows that origin (403 ORIGIN_NOT_ALLOWED otherwise); every answer to
an origin some space allows, errors included, is readable by the page, so that the reason shows
in its console.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from aiohttp import web

from audiences_server.engine.auth import Auth
from audiences_server.engine.origins import AllowedOrigins
from audiences_server.errors import (
    AudiencesError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from audiences_server.http.app import EDGE, Edge
from audiences_server.http.auth import granted
from audiences_server.http.proxies import FROM_PROXY
from audiences_server.http.tracking import (
    HEADER_LIST,
    PREFLIGHT_MAX_AGE_S,
    TRACKING,
    TrackingApi,
    check_origin,
    tracking_error,
)
from audiences_server.store.spaces import Grant

PATH = "/v1/projects/{writeKey}/settings"
METHODS = "GET, HEAD, OPTIONS"
# How long the browser may keep the settings (a page loads them on every page view).
MAX_AGE_S = 60
# The path the tracking API is served under, as `apiHost` ends (analytics.js appends `/t`, `/b`, …).
API_PATH = "/v1"
_SCHEMES = ("http", "https")
# A host as a Host header writes it, lower-cased: a DNS name (labels of letters, digits and
# hyphens, an optional final dot) or an IPv6 address in brackets, and an optional port.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_AUTHORITY = re.compile(
    rf"(?:(?P<name>{_LABEL}(?:\.{_LABEL})*\.?)|\[(?P<v6>[0-9a-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?")
_MAX_NAME = 253


def add_routes(app: web.Application) -> None:
    """Adds the settings route (after `http.tracking`'s, whose allowed origins it shares)."""
    edge = app[EDGE]
    served = BrowserSettings(edge, app[TRACKING])
    app.router.add_get(PATH, served.get)  # HEAD too: aiohttp answers it with the GET's head
    app.router.add_route("OPTIONS", PATH, served.preflight)


class BrowserSettings:
    """The settings route's handlers."""

    def __init__(self, edge: Edge, tracking: TrackingApi) -> None:
        self._edge = edge
        self._auth: Auth = edge.engine.auth
        self._tracking = tracking

    async def get(self, request: web.Request) -> web.Response:
        """The settings of the path's key, naming this server as where to send."""
        origin = request.headers.get("Origin")
        allowed = await self._tracking.allowed() if origin is not None else None
        try:
            protocol, host = self._base(request)
            key = request.match_info["writeKey"]
            grant = await self._edge.blocking(self._grant, key)
            check_origin(grant, origin, allowed)
        except AudiencesError as error:
            return _refused(error, request, origin, allowed)
        response = web.json_response(settings(key, protocol, host))
        response.headers["Cache-Control"] = f"private, max-age={MAX_AGE_S}"
        _cors(response, origin)
        return response

    async def preflight(self, request: web.Request) -> web.Response:
        """Answers a browser's preflight (a page asks before a GET it adds headers to, and Chrome
        before a public page reads a server on a private network). Unlike the tracking API's, it
        knows the key (it is in the path), so it is judged by the key's own space."""
        origin = request.headers.get("Origin")
        preflight = origin is not None and "Access-Control-Request-Method" in request.headers
        allowed = await self._tracking.allowed() if preflight else None
        try:
            grant = await self._edge.blocking(self._grant, request.match_info["writeKey"])
            if preflight:
                check_origin(grant, origin, allowed)
        except AudiencesError as error:
            return _refused(error, request, origin, allowed)
        if not preflight:
            return web.Response(status=204, headers={"Allow": METHODS})
        requested = request.headers.get("Access-Control-Request-Headers", "")
        response = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        })
        if HEADER_LIST.match(requested):
            response.headers["Access-Control-Allow-Headers"] = requested
        if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            response.headers["Access-Control-Allow-Private-Network"] = "true"
        _cors(response, origin, vary="Origin, Access-Control-Request-Headers")
        return response

    def _grant(self, key: str) -> Grant:
        """The grant of a write key (blocking: the token may be read from the database).

        Raises:
            NotFound: any key that is not a valid `write` token. Segment's CDN answers 404 for a
                write key it does not know; here an unknown, revoked or expired token and one of
                another scope get the same answer, so that it tells nothing about which it was.
        """
        try:
            return granted(self._auth, key, "write")
        except (Unauthenticated, PermissionDenied):
            raise NotFound("this server has no settings for that write key", reason="WRITE_KEY_NOT_FOUND") from None

    def _base(self, request: web.Request) -> tuple[str, str]:
        """The protocol and host (`name[:port]`) the browser reached this server by.

        Raises:
            InvalidArgument: no Host header (HTTP/1.0: aiohttp itself refuses HTTP/1.1 without
                one, and two), or the host read (Host, or a trusted proxy's X-Forwarded-Host) is
                not a host name or IP address with an optional port, or a trusted proxy's
                X-Forwarded-Proto is neither http nor https.
        """
        protocol = request.scheme
        hosts = request.headers.getall("Host", [])
        if len(hosts) != 1:
            raise _bad("Host", "send one Host header")
        host, header = hosts[0], "Host"
        if request.get(FROM_PROXY, False):
            proto = _first(request.headers.getall("X-Forwarded-Proto", []))
            if proto is not None:
                if proto.lower() not in _SCHEMES:
                    raise _bad("X-Forwarded-Proto", "X-Forwarded-Proto must be http or https")
                protocol = proto.lower()
            forwarded = _first(request.headers.getall("X-Forwarded-Host", []))
            if forwarded is not None:
                host, header = forwarded, "X-Forwarded-Host"
        return protocol, authority(host, header)


def settings(key: str, protocol: str, host: str) -> dict[str, Any]:
    """The settings analytics.js reads, sending to `protocol://host/v1` with `key`."""
    return {
        "integrations": {"Segment.io": {"apiKey": key, "apiHost": host + API_PATH, "protocol": protocol}},
        "metrics": {"sampleRate": 0},  # no telemetry to Segment's api.segment.io/v1/m
        "plan": {},
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "edgeFunction": {},
    }


def authority(text: str, header: str = "Host") -> str:
    """A host as a header gave it, checked and lower-cased: `name[:port]`, `a.b.c.d[:port]` or
    `[v6][:port]` (the port without leading zeros).

    Raises:
        InvalidArgument: it is anything else (the text is not repeated in the error).
    """
    match = _AUTHORITY.fullmatch(text.strip().lower())
    if match is None:
        raise _bad(header, f"{header} must be a host name or IP address, with an optional port")
    name, v6, port = match.group("name", "v6", "port")
    if name is not None:
        if len(name) > _MAX_NAME:
            raise _bad(header, f"the host name in {header} is longer than {_MAX_NAME} characters")
        if name.rstrip(".").rsplit(".", 1)[-1].isdigit():
            # A name ending in a number is an IPv4 address to a browser (the URL standard): it must be one.
            try:
                ipaddress.IPv4Address(name)
            except ValueError:
                raise _bad(header, f"{header} is not a valid IPv4 address") from None
        host = name
    else:
        try:
            host = f"[{ipaddress.IPv6Address(v6).compressed}]"
        except ValueError:
            raise _bad(header, f"{header} is not a valid IPv6 address") from None
    if port is None:
        return host
    if not 0 < int(port) < 65536:
        raise _bad(header, f"the port in {header} is out of range (1 to 65535)")
    return f"{host}:{int(port)}"


def _first(headers: list[str]) -> str | None:
    """The first non-empty element of a header's comma-separated values (over all its headers)."""
    for header in headers:
        for element in header.split(","):
            if element.strip():
                return element.strip()
    return None


def _bad(header: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="HOST_INVALID", violations=[FieldViolation(header, message)])


def _cors(response: web.Response, origin: str | None, vary: str = "Origin") -> None:
    """Makes an answer readable by pages of `origin` (None: by none). Every answer says it varies
    with Origin, so that a browser never reuses one kept for a page of another origin (or for no page)."""
    response.headers["Vary"] = vary
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "x-request-id"


def _refused(error: AudiencesError, request: web.Request, origin: str | None,
             allowed: AllowedOrigins | None) -> web.Response:
    """An error in the tracking API's shape, never cached, readable by pages of an origin some
    space allows (as the tracking API's are)."""
    response = tracking_error(error, request)
    response.headers["Cache-Control"] = "no-store"
    readable = origin is not None and allowed is not None and allowed.allows_any(origin)
    _cors(response, origin if readable else None)
    return response
