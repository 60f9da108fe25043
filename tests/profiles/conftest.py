"""A manual-clock server shared by the profile tests; each test works in a space of its own.

`shop` is one space filled once for every read test: they only read it, so they share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import common_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import HOUR, T0, Space, new_space

USERS, ACCOUNTS = common_pb2.COLLECTION_USERS, common_pb2.COLLECTION_ACCOUNTS


def ref(address: str, collection: int = USERS) -> common_pb2.ProfileRef:
    """A ProfileRef."""
    return common_pb2.ProfileRef(collection=collection, id=address)


def call(space: Space, rpc: str, request: Any, scope: str = "read") -> Any:
    """Calls a ProfilesService RPC with the space's token of a scope."""
    return getattr(space.running.profiles, rpc)(request, metadata=bearer(space.tokens[scope]))


@dataclass
class Shop:
    """The filled space, and the clock time (ms) its calls were stamped relative to."""

    space: Space
    base: int


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


def _ada(base: int) -> list[dict[str, Any]]:
    identify = {
        "type": "identify", "userId": "ada", "anonymousId": "dev1", "messageId": "m-identify", "at": base - 11 * HOUR,
        "traits": {"plan": "pro", "email": "ada@x.io", "address": {"city": "Paris"}, "bought": "yes",
                   "coupon": "X"},
    }
    tracks = [
        {"type": "track", "userId": "ada", "event": "Viewed" if i % 2 else "Bought", "messageId": f"t{i}",
         "properties": {"i": i}, "context": {"ip": "10.0.0.1"}, "at": base - (10 - i) * HOUR}
        for i in range(10)
    ]
    page = {"type": "page", "userId": "ada", "anonymousId": "dev1", "name": "Home", "category": "Docs",
            "messageId": "m-page", "at": base - 30 * 60_000, "context": {"page": {"url": "https://x.io/"}}}
    crm = {"type": "track", "userId": "ada", "event": "Synced", "messageId": "m-crm", "at": base - 12 * HOUR,
           "context": {"externalIds": [{"id": "C-1", "type": "crm_id", "collection": "users", "encoding": "none"}]}}
    unset = {"type": "identify", "userId": "ada", "traits": {"coupon": None}, "at": base - 10 * HOUR}
    return [identify, *tracks, page, crm, unset]


def _groups(base: int) -> list[dict[str, Any]]:
    # Initech arrives second but is stamped earlier: links list oldest event time first.
    return [
        {"type": "group", "userId": "ada", "groupId": "acme", "traits": {"tier": "gold"}, "at": base - 2 * HOUR},
        {"type": "group", "userId": "ada", "groupId": "initech", "at": base - 5 * HOUR},
        {"type": "group", "userId": "bob", "groupId": "acme", "at": base - HOUR},
    ]


@pytest.fixture(scope="package")
def shop(profiles_server: Running) -> Shop:
    """Ada: traits of every class, events, ids, two accounts, a current and a former audience.

    Also `many` with 205 events (for the page size cap) and `tie` with two events stamped alike.
    """
    space = new_space(profiles_server)
    base = space.now()
    space.send(*_ada(base))
    space.send(*_groups(base))
    space.send(*[{"type": "track", "userId": "many", "event": "E", "messageId": f"many-{i:03}",
                  "at": base - i * 1000} for i in range(205)])
    space.send(*[{"type": "track", "userId": "tie", "event": "E", "messageId": m, "at": base - HOUR}
                 for m in ("tie-b", "tie-a")])
    space.define("buyers", "event('Bought').count() >= 1")
    space.define("recent_buyers", "event('Bought').within(3 hours).count() >= 1")
    space.define("bought", "event('Bought').count()", kind="computed_trait")
    space.tick()
    # Two hours on, Ada's last purchase (at base - 2h) is out of the 3-hour window: she leaves.
    space.tick(base + 2 * HOUR)
    return Shop(space, base)
