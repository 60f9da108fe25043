"""A NATS server with JetStream for the cluster tests, on a free port and a temporary directory.

Tests that need it are skipped when `nats-server` is not on PATH (`make test-cluster` installs
it); the in-process log's tests always run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class NatsServer:
    """A running nats-server."""

    url: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_nats(store: Path, attempts: int = 3, config: str = "") -> NatsServer:
    """Starts nats-server with JetStream storing under `store` (and the lines of `config`, a
    configuration file's, if any); returns once it accepts connections.

    The port is free when chosen, but something else (a server of another test binding port 0)
    may take it before nats-server binds it: nats-server then exits at start, and is started
    again on another port (`attempts` times in all)."""
    binary = shutil.which("nats-server")
    if binary is None:
        pytest.skip("nats-server is not on PATH: `make test-cluster` installs it (Debian package nats-server)")
    options: list[str] = []
    if config:
        store.mkdir(parents=True, exist_ok=True)
        (store.parent / "nats.conf").write_text(config)
        options = ["-c", str(store.parent / "nats.conf")]
    for _ in range(attempts):
        port = free_port()
        process = subprocess.Popen([binary, *options, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                    greeting = probe.recv(4)  # a NATS server speaks first: `INFO {…}`
            except OSError:
                time.sleep(0.05)
                continue
            if greeting == b"INFO" and process.poll() is None:
                return NatsServer(f"nats://127.0.0.1:{port}", process)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            raise AssertionError("nats-server did not accept connections within 15 s")
    raise AssertionError(f"nats-server exited at start {attempts} times")


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream, its store in the test's temporary directory."""
    server = start_nats(tmp_path / "nats")
    yield server
    server.process.terminate()
    server.process.wait(10)
