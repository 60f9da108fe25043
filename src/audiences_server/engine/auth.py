"""Spaces and tokens: creating them, revoking tokens, and checking a presented token."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import apsw

from audiences_server.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Unauthenticated
from audiences_server.store import spaces
from audiences_server.store import tokens as token_store
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

SCOPES = ("write", "read", "admin", "operator")
# The label of the first start's tokens until their file is written (Auth.bootstrap_tokens).
BOOTSTRAP_PENDING = "bootstrap (file not written)"
_SPACE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
MAX_LABEL = 200
# What a label may not hold: control characters (C0, DEL, C1) and the line and paragraph
# separators. A label is printed as it is in listings (`tokens list`, the audit log, the console)
# and is the source of a write token's events: a newline or NUL would break or forge their lines.
_LABEL_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A grant found once is trusted for this long, so that a burst of calls costs one lookup. A
# revocation made through this process drops it at once; one made by another process (the
# local `tokens revoke` command) applies within this time.
_CACHE_SECONDS = 5.0


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens are 256 random bits, so a plain SHA-256 suffices.

    A presented token may hold what UTF-8 cannot write: a lone surrogate from a JSON `\\ud800`
    (a tracking body's `writeKey`), or the bytes of a header that were not UTF-8. `surrogatepass`
    gives those a digest too, which no issued token (ASCII) has: they are unknown tokens, not failures.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=1024)
def _presented_digest(token: str) -> str:
    """`hash_token` of a presented token: the same few tokens come on every call."""
    return hash_token(token)


def new_token(scope: str) -> str:
    """A fresh secret token; its prefix says its scope so people can tell tokens apart."""
    return f"aud_{scope}_{secrets.token_urlsafe(32)}"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class IssuedToken:
    """A token as handed out once: the secret itself is never stored."""

    space: str
    scope: str
    token: str
    token_id: str = ""


class Auth:
    """Creates spaces and tokens and resolves presented tokens to grants."""

    def __init__(self, writer: Writer, readers: Readers, now_ms: Callable[[], int] = _wall_ms) -> None:
        self._writer = writer
        self._readers = readers
        self._now_ms = now_ms
        self._cache: dict[str, tuple[float, spaces.Grant]] = {}
        # When each token was last presented, kept here and written now and then (`flush_usage`):
        # a write per call would cost every call a transaction.
        self._used: dict[int, int] = {}
        self._lock = threading.Lock()

    def create_space(self, name: str, now_ms: int) -> spaces.Space:
        """Creates a space with a name unique on this server."""
        if not _SPACE_NAME.match(name):
            raise InvalidArgument(
                f"space name {name!r} must be lower-case letters, digits, '-' or '_', starting with a letter",
                reason="SPACE_NAME_INVALID", violations=[FieldViolation("space.name", "not a valid space name")],
            )

        def create(conn: apsw.Connection) -> spaces.Space:
            if spaces.find_space(conn, name) is not None:
                raise AlreadyExists(f"space {name!r} already exists", reason="SPACE_EXISTS")
            return spaces.create_space(conn, name, now_ms)

        return self._writer.run(create, keeps_events=True)

    def create_token(self, space_name: str, scope: str, now_ms: int, label: str = "",
                     expires_ms: int | None = None) -> IssuedToken:
        """Issues a token for one scope of one space, accepted until `expires_ms` if given."""
        if scope not in SCOPES:
            raise InvalidArgument(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}", reason="SCOPE_INVALID",
                                  violations=[FieldViolation("scope", "unknown scope")])
        if len(label) > MAX_LABEL:
            raise InvalidArgument(f"a label has at most {MAX_LABEL} characters", reason="LABEL_TOO_LONG",
                                  violations=[FieldViolation("label", "too long")])
        bad = _LABEL_FORBIDDEN.search(label)
        if bad is not None:
            raise InvalidArgument(f"`label` contains the control character {bad.group()!r} at position {bad.start()}",
                                  reason="LABEL_INVALID",
                                  violations=[FieldViolation("label", "contains a control character")])
        token = new_token(scope)
        public_id = "tok_" + secrets.token_hex(10)

        def add(conn: apsw.Connection) -> None:
            space = self._space(conn, space_name)
            spaces.add_token(conn, space.space_id, scope, hash_token(token), label, now_ms, public_id, expires_ms)

        self._writer.run(add, keeps_events=True)
        return IssuedToken(space_name, scope, token, public_id)

    def bootstrap_tokens(self, space_name: str, now_ms: int) -> dict[str, str] | None:
        """The first start's space and one token per scope, in one transaction: None when the
        database has a space already and no bootstrap was left half done.

        The tokens are labelled `BOOTSTRAP_PENDING` until `settle_bootstrap`, once their file is
        written: a start interrupted before that (kill -9, SIGTERM) left tokens whose only copy
        in clear was lost, so the next start revokes them and issues new ones."""
        issued = {scope: (new_token(scope), "tok_" + secrets.token_hex(10)) for scope in SCOPES}

        def job(conn: apsw.Connection) -> bool:
            pending = token_store.labelled(conn, BOOTSTRAP_PENDING)
            if spaces.list_spaces(conn, 0, 1) and not pending:
                return False
            for token_id in pending:
                token_store.revoke(conn, token_id, now_ms)
            space = spaces.find_space(conn, space_name) or spaces.create_space(conn, space_name, now_ms)
            for scope, (token, public_id) in issued.items():
                spaces.add_token(conn, space.space_id, scope, hash_token(token), BOOTSTRAP_PENDING, now_ms, public_id,
                                 None)
            return True

        if not self._writer.run(job, keeps_events=True):
            return None
        return {scope: token for scope, (token, _) in issued.items()}

    def settle_bootstrap(self) -> None:
        """The bootstrap tokens' file is written: they are labelled `bootstrap`."""
        self._writer.run(lambda conn: token_store.relabel(conn, BOOTSTRAP_PENDING, "bootstrap"), keeps_events=True)

    def list_spaces(self, after_id: int = 0, limit: int = -1) -> list[spaces.Space]:
        """The spaces on this server after an id, oldest first."""
        return spaces.list_spaces(self._readers.get(), after_id, limit)

    def space(self, name: str) -> spaces.Space:
        """One space by name.

        Raises:
            NotFound: no space has that name.
        """
        return self._space(self._readers.get(), name)

    def space_by_id(self, space_id: int) -> spaces.Space:
        """One space by id (a grant's)."""
        found = spaces.space_by_id(self._readers.get(), space_id)
        if found is None:
            raise NotFound(f"space {space_id} not found", reason="SPACE_NOT_FOUND")
        return found

    @staticmethod
    def _space(conn: apsw.Connection, name: str) -> spaces.Space:
        space = spaces.find_space(conn, name)
        if space is None:
            raise NotFound(f"space {name!r} not found", reason="SPACE_NOT_FOUND")
        return space

    def tokens(self, space_name: str, after_id: int, limit: int) -> list[token_store.TokenRow]:
        """A space's tokens after an id, oldest first, with their last use written out first."""
        self.flush_usage()
        conn = self._readers.get()
        return token_store.tokens_of(conn, self._space(conn, space_name).space_id, after_id, limit)

    def token(self, token_id: str) -> token_store.TokenRow:
        """One token by its public id (`tok_…`).

        Raises:
            NotFound: no token has that id.
        """
        row = token_store.token(self._readers.get(), token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} not found", reason="TOKEN_NOT_FOUND",
                           violations=[FieldViolation("token_id", "no such token")])
        return row

    def revoke(self, token_id: str) -> token_store.TokenRow:
        """Revokes a token by its public id; this process refuses it from its next call on.

        Raises:
            NotFound: no token has that id.
        """
        now = self._now_ms()

        def job(conn: apsw.Connection) -> token_store.TokenRow:
            row = token_store.token(conn, token_id)
            if row is None:
                raise NotFound(f"token {token_id!r} not found", reason="TOKEN_NOT_FOUND",
                               violations=[FieldViolation("token_id", "no such token")])
            token_store.revoke(conn, row.token_id, now)
            return token_store.token(conn, token_id) or row

        revoked = self._writer.run(job, keeps_events=True)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1].token_id != revoked.token_id}
        return revoked

    def grant(self, token: str) -> spaces.Grant:
        """What a presented token allows.

        Raises:
            Unauthenticated: the token is unknown, revoked or expired.
        """
        digest = _presented_digest(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and now - cached[0] < _CACHE_SECONDS:
            return self._accepted(cached[1])
        found = spaces.find_grant(self._readers.get(), digest)
        if found is None:
            raise Unauthenticated("the token is not known to this server", reason="TOKEN_UNKNOWN")
        if found.revoked_ms is not None:
            raise Unauthenticated("the token was revoked", reason="TOKEN_REVOKED")
        with self._lock:
            self._cache[digest] = (now, found)
        return self._accepted(found)

    def still_granted(self, grant: spaces.Grant) -> None:
        """Checks again, from the database, a grant a long call (an open stream) was given: a
        token revoked or expired since ends it.

        Raises:
            Unauthenticated: TOKEN_REVOKED or TOKEN_EXPIRED.
        """
        if not grant.token_id:  # no token's: a cluster front's own calls to a shard (cluster/reads.py)
            return
        standing = token_store.standing(self._readers.get(), grant.token_id)
        if standing is None or standing[0] is not None:
            raise Unauthenticated("the token was revoked", reason="TOKEN_REVOKED")
        expires = standing[1]
        if expires is not None and self._now_ms() >= expires:
            raise Unauthenticated("the token has expired", reason="TOKEN_EXPIRED")

    def _accepted(self, grant: spaces.Grant) -> spaces.Grant:
        """The grant, unless it has expired; its use is noted."""
        now = self._now_ms()
        if grant.expires_ms is not None and now >= grant.expires_ms:
            raise Unauthenticated("the token has expired", reason="TOKEN_EXPIRED")
        with self._lock:
            self._used[grant.token_id] = now
        return grant

    def flush_usage(self) -> None:
        """Writes when each token presented since the last flush was last used."""
        with self._lock:
            used, self._used = self._used, {}
        if used:
            self._writer.run(lambda conn: token_store.mark_used(conn, used), keeps_events=True)
