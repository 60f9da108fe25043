"""Delivery: one background thread per destination, and its kind's sink.

Each worker turns new change records into its connections' queues (a short writer job, one at
a time, which the worker does not wait for: it goes on sending meanwhile), does its kind's
periodic work (CSV files), then hands what is due to the kind's sink (engine.destinations),
outside any transaction. A sink that sends from the sync service's event loop (EVENT-style
webhooks) is also refilled there each time outcomes are committed, without waking the worker.
A slow or failing destination only delays its own worker; ingestion and the evaluator never wait
on it.

In flight: a delivery is in flight from the moment it is handed to the sink until its outcome is
committed. At most `max_in_flight` writes wait for an answer (EVENT-style webhooks: 16 requests
by default; the batching kinds: one batch), and as many again may be answered 2xx and wait for
their commit without holding a slot; a profile's next change is not due before the last one's
outcome is committed, so each profile's changes arrive in order. Outcomes are committed
as they come, in groups (engine.sync.acks: answers arriving together share a commit); a crash
(kill -9) sends again only what was in flight (at most twice `max_in_flight` writes), with
the same ids. After a failure worth
retrying the destination pauses until that retry is due, then sends one write at a time until
one succeeds.

Timing uses the wall clock even when the evaluator runs on a manual clock: retries are real
waits on a real network.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future

import structlog

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Context, Destination, Queue, Sink
from audiences_server.engine.destinations.loop import IoLoop
from audiences_server.engine.sync.acks import Acks
from audiences_server.engine.sync.configs import with_defaults
from audiences_server.engine.sync.queueing import Queueing
from audiences_server.store import sync as store
from audiences_server.store.db import Readers
from audiences_server.store.sync import ConnectionRow, DestinationRow
from audiences_server.store.writer import Writer, WriterClosed

log = structlog.get_logger(__name__)

# Writes answered 2xx and waiting for their outcome's commit, per slot: they no longer hold a
# slot, so the sink's requests do not wait for the disk, and a crash sends again at most
# (1 + ANSWERED_PER_SLOT) x max_in_flight writes. One per slot measured 3,600-3,900 changes/s
# against 1,700-2,200 for none (the slot held until the commit), two 4,000-4,200.
ANSWERED_PER_SLOT = 1

# The longest a worker goes on with what it read of its destination and connections.
RELOAD_S = 0.25

# While probing (one write at a time after a failure worth retrying), how many due changes more
# than one write's are read, for one that has not failed yet (engine/sync/acks.py).
PROBE_LOOKAHEAD = 64


def wall_ms() -> int:
    """The wall clock, in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class DestinationWorker:
    """The thread that queues and delivers for one destination."""

    def __init__(self, destination_id: int, writer: Writer, readers: Readers, on_queued: Callable[[], None],
                 io: IoLoop, scope: str = "") -> None:
        self.destination_id = destination_id
        self._scope = scope  # of the message ids it makes (`payloads.message_id`)
        self._writer = writer
        self._readers = readers
        self._context = Context(writer, readers, io)
        self._on_queued = on_queued
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._wait_s = 1.0
        self._sink: tuple[int, Sink] | None = None  # built for the destination as of its updated_ms
        self._unbuilt: int | None = None  # the updated_ms of settings no sink could be built for
        self._acks = Acks(writer, self._freed)
        # Held while reading what is due and handing it to the sink, on this thread or the loop's.
        self._sending = threading.Lock()
        self._timing = False  # a send found nothing to do now and computed when to look again
        self._refilling = False  # a refill is queued on the event loop and has not started
        # What a round reads of the database besides due deliveries, read again when told of
        # changes (wake) or after RELOAD_S: a committed outcome alone only frees a slot, and
        # reading everything again on each one would cost more than sending.
        self._changed = threading.Event()
        self._loaded: tuple[float, DestinationRow, Destination, dict[int, ConnectionRow]] | None = None
        # One queueing job at a time, submitted without waiting for it (see _queue).
        self._queueing = self._asked = False
        self._queued_last = 0
        self._queue_after = 0.0
        self.thread = threading.Thread(target=self._loop, name=f"sync-{destination_id}", daemon=True)

    def start(self) -> None:
        """Starts the thread."""
        self.thread.start()

    def wake(self) -> None:
        """Says new change records may be waiting, or the destination or its connections changed."""
        self._changed.set()
        self._wake.set()

    def stop(self) -> None:
        """Asks the thread to stop; writes in flight are abandoned and sent again at start."""
        self._stopping.set()
        self._wake.set()

    def _loop(self) -> None:
        try:
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
        finally:
            with self._sending:
                self._close_sink()

    def _round(self) -> bool:
        """Queues new records and sends what is due; True when more work is waiting now."""
        self._wait_s = 1.0
        busy = False
        loaded = self._loaded
        if loaded is None or self._changed.is_set() or time.monotonic() - loaded[0] >= RELOAD_S:
            self._changed.clear()
            stored = store.destination_by_id(self._readers.get(), self.destination_id)
            if stored is None:
                self._stopping.set()
                return False
            kind = registry.get(stored.kind)
            row = dataclasses.replace(stored, config=with_defaults(stored.kind, stored.config))
            self._queue(row, kind)
            kind.refresh(row, self._context, wall_ms())
            connections = {c.connection_id: c for c in store.connections_of(self._readers.get(), self.destination_id)}
            loaded = self._loaded = (time.monotonic(), row, kind, connections)
        _, row, kind, connections = loaded
        with self._sending:
            sink = self._current_sink(row, kind) if row.enabled else None
            if sink is not None:
                busy = self._send(row, sink, connections) or busy
        return busy

    def _freed(self) -> None:
        """Told when slots may have come free: a write answered 2xx (on the thread that told its
        outcome) or outcomes committed (on the writer's thread). A sink that sends from the event
        loop is refilled there, sparing this thread a wake-up (and the interpreter lock a
        hand-off) each time; the others wake the worker."""
        sink = self._sink
        if sink is not None and getattr(sink[1], "sends_from_loop", False):
            if not self._refilling:  # one refill queued at a time: it reads the queue once for all
                self._refilling = True
                self._context.io.call_soon(self._refill)
        else:
            self._wake.set()

    def _refill(self) -> None:
        """On the event loop: sends what is due with the sink and settings the worker last read;
        anything else (settings changed, a pause, nothing due yet) is left to the worker."""
        self._refilling = False  # first: a slot freed from now on queues another refill
        with self._sending:
            loaded, sink = self._loaded, self._sink
            current = (loaded is not None and sink is not None and loaded[1].enabled
                       and sink[0] == loaded[1].updated_ms and not self._changed.is_set()
                       and not self._stopping.is_set())
            self._timing = False
            if current and loaded is not None and sink is not None:
                self._send(loaded[1], sink[1], loaded[3])
        if not current or self._timing:
            self._wake.set()

    def _queue(self, row: DestinationRow, kind: Destination) -> None:
        """Submits the next queueing job unless one is under way: the worker goes on sending
        while the writer queues, and the job's commit wakes it to submit the next one.
        Connections take turns, so a long first sync does not hold back the others' changes."""
        if kind.queue is Queue.NONE or time.monotonic() < self._queue_after:
            return
        if self._queueing:
            self._asked = True  # told of changes meanwhile: the job under way may have missed them
            return
        # Behind: in its first sync, or its own definition has records after its cursor. Any other
        # definition's records are not its business: a connection whose definition did not change
        # queues no job (with many connections, a job per connection after every evaluator job).
        conn = self._readers.get()
        behind = [c for c in store.connections_of(conn, self.destination_id)
                  if c.phase != "LIVE" or c.cursor < store.latest_change_of(conn, c.computation_id)]
        if not behind:
            return
        connection = next((c for c in behind if c.connection_id > self._queued_last), behind[0])
        self._queued_last = connection.connection_id
        self._queueing = True
        self._writer.submit(Queueing(row, kind, connection, wall_ms(), self._scope),
                            keeps_events=True).add_done_callback(self._queued)

    def _queued(self, future: Future[tuple[bool, int]]) -> None:
        """On the writer's thread, once a queueing job is committed (or failed)."""
        failure, again = future.exception(), self._asked
        if failure is not None:
            if not isinstance(failure, WriterClosed):
                log.error("sync_queueing_failed", destination=self.destination_id, error=repr(failure))
            self._queue_after = time.monotonic() + 1.0
        else:
            more, count = future.result()
            if count > 0:
                self._on_queued()
            again = again or more or count > 0
        self._queueing = self._asked = False
        if again:
            self.wake()  # the next job, and the deliveries just queued

    def _current_sink(self, row: DestinationRow, kind: Destination) -> Sink | None:
        """The sink for the destination's current settings, built again when they change (once
        what the old one has in flight is settled). Settings no sink can be built for (a URL
        stored before it was refused, such as one with port 99999) are logged once and tried
        again when they change: building does no I/O, so it would only fail again each round.
        Their deliveries stay queued."""
        if self._sink is not None and self._sink[0] != row.updated_ms:
            if self._acks.in_flight():
                return None  # the old sink's writes settle first; their commits wake the worker
            self._close_sink()
        if self._sink is None:
            if self._unbuilt == row.updated_ms:
                return None
            try:
                built = kind.build(row, self._context)
            except Exception:
                log.exception("sync_sink_failed", destination=self.destination_id)
                self._unbuilt = row.updated_ms
                return None
            if built is None:
                return None
            self._sink = (row.updated_ms, built)
        return self._sink[1]

    def _close_sink(self) -> None:
        if self._sink is not None:
            self._sink[1].close()
            self._sink = None

    # -- sending -------------------------------------------------------------------------

    def _send(self, row: DestinationRow, sink: Sink, connections: dict[int, ConnectionRow]) -> bool:
        now = wall_ms()
        paused = self._acks.paused_until
        if now < paused:
            self._wait_s = min(self._wait_s, (paused - now) / 1000)
            self._timing = True
            return False
        most = 1 if self._acks.probing else sink.max_in_flight
        flying_writes = self._acks.writes_in_flight()
        # Answered writes wait for their commit without a slot, up to ANSWERED_PER_SLOT per slot.
        writes = min(most - flying_writes, most * ANSWERED_PER_SLOT - self._acks.answered())
        if writes <= 0 or (flying_writes and writes < most // 2):
            # Answers and commits free slots and refill (see _freed) once half are free, so
            # one read of the queue serves several writes.
            return False
        flying = self._acks.in_flight()
        # Enough heads to fill every free write whatever the kind batches, besides those in flight.
        limit = writes * sink.max_batch + len(flying)
        if self._acks.probing:
            limit += PROBE_LOOKAHEAD  # a change that has not failed yet may be behind failed ones
        heads = store.due_heads(self._readers.get(), self.destination_id, now, limit, flying)
        if self._acks.probing:
            # A change that has not failed yet probes first: one failing again and again (a
            # receiver refusing that payload with a 5xx) would otherwise be every probe, and hold
            # every other profile until it is parked.
            heads = [head for head in heads if not head.attempts] or heads
        if not heads:
            self._wait_for_next_due(now, flying)
            self._timing = True
            return False
        batches, wait_ms = sink.take(heads, now, writes)
        if not batches:
            if wait_ms is not None:
                self._wait_s = min(self._wait_s, max(0.005, wait_ms / 1000))
            self._timing = True
            return False
        for batch in batches:
            self._acks.write(row, batch, functools.partial(sink.write_batch, batch, connections))
        return len(heads) >= limit - len(flying)

    def _wait_for_next_due(self, now: int, in_flight: Collection[int]) -> None:
        due = store.next_due_ms(self._readers.get(), self.destination_id, in_flight)
        if due is not None:
            self._wait_s = min(self._wait_s, max(0.005, (due - now) / 1000))
