"""Sending tracking-spec calls in batches: one request per batch (webhook LIST style, Segment).

A batch holds at most `batch_size` calls and `MAX_BATCH_BYTES` of them, weighed as the UTF-8
bytes of their JSON as sent (a character outside ASCII is two to four bytes), and is sent when
full or when its oldest call has waited `batch_interval`. One batch is in flight at a time, and its
outcome is the outcome of every delivery in it.
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
    """Fills batches from the due deliveries and POSTs each as one request."""

    max_in_flight = 1

    def __init__(self, row: DestinationRow, request: Request, poster: Poster) -> None:
        self._size = self.max_batch = int(row.config["batch_size"])
        self._interval = int(row.config["batch_interval_ms"])
        self._request = request
        self._poster = poster
        self._now = 0

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """The oldest deliveries as one batch, once there are enough or the oldest waited long enough."""
        if not heads or writes < 1:
            return [], None
        oldest = min(h.created_ms for h in heads)
        if len(heads) < self._size and now_ms - oldest < self._interval:
            return [], oldest + self._interval - now_ms
        self._now = now_ms
        return [list(heads[: self._size])], None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Sends the calls that fit in one request; deliveries left over stay queued for the next."""
        taken: list[Delivery] = []
        calls: list[dict[str, Any]] = []
        weight = 0
        for delivery in batch:
            own = calls_of(delivery, connections)
            own_weight = sum(len(json_body(c)) + 1 for c in own)  # the call as sent, and its comma
            if taken and (len(calls) + len(own) > self._size
                          or weight + own_weight > MAX_BATCH_BYTES - ENVELOPE_BYTES):
                break
            taken.append(delivery)
            calls += own
            weight += own_weight
        if len(taken) < len(batch):
            done(batch[len(taken):], SKIPPED)
        if not calls:
            done(taken, Outcome(ok=True))  # nothing to send for them: done
            return
        url, body, headers = self._request(calls, self._now)
        done(taken, self._poster.post(url, body, headers, self._now))

    def close(self) -> None:
        """Closes the HTTP pool."""
        self._poster.close()

