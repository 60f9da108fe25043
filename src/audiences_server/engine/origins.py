"""Which web origins may send a space's tracking calls from a browser (the tracking API's CORS).

Operators set a space's origins (`audiences-server spaces origins`); the HTTP listener reads
every space's origins at once and keeps them for `ttl_s`, so that a change made while the server
runs (by the command, in another process) applies within that time, and a burst of browser
calls costs one read.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import apsw

from audiences_server.errors import FieldViolation, InvalidArgument, NotFound
from audiences_server.store import origins as stored
from audiences_server.store import spaces
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

ANY_ORIGIN = "*"
MAX_ORIGINS = 100
# What a browser sends as `Origin`: a scheme, a host (a name, IPv4, or IPv6 in brackets) and a
# port only when it is not the scheme's default.
_ORIGIN = re.compile(r"^(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?\Z")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_origin(text: str) -> str:
    """An origin as a browser sends it (`https://shop.example`, lower case, no default port), or `*`.

    Raises:
        InvalidArgument: the text is not `scheme://host[:port]` with scheme http or https.
    """
    value = text.strip().lower()
    if value == ANY_ORIGIN:
        return value
    value = value.removesuffix("/")
    match = _ORIGIN.match(value)
    if match is None:
        raise InvalidArgument(
            f"{text!r} is not an origin: write scheme://host[:port] (http or https, no path; an "
            "internationalised host in its xn-- form), or * for every origin",
            reason="ORIGIN_INVALID", violations=[FieldViolation("origin", "not scheme://host[:port]")])
    scheme, host, port = match.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidArgument(f"{text!r} has port {port}; ports are 1 to 65535", reason="ORIGIN_INVALID",
                              violations=[FieldViolation("origin", "port out of range")])
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


@dataclass(frozen=True)
class AllowedOrigins:
    """Every space's allowed origins, as read at one moment."""

    by_space: Mapping[int, frozenset[str]] = field(default_factory=dict)
    anywhere: frozenset[str] = frozenset()

    def allows(self, space_id: int, origin: str) -> bool:
        """Whether the space lets pages of this origin send its calls."""
        allowed = self.by_space.get(space_id, frozenset())
        return ANY_ORIGIN in allowed or origin.lower() in allowed

    def allows_any(self, origin: str) -> bool:
        """Whether some space lets pages of this origin send calls."""
        return ANY_ORIGIN in self.anywhere or origin.lower() in self.anywhere


class Origins:
    """Reads and sets the spaces' allowed origins."""

    def __init__(self, writer: Writer, readers: Readers, ttl_s: float = 2.0) -> None:
        self._writer = writer
        self._readers = readers
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, AllowedOrigins] | None = None

    def set(self, space_name: str, origins: Sequence[str]) -> list[str]:
        """Replaces a space's allowed origins; returns them as stored (normalised, sorted).

        Raises:
            InvalidArgument: an origin is malformed, or there are more than MAX_ORIGINS.
            NotFound: no space has that name.
        """
        normalized = sorted({normalize_origin(origin) for origin in origins})
        if len(normalized) > MAX_ORIGINS:
            raise InvalidArgument(f"{len(normalized)} origins; a space allows at most {MAX_ORIGINS}",
                                  reason="TOO_MANY_ORIGINS")

        def replace(conn: apsw.Connection) -> None:
            stored.set_origins(conn, _space_id(conn, space_name), normalized)

        self._writer.run(replace, keeps_events=True)
        with self._lock:
            self._cached = None
        return normalized

    def of_space(self, space_name: str) -> list[str]:
        """A space's allowed origins.

        Raises:
            NotFound: no space has that name.
        """
        conn = self._readers.get()
        return stored.space_origins(conn, _space_id(conn, space_name))

    def cached(self) -> AllowedOrigins | None:
        """The origins read less than `ttl_s` ago, if any; never reads the database."""
        with self._lock:
            cached = self._cached
        if cached is None or time.monotonic() - cached[0] >= self.ttl_s:
            return None
        return cached[1]

    def load(self) -> AllowedOrigins:
        """Every space's origins: the cached ones while fresh, otherwise read now (blocking)."""
        fresh = self.cached()
        if fresh is not None:
            return fresh
        by_space: dict[int, set[str]] = {}
        for space_id, origin in stored.all_origins(self._readers.get()):
            by_space.setdefault(space_id, set()).add(origin)
        loaded = AllowedOrigins({k: frozenset(v) for k, v in by_space.items()},
                                frozenset(o for allowed in by_space.values() for o in allowed))
        with self._lock:
            self._cached = (time.monotonic(), loaded)
        return loaded


def _space_id(conn: apsw.Connection, name: str) -> int:
    space = spaces.find_space(conn, name)
    if space is None:
        raise NotFound(f"space {name!r} not found", reason="SPACE_NOT_FOUND")
    return space.space_id
