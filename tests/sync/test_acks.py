"""Outcomes whose commit fails are submitted again after a growing pause, never in a loop; a
write that raises leaves nothing in flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import apsw

from audiences_server.engine.destinations.base import Outcome
from audiences_server.engine.sync import acks as acks_module
from audiences_server.engine.sync.acks import Acks
from audiences_server.store.migrations import migrate
from audiences_server.store.sync import Delivery, DestinationRow


class _FailingWriter:
    """Fails its first `failures` groups before they run any job (as a database that cannot
    begin a transaction does), then runs jobs on a real in-memory database."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.submitted: list[float] = []
        self.conn = apsw.Connection(":memory:")
        migrate(self.conn, 0)

    def submit(self, job: Any, *, keeps_events: bool = False) -> Future[Any]:
        self.submitted.append(time.monotonic())
        future: Future[Any] = Future()
        if len(self.submitted) <= self.failures:
            future.set_exception(apsw.IOError("disk I/O error"))
        else:
            future.set_result(job(self.conn))
        return future


def test_a_failing_commit_is_retried_after_growing_pauses() -> None:
    writer = _FailingWriter(failures=3)
    freed = threading.Event()
    acks = Acks(writer, freed.set)  # type: ignore[arg-type]
    row = DestinationRow(1, 1, "hook", "d_1", "hook", "webhook", True, {}, {"max_attempts": 5}, 0, 0, 0)
    delivery = Delivery(7, 1, 1, "m-7", {}, 0, None, 0)
    acks.write(row, [delivery], lambda done: done([delivery], Outcome(ok=True)))
    deadline = time.monotonic() + 10
    while acks.in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not acks.in_flight(), "the outcome was committed once the writer recovered"
    assert acks.answered() == 0
    assert acks.writes_in_flight() == 0
    assert len(writer.submitted) == 4, "one submission per failure, then the one that went through"
    gaps = [b - a for a, b in zip(writer.submitted, writer.submitted[1:], strict=False)]
    minimum = acks_module.RETRY_MIN_S
    assert [gap >= minimum * 2**i * 0.9 for i, gap in enumerate(gaps)] == [True] * 3, gaps


def test_a_write_that_raises_fails_what_it_did_not_tell() -> None:
    """A write that told one delivery's outcome and then raised: the other deliveries fail as
    worth retrying, with the error, and nothing is left in flight."""
    writer = _FailingWriter(failures=0)
    acks = Acks(writer, lambda: None)  # type: ignore[arg-type]
    row = DestinationRow(1, 1, "hook", "d_1", "hook", "webhook", True, {}, {"max_attempts": 5,
                         "initial_backoff_ms": 10, "max_backoff_ms": 10}, 0, 0, 0)
    told, untold = Delivery(7, 1, 1, "m-7", {}, 0, None, 0), Delivery(8, 1, 2, "m-8", {}, 0, None, 0)
    outcomes: list[tuple[list[int], Outcome]] = []
    original = acks._settle

    def settle(row: DestinationRow, write: Any, deliveries: Any, outcome: Outcome) -> None:
        outcomes.append(([d.delivery_id for d in deliveries], outcome))
        original(row, write, deliveries, outcome)

    acks._settle = settle  # type: ignore[method-assign]

    def write(done: Any) -> None:
        done([told], Outcome(ok=True))
        raise UnicodeEncodeError("ascii", "café", 3, 4, "ordinal not in range(128)")

    acks.write(row, [told, untold], write)
    error = ("unexpected error: UnicodeEncodeError: 'ascii' codec can't encode character '\\xe9' in position 3:"
             " ordinal not in range(128)")
    assert outcomes == [([7], Outcome(ok=True)), ([8], Outcome(False, True, error))]
    deadline = time.monotonic() + 10
    while acks.in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not acks.in_flight()
