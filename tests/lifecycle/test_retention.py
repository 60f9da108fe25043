"""Retention: a space's events older than its retention are deleted in small batches as the
clock moves; definitions reading further back are refused; a change feed forgets records past
its retention, and a cursor before them is OUT_OF_RANGE."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, operator_pb2, sync_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from audiences_server.store import retention
from audiences_server.store.db import connect
from audiences_server.store.migrations import migrate
from tests.conftest import error_reason, field_violations
from tests.evaluator.conftest import DAY
from tests.lifecycle.conftest import Site
from tests.sync.conftest import connect as connect_destination
from tests.sync.conftest import ms, wait_for

USERS = common_pb2.COLLECTION_USERS


def _retain(site: Site, days: int | None) -> operator_pb2.Space:
    space = operator_pb2.Space(name=site.name)
    if days is not None:
        space.event_retention.CopyFrom(duration_pb2.Duration(seconds=days * 86_400))
    request = operator_pb2.UpdateSpaceRequest(space=space, update_mask=field_mask_pb2.FieldMask(
        paths=["event_retention"]))
    return site.operator.UpdateSpace(request, metadata=site.as_("operator")).space


def _kept(site: Site) -> list[str]:
    rows = site.running.query("SELECT event FROM events WHERE space_id = ? ORDER BY ts", (site.space_id,))
    return [r[0] for r in rows]


def test_old_events_are_deleted_as_the_clock_moves(site: Site) -> None:
    """With 30 days of retention, an event 40 days old goes at once and one 10 days old once the
    clock has moved 25 days; a definition within the retention keeps working."""
    now = site.now()
    site.send({"type": "track", "userId": "u1", "event": "Old", "at": now - 40 * DAY},
              {"type": "track", "userId": "u1", "event": "Recent", "at": now - 10 * DAY},
              {"type": "track", "userId": "u1", "event": "Today", "at": now})
    site.define("recent", "event('Today').within(30 days).count() >= 1")
    assert _retain(site, 30).event_retention.seconds == 30 * 86_400
    wait_for(lambda: _kept(site) == ["Recent", "Today"], what="the old event deleted")
    site.tick(now + 25 * DAY)
    wait_for(lambda: _kept(site) == ["Today"], what="the next event deleted")
    assert _retain(site, None).HasField("event_retention") is False


def test_definitions_reading_past_the_retention_are_refused(site: Site) -> None:
    """A retention shorter than what an enabled definition reads is refused, naming it; with a
    retention set, a definition reading further back is refused, one within it accepted."""
    site.define("ever", "event('Order Completed').count() >= 1")
    with pytest.raises(grpc.RpcError) as conflict:
        _retain(site, 30)
    assert conflict.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(conflict.value) == "RETENTION_CONFLICT"
    assert [f for f, _ in field_violations(conflict.value)] == ["users/ever"]
    site.running.admin.DeleteAudience(admin_pb2.DeleteAudienceRequest(key="ever", collection=USERS),
                                      metadata=site.as_("admin"))
    _retain(site, 30)
    with pytest.raises(grpc.RpcError) as refused:
        site.define("quarter", "event('Order Completed').within(90 days).count() >= 1")
    assert error_reason(refused.value) == "RETENTION_CONFLICT"
    site.define("month", "event('Order Completed').within(30 days).count() >= 1")
    with pytest.raises(grpc.RpcError) as short:
        _retain(site, 0)
    assert error_reason(short.value) == "RETENTION_INVALID"


def _feed_keeping_a_second(site: Site, users: int) -> Callable[[str], list[sync_pb2.ChangeRecord]]:
    """`users` pro users in the audience `pro`, connected to a feed keeping records one second;
    returns a reader of the feed's records after a cursor."""
    site.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(users)))
    site.define("pro", "trait('plan') = 'pro'")
    site.tick()
    site.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="feed", grpc_feed=sync_pb2.GrpcFeedConfig(retention=ms(1000)))), metadata=site.as_("admin"))
    connect_destination(site, "feed", "pro")

    def page(cursor: str) -> list[sync_pb2.ChangeRecord]:
        return list(site.running.sync.ListChanges(sync_pb2.ListChangesRequest(
            destination_key="feed", start_cursor=cursor), metadata=site.as_("admin")).changes)

    return page


def test_pruned_feed_cursor_is_out_of_range(site: Site) -> None:
    """A feed keeping records one second drops them once older; reading after a cursor before
    the last dropped record is OUT_OF_RANGE (paged and streamed), after it or from the start is not."""
    page = _feed_keeping_a_second(site, users=3)
    records = wait_for(lambda: len(page("")) == 3 and page(""), what="the first sync")
    time.sleep(1.1)
    site.tick(site.now() + 1)  # the clock moving starts a sweep
    wait_for(lambda: not page(""), what="the records pruned")
    with pytest.raises(grpc.RpcError) as pruned:
        page(records[0].cursor)
    assert pruned.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_reason(pruned.value) == "CURSOR_PRUNED"
    with pytest.raises(grpc.RpcError) as streamed:
        next(iter(site.running.sync.WatchChanges(sync_pb2.WatchChangesRequest(
            destination_key="feed", start_cursor=records[1].cursor), metadata=site.as_("admin"))))
    assert streamed.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert page(records[-1].cursor) == []


def test_a_feed_emptied_by_retention_never_issues_a_cursor_again(site: Site) -> None:
    """A consumer reads every record; retention then removes them all; the next record's cursor
    is past every cursor issued before, and the consumer resuming after its last one gets it
    (an id handed out again would sit at or before that cursor, skipped without an error)."""
    page = _feed_keeping_a_second(site, users=2)
    read = wait_for(lambda: len(page("")) == 2 and page(""), what="the first sync")
    last = read[-1].cursor
    assert page(last) == []  # the consumer has read (and acknowledged) everything
    time.sleep(1.1)
    site.tick(site.now() + 1)  # the clock moving starts a sweep
    wait_for(lambda: not page(""), what="the records pruned")
    site.send({"type": "identify", "userId": "u2", "traits": {"plan": "pro"}})
    site.tick()
    resumed = wait_for(lambda: page(last), what="the new record after the consumer's cursor")
    assert [r.external_ids[0].value for r in resumed] == ["u2"]
    assert int(resumed[0].cursor) > max(int(r.cursor) for r in read)


def test_an_exit_retention_removed_unread_counts_as_undelivered(site: Site) -> None:
    """A deleted profile's exit waits unread in a feed while its deletion waits for it, and the
    feed's retention removes it: the deletion completes with that exit undelivered (the wait,
    which sees only the records still there, ended as if it had been read: 0)."""
    page = _feed_keeping_a_second(site, users=1)
    read = wait_for(lambda: len(page("")) == 1 and page(""), what="the entry")
    assert page(read[-1].cursor) == []  # the consumer has read the entry
    request = operator_pb2.DeleteProfileRequest(profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u0"),
                                                delivery_timeout=duration_pb2.Duration(seconds=3600))
    deletion = site.operator.DeleteProfile(request, metadata=site.as_("operator")).deletion
    assert deletion.state == operator_pb2.DELETION_STATE_PENDING
    time.sleep(1.1)
    site.tick(site.now() + 1)  # the clock moving starts a sweep

    def complete() -> operator_pb2.ProfileDeletion | None:
        found = site.operator.GetProfileDeletion(operator_pb2.GetProfileDeletionRequest(
            deletion_id=deletion.deletion_id), metadata=site.as_("operator")).deletion
        return found if found.state == operator_pb2.DELETION_STATE_COMPLETE else None

    assert wait_for(complete, what="the deletion to complete").exits_undelivered == 1


def test_a_sweep_deletes_in_bounded_jobs(tmp_path: Path) -> None:
    """12,000 expired events among 14,400 take three jobs of at most 5,000 each, and the sweep then ends."""
    conn = connect(tmp_path / "a.db")
    migrate(conn, 0)
    conn.execute("INSERT INTO spaces (space_id, name, created_ms, event_retention_ms) VALUES (1, 's', 0, ?)", (DAY,))
    with conn:
        conn.executemany("INSERT INTO events (seq, space_id, message_id, type, ts, received_ms, body, context, extra)"
                         " VALUES (?, 1, ?, 'track', ?, 0, '{}', '{}', '{}')",
                         [(i, f"m{i}", 0 if i % 6 else 10 * DAY) for i in range(1, 14_401)])
    after: int | None = 0
    counts = []
    while after is not None:
        after, deleted = retention.sweep_events(conn, after, 5000, 10 * DAY)
        counts.append(deleted)
    assert counts == [4167, 4167, 3666]  # windows of 5,000 arrivals, one in six of them kept
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2400
    conn.close()


def test_an_earlier_time_whose_events_retention_deleted_is_not_explained(site: Site) -> None:
    """With 30 days of retention, a count over `within(30 days)` explained at a time whose window
    reached events since deleted is refused (EXPLAIN_TIME_NOT_REPRODUCIBLE), rather than counted
    over the events left; a time whose window is still kept, and now, are explained."""
    now = site.now()
    _retain(site, 30)
    site.send(*({"type": "track", "userId": "rt", "event": "Purchase", "at": now - days * DAY + 4 * 3_600_000}
                for days in (1, 10, 20, 29, 30)))
    site.define("counted", "event('Purchase').within(30 days).count()", kind="computed_trait")
    site.tick()
    site.tick(now + 2 * DAY + 12 * 3_600_000)

    def explain(at: int | None) -> admin_pb2.ExplainMembershipResponse:
        request = admin_pb2.ExplainMembershipRequest(collection=USERS, key="counted", profile_id="user_id:rt")
        if at is not None:
            request.explain_time.FromMilliseconds(at)
        return site.running.admin.ExplainMembership(request, metadata=site.as_("admin"))

    with pytest.raises(grpc.RpcError) as refused:
        explain(now)
    assert error_reason(refused.value) == "EXPLAIN_TIME_NOT_REPRODUCIBLE"
    assert "event retention" in (refused.value.details() or "")
    current = explain(None)
    assert (current.value_json, current.stored_value.number_value, current.evaluation_pending) == ("3", 3, False)
