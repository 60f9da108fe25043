"""Helpers for tests and benchmarks that need a real server in a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class ServerProcess:
    """The real `audiences-server serve` command running in a child process on a free port."""

    def __init__(self, db: Path, *extra_args: str, timeout_s: float = 30) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "audiences_server.cli", "serve", "--db", str(db), "--listen", "127.0.0.1:0",
             "--log-format", "json", *extra_args],
            stderr=subprocess.PIPE, text=True,
        )
        self.port = self._wait_for_port(timeout_s)
        self.tokens: dict[str, str] = json.loads((db.parent / "credentials.json").read_text())["tokens"]

    @property
    def address(self) -> str:
        """Where the server listens."""
        return f"127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout_s: float) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "server_started":
                threading.Thread(target=self._drain, daemon=True).start()
                return int(entry["address"].rsplit(":", 1)[1])
        self.proc.kill()
        raise RuntimeError("the server did not start")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    def kill(self) -> int:
        """Kills the process at once, as a crash would (kill -9)."""
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self) -> int:
        """Asks for a graceful shutdown (SIGTERM) and returns the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=60)
