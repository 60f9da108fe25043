"""Acknowledged calls survive a kill -9 of the server and a graceful shutdown mid-traffic."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from audiences.v1 import ingest_pb2, ingest_pb2_grpc

from audiences_server.testing import ServerProcess
from tests.conftest import bearer


def _send_until_stopped(port: int, token: str, acked: list[str], stop: threading.Event) -> None:
    """Sends batches of 50 as fast as the server acknowledges them, recording acknowledged ids."""
    stub = ingest_pb2_grpc.IngestServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    n = 0
    while not stop.is_set():
        ids = [f"m{n + i}" for i in range(50)]
        n += 50
        body = json.dumps({"batch": [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": m}
                                     for i, m in enumerate(ids)]}).encode()
        try:
            reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=bearer(token), timeout=5)
        except grpc.RpcError:
            return
        assert reply.accepted_count == 50
        acked.extend(ids)


def _count_present(port: int, token: str, ids: list[str]) -> int:
    """Resends the ids: every one already stored comes back as a duplicate."""
    stub = ingest_pb2_grpc.IngestServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    present = 0
    for start in range(0, len(ids), 2000):
        chunk = ids[start:start + 2000]
        body = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": m}
                                     for m in chunk]}).encode()
        reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=bearer(token))
        present += reply.duplicate_count
    return present


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_acknowledged_calls_survive(tmp_path: Path, how: str) -> None:
    """Every call acknowledged before the server dies (kill -9) or shuts down (SIGTERM) is there after restart."""
    server = ServerProcess(tmp_path / "audiences.db")
    acked: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=_send_until_stopped, args=(server.port, server.tokens["write"], acked, stop))
    sender.start()
    deadline = time.monotonic() + 10
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    status = server.kill() if how == "kill -9" else server.stop()
    stop.set()
    sender.join(timeout=10)
    assert len(acked) >= 2000
    if how == "SIGTERM":
        assert status == 0
    restarted = ServerProcess(tmp_path / "audiences.db")
    try:
        assert _count_present(restarted.port, restarted.tokens["write"], acked) == len(acked)
    finally:
        restarted.stop()
