"""The send queue under the conditions an outside review found it failing in: an `on_error` that
raises, the end of an asyncio program, `close()` giving up or racing producer threads, stats from
many threads, retries after an outage (`sentAt`), non-ASCII calls near 32 KB, Decimal values, and
the retry budget as options. Each test runs against the shared real server, or a port where
nothing listens."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import audiences
import grpc
import pytest
from audiences.batching import Batcher
from audiences.v1 import ingest_pb2

from tests.conftest import Running

Unique = Callable[[str], str]


def _connect(server: Running, **options: Any) -> audiences.Client:
    return audiences.Client(f"127.0.0.1:{server.port}", server.tokens, flush_interval=0.05, **options)


def _dead_address() -> str:
    """An address where nothing listens (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _stored(client: audiences.Client, user: str) -> set[str]:
    return {event.message_id for event in client.iter_events(f"user_id:{user}")}


# -- 1: an on_error that raises -------------------------------------------------------------------


def test_an_on_error_that_raises_does_not_stop_the_queue(server: Running, unique: Unique,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A rejected call goes to an `on_error` that raises: the exception is logged, the sender
    thread lives on, and the next call is sent and stored; flush() and close() return."""
    seen: list[str] = []

    def faulty(undelivered: audiences.Undelivered) -> None:
        seen.append(undelivered.reason)
        raise RuntimeError("a bug in the caller's handler")

    client = _connect(server, on_error=faulty)
    client.enqueue({"type": "track", "userId": unique("oe")})  # no event: the server rejects it
    assert client.flush(timeout=10)
    assert seen == ["event_not_defined"]
    user = unique("oe_after")
    message_id = client.track(user_id=user, event="After")
    assert client.flush(timeout=10), "the sender thread died"
    assert client.stats.accepted == 1
    assert _stored(client, user) == {message_id}
    assert client.close(timeout=10)
    assert "on_error raised" in caplog.text


def test_an_on_error_that_queues_the_call_again_never_stops_the_queue() -> None:
    """Every batch fails (nothing listens) and `on_error` queues each call again, as "try again
    later" does, into a queue that fills up: the producer's calls all return. With `block`, the
    sender thread, running `on_error`, waited for room that only it could make: every `track()`
    then blocked until `close()` gave up."""
    client: audiences.Client

    def again(undelivered: audiences.Undelivered) -> None:
        client.enqueue(undelivered.message)

    client = audiences.Client(_dead_address(), "aud_write_x", max_queue_size=5, batch_size=2, max_retries=0,
                              flush_interval=0.05, on_error=again)
    done = threading.Event()

    def produce() -> None:
        for i in range(20):
            client.track(user_id="u", event="E", properties={"i": i})
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(20), "track() blocked behind the sender thread"
    client.close(timeout=1)


# -- 2: AsyncClient at the end of the program --------------------------------------------------


def test_async_client_calls_still_queued_at_exit_are_sent(server: Running, client: audiences.Client,
                                                          unique: Unique) -> None:
    """An asyncio program that queues calls and ends without `await client.close()`: the close
    run at exit sends them (it only made a coroutine no one awaited before)."""
    user = unique("async_exit")
    script = textwrap.dedent(f"""
        import asyncio, audiences

        async def main():
            client = audiences.AsyncClient(flush_interval=30)  # no batch fills before the end
            for i in range(3):
                client.track(user_id={user!r}, event="Async Exit", properties={{"i": i}})

        asyncio.run(main())
    """)
    env = {**os.environ, "AUDIENCES_ADDRESS": f"127.0.0.1:{server.port}",
           "AUDIENCES_WRITE_TOKEN": server.tokens["write"], "AUDIENCES_CREDENTIALS_FILE": os.devnull}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "never awaited" not in done.stderr
    assert len(_stored(client, user)) == 3


def test_async_client_close_sends_and_closes(server: Running, unique: Unique) -> None:
    """`await close()` sends what is queued; later calls are refused with CLIENT_CLOSED; a
    second close is a no-op."""
    user = unique("async_close")

    async def main() -> audiences.BatchStats:
        client = audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens, flush_interval=30)
        client.track(user_id=user, event="Async Close")
        assert await client.close(timeout=10)
        assert await client.close()
        with pytest.raises(audiences.AudiencesError) as refused:
            client.track(user_id=user, event="Too Late")
        assert refused.value.reason == "CLIENT_CLOSED"
        return client.stats

    import asyncio

    assert asyncio.run(main()).accepted == 1


# -- 3: close(timeout) gives up, and says so ---------------------------------------------------


def test_calls_close_gives_up_on_go_to_on_error() -> None:
    """With no server, close(timeout=1) returns False and every call it gave up on, those queued
    and the batch waiting to retry, is passed to on_error as CLIENT_CLOSED and counted as failed:
    none is left pending, and the sender threads end."""
    reported: list[audiences.Undelivered] = []
    client = audiences.Client(_dead_address(), "aud_write_x", on_error=reported.append, batch_size=10,
                              max_retries=50, flush_interval=0.01)
    for i in range(30):
        client.track(user_id="gone", event="E", properties={"i": i})
    started = time.monotonic()
    assert client.close(timeout=1) is False
    assert time.monotonic() - started < 5
    assert len(reported) == 30
    assert {u.reason for u in reported} == {"CLIENT_CLOSED"}
    assert sorted(u.message["properties"]["i"] for u in reported) == list(range(30))
    assert "closed before the call was sent" in reported[0].detail
    assert client.stats.failed == 30
    batcher = client._batcher
    assert batcher is not None
    assert batcher.pending == 0
    assert batcher.join(5)


# -- 4: close() and flush() while other threads keep tracking -----------------------------------


def test_close_and_flush_return_while_other_threads_keep_tracking(server: Running, client: audiences.Client,
                                                                  unique: Unique) -> None:
    """flush() waits for what was queued when it was called, not for an empty queue; close()
    refuses new calls first, then settles the rest. Every call whose track() returned a
    messageId is stored."""
    user = unique("race")
    producer = _connect(server)
    accepted: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def produce(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                accepted.append(producer.track(user_id=user, event="Race", message_id=f"{user}-{k}-{i}"))
            except audiences.AudiencesError as error:
                refused.append(error.reason)
                return
            i += 1
            time.sleep(0.001)

    threads = [threading.Thread(target=produce, args=(k,), daemon=True) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        result: dict[str, bool] = {}
        flusher = threading.Thread(target=lambda: result.setdefault("flushed", producer.flush()), daemon=True)
        flusher.start()
        flusher.join(10)
        assert result.get("flushed") is True, "flush() did not return while other threads track"
        closer = threading.Thread(target=lambda: result.setdefault("closed", producer.close()), daemon=True)
        closer.start()
        closer.join(10)
        assert result.get("closed") is True, "close() did not return while other threads track"
        for thread in threads:
            thread.join(5)
        assert refused == ["CLIENT_CLOSED"] * 4
    finally:
        stop.set()
        producer.close(timeout=10)
    assert set(accepted) <= _stored(client, user)
    assert producer.stats.queued == producer.stats.accepted == len(accepted)


# -- 5: stats from many threads ------------------------------------------------------------------


def test_stats_add_up_across_threads(server: Running, unique: Unique, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 threads track at once through a fresh client (its queue starts with the first call of
    whichever thread comes first): `queued` and `accepted` count every call."""
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)  # restored below
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, as a busy machine does
    client = _connect(server, send_threads=4, batch_size=50)
    user = unique("threads")
    barrier = threading.Barrier(16)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(150):
            client.track(user_id=user, event="Thread", properties={"k": k, "i": i})

    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert client.flush(timeout=60)
    assert (client.stats.queued, client.stats.accepted) == (2400, 2400)
    assert client.stats.batches >= 48
    client.close()


# -- 6: sentAt at each attempt --------------------------------------------------------------------


def test_a_retried_batch_is_sent_with_the_time_of_each_attempt() -> None:
    """The body's `sentAt` is the time of the attempt, not of the first one: the server computes
    receivedAt − (sentAt − originalTimestamp), so a stale sentAt would move the event later by
    the whole outage."""
    sent: list[dt.datetime] = []

    def flaky(body: bytes) -> ingest_pb2.BatchJsonResponse:
        import json

        sent.append(dt.datetime.fromisoformat(json.loads(body)["sentAt"]))
        if len(sent) <= 2:
            raise audiences.AudiencesError(grpc.StatusCode.UNAVAILABLE, "down")
        return ingest_pb2.BatchJsonResponse(accepted_count=1)

    batcher = Batcher(flaky, backoff=0.3, max_backoff=0.3, flush_interval=0.01)
    batcher.put({"type": "track", "userId": "u", "event": "E"})
    assert batcher.flush(timeout=10)
    batcher.close()
    assert len(sent) == 3
    assert batcher.stats.accepted == 1
    assert sent[1] - sent[0] >= dt.timedelta(milliseconds=100)
    assert sent[2] - sent[1] >= dt.timedelta(milliseconds=100)


def test_event_time_is_not_moved_by_a_retry(server: Running, client: audiences.Client, unique: Unique) -> None:
    """Against the server: a call without timestamp whose batch fails twice (about 1.2 s of
    backoff) is stored at the time track() was called: the time the server received it minus
    the call's age at the attempt that got through, the backoff included."""
    user = unique("skew")
    sender = _connect(server)
    sender._batcher_options.update(backoff=0.6, max_backoff=0.6)  # the queue starts with the first call
    failures = [2]
    real = sender._send_body

    def flaky(body: bytes) -> ingest_pb2.BatchJsonResponse:
        if failures[0]:
            failures[0] -= 1
            raise audiences.AudiencesError(grpc.StatusCode.UNAVAILABLE, "down")
        return real(body)

    sender._send_body = flaky  # type: ignore[method-assign]
    before = time.monotonic()
    sender.track(user_id=user, event="Skew")
    assert sender.flush(timeout=20)
    waited_ms = (time.monotonic() - before) * 1000
    sender.close()
    assert sender.stats.retries == 2
    event = next(iter(client.iter_events(f"user_id:{user}")))
    age_ms = event.receive_time.ToMilliseconds() - event.event_time.ToMilliseconds()
    # With the first attempt's sentAt the age would be about 0: the event moved later by the wait.
    assert 600 <= age_ms <= waited_ms + 200, f"age {age_ms} ms; the retries took {waited_ms:.0f} ms"


# -- 7: non-ASCII calls are measured in UTF-8 ----------------------------------------------------


def test_the_32_kb_limit_is_on_utf8_bytes(client: audiences.Client, unique: Unique) -> None:
    """20 KB of UTF-8 (10,000 × é) is queued and stored; 36 KB of CJK text is refused at once
    with MESSAGE_TOO_LARGE, an InvalidArgument whose size is the UTF-8 size."""
    user = unique("utf8")
    message_id = client.track(user_id=user, event="Long", properties={"text": "é" * 10_000})
    assert client.flush(timeout=10)
    assert client.stats.accepted == 1
    assert _stored(client, user) == {message_id}
    with pytest.raises(audiences.InvalidArgument) as refused:
        client.track(user_id=user, event="Longer", properties={"text": "日本" * 6_000})
    assert refused.value.reason == "MESSAGE_TOO_LARGE"
    assert re.search(r"the call is 36\d{3} bytes of JSON \(UTF-8\)", refused.value.message)  # escaped: 72 KB
    with pytest.raises(audiences.InvalidArgument) as surrogate:
        client.track(user_id=user, event="Bad", properties={"text": "\ud800"})
    assert surrogate.value.reason == "STRING_NOT_ENCODABLE"


# -- 12: argument mistakes are InvalidArgument --------------------------------------------------


def test_argument_mistakes_are_invalid_argument(client: audiences.Client, tmp_path: Any) -> None:
    """Words a method does not take, values JSON cannot hold and options out of range raise
    InvalidArgument (an AudiencesError and a ValueError) naming what is allowed, not a bare
    KeyError, ValueError or TypeError."""
    cases: dict[str, Callable[[], object]] = {
        "SORT_INVALID": lambda: client.list_events("user_id:ada", sort="ascending"),
        "TRAIT_CLASS_INVALID": lambda: client.list_traits("user_id:ada", trait_class="computed"),
        "IDENTIFIER_SELECTION_INVALID": lambda: client.connect_destination("d", "k", identifier_selection="first"),
        "LIMIT_PERIOD_INVALID": lambda: client.update_identity_rule("email", limit_period="yearly"),
        "COLLECTION_INVALID": lambda: client.get_audience("k", collection="usr"),
        "KIND_INVALID": lambda: client.validate_definition("x", kind="segment"),
        "EVENT_NOT_DEFINED": lambda: client.track(user_id="a"),
        "QUEUE_OPTION_INVALID": lambda: audiences.Client(on_overflow="wait"),  # type: ignore[arg-type]
        "TLS_FILE_UNREADABLE": lambda: audiences.Client(tls_cert_file=str(tmp_path / "cert.pem")),
    }
    for reason, call in cases.items():
        with pytest.raises(audiences.InvalidArgument) as caught:
            call()
        assert caught.value.reason == reason, caught.value
        assert isinstance(caught.value, ValueError)
    with pytest.raises(audiences.InvalidArgument, match="asc, desc"):
        client.list_events("user_id:ada", sort="ascending")
    for value in (float("nan"), float("inf"), object(), Decimal("NaN")):
        with pytest.raises(audiences.InvalidArgument) as caught:
            client.track(user_id="a", event="E", properties={"x": value})
        assert caught.value.reason == "VALUE_NOT_JSON"


# -- 13: Decimal values are sent exactly ---------------------------------------------------------


def test_decimals_are_sent_as_their_exact_numbers(client: audiences.Client, unique: Unique) -> None:
    """A Decimal is sent as a JSON number with its own digits (not a float): `Decimal("10")` is
    stored as the integer 10, `Decimal("19.90")` is sent as 19.90, a long one with every digit."""
    user = unique("decimal")
    bodies: list[bytes] = []
    real = client._send_body

    def recording(body: bytes) -> ingest_pb2.BatchJsonResponse:
        bodies.append(body)
        return real(body)

    client._send_body = recording  # type: ignore[method-assign]
    big = Decimal("12345678901234567890.123456789")
    client.identify(user_id=user, traits={"ten": Decimal("10"), "big": big, "price": Decimal("19.90"),
                                          "huge": Decimal(2**70)})
    assert client.flush(timeout=10)
    assert client.stats.accepted == 1
    assert b'"ten":10,"big":12345678901234567890.123456789,"price":19.90,"huge":1180591620717411303424' in bodies[0]
    traits = {t.key: t.value_json for t in client.list_traits(f"user_id:{user}").traits}
    assert (traits["ten"], traits["huge"]) == ("10", str(2**70))
    values = client.get_traits(f"user_id:{user}")
    assert values["ten"] == 10
    assert isinstance(values["ten"], int)
    assert values["price"] == 19.9
    reply = client.send_batch([{"type": "identify", "userId": user, "traits": {"d": Decimal("2.50")}}])
    assert reply.accepted_count == 1
    assert b'"d":2.50' in bodies[-1]


# -- 14: the retry budget ------------------------------------------------------------------------


def test_the_retry_budget_is_an_option() -> None:
    """`max_retries`, `retry_backoff` and `max_retry_backoff` set how long a batch rides out an
    outage; `retry_budget` says how long that is (about 5.6 to 11.2 s with the defaults)."""
    from audiences.batching import retry_budget

    assert retry_budget(6, 0.2, 5.0) == pytest.approx((5.6, 11.2))
    reported: list[audiences.Undelivered] = []
    client = audiences.Client(_dead_address(), "aud_write_x", on_error=reported.append, max_retries=3,
                              retry_backoff=0.01, max_retry_backoff=0.02, flush_interval=0.01)
    client.track(user_id="gone", event="E")
    started = time.monotonic()
    assert client.flush(timeout=10)
    assert time.monotonic() - started < 5
    assert (client.stats.retries, client.stats.failed) == (3, 1)
    assert reported[0].reason == "UNAVAILABLE"
    client.close()
