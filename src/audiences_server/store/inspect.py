"""Read-only looks into the database file for operators (`audiences-server db …`), through
sqlite-utils on a connection opened read-only: off the server's path, never writing.

Secrets are blanked wherever they are stored: the server's own keys, token hashes, and a
destination's secret settings (webhook secrets and header values, a Segment write key, a
PostgreSQL connection string).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

REDACTED = "(redacted)"
_SECRET_COLUMNS = {("server_keys", "value"), ("tokens", "token_hash")}
# Every kind's secret settings (engine.destinations: `secrets`); a test keeps the two in step.
SECRET_SETTINGS = ("hmac_secret", "signing_secret", "write_key", "dsn")


def open_read_only(db: Path) -> sqlite_utils.Database:
    """The database, opened so that nothing can be written through it.

    Raises:
        FileNotFoundError: there is no database at `db`.
    """
    if not db.is_file():
        raise FileNotFoundError(f"no database at {db}")
    return sqlite_utils.Database(sqlite3.connect(f"file:{db}?mode=ro", uri=True))


def tables(database: sqlite_utils.Database) -> list[tuple[str, int, list[str]]]:
    """Each table with its row count and columns, by name."""
    return [(name, database.table(name).count, columns(database, name)) for name in sorted(database.table_names())]


def _table(database: sqlite_utils.Database, name: str) -> sqlite_utils.db.Table:
    if name not in database.table_names():
        raise ValueError(f"no table {name!r}; `db tables` lists them")
    return database.table(name)


def columns(database: sqlite_utils.Database, name: str) -> list[str]:
    """A table's columns, in order.

    Raises:
        ValueError: no such table.
    """
    return [c.name for c in _table(database, name).columns]


def rows(database: sqlite_utils.Database, name: str, equal: dict[str, str] | None = None,
         limit: int | None = None) -> Iterator[dict[str, Any]]:
    """A table's rows (those whose columns equal the given values, compared as text), secrets blanked.

    Raises:
        ValueError: no such table, or a column it does not have.
    """
    table = _table(database, name)
    columns = {c.name for c in table.columns}
    unknown = sorted(set(equal or {}) - columns)
    if unknown:
        raise ValueError(f"table {name} has no column {', '.join(unknown)}")
    where = " AND ".join(f"CAST([{column}] AS TEXT) = ?" for column in (equal or {})) or None
    for row in table.rows_where(where, list((equal or {}).values()), limit=limit):
        yield _blanked(name, row)


def _blanked(table: str, row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (REDACTED if (table, k) in _SECRET_COLUMNS else _text(v)) for k, v in row.items()}
    if table == "destinations" and isinstance(out.get("config"), str):
        config = json.loads(out["config"])
        blanked = {k: (REDACTED if k in SECRET_SETTINGS and v else v) for k, v in config.items()}
        if isinstance(config.get("headers"), dict):  # a webhook's headers carry a receiver's credentials
            blanked["headers"] = dict.fromkeys(config["headers"], REDACTED)
        out["config"] = json.dumps(blanked)
    return out


def _text(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value
