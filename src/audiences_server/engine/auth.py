"""Spaces and tokens: creating them, and checking a presented token."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass

import apsw

from audiences_server.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from audiences_server.store import spaces
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

SCOPES = ("write", "read", "admin")
_SPACE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# A grant found once is trusted for this long, so that a burst of calls costs one lookup.
_CACHE_SECONDS = 5.0


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens are 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(scope: str) -> str:
    """A fresh secret token; its prefix says its scope so people can tell tokens apart."""
    return f"aud_{scope}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class IssuedToken:
    """A token as handed out once: the secret itself is never stored."""

    space: str
    scope: str
    token: str


class Auth:
    """Creates spaces and tokens and resolves presented tokens to grants."""

    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers
        self._cache: dict[str, tuple[float, spaces.Grant]] = {}
        self._lock = threading.Lock()

    def create_space(self, name: str, now_ms: int) -> spaces.Space:
        """Creates a space with a name unique on this server."""
        if not _SPACE_NAME.match(name):
            raise InvalidArgument(
                f"space name {name!r} must be lower-case letters, digits, '-' or '_', starting with a letter",
                reason="SPACE_NAME_INVALID",
            )

        def create(conn: apsw.Connection) -> spaces.Space:
            if spaces.find_space(conn, name) is not None:
                raise AlreadyExists(f"space {name!r} already exists", reason="SPACE_EXISTS")
            return spaces.create_space(conn, name, now_ms)

        return self._writer.run(create)

    def create_token(self, space_name: str, scope: str, now_ms: int, label: str = "") -> IssuedToken:
        """Issues a token for one scope of one space."""
        if scope not in SCOPES:
            raise InvalidArgument(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}", reason="SCOPE_INVALID")
        token = new_token(scope)

        def add(conn: apsw.Connection) -> None:
            space = spaces.find_space(conn, space_name)
            if space is None:
                raise NotFound(f"space {space_name!r} not found", reason="SPACE_NOT_FOUND")
            spaces.add_token(conn, space.space_id, scope, hash_token(token), label, now_ms)

        self._writer.run(add)
        return IssuedToken(space_name, scope, token)

    def list_spaces(self) -> list[spaces.Space]:
        """Every space on this server."""
        return spaces.list_spaces(self._readers.get())

    def grant(self, token: str) -> spaces.Grant:
        """What a presented token allows.

        Raises:
            Unauthenticated: the token is unknown.
        """
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        found = spaces.find_grant(self._readers.get(), digest)
        if found is None:
            raise Unauthenticated("the token is not known to this server", reason="TOKEN_UNKNOWN")
        with self._lock:
            self._cache[digest] = (now, found)
        return found
