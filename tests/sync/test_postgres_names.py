"""PostgreSQL names past 63 bytes: PostgreSQL cuts them short, so the destination gives a longer
table or column name a readable part and a hash of the whole name of its own (`postgres_name`),
and compares names as PostgreSQL sees them when it refuses two destinations one table."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import pytest
from audiences.v1 import sync_pb2
from google.protobuf import field_mask_pb2

from audiences_server.engine.destinations.postgres import MAX_NAME_BYTES, as_postgres_sees, marker_of, postgres_name
from tests.conftest import error_reason
from tests.evaluator.conftest import Space
from tests.sync.conftest import FAST, admin, connect, wait_for
from tests.sync.pg import PostgresServer

FREE = "a" * 57 + "_free"  # two keys of 62 characters (at most 64 are taken) sharing their first 57
PAID = "a" * 57 + "_paid"
HOME = "x" * 63 + "_home"  # two trait names sharing their first 63 bytes
WORK = "x" * 63 + "_work"


def _destination(space: Space, key: str, dsn: str, enabled: bool = True, **config: Any) -> None:
    message = sync_pb2.Destination(key=key, enabled=enabled, delivery_policy=FAST,
                                   postgres=sync_pb2.PostgresConfig(dsn=dsn, **config))
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message), metadata=admin(space))


def _rows(postgres: PostgresServer, table: str, columns: str = "user_id") -> set[tuple[Any, ...]]:
    exists = postgres.query("SELECT to_regclass(%s)", (f'"{table}"',))[0][0]
    return set(postgres.query(f'SELECT {columns} FROM "{table}"')) if exists else set()


def test_names_postgres_keeps_whole_are_kept_and_longer_ones_shortened() -> None:
    """A name of up to 63 bytes is kept as it is (tables made before keep their names); a longer
    one becomes its first 50 bytes (a character never split), `_` and 12 hex digits of its
    SHA-256: at most 63 bytes, and two names sharing their first 63 bytes get two names."""
    for kept in ("users_pro", "p" * 63, "é" * 31 + "x"):
        assert postgres_name(kept) == kept
    long_names = [f"users_{FREE}x", f"users_{PAID}x", HOME, WORK, "é" * 40, "é" * 40 + "e"]
    shortened = [postgres_name(n) for n in long_names]
    assert all(len(s.encode()) <= MAX_NAME_BYTES and as_postgres_sees(s) == s for s in shortened)
    assert len(set(shortened)) == len(long_names)
    assert len({as_postgres_sees(n) for n in long_names}) < len(long_names)  # what PostgreSQL made of them
    assert postgres_name(HOME) == "x" * 50 + "_" + hashlib.sha256(HOME.encode()).hexdigest()[:12]
    assert postgres_name("é" * 40) == "é" * 25 + "_" + hashlib.sha256(("é" * 40).encode()).hexdigest()[:12]


def test_two_long_keys_get_a_table_each(space: Space, postgres: PostgresServer) -> None:
    """Two audiences whose table names share their first 63 bytes keep a table each, equal to
    their own members, also after a profile moves from one to the other (before, both wrote one
    table, each first batch dropping the other's rows)."""
    prefix = f"s{space.space_id}_"
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro" if i < 3 else "free"}}
                 for i in range(6)))
    space.define(FREE, "trait('plan') = 'free'")
    space.define(PAID, "trait('plan') = 'pro'")
    space.tick()
    _destination(space, "warehouse", postgres.dsn, table_prefix=prefix)
    connect(space, "warehouse", FREE)
    connect(space, "warehouse", PAID)
    free, paid = postgres_name(f"{prefix}users_{FREE}"), postgres_name(f"{prefix}users_{PAID}")
    assert free != paid
    wait_for(lambda: _rows(postgres, free) == {("u3",), ("u4",), ("u5",)}
             and _rows(postgres, paid) == {("u0",), ("u1",), ("u2",)}, what="a table per audience")
    space.send({"type": "identify", "userId": "u0", "traits": {"plan": "free"}})
    space.tick()
    wait_for(lambda: _rows(postgres, free) == {("u0",), ("u3",), ("u4",), ("u5",)}
             and _rows(postgres, paid) == {("u1",), ("u2",)}, what="the move")
    markers = dict(postgres.query("SELECT table_name, connection FROM audiences_connections"))
    assert free in markers
    assert paid in markers


def test_two_long_trait_names_get_a_column_each(space: Space, postgres: PostgresServer) -> None:
    """Two `include_traits` sharing their first 63 bytes are two columns (before, one column
    named twice: every batch failed and was parked)."""
    prefix = f"s{space.space_id}_"
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro", HOME: f"h{i}", WORK: f"w{i}"}}
                 for i in range(3)))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, "warehouse", postgres.dsn, table_prefix=prefix, include_traits=[HOME, WORK])
    connect(space, "warehouse", "pro")
    home, work = postgres_name(HOME), postgres_name(WORK)
    wait_for(lambda: _rows(postgres, f"{prefix}users_pro", f'user_id, "{home}", "{work}"')
             == {(f"u{i}", f"h{i}", f"w{i}") for i in range(3)}, what="both columns")


def test_a_table_postgres_had_cut_short_is_kept_under_its_new_name(space: Space, postgres: PostgresServer) -> None:
    """A connection's table made before names were shortened, under the name PostgreSQL had cut
    to 63 bytes, is renamed to its new name with its rows (and a trait column cut short to its
    column's new name, with its values), rather than left behind while a new table starts with
    only the changes from then on."""
    prefix = f"s{space.space_id}_"
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free", HOME: "h1"}})
    space.define(FREE, "trait('plan') = 'free'")
    space.tick()
    _destination(space, "warehouse", postgres.dsn, enabled=False, table_prefix=prefix, include_traits=[HOME])
    connect(space, "warehouse", FREE)
    engine = space.running.server.engine
    row = engine.sync.destination(space.space_id, "warehouse")
    connection = engine.sync.connection(space.space_id, "warehouse", ("audience", "users", FREE)).row
    full = f"{prefix}users_{FREE}"
    cut = as_postgres_sees(full)
    # What the earlier version left: the table and its trait column under the names cut short,
    # a row the connection wrote then, and its marker under the whole name.
    postgres.run("CREATE TABLE IF NOT EXISTS audiences_connections (table_name text PRIMARY KEY, connection text"
                 " NOT NULL, prepared_at timestamptz NOT NULL DEFAULT now())")
    postgres.run(f'CREATE TABLE "{cut}" (profile_id text PRIMARY KEY, changed_at timestamptz NOT NULL, message_id'
                 f' text NOT NULL, user_id text, email text, "{as_postgres_sees(HOME)}" jsonb)')
    postgres.run(f'INSERT INTO "{cut}" VALUES (%s, now(), %s, %s, NULL, %s)', ("prf_earlier", "syn_1", "e1", '"he"'))
    postgres.run("INSERT INTO audiences_connections (table_name, connection) VALUES (%s, %s)",
                 (full, marker_of(row.public_id, connection)))
    space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="warehouse", enabled=True),
        update_mask=field_mask_pb2.FieldMask(paths=["enabled"])), metadata=admin(space))
    table = postgres_name(full)
    wait_for(lambda: _rows(postgres, table, f'user_id, "{postgres_name(HOME)}"') == {("e1", "he"), ("u1", "h1")},
             what="the earlier row kept beside the first sync's")
    assert postgres.query("SELECT to_regclass(%s)", (f'"{cut}"',)) == [(None,)]
    assert (table, marker_of(row.public_id, connection)) in postgres.query(
        "SELECT table_name, connection FROM audiences_connections")


def test_schemas_postgres_sees_as_one_are_one_place(space: Space) -> None:
    """Two schemas written apart only past their first 63 bytes are one schema to PostgreSQL, so
    the tables of two destinations there would be one: the second connection is refused with
    DESTINATION_PLACE_TAKEN, naming the table as PostgreSQL sees it."""
    first, second = "é" * 31 + "ab", "é" * 31 + "ac"  # 64 bytes each; PostgreSQL keeps 63
    assert as_postgres_sees(first) == as_postgres_sees(second)
    space.define(FREE, "trait('plan') = 'free'")
    dsn = "host=127.0.0.1 port=9 dbname=nowhere"  # never reached: both destinations are disabled
    _destination(space, "one", dsn, enabled=False, schema=first)
    _destination(space, "two", dsn, enabled=False, schema=second)
    connect(space, "one", FREE)
    with pytest.raises(grpc.RpcError) as caught:
        connect(space, "two", FREE)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "DESTINATION_PLACE_TAKEN"
    assert f"{as_postgres_sees(first)}.{postgres_name(f'users_{FREE}')}" in (caught.value.details() or "")


def test_a_trait_name_with_a_nul_is_refused(space: Space) -> None:
    """No PostgreSQL name holds a NUL character: such an `include_traits` is INVALID_ARGUMENT
    naming the field, rather than a destination whose every batch fails."""
    with pytest.raises(grpc.RpcError) as caught:
        _destination(space, "warehouse", "host=127.0.0.1 port=9 dbname=nowhere", include_traits=["plan", "a\0b"])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "`postgres.include_traits[1]` must not contain a NUL character"
