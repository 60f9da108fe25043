"""Several partitions per `cluster shard` process, and a partition moved between processes by the
documented procedure, over NATS JetStream: still one node's results, and its profiles still read
through the read endpoints."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from audiences.v1 import profiles_pb2

from audiences_server.api.context import set_grant
from audiences_server.api.profiles import ProfilesServicer
from audiences_server.cluster.reads import ShardReads
from audiences_server.errors import NotFound
from audiences_server.store.spaces import Grant
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, ProcessCluster, SingleNode, _reader
from tests.cluster.streams import T0, Stream
from tests.cluster.test_equality import _same
from tests.cluster.test_front_admin import _ids, _plain, _request


@pytest.mark.timeout(360)  # processes restarted around each move: slow on a busy 2-core machine
def test_partitions_in_shard_processes_and_moved(tmp_path: Path, nats: NatsServer) -> None:
    """Six partitions in two `cluster shard --data-dir` processes, each partition with its own
    read endpoint; partitions are moved mid-stream (process stopped and restarted without it, its
    file copied by `cluster copy-partition`, the other process restarted with it): after every
    tick the files equal one node, and every profile reads through the endpoints as on one node."""
    single = SingleNode(tmp_path, T0)
    cluster = ProcessCluster(tmp_path, nats.url, shards=6, start_ms=T0, reads=True, processes=2)
    reads = ShardReads(cluster.read_addresses)
    moves = {2: (1, 0), 4: (4, 1)}
    try:
        ticks = 0
        for kind, value in Stream(seed=7).steps(6, calls_per_tick=30):
            if kind == "define":
                single.define(value)
                cluster.define(value)
            elif kind == "calls":
                single.send(value)
                cluster.send(value)
            else:
                if ticks in moves:
                    cluster.move(*moves[ticks])
                single.tick(value)
                cluster.tick(value)
                _same(cluster.stored(), single.stored(), value)
                ticks += 1
        assert cluster.path(1).parent.name == "shards-0"
        assert cluster.path(4).parent.name == "shards-1"
        assert not (tmp_path / "shards-1" / "partition-1.db").exists()
        ids: dict[str, str] = {}
        for p in range(6):
            with contextlib.closing(_reader(cluster.path(p))) as conn:
                ids |= _ids(conn)
        set_grant(Grant(SPACE, "default", "read"))
        read = 0
        for person in range(40):
            request = _request("ListTraits", "users", f"user_id:u{person}")
            try:
                expected = ProfilesServicer(single.engine).ListTraits(request, None)
            except NotFound:  # no such profile on one node either
                continue
            answer = reads.profile("ListTraits", request)
            assert isinstance(answer, profiles_pb2.ListTraitsResponse)
            assert _plain(answer, ids) == _plain(expected, _ids(single.engine.readers.get()))
            read += 1
        assert read > 5
    finally:
        reads.close()
        cluster.close()
        single.close()


def test_one_process_refuses_unclear_partitions(tmp_path: Path) -> None:
    """`cluster shard` takes --db for one partition only, --data-dir for several, and --listen
    once per partition or not at all."""
    me = [sys.executable, "-m", "audiences_server.cli", "cluster", "shard"]
    for wrong in (["--partition", "0", "--partition", "1", "--db", str(tmp_path / "a.db")],
                  ["--partition", "0", "--partition", "0", "--data-dir", str(tmp_path)],
                  ["--partition", "0", "--partition", "1", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:1"],
                  ["--partition", "0"]):
        done = subprocess.run([*me, *wrong], check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (wrong, done.stderr)
    assert not list(tmp_path.iterdir())
