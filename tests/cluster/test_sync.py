"""Destinations on a cluster: created and connected through a front server, each shard delivers
its own profiles' changes, and a receiver gets, per profile, the changes one node sends."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, sync_pb2
from google.protobuf import field_mask_pb2

from audiences_server.cluster.control import SyncControl
from audiences_server.cluster.entries import decode, partition_of
from audiences_server.cluster.log import CALLS, JetStreamLog, LocalLog, Log
from audiences_server.engine.computations import Spec
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, SingleNode
from tests.cluster.streams import LATE, T0, Stream
from tests.cluster.test_front_admin import FrontDriven, flaky_front, until
from tests.conftest import error_reason
from tests.sync.conftest import SECRET, Receiver, ms, ref, wait_for
from tests.sync.pg import PostgresServer

CONNECTED = [("audience", "pro"), ("audience", "buyers"), ("computed_trait", "spent_week"),
             ("audience", LATE.key)]
OPTIONS = {"send_identify": True, "send_track": True}


POLICY = {"max_attempts": 8, "initial_backoff_ms": 20, "max_backoff_ms": 200, "request_timeout_ms": 5000}
# Each destination as the front's API takes it and as one node's `Sync.create_destination` does.
DESTINATIONS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "hook": ("webhook", lambda url: {"url": url, "signing_secret": SECRET, "payload_style": "event"}),
    "batches": ("webhook", lambda url: {"url": url, "payload_style": "list", "batch_size": 7,
                                        "batch_interval_ms": 50}),
    "segment": ("segment", lambda url: {"base_url": url, "write_key": "wk", "batch_size": 5,
                                        "batch_interval_ms": 50}),
}


def _destination(key: str, url: str) -> sync_pb2.Destination:
    kind, config = DESTINATIONS[key]
    fields = config(url)
    if "payload_style" in fields:
        fields["payload_style"] = sync_pb2.WebhookPayloadStyle.Value(f"WEBHOOK_PAYLOAD_STYLE_{fields['payload_style']}"
                                                                     .upper())
    if "batch_interval_ms" in fields:
        fields["batch_interval"] = ms(fields.pop("batch_interval_ms"))
    message = sync_pb2.WebhookConfig(**fields) if kind == "webhook" else sync_pb2.SegmentConfig(**fields)
    policy = sync_pb2.DeliveryPolicy(max_attempts=8, initial_backoff=ms(20), max_backoff=ms(200),
                                     request_timeout=ms(5000))
    return sync_pb2.Destination(key=key, delivery_policy=policy, **{kind: message})


def _webhook(url: str) -> sync_pb2.Destination:
    return _destination("hook", url)


def _connection(kind: str, key: str, collection: str = "users", destination: str = "hook", **options: Any
                ) -> sync_pb2.Connection:
    return sync_pb2.Connection(destination_key=destination, computation=ref(key, kind, collection), **options)


def _phases(engines: list[Any], kind: str, key: str, count: int) -> list[str]:
    phases = []
    for engine in engines:
        views = engine.sync.connections(SPACE, "", (kind, "users", key))
        phases += [v.row.phase for v in views] if len(views) == count else ["missing"]
    return phases


def _live(engines: list[Any], kind: str, key: str, count: int) -> None:
    wait_for(lambda: all(p == "LIVE" for p in _phases(engines, kind, key, count)), timeout=30,
             what=f"{key} connected and LIVE on every file")


def _drive(driven: FrontDriven, single: SingleNode, steps: Iterator[tuple[str, Any]],
           destinations: dict[str, dict[str, Any]]) -> None:
    """Sends a stream to one node and through the front; each definition of CONNECTED is
    connected to every destination (key: the connection's options) on both, while it has no
    members yet, and LIVE everywhere before anything more happens, so that every change is sent
    as a change (a first sync's snapshot would depend on when it ran)."""
    shards = [shard.engine for shard in driven.cluster.shards]
    admin = driven.front.auth("admin")
    for kind, value in steps:
        if kind == "define":
            spec = driven.define(value)
            single.define(spec)
            if (spec.kind, spec.key) in CONNECTED:
                for key, options in destinations.items():
                    driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(
                        connection=_connection(spec.kind, spec.key, destination=key, **options)), metadata=admin)
                    single.engine.sync.connect(SPACE, key, (spec.kind, "users", spec.key), options)
                _live([*shards, single.engine], spec.kind, spec.key, len(destinations))
        elif kind == "calls":
            single.send(value)
            driven.send(value)
        else:
            single.tick(value)
            driven.tick(value)
            _queued([single.engine, *shards])


def _queued(engines: list[Any]) -> None:
    """Waits until every connection of every file has queued every change record of its
    definition written so far (identifiers are captured when a change is queued: a later merge
    would take them away). A connection whose definition has no newer record keeps its cursor."""

    def done() -> bool:
        for engine in engines:
            conn = engine.readers.get()
            behind = conn.execute(
                "SELECT count(*) FROM connections AS c WHERE EXISTS (SELECT 1 FROM changes"
                " WHERE changes.computation_id = c.computation_id AND changes.change_id > c.cursor)").fetchone()[0]
            if behind:
                return False
        return True

    wait_for(done, timeout=30, what="every change record queued")


def _profile_ids(engine: Any) -> dict[str, int]:
    return dict(engine.readers.get().execute("SELECT public_id, profile_id FROM profiles"))


def _per_profile(receiver: Receiver, ids: dict[str, int]) -> dict[tuple[Any, str], list[tuple[Any, ...]]]:
    """Every call received, grouped by the profile it names and the connection (order is kept per
    profile and connection, on one node too), in arrival order; message ids left out (they are
    made from each file's own row ids), and a profile named by its `prf_` id (a profile without
    identifiers) named by its number, the same on one node and on the cluster."""
    found: dict[tuple[Any, str], list[tuple[Any, ...]]] = defaultdict(list)
    for call in receiver.calls():
        who = call.get("userId") or call.get("anonymousId")
        who = ids.get(who, who)
        key = call["context"]["personas"]["computation_key"]
        found[(who, key)].append((call["type"], call.get("event"), call["timestamp"],
                           json.dumps(call.get("traits"), sort_keys=True),
                           json.dumps(call.get("properties"), sort_keys=True),
                           json.dumps(call["context"].get("externalIds"), sort_keys=True)))
    return dict(found)


def _settled(receivers: list[Receiver], single: SingleNode, shards: list[Any]) -> None:
    """Waits until nothing is queued on any file and the receivers stop growing."""

    def quiet() -> bool:
        for engine in [single.engine, *shards]:
            if engine.readers.get().execute("SELECT count(*) FROM deliveries").fetchone()[0]:
                return False
        return True

    wait_for(quiet, timeout=60, what="every delivery sent")
    seen = -1
    while seen != sum(len(r.calls()) for r in receivers):
        seen = sum(len(r.calls()) for r in receivers)
        time.sleep(0.3)


def _edits(driven: FrontDriven, shards: list[Any]) -> None:
    """An UpdateConnection, an UpdateDestination, a DisconnectDestination and a forced
    DeleteDestination through the front reach every shard."""
    admin = driven.front.auth("admin")
    driven.front.sync.UpdateConnection(sync_pb2.UpdateConnectionRequest(
        connection=_connection("audience", "pro", send_track=False), update_mask=field_mask_pb2.FieldMask(
            paths=["send_track"])), metadata=admin)
    driven.front.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="hook", name="renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=admin)
    driven.front.sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(
        destination_key="hook", computation=ref("buyers")), metadata=admin)
    wait_for(lambda: all(e.sync.destination(SPACE, "hook").name == "renamed" for e in shards), timeout=30,
             what="the update on every shard")
    wait_for(lambda: not any(e.sync.connections(SPACE, "hook", ("audience", "users", "buyers")) for e in shards),
             timeout=30, what="the disconnection on every shard")
    for engine in shards:
        views = {v.computation.key: v for v in engine.sync.connections(SPACE, "hook", None)}
        assert "buyers" not in views
        assert views["pro"].row.options["send_track"] is False
        assert views["pro"].row.options["send_identify"]
    assert driven.front.sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"),
                                            metadata=admin).destination.name == "renamed"
    driven.front.sync.DeleteDestination(sync_pb2.DeleteDestinationRequest(key="hook", force=True), metadata=admin)
    wait_for(lambda: not any(d.key == "hook" for e in shards for d in e.sync.destinations(SPACE, "", 10)), timeout=30,
             what="the destination deleted on every shard")


def _same_deliveries(ones: dict[str, Receiver], manys: dict[str, Receiver], single: SingleNode,
                     driven: FrontDriven) -> None:
    """Each destination's receiver got from the cluster what one node sent, per profile and connection."""
    for key in DESTINATIONS:
        expected = _per_profile(ones[key], _profile_ids(single.engine))
        got = _per_profile(manys[key], _profile_ids(driven.cluster.identity_engine))
        assert sum(map(len, expected.values())) > 20, key  # entries and exits of several kinds were sent
        assert {call[0] for calls in expected.values() for call in calls} == {"identify", "track"}
        assert got == expected, key
        sent = [call["messageId"] for call in manys[key].calls()]
        assert len(set(sent)) == len(sent), key  # shards number their changes alike, their ids differ
    assert all("batch" in r.body for r in manys["batches"].accepted)
    assert any(len(r.body["batch"]) > 1 for r in manys["segment"].accepted)
    assert all(r.path == "/batch" for r in manys["segment"].accepted)


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int) -> FrontDriven:
    """Per destination, a receiver for one node's (`one`) and one for the cluster's (`many`)."""
    ones = {key: Receiver() for key in DESTINATIONS}
    manys = {key: Receiver() for key in DESTINATIONS}
    for receiver in (*ones.values(), *manys.values()):
        receiver.start()
    single = SingleNode(tmp_path, T0)
    single.engine.sync.start()
    driven = FrontDriven(tmp_path, connect)
    shards = [shard.engine for shard in driven.cluster.shards]
    admin = driven.front.auth("admin")
    try:
        for key, (what, config) in DESTINATIONS.items():
            driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
                destination=_destination(key, manys[key].url)), metadata=admin)
            single.engine.sync.create_destination(SPACE, key, "", True, what, config(ones[key].url), POLICY)
        _drive(driven, single, Stream(seed).steps(ticks, calls_per_tick=30), dict.fromkeys(DESTINATIONS, OPTIONS))
        _settled([*ones.values(), *manys.values()], single, shards)
        _same_deliveries(ones, manys, single, driven)
        # Merges crossed shards, so the retiring shard's exits and the survivor's changes were both sent.
        pairs = driven.cluster.identity_engine.readers.get().execute("SELECT survivor_id, merged_id FROM merges")
        assert any(partition_of(s, 3) != partition_of(m, 3) for s, m in pairs)
        # Every shard delivered some of them: the deliveries are the union of the shards'.
        for engine in shards:
            views = engine.sync.connections(SPACE, "hook", None)
            assert sum(v.row.delivered_count for v in views) > 0
        # The front reports each connection's status summed over the shards: what one node reports.
        listed = driven.front.sync.ListConnections(sync_pb2.ListConnectionsRequest(destination_key="hook"),
                                                   metadata=admin).connections
        assert [(c.computation.key, c.phase) for c in listed] == sorted(
            (key, sync_pb2.CONNECTION_PHASE_LIVE) for _, key in CONNECTED)
        for connection in listed:
            one_node = single.engine.sync.connection(SPACE, "hook", ("audience" if connection.computation.kind == 1
                                                                     else "computed_trait", "users",
                                                                     connection.computation.key))
            assert connection.delivery.delivered_count == one_node.status["delivered"] > 0
            assert (connection.delivery.pending_count, connection.delivery.dead_letter_count) == (0, 0)
        _edits(driven, shards)
    finally:
        driven.close()
        single.close()
        for receiver in (*ones.values(), *manys.values()):
            receiver.stop()
    return driven


def test_a_webhook_on_a_cluster_receives_what_one_node_sends(tmp_path: Path) -> None:
    """Over the in-process log: a webhook destination and its connections made through the
    front reach every shard, and the receiver gets, profile by profile, the same changes in the
    same order as from one node given the same stream."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    _run(tmp_path, connect, seed=5, ticks=8)
    kinds = [decode(e.data) for e in log.entries(CALLS)]
    assert {k["op"] for k in kinds if k["t"] == "sync"} == {"create_destination", "connect", "update_connection",
                                                            "update_destination", "disconnect", "delete_destination"}


def test_a_webhook_on_a_cluster_over_jetstream(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream."""
    _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=6, ticks=6)


def test_a_front_refuses_destinations_a_cluster_cannot_serve(tmp_path: Path) -> None:
    """A CSV destination is refused with its reason and reaches no shard; so are an account
    computation's per-user calls and a CSV export."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    driven = FrontDriven(tmp_path, connect)
    admin = driven.front.auth("admin")
    try:
        with pytest.raises(grpc.RpcError) as refused:
            driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
                key="csv", csv=sync_pb2.CsvConfig(directory=str(tmp_path)))), metadata=admin)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error_reason(refused.value) == "CLUSTER_SYNC_KIND_UNIMPLEMENTED"
        listed = driven.front.sync.ListDestinations(sync_pb2.ListDestinationsRequest(), metadata=admin)
        assert list(listed.destinations) == []  # not kept in the front's file
        driven.define(Spec("audience", "accounts", "pro_accounts", definition="ANY trait('plan') = 'pro'"))
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
            destination=_webhook("http://127.0.0.1:9")), metadata=admin)
        with pytest.raises(grpc.RpcError) as refused:
            driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=_connection(
                "audience", "pro_accounts", "accounts", send_identify=True, send_group=True)), metadata=admin)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error_reason(refused.value) == "CLUSTER_SYNC_ACCOUNT_USERS_UNIMPLEMENTED"
        # Group calls only are the account's own: accepted, and the connection reaches every shard.
        driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=_connection(
            "audience", "pro_accounts", "accounts", send_group=True)), metadata=admin)
        with pytest.raises(grpc.RpcError) as refused:
            driven.front.sync.UpdateConnection(sync_pb2.UpdateConnectionRequest(
                connection=_connection("audience", "pro_accounts", "accounts", send_track=True),
                update_mask=field_mask_pb2.FieldMask(paths=["send_track"])), metadata=admin)
        assert error_reason(refused.value) == "CLUSTER_SYNC_ACCOUNT_USERS_UNIMPLEMENTED"
        ops = [decode(e.data)["op"] for e in log.entries(CALLS) if decode(e.data)["t"] == "sync"]
        assert ops == ["create_destination", "connect"]  # the refused ones never reached the log
        shards = [shard.engine for shard in driven.cluster.shards]
        wait_for(lambda: all(e.sync.connections(SPACE, "hook", None) for e in shards), timeout=30,
                 what="the account connection on every shard")
        export = driven.front.sync.ExportAudience(sync_pb2.ExportAudienceRequest(
            collection=common_pb2.COLLECTION_USERS, key="pro"), metadata=admin)
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(export))
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error_reason(refused.value) == "CLUSTER_FRONT_UNIMPLEMENTED"
    finally:
        driven.close()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="audiences-pg-"))
    server = PostgresServer(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _table(postgres: PostgresServer, table: str, ids: dict[str, int]) -> set[tuple[Any, ...]]:
    rows = postgres.query(f"SELECT profile_id, user_id, changed_at FROM {table}")
    return {(ids[profile], user, changed) for profile, user, changed in rows}


@pytest.mark.parametrize("retried", [False, True], ids=["given-up", "connected-again"])
def test_a_connection_stored_though_the_front_gave_up_converges(tmp_path: Path, retried: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The log stored a `connect` whose acknowledgement never came in time (NATS away): the front
    answered LOG_UNAVAILABLE and kept nothing, while the shards connected. Once the log answers
    again the front appends its view of the destination and the shards follow: the connection is
    gone from them, or, connected again meanwhile with other options, they hold the front's
    connection (its id, creation time and options)."""
    driven, flaky = flaky_front(tmp_path, monkeypatch)
    admin = driven.front.auth("admin")
    held = "SELECT connection_id, created_ms, options FROM connections"
    try:
        driven.define(Spec("audience", "users", "pro", definition="trait('plan') = 'pro'"))
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
            destination=_destination("segment", "http://127.0.0.1:9")), metadata=admin)
        flaky.away = True
        with pytest.raises(grpc.RpcError) as failed:
            driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(
                connection=_connection("audience", "pro", destination="segment", send_track=True)), metadata=admin)
        assert error_reason(failed.value) == "LOG_UNAVAILABLE"
        assert driven.front.query(held) == []
        shards = [shard.engine for shard in driven.cluster.shards]
        until(lambda: all(len(list(e.readers.get().execute(held))) == 1 for e in shards),
              "the shards did not apply the stored connect")
        control = driven.front.server.engine.sync.control
        assert isinstance(control, SyncControl)
        assert control.unsettled == {(SPACE, "segment")}
        flaky.away = False
        if retried:
            driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=_connection(
                "audience", "pro", destination="segment", send_identify=True)), metadata=admin)
        until(lambda: not control.unsettled, "the front did not settle the destination")
        assert "converge_destination" in [decode(e.data).get("op") for e in flaky.entries(CALLS)]
        front = driven.front.query(held)
        assert len(front) == (1 if retried else 0)
        until(lambda: all(list(e.readers.get().execute(held)) == front for e in shards),
              "the shards' connections did not become the front's")
        if retried:
            assert json.loads(front[0][2])["send_identify"] is True
    finally:
        driven.close()


def test_a_postgres_destination_on_a_cluster_keeps_one_nodes_table(tmp_path: Path, postgres: PostgresServer) -> None:
    """Every shard writes its own profiles' rows into the one table of a connection (the shards'
    copies of the connection are the same connection, so none starts the table afresh): after
    the stream, each connected audience's and computed trait's table equals one node's."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    single = SingleNode(tmp_path, T0)
    single.engine.sync.start()
    driven = FrontDriven(tmp_path, connect)
    shards = [shard.engine for shard in driven.cluster.shards]
    admin = driven.front.auth("admin")
    policy = sync_pb2.DeliveryPolicy(max_attempts=8, initial_backoff=ms(20), max_backoff=ms(200),
                                     request_timeout=ms(5000))
    try:
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="warehouse", postgres=sync_pb2.PostgresConfig(dsn=postgres.dsn, table_prefix="many_"),
            delivery_policy=policy)), metadata=admin)
        single.engine.sync.create_destination(SPACE, "warehouse", "", True, "postgres",
                                              {"dsn": postgres.dsn, "table_prefix": "one_"}, POLICY)
        _drive(driven, single, Stream(7).steps(6, calls_per_tick=30), {"warehouse": {}})
        _settled([], single, shards)
        one, many = _profile_ids(single.engine), _profile_ids(driven.cluster.identity_engine)
        for _, key in CONNECTED:
            expected = _table(postgres, f"one_users_{key}", one)
            assert expected, key
            assert _table(postgres, f"many_users_{key}", many) == expected, key
        rows = _table(postgres, "many_users_spent_week", many)
        assert len({partition_of(profile, 3) for profile, _, _ in rows}) > 1  # written by several shards
    finally:
        driven.close()
        single.close()
