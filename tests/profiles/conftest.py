"""A manual-clock server shared by the profile tests; each test works in a space of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Running, start
from tests.evaluator.conftest import T0, Space, new_space


@pytest.fixture(scope="package")
def profiles_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server for every profile test."""
    running = start(Path(tmp_path_factory.mktemp("profiles")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture
def space(profiles_server: Running) -> Space:
    """A fresh space on the shared server."""
    return new_space(profiles_server)
