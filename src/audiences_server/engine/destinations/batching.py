"""Sending tracking-spec calls in batches: one request per batch (webhook LIST style, Segment).

A request holds at most `batch_size` calls and `MAX_BATCH_BYTES` of them, weighed as the UTF-8
bytes of their JSON as sent (a character outside ASCII is two to four bytes). A write is sent
when it fills a request or when its oldest call has waited `batch_interval`: the deliveries
whose calls fit in one request together, or a single delivery whose calls do not (an account's
change, calls for each of its users) in as many requests as they need, one after the other.
One write is in flight at a time, and its outcome is the outcome of every delivery in it: a
delivery sent in several requests is delivered once each was answered 2xx, and fails whole when
one fails, so every request of it goes again, each with the same calls (and id) as before.

A write that failed goes again with exactly its deliveries, before anything queued since: they
share the time of their next attempt (engine.sync.acks), which sets them apart in the queue, also
after a restart. So its requests are the same, and a LIST batch keeps its `webhook-id`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from audiences_server.engine.destinations.base import SKIPPED, Done, Outcome
from audiences_server.engine.destinations.http import Poster, json_body
from audiences_server.engine.sync.payloads import calls_for
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow

MAX_BATCH_BYTES = 500_000
# What a body holds besides its calls' JSON and the commas between them: `{"batch":[` and `]}`,
# and Segment's `"sentAt"` with its time; kept free in every batch.
ENVELOPE_BYTES = 100
# Builds one request from a batch of calls: URL, body, headers.
Request = Callable[[list[dict[str, Any]], int], tuple[str, bytes, Mapping[str, str]]]


def calls_of(delivery: Delivery, connections: Mapping[int, ConnectionRow]) -> list[dict[str, Any]]:
    """The calls one delivery becomes under its connection's current options (none once the
    connection is gone: the delivery is then simply acknowledged)."""
    connection = connections.get(delivery.connection_id)
    return calls_for(delivery.record, connection.options) if connection is not None else []


def timeout_s(row: DestinationRow) -> float:
    """The delivery policy's request timeout, in seconds."""
    return int(row.policy["request_timeout_ms"]) / 1000


class BatchSink:
    """Fills batches from the due deliveries and POSTs each as one request, or, for a delivery
    with more calls than one request holds, as several."""

    max_in_flight = 1

    def __init__(self, row: DestinationRow, request: Request, poster: Poster) -> None:
        self._size = self.max_batch = int(row.config["batch_size"])
        self._interval = int(row.config["batch_interval_ms"])
        self._request = request
        self._poster = poster
        self._now = 0

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """The deliveries of a write that failed, as they were, once due; otherwise the oldest
        deliveries as one batch, once there are enough or the oldest waited long enough."""
        if not heads or writes < 1:
            return [], None
        retried = [h for h in heads if h.attempts]
        if retried:
            self._now = now_ms
            return [[h for h in retried if h.next_ms == retried[0].next_ms]], None
        oldest = min(h.created_ms for h in heads)
        if len(heads) < self._size and now_ms - oldest < self._interval:
            return [], oldest + self._interval - now_ms
        self._now = now_ms
        return [list(heads[: self._size])], None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Sends the first delivery with those after it whose calls fit in one request with its
        own, or alone in as many requests as its calls need; deliveries left over stay queued for
        the next write."""
        room = MAX_BATCH_BYTES - ENVELOPE_BYTES
        taken: list[Delivery] = []
        calls: list[dict[str, Any]] = []
        sizes: list[int] = []
        weight = 0
        for delivery in batch:
            own = calls_of(delivery, connections)
            weights = [len(json_body(c)) + 1 for c in own]  # the call as sent, and its comma
            if taken and (len(calls) + len(own) > self._size or weight + sum(weights) > room):
                break
            taken.append(delivery)
            calls += own
            sizes += weights
            weight += sum(weights)
        if len(taken) < len(batch):
            done(batch[len(taken):], SKIPPED)
        if not calls:
            done(taken, Outcome(ok=True))  # nothing to send for them: done
            return
        # A call is not held to the 32 KB of a call received: it carries its profile's
        # identifiers (up to 1,000 of up to 500 characters, and an exit all of them), so one can
        # pass what a request may hold. No request can carry it; a receiver would refuse it whole.
        too_large = next(((c, size) for c, size in zip(calls, sizes, strict=True) if size > room), None)
        if too_large is not None:
            call, size = too_large
            done(taken, Outcome(False, error=f"call {call['messageId']} is {size - 1:,} bytes of JSON, more than a"
                                f" request holds ({MAX_BATCH_BYTES:,} bytes): not sent"))
            return
        for part in parts(calls, sizes, self._size, room):
            url, body, headers = self._request(part, self._now)
            outcome = self._poster.post(url, body, headers, self._now)
            if not outcome.ok:
                done(taken, outcome)
                return
        done(taken, Outcome(ok=True))

    def close(self) -> None:
        """Closes the HTTP pool."""
        self._poster.close()


def parts(calls: list[dict[str, Any]], sizes: list[int], most: int, room: int) -> list[list[dict[str, Any]]]:
    """Calls in order, cut into requests of at most `most` calls and `room` bytes of them (each
    call weighing its size, none more than `room`)."""
    cut: list[list[dict[str, Any]]] = [[]]
    weight = 0
    for call, size in zip(calls, sizes, strict=True):
        if cut[-1] and (len(cut[-1]) == most or weight + size > room):
            cut.append([])
            weight = 0
        cut[-1].append(call)
        weight += size
    return cut
