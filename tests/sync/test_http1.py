"""The EVENT-style webhook's HTTP/1.1 client (engine.destinations.http1) against a raw TCP
receiver that answers with scripted bytes: keep-alive, framing, interim answers, timeouts and a
receiver closing an idle connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import pytest

from audiences_server.engine.destinations.base import Outcome
from audiences_server.engine.destinations.http1 import LoopPoster
from audiences_server.engine.destinations.loop import IoLoop

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
# Answers to one request, given its index among all the requests received: bytes to send, or
# None to send nothing; after sending, "close" closes the connection.
Script = Callable[[int], tuple[bytes | None, bool]]


@dataclass
class RawReceiver:
    """A TCP server reading HTTP/1.1 requests (headers and a Content-Length body) and answering
    each as the script says."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        self._socket = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return int(self._socket.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                with self.lock:
                    index = len(self.requests)
                    self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                answer, close = self.script(index)
                if answer is not None:
                    conn.sendall(answer)
                if close:
                    return

    def stop(self) -> None:
        self._socket.close()


@pytest.fixture
def io() -> Iterator[IoLoop]:
    loop = IoLoop("test-io")
    yield loop
    loop.close()


def _poster(io: IoLoop, port: int, timeout_s: float = 2, connections: int = 1) -> LoopPoster:
    return LoopPoster(io.loop, f"http://127.0.0.1:{port}/in?x=1", timeout_s, connections, {"X-Team": "growth"})


def _post(io: IoLoop, poster: LoopPoster, body: bytes = b'{"a":1}', headers: bytes = b"") -> Future[Outcome]:
    answer: Future[Outcome] = Future()
    io.call_soon(poster.post, poster.request(body, headers), answer.set_result)
    return answer


def test_requests_share_a_kept_alive_connection(io: IoLoop) -> None:
    """Three requests one after another go out on one connection, each framed by its length,
    with the configured and the request's own headers."""
    receiver = RawReceiver(lambda i: (OK, False))
    poster = _poster(io, receiver.start())
    for _ in range(3):
        assert _post(io, poster, headers=b"webhook-id: m1\r\n").result(5) == Outcome(ok=True)
    assert receiver.connections == 1
    first = receiver.requests[0]
    assert first.startswith(b"POST /in?x=1 HTTP/1.1\r\n")
    assert b"\r\nX-Team: growth\r\n" in first
    assert b"\r\nwebhook-id: m1\r\n" in first
    assert first.endswith(b"Content-Length: 7\r\n\r\n{\"a\":1}")
    receiver.stop()


@pytest.mark.parametrize(("answer", "expected"), [
    (b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 2\r\n\r\n5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n",
     Outcome(False, True, "HTTP 503: slow down", 2000)),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone", Outcome(False, False, "HTTP 404: gone")),
    (b"HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\nRetry-After: 0.5\r\n\r\n", Outcome(False, True, "HTTP 429:", 500)),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", Outcome(ok=True)),
    (b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", Outcome(False, False, "HTTP 301:")),
])
def test_answers_are_classified(io: IoLoop, answer: bytes, expected: Outcome) -> None:
    """Chunked and sized bodies, Retry-After, an interim 100 before the answer, a redirect
    (not followed): 2xx delivered, 408/429/5xx retried, any other status parked."""
    receiver = RawReceiver(lambda i: (answer, False))
    poster = _poster(io, receiver.start())
    assert _post(io, poster).result(5) == expected
    assert _post(io, poster).result(5) == expected  # the connection is still usable
    assert receiver.connections == 1
    receiver.stop()


def test_an_answer_ended_by_closing_the_connection(io: IoLoop) -> None:
    """An HTTP/1.0 answer with no length ends when the receiver closes; the next request opens
    a new connection."""
    receiver = RawReceiver(lambda i: (b"HTTP/1.0 200 OK\r\n\r\naccepted", True))
    poster = _poster(io, receiver.start())
    assert _post(io, poster).result(5) == Outcome(ok=True)
    assert _post(io, poster).result(5) == Outcome(ok=True)
    assert receiver.connections == 2
    receiver.stop()


def test_a_request_is_written_again_when_an_idle_connection_was_closed(io: IoLoop) -> None:
    """The receiver closes a kept-alive connection as the next request arrives, without an
    answer: the request is written once more on a new connection and delivered."""
    receiver = RawReceiver(lambda i: (None, True) if i == 1 else (OK, False))
    poster = _poster(io, receiver.start())
    assert _post(io, poster).result(5) == Outcome(ok=True)
    assert _post(io, poster).result(5) == Outcome(ok=True)
    assert len(receiver.requests) == 3
    assert receiver.connections == 2
    receiver.stop()


def test_no_answer_within_the_timeout_is_retried(io: IoLoop) -> None:
    """A receiver that never answers costs the request timeout, then a retried network error."""
    receiver = RawReceiver(lambda i: (None, False))
    poster = _poster(io, receiver.start(), timeout_s=0.2)
    outcome = _post(io, poster).result(5)
    assert (outcome.ok, outcome.retry) == (False, True)
    assert outcome.error.startswith("network error: ReadTimeout")
    assert len(receiver.requests) == 1  # not written again: the receiver may still process it
    receiver.stop()


def test_a_refused_connection_is_retried(io: IoLoop) -> None:
    """Nobody listening: a retried network error naming the connection failure."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    outcome = _post(io, _poster(io, port)).result(5)
    assert (outcome.ok, outcome.retry) == (False, True)
    assert outcome.error.startswith("network error: ConnectError")


def test_requests_beyond_the_pool_wait_for_a_connection(io: IoLoop) -> None:
    """Eight requests at once on a pool of two connections: all delivered, on two connections."""
    receiver = RawReceiver(lambda i: (OK, False))
    poster = _poster(io, receiver.start(), connections=2)
    answers = [_post(io, poster) for _ in range(8)]
    assert [a.result(5) for a in answers] == [Outcome(ok=True)] * 8
    assert receiver.connections == 2
    receiver.stop()


def test_requests_of_a_closed_client_are_not_answered(io: IoLoop) -> None:
    """Closing abandons what is in flight: no outcome is told (it is sent again after a restart)."""
    receiver = RawReceiver(lambda i: (None, False))
    poster = _poster(io, receiver.start())
    answer = _post(io, poster)
    threading.Event().wait(0.2)
    io.call_soon(poster.close)
    with pytest.raises(TimeoutError):
        answer.result(0.5)
    receiver.stop()
