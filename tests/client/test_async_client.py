"""`audiences.AsyncClient` on grpc.aio: the same surface as Client, against the shared server."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import audiences
import grpc
import pytest
from audiences.v1 import admin_pb2, ingest_pb2, tracking_pb2

from tests.conftest import Running

ISO_T0 = "2027-01-15T08:00:00.000Z"
# Client's own methods that queue or report on the queue, synchronous in both clients.
QUEUE_METHODS = {"track", "identify", "page", "screen", "group", "alias", "enqueue"}


def run(coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Runs one test body in a fresh event loop."""
    return asyncio.run(coroutine())


def _public(klass: type) -> dict[str, Any]:
    return {name: getattr(klass, name) for name in dir(klass) if not name.startswith("_")}


def test_same_methods_and_parameters_as_client() -> None:
    """Every public method of Client is on AsyncClient with the same parameters; the RPC ones
    are coroutine functions (or return async iterators), the queueing ones stay synchronous."""
    sync, aio = _public(audiences.Client), _public(audiences.AsyncClient)
    assert set(sync) <= set(aio)
    for name, method in sync.items():
        if not callable(method):
            continue
        assert list(inspect.signature(method).parameters) == list(inspect.signature(aio[name]).parameters), name
        if name in QUEUE_METHODS:
            assert not inspect.iscoroutinefunction(aio[name]), name
    assert inspect.iscoroutinefunction(audiences.AsyncClient.flush)
    assert inspect.isasyncgenfunction(audiences.AsyncClient.export_audience)


def test_round_trip_on_the_shared_server(server: Running, unique: Callable[[str], str]) -> None:
    """Tracking calls are queued and flushed; an audience is created, goes LIVE and is read
    back with its members, the member's traits and a CSV export; then deleted."""
    user, key = unique("async"), unique("async_buyers")

    async def body() -> None:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens, flush_interval=0.05) as client:
            client.identify(user_id=user, traits={"plan": "pro", "tag": user}, timestamp=ISO_T0)
            client.track(user_id=user, event="Order Completed", properties={"revenue": 12}, timestamp=ISO_T0)
            assert await client.flush(timeout=10)
            assert client.stats.accepted >= 2
            assert (await client.validate_definition("trait('plan') = 'pro'")).valid
            created = await client.create_audience(key, f"trait('plan') = 'pro' AND trait('tag') = '{user}'")
            assert created.status == admin_pb2.COMPUTATION_STATUS_BACKFILLING
            await client.wait_until_live(timeout=30)
            assert (await client.get_audience(key)).size == 1
            members = [m.profile.profile_id async for m in client.iter_audience_members(key)]
            assert len(members) == 1
            traits = await client.get_traits(f"user_id:{user}")
            assert (traits["plan"], traits[key]) == ("pro", True)
            events = await client.list_events(f"user_id:{user}")
            assert [e.event for e in events.events] == ["Order Completed"]
            csv = b"".join([chunk async for chunk in client.export_audience(key)])
            assert csv.startswith(b"profile_id")
            assert await client.delete_audience(key) is None
            with pytest.raises(audiences.AudiencesError) as caught:
                await client.get_audience(key)
            assert caught.value.code == grpc.StatusCode.NOT_FOUND

    run(body)


def test_ingest_rpcs_and_typed_errors(server: Running, unique: Callable[[str], str]) -> None:
    """The typed unary, Batch, StreamCalls and BatchJson RPCs are coroutines; a refused call
    raises AudiencesError with the reason, metadata and field violations."""
    user = unique("async_typed")

    async def body() -> None:
        client = audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens)
        reply = await client.send(tracking_pb2.Identify(user_id=user))
        assert reply.status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
        call = tracking_pb2.TrackingCall(track=tracking_pb2.Track(user_id=user, event="A"))
        assert (await client.send_typed_batch([call])).accepted_count == 1
        streamed = await client.stream_calls({"type": "track", "userId": user, "event": f"E{i}"} for i in range(3))
        assert streamed.accepted_count == 3
        assert (await client.send_batch([{"type": "page", "userId": user}])).accepted_count == 1
        with pytest.raises(audiences.AudiencesError) as caught:
            await client.create_audience("broken", "event('A').count( >= 1")
        assert (caught.value.reason, caught.value.line, caught.value.column) == ("INVALID_DEFINITION", 1, 19)
        assert caught.value.violations[0].field == "definition"
        with pytest.raises(audiences.AudiencesError) as unary:
            await client.send(tracking_pb2.Track(event="Nobody"))
        assert unary.value.reason == "NO_USER_ANON_ID"
        await client.close()

    run(body)


def test_missing_scope_token_fails_at_await() -> None:
    """A method whose scope has no token raises TOKEN_MISSING when awaited, before any call."""

    async def body() -> None:
        client = audiences.AsyncClient("127.0.0.1:1", {"write": "w"}, credentials_file="/nonexistent")
        with pytest.raises(audiences.AudiencesError) as caught:
            await client.get_metadata("user_id:x")
        assert caught.value.metadata == {"required_scope": "read"}
        await client.close()

    run(body)
