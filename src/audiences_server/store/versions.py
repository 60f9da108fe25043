"""Definition versions and the audit log of admin actions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw


@dataclass(frozen=True)
class VersionRow:
    """One numbered version of a definition: its text and options, when and by whom it was saved,
    and when its backfill finished with the size it left (None until then)."""

    computation_id: int
    version: int
    definition: str
    options: dict[str, Any]
    created_ms: int
    actor: str
    backfilled_ms: int | None
    size_after_backfill: int | None


@dataclass(frozen=True)
class AuditRow:
    """One admin action: who (the token's label), when, what, on what, and its details."""

    audit_id: int
    at_ms: int
    actor: str
    action: str
    target_type: str
    target: str
    detail: dict[str, Any]


_VERSION_COLUMNS = ("computation_id, version, definition, options, created_ms, actor, backfilled_ms,"
                    " size_after_backfill")


def _version(row: Sequence[Any]) -> VersionRow:
    values = list(row)
    values[3] = json.loads(values[3])
    return VersionRow(*values)


def add_version(conn: apsw.Connection, computation_id: int, definition: str, options: dict[str, Any], now_ms: int,
                actor: str) -> None:
    """Records the computation's current version number (as `computations.version` counts them,
    read in the same transaction) with its new text and options (at its create, or an edit)."""
    conn.execute(
        f"INSERT INTO definition_versions ({_VERSION_COLUMNS}) SELECT computation_id, version, ?, ?, ?, ?, NULL, NULL"
        " FROM computations WHERE computation_id = ?",
        (definition, json.dumps(options), now_ms, actor, computation_id),
    )


def mark_backfilled(conn: apsw.Connection, computation_id: int, now_ms: int) -> None:
    """Stamps the computation's current version with the end of its backfill and its size then."""
    conn.execute(
        "UPDATE definition_versions SET backfilled_ms = ?, size_after_backfill = (SELECT size FROM computations"
        " WHERE computation_id = ?) WHERE computation_id = ? AND version = (SELECT version FROM computations"
        " WHERE computation_id = ?)",
        (now_ms, computation_id, computation_id, computation_id),
    )


def versions(conn: apsw.Connection, computation_id: int, before: int | None, limit: int) -> list[VersionRow]:
    """A computation's versions, newest first, below a version number."""
    return [
        _version(row)
        for row in conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM definition_versions WHERE computation_id = ? AND version < ?"
            " ORDER BY version DESC LIMIT ?",
            (computation_id, before if before is not None else 2**62, limit),
        )
    ]


def version(conn: apsw.Connection, computation_id: int, number: int) -> VersionRow | None:
    """One version of a computation."""
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM definition_versions WHERE computation_id = ? AND version = ?",
        (computation_id, number),
    ).fetchone()
    return _version(row) if row else None


def forget_versions(conn: apsw.Connection, computation_id: int) -> None:
    """Removes a deleted computation's versions (the audit log keeps what was done)."""
    conn.execute("DELETE FROM definition_versions WHERE computation_id = ?", (computation_id,))


def audit(conn: apsw.Connection, space_id: int, at_ms: int, actor: str, action: str, target_type: str, target: str,
          detail: dict[str, Any]) -> None:
    """Appends an admin action to the audit log."""
    conn.execute(
        "INSERT INTO audit_log (space_id, at_ms, actor, action, target_type, target, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (space_id, at_ms, actor, action, target_type, target, json.dumps(detail, sort_keys=True)),
    )


def audit_entries(conn: apsw.Connection, space_id: int, before: int | None, limit: int, action: str = "",
                  target_type: str = "", target: str = "") -> list[AuditRow]:
    """The space's audit log, newest first, below an entry id, optionally of one action, type and target."""
    sql = ("SELECT audit_id, at_ms, actor, action, target_type, target, detail FROM audit_log"
           " WHERE space_id = ? AND audit_id < ?")
    params: list[Any] = [space_id, before if before is not None else 2**62]
    for column, wanted in (("action", action), ("target_type", target_type), ("target", target)):
        if wanted:
            sql += f" AND {column} = ?"
            params.append(wanted)
    sql += " ORDER BY audit_id DESC LIMIT ?"
    params.append(limit)
    return [AuditRow(int(a), int(t), who, what, kind, target, json.loads(detail))
            for a, t, who, what, kind, target, detail in conn.execute(sql, params)]
