"""Delivery: one background thread per destination.

Each worker turns new change records into its connections' queues (a short writer job), then,
for webhook and Segment destinations, sends what is due over HTTP outside any transaction and
records the outcome in another short writer job. A slow or failing destination only delays its
own thread; ingestion and the evaluator never wait on HTTP. Progress (cursors, queues, attempts,
dead letters) is in SQLite, and each delivery's outcome is committed as soon as its request is
answered, so a restart resumes where the last commit left off: only a request in flight when the
process died is sent again, with the same `messageId`.

Timing uses the wall clock even when the evaluator runs on a manual clock: retries are real
waits on a real network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import apsw
import structlog

from audiences_server.core.tracking import format_time
from audiences_server.engine.sync.payloads import calls_for
from audiences_server.engine.sync.queueing import Queueing
from audiences_server.engine.sync.transport import Outcome, backoff_ms, post, segment_request, webhook_request
from audiences_server.store import sync as store
from audiences_server.store.db import Readers
from audiences_server.store.sync import Delivery, DestinationRow
from audiences_server.store.writer import Writer, WriterClosed

log = structlog.get_logger(__name__)

HTTP_KINDS = {"webhook", "segment"}
# Consecutive failed requests after which a round stops and the destination pauses: an outage
# then costs one attempt per backoff, not one per queued profile.
FAILURES_PER_ROUND = 3
# Queueing jobs per connection per round, so sending keeps pace during a long initial sync.
QUEUE_JOBS_PER_ROUND = 8
MAX_SEGMENT_BYTES = 500_000


def wall_ms() -> int:
    """The wall clock, in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class DestinationWorker:
    """The thread that queues and delivers for one destination."""

    def __init__(self, destination_id: int, writer: Writer, readers: Readers,
                 on_queued: Callable[[], None], extra: Callable[[DestinationRow], None] | None = None) -> None:
        self.destination_id = destination_id
        self._writer = writer
        self._readers = readers
        self._on_queued = on_queued
        self._extra = extra
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._paused_until = 0
        self._wait_s = 1.0
        self.thread = threading.Thread(target=self._loop, name=f"sync-{destination_id}", daemon=True)

    def start(self) -> None:
        """Starts the thread."""
        self.thread.start()

    def wake(self) -> None:
        """Says new change records may be waiting."""
        self._wake.set()

    def stop(self) -> None:
        """Asks the thread to stop after its current request."""
        self._stopping.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self._round()
            except WriterClosed:
                return
            except Exception:
                log.exception("sync_round_failed", destination=self.destination_id)
                busy, self._wait_s = False, 1.0
            if not busy:
                self._wake.wait(timeout=self._wait_s)
                self._wake.clear()

    def _round(self) -> bool:
        """Queues new records and sends what is due; True when more work is waiting now."""
        destination = store.destination_by_id(self._readers.get(), self.destination_id)
        if destination is None:
            self._stopping.set()
            return False
        self._wait_s = 1.0
        busy = self._queue(destination)
        if self._extra is not None:
            self._extra(destination)
        if destination.kind in HTTP_KINDS and destination.enabled:
            busy = self._send(destination) or busy
        return busy

    def _queue(self, destination: DestinationRow) -> bool:
        if destination.kind == "csv":
            return False
        busy = queued = False
        latest = store.latest_change(self._readers.get())
        for connection in store.connections_of(self._readers.get(), self.destination_id):
            if connection.phase == "LIVE" and connection.cursor >= latest:
                continue  # nothing new: spare the writer an empty transaction
            for _ in range(QUEUE_JOBS_PER_ROUND):
                more, count = self._writer.run(Queueing(destination, connection, wall_ms()))
                queued = queued or count > 0
                if not more:
                    break
            else:
                busy = True
        if queued:
            self._on_queued()
        return busy

    # -- sending -------------------------------------------------------------------------

    def _send(self, destination: DestinationRow) -> bool:
        now = wall_ms()
        if now < self._paused_until:
            self._wait_s = min(self._wait_s, (self._paused_until - now) / 1000)
            return False
        size = _batch_size(destination)
        heads = store.due_heads(self._readers.get(), self.destination_id, now, size)
        if not heads:
            self._wait_for_next_due(now)
            return False
        options = {c.connection_id: c.options for c in store.connections_of(self._readers.get(), self.destination_id)}
        if destination.kind == "webhook" and destination.config.get("payload_style", "event") == "event":
            return self._send_each(destination, heads, options)
        return self._send_batch(destination, heads, options, size)

    def _wait_for_next_due(self, now: int) -> None:
        due = store.next_due_ms(self._readers.get(), self.destination_id)
        if due is not None:
            self._wait_s = min(self._wait_s, max(0.005, (due - now) / 1000))

    def _send_each(self, destination: DestinationRow, heads: list[Delivery], options: dict[int, Any]) -> bool:
        """EVENT style: one request per call, in queue order.

        Each outcome is committed as soon as it is known, before the next request: after a crash,
        only the request in flight is sent again, not the whole round.
        """
        failed = False
        streak = 0
        for delivery in heads:
            if self._stopping.is_set():
                return False
            if delivery.connection_id not in options:
                continue
            outcome = self._post_all(destination, calls_for(delivery.record, options[delivery.connection_id]))
            if outcome.ok:
                self._record(destination, [delivery], [])
                streak = 0
                continue
            self._record(destination, [], [(delivery, outcome)])
            failed = True
            streak += 1
            if streak >= FAILURES_PER_ROUND:
                break
        return not failed and len(heads) == _batch_size(destination)

    def _post_all(self, destination: DestinationRow, calls: list[dict[str, Any]]) -> Outcome:
        for call in calls:
            outcome = post(webhook_request(destination.config, call), _timeout_s(destination), wall_ms())
            if not outcome.ok:
                return outcome
        return Outcome(ok=True)

    def _send_batch(self, destination: DestinationRow, heads: list[Delivery], options: dict[int, Any], size: int
                    ) -> bool:
        """LIST style and Segment: one request per batch, filled up to a size or a wait."""
        now = wall_ms()
        interval = int(destination.config.get("batch_interval_ms", 1000))
        if len(heads) < size and now - min(h.created_ms for h in heads) < interval:
            self._wait_s = min(self._wait_s, (min(h.created_ms for h in heads) + interval - now) / 1000)
            return False
        taken, calls = _fill(heads, options, size)
        if not calls:
            self._record(destination, taken, [])
            return True
        if destination.kind == "segment":
            request = segment_request(destination.config, calls, format_time(now))
        else:
            request = webhook_request(destination.config, {"batch": calls})
        outcome = post(request, _timeout_s(destination), now)
        if outcome.ok:
            self._record(destination, taken, [])
        else:
            self._record(destination, [], [(d, outcome) for d in taken])
        return outcome.ok and len(heads) == size

    def _record(self, destination: DestinationRow, done: list[Delivery],
                failures: list[tuple[Delivery, Outcome]]) -> None:
        """Stores the outcome of a round, and pauses the destination after a failure."""
        now = wall_ms()
        policy = destination.policy
        plans = []
        for delivery, outcome in failures:
            attempts = delivery.attempts + 1
            retry = outcome.retry and attempts < int(policy["max_attempts"])
            next_ms = now + backoff_ms(attempts, policy, outcome.retry_after_ms) if retry else None
            plans.append((delivery, outcome.error, next_ms))
            if next_ms is not None:
                self._paused_until = max(self._paused_until, next_ms)
            log.warning("delivery_failed", destination=destination.key, message_id=delivery.message_id,
                        attempt=attempts, error=outcome.error, parked=next_ms is None)

        def job(conn: apsw.Connection) -> None:
            store.delivered(conn, done, now)
            for delivery, error, next_ms in plans:
                store.failed(conn, delivery, error, now, next_ms)

        if done or plans:
            self._writer.run(job)


def _fill(heads: Sequence[Delivery], options: dict[int, Any], size: int) -> tuple[list[Delivery], list[Any]]:
    """The deliveries whose calls fit in one batch of at most `size` calls and the byte limit."""
    taken: list[Delivery] = []
    calls: list[Any] = []
    weight = 0
    for delivery in heads:
        own = calls_for(delivery.record, options[delivery.connection_id]) if delivery.connection_id in options else []
        own_weight = sum(len(str(c)) for c in own)
        if taken and (len(calls) + len(own) > size or weight + own_weight > MAX_SEGMENT_BYTES):
            break
        taken.append(delivery)
        calls += own
        weight += own_weight
    return taken, calls


def _batch_size(destination: DestinationRow) -> int:
    return int(destination.config.get("batch_size") or 100)


def _timeout_s(destination: DestinationRow) -> float:
    return int(destination.policy["request_timeout_ms"]) / 1000
