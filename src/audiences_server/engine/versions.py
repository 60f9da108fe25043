"""Definition versions and the audit log.

A definition's versions are written with each create and each edit of its text or options, in
the same transaction (see engine/computations.py), numbered as `computations.version` counts
them; the end of each backfill stamps the current version with its size then (see the
evaluator). Rolling back is an update to an older version's text and options. The audit log
lists admin actions with the label of the token that made them.
"""

from __future__ import annotations

from typing import Any

from audiences_server.engine.clock import Clock
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.errors import NotFound
from audiences_server.store import evaluation as store
from audiences_server.store import versions as versions_store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.versions import AuditRow, VersionRow
from audiences_server.store.writer import Writer


class Versions:
    """Reads of definition versions; writes and reads of the audit log."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock, tokens: PageTokens) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._tokens = tokens

    def versions(self, space_id: int, collection: str, key: str, size: int, token: str
                 ) -> tuple[ComputationRow, list[VersionRow], str]:
        """One page of a definition's versions, newest first, and the next page's token."""
        limit = page_size(size, 50, 1000)
        with self._readers.snapshot() as conn:
            row = _definition(conn, space_id, collection, key)
            scope = {"space": space_id, "list": "versions", "computation": row.computation_id}
            before = self._tokens.decode(token, scope)
            found = versions_store.versions(conn, row.computation_id, before, limit + 1)
        page = found[:limit]
        return row, page, self._tokens.encode(page[-1].version, scope) if len(found) > limit else ""

    def version(self, space_id: int, collection: str, key: str, number: int) -> tuple[ComputationRow, VersionRow]:
        """One version of a definition (0 is the current one)."""
        with self._readers.snapshot() as conn:
            row = _definition(conn, space_id, collection, key)
            found = versions_store.version(conn, row.computation_id, number or row.version)
        if found is None:
            raise NotFound(f"{key!r} has no version {number}", reason="VERSION_NOT_FOUND")
        return row, found

    def record(self, space_id: int, actor: str, action: str, target_type: str, target: str,
               detail: dict[str, Any]) -> None:
        """Appends an admin action to the audit log, now."""
        now = self._clock.now_ms()
        self._writer.run(lambda conn: versions_store.audit(conn, space_id, now, actor, action, target_type, target,
                                                           detail), keeps_events=True)

    def audit(self, space_id: int, size: int, token: str, action: str = "", target_type: str = "",
              target: str = "") -> tuple[list[AuditRow], str]:
        """One page of the audit log, newest first, optionally of one action, target type and target."""
        limit = page_size(size, 50, 1000)
        scope = {"space": space_id, "list": "audit", "action": action, "type": target_type, "target": target}
        before = self._tokens.decode(token, scope)
        found = versions_store.audit_entries(self._readers.get(), space_id, before, limit + 1, action, target_type,
                                             target)
        page = found[:limit]
        return page, self._tokens.encode(page[-1].audit_id, scope) if len(found) > limit else ""


def _definition(conn: Any, space_id: int, collection: str, key: str) -> ComputationRow:
    row = store.computation(conn, space_id, collection, key)
    if row is None:
        raise NotFound(f"definition {key!r} not found in {collection}", reason="NOT_FOUND")
    return row
