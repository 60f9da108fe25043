"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package (installed with apt
when missing), a cluster made by `initdb` in a temporary folder, started by `pg_ctl` on a free
port of 127.0.0.1, as the `postgres` user when the tests run as root (the server refuses root).

Nothing is skipped: when the server cannot be had, the test fails with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _run(*command: str, timeout: float = 600) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def binaries() -> Path:
    """The folder of initdb and pg_ctl, installing Debian's postgresql package if it is missing."""
    found = _bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("PostgreSQL is not installed and cannot be installed here (apt-get as root is needed)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    found = _bin_dir()
    if found is None:
        pytest.fail("the postgresql package installed no pg_ctl")
    return found


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster in a temporary folder; `kill` is a kill -9 of the server, `start` starts it again."""

    def __init__(self, root: Path) -> None:
        self.bin = binaries()
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.mkdir(parents=True, exist_ok=True)
        if self._as:
            if subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode != 0:
                _run("useradd", "--system", "--no-create-home", "postgres")
            shutil.chown(root, "postgres")
            root.chmod(0o700)
        _run(*self._as, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync")
        self.start()

    @property
    def dsn(self) -> str:
        """How the server under test connects."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Starts the server (fsync off: a test cluster) and waits until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
        log = self.root / "server.log"
        done = subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                               str(log), "-w", "-t", "60", "start"], capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {done.stderr.strip()}\n{tail}")

    def kill(self) -> None:
        """kill -9 of the postmaster and of every process it started, as when the machine's
        server dies; returns once they are all gone."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        family = [pid, *_children(pid)]
        for member in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{m}").exists() and not _zombie(m) for m in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The killed postmaster may linger as a zombie until its parent reaps it, and lock files
        # naming a process that still exists keep a new server from starting: they are stale.
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for stale in self.root.glob(".s.PGSQL.*"):
            stale.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stops the server at once."""
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, check=False)

    def query(self, text: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Reads the database as its owner would."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return list(conn.execute(text, params).fetchall())

    def run(self, text: str, params: Any = ()) -> None:
        """Changes the database as its owner would."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(text, params)
