"""The log's contract, held by both implementations: positions, duplicates, reading from a position."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from audiences_server.cluster.log import CALLS, JetStreamLog, LocalLog, Log, LogNotThisFile, partition_subject
from tests.cluster.conftest import NatsServer, start_nats


@pytest.fixture(params=["local", "jetstream"])
def make_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where to connect: the in-process log, or a fresh nats-server (skipped without one)."""
    if request.param == "local":
        yield "local"
        return
    server: NatsServer = start_nats(tmp_path_factory.mktemp("nats"))
    yield server.url
    server.process.terminate()
    server.process.wait(10)


async def _connect(where: str) -> Log:
    return LocalLog() if where == "local" else await JetStreamLog.connect(where)


def test_positions_duplicates_and_reading_from_a_position(make_log: str) -> None:
    """Appends return increasing positions shared by a stream's subjects; an append with a known
    message id returns the first one's position and stores nothing; a consumer opened after a
    position reads only its subject's later entries, in order, and a fetch with nothing new
    returns nothing once its timeout passes."""

    async def scenario() -> None:
        log = await _connect(make_log)
        try:
            first = await log.append(partition_subject(0), b"a", msg_id="x")
            other = await log.append(partition_subject(1), b"b")
            again = await log.append(partition_subject(0), b"a again", msg_id="x")
            third = await log.append(partition_subject(0), b"c")
            calls = await log.append(CALLS, b"call")
            assert first < other < third
            assert again == first
            assert calls == 1
            consumer = await log.consumer(partition_subject(0), "reader", after=0)
            read = await consumer.fetch(10, 2.0)
            assert [(e.seq, e.data) for e in read] == [(first, b"a"), (third, b"c")]
            for entry in read:
                await consumer.ack(entry)
            assert await consumer.fetch(10, 0.3) == []
            await consumer.close()
            later = await log.consumer(partition_subject(0), "reader", after=first)
            assert [e.data for e in await later.fetch(10, 2.0)] == [b"c"]
            await later.close()
        finally:
            await log.close()

    asyncio.run(scenario())


def test_an_unbuffered_append_while_nats_is_down_fails_and_never_arrives(tmp_path_factory: pytest.TempPathFactory
                                                                         ) -> None:
    """A front's log (`buffered=False`): while nats-server is down an append fails at once rather
    than waiting in the client's buffer, and once the server is back (same port, same store) that
    entry is not in the stream: what a front refused is not stored later."""
    import subprocess

    store = tmp_path_factory.mktemp("nats")
    server = start_nats(store)

    async def scenario() -> None:
        log = await JetStreamLog.connect(server.url, buffered=False)
        try:
            assert await log.append(CALLS, b"before") == 1
            server.process.terminate()
            server.process.wait(10)
            await asyncio.sleep(0.5)  # the client notices the connection gone
            with pytest.raises(Exception):  # noqa: B017, PT011 (nats-py's OutboundBufferLimitError, or a timeout)
                await asyncio.wait_for(log.append(CALLS, b"refused"), 5)
            port = server.url.rsplit(":", 1)[1]
            back = subprocess.Popen([server.process.args[0], "-a", "127.0.0.1", "-p", port, "-js", "-sd", str(store)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(200):  # reconnected, and the stream answers
                    try:
                        after = await asyncio.wait_for(log.append(CALLS, b"after"), 2)
                        break
                    except Exception:  # still reconnecting
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("never reconnected")
                consumer = await log.consumer(CALLS, "check", after=0)
                read = [e.data for e in await consumer.fetch(10, 2.0)]
                await consumer.close()
                assert read == [b"before", b"after"]
                assert after == 2
            finally:
                back.terminate()
                back.wait(10)
        finally:
            await log.close()

    asyncio.run(scenario())


class _Cuttable:
    """A TCP proxy to nats-server whose connections can be cut at once (a network break with the
    server still up), on the test's event loop."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("nats://").rsplit(":", 1)
        self._target = (host, int(port))
        self._writers: list[asyncio.StreamWriter] = []
        self.url = ""
        self.refusing = False  # connections made meanwhile are closed at once

    async def start(self) -> None:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"nats://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


def test_entries_delivered_as_the_connection_broke_are_read_once_it_is_back(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """JetStream counts an entry delivered once it sends it; one sent down a connection as it
    broke never arrives, and JetStream sends it again only after ACK_WAIT_S (600 s), behind the
    entries read since, which a reader drops as repeats: a shard or the identity stage skipped it
    for good. After a reconnect the consumer is made anew after the last entry handed out, so
    those entries come next, in order, at once."""
    server = start_nats(tmp_path_factory.mktemp("nats"))

    async def scenario() -> None:
        proxy = _Cuttable(server.url)
        await proxy.start()
        writer = await JetStreamLog.connect(server.url)
        reader = await JetStreamLog.connect(proxy.url)
        try:
            for i in range(1, 6):
                assert await writer.append(CALLS, f"e{i}".encode()) == i
            consumer = await reader.consumer(CALLS, "reader", after=0)
            assert [e.data for e in await consumer.fetch(1, 2.0)] == [b"e1"]
            # Two entries on their way as the connection breaks: delivered, never received.
            lost = await consumer._subscription.fetch(2, timeout=2.0)  # type: ignore[attr-defined]
            assert [m.data for m in lost] == [b"e2", b"e3"]
            proxy.cut()
            read: list[bytes] = []
            for _ in range(100):
                read += [e.data for e in await consumer.fetch(10, 0.3)]
                if len(read) >= 4:
                    break
            assert read == [b"e2", b"e3", b"e4", b"e5"]
            await consumer.close()
        finally:
            await reader.close()
            await writer.close()

    try:
        asyncio.run(scenario())
    finally:
        server.process.terminate()
        server.process.wait(10)


def test_a_connection_s_ups_and_downs_are_lines_of_the_log_without_tracebacks(
        tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture) -> None:
    """While NATS is out of reach a role's log says so in a line, and a failing reconnect once
    rather than every attempt; the client library's own `nats: encountered error` with its
    traceback (a record a second in every role) is not written."""
    server = start_nats(tmp_path_factory.mktemp("nats"))

    async def scenario() -> list[dict[str, Any]]:
        proxy = _Cuttable(server.url)
        await proxy.start()
        reader = await JetStreamLog.connect(proxy.url)
        try:
            with capture_logs() as logged:
                proxy.refusing = True
                proxy.cut()
                await asyncio.sleep(5.0)  # two or three reconnect attempts, each refused
                proxy.refusing = False
                for _ in range(100):
                    if any(entry["event"] == "nats_reconnected" for entry in logged):
                        break
                    await asyncio.sleep(0.1)
            return logged
        finally:
            await reader.close()

    try:
        with caplog.at_level(logging.DEBUG, logger="nats"):
            logged = asyncio.run(scenario())
    finally:
        server.process.terminate()
        server.process.wait(10)
    events = [entry["event"] for entry in logged]
    assert "nats_disconnected" in events
    assert events[-1] == "nats_reconnected"
    errors = [entry["error"] for entry in logged if entry["event"] == "nats_error"]
    assert errors
    assert len(set(errors)) == len(errors)  # each said once
    assert [r for r in caplog.records if r.name.startswith("nats") and r.levelno >= logging.ERROR] == []


def test_a_reader_past_the_log_s_end_is_refused_rather_than_skipping(nats: NatsServer) -> None:
    """A consumer asked to read after a position the stream never reached (a file that read a
    log NATS has since lost) is refused with LogNotThisFile, naming the positions, instead of
    waiting past the new log's entries; at the end itself it reads on."""

    async def scenario() -> None:
        log = await JetStreamLog.connect(nats.url)
        try:
            last = await log.append(CALLS, b"one")
            with pytest.raises(LogNotThisFile, match=f"up to entry {last + 5}, but the log ends at entry {last}"):
                await log.consumer(CALLS, "reader", after=last + 5)
            at_end = await log.consumer(CALLS, "reader", after=last)
            await log.append(CALLS, b"two")
            assert [e.data for e in await at_end.fetch(10, 2.0)] == [b"two"]
            await at_end.close()
        finally:
            await log.close()

    asyncio.run(scenario())


def test_a_nats_server_whose_messages_cannot_hold_a_call_is_refused(tmp_path: Path) -> None:
    """A NATS server configured with a `max_payload` too small for one call (8 KB) is refused at
    connect, saying so: the identity stage, which writes each call as one entry, stopped at the
    first large one, again at every restart, and every call after it was never stored."""
    server = start_nats(tmp_path / "nats", config="max_payload: 8192\n")
    try:
        with pytest.raises(ValueError, match="max_payload is 8,192 bytes; a cluster needs at least 131,072"):
            asyncio.run(JetStreamLog.connect(server.url))
    finally:
        server.process.terminate()
        server.process.wait(10)
