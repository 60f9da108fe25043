"""GetEvaluatorStatus with the manual clock at the end of time: a due time past
9999-12-31T23:59:59.999Z (which no Timestamp can show) leaves `next_due_time` unset, as nothing
will ever come due, where it used to fail the whole reply with INTERNAL."""

from __future__ import annotations

from pathlib import Path

from audiences.v1 import admin_pb2
from google.protobuf import timestamp_pb2

from tests.conftest import bearer, start
from tests.evaluator.conftest import DAY, new_space

# 9999-12-31T23:59:59.999Z, the latest time SetClock accepts.
LAST_MS = 253_402_300_799_999


def test_a_due_time_past_the_year_9999_leaves_next_due_time_unset(tmp_path: Path) -> None:
    """An event at the last millisecond read by a `within(7 days)` audience: one millisecond
    before, the event itself comes due at the last millisecond and is shown; at the last
    millisecond, its exit 7 days later is the only due time left, and the reply shows none."""
    # A server of its own: the shared one's clock cannot come back from the year 9999.
    running = start(tmp_path / "audiences.db", manual_clock=True)
    try:
        space = new_space(running)
        meta = bearer(space.tokens["admin"])
        space.send({"type": "track", "userId": "far", "event": "F", "at": LAST_MS})
        space.define("recent_f", "event('F').within(7 days).count() >= 1")

        space.tick(at=LAST_MS - 1)
        status = running.admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(), metadata=meta)
        assert status.HasField("next_due_time")
        assert status.next_due_time.ToMilliseconds() == LAST_MS

        space.tick(at=LAST_MS)
        assert space.member_ids("recent_f") == {"user_id:far"}
        # The exit, 7 days on, is still stored as due, past the end of time.
        assert running.query("SELECT min(due_ms) FROM due")[0][0] >= LAST_MS + 7 * DAY
        status = running.admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(), metadata=meta)
        assert not status.HasField("next_due_time")
        assert status.clock_time.ToMilliseconds() == LAST_MS
        assert status.last_tick.tick_time.ToMilliseconds() == LAST_MS
        assert status.due_waiting == 0
        assert status.due_lag.ToMilliseconds() == 0

        # The clock stays where it is; a tick and the status keep answering.
        last = timestamp_pb2.Timestamp()
        last.FromMilliseconds(LAST_MS)
        moved = running.admin.SetClock(admin_pb2.SetClockRequest(clock_time=last), metadata=meta)
        assert moved.clock_time.ToMilliseconds() == LAST_MS
        space.tick()
        status = running.admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(), metadata=meta)
        assert not status.HasField("next_due_time")
    finally:
        running.channel.close()
        running.server.stop(grace=1)
