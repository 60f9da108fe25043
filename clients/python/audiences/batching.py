"""The in-process send queue: tracking calls are batched and sent by background threads.

Each call is encoded to JSON (UTF-8, as the server measures it) when it is queued, so a value
JSON cannot hold (NaN, an infinity, an object of another type) fails in the caller's thread with
`InvalidArgument`, and given a `messageId`, which makes retries safe: the server stores a
`messageId` once. Sender threads take up to `batch_size` calls, or what arrived within
`flush_interval`, and send them with one `BatchJson` call (kept under the server's 500 KB and
2,500-call limits), its `sentAt` set at each attempt. A batch that fails with UNAVAILABLE,
DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED is retried with exponential backoff and jitter (waits of
`backoff` doubled each time, at most `max_backoff`, shortened by a random 0–50 %); after
`max_retries` its calls are reported as undelivered. With the defaults (6, 0.2 s, 5 s) that rides
out about 6 to 11 s of downtime (`retry_budget`), less than a server restart may take: raise
`max_retries` for that. Every call not stored reaches `on_error`; one that raises is logged and
the queue goes on.

`flush()` waits for the calls queued before it was called; `close()` first refuses new calls
(CLIENT_CLOSED), then waits for the rest, and when its `timeout` passes gives up what is left,
reporting each such call to `on_error` with the reason `CLIENT_CLOSED`.

Memory is bounded: the queue holds at most `max_queue_size` calls of at most 32 KB each. When it
is full, `on_overflow` decides:

- `"block"` (default): the caller waits for room. Senders always make room eventually, since a
  batch either succeeds or is given up after its retries.
- `"drop_newest"`: the new call is dropped, counted in `stats.dropped`, reported to `on_error`
  and logged; the caller goes on.
- `"raise"`: the caller gets `audiences.QueueFull` (an `AudiencesError`, RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import json
import logging
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

from audiences.errors import AudiencesError, InvalidArgument, QueueFull, closed_error
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
    """Running counts of the queue, safe to read at any time (every change is made under a lock,
    so counts from several caller and sender threads add up)."""

    queued: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0
    retries: int = 0
    last_error: AudiencesError | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # not a field: asdict() and copies see only the counts

    def add(self, **counts: int) -> None:
        """Adds to the named counts, atomically."""
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


Sender = Callable[[bytes], ingest_pb2.BatchJsonResponse]


class _Abandoned(Exception):
    """Raised in a sender thread when close() gave up on the batch it holds."""


class Batcher:
    """A bounded queue of encoded calls and the threads that send it in batches.

    Every call gets a sequence number when it is accepted; `flush` waits until every call up to
    the last number given out when it was called is settled (so callers that keep tracking in
    other threads do not hold it up), and `close` first stops accepting calls, then flushes.
    """

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
                An exception it raises is logged and does not stop the queue.

        Raises:
            InvalidArgument: an option out of range (`QUEUE_OPTION_INVALID`).
        """
        check_options(on_overflow, batch_size, max_queue_size, max_retries, backoff, max_backoff, threads)
        self._send, self.batch_size, self.flush_interval = send, batch_size, flush_interval
        self.max_queue_size, self.on_overflow = max_queue_size, on_overflow
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self._on_error = on_error or _log_undelivered
        self._queue: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=max_queue_size)
        self._done = threading.Condition()  # guards the sequence numbers below and _closed
        self._issued = 0  # the last sequence number given out
        self._unsettled: collections.deque[int] = collections.deque()  # numbers given out, in order
        self._settled_early: set[int] = set()  # settled while an older number is not
        self._urgent = 0  # flushes waiting: senders do not wait for batches to fill
        self._closed = False
        self._stopping = threading.Event()  # senders exit once the queue is empty
        self._abandon = threading.Event()  # close() gave up: senders report what they hold
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
            InvalidArgument: the call is over 32 KB of JSON (MESSAGE_TOO_LARGE), or holds a value
                JSON cannot (`VALUE_NOT_JSON`) or a string UTF-8 cannot (`STRING_NOT_ENCODABLE`).
            AudiencesError: the queue is closed (CLIENT_CLOSED), or it is full with the `raise`
                policy (QueueFull).
        """
        encoded = encode(message)
        with self._done:
            if self._closed:
                raise closed_error()
            self._issued += 1
            seq = self._issued
            self._unsettled.append(seq)
        # A sender thread (an `on_error` queueing a call again) cannot wait for room only the
        # senders make, and a drop would be reported to that same `on_error`: it is refused.
        sender = threading.current_thread() in self._threads
        try:
            if self.on_overflow == "block" and not sender:
                self._put_waiting((seq, encoded))
            else:
                self._queue.put_nowait((seq, encoded))
        except queue.Full:
            self._settle([seq])
            if self.on_overflow == "raise" or sender:
                raise QueueFull(self.max_queue_size) from None
            self.stats.add(dropped=1)
            self._report(Undelivered(dict(message), "dropped", "the send queue was full"))
            return False
        except BaseException:
            self._settle([seq])
            raise
        self.stats.add(queued=1)
        if self._abandon.is_set():  # close() gave up while this call waited for room
            self._drain_abandoned()
        return True

    def _put_waiting(self, item: tuple[int, bytes]) -> None:
        """Waits for room; a close() that gives up meanwhile refuses the call (CLIENT_CLOSED)."""
        while True:
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if self._abandon.is_set():
                    raise closed_error() from None

    def flush(self, timeout: float | None = None) -> bool:
        """Sends everything queued so far without waiting for batches to fill.

        Waits for the calls queued before this call (not for those other threads queue
        meanwhile).

        Returns:
            True when every such call was settled (stored, rejected or given up) in time.
        """
        with self._done:
            mark = self._issued
        return self._wait_for(mark, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stops accepting calls (later `put` calls fail with CLIENT_CLOSED), sends what is
        queued, then stops the sender threads.

        When `timeout` passes first, every call not settled by then is given up: reported to
        `on_error` with the reason `CLIENT_CLOSED` (and counted in `stats.failed`), except those
        in a batch being sent at that moment, which settle when that call ends.

        Returns:
            True when everything was settled in time.
        """
        with self._done:
            if self._closed:
                return True
            self._closed = True
            mark = self._issued
        settled = self._wait_for(mark, timeout)
        if not settled:
            self._abandon.set()
            self._drain_abandoned()
        self._stopping.set()
        if settled:
            for thread in self._threads:
                thread.join(timeout)
        return settled

    def join(self, timeout: float) -> bool:
        """Waits up to `timeout` seconds for the sender threads to end; True when they did."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def pending(self) -> int:
        """Calls queued or in flight."""
        with self._done:
            return len(self._unsettled) - len(self._settled_early)

    def _wait_for(self, mark: int, timeout: float | None) -> bool:
        """Waits until every call numbered up to `mark` is settled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            self._urgent += 1
        try:
            with self._done:
                while self._unsettled and self._unsettled[0] <= mark:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._done.wait(remaining if remaining is not None else 1.0)
            return True
        finally:
            with self._done:
                self._urgent -= 1

    # -- the senders' side ------------------------------------------------------------------

    def _run(self) -> None:
        carry: tuple[int, bytes] | None = None
        while True:
            if carry is not None:
                first, carry = carry, None
            else:
                try:
                    first = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if self._stopping.is_set():
                        return
                    continue
            batch, carry = self._fill(first)
            try:
                self._deliver(batch)
            except Exception:  # never let one batch stop the sender
                log.exception("audiences sender: a batch failed unexpectedly")

    def _fill(self, first: tuple[int, bytes]) -> tuple[list[tuple[int, bytes]], tuple[int, bytes] | None]:
        """Gathers a batch: up to batch_size calls and MAX_BATCH_BYTES, or what came in time."""
        batch, size = [first], len(first[1])
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            hurry = self._urgent > 0 or self._stopping.is_set()
            wait = 0.0 if hurry else min(deadline - time.monotonic(), 0.05)
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                if self._urgent > 0 or self._stopping.is_set() or time.monotonic() >= deadline:
                    break
                continue
            if size + len(item[1]) + 1 > MAX_BATCH_BYTES:
                return batch, item
            batch.append(item)
            size += len(item[1]) + 1
        return batch, None

    def _deliver(self, batch: list[tuple[int, bytes]]) -> None:
        calls = [data for _, data in batch]
        try:
            if self._abandon.is_set():
                raise _Abandoned
            reply = self._send_with_retries(calls)
        except _Abandoned:
            self._give_up(calls, self.stats.last_error)
        except Exception as caught:
            error = caught if isinstance(caught, AudiencesError) else _unexpected(caught)
            if self._abandon.is_set():
                self._give_up(calls, error)
            else:
                self.stats.add(failed=len(calls))
                self.stats.last_error = error
                for item in calls:
                    self._report(Undelivered(json.loads(item), error.reason or error.code.name, error.message, error))
        else:
            self._count(reply, calls)
        finally:
            self.stats.add(batches=1)
            self._settle([seq for seq, _ in batch])

    def _send_with_retries(self, calls: list[bytes]) -> ingest_pb2.BatchJsonResponse:
        attempt = 0
        while True:
            try:
                # `sentAt` is the time of this attempt: the server corrects each call's
                # `originalTimestamp` with it, so a stale one would move events by the wait.
                return self._send(batch_body(calls))
            except AudiencesError as error:
                if error.code not in RETRYABLE or attempt >= self.max_retries or self._abandon.is_set():
                    raise
                wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                self.stats.add(retries=1)
                self.stats.last_error = error
                log.info("audiences batch retry %d in %.2fs after %s", attempt, wait, error.code.name)
                if self._abandon.wait(wait):
                    raise

    def _count(self, reply: ingest_pb2.BatchJsonResponse, batch: list[bytes]) -> None:
        self.stats.add(
            accepted=reply.accepted_count, duplicate=reply.duplicate_count, rejected=reply.rejected_count
        )
        for result in reply.results:
            if result.status == ingest_pb2.MESSAGE_STATUS_REJECTED:
                self._report(Undelivered(json.loads(batch[result.index]), result.reason, result.detail))

    def _give_up(self, calls: list[bytes], error: AudiencesError | None) -> None:
        """Reports calls close() gave up on before they were stored."""
        detail = "the client was closed before the call was sent"
        if error is not None:
            detail += f" (the last try failed: {error})"
        self.stats.add(failed=len(calls))
        for item in calls:
            self._report(Undelivered(json.loads(item), "CLIENT_CLOSED", detail, error))

    def _drain_abandoned(self) -> None:
        """Takes every call still queued and gives it up (after close() timed out)."""
        taken: list[tuple[int, bytes]] = []
        while True:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if taken:
            try:
                self._give_up([data for _, data in taken], self.stats.last_error)
            finally:
                self._settle([seq for seq, _ in taken])

    def _report(self, undelivered: Undelivered) -> None:
        """Calls on_error; an exception it raises is logged, and the queue goes on."""
        try:
            self._on_error(undelivered)
        except Exception:
            log.exception("audiences: on_error raised; the queue goes on")

    def _settle(self, seqs: list[int]) -> None:
        with self._done:
            self._settled_early.update(seqs)
            while self._unsettled and self._unsettled[0] in self._settled_early:
                self._settled_early.discard(self._unsettled.popleft())
            self._done.notify_all()


def check_options(
    on_overflow: str, batch_size: int, max_queue_size: int, max_retries: int, backoff: float, max_backoff: float,
    threads: int,
) -> None:
    """Refuses queue options out of range, with `InvalidArgument` `QUEUE_OPTION_INVALID`."""
    problems = [
        (on_overflow not in ("block", "drop_newest", "raise"),
         "on_overflow", f"on_overflow must be block, drop_newest or raise, not {on_overflow!r}"),
        (not 1 <= batch_size <= MAX_BATCH_CALLS, "batch_size", f"batch_size must be 1 to {MAX_BATCH_CALLS}"),
        (not max_queue_size >= 1, "max_queue_size", "max_queue_size must be at least 1"),
        (not max_retries >= 0, "max_retries", "max_retries must be 0 or more"),
        (not 0 <= backoff <= max_backoff, "backoff", "the retry backoff must be from 0 to its maximum"),
        (not threads >= 1, "send_threads", "send_threads must be at least 1"),
    ]
    for bad, option, message in problems:
        if bad:
            raise InvalidArgument(message, "QUEUE_OPTION_INVALID", {"option": option})


def batch_body(calls: list[bytes]) -> bytes:
    """The `BatchJson` body of encoded calls, with `sentAt` now."""
    return b'{"batch":[' + b",".join(calls) + b'],"sentAt":"' + now_iso().encode() + b'"}'


def retry_budget(max_retries: int, backoff: float, max_backoff: float) -> tuple[float, float]:
    """The least and most seconds a batch waits between its tries before it is given up (the
    downtime the queue rides out, besides the tries themselves): with the defaults about 5.6 to 11.2."""
    total = sum(min(max_backoff, backoff * 2**attempt) for attempt in range(max_retries))
    return total / 2, total


def _unexpected(error: Exception) -> AudiencesError:
    """An error that is not an AudiencesError (a closed channel's ValueError, …) as one."""
    return AudiencesError(grpc.StatusCode.UNKNOWN, f"{type(error).__name__}: {error}", reason="SEND_FAILED")


# A Decimal is first written as a string starting with NUL and a nonce (JSON writes NUL as
# `\u0000`, so no text the caller gave can end up as the same characters), then unquoted.
_DECIMAL_PREFIX = f"\x00dec{uuid.uuid4().hex}:"
_DECIMAL_MARK = json.dumps(_DECIMAL_PREFIX)[1:-1]
_DECIMAL_TEXT = re.compile('"' + re.escape(_DECIMAL_MARK) + '([^"]*)"')


def dumps(value: Any, *, ensure_ascii: bool = False, allow_nan: bool = False) -> str:
    """Compact JSON: datetimes as ISO-8601 text, decimals as numbers with their exact decimal text
    (`Decimal("10")` is the integer 10, `Decimal("0.10")` is 0.10), sets and tuples as lists.

    Raises:
        ValueError: NaN or an infinity (with `allow_nan` False; a Decimal one always), a
            circular reference.
        TypeError: a value of another type.
    """
    text = json.dumps(value, separators=(",", ":"), default=json_default, allow_nan=allow_nan,
                      ensure_ascii=ensure_ascii)
    return _DECIMAL_TEXT.sub(r"\1", text) if _DECIMAL_MARK in text else text


def encode_batch(body: Mapping[str, Any]) -> bytes:
    """A `BatchJson` body for `send_batch`: as the caller gave it (NaN and lone surrogates are
    sent, escaped, for the server to refuse per call).

    Raises:
        InvalidArgument: `VALUE_NOT_JSON` for a value of a type JSON cannot hold.
    """
    try:
        return dumps(body, ensure_ascii=True, allow_nan=True).encode()
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"the batch cannot be sent as JSON: {error}", "VALUE_NOT_JSON") from None


def encode(message: Mapping[str, Any]) -> bytes:
    """One call as compact JSON in UTF-8 (as the server measures it); datetimes become ISO-8601.

    Raises:
        InvalidArgument: `MESSAGE_TOO_LARGE` over 32 KB of UTF-8; `VALUE_NOT_JSON` for a value
            JSON cannot hold (NaN, an infinity, an object of another type, a circular
            reference); `STRING_NOT_ENCODABLE` for a string UTF-8 cannot hold (a lone surrogate).
    """
    try:
        encoded = dumps(message).encode()
    except UnicodeEncodeError as error:
        raise _unencodable(error) from None
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"the call cannot be sent as JSON: {error}", "VALUE_NOT_JSON") from None
    if len(encoded) > MAX_MESSAGE_BYTES:
        raise InvalidArgument(
            f"the call is {len(encoded)} bytes of JSON (UTF-8); the most is {MAX_MESSAGE_BYTES}",
            "MESSAGE_TOO_LARGE",
            {"code": "message_too_large"},
        )
    return encoded


def _unencodable(error: UnicodeEncodeError) -> InvalidArgument:
    return InvalidArgument(
        f"the call holds {error.object[error.start:error.end]!r}, which UTF-8 cannot encode ({error.reason}); "
        "the server would refuse it",
        "STRING_NOT_ENCODABLE",
        {"position": str(error.start)},
    )


def json_default(value: Any) -> Any:
    """`json.dumps` default: datetimes and dates as ISO-8601, decimals as numbers (exactly, when
    written by `dumps`), sets as lists."""
    if isinstance(value, dt.datetime | dt.date):
        return iso_time(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"Decimal {value} is not a JSON number")
        return _DECIMAL_PREFIX + str(value)
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
