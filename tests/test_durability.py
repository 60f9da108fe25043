"""Acknowledged calls survive a kill -9 of the server and a graceful shutdown mid-traffic."""

from __future__ import annotations

import json
import signal
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


def test_sigusr1_dumps_every_thread_and_changes_nothing(tmp_path: Path) -> None:
    """`kill -USR1` writes each thread's stack to the log; the server goes on serving and stops cleanly."""
    server = ServerProcess(tmp_path / "audiences.db")
    try:
        server.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while "writer.py" not in server.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.log_path.read_text()
        assert "store/writer.py" in log  # the writer thread, waiting for work
        assert "audiences_server/server.py" in log  # the main thread, waiting for a signal
        stub = ingest_pb2_grpc.IngestServiceStub(grpc.insecure_channel(server.address))
        body = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "m1"}]}).encode()
        reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=bearer(server.tokens["write"]))
        assert reply.accepted_count == 1
    finally:
        assert server.stop() == 0


def test_a_server_that_does_not_stop_is_reported_and_killed(tmp_path: Path) -> None:
    """The test helper does not hang on a stuck server: after its timeout it kills it and says so."""
    server = ServerProcess(tmp_path / "audiences.db")
    server.proc.send_signal(signal.SIGSTOP)  # frozen: it cannot act on SIGTERM
    with pytest.raises(RuntimeError, match="did not exit within 1 s"):
        server.stop(timeout_s=1)
    assert server.proc.poll() is not None
