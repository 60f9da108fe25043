"""The in-process send queue: tracking calls are batched and sent by background threads.

Each call is encoded to JSON when it is queued (so a value JSON cannot hold fails in the
caller's thread) and given a `messageId`, which makes retries safe: the server stores a
`messageId` once. Sender threads take up to `batch_size` calls, or what arrived within
`flush_interval`, and send them with one `BatchJson` call (kept under the server's 500 KB and
2,500-call limits). A batch that fails with UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED
is retried with exponential backoff; after `max_retries` its calls are reported as undelivered.

Memory is bounded: the queue holds at most `max_queue_size` calls of at most 32 KB each. When it
is full, `on_overflow` decides:

- `"block"` (default): the caller waits for room. Senders always make room eventually, since a
  batch either succeeds or is given up after its retries.
- `"drop_newest"`: the new call is dropped, counted in `stats.dropped`, reported to `on_error`
  and logged; the caller goes on.
- `"raise"`: the caller gets `audiences.QueueFull` (an `AudiencesError`, RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

from audiences.errors import AudiencesError, QueueFull
from audiences.messages import iso_time, now_iso
from audiences.v1 import ingest_pb2

__all__ = ["MAX_BATCH_BYTES", "MAX_MESSAGE_BYTES", "BatchStats", "Batcher", "OverflowPolicy", "Undelivered"]

OverflowPolicy = Literal["block", "drop_newest", "raise"]
MAX_MESSAGE_BYTES = 32 * 1024
# The server refuses batches over 500 KB; leave room for the `{"batch": [...], "sentAt": ...}` frame.
MAX_BATCH_BYTES = 480 * 1024
MAX_BATCH_CALLS = 2500
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)

log = logging.getLogger("audiences")
_STOP = b""


@dataclass(frozen=True)
class Undelivered:
    """A queued call the server did not store.

    Attributes:
        message: The call as it was queued (tracking-API JSON shape).
        reason: The server's rejection code (`no_user_anon_id`, …), or for a failed batch the
            error's reason or code name (`UNAVAILABLE`, `SCOPE_MISSING`), or `dropped`.
        detail: A sentence saying what went wrong.
        error: For a batch that failed as a whole, the error; else None.
    """

    message: dict[str, Any]
    reason: str
    detail: str
    error: AudiencesError | None = None


@dataclass
class BatchStats:
    """Running counts of the queue, safe to read at any time."""

    queued: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0
    retries: int = 0
    last_error: AudiencesError | None = field(default=None, repr=False)


Sender = Callable[[bytes], ingest_pb2.BatchJsonResponse]


class Batcher:
    """A bounded queue of encoded calls and the threads that send it in batches."""

    def __init__(
        self,
        send: Sender,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        on_overflow: OverflowPolicy = "block",
        max_retries: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        threads: int = 1,
        on_error: Callable[[Undelivered], None] | None = None,
    ) -> None:
        """Starts the sender threads.

        Args:
            send: Sends one `BatchJson` body; raises AudiencesError when the call fails.
            batch_size: The most calls per batch (at most 2,500).
            flush_interval: The longest, in seconds, a call waits for its batch to fill.
            max_queue_size: The most calls held in memory, waiting to be sent.
            on_overflow: What `put` does when the queue is full: see the module's docstring.
            max_retries: Retries of a batch that failed with a retryable code.
            backoff: The first wait before a retry, in seconds, doubled at each next one.
            max_backoff: The longest wait between two tries.
            threads: Sender threads; more than one sends batches concurrently.
            on_error: Called (in a sender thread) for each call the server did not store, and
                (in the caller's thread) for each call dropped on overflow. Default: log it.
        """
        if on_overflow not in ("block", "drop_newest", "raise"):
            raise ValueError(f"on_overflow must be block, drop_newest or raise, not {on_overflow!r}")
        if not 1 <= batch_size <= MAX_BATCH_CALLS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_CALLS}")
        self._send, self.batch_size, self.flush_interval = send, batch_size, flush_interval
        self.max_queue_size, self.on_overflow = max_queue_size, on_overflow
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._on_error = on_error or _log_undelivered
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=max_queue_size)
        self._pending = 0  # queued or in flight
        self._done = threading.Condition()
        self._urgent = threading.Event()
        self._closed = False
        self.stats = BatchStats()
        self._threads = [
            threading.Thread(target=self._run, name=f"audiences-sender-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    # -- the caller's side ------------------------------------------------------------------

    def put(self, message: Mapping[str, Any]) -> bool:
        """Queues one call; returns False when it was dropped on overflow.

        Raises:
            AudiencesError: the call is over 32 KB of JSON (MESSAGE_TOO_LARGE), the queue is
                closed (CLIENT_CLOSED), or it is full with the `raise` policy (QueueFull).
            TypeError: a value cannot be encoded as JSON.
        """
        encoded = encode(message)
        if self._closed:
            raise AudiencesError(grpc.StatusCode.FAILED_PRECONDITION, "the client is closed", reason="CLIENT_CLOSED")
        with self._done:
            self._pending += 1
        try:
            self._queue.put(encoded, block=self.on_overflow == "block")
        except queue.Full:
            self._finished(1)
            if self.on_overflow == "raise":
                raise QueueFull(self.max_queue_size) from None
            self.stats.dropped += 1
            self._on_error(Undelivered(dict(message), "dropped", "the send queue was full"))
            return False
        self.stats.queued += 1
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Sends everything queued so far without waiting for batches to fill.

        Returns:
            True when every call was settled (stored, rejected or given up) in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._urgent.set()
        try:
            with self._done:
                while self._pending:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._done.wait(remaining if remaining is not None else 1.0)
            return True
        finally:
            self._urgent.clear()

    def close(self, timeout: float | None = None) -> bool:
        """Flushes, then stops the sender threads. Later `put` calls fail with CLIENT_CLOSED.

        Returns:
            True when everything was settled in time.
        """
        if self._closed:
            return True
        settled = self.flush(timeout)
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        return settled

    @property
    def pending(self) -> int:
        """Calls queued or in flight."""
        return self._pending

    # -- the senders' side ------------------------------------------------------------------

    def _run(self) -> None:
        carry: bytes | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            if first == _STOP:
                return
            batch, carry, stop = self._fill(first)
            self._deliver(batch)
            if stop:
                return

    def _fill(self, first: bytes) -> tuple[list[bytes], bytes | None, bool]:
        """Gathers a batch: up to batch_size calls and MAX_BATCH_BYTES, or what came in time."""
        batch, size = [first], len(first)
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            wait = 0.0 if self._urgent.is_set() else min(deadline - time.monotonic(), 0.05)
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                if self._urgent.is_set() or time.monotonic() >= deadline:
                    break
                continue
            if item == _STOP:
                return batch, None, True
            if size + len(item) + 1 > MAX_BATCH_BYTES:
                return batch, item, False
            batch.append(item)
            size += len(item) + 1
        return batch, None, False

    def _deliver(self, batch: list[bytes]) -> None:
        body = b'{"batch":[' + b",".join(batch) + b'],"sentAt":"' + now_iso().encode() + b'"}'
        try:
            reply = self._send_with_retries(body)
        except AudiencesError as error:
            self.stats.failed += len(batch)
            self.stats.last_error = error
            for item in batch:
                self._on_error(Undelivered(json.loads(item), error.reason or error.code.name, error.message, error))
        else:
            self._count(reply, batch)
        finally:
            self.stats.batches += 1
            self._finished(len(batch))

    def _send_with_retries(self, body: bytes) -> ingest_pb2.BatchJsonResponse:
        attempt = 0
        while True:
            try:
                return self._send(body)
            except AudiencesError as error:
                if error.code not in RETRYABLE or attempt >= self.max_retries:
                    raise
                wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                self.stats.retries += 1
                log.info("audiences batch retry %d in %.2fs after %s", attempt, wait, error.code.name)
                time.sleep(wait)

    def _count(self, reply: ingest_pb2.BatchJsonResponse, batch: list[bytes]) -> None:
        self.stats.accepted += reply.accepted_count
        self.stats.duplicate += reply.duplicate_count
        self.stats.rejected += reply.rejected_count
        for result in reply.results:
            if result.status == ingest_pb2.MESSAGE_STATUS_REJECTED:
                self._on_error(Undelivered(json.loads(batch[result.index]), result.reason, result.detail))

    def _finished(self, count: int) -> None:
        with self._done:
            self._pending -= count
            if not self._pending:
                self._done.notify_all()


def encode(message: Mapping[str, Any]) -> bytes:
    """One call as compact JSON; datetimes become ISO-8601 text.

    Raises:
        AudiencesError: INVALID_ARGUMENT `MESSAGE_TOO_LARGE` over 32 KB.
    """
    encoded = json.dumps(message, separators=(",", ":"), default=json_default, allow_nan=False).encode()
    if len(encoded) > MAX_MESSAGE_BYTES:
        raise AudiencesError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the call is {len(encoded)} bytes of JSON; the most is {MAX_MESSAGE_BYTES}",
            reason="MESSAGE_TOO_LARGE",
            metadata={"code": "message_too_large"},
        )
    return encoded


def json_default(value: Any) -> Any:
    """`json.dumps` default: datetimes and dates as ISO-8601, decimals as numbers, sets as lists."""
    if isinstance(value, dt.datetime | dt.date):
        return iso_time(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} values cannot be sent as JSON")


def _log_undelivered(undelivered: Undelivered) -> None:
    log.warning(
        "audiences call not stored (%s): %s; messageId %s",
        undelivered.reason,
        undelivered.detail,
        undelivered.message.get("messageId"),
    )
