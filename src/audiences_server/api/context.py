"""What the request interceptor learns about the caller, for the servicers to read."""

from __future__ import annotations

from contextvars import ContextVar

from audiences_server.engine.ingest import Sender
from audiences_server.store.spaces import Grant

_GRANT: ContextVar[Grant] = ContextVar("grant")


def set_grant(grant: Grant) -> None:
    """Records the caller's grant for the RPC running on this thread."""
    _GRANT.set(grant)


def sender() -> Sender:
    """Who sends the calls of this RPC: its space, and the label of its token as the source."""
    grant = _GRANT.get()
    return Sender(grant.space_id, grant.label)


def space_id() -> int:
    """The space of the RPC running on this thread, as authorised by its token."""
    return _GRANT.get().space_id


def caller_label() -> str:
    """The label of the token making the RPC running on this thread (empty when it has none)."""
    return _GRANT.get().label


def grant() -> Grant:
    """The caller's grant for the RPC running on this thread."""
    return _GRANT.get()


# An open stream (WatchChanges, StreamCalls) checks its token again, at most this often: a token
# revoked or expired since it opened ends it.
TOKEN_RECHECK_S = 1.0
