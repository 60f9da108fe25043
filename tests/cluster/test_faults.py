"""kill -9 of a shard and of the identity stage mid-stream: after restart every acknowledged call is
stored once, and the change records, per profile, are those of one node (none lost, none twice,
none out of order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import NatsServer
from tests.cluster.harness import ProcessCluster, SingleNode
from tests.cluster.streams import T0, Stream
from tests.cluster.test_equality import _same


@pytest.mark.timeout(360)  # four processes start and restart: about 40 s on a busy 2-core machine
def test_kill_9_of_a_shard_and_of_the_identity_stage(tmp_path: Path, nats: NatsServer) -> None:
    """Calls keep coming while a shard, then the identity stage, is killed with SIGKILL and
    started again on its file; after each tick the shards' union equals one node fed the same
    stream: each acknowledged call stored exactly once, values and per-profile change records equal."""
    single = SingleNode(tmp_path, T0)
    cluster = ProcessCluster(tmp_path, nats.url, shards=3, start_ms=T0)
    kills = {1: "shard-1", 3: "identity", 5: "shard-2"}
    try:
        ticks = 0
        batches = 0
        for kind, value in Stream(seed=5).steps(7, calls_per_tick=30):
            if kind == "define":
                single.define(value)
                cluster.define(value)
            elif kind == "calls":
                single.send(value)
                cluster.send(value)
                batches += 1
                if ticks in kills and batches == 3:  # mid-stream: calls before and after the kill
                    cluster.kill(kills[ticks])
                if ticks in kills and batches == 5:
                    cluster.start(kills[ticks])
            else:
                single.tick(value)
                cluster.tick(value)
                _same(cluster.stored(), single.stored(), value)
                ticks += 1
                batches = 0
    finally:
        cluster.close()
        single.close()
