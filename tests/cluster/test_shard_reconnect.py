"""A front reaches a shard's read endpoint again soon after the shard is back, however long it
was down: its channels retry every second at most, not after gRPC's growing backoff."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from audiences.v1 import common_pb2, profiles_pb2

from audiences_server.cluster.reads import ShardReads, serve_shard_reads
from tests.cluster.conftest import free_port
from tests.cluster.harness import LoopThread, engine_at

T0 = 1_800_000_000_000


def _read(reads: ShardReads, timeout: float) -> grpc.StatusCode:
    """What the shard answers for a profile it does not hold (NOT_FOUND: it answered)."""
    request = profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(
        collection=common_pb2.COLLECTION_USERS, id="user_id:nobody"))
    try:
        reads._profiles[0].GetMetadata(request, timeout=timeout, wait_for_ready=True)
    except grpc.RpcError as failure:
        return failure.code()
    return grpc.StatusCode.OK


def test_a_shard_back_after_a_while_is_read_within_seconds(tmp_path: Path) -> None:
    engine = engine_at(tmp_path / "shard.db", T0)
    loop = LoopThread()
    address = f"127.0.0.1:{free_port()}"
    reads = ShardReads([address])
    try:
        server, pool, _ = loop.run(serve_shard_reads(engine, address))
        assert _read(reads, 10) == grpc.StatusCode.NOT_FOUND
        loop.run(server.stop(0))
        pool.shutdown()
        down_until = time.monotonic() + 12  # long enough for gRPC's default backoff to pass 10 s
        while time.monotonic() < down_until:
            assert _read(reads, 2) == grpc.StatusCode.DEADLINE_EXCEEDED
        server, pool, _ = loop.run(serve_shard_reads(engine, address))
        assert _read(reads, 3) == grpc.StatusCode.NOT_FOUND
        loop.run(server.stop(0))
        pool.shutdown()
    finally:
        reads.close()
        loop.close()
        engine.close()
