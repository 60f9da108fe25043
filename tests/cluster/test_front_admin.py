"""A cluster driven through a front server's gRPC API: definitions created, updated, disabled and
deleted, and clock moves, reach every shard, and the cluster still equals one node."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from audiences.v1 import admin_pb2, ingest_pb2
from google.protobuf import field_mask_pb2

from audiences_server.api.computations import COLLECTION_ENUM, spec_of, timestamp
from audiences_server.cluster.control import make_front
from audiences_server.cluster.entries import decode
from audiences_server.cluster.log import CALLS, JetStreamLog, LocalLog, Log
from audiences_server.engine.computations import Spec
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, Cluster, SingleNode
from tests.cluster.streams import T0, Stream
from tests.cluster.test_equality import _same
from tests.conftest import Running, error_reason, start


def _message(spec: Spec) -> admin_pb2.Audience | admin_pb2.ComputedTrait:
    kind = admin_pb2.Audience if spec.kind == "audience" else admin_pb2.ComputedTrait
    return kind(key=spec.key, collection=COLLECTION_ENUM[spec.collection], definition=spec.definition)


class FrontDriven:
    """A cluster (identity stage and `shards` shards) whose only way in is a front server."""

    def __init__(self, tmp: Path, connect: Callable[[], Awaitable[Log]], shards: int = 3) -> None:
        self.cluster = Cluster(tmp, connect, shards=shards, start_ms=T0)
        self.front: Running = start(tmp / "front.db", manual_clock=True, clock_start=T0)
        self.control = make_front(self.front.server.engine, self.cluster.log, self.cluster.loop)

    def send(self, calls: Sequence[dict[str, Any]]) -> None:
        reply = self.front.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": calls}).encode()),
                                            metadata=self.front.auth("write"))
        assert reply.rejected_count == 0, reply

    def define(self, spec: Spec) -> Spec:
        """Creates the definition through the front; returns it as the API took it (options included)."""
        message = _message(spec)
        if spec.kind == "audience":
            self.front.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=message),
                                            metadata=self.front.auth("admin"))
        else:
            self.front.admin.CreateComputedTrait(admin_pb2.CreateComputedTraitRequest(computed_trait=message),
                                                 metadata=self.front.auth("admin"))
        return spec_of(spec.kind, message)

    def update(self, spec: Spec, paths: list[str], enabled: bool = True) -> None:
        message = _message(spec)
        message.enabled = enabled
        mask = field_mask_pb2.FieldMask(paths=paths)
        if spec.kind == "audience":
            self.front.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=message, update_mask=mask),
                                            metadata=self.front.auth("admin"))
        else:
            self.front.admin.UpdateComputedTrait(
                admin_pb2.UpdateComputedTraitRequest(computed_trait=message, update_mask=mask),
                metadata=self.front.auth("admin"))

    def delete(self, spec: Spec) -> None:
        collection = COLLECTION_ENUM[spec.collection]
        if spec.kind == "audience":
            self.front.admin.DeleteAudience(admin_pb2.DeleteAudienceRequest(key=spec.key, collection=collection),
                                            metadata=self.front.auth("admin"))
        else:
            self.front.admin.DeleteComputedTrait(
                admin_pb2.DeleteComputedTraitRequest(key=spec.key, collection=collection),
                metadata=self.front.auth("admin"))

    def tick(self, at: int, timeout_s: float = 60) -> None:
        """SetClock through the front; returns once every shard ran the tick its clock entry made."""
        self.front.admin.SetClock(admin_pb2.SetClockRequest(clock_time=timestamp(at)),
                                  metadata=self.front.auth("admin"))
        number = self.control.last
        deadline = time.monotonic() + timeout_s
        while any(shard.tick < number for shard in self.cluster.shards):
            assert time.monotonic() < deadline, "the shards did not reach the tick"
            time.sleep(0.01)

    def shard_keys(self) -> list[list[tuple[str, int]]]:
        """Each shard's definitions: key and enabled."""
        return [list(shard.engine.readers.get().execute("SELECT key, enabled FROM computations ORDER BY key"))
                for shard in self.cluster.shards]

    def close(self) -> None:
        self.front.channel.close()
        self.front.server.stop(grace=1)
        self.cluster.close()


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int = 8) -> None:
    """The equality stream through the front, with an update, a disable, an enable and a delete
    after some ticks, each applied to one node alike."""
    single = SingleNode(tmp_path, T0)
    driven = FrontDriven(tmp_path, connect)
    specs: dict[str, Spec] = {}
    edits = {
        2: ("update", Spec("audience", "users", "pro", definition="trait('plan') = 'free'"), ["definition"], True),
        3: ("update", Spec("audience", "users", "buyers",
                           definition="event('Order Completed').within(1 days).count() >= 2"), ["enabled"], False),
        4: ("delete", Spec("computed_trait", "users", "spent_week", definition=""), [], True),
        5: ("update", Spec("audience", "users", "buyers",
                           definition="event('Order Completed').within(1 days).count() >= 2"), ["enabled"], True),
    }
    ticked = 0
    try:
        for kind, value in Stream(seed).steps(ticks, calls_per_tick=30):
            if kind == "define":
                spec = driven.define(value)
                specs[spec.key] = spec
                single.define(spec)
            elif kind == "calls":
                single.send(value)
                driven.send(value)
            else:
                single.tick(value)
                driven.tick(value)
                _same(driven.cluster.stored(), single.stored(), value)
                ticked += 1
                if ticked in edits:
                    what, spec, paths, enabled = edits[ticked]
                    if what == "delete":
                        driven.delete(spec)
                        single.engine.computations.delete(SPACE, spec.kind, spec.collection, spec.key)
                        del specs[spec.key]
                    else:
                        driven.update(spec, paths, enabled)
                        changes = {"definition": spec.definition} if paths == ["definition"] else {"enabled": enabled}
                        single.engine.computations.update(SPACE, spec.kind, spec.collection, spec.key, changes)
        front = driven.front.query("SELECT key, enabled, definition FROM computations ORDER BY key")
        assert [key for key, _, _ in front] == sorted(specs)
        assert ("pro", 1, "trait('plan') = 'free'") in front
        for keys in driven.shard_keys():
            assert keys == [(key, enabled) for key, enabled, _ in front]
        assert "spent_week" not in specs
    finally:
        driven.close()
        single.close()


def test_definitions_and_clock_through_a_front_reach_every_shard(tmp_path: Path) -> None:
    """Over the in-process log: every definition created through the front's CreateAudience and
    CreateComputedTrait, an UpdateAudience of a definition, a disable and an enable, a
    DeleteComputedTrait, and every SetClock reach the three shards, whose values and change
    records equal one node's after every tick; the front's file keeps the definitions."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    _run(tmp_path, connect, seed=5)
    kinds = [decode(e.data)["t"] for e in log.entries(CALLS)]
    assert {"define", "update", "delete", "clock"} <= set(kinds)


def test_definitions_through_a_front_over_jetstream(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream."""
    _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=6, ticks=6)


def test_a_front_refuses_what_a_cluster_cannot_do_with_its_reason(tmp_path: Path) -> None:
    """A definition that does not check is refused with one node's reason; an account definition
    the cluster cannot evaluate, and a user definition that would read an account audience, with
    UNIMPLEMENTED and their reasons; RunTick, membership lists, previews and profile reads with
    CLUSTER_FRONT_UNIMPLEMENTED (HTTP 501). None of them reaches the log or the front's file."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    driven = FrontDriven(tmp_path, connect, shards=1)
    single = start(tmp_path / "single.db", manual_clock=True, clock_start=T0)
    admin, auth = driven.front.admin, driven.front.auth("admin")
    try:
        driven.define(Spec("audience", "accounts", "vip", definition="ANY trait('plan') = 'pro'"))
        refused = [
            (Spec("audience", "users", "bad", definition="event('x').count( >= 1"), None),
            (Spec("audience", "users", "in_vip", definition="trait('vip') = true"),
             "CLUSTER_USER_READS_ACCOUNT_UNIMPLEMENTED"),
            (Spec("audience", "accounts", "busy", definition="event('Signed Up').count() >= 1"),
             "CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED"),
            (Spec("computed_trait", "accounts", "orders", definition="event('Order Completed').count()"),
             "CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED"),
        ]
        for spec, reason in refused:
            with pytest.raises(grpc.RpcError) as at_front:
                driven.define(spec)
            if reason is None:  # as one node refuses it
                with pytest.raises(grpc.RpcError) as at_single:
                    single.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=_message(spec)),
                                                metadata=single.auth("admin"))
                assert at_front.value.code() == at_single.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert error_reason(at_front.value) == error_reason(at_single.value)
            else:
                assert at_front.value.code() == grpc.StatusCode.UNIMPLEMENTED, spec.key
                assert error_reason(at_front.value) == reason, spec.key
        # An update into what a cluster cannot evaluate is refused too, and the definition stays.
        with pytest.raises(grpc.RpcError) as updated:
            driven.update(Spec("audience", "accounts", "vip", definition="event('Signed Up').count() >= 1"),
                          ["definition"])
        assert error_reason(updated.value) == "CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED"
        kept = admin.GetAudience(admin_pb2.GetAudienceRequest(key="vip", collection=COLLECTION_ENUM["accounts"]),
                                 metadata=auth)
        assert kept.audience.definition == "ANY trait('plan') = 'pro'"
        for call in (lambda: admin.RunTick(admin_pb2.RunTickRequest(), metadata=auth),
                     lambda: admin.ListAudienceMembers(admin_pb2.ListAudienceMembersRequest(
                         key="vip", collection=COLLECTION_ENUM["accounts"]), metadata=auth),
                     lambda: admin.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
                         definition="trait('plan') = 'pro'", kind=1, collection=1), metadata=auth),
                     lambda: admin.GetIdentityRules(admin_pb2.GetIdentityRulesRequest(), metadata=auth)):
            with pytest.raises(grpc.RpcError) as unbuilt:
                call()
            assert unbuilt.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert error_reason(unbuilt.value) == "CLUSTER_FRONT_UNIMPLEMENTED"
        http = httpx.get(f"{driven.front.http_url}/v1/spaces/default/collections/users/profiles/user_id:u1/traits",
                         auth=(driven.front.tokens["read"], ""))
        assert http.status_code == 501, http.text
        entries = [decode(e.data) for e in log.entries(CALLS)]
        assert [(e["t"], e["spec"]["key"]) for e in entries] == [("define", "vip")]
        assert [key for (key,) in driven.front.query("SELECT key FROM computations")] == ["vip"]
    finally:
        single.channel.close()
        single.server.stop(grace=1)
        driven.close()


class _Unreachable(LocalLog):
    async def append(self, subject: str, data: bytes, msg_id: str | None = None) -> int:
        raise ConnectionError("no log")


def test_a_definition_the_log_did_not_store_is_not_kept(tmp_path: Path) -> None:
    """When the log does not acknowledge, CreateAudience answers UNAVAILABLE (LOG_UNAVAILABLE) and
    the front's file does not keep the definition, so a retry creates it."""

    async def connect() -> Log:
        return _Unreachable()

    driven = FrontDriven(tmp_path, connect, shards=1)
    try:
        with pytest.raises(grpc.RpcError) as failed:
            driven.define(Spec("audience", "users", "pro", definition="trait('plan') = 'pro'"))
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(failed.value) == "LOG_UNAVAILABLE"
        assert driven.front.query("SELECT key FROM computations") == []
    finally:
        driven.close()
