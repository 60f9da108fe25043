"""What a cluster role keeps in its SQLite file beside the engine's tables (docs/scaling.md).

Readers' positions in the log, the identity stage's outbox and seen message ids, the merges a
shard has adopted, and a profile's rows as one shard hands them to another. The tables are
made by `prepare_cluster` when a role starts: a single node never has them.
"""

from __future__ import annotations

from typing import Any

import apsw

from audiences_server.store.db import scalar

_TABLES = """
    CREATE TABLE IF NOT EXISTS cluster_positions (
        reader TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        serial INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS cluster_outbox (
        serial INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS cluster_counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS cluster_seen (
        space_id INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (space_id, message_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cluster_adopted (
        merge_key TEXT PRIMARY KEY
    );
"""

# A profile's rows, table by table, with the column that names the profile (two for links).
_PROFILE_ROWS = (("identifiers", ("profile_id",)), ("events", ("profile_id",)), ("traits", ("profile_id",)),
                 ("links", ("user_id", "account_id")), ("unlinks", ("user_id", "account_id")))
_PROFILE_COLUMNS = ("space_id", "collection", "public_id", "merge_count", "created_ms", "updated_ms",
                    "first_message_ms", "last_message_ms")


def prepare_cluster(conn: apsw.Connection) -> None:
    """Makes the cluster's tables if they are missing."""
    conn.execute(_TABLES)


def position(conn: apsw.Connection, reader: str) -> tuple[int, int]:
    """A reader's position in the log and the last identity serial it applied (0, 0 at first)."""
    row = conn.execute("SELECT position, serial FROM cluster_positions WHERE reader = ?", (reader,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def save_position(conn: apsw.Connection, reader: str, at: int, serial: int) -> None:
    """Records a reader's position, in the transaction of the writes its entries caused."""
    conn.execute("INSERT INTO cluster_positions (reader, position, serial) VALUES (?, ?, ?) ON CONFLICT (reader)"
                 " DO UPDATE SET position = excluded.position, serial = excluded.serial", (reader, at, serial))


def next_count(conn: apsw.Connection, name: str) -> int:
    """The next number of a counter, from 1 (an outbox serial, a call's arrival number): never reused."""
    conn.execute("INSERT INTO cluster_counters (name, value) VALUES (?, 1)"
                 " ON CONFLICT (name) DO UPDATE SET value = value + 1", (name,))
    return int(scalar(conn, "SELECT value FROM cluster_counters WHERE name = ?", (name,)))


def set_count(conn: apsw.Connection, name: str, value: int) -> None:
    """Sets a counter (a shard's last tick time)."""
    conn.execute("INSERT INTO cluster_counters (name, value) VALUES (?, ?)"
                 " ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))


def count(conn: apsw.Connection, name: str) -> int:
    """A counter's value, 0 if never set."""
    row = conn.execute("SELECT value FROM cluster_counters WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def add_outbox(conn: apsw.Connection, serial: int, subject: str, data: bytes) -> None:
    """Keeps a message to publish once the transaction commits."""
    conn.execute("INSERT INTO cluster_outbox (serial, subject, data) VALUES (?, ?, ?)", (serial, subject, data))


def outbox(conn: apsw.Connection, limit: int) -> list[tuple[int, str, bytes]]:
    """The oldest messages not yet published."""
    return [(int(s), str(subject), bytes(data)) for s, subject, data in
            conn.execute("SELECT serial, subject, data FROM cluster_outbox ORDER BY serial LIMIT ?", (limit,))]


def drop_outbox(conn: apsw.Connection, through: int) -> None:
    """Forgets the messages the log has acknowledged."""
    conn.execute("DELETE FROM cluster_outbox WHERE serial <= ?", (through,))


def first_sighting(conn: apsw.Connection, space_id: int, message_id: str) -> bool:
    """Notes a message id; False if it was seen before (the call is a duplicate)."""
    conn.execute("INSERT OR IGNORE INTO cluster_seen (space_id, message_id) VALUES (?, ?)", (space_id, message_id))
    return bool(conn.changes())


def profile_row(conn: apsw.Connection, profile_id: int) -> dict[str, Any]:
    """The columns of a profile's row that travel with it."""
    row = conn.execute(f"SELECT {', '.join(_PROFILE_COLUMNS)} FROM profiles WHERE profile_id = ?",
                       (profile_id,)).fetchone()
    if row is None:
        raise LookupError(f"profile {profile_id} has no row")
    return dict(zip(_PROFILE_COLUMNS, row, strict=True))


def ensure_profile(conn: apsw.Connection, profile_id: int, space_id: int, collection: str, public_id: str,
                   created_ms: int, elsewhere: bool) -> bool:
    """Makes a profile's row with the id the identity stage gave it, if missing; returns whether it was made.

    A profile kept by another shard (`elsewhere`) gets a row only so that links and merges can
    name it: it is marked merged into itself, which every read and evaluation skips.
    """
    conn.execute(
        "INSERT OR IGNORE INTO profiles (profile_id, space_id, collection, public_id, created_ms, updated_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)", (profile_id, space_id, collection, public_id, created_ms, created_ms))
    if not conn.changes():
        return False
    if elsewhere:
        conn.execute("UPDATE profiles SET merged_into = profile_id WHERE profile_id = ?", (profile_id,))
    return True


def export_profile(conn: apsw.Connection, profile_id: int) -> dict[str, Any]:
    """Everything a shard keeps of a profile, as JSON-ready rows: what it hands over on a merge."""
    rows: dict[str, Any] = {"profile": profile_row(conn, profile_id)}
    for table, columns in _PROFILE_ROWS:
        where = " OR ".join(f"{c} = ?" for c in columns)
        names = [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]
        cursor = conn.execute(f"SELECT {', '.join(names)} FROM {table} WHERE {where}", (profile_id,) * len(columns))
        rows[table] = {"columns": names, "rows": [list(r) for r in cursor]}
    return rows


def remove_profile(conn: apsw.Connection, profile_id: int, survivor: int) -> None:
    """Deletes a handed-over profile's rows and marks it (and those merged into it) merged into `survivor`."""
    for table, columns in _PROFILE_ROWS:
        where = " OR ".join(f"{c} = ?" for c in columns)
        conn.execute(f"DELETE FROM {table} WHERE {where}", (profile_id,) * len(columns))
    conn.execute("UPDATE profiles SET merged_into = ? WHERE profile_id = ? OR merged_into = ?",
                 (survivor, profile_id, profile_id))


def import_profile(conn: apsw.Connection, profile_id: int, rows: dict[str, Any]) -> None:
    """Stores a handed-over profile's rows (the other end of a link gets a reference row if missing)."""
    profile = rows["profile"]
    ensure_profile(conn, profile_id, profile["space_id"], profile["collection"], profile["public_id"],
                   profile["created_ms"], elsewhere=False)
    assignments = ", ".join(f"{c} = :{c}" for c in _PROFILE_COLUMNS)
    conn.execute(f"UPDATE profiles SET merged_into = NULL, {assignments} WHERE profile_id = :profile_id",
                 {**profile, "profile_id": profile_id})
    for table, _ in _PROFILE_ROWS:
        names, values = rows[table]["columns"], rows[table]["rows"]
        if values:
            conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(names)})"
                             f" VALUES ({', '.join('?' * len(names))})", values)


def note_adopted(conn: apsw.Connection, merge_key: str) -> bool:
    """Notes that a merge's hand-over was taken; False if it was taken before."""
    conn.execute("INSERT OR IGNORE INTO cluster_adopted (merge_key) VALUES (?)", (merge_key,))
    return bool(conn.changes())
