"""A manual-clock server shared by the data-lifecycle tests; each test works in a space of its
own, with a token per scope, the operator's included."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from audiences.v1 import operator_pb2_grpc

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import T0, Space

_names = itertools.count(1)


@dataclass
class Site(Space):
    """A space of the shared server, its name, and the OperatorService."""

    name: str = ""

    @property
    def operator(self) -> operator_pb2_grpc.OperatorServiceStub:
        return operator_pb2_grpc.OperatorServiceStub(self.running.channel)

    def as_(self, scope: str) -> tuple[tuple[str, str], ...]:
        """Call metadata with this space's token of a scope."""
        return bearer(self.tokens[scope])


def new_site(running: Running) -> Site:
    """A fresh space with one token per scope."""
    auth = running.server.engine.auth
    name = f"l{next(_names)}"
    space = auth.create_space(name, 0)
    tokens = {scope: auth.create_token(name, scope, 0, f"{scope}-label").token
              for scope in ("write", "read", "admin", "operator")}
    return Site(running, space.space_id, tokens, name)


@pytest.fixture(scope="package")
def lifecycle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server for the lifecycle tests (deliveries run on the wall clock)."""
    running = start(Path(tmp_path_factory.mktemp("lifecycle")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@pytest.fixture
def site(lifecycle_server: Running) -> Site:
    """A fresh space on the shared server."""
    return new_site(lifecycle_server)
