"""What a cluster role keeps in its SQLite file beside the engine's tables (docs/scaling.md).

Readers' positions in the log, the identity stage's outbox and seen message ids, the merges a
shard has adopted, and a profile's rows as one shard hands them to another. The tables are
made by `prepare_cluster` when a role starts: a single node never has them.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from audiences_server.store import sync
from audiences_server.store.db import rows as rows_of
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
    -- A shard's counts of its users' results per account (what it last published, by key).
    CREATE TABLE IF NOT EXISTS cluster_tallies_sent (
        computation_key TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        operand INTEGER NOT NULL,
        held INTEGER NOT NULL,
        linked INTEGER NOT NULL,
        PRIMARY KEY (computation_key, account_id, operand)
    ) WITHOUT ROWID;
    -- Every shard's counts for the accounts this shard owns, as last received.
    CREATE TABLE IF NOT EXISTS cluster_tallies (
        computation_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        source INTEGER NOT NULL,
        operand INTEGER NOT NULL,
        held INTEGER NOT NULL,
        linked INTEGER NOT NULL,
        PRIMARY KEY (computation_id, account_id, source, operand)
    ) WITHOUT ROWID;
    -- Counts read before their tick was reached (another shard ticked first).
    CREATE TABLE IF NOT EXISTS cluster_tallies_inbox (
        tick INTEGER NOT NULL,
        source INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (tick, source)
    ) WITHOUT ROWID;
    -- System clock: counts received for a definition this shard does not hold yet (its `define`
    -- entry comes later in this partition than another shard's counts for it), by key.
    CREATE TABLE IF NOT EXISTS cluster_tallies_early (
        computation_key TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        source INTEGER NOT NULL,
        operand INTEGER NOT NULL,
        held INTEGER NOT NULL,
        linked INTEGER NOT NULL,
        PRIMARY KEY (computation_key, account_id, source, operand)
    ) WITHOUT ROWID;
    -- Accounts a tick reached (this shard's or another's), to combine once every shard's counts
    -- are in, with the step of the tick that reached them first (2 x job, + 1 for live work).
    CREATE TABLE IF NOT EXISTS cluster_account_work (
        computation_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (computation_id, account_id)
    ) WITHOUT ROWID;
"""

# A profile's rows, table by table, with the column that names the profile (two for links).
_PROFILE_ROWS = (("identifiers", ("profile_id",)), ("events", ("profile_id",)), ("traits", ("profile_id",)),
                 ("links", ("user_id", "account_id")), ("unlinks", ("user_id", "account_id")),
                 ("pending_unlinks", ("user_id",)))
_PROFILE_COLUMNS = ("space_id", "collection", "public_id", "merge_count", "created_ms", "updated_ms",
                    "first_message_ms", "last_message_ms")


# A shard notes the accounts whose counts may have moved (`cluster_dirty_accounts`): a link made,
# moved or removed, and a linked user's stored results written or dropped. Only those accounts
# are counted again at the tick.
_SHARD_TABLES = """
    CREATE TABLE IF NOT EXISTS cluster_dirty_accounts (
        account_id INTEGER PRIMARY KEY
    );
    CREATE TRIGGER IF NOT EXISTS cluster_link_added AFTER INSERT ON links BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id) VALUES (NEW.account_id);
    END;
    CREATE TRIGGER IF NOT EXISTS cluster_link_removed AFTER DELETE ON links BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id) VALUES (OLD.account_id);
    END;
    CREATE TRIGGER IF NOT EXISTS cluster_link_changed AFTER UPDATE OF user_id, account_id ON links BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id) VALUES (OLD.account_id), (NEW.account_id);
    END;
    CREATE TRIGGER IF NOT EXISTS cluster_result_added AFTER INSERT ON member_results BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id)
            SELECT account_id FROM links WHERE user_id = NEW.user_id;
    END;
    CREATE TRIGGER IF NOT EXISTS cluster_result_changed AFTER UPDATE ON member_results BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id)
            SELECT account_id FROM links WHERE user_id IN (OLD.user_id, NEW.user_id);
    END;
    CREATE TRIGGER IF NOT EXISTS cluster_result_removed AFTER DELETE ON member_results BEGIN
        INSERT OR IGNORE INTO cluster_dirty_accounts (account_id)
            SELECT account_id FROM links WHERE user_id = OLD.user_id;
    END;
"""


def prepare_cluster(conn: apsw.Connection) -> None:
    """Makes the cluster's tables if they are missing."""
    conn.execute(_TABLES)


def prepare_shard(conn: apsw.Connection) -> None:
    """Makes a shard's tables and triggers if they are missing (after `prepare_cluster`)."""
    conn.execute(_SHARD_TABLES)


def take_dirty_accounts(conn: apsw.Connection) -> list[int]:
    """The accounts whose counts may have moved since last taken, and forgets them."""
    found = [int(r[0]) for r in conn.execute("SELECT account_id FROM cluster_dirty_accounts ORDER BY account_id")]
    conn.execute("DELETE FROM cluster_dirty_accounts")
    return found


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
    # The other ends of its links and unlinks, so that the adopting shard can name them (a
    # reference row, for a profile it does not keep).
    rows["linked"] = rows_of(conn, "SELECT profile_id, space_id, collection, public_id, created_ms FROM profiles"
                                   " WHERE profile_id IN (SELECT account_id FROM links WHERE user_id = :p"
                                   " UNION SELECT user_id FROM links WHERE account_id = :p"
                                   " UNION SELECT account_id FROM unlinks WHERE user_id = :p"
                                   " UNION SELECT user_id FROM unlinks WHERE account_id = :p)", {"p": profile_id})
    # The profiles merged into it before (a chain C into B, then B into A on another shard), with
    # their merges: the adopting shard lists them among the survivor's merged profiles, as one
    # node does.
    rows["absorbed"] = rows_of(conn, "SELECT profile_id, space_id, collection, public_id, created_ms FROM profiles"
                                     " WHERE merged_into = :p AND profile_id != :p", {"p": profile_id})
    rows["merges"] = rows_of(conn, "SELECT space_id, survivor_id, merged_id, message_id, merged_ms FROM merges"
                                   " WHERE merged_id IN (SELECT profile_id FROM profiles WHERE merged_into = :p"
                                   " AND profile_id != :p) ORDER BY merge_id", {"p": profile_id})
    return rows


def remove_profile(conn: apsw.Connection, profile_id: int, survivor: int) -> None:
    """Deletes a handed-over profile's rows and marks it (and those merged into it) merged into `survivor`.

    Its queued deliveries become the survivor's, as a merge on one node makes them
    (`sync.move_deliveries`): its later ones (its exits) are queued as the survivor's, behind them."""
    for table, columns in _PROFILE_ROWS:
        where = " OR ".join(f"{c} = ?" for c in columns)
        conn.execute(f"DELETE FROM {table} WHERE {where}", (profile_id,) * len(columns))
    conn.execute("UPDATE profiles SET merged_into = ? WHERE profile_id = ? OR merged_into = ?",
                 (survivor, profile_id, profile_id))
    sync.move_deliveries(conn, survivor, profile_id)


def import_profile(conn: apsw.Connection, profile_id: int, rows: dict[str, Any]) -> None:
    """Stores a handed-over profile's rows (the other end of a link gets a reference row if missing)."""
    profile = rows["profile"]
    for other in rows.get("linked", []):  # hand-overs published before the ends were carried have none
        ensure_profile(conn, int(other["profile_id"]), int(other["space_id"]), other["collection"],
                       other["public_id"], int(other["created_ms"]), elsewhere=True)
    ensure_profile(conn, profile_id, profile["space_id"], profile["collection"], profile["public_id"],
                   profile["created_ms"], elsewhere=False)
    assignments = ", ".join(f"{c} = :{c}" for c in _PROFILE_COLUMNS)
    conn.execute(f"UPDATE profiles SET merged_into = NULL, {assignments} WHERE profile_id = :profile_id",
                 {**profile, "profile_id": profile_id})
    for table, _ in _PROFILE_ROWS:
        if table not in rows:  # a hand-over published before the table was carried
            continue
        names, values = rows[table]["columns"], rows[table]["rows"]
        if values:
            conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(names)})"
                             f" VALUES ({', '.join('?' * len(names))})", values)
    # Hand-overs published before these were carried have neither.
    for other in rows.get("absorbed", []):
        ensure_profile(conn, int(other["profile_id"]), int(other["space_id"]), other["collection"],
                       other["public_id"], int(other["created_ms"]), elsewhere=True)
        conn.execute("UPDATE profiles SET merged_into = ? WHERE profile_id = ?", (profile_id, int(other["profile_id"])))
    # Their merges get this file's ids, in their order: older than the merge that adopts them.
    conn.executemany("INSERT INTO merges (space_id, survivor_id, merged_id, message_id, merged_ms)"
                     " VALUES (:space_id, :survivor_id, :merged_id, :message_id, :merged_ms)"
                     " EXCEPT SELECT space_id, survivor_id, merged_id, message_id, merged_ms FROM merges",
                     rows.get("merges", []))


def note_adopted(conn: apsw.Connection, merge_key: str) -> bool:
    """Notes that a merge's hand-over was taken; False if it was taken before."""
    conn.execute("INSERT OR IGNORE INTO cluster_adopted (merge_key) VALUES (?)", (merge_key,))
    return bool(conn.changes())


def accounts_defined(conn: apsw.Connection) -> bool:
    """Whether any account definition exists (shards then exchange counts at every tick)."""
    return bool(scalar(conn, "SELECT EXISTS (SELECT 1 FROM computations WHERE collection = 'accounts')"))


def member_tallies(conn: apsw.Connection, computation_id: int,
                   account_ids: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """Per (account, operand) of these accounts: how many of this file's linked users satisfy the
    operand, and how many are linked (each linked user has stored results: see `unresolved_members`)."""
    return {
        (int(account), int(operand)): (int(held), int(linked))
        for account, operand, held, linked in conn.execute(
            "SELECT l.account_id, r.operand, SUM(r.held), COUNT(*) FROM links AS l"
            " JOIN profiles AS p ON p.profile_id = l.user_id AND p.merged_into IS NULL"
            " JOIN member_results AS r ON r.user_id = l.user_id AND r.computation_id = ?"
            " WHERE l.account_id IN (SELECT value FROM json_each(?))"
            " GROUP BY l.account_id, r.operand", (computation_id, json.dumps(account_ids)))
    }


def sent_tallies(conn: apsw.Connection, key: str, account_ids: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """The counts last published for a definition, per (account, operand) of these accounts."""
    return {
        (int(account), int(operand)): (int(held), int(linked))
        for account, operand, held, linked in conn.execute(
            "SELECT account_id, operand, held, linked FROM cluster_tallies_sent WHERE computation_key = ?"
            " AND account_id IN (SELECT value FROM json_each(?))", (key, json.dumps(account_ids)))
    }


def forget_definition(conn: apsw.Connection, key: str) -> None:
    """Forgets what was published for a deleted account definition (a definition created again
    with its key starts with nothing published, so every count it has is published), and the
    counts received for definitions that no longer exist."""
    conn.execute("DELETE FROM cluster_tallies_sent WHERE computation_key = ?", (key,))
    conn.execute("DELETE FROM cluster_tallies WHERE computation_id NOT IN (SELECT computation_id FROM computations)")


def note_sent(conn: apsw.Connection, key: str, rows: list[tuple[int, int, int, int]]) -> None:
    """Records published counts (account, operand, held, linked); a count of no linked user is forgotten."""
    conn.executemany("DELETE FROM cluster_tallies_sent WHERE computation_key = ? AND account_id = ? AND operand = ?",
                     [(key, account, operand) for account, operand, _, linked in rows if not linked])
    conn.executemany("INSERT OR REPLACE INTO cluster_tallies_sent (computation_key, account_id, operand, held, linked)"
                     " VALUES (?, ?, ?, ?, ?)", [(key, *row) for row in rows if row[3]])


def put_tally(conn: apsw.Connection, computation_id: int, account_id: int, source: int, operand: int,
              held: int, linked: int) -> bool:
    """Stores one shard's counts for an account; False if they are those already stored."""
    row = conn.execute("SELECT held, linked FROM cluster_tallies WHERE computation_id = ? AND account_id = ?"
                       " AND source = ? AND operand = ?", (computation_id, account_id, source, operand)).fetchone()
    if (tuple(row) if row else (0, 0)) == (held, linked):
        return False
    if linked:
        conn.execute("INSERT OR REPLACE INTO cluster_tallies (computation_id, account_id, source, operand, held,"
                     " linked) VALUES (?, ?, ?, ?, ?, ?)", (computation_id, account_id, source, operand, held, linked))
    else:
        conn.execute("DELETE FROM cluster_tallies WHERE computation_id = ? AND account_id = ? AND source = ?"
                     " AND operand = ?", (computation_id, account_id, source, operand))
    return True


def keep_early_tallies(conn: apsw.Connection, key: str, account_id: int, source: int, operand: int,
                       held: int, linked: int) -> None:
    """Keeps one shard's counts for an account of a definition not held yet (the latest replaces)."""
    conn.execute("INSERT OR REPLACE INTO cluster_tallies_early (computation_key, account_id, source, operand, held,"
                 " linked) VALUES (?, ?, ?, ?, ?, ?)", (key, account_id, source, operand, held, linked))


def take_early_tallies(conn: apsw.Connection, space_id: int, key: str) -> None:
    """Stores the counts kept for an account definition now held (`keep_early_tallies`) as
    received counts, and forgets them; counts received since (in `cluster_tallies`) stay."""
    conn.execute("INSERT OR IGNORE INTO cluster_tallies (computation_id, account_id, source, operand, held, linked)"
                 " SELECT c.computation_id, e.account_id, e.source, e.operand, e.held, e.linked"
                 " FROM cluster_tallies_early AS e JOIN computations AS c ON c.key = e.computation_key"
                 " AND c.collection = 'accounts' AND c.space_id = ? WHERE e.computation_key = ? AND e.linked > 0",
                 (space_id, key))
    conn.execute("DELETE FROM cluster_tallies_early WHERE computation_key = ?", (key,))


def tally_flags(conn: apsw.Connection, computation_id: int, account_ids: list[int]) -> dict[tuple[int, int],
                                                                                            tuple[bool, bool]]:
    """Per (account, operand), over every shard's counts: whether some linked user satisfies the
    operand, and whether some does not (as one node's `member_flags`)."""
    return {
        (int(account), int(operand)): (held > 0, linked > held)
        for account, operand, held, linked in conn.execute(
            "SELECT account_id, operand, SUM(held), SUM(linked) FROM cluster_tallies WHERE computation_id = ?"
            " AND account_id IN (SELECT value FROM json_each(?)) GROUP BY account_id, operand",
            (computation_id, json.dumps(account_ids)))
    }


def keep_inbox(conn: apsw.Connection, tick: int, source: int, data: bytes) -> None:
    """Keeps a shard's counts for a tick not reached yet (the first copy, if published twice)."""
    conn.execute("INSERT OR IGNORE INTO cluster_tallies_inbox (tick, source, data) VALUES (?, ?, ?)",
                 (tick, source, data))


def inbox(conn: apsw.Connection, tick: int) -> dict[int, bytes]:
    """The counts kept for a tick, by source partition."""
    return {int(source): bytes(data) for source, data in
            conn.execute("SELECT source, data FROM cluster_tallies_inbox WHERE tick = ?", (tick,))}


def drop_inbox(conn: apsw.Connection, through: int) -> None:
    """Forgets counts of ticks combined."""
    conn.execute("DELETE FROM cluster_tallies_inbox WHERE tick <= ?", (through,))


def defer_accounts(conn: apsw.Connection, computation_id: int, account_ids: list[int], step: int) -> None:
    """Notes accounts to combine at the end of the tick, each with the first step that reached it."""
    conn.executemany("INSERT INTO cluster_account_work (computation_id, account_id, step) VALUES (?, ?, ?)"
                     " ON CONFLICT DO UPDATE SET step = min(step, excluded.step)",
                     [(computation_id, account, step) for account in account_ids])


def take_account_work(conn: apsw.Connection) -> list[tuple[int, int, int]]:
    """The accounts the tick reached, (computation, account, step), and forgets them."""
    rows = [(int(c), int(a), int(step)) for c, a, step in
            conn.execute("SELECT computation_id, account_id, step FROM cluster_account_work")]
    conn.execute("DELETE FROM cluster_account_work")
    return rows


def set_public_id(conn: apsw.Connection, computation_id: int, public_id: str) -> None:
    """Gives a definition the id a front gave it (its `define` entry carries it)."""
    conn.execute("UPDATE computations SET public_id = ? WHERE computation_id = ?", (public_id, computation_id))
