"""PostgreSQL writes: a reconnection starts from an empty table even when its first sync has
nothing to write, and a value PostgreSQL refuses parks only its own change, not its batch."""

from __future__ import annotations

import csv
import io
from typing import Any

from audiences.v1 import common_pb2, sync_pb2

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Context, Outcome
from audiences_server.store.sync import Delivery
from tests.evaluator.conftest import Space
from tests.sync.conftest import FAST, admin, connect, ref, wait_for
from tests.sync.pg import PostgresServer


def _destination(space: Space, postgres: PostgresServer, enabled: bool = True, **config: Any) -> None:
    settings = sync_pb2.PostgresConfig(dsn=postgres.dsn, table_prefix=f"s{space.space_id}_", **config)
    message = sync_pb2.Destination(key="warehouse", enabled=enabled, delivery_policy=FAST, postgres=settings)
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message), metadata=admin(space))


def _rows(postgres: PostgresServer, table: str, columns: str = "user_id") -> set[tuple[Any, ...]]:
    exists = postgres.query("SELECT to_regclass(%s)", (table,))[0][0]
    return set(postgres.query(f"SELECT {columns} FROM {table}")) if exists else set()


def _status(space: Space) -> Any:
    request = sync_pb2.GetConnectionRequest(destination_key="warehouse", computation=ref("pro"))
    return space.running.sync.GetConnection(request, metadata=admin(space)).connection


def test_a_reconnection_with_no_members_empties_the_table(space: Space, postgres: PostgresServer) -> None:
    """The audience is disconnected, every member leaves, and it is connected again: its first
    sync has nothing to write, and the table is emptied all the same (before, it kept the
    earlier connection's rows until some later change happened to be written)."""
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in ("u1", "u2")))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, postgres)
    connect(space, "warehouse", "pro")
    table = f"s{space.space_id}_users_pro"
    wait_for(lambda: _rows(postgres, table) == {("u1",), ("u2",)}, what="the first sync")
    space.running.sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(
        destination_key="warehouse", computation=ref("pro")), metadata=admin(space))
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "free"}} for u in ("u1", "u2")))
    space.tick()
    connect(space, "warehouse", "pro")
    wait_for(lambda: postgres.query(f"SELECT to_regclass('{table}')")[0][0] is not None and not _rows(postgres, table),
             what="the table emptied")
    assert _status(space).delivery.dead_letter_count == 0


def test_a_value_postgres_refuses_parks_only_its_change(space: Space, postgres: PostgresServer) -> None:
    """One profile's trait holds a NUL, which `jsonb` cannot: only that profile's change is
    parked, the nine others of its batch are written; redriving it parks it again, alone."""
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "free",
                                                                   "nick": "ok\u0000bad" if i == 3 else f"n{i}"}}
                 for i in range(10)))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, postgres, include_traits=["nick"])
    connect(space, "warehouse", "pro")
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(10)))
    space.tick()
    table = f"s{space.space_id}_users_pro"
    good = {(f"u{i}", f"n{i}") for i in range(10) if i != 3}
    wait_for(lambda: _rows(postgres, table, "user_id, nick") == good and _status(space).delivery.dead_letter_count,
             what="the nine rows and the one dead letter")
    status = _status(space).delivery
    assert (status.dead_letter_count, status.pending_count, status.retrying_count) == (1, 0, 0)
    assert status.last_error.startswith("postgres refused a value: ")
    parked = space.running.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(destination_key="warehouse"),
                                                metadata=admin(space)).dead_letters
    assert [d.profile_id for d in parked] == [_profile(space, "u3")]
    redriven = space.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="warehouse"),
                                                     metadata=admin(space))
    assert redriven.redriven_count == 1
    wait_for(lambda: _status(space).delivery.dead_letter_count == 1 and _status(space).delivery.retrying_count == 0
             and _status(space).delivery.pending_count == 0, what="parked again")
    assert _rows(postgres, table, "user_id, nick") == good


def _profile(space: Space, user_id: str) -> str:
    """A user's profile id, from the audience's export."""
    request = sync_pb2.ExportAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="pro",
                                             external_id_types=["user_id"])
    data = b"".join(c.csv_data for c in space.running.sync.ExportAudience(request, metadata=admin(space)))
    return next(r[0] for r in csv.reader(io.StringIO(data.decode(), newline="")) if r[1:] == [user_id])


def test_a_refused_batch_is_told_part_by_part(space: Space, postgres: PostgresServer) -> None:
    """The sink splits a refused batch in halves down to the refused change: every change is told
    once, the refused one as parked (not to be retried), the others as written, and the rows of
    the others are in the table."""
    space.define("pro", "trait('plan') = 'pro'")
    space.send({"type": "identify", "userId": "u0", "traits": {"plan": "pro"}})
    space.tick()
    _destination(space, postgres, enabled=False, external_id_types=["user_id"])  # the test's sink alone writes
    connect(space, "warehouse", "pro")
    engine = space.running.server.engine
    row = engine.sync.destination(space.space_id, "warehouse")
    connection = engine.sync.connection(space.space_id, "warehouse", ("audience", "users", "pro")).row
    sink = registry.get("postgres").build(row, Context(engine.writer, engine.readers))
    assert sink is not None

    def change(n: int) -> Delivery:
        user = "bad\u0000" if n == 5 else f"w{n}"  # a NUL no text column holds
        record = {"kind": "audience", "key": "pro", "computation_id": "aud_x", "collection": "users", "space": "s",
                  "change": "entered", "at_ms": 1_000 * n, "profile": f"prf_{n}", "ids": [["user_id", user]],
                  "message_id": f"syn_{n}", "old": None, "new": True}
        return Delivery(n, connection.connection_id, n, f"syn_{n}", record, 0, None, 0)

    told: list[tuple[list[int], Outcome]] = []
    try:
        sink.write_batch([change(n) for n in range(1, 12)], {connection.connection_id: connection},
                         lambda part, outcome: told.append(([d.delivery_id for d in part], outcome)))
    finally:
        sink.close()
    assert sorted(i for ids, _ in told for i in ids) == list(range(1, 12))
    refused = [(ids, o) for ids, o in told if not o.ok]
    assert [ids for ids, _ in refused] == [[5]]
    assert not refused[0][1].retry
    assert "postgres refused a value" in refused[0][1].error
    assert _rows(postgres, f"s{space.space_id}_users_pro") == {(f"w{n}",) for n in range(1, 12) if n != 5}
