"""The channel's service config and `wait_for_ready`, against a stand-in server the test controls:
idempotent reads are retried on UNAVAILABLE, writes are not, and a waiting call outlives a
server that is not up yet."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import audiences
import grpc
import pytest
from audiences._base import idempotent_methods
from audiences.v1 import admin_pb2, admin_pb2_grpc


class FlakyAdmin(admin_pb2_grpc.AudienceAdminServiceServicer):
    """Fails the first `failures` calls of each RPC with UNAVAILABLE; counts every attempt."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: Counter[str] = Counter()

    def _answer(self, name: str, context: grpc.ServicerContext, reply: Any) -> Any:
        self.attempts[name] += 1
        if self.attempts[name] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return reply

    def GetAudience(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = admin_pb2.GetAudienceResponse(audience=admin_pb2.Audience(key=request.key))
        return self._answer("GetAudience", context, reply)

    def CreateAudience(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("CreateAudience", context, admin_pb2.CreateAudienceResponse(audience=request.audience))


def _serve(servicer: FlakyAdmin, port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    admin_pb2_grpc.add_AudienceAdminServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyAdmin, str]]:
    """A stand-in admin service failing each RPC's first two calls, and its address."""
    servicer = FlakyAdmin(failures=2)
    server, port = _serve(servicer)
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_only_unary_reads_are_retried() -> None:
    """The retried RPCs are the unary Get*, List*, Validate* and Preview* of the four services;
    no write, tick or stream is among them."""
    names = {method for _, method in idempotent_methods()}
    assert {"GetAudience", "ListTraits", "ListChanges", "ValidateDefinition", "PreviewDefinition"} <= names
    assert not names & {"CreateAudience", "RunTick", "SetClock", "BatchJson", "Track", "WatchChanges",
                        "ExportAudience", "RedriveDeadLetters"}


def test_client_retries_a_read_but_not_a_write(flaky: tuple[FlakyAdmin, str]) -> None:
    """Client: GetAudience that fails UNAVAILABLE twice succeeds on the third attempt; a
    CreateAudience that fails UNAVAILABLE is not sent again."""
    servicer, address = flaky
    client = audiences.Client(address, "t")
    assert client.get_audience("a").key == "a"
    assert servicer.attempts["GetAudience"] == 3
    with pytest.raises(audiences.AudiencesError) as caught:
        client.create_audience("a", "x")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert servicer.attempts["CreateAudience"] == 1
    client.close()


def test_async_client_retries_a_read_but_not_a_write(flaky: tuple[FlakyAdmin, str]) -> None:
    """AsyncClient's grpc.aio channel has the same service config: the read is retried, the write is not."""
    servicer, address = flaky

    async def body() -> None:
        async with audiences.AsyncClient(address, "t") as client:
            assert (await client.get_audience("a")).key == "a"
            with pytest.raises(audiences.AudiencesError):
                await client.create_audience("a", "x")

    asyncio.run(body())
    assert (servicer.attempts["GetAudience"], servicer.attempts["CreateAudience"]) == (3, 1)


def test_wait_for_ready_waits_for_a_server_that_comes_up() -> None:
    """Without wait_for_ready a call to a port nobody listens on fails UNAVAILABLE at once; with
    it the call waits, and succeeds once a server starts there."""
    port = _free_port()
    eager = audiences.Client(f"127.0.0.1:{port}", "t", timeout=10)
    with pytest.raises(audiences.AudiencesError) as caught:
        eager.create_audience("a", "x")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    eager.close()
    patient = audiences.Client(f"127.0.0.1:{port}", "t", timeout=10, wait_for_ready=True)
    outcome: list[Any] = []
    waiting = threading.Thread(target=lambda: outcome.append(patient.create_audience("a", "x")))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()
    server, _ = _serve(FlakyAdmin(failures=0), port)
    waiting.join(10)
    server.stop(grace=None)
    patient.close()
    assert [a.key for a in outcome] == ["a"]
