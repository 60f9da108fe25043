"""A manual-clock server shared by the evaluator tests; each test works in a space of its own."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import admin_pb2, common_pb2, ingest_pb2
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.oracle import Values, expected_values, stored_values

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
HOUR, DAY = 3_600_000, 86_400_000
COLLECTION = {"users": common_pb2.COLLECTION_USERS, "accounts": common_pb2.COLLECTION_ACCOUNTS}
_spaces = itertools.count(1)


@dataclass
class Space:
    """One space of the shared server, with a token per scope."""

    running: Running
    space_id: int
    tokens: dict[str, str]

    def now(self) -> int:
        return self.running.server.engine.clock.now_ms()

    def send(self, *calls: dict[str, Any]) -> ingest_pb2.BatchJsonResponse:
        """Sends tracking calls; a `at` key (ms) becomes the call's timestamp."""
        batch = []
        for original in calls:
            call = dict(original)
            if "at" in call:
                call["timestamp"] = _iso(call.pop("at"))
            batch.append(call)
        body = json.dumps({"batch": batch}).encode()
        reply = self.running.ingest.BatchJson(
            ingest_pb2.BatchJsonRequest(body=body), metadata=bearer(self.tokens["write"])
        )
        assert reply.rejected_count == 0, reply.results
        return reply

    def define(
        self, key: str, definition: str, *, kind: str = "audience", collection: str = "users", **options: Any
    ) -> Any:
        """Creates an audience or computed trait."""
        opts = admin_pb2.ComputationOptions(**options)
        meta = bearer(self.tokens["admin"])
        if kind == "audience":
            message = admin_pb2.Audience(
                key=key, collection=COLLECTION[collection], definition=definition, options=opts
            )
            return self.running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=message), metadata=meta)
        message = admin_pb2.ComputedTrait(
            key=key, collection=COLLECTION[collection], definition=definition, options=opts
        )
        return self.running.admin.CreateComputedTrait(
            admin_pb2.CreateComputedTraitRequest(computed_trait=message), metadata=meta
        )

    def update(self, key: str, collection: str = "users", **fields: Any) -> Any:
        """Updates an audience's fields (`enabled`, `definition`, …), only those given."""
        return self.running.admin.UpdateAudience(
            admin_pb2.UpdateAudienceRequest(
                audience=admin_pb2.Audience(collection=COLLECTION[collection], key=key, **fields),
                update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            ),
            metadata=bearer(self.tokens["admin"]),
        )

    def tick(self, at: int | None = None) -> admin_pb2.Tick:
        """Moves the clock to `at` (if given) and runs a tick until idle."""
        meta = bearer(self.tokens["admin"])
        if at is not None and at != self.now():
            stamp = timestamp_pb2.Timestamp()
            stamp.FromMilliseconds(at)
            self.running.admin.SetClock(admin_pb2.SetClockRequest(clock_time=stamp), metadata=meta)
        return self.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=meta).ticks[0]

    def stored(self) -> Values:
        return stored_values(self._conn(), self.space_id)

    def expected(self) -> Values:
        return expected_values(self._conn(), self.space_id, self.now())

    def member_ids(self, key: str, collection: str = "users") -> set[str]:
        """The identifiers (`type:value`) of the audience's members, read from the database file."""
        rows = self.running.query(
            "SELECT i.id_type || ':' || i.id_value FROM computed_values v JOIN computations c USING (computation_id)"
            " JOIN identifiers i ON i.profile_id = v.profile_id"
            " WHERE c.space_id = ? AND c.collection = ? AND c.key = ? AND v.value = 'true'",
            (self.space_id, collection, key),
        )
        return {r[0] for r in rows}

    def _conn(self) -> Any:
        import apsw

        return apsw.Connection(str(self.running.db), flags=apsw.SQLITE_OPEN_READONLY)


def _iso(ms: int) -> str:
    from audiences_server.core.tracking import format_time

    return format_time(ms)


@pytest.fixture(scope="package")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server for every evaluator test."""
    running = start(Path(tmp_path_factory.mktemp("evaluator")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def new_space(running: Running) -> Space:
    """A fresh space with its own tokens, so tests never see each other's profiles."""
    auth = running.server.engine.auth
    name = f"s{next(_spaces)}"
    space = auth.create_space(name, 0)
    tokens = {scope: auth.create_token(name, scope, 0).token for scope in ("write", "read", "admin")}
    return Space(running, space.space_id, tokens)


@pytest.fixture
def space(shared_server: Running) -> Space:
    """A fresh space on the shared server."""
    return new_space(shared_server)
