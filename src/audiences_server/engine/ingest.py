"""Recording tracking calls: validate, normalise, store durably, report per call.

Calls wait for the writer in one shared list, and one writer job stores everything waiting when
it runs: concurrent requests (16 unary calls, a few batches) share one duplicate check, one
identity resolver and one insert, instead of paying a job each. Each request still gets its own
outcome, and a request that fails alone fails alone (see `_Waiting`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

import apsw

from audiences_server.core import json_text, tracking
from audiences_server.core.identity import ExtractedIds, extract_external_ids
from audiences_server.engine.clock import Clock
from audiences_server.engine.resolution import Resolver
from audiences_server.engine.suppression import DETAIL, REASON, Suppressions
from audiences_server.errors import FieldViolation, InvalidArgument, ResourceExhausted, Unavailable
from audiences_server.store import events
from audiences_server.store.writer import Writer, WriterClosed

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"

# Calls waiting for the writer beyond which new requests are refused (RESOURCE_EXHAUSTED over
# gRPC, 429 over HTTP): about 40 batches of 2,500 calls, a few hundred MB at the most.
MAX_WAITING_CALLS = 100_000


@dataclass(frozen=True)
class Sender:
    """Who sends calls: a space, and the source (the write token's label) the events come from."""

    space_id: int
    source_id: str = ""


@dataclass(slots=True)
class CallResult:
    """The outcome of one call of a batch (not frozen: a batch makes one per call, and a frozen
    dataclass's construction costs three times as much)."""

    index: int
    message_id: str
    status: str
    reason: str = ""
    detail: str = ""


class Stored:
    """The outcome of one request's calls, set once by the writer's thread: a thread waits for it
    with `result()`; an event loop awaits `committed()`, and a commit wakes each loop waiting on it
    once, not once per request (`settle`), which is what a loop wake-up per request cost under
    many concurrent calls. Lighter than a `concurrent.futures.Future` (no condition variable made
    per request and notified at the commit): one is made for every call of the unary RPCs."""

    __slots__ = ("_awaited", "_event", "_ok", "_value")

    def __init__(self) -> None:
        self._ok: bool | None = None  # None until settled
        self._value: Any = None
        self._awaited: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._event: threading.Event | None = None  # made only for a thread that waits

    def done(self) -> bool:
        return self._ok is not None

    def result(self, timeout: float | None = None) -> events.StoredCalls:
        """The calls' outcome, waiting for the commit (at most `timeout` seconds, if given).

        Raises:
            TimeoutError: not settled within `timeout`.
            Exception: what storing them raised (the whole request failed).
        """
        if self._ok is None:
            with _settling:
                if self._ok is None and self._event is None:
                    self._event = threading.Event()
                event = self._event
            if event is not None and not event.wait(timeout):
                raise TimeoutError("the calls are not committed yet")
        if not self._ok:
            raise self._value
        return cast(events.StoredCalls, self._value)

    def committed(self) -> asyncio.Future[None]:
        """Done, on the running loop, once the outcome is set (read it with `result()`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with _settling:
            if self._ok is None:
                self._awaited.append((loop, waiter))
                return waiter
        waiter.set_result(None)
        return waiter

    def _settle(self, ok: bool, value: Any) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]:
        """Sets the outcome (under `_settling`); returns the loops' waiters to wake."""
        self._value = value
        self._ok = ok
        if self._event is not None:
            self._event.set()
        awaited, self._awaited = self._awaited, []
        return awaited


# Setting an outcome and reading who awaits it happen together under this lock, so that a loop
# or thread that starts waiting at that moment is either listed or sees the outcome already set.
_settling = threading.Lock()


def settle(outcomes: Sequence[tuple[Stored, bool, Any]]) -> None:
    """Sets each request's outcome (a value, or an exception when not ok), then wakes each event
    loop awaiting any of them with one `call_soon_threadsafe`."""
    woken: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for stored, ok, value in outcomes:
        with _settling:
            awaited = stored._settle(ok, value)
        for loop, waiter in awaited:
            woken.setdefault(loop, []).append(waiter)
    for loop, waiters in woken.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            loop.call_soon_threadsafe(_wake, waiters)


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():  # a cancelled caller's waiter is done already
            waiter.set_result(None)


class PendingBatch:
    """A batch handed to the writer; `results()` waits for its commit."""

    def __init__(self, normalized: list[tracking.Call | tracking.Rejection],
                 stored: Stored | None, offset: int) -> None:
        self._normalized = normalized
        self._stored = stored
        self._offset = offset

    async def committed(self) -> list[CallResult]:
        """Per-call outcomes, awaited on an event loop without holding a thread."""
        if self._stored is not None and not self._stored.done():
            await self._stored.committed()
        return self.results()

    def results(self) -> list[CallResult]:
        """Per-call outcomes, once the accepted calls are committed."""
        stored = self._stored.result() if self._stored is not None else events.StoredCalls([], [])
        valid = [i for i, n in enumerate(self._normalized) if isinstance(n, tracking.Call)]
        status = {valid[i]: ACCEPTED for i in stored.accepted} | {valid[i]: DUPLICATE for i in stored.duplicates}
        status |= {valid[i]: REJECTED for i in stored.suppressed}
        return [self._result(i, item, status) for i, item in enumerate(self._normalized)]

    def _result(self, i: int, item: tracking.Call | tracking.Rejection, status: dict[int, str]) -> CallResult:
        if isinstance(item, tracking.Rejection):
            return CallResult(i + self._offset, item.message_id, REJECTED, item.reason, item.detail)
        if status[i] == REJECTED:
            return CallResult(i + self._offset, item.message_id, REJECTED, REASON, DETAIL)
        return CallResult(i + self._offset, item.message_id, status[i])


def check_batch_limits(calls: int, size_bytes: int) -> None:
    """Refuses a batch over the tracking API's limits as a whole."""
    if calls > tracking.MAX_BATCH_CALLS:
        raise InvalidArgument(
            f"the batch has {calls} calls; at most {tracking.MAX_BATCH_CALLS}",
            reason="BATCH_TOO_LARGE", violations=[FieldViolation("batch", "too many calls")],
        )
    if size_bytes > tracking.MAX_BATCH_BYTES:
        raise InvalidArgument(
            f"the batch is {size_bytes} bytes; at most {tracking.MAX_BATCH_BYTES}",
            reason="BATCH_TOO_LARGE", violations=[FieldViolation("batch", "too many bytes")],
        )


def rejection_error(rejection: tracking.Rejection) -> InvalidArgument:
    """The error a unary call returns for a refused call."""
    return InvalidArgument(
        rejection.detail, reason=rejection.reason.upper(),
        violations=[FieldViolation(rejection.field, rejection.detail)],
        metadata={"code": rejection.reason},
    )


def decode_body(body: bytes, shape: str = 'the body must be {"batch": [...]} or one call object with a `type`'
                ) -> dict[str, Any]:
    """A JSON request body, which must be an object (`shape` says which, when it is not).

    Raises:
        InvalidArgument: BAD_REQUEST, the body is not JSON (nested past the parser's depth
            included) or not an object.
    """
    try:
        try:
            decoded = json_text.loads(body)
        except ValueError as bad:
            if not too_many_digits(bad):
                raise
            # Valid JSON holding an integer longer than Python reads: read again, standing in
            # for each such integer, so that only the calls holding one are refused.
            decoded = _long_integers_refused(json.loads(body, parse_int=_integer))
    except (ValueError, UnicodeDecodeError, RecursionError) as bad:
        raise InvalidArgument(f"the body is not valid JSON: {bad}", reason="BAD_REQUEST",
                              violations=[FieldViolation("body", "not valid JSON")]) from None
    if not isinstance(decoded, dict):
        raise InvalidArgument(shape, reason="BAD_REQUEST", violations=[FieldViolation("body", "not an object")])
    return decoded


# Python refuses to read an integer of more digits than `sys.get_int_max_str_digits()` (4,300 by
# default: converting more costs time quadratic in their number); its error says this.
_TOO_MANY_DIGITS = "integer string conversion"


class _LongInteger:
    """An integer literal of more digits than Python reads, standing in for it until its call is refused."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _integer(text: str) -> int | _LongInteger:
    try:
        return int(text)
    except ValueError:
        return _LongInteger(text)


def _long_integers_refused(decoded: Any) -> Any:
    """A body read with `_integer`: each call of its batch holding a long integer replaced by its
    rejection (`bad_request`, naming the call's field).

    Raises:
        InvalidArgument: BAD_REQUEST, a long integer outside the batch's calls (in a single call's
            body, or a batch-level field): the request is the one call, or its fields apply to all.
    """
    if not isinstance(decoded, dict):
        return decoded
    batch = decoded.get("batch")
    if isinstance(batch, list):
        for i, call in enumerate(batch):
            found = _long_integer_in(call)
            if found is not None:
                key, digits = found
                message_id = call.get("messageId") if isinstance(call, dict) else None
                batch[i] = tracking.Rejection("bad_request", _long_detail(key, digits),
                                              message_id if isinstance(message_id, str) else "")
    found = _long_integer_in({key: value for key, value in decoded.items()
                              if not (key == "batch" and isinstance(value, list))})
    if found is not None:
        key, digits = found
        raise InvalidArgument(_long_detail(key, digits), reason="BAD_REQUEST",
                              violations=[FieldViolation(key, "too many digits")])
    return decoded


def long_integer_rejection(data: bytes | str) -> tracking.Rejection | None:
    """The rejection of one call's JSON text that holds an integer longer than Python reads
    (`bad_request`, naming the field), or None when it holds none (or is not JSON at all)."""
    try:
        found = _long_integer_in(json.loads(data, parse_int=_integer))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return None if found is None else tracking.Rejection("bad_request", _long_detail(*found))


def too_many_digits(error: Exception) -> bool:
    """Whether a JSON decoder's error is Python's refusal of an integer longer than it reads."""
    return _TOO_MANY_DIGITS in str(error)


def _long_detail(key: str, digits: int) -> str:
    return (f"`{key}` holds an integer of {digits:,} digits; at most {sys.get_int_max_str_digits():,} are read"
            " (send a longer number as a string)")


def _long_integer_in(value: Any) -> tuple[str, int] | None:
    """The top-level key under which a `_LongInteger` is (and its digits), if any; walked without
    recursion, as the value may be nested as deep as the parser allows."""
    if not isinstance(value, dict):
        return ("call", value.digits) if isinstance(value, _LongInteger) else None
    for key, top in value.items():
        stack = [top]
        while stack:
            item = stack.pop()
            if isinstance(item, _LongInteger):
                return str(key), item.digits
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def calls_of(decoded: dict[str, Any]) -> tuple[list[Any], tracking.BatchDefaults]:
    """The calls of a decoded body and its batch-level fields: `{"batch": [...], "context": …}`,
    or one call object with a `type`.

    Raises:
        InvalidArgument: neither shape, or a batch-level field of the wrong type.
    """
    batch = decoded.get("batch")
    if isinstance(batch, list):
        defaults = tracking.batch_defaults(decoded)
        if isinstance(defaults, tracking.Rejection):
            raise InvalidArgument(defaults.detail, reason=defaults.reason.upper(),
                                  violations=[FieldViolation(defaults.field, defaults.detail)])
        return batch, defaults
    if "type" in decoded:
        return [decoded], tracking.BatchDefaults()
    raise InvalidArgument('the body must be {"batch": [...]} or one call object with a `type`',
                          reason="BAD_REQUEST", violations=[FieldViolation("body", "no `batch` list")])


@dataclass
class _Request:
    """The valid calls of one request, waiting to be stored."""

    sender: Sender
    calls: list[tracking.Call]
    ids: list[ExtractedIds]  # each call's external ids, read before the writer's turn
    stored: Stored = field(default_factory=Stored)


class _Waiting:
    """Requests waiting for the writer, and the one writer job that will take them all.

    A job is queued when the first request arrives to an empty list; requests that arrive before
    it runs join it. It stores consecutive requests of the same sender together; should that
    fail, it stores each request in a savepoint of its own, so that only the faulty one fails
    (as when each request was a job). Results reach the requests after the commit.
    """

    def __init__(self, writer: Writer, store: Callable[[apsw.Connection, _Request], events.StoredCalls],
                 max_waiting: int) -> None:
        self._writer = writer
        self._store = store
        self._lock = threading.Lock()
        self._requests: list[_Request] = []
        self._max_waiting = max_waiting
        # Calls accepted for the writer and not yet committed: the backlog that bounds memory.
        self.waiting = 0
        self.on_commit: Callable[[], None] = lambda: None
        # Told the calls each job stored (accepted, duplicate) or dropped (suppressed), before any
        # request hears of them.
        self.on_stored: Callable[[int, int, int], None] = lambda accepted, duplicates, suppressed: None

    def add(self, request: _Request) -> Stored:
        """Queues the calls of one request; the future resolves once they are committed.

        Raises:
            WriterClosed: the writer takes no more work.
            ResourceExhausted: the writer is saturated; the request is refused whole, to retry later.
        """
        with self._lock:
            if self.waiting and self.waiting + len(request.calls) > self._max_waiting:
                raise ResourceExhausted(
                    f"the writer is saturated ({self.waiting} calls waiting to be stored); retry shortly",
                    reason="WRITER_SATURATED", metadata={"retry_after_s": "1"})
            self.waiting += len(request.calls)
            # Submitting under the lock: a request never joins a job that could not be queued.
            if not self._requests:
                taken: list[_Request] = []
                job = self._writer.submit(lambda conn: self._run(conn, taken))
                job.add_done_callback(lambda done: self._settle(done, taken))
            self._requests.append(request)
        return request.stored

    def _run(self, conn: apsw.Connection, taken: list[_Request]) -> list[tuple[bool, Any]]:
        with self._lock:
            taken.extend(self._requests)
            self._requests = []
        if len(taken) == 1:
            return [(True, self._store(conn, taken[0]))]
        conn.execute("SAVEPOINT requests")
        try:
            outcomes = [(True, stored) for stored in self._store_together(conn, taken)]
        except Exception:
            conn.execute("ROLLBACK TO requests")
            conn.execute("RELEASE requests")
            return [self._store_alone(conn, request) for request in taken]
        conn.execute("RELEASE requests")
        return outcomes

    def _store_together(self, conn: apsw.Connection, requests: list[_Request]) -> list[events.StoredCalls]:
        results: list[events.StoredCalls] = []
        start = 0
        while start < len(requests):
            end = start + 1
            while end < len(requests) and requests[end].sender == requests[start].sender:
                end += 1
            run = requests[start:end]
            together = _Request(run[0].sender, [call for request in run for call in request.calls],
                                [ids for request in run for ids in request.ids])
            stored = self._store(conn, together)
            results += _split(stored, [len(request.calls) for request in run])
            start = end
        return results

    def _store_alone(self, conn: apsw.Connection, request: _Request) -> tuple[bool, Any]:
        conn.execute("SAVEPOINT request")
        try:
            stored = self._store(conn, request)
        except Exception as failure:
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            return False, failure
        conn.execute("RELEASE request")
        return True, stored

    def _settle(self, job: Future[list[tuple[bool, Any]]], taken: list[_Request]) -> None:
        failure = job.exception()
        if failure is not None and not taken:
            # The writer's group failed before this job ran: its requests fail with it.
            with self._lock:
                taken.extend(self._requests)
                self._requests = []
        outcomes = job.result() if failure is None else [(False, failure)] * len(taken)
        with self._lock:
            self.waiting -= sum(len(request.calls) for request in taken)
        stored = [value for _, value in outcomes if isinstance(value, events.StoredCalls)]
        self.on_stored(sum(len(s.accepted) for s in stored), sum(len(s.duplicates) for s in stored),
                       sum(len(s.suppressed) for s in stored))
        settle([(request.stored, ok, value) for request, (ok, value) in zip(taken, outcomes, strict=True)])
        self.on_commit()


def _split(stored: events.StoredCalls, sizes: list[int]) -> list[events.StoredCalls]:
    """Per request, the outcome of their calls stored together (positions are per request)."""
    parts = []
    start = 0
    for size in sizes:
        end = start + size
        parts.append(events.StoredCalls(_between(stored.accepted, start, end), _between(stored.duplicates, start, end),
                                        _between(stored.suppressed, start, end)))
        start = end
    return parts


def _between(positions: list[int], start: int, end: int) -> list[int]:
    """The positions in [start, end) of an ascending list, counted from `start`."""
    return [i - start for i in positions[bisect.bisect_left(positions, start):bisect.bisect_left(positions, end)]]


class Ingest:
    """The ingest use cases."""

    def __init__(self, writer: Writer, clock: Clock, max_waiting: int = MAX_WAITING_CALLS) -> None:
        self._writer = writer
        self._clock = clock
        self.listeners: list[Callable[[], None]] = []
        # Told how many calls had each outcome (and reason), each call once: the metrics.
        self.on_messages: Callable[[str, str, int], None] = lambda outcome, reason, count: None
        # Checked in the writer job, against identifiers suppressed by profile deletions.
        self.suppressions = Suppressions()
        # Where accepted calls go instead of this database (a cluster's front appends them to the
        # log, docs/scaling.md): called in the writer job, it returns once they are durable there.
        self.elsewhere: Callable[[Sender, list[tracking.Call]], None] | None = None
        self._waiting = _Waiting(writer, self._store, max_waiting)
        self._waiting.on_commit = self._notify
        self._waiting.on_stored = self._count_stored

    def submit(self, sender: Sender, raws: Sequence[Any], defaults: tracking.BatchDefaults | None = None,
               offset: int = 0) -> PendingBatch:
        """Validates calls and queues the valid ones for the writer without waiting."""
        received_ms = self._clock.now_ms()
        return self._queue(sender, [tracking.normalize(raw, received_ms, defaults) for raw in raws], offset)

    def submit_json(self, sender: Sender, body: bytes) -> PendingBatch:
        """Queues the calls of a JSON body: `{"batch": [...]}` with batch-level defaults, or one call.

        Raises:
            InvalidArgument: the body is not JSON of either shape, or the batch is over its limits.
        """
        check_batch_limits(0, len(body))  # before decoding, which makes three times its size
        calls, defaults = calls_of(decode_body(body))
        check_batch_limits(len(calls), len(body))
        return self.submit(sender, calls, defaults)

    def _queue(self, sender: Sender, normalized: list[tracking.Call | tracking.Rejection], offset: int) -> PendingBatch:
        valid = [n for n in normalized if isinstance(n, tracking.Call)]
        future = None
        if valid:
            try:
                # Reading ids here, in the request's thread, shortens the writer's serial work.
                ids = [extract_external_ids(call.message) for call in valid]
                future = self._waiting.add(_Request(sender, valid, ids))
            except WriterClosed:
                raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN") from None
        if len(valid) < len(normalized):
            # Counted once the request is taken: a request refused whole has no per-call outcome.
            reasons = Counter(n.reason for n in normalized if isinstance(n, tracking.Rejection))
            for reason, count in reasons.items():
                self.on_messages(REJECTED, reason, count)
        return PendingBatch(normalized, future, offset)

    def record(self, sender: Sender, raws: Sequence[Any],
               defaults: tracking.BatchDefaults | None = None) -> list[CallResult]:
        """Records a batch and returns once the accepted calls are durable."""
        return self.submit(sender, raws, defaults).results()

    def record_one(self, sender: Sender, raw: dict[str, Any]) -> CallResult:
        """Records one call; a refused call is an INVALID_ARGUMENT error."""
        return self.submit_one(sender, raw).results()[0]

    def submit_one(self, sender: Sender, raw: dict[str, Any]) -> PendingBatch:
        """Validates one call and queues it; a refused call is an INVALID_ARGUMENT error."""
        call = tracking.normalize(raw, self._clock.now_ms())
        if isinstance(call, tracking.Rejection):
            self.on_messages(REJECTED, call.reason, 1)
            raise rejection_error(call)
        return self._queue(sender, [call], 0)

    @property
    def waiting(self) -> int:
        """Calls accepted and not yet committed."""
        return self._waiting.waiting

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _count_stored(self, accepted: int, duplicates: int, suppressed: int) -> None:
        if accepted:
            self.on_messages(ACCEPTED, "", accepted)
        if duplicates:
            self.on_messages(DUPLICATE, "", duplicates)
        if suppressed:
            self.on_messages(REJECTED, REASON, suppressed)

    def _store(self, conn: apsw.Connection, request: _Request) -> events.StoredCalls:
        if self.elsewhere is not None:
            self.elsewhere(request.sender, request.calls)  # duplicates are found where they are stored
            return events.StoredCalls(list(range(len(request.calls))), [])
        # Identity resolution joins this transaction, so a read after the RPC sees its profile.
        sender, calls = request.sender, request.calls
        split = _without(self.suppressions.held(conn, sender.space_id, calls, request.ids),
                         lambda kept: events.split_duplicates(conn, sender.space_id, [calls[i] for i in kept]),
                         len(calls))
        accepted = [calls[i] for i in split.accepted]
        first_seq = events.next_seq(conn)
        resolver = Resolver(conn, sender.space_id, self._clock.now_ms())
        profile_ids = resolver.resolve_all(accepted, first_seq, [request.ids[i] for i in split.accepted])
        events.insert_calls(conn, sender.space_id, accepted, profile_ids, first_seq, sender.source_id)
        resolver.finish()
        return split


def _without(held: list[int], split: Callable[[list[int]], events.StoredCalls], count: int) -> events.StoredCalls:
    """`split` of the calls not held back, its positions counted among all `count` calls, and
    those held back as suppressed."""
    if not held:
        return split(list(range(count)))
    dropped = set(held)
    kept = [i for i in range(count) if i not in dropped]
    found = split(kept)
    return events.StoredCalls([kept[i] for i in found.accepted], [kept[i] for i in found.duplicates], held)
