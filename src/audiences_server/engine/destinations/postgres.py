"""The `postgres` kind: an audience kept as a table in the user's own PostgreSQL (psycopg 3).

Each connection has a table `<schema>.<table_prefix><collection>_<key>` with one row per member
(for a computed trait, per profile with a value): `profile_id` (the primary key), one text
column per identifier type (several values comma-separated, as in CSV exports), one `jsonb`
column per chosen trait (read when the row is written; a computed trait's own value comes from
the change), `changed_at` and `message_id` (the change that wrote the row). An entry or a new
value upserts the row, an exit (or a value gone) deletes it. PostgreSQL cuts a name past 63
bytes short, so two long names sharing their first 63 bytes would be one table (or column): a
name the destination makes that is longer is its first 50 bytes, `_` and 12 hex digits of the
SHA-256 of the whole name (`postgres_name`), which PostgreSQL keeps whole.

A batch of changes is one transaction, so the table only ever holds whole batches, and the
queue's guarantees carry over: each profile's changes in order, a batch retried until it
commits, and after a crash the batch in flight written again, which leaves the same rows
(upserts and deletes are idempotent). A batch with a value PostgreSQL refuses is written again
in halves, down to the changes it refuses, which alone are parked. A new connection starts from
an empty table: `audiences_connections` in the same schema records which connection each table
belongs to, and a table found belonging to another (an earlier connection of the same audience)
is dropped and created again, in that same transaction; the destination's worker does that for
each new connection (`Postgres.refresh`), so a first sync with nothing to write starts it too.

This module holds the SQL this server runs against the user's database (the only SQL outside
store/, since that database is not the server's own): names are quoted identifiers built with
psycopg.sql, values are always bound.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg
import structlog
from psycopg import conninfo, sql
from psycopg.types.json import Jsonb

from audiences_server.engine.destinations.base import (
    Context,
    Destination,
    Done,
    Outcome,
    Sink,
    check_id_types,
    check_range,
    check_secret_length,
    check_trait_names,
    invalid,
)
from audiences_server.engine.destinations.batching import timeout_s
from audiences_server.engine.sync.files import columns, trait_values
from audiences_server.store import evaluation
from audiences_server.store import sync as store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow

log = structlog.get_logger(__name__)

RESERVED = ("profile_id", "changed_at", "message_id")
MARKERS = "audiences_connections"
# PostgreSQL's longest name (NAMEDATALEN - 1), in bytes of UTF-8: it cuts longer ones short.
MAX_NAME_BYTES = 63
# What a longer name keeps of itself before `_` and its hash (50 + 1 + 12 = 63 bytes).
KEPT_NAME_BYTES = 50
HASH_DIGITS = 12


class Postgres(Destination):
    """A table per connection in a PostgreSQL database."""

    kind = "postgres"
    defaults: ClassVar[Mapping[str, Any]] = {"dsn": "", "schema": "public", "table_prefix": "",
                                             "external_id_types": [], "include_traits": [], "batch_size": 500}
    secrets = ("dsn",)
    own_places = "another table prefix or schema"

    def __init__(self) -> None:
        # The tables this process has started for their connections (`refresh`): (marker, place).
        self._started: set[tuple[str, tuple[Any, ...]]] = set()
        # Per destination (its public id): failures in a row starting tables, the monotonic time
        # to try again, and the last error (logged once per distinct error).
        self._failing: dict[str, tuple[int, float, str]] = {}
        self._lock = threading.Lock()

    def check(self, settings: Mapping[str, Any]) -> None:
        """A connection string, a schema and a batch size in range."""
        if not settings["dsn"]:
            raise invalid("postgres.dsn", "`postgres.dsn` is required")
        check_secret_length(settings["dsn"], "postgres.dsn")
        try:
            conninfo.conninfo_to_dict(settings["dsn"])
        except psycopg.ProgrammingError:
            # libpq's message quotes the text, which may hold a password: it is not repeated.
            raise invalid("postgres.dsn", "`postgres.dsn` is not a connection string libpq can read (a URI "
                          "postgresql://user:password@host:port/db or key=value pairs); its text is not repeated, "
                          "since it may hold a password") from None
        if not 0 < len(settings["schema"]) <= 63:
            raise invalid("postgres.schema", "`postgres.schema` must be 1 to 63 characters")
        if len(settings["table_prefix"]) > 30:
            raise invalid("postgres.table_prefix", "`postgres.table_prefix` must be at most 30 characters")
        check_range(settings, "postgres", "batch_size", 1, 5000)
        check_id_types(settings["external_id_types"], "postgres.external_id_types")
        check_trait_names(settings["include_traits"], "postgres.include_traits")
        for index, trait in enumerate(settings["include_traits"]):
            if "\0" in trait:  # no PostgreSQL name holds one: every batch would fail
                raise invalid("postgres.include_traits",
                              f"`postgres.include_traits[{index}]` must not contain a NUL character")

    def place(self, settings: Mapping[str, Any], collection: str, key: str) -> tuple[Any, ...] | None:
        """A connection's table: its database and its name in its schema (`table_of`)."""
        return table_of(settings, collection, key)

    def build(self, row: DestinationRow, context: Context) -> Sink:
        """A sink holding one connection to the database."""
        return PostgresSink(row, context.readers)

    def refresh(self, row: DestinationRow, context: Context, now_ms: int) -> None:
        """Starts the table of each connection this process has not started yet, so a new
        connection starts from an empty table even when its first sync has nothing to write
        (its batches, which start it too, would never come). Once per connection and place,
        with a connection to the database of its own, opened only then; a failure is logged once
        per distinct error and tried again after the delivery policy's backoff (the first batch,
        if one comes, starts the table anyway)."""
        if not row.enabled:
            return
        reader = context.readers.get()
        waiting = []
        for connection in store.connections_of(reader, row.destination_id):
            comp = evaluation.computation_by_id(reader, connection.computation_id)
            if comp is None:
                continue
            started = (marker_of(row.public_id, connection), table_of(row.config, comp.collection, comp.key))
            if started not in self._started:
                waiting.append((started, Table(row.config, comp)))
        with self._lock:
            failures, again, last_error = self._failing.get(row.public_id, (0, 0.0, ""))
        if not waiting or time.monotonic() < again:
            return
        try:
            with _connect(row.config["dsn"], timeout_s(row)) as conn:
                for started, table in waiting:
                    with conn.transaction():
                        table.prepare(conn, started[0])
                    self._started.add(started)
        except Exception as failure:  # whatever it is, the destination's sends go on
            error = f"postgres: {type(failure).__name__}: {_first_line(failure)}"
            if error != last_error:
                log.warning("sync_sink_failed", destination=row.destination_id, error=error)
            policy = row.policy
            wait_ms = min(int(policy["max_backoff_ms"]), int(policy["initial_backoff_ms"]) * 2 ** min(failures, 30))
            with self._lock:
                self._failing[row.public_id] = (failures + 1, time.monotonic() + wait_ms / 1000, error)
            return
        with self._lock:
            self._failing.pop(row.public_id, None)


class PostgresSink:
    """Writes batches of changes, each in one transaction."""

    max_in_flight = 1

    def __init__(self, row: DestinationRow, readers: Readers) -> None:
        self.max_batch = int(row.config["batch_size"])
        self._config = row.config
        self._owner = row.public_id
        self._timeout_s = timeout_s(row)
        self._readers = readers
        self._conn: psycopg.Connection[Any] | None = None
        self._ready: set[str] = set()  # connections whose table was checked since the database connection opened
        self._lock = threading.Lock()

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """The oldest due changes, as one batch."""
        return ([list(heads[: self.max_batch])] if heads and writes > 0 else []), None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Writes the batch in one transaction; the outcome is the batch's. When PostgreSQL
        refuses a value of it (a data or integrity error), its halves are written apart, and
        theirs, down to the changes it refuses, which alone are parked: one bad value does not
        park up to `batch_size` other profiles' changes, nor park them again when they are all
        redriven. A batch holds one change per profile, so its parts may commit apart; each
        part's outcome is told once it committed (or failed), so a crash leaves the parts not
        yet told in flight, written again after the restart (idempotent, as a whole batch is).
        Once a part fails in a way worth retrying (the connection lost), the parts left fail
        with it unwritten."""
        with self._lock:
            parts = [list(batch)]
            retrying: Outcome | None = None
            while parts:
                part = parts.pop()
                if retrying is not None:
                    done(part, retrying)
                    continue
                outcome = self._write(part, connections)
                if not outcome.ok and not outcome.retry and len(part) > 1:
                    half = len(part) // 2
                    parts += [part[half:], part[:half]]  # the first half is written first
                    continue
                if not outcome.ok and outcome.retry:
                    retrying = outcome
                done(part, outcome)

    def _write(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow]) -> Outcome:
        prepared: list[str] = []
        try:
            conn = self._connection()
            with conn.transaction():
                for connection_id in dict.fromkeys(d.connection_id for d in batch):
                    connection = connections.get(connection_id)
                    if connection is not None:
                        self._write_connection(conn, connection, [d for d in batch if d.connection_id == connection_id],
                                               prepared)
        except (psycopg.DataError, psycopg.IntegrityError) as failure:
            return Outcome(False, False, f"postgres refused a value: {_first_line(failure)}")
        except psycopg.Error as failure:
            self._reset()
            return Outcome(False, True, f"postgres: {type(failure).__name__}: {_first_line(failure)}")
        # Only once committed: a table prepared in a transaction rolled back (a refused value)
        # may still be the earlier connection's, and is prepared again by the next write.
        self._ready.update(prepared)
        return Outcome(ok=True)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self._config["dsn"], self._timeout_s)
            self._ready.clear()
        return self._conn

    def _reset(self) -> None:
        """Drops the connection after an error: the next batch opens a new one."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._ready.clear()

    def _write_connection(self, conn: psycopg.Connection[Any], connection: ConnectionRow,
                          deliveries: list[Delivery], prepared: list[str]) -> None:
        reader = self._readers.get()
        comp = evaluation.computation_by_id(reader, connection.computation_id)
        if comp is None:
            return
        table = Table(self._config, comp)
        marker = marker_of(self._owner, connection)
        if marker not in self._ready and marker not in prepared:
            table.prepare(conn, marker)
            prepared.append(marker)
        leaving = [d for d in deliveries if _gone(d.record)]
        staying = [d for d in deliveries if not _gone(d.record)]
        if leaving:
            with conn.cursor() as cursor:
                cursor.executemany(table.delete(), [(d.record["profile"],) for d in leaving])
        if staying:
            values = trait_values(reader, comp, table.traits, [d.profile_id for d in staying]) if table.traits else {}
            with conn.cursor() as cursor:
                cursor.executemany(table.upsert(), [table.row(d, values.get(d.profile_id, {})) for d in staying])

    def close(self) -> None:
        """Closes the connection to the database."""
        with self._lock:
            self._reset()


def _connect(dsn: str, timeout: float) -> psycopg.Connection[Any]:
    """A connection to the user's database, `timeout` bounding connecting and each statement."""
    return psycopg.connect(dsn, connect_timeout=max(1, int(timeout)),
                           options=f"-c statement_timeout={int(timeout * 1000)}", application_name="audiences")


def marker_of(owner: str, connection: ConnectionRow) -> str:
    """How `audiences_connections` names a connection: its destination's public id, its id and
    when it was made (the same on every shard of a cluster, which copies both)."""
    return f"{owner}:{connection.connection_id}:{connection.created_ms}"


def as_postgres_sees(name: str) -> str:
    """A name as PostgreSQL takes it: cut to its first 63 bytes (a character never split)."""
    return name.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def postgres_name(name: str) -> str:
    """The name the destination gives a table or column: the name itself when PostgreSQL keeps
    it whole (63 bytes or fewer: the tables and columns made before keep their names), otherwise
    its first 50 bytes (a character never split), `_` and the first 12 hex digits of the SHA-256
    of its UTF-8, at most 63 bytes, so two names sharing their first 63 bytes no longer become one."""
    data = name.encode()
    if len(data) <= MAX_NAME_BYTES:
        return name
    kept = data[:KEPT_NAME_BYTES].decode("utf-8", "ignore")
    return f"{kept}_{hashlib.sha256(data).hexdigest()[:HASH_DIGITS]}"


def table_of(config: Mapping[str, Any], collection: str, key: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """Where a connection of a destination with these settings keeps its table: the database (its
    DSN's parameters but the password) and the table's name in its schema, both as PostgreSQL
    sees them (two schemas written apart past their first 63 bytes are one). Connections of two
    destinations at the same place would each drop the other's rows, taking the table for an
    earlier connection's."""
    try:
        parameters = conninfo.conninfo_to_dict(config["dsn"])
    except psycopg.ProgrammingError:
        parameters = {"dsn": config["dsn"]}
    database = tuple(sorted((k, str(v)) for k, v in parameters.items() if k != "password"))
    return database, f"{as_postgres_sees(config['schema'])}.{_table_name(config, collection, key)}"


def _table_name(config: Mapping[str, Any], collection: str, key: str) -> str:
    return postgres_name(f"{config['table_prefix']}{collection}_{key}")


class Table:
    """One connection's table: its name, its columns, and the statements that keep it."""

    def __init__(self, config: Mapping[str, Any], comp: ComputationRow) -> None:
        self.full_name = f"{config['table_prefix']}{comp.collection}_{comp.key}"
        self.name = postgres_name(self.full_name)
        self.comp = comp
        chosen_ids, chosen_traits = columns(comp, config["external_id_types"], config["include_traits"])
        # Each chosen name with its column: `postgres_name` of it, once (the first name to claim
        # a column keeps it), never one of RESERVED.
        taken = set(RESERVED)
        self.ids: list[str] = []
        self.traits: list[str] = []
        self._columns: dict[str, str] = {}
        for chosen, names in ((chosen_ids, self.ids), (chosen_traits, self.traits)):
            for name in chosen:
                column = postgres_name(name)
                if column not in taken:
                    taken.add(column)
                    names.append(name)
                    self._columns[name] = column
        self._schema = config["schema"]
        self._markers = sql.Identifier(config["schema"], MARKERS)
        self._table = sql.Identifier(config["schema"], self.name)

    def prepare(self, conn: psycopg.Connection[Any], marker: str) -> None:
        """Creates the table, or starts it afresh when it belongs to another connection, and adds
        the columns chosen since it was made.

        Several writers can prepare the same table at once (the shards of a cluster each write
        their own profiles' rows into it): the preparation holds a lock of the schema until the
        transaction ends, so a writer reads the markers another has committed, instead of
        dropping the table that writer has just filled or racing it to create the table."""
        markers = self._markers
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self._schema),))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, connection text NOT NULL,"
                             " prepared_at timestamptz NOT NULL DEFAULT now())").format(markers))
        found = conn.execute(sql.SQL("SELECT connection FROM {} WHERE table_name = %s FOR UPDATE").format(markers),
                             (self.name,)).fetchone()
        if found is None and self.name != self.full_name and self._adopt(conn, marker):
            found = (marker,)
        if found is None or found[0] != marker:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))
            conn.execute(sql.SQL("INSERT INTO {} (table_name, connection) VALUES (%s, %s) ON CONFLICT (table_name)"
                                 " DO UPDATE SET connection = excluded.connection, prepared_at = now()")
                         .format(markers), (self.name, marker))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (profile_id text PRIMARY KEY, changed_at timestamptz"
                             " NOT NULL, message_id text NOT NULL)").format(self._table))
        kinds = [*(("text", c) for c in self.ids), *(("jsonb", c) for c in self.traits)]
        if any(self._columns[name] != name for _, name in kinds):
            self._adopt_columns(conn)
        for kind, name in kinds:
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} " + kind)
                         .format(self._table, sql.Identifier(self._columns[name])))

    def _adopt(self, conn: psycopg.Connection[Any], marker: str) -> bool:
        """Renames this connection's table made before long names were shortened, which
        PostgreSQL had cut to its first 63 bytes, to the table's name, so its rows are kept:
        only when the markers say it is this connection's alone (none other, of any connection
        or earlier one, is cut to the same name). Otherwise, as when it was shared by two
        connections whose rows mixed there, the table starts afresh. True when renamed."""
        cut = as_postgres_sees(self.full_name)
        claims = [tuple(r) for r in conn.execute(
            sql.SQL("SELECT table_name, connection FROM {} WHERE octet_length(table_name) >= %s")
            .format(self._markers), (len(cut.encode()),)) if as_postgres_sees(r[0]) == cut]
        if claims != [(self.full_name, marker)]:
            return False
        old = sql.Identifier(self._schema, cut)
        if conn.execute("SELECT to_regclass(%s)", (old.as_string(conn),)).fetchone() == (None,):
            return False
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(old, sql.Identifier(self.name)))
        conn.execute(sql.SQL("UPDATE {} SET table_name = %s WHERE table_name = %s").format(self._markers),
                     (self.name, self.full_name))
        return True

    def _adopt_columns(self, conn: psycopg.Connection[Any]) -> None:
        """Renames the columns made before long names were shortened, which PostgreSQL had cut
        to their first 63 bytes, to their names, so their values are kept: each only when it is
        no column's own name and no other chosen name is cut to it (two were one column then,
        and every batch failed)."""
        found = {r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (self._table.as_string(conn),))}
        names = [*self.ids, *self.traits]
        owned = set(RESERVED) | set(self._columns.values())
        for name in names:
            column, cut = self._columns[name], as_postgres_sees(name)
            if (column != name and column not in found and cut in found and cut not in owned
                    and sum(as_postgres_sees(n) == cut for n in names) == 1):
                conn.execute(sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}")
                             .format(self._table, sql.Identifier(cut), sql.Identifier(column)))

    def delete(self) -> sql.Composed:
        """Deletes one profile's row."""
        return sql.SQL("DELETE FROM {} WHERE profile_id = %s").format(self._table)

    def upsert(self) -> sql.Composed:
        """Writes one profile's row, whether or not it is there."""
        names = ["profile_id", "changed_at", "message_id", *(self._columns[n] for n in (*self.ids, *self.traits))]
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (profile_id) DO UPDATE SET {}").format(
            self._table, sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
            sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(n)) for n in names[1:]))

    def row(self, delivery: Delivery, traits: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of one profile's row: identifiers as captured with the change, the
        computed trait's own value from the change, other traits as they are now."""
        record = delivery.record
        ids = [",".join(v for t, v in record["ids"] if t == id_type) or None for id_type in self.ids]
        own = {self.comp.key: record["new"]} if self.comp.kind == "computed_trait" else {}
        values = {**traits, **own}
        cells = [None if values.get(t) is None else Jsonb(values[t]) for t in self.traits]
        return (record["profile"], _timestamp(record["at_ms"]), record["message_id"], *ids, *cells)


def _lock_key(schema: str) -> int:
    """The advisory lock that orders the preparations of tables in one schema, the same on
    every server: a signed 64-bit number made from the schema's name (as PostgreSQL sees it)."""
    digest = hashlib.blake2b(f"audiences_connections:{as_postgres_sees(schema)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _gone(record: Mapping[str, Any]) -> bool:
    """Whether a change takes the profile out of the table: an exit, or a value gone."""
    return bool(record["change"] == "exited" or (record["kind"] != "audience" and record["new"] is None))


def _timestamp(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def _first_line(failure: Exception) -> str:
    return (str(failure).strip().splitlines() or [""])[0][:300]
