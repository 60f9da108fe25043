"""A manual-clock server shared by the client and CLI tests, and a way to run the CLI in-process."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import audiences
import pytest
from audiences import cli

from tests.conftest import Running, start

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
_names = itertools.count(1)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server, its clock at T0, with credentials in `<dir>/var/credentials.json`."""
    root = Path(tmp_path_factory.mktemp("client"))
    running = start(root / "var" / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture
def client(server: Running) -> Iterator[audiences.Client]:
    """A client of the shared server, closed after the test."""
    made = audiences.Client(f"127.0.0.1:{server.port}", server.tokens, flush_interval=0.05)
    yield made
    made.close()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Makes names no other test uses (keys, user ids) on the shared server."""
    return lambda prefix: f"{prefix}_{next(_names)}"


@dataclass
class Result:
    """What one CLI run did."""

    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(server: Running, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
            ) -> Callable[..., Result]:
    """Runs `audiences ARGS…` in-process against the shared server, found through the environment."""
    for name in ("AUDIENCES_TOKEN", "AUDIENCES_WRITE_TOKEN", "AUDIENCES_READ_TOKEN", "AUDIENCES_ADMIN_TOKEN",
                 "AUDIENCES_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUDIENCES_ADDRESS", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(server.db.parent / "credentials.json"))

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
