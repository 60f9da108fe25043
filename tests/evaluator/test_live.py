"""On the system clock the evaluator runs by itself: a change is visible well under a second later."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, ingest_pb2
from google.protobuf import duration_pb2

from tests.conftest import Running, error_reason, start


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Running]:
    """A server on the system clock with a short tick interval."""
    running = start(tmp_path / "live.db", tick_interval_ms=50)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def _members(running: Running, key: str) -> int:
    rows = running.query(
        "SELECT count(*) FROM computed_values v JOIN computations c USING (computation_id)"
        " WHERE c.key = ? AND v.value = 'true'",
        (key,),
    )
    return int(rows[0][0])


def test_membership_follows_events_without_manual_ticks(live: Running) -> None:
    """An audience created on a live server backfills and then admits a new member on its own."""
    audience = admin_pb2.Audience(
        key="buyers", collection=common_pb2.COLLECTION_USERS, definition="event('Order Completed').count() >= 1"
    )
    live.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=audience), metadata=live.auth("admin"))
    body = json.dumps({"batch": [{"type": "track", "userId": "u1", "event": "Order Completed"}]}).encode()
    sent = time.monotonic()
    live.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=live.auth("write"))
    while _members(live, "buyers") == 0 and time.monotonic() - sent < 5:
        time.sleep(0.01)
    assert _members(live, "buyers") == 1
    got = live.admin.GetAudience(
        admin_pb2.GetAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="buyers"), metadata=live.auth("admin")
    ).audience
    assert got.status == admin_pb2.COMPUTATION_STATUS_LIVE


def test_set_clock_is_refused_on_the_system_clock(live: Running) -> None:
    """Only a server started with the manual clock lets the clock be set."""
    with pytest.raises(grpc.RpcError) as caught:
        live.admin.SetClock(
            admin_pb2.SetClockRequest(advance=duration_pb2.Duration(seconds=60)), metadata=live.auth("admin")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "CLOCK_NOT_MANUAL"
