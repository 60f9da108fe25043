"""The gRPC listener's connections are bounded as the HTTP listener's are: a connection that never
finishes its handshake is closed, and past the cap a new one is closed at once, so a flood of
silent connections cannot hold the process's file descriptors."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audiences_server import server as server_module
from tests.conftest import Running, start


@pytest.fixture
def bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """A server whose gRPC listener takes 4 connections, each given 0.5 s for its handshake."""
    monkeypatch.setattr(server_module, "GRPC_MAX_CONNECTIONS", 4)
    monkeypatch.setattr(server_module, "GRPC_HANDSHAKE_TIMEOUT_MS", 500)
    running = start(tmp_path / "audiences.db")
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def _silent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (whatever it sent first)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def _healthy(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_connection_that_never_finishes_its_handshake_is_closed(bounded: Running) -> None:
    """Connections that send nothing are closed once the handshake time has passed; the listener
    then answers a health check."""
    silent = [_silent(bounded.port) for _ in range(4)]
    try:
        assert all(_closed_within(sock, 10) for sock in silent)
        assert _healthy(bounded.port)
    finally:
        for sock in silent:
            sock.close()


def test_past_the_cap_a_new_connection_is_closed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cap taken by connections still within their handshake time, a new one is closed
    before that time has passed."""
    monkeypatch.setattr(server_module, "GRPC_MAX_CONNECTIONS", 4)
    monkeypatch.setattr(server_module, "GRPC_HANDSHAKE_TIMEOUT_MS", 30_000)
    running = start(tmp_path / "audiences.db")
    held = [_silent(running.port) for _ in range(4)]
    try:
        time.sleep(0.2)
        extra = _silent(running.port)
        try:
            assert _closed_within(extra, 5)
        finally:
            extra.close()
    finally:
        for sock in held:
            sock.close()
        running.channel.close()
        running.server.stop(grace=1)
