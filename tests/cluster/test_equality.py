"""The cluster's results equal one node's: the same random streams sent to both, compared after every tick."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from audiences_server.cluster.entries import partition_of
from audiences_server.cluster.log import JetStreamLog, LocalLog, Log
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import Cluster, SingleNode, Stored
from tests.cluster.streams import T0, Stream


def _same(cluster: Stored, single: Stored, at: int) -> None:
    assert cluster.profiles == single.profiles, f"profiles differ at {at}"
    assert cluster.events == single.events, f"events differ at {at}"
    assert cluster.traits == single.traits, f"traits differ at {at}"
    assert cluster.values == single.values, f"values differ at {at}"
    assert dict(cluster.changes) == dict(single.changes), f"change records differ at {at}"


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int = 8) -> int:
    single = SingleNode(tmp_path, T0)
    cluster = Cluster(tmp_path, connect, shards=3, start_ms=T0)
    crossing = 0
    try:
        for kind, value in Stream(seed).steps(ticks, calls_per_tick=30):
            if kind == "define":
                single.define(value)
                cluster.define(value)
            elif kind == "calls":
                single.send(value)
                cluster.send(value)
            else:
                single.tick(value)
                cluster.tick(value)
                _same(cluster.stored(), single.stored(), value)
        pairs = cluster.identity_engine.readers.get().execute("SELECT survivor_id, merged_id FROM merges")
        crossing = sum(partition_of(s, 3) != partition_of(m, 3) for s, m in pairs)
    finally:
        cluster.close()
        single.close()
    return crossing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_log_cluster_equals_one_node(tmp_path: Path, seed: int) -> None:
    """Over the in-process log, one identity stage and three shards store the same profiles,
    events and traits as one node, and hold the same values and per-profile change records
    after every tick, through merges that cross shards, links and unlinks, a definition created
    mid-stream and clock moves."""
    assert _run(tmp_path, _local, seed) > 0  # the stream merged profiles across shards


def test_jetstream_cluster_equals_one_node(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream on 127.0.0.1."""
    assert _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=4) > 0


async def _local() -> Log:
    return LocalLog()
