"""The PostgreSQL destination against a real PostgreSQL server: the table follows the audience
(first sync, then each change), survives a kill -9 of either server, and replays leave it as it was."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc
from google.protobuf import field_mask_pb2
from psycopg import conninfo

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Context, Outcome
from audiences_server.store.sync import Delivery
from audiences_server.testing import ServerProcess
from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import Space, new_space
from tests.sync.conftest import FAST, admin, connect, ms, ref, wait_for
from tests.sync.pg import PostgresServer

PATIENT = sync_pb2.DeliveryPolicy(max_attempts=100, initial_backoff=ms(50), max_backoff=ms(300),
                                  request_timeout=ms(2000))


def _destination(space: Space, key: str, postgres: PostgresServer, **config: Any) -> sync_pb2.Destination:
    message = sync_pb2.Destination(key=key, postgres=sync_pb2.PostgresConfig(dsn=postgres.dsn, **config),
                                   delivery_policy=FAST)
    return space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                                metadata=admin(space)).destination


def _rows(postgres: PostgresServer, table: str, columns: str = "user_id") -> set[tuple[Any, ...]]:
    exists = postgres.query("SELECT to_regclass(%s)", (table,))[0][0]
    return set(postgres.query(f'SELECT {columns} FROM {table}')) if exists else set()


def test_the_table_follows_the_audience(space: Space, postgres: PostgresServer) -> None:
    """The first sync writes every member with its identifiers and chosen traits; then an entry
    adds a row and an exit deletes one; the connection string is never read back."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "email": "u1@x.io", "seats": 3}},
               {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}},
               {"type": "identify", "userId": "u3", "traits": {"plan": "free"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    created = _destination(space, "warehouse", postgres, table_prefix=f"s{space.space_id}_",
                           include_traits=["seats", "plan"])
    assert (created.postgres.dsn, created.postgres.dsn_set) == ("", True)
    connect(space, "warehouse", "pro")
    table = f"s{space.space_id}_users_pro"
    wait_for(lambda: len(_rows(postgres, table)) == 2, what="the first sync")
    assert _rows(postgres, table, "user_id, email, seats, plan") == {("u1", "u1@x.io", 3, "pro"),
                                                                     ("u2", None, None, "pro")}
    space.send({"type": "identify", "userId": "u3", "traits": {"plan": "pro"}},
               {"type": "identify", "userId": "u1", "traits": {"plan": "free"}})
    space.tick()
    wait_for(lambda: _rows(postgres, table) == {("u2",), ("u3",)}, what="the entry and the exit")
    profile_ids = {r[0] for r in postgres.query(f"SELECT profile_id FROM {table}")}
    assert all(p.startswith("prf_") for p in profile_ids)


def test_a_computed_trait_keeps_its_value(space: Space, postgres: PostgresServer) -> None:
    """A computed trait's table has a row per profile with a value, in a column named after it."""
    space.define("orders", "event('Order').count()", kind="computed_trait")
    space.send({"type": "track", "userId": "u1", "event": "Order"})
    space.tick()
    _destination(space, "warehouse", postgres, table_prefix=f"s{space.space_id}_")
    connect(space, "warehouse", "orders", kind="computed_trait")
    table = f"s{space.space_id}_users_orders"
    wait_for(lambda: _rows(postgres, table, "user_id, orders") == {("u1", 1)}, what="the value")
    space.send({"type": "track", "userId": "u1", "event": "Order"}, {"type": "track", "userId": "u2", "event": "Order"})
    space.tick()
    wait_for(lambda: _rows(postgres, table, "user_id, orders") == {("u1", 2), ("u2", 1)}, what="the new values")


def test_a_new_connection_starts_from_an_empty_table(space: Space, postgres: PostgresServer) -> None:
    """Connecting the audience again after a disconnect drops the rows the earlier connection
    left, so the table equals the audience once more."""
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in ("u1", "u2")))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, "warehouse", postgres, table_prefix=f"s{space.space_id}_")
    connect(space, "warehouse", "pro")
    table = f"s{space.space_id}_users_pro"
    wait_for(lambda: len(_rows(postgres, table)) == 2, what="the first sync")
    space.running.sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(
        destination_key="warehouse", computation=ref("pro")), metadata=admin(space))
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
               {"type": "identify", "userId": "u3", "traits": {"plan": "pro"}})
    space.tick()
    connect(space, "warehouse", "pro")
    wait_for(lambda: _rows(postgres, table) == {("u2",), ("u3",)}, what="the table started afresh")


class _Sinks:
    """Sinks of one postgres destination and connection (`pro`) built by hand, as the sync loop
    builds them, with the destination disabled so that the loop itself writes nothing."""

    def __init__(self, space: Space, postgres: PostgresServer) -> None:
        space.define("pro", "trait('plan') = 'pro'")
        space.send({"type": "identify", "userId": "u0", "traits": {"plan": "pro"}})
        space.tick()
        _destination(space, "warehouse", postgres, table_prefix=f"s{space.space_id}_")
        space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(destination=sync_pb2.Destination(
            key="warehouse", enabled=False), update_mask=field_mask_pb2.FieldMask(paths=["enabled"])),
            metadata=admin(space))
        connect(space, "warehouse", "pro")
        self.engine = space.running.server.engine
        self.row = self.engine.sync.destination(space.space_id, "warehouse")
        self.connection = self.engine.sync.connection(space.space_id, "warehouse", ("audience", "users", "pro")).row
        self.table = f"s{space.space_id}_users_pro"

    def build(self) -> Any:
        sink = registry.get("postgres").build(self.row, Context(self.engine.writer, self.engine.readers))
        assert sink is not None
        return sink

    def change(self, n: int, kind: str, user: str) -> Delivery:
        record = {"kind": "audience", "key": "pro", "computation_id": "aud_x", "collection": "users", "space": "s",
                  "change": kind, "at_ms": 1_000 * n, "profile": f"prf_{user}", "ids": [["user_id", user]],
                  "message_id": f"syn_{n}", "old": None, "new": kind != "exited"}
        return Delivery(n, self.connection.connection_id, n, f"syn_{n}", record, 0, None, 0)

    def write(self, sink: Any, batch: list[Delivery], outcomes: list[Outcome]) -> None:
        sink.write_batch(batch, {self.connection.connection_id: self.connection}, lambda _, o: outcomes.append(o))


def test_a_batch_written_twice_leaves_the_same_rows(space: Space, postgres: PostgresServer) -> None:
    """Upserts and deletes are idempotent: the batch in flight at a crash, written again after
    the restart, changes nothing."""
    sinks = _Sinks(space, postgres)
    sink = sinks.build()
    outcomes: list[Outcome] = []
    batches = [[sinks.change(1, "entered", "a"), sinks.change(2, "entered", "b")], [sinks.change(3, "exited", "a")]]
    try:
        for batch in batches:
            for _ in range(2):
                sinks.write(sink, batch, outcomes)
                assert _rows(postgres, sinks.table, "profile_id, user_id, message_id") == (
                    {("prf_a", "a", "syn_1"), ("prf_b", "b", "syn_2")} if batch is batches[0]
                    else {("prf_b", "b", "syn_2")})
    finally:
        sink.close()
    assert all(o.ok for o in outcomes)


def test_writers_preparing_one_table_at_once_keep_each_others_rows(space: Space, postgres: PostgresServer) -> None:
    """The shards of a cluster each write their own profiles into a connection's one table, and
    their first batches can arrive together: none may drop the table another has just filled, or
    fail racing it to create the table. Several sinks write their first batch at the same moment,
    into a table that is not there yet, round after round."""
    sinks = _Sinks(space, postgres)
    writers = 6
    for round_ in range(8):
        postgres.run(f"DROP TABLE IF EXISTS {sinks.table}")
        if postgres.query("SELECT to_regclass('audiences_connections')")[0][0]:
            postgres.run("DELETE FROM audiences_connections WHERE table_name = %s", (sinks.table,))
        built = [sinks.build() for _ in range(writers)]
        outcomes: list[Outcome] = []
        start = threading.Barrier(writers)

        def first_batch(i: int, sink: Any, start: threading.Barrier, outcomes: list[Outcome]) -> None:
            start.wait()
            sinks.write(sink, [sinks.change(i + 1, "entered", f"w{i}")], outcomes)

        threads = [threading.Thread(target=first_batch, args=(i, sink, start, outcomes))
                   for i, sink in enumerate(built)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        finally:
            for sink in built:
                sink.close()
        assert [o.error for o in outcomes if not o.ok] == [], round_
        assert _rows(postgres, sinks.table) == {(f"w{i}",) for i in range(writers)}, round_


def test_postgres_killed_mid_sync_then_restarted(space: Space, postgres: PostgresServer) -> None:
    """A kill -9 of PostgreSQL in the middle of a first sync fails the batch in flight, which is
    retried until the server is back; then the table equals the audience."""
    users = [f"k{i}" for i in range(1500)]
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in users))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    message = sync_pb2.Destination(key="warehouse", delivery_policy=PATIENT, postgres=sync_pb2.PostgresConfig(
        dsn=postgres.dsn, table_prefix=f"s{space.space_id}_", batch_size=20))
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                         metadata=admin(space))
    connect(space, "warehouse", "pro")
    table = f"s{space.space_id}_users_pro"
    wait_for(lambda: len(_rows(postgres, table)) >= 100, what="the sync under way")
    postgres.kill()
    postgres.start()
    wait_for(lambda: _rows(postgres, table) == {(u,) for u in users}, timeout=60, what="every member")


def test_kill_9_of_the_server_mid_sync(tmp_path: Path, postgres: PostgresServer) -> None:
    """A kill -9 of the audiences server in the middle of a first sync, then a restart: the
    table equals the audience (a batch written but not acknowledged is written again, to the
    same rows)."""
    server = ServerProcess(tmp_path / "audiences.db")
    channel = grpc.insecure_channel(server.address)
    meta, write = bearer(server.tokens["admin"]), bearer(server.tokens["write"])
    users = [f"m{i}" for i in range(3000)]
    try:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        for start in range(0, len(users), 1000):
            body = ('{"batch": [' + ",".join(f'{{"type": "identify", "userId": "{u}", "traits": {{"plan": "pro"}}}}'
                                             for u in users[start:start + 1000]) + "]}").encode()
            ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=write)
        admin_pb2_grpc.AudienceAdminServiceStub(channel).CreateAudience(admin_pb2.CreateAudienceRequest(
            audience=admin_pb2.Audience(key="pro", collection=1, definition="trait('plan') = 'pro'")), metadata=meta)
        sync = sync_pb2_grpc.SyncServiceStub(channel)
        sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="warehouse", delivery_policy=PATIENT, postgres=sync_pb2.PostgresConfig(
                dsn=postgres.dsn, table_prefix="killed_", batch_size=25))), metadata=meta)
        wait_for(lambda: admin_pb2_grpc.AudienceAdminServiceStub(channel).GetAudience(admin_pb2.GetAudienceRequest(
            collection=1, key="pro"), metadata=meta).audience.size == len(users), timeout=60, what="the audience")
        sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
            destination_key="warehouse", computation=ref("pro"))), metadata=meta)
        wait_for(lambda: len(_rows(postgres, "killed_users_pro")) >= 300, timeout=60, what="the sync under way")
    finally:
        channel.close()
        server.kill()
    assert len(_rows(postgres, "killed_users_pro")) < len(users)
    restarted = ServerProcess(tmp_path / "audiences.db")
    try:
        wait_for(lambda: _rows(postgres, "killed_users_pro") == {(u,) for u in users}, timeout=90,
                 what="every member after the restart")
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    ("config", "reason"),
    [(sync_pb2.PostgresConfig(), "DESTINATION_INVALID"),
     (sync_pb2.PostgresConfig(dsn="host=127.0.0.1 port=", batch_size=6000), "DESTINATION_INVALID")],
)
def test_bad_postgres_destinations_are_refused(space: Space, config: sync_pb2.PostgresConfig, reason: str) -> None:
    """No connection string, or a batch size over 5,000, is INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
            destination=sync_pb2.Destination(key="warehouse", postgres=config)), metadata=admin(space))
    assert error_reason(caught.value) == reason


def test_a_postgres_connection_takes_no_calls(space: Space, postgres: PostgresServer) -> None:
    """A PostgreSQL destination writes rows, not tracking calls: send_* options are refused."""
    space.define("pro", "trait('plan') = 'pro'")
    _destination(space, "warehouse", postgres)
    with pytest.raises(grpc.RpcError) as caught:
        connect(space, "warehouse", "pro", send_identify=True)
    assert error_reason(caught.value) == "CONNECTION_INVALID"


def test_two_destinations_never_keep_one_table(space: Space, postgres: PostgresServer) -> None:
    """A connection's table is named by its destination's database, schema and prefix and the
    audience's collection and key: a second destination's connection at the same place, from this
    space or another, or settings that would move one there, is FAILED_PRECONDITION (each
    connection would otherwise drop the other's rows). With a prefix of its own it keeps a table
    of its own, and both tables hold the members."""
    prefix = f"s{space.space_id}_"
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, "warehouse", postgres, table_prefix=prefix)
    connect(space, "warehouse", "pro")
    _destination(space, "copy", postgres, table_prefix=prefix)
    with pytest.raises(grpc.RpcError) as caught:
        connect(space, "copy", "pro")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "DESTINATION_PLACE_TAKEN"
    assert f"public.{prefix}users_pro" in (caught.value.details() or "")
    # The same database written another way, with another password, is the same place.
    other = space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="same_db", postgres=sync_pb2.PostgresConfig(dsn=conninfo.make_conninfo(postgres.dsn, password="other"),
                                                        table_prefix=prefix))),
        metadata=admin(space)).destination
    with pytest.raises(grpc.RpcError) as again:
        connect(space, other.key, "pro")
    assert error_reason(again.value) == "DESTINATION_PLACE_TAKEN"

    mask = field_mask_pb2.FieldMask(paths=["postgres.table_prefix"])
    space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="copy", postgres=sync_pb2.PostgresConfig(table_prefix=f"{prefix}c_")),
        update_mask=mask), metadata=admin(space))
    connect(space, "copy", "pro")
    wait_for(lambda: _rows(postgres, f"{prefix}users_pro") == {("u1",)} == _rows(postgres, f"{prefix}c_users_pro"),
             what="both tables")
    with pytest.raises(grpc.RpcError) as moved:
        space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
            destination=sync_pb2.Destination(key="copy", postgres=sync_pb2.PostgresConfig(table_prefix=prefix)),
            update_mask=mask), metadata=admin(space))
    assert error_reason(moved.value) == "DESTINATION_PLACE_TAKEN"

    elsewhere = new_space(space.running)
    elsewhere.define("pro", "trait('plan') = 'pro'")
    _destination(elsewhere, "warehouse", postgres, table_prefix=prefix)
    with pytest.raises(grpc.RpcError) as across:
        connect(elsewhere, "warehouse", "pro")
    assert error_reason(across.value) == "DESTINATION_PLACE_TAKEN"
