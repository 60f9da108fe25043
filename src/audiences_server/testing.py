"""Helpers for tests and benchmarks that need a real server in a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ServerProcess:
    """The real `audiences-server serve` command running in a child process on a free port."""

    def __init__(self, db: Path, *extra_args: str, timeout_s: float = 30) -> None:
        self.db = db
        db.parent.mkdir(parents=True, exist_ok=True)
        # Logs go to a file, not a pipe: a pipe the parent drains too slowly would make the
        # server wait on its own log lines and distort every figure taken against it.
        self.log_path = db.parent / f"{db.stem}.server.log"
        self.http_port = 0
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed when the process is stopped
        start = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "audiences_server.cli", "serve", "--db", str(db), "--listen", "127.0.0.1:0",
             "--http-listen", "127.0.0.1:0", "--log-format", "json", *extra_args],
            stderr=self._log,
        )
        self.port = self._wait_for_port(timeout_s, start)
        self.tokens: dict[str, str] = json.loads(self._credentials().read_text())["tokens"]

    @property
    def http_url(self) -> str:
        """The base URL of the server's HTTP listener."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def address(self) -> str:
        """Where the server listens."""
        return f"127.0.0.1:{self.port}"

    def _credentials(self) -> Path:
        """Where the database's first start wrote its bootstrap tokens, as its log says (the log
        holds every start on this database): `credentials.json` beside it, unless another
        database's tokens were there already."""
        path = self.db.parent / "credentials.json"
        for entry in self._entries(0):
            if entry.get("event") == "credentials_written":
                path = Path(entry["path"])
        return path

    def _entries(self, start: int) -> Iterator[dict[str, Any]]:
        """The JSON lines of the log from byte `start` on (other lines, gRPC core's, skipped)."""
        with open(self.log_path) as log:
            log.seek(start)
            for line in log:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry

    def _wait_for_port(self, timeout_s: float, start: int) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            for entry in self._entries(start):
                if entry.get("event") == "server_started":
                    http = entry.get("http_address") or ":0"
                    self.http_port = int(http.rsplit(":", 1)[1])
                    return int(entry["address"].rsplit(":", 1)[1])
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError(f"the server did not start; see {self.log_path}")

    def kill(self) -> int:
        """Kills the process at once, as a crash would (kill -9)."""
        self.proc.send_signal(signal.SIGKILL)
        status = self.proc.wait(timeout=30)
        self._log.close()
        return status

    def stop(self, timeout_s: float = 60) -> int:
        """Asks for a graceful shutdown (SIGTERM) and returns the exit status.

        Raises:
            RuntimeError: the server did not exit within `timeout_s`; it is killed, after writing
                every thread's stack to its log (SIGUSR1), and the error carries the log's end.
        """
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.kill()
            tail = self.log_path.read_text(errors="replace")[-6000:]
            raise RuntimeError(
                f"the server did not exit within {timeout_s:g} s of SIGTERM; its log ends:\n{tail}") from None
        self._log.close()
        return status
