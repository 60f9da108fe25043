"""The ingest check against suppressed identifiers.

It runs in the writer job that stores calls (the one that resolves identities), so a
suppression committed before a call's job is always seen. Each space's suppressed identifiers
are held in memory as a set, read once and read again only after a suppression of that space
changed, so that the common case, a space with none, costs one dictionary lookup per request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import apsw

from audiences_server.core.identity import ACCOUNTS, USERS, ExtractedIds, with_configured_ids
from audiences_server.core.tracking import Call
from audiences_server.store import identity as identity_store
from audiences_server.store import suppressions as store
from audiences_server.store.suppressions import SuppressedId

REASON = "suppressed"
DETAIL = "an identifier of this call is suppressed: its profile was deleted"


class Suppressions:
    """Which calls carry a suppressed identifier."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[int, frozenset[SuppressedId]] = {}

    def changed(self, space_id: int) -> None:
        """Says a space's suppressions changed: they are read again at the next check."""
        with self._lock:
            self._known.pop(space_id, None)

    def _of(self, conn: apsw.Connection, space_id: int) -> frozenset[SuppressedId]:
        with self._lock:
            known = self._known.get(space_id)
        if known is None:
            known = store.of_space(conn, space_id)
            with self._lock:
                self._known[space_id] = known
        return known

    def held(self, conn: apsw.Connection, space_id: int, calls: Sequence[Call],
             ids: Sequence[ExtractedIds]) -> list[int]:
        """The positions of the calls that carry a suppressed identifier (users' or accounts'),
        those read from the keys the space's identity rules name included."""
        suppressed = self._of(conn, space_id)
        if not suppressed:
            return []
        sources = identity_store.rules(conn, space_id).sources
        held = []
        for index, (call, found) in enumerate(zip(calls, ids, strict=True)):
            every = with_configured_ids(found, call.message, sources) if sources else found
            carried = [(USERS, i.type, i.value) for i in every.users]
            carried += [(ACCOUNTS, i.type, i.value) for i in every.accounts]
            if any(i in suppressed for i in carried):
                held.append(index)
        return held
