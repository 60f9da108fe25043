"""The `postgres` kind: an audience kept as a table in the user's own PostgreSQL (psycopg 3).

Each connection has a table `<schema>.<table_prefix><collection>_<key>` with one row per member
(for a computed trait, per profile with a value): `profile_id` (the primary key), one text
column per identifier type (several values comma-separated, as in CSV exports), one `jsonb`
column per chosen trait (read when the row is written; a computed trait's own value comes from
the change), `changed_at` and `message_id` (the change that wrote the row). An entry or a new
value upserts the row, an exit (or a value gone) deletes it.

A batch of changes is one transaction, so the table only ever holds whole batches, and the
queue's guarantees carry over: each profile's changes in order, a batch retried until it
commits, and after a crash the batch in flight written again, which leaves the same rows
(upserts and deletes are idempotent). The first batch of a new connection starts from an empty
table: `audiences_connections` in the same schema records which connection each table belongs
to, and a table found belonging to another (an earlier connection of the same audience) is
dropped and created again, in that same transaction.

This module holds the SQL this server runs against the user's database (the only SQL outside
store/, since that database is not the server's own): names are quoted identifiers built with
psycopg.sql, values are always bound.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg
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
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow

RESERVED = ("profile_id", "changed_at", "message_id")
MARKERS = "audiences_connections"


class Postgres(Destination):
    """A table per connection in a PostgreSQL database."""

    kind = "postgres"
    defaults: ClassVar[Mapping[str, Any]] = {"dsn": "", "schema": "public", "table_prefix": "",
                                             "external_id_types": [], "include_traits": [], "batch_size": 500}
    secrets = ("dsn",)
    own_places = "another table prefix or schema"

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

    def place(self, settings: Mapping[str, Any], collection: str, key: str) -> tuple[Any, ...] | None:
        """A connection's table: its database and its name in its schema (`table_of`)."""
        return table_of(settings, collection, key)

    def build(self, row: DestinationRow, context: Context) -> Sink:
        """A sink holding one connection to the database."""
        return PostgresSink(row, context.readers)


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
        """Writes the batch in one transaction; the outcome is the batch's."""
        with self._lock:
            done(batch, self._write(batch, connections))

    def _write(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow]) -> Outcome:
        try:
            conn = self._connection()
            with conn.transaction():
                for connection_id in dict.fromkeys(d.connection_id for d in batch):
                    connection = connections.get(connection_id)
                    if connection is not None:
                        self._write_connection(conn, connection, [d for d in batch if d.connection_id == connection_id])
        except (psycopg.DataError, psycopg.IntegrityError) as failure:
            return Outcome(False, False, f"postgres refused a value: {_first_line(failure)}")
        except psycopg.Error as failure:
            self._reset()
            return Outcome(False, True, f"postgres: {type(failure).__name__}: {_first_line(failure)}")
        return Outcome(ok=True)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = int(self._timeout_s * 1000)
            self._conn = psycopg.connect(self._config["dsn"], connect_timeout=max(1, int(self._timeout_s)),
                                         options=f"-c statement_timeout={timeout_ms}", application_name="audiences")
            self._ready.clear()
        return self._conn

    def _reset(self) -> None:
        """Drops the connection after an error: the next batch opens a new one."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._ready.clear()

    def _write_connection(self, conn: psycopg.Connection[Any], connection: ConnectionRow,
                          deliveries: list[Delivery]) -> None:
        reader = self._readers.get()
        comp = evaluation.computation_by_id(reader, connection.computation_id)
        if comp is None:
            return
        table = Table(self._config, comp)
        marker = f"{self._owner}:{connection.connection_id}:{connection.created_ms}"
        if marker not in self._ready:
            table.prepare(conn, marker)
            self._ready.add(marker)
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


def table_of(config: Mapping[str, Any], collection: str, key: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """Where a connection of a destination with these settings keeps its table: the database (its
    DSN's parameters but the password) and the table's name in its schema. Connections of two
    destinations at the same place would each drop the other's rows, taking the table for an
    earlier connection's."""
    try:
        parameters = conninfo.conninfo_to_dict(config["dsn"])
    except psycopg.ProgrammingError:
        parameters = {"dsn": config["dsn"]}
    database = tuple(sorted((k, str(v)) for k, v in parameters.items() if k != "password"))
    return database, f"{config['schema']}.{config['table_prefix']}{collection}_{key}"


class Table:
    """One connection's table: its name, its columns, and the statements that keep it."""

    def __init__(self, config: Mapping[str, Any], comp: ComputationRow) -> None:
        self.name = f"{config['table_prefix']}{comp.collection}_{comp.key}"
        self.comp = comp
        chosen_ids, chosen_traits = columns(comp, config["external_id_types"], config["include_traits"])
        self.ids = [c for c in chosen_ids if c not in RESERVED]
        self.traits = [c for c in chosen_traits if c not in RESERVED]
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
        if found is None or found[0] != marker:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))
            conn.execute(sql.SQL("INSERT INTO {} (table_name, connection) VALUES (%s, %s) ON CONFLICT (table_name)"
                                 " DO UPDATE SET connection = excluded.connection, prepared_at = now()")
                         .format(markers), (self.name, marker))
        kinds = [*(("text", c) for c in self.ids), *(("jsonb", c) for c in self.traits)]
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (profile_id text PRIMARY KEY, changed_at timestamptz"
                             " NOT NULL, message_id text NOT NULL)").format(self._table))
        for kind, column in kinds:
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} " + kind)
                         .format(self._table, sql.Identifier(column)))

    def delete(self) -> sql.Composed:
        """Deletes one profile's row."""
        return sql.SQL("DELETE FROM {} WHERE profile_id = %s").format(self._table)

    def upsert(self) -> sql.Composed:
        """Writes one profile's row, whether or not it is there."""
        names = ["profile_id", "changed_at", "message_id", *self.ids, *self.traits]
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
    every server: a signed 64-bit number made from the schema's name."""
    digest = hashlib.blake2b(f"audiences_connections:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _gone(record: Mapping[str, Any]) -> bool:
    """Whether a change takes the profile out of the table: an exit, or a value gone."""
    return bool(record["change"] == "exited" or (record["kind"] != "audience" and record["new"] is None))


def _timestamp(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def _first_line(failure: Exception) -> str:
    return (str(failure).strip().splitlines() or [""])[0][:300]
