"""The change feed (paged and streamed, resumable) and CSV export."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time

import grpc
import pytest
from audiences import Client
from audiences.v1 import common_pb2, ingest_pb2, profiles_pb2, sync_pb2
from structlog.testing import capture_logs

from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import Space
from tests.sync.conftest import admin, connect, ms, ref, wait_for


def _feed(space: Space, key: str = "feed") -> None:
    message = sync_pb2.Destination(key=key, grpc_feed=sync_pb2.GrpcFeedConfig())
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                         metadata=admin(space))


def _pros_fed(space: Space, users: int) -> None:
    """`users` pro users in the audience `pro`, connected to the feed `feed`."""
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(users)))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _feed(space)
    connect(space, "feed", "pro")


def _read_all(space: Space, cursor: str) -> list[sync_pb2.ChangeRecord]:
    records: list[sync_pb2.ChangeRecord] = []
    token = ""
    while True:
        page = space.running.sync.ListChanges(sync_pb2.ListChangesRequest(
            destination_key="feed", start_cursor=cursor, page_size=7, page_token=token), metadata=admin(space))
        records += page.changes
        token = page.next_page_token
        if not token:
            return records


def test_list_changes_pages_snapshot_then_changes(space: Space) -> None:
    """ListChanges returns the connection's first sync then each change, paged, and resumes after a cursor."""
    _pros_fed(space, 10)
    first = wait_for(lambda: len(_read_all(space, "")) == 10 and _read_all(space, ""), what="snapshot")
    assert {r.change_type for r in first} == {sync_pb2.CHANGE_TYPE_ENTERED}
    space.send({"type": "identify", "userId": "u3", "traits": {"plan": "free"}})
    space.tick()
    later = wait_for(lambda: _read_all(space, first[-1].cursor), what="exit")
    assert [(r.change_type, r.old_value.bool_value, r.new_value.bool_value) for r in later] == [
        (sync_pb2.CHANGE_TYPE_EXITED, True, False)]
    assert {e.type for e in later[0].external_ids} == {"user_id"}
    assert later[0].message_id


def test_a_change_carries_its_values_as_json_text_with_integers_exact(space: Space) -> None:
    """A computed trait's change carries `old_value_json` and `new_value_json` beside its `Value`s:
    `120` stays `120`, and an integer past 2^53 stays exact, where the `Value` holds doubles."""
    space.send({"type": "track", "userId": "big", "event": "Paid", "properties": {"v": 2 ** 53 + 1}},
               {"type": "track", "userId": "small", "event": "Paid", "properties": {"v": 120}})
    space.define("paid", "event('Paid').sum(property('v'))", kind="trait")
    space.tick()
    _feed(space)
    connect(space, "feed", "paid", kind="computed_trait")
    records = wait_for(lambda: len(_read_all(space, "")) == 2 and _read_all(space, ""), what="snapshot")
    by_user = {r.external_ids[0].value: r for r in records}
    assert (by_user["big"].new_value_json, by_user["small"].new_value_json) == (str(2 ** 53 + 1), "120")
    assert (by_user["big"].old_value_json, by_user["big"].HasField("old_value")) == ("", False)
    space.send({"type": "track", "userId": "small", "event": "Paid", "properties": {"v": 1}})
    space.tick()
    later = wait_for(lambda: _read_all(space, records[-1].cursor), what="the change")
    assert [(r.old_value_json, r.new_value_json) for r in later] == [("120", "121")]


def test_a_feeds_lag_is_the_age_of_its_oldest_unread_record(space: Space) -> None:
    """A feed connection with records its consumer has not acknowledged shows them pending, with
    a lag of their age (as /metrics does); read to the end, it shows none and no lag."""
    _pros_fed(space, 3)
    first = wait_for(lambda: len(_read_all(space, "")) == 3 and _read_all(space, ""), what="snapshot")
    request = sync_pb2.GetConnectionRequest(destination_key="feed", computation=ref("pro"))
    time.sleep(0.05)
    status = space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery
    assert status.pending_count == 3
    assert status.lag.ToMilliseconds() >= 50
    _read_all(space, first[-1].cursor)  # reading after the last acknowledges them all
    status = space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery
    assert (status.pending_count, status.lag.ToMilliseconds()) == (0, 0)


def test_watch_resumes_from_cursor_without_missing(space: Space) -> None:
    """A WatchChanges consumer that disconnects and resumes from its last cursor sees every record
    exactly once; a quiet stream sends heartbeats."""
    space.define("pro", "trait('plan') = 'pro'")
    _feed(space)
    connect(space, "feed", "pro")
    space.tick()
    seen: list[str] = []
    cursor = ""
    for round_ in range(3):
        for i in range(5):
            plan = "pro" if round_ % 2 == 0 else "free"
            space.send({"type": "identify", "userId": f"u{i}", "traits": {"plan": plan}})
        space.tick()
        stream = space.running.sync.WatchChanges(sync_pb2.WatchChangesRequest(
            destination_key="feed", start_cursor=cursor, heartbeat_interval=ms(1000)), metadata=admin(space))
        before = len(seen)
        for item in stream:
            if item.HasField("heartbeat"):
                assert item.heartbeat.latest_cursor == cursor
                break
            seen.append(item.change.message_id)
            cursor = item.change.cursor
            if round_ == 1 and len(seen) - before == 2:
                break  # disconnect in the middle of the backlog
        stream.cancel()
    records = [r.message_id for r in _read_all(space, "")]
    assert seen == records
    assert len(records) == 15


def test_streamed_records_stay_pending_until_acknowledged(space: Space) -> None:
    """WatchChanges acknowledges its start cursor, not what it streams: the records sent stay
    pending until AckChanges names the last one processed (or a read starts after it). An empty
    cursor is CURSOR_REQUIRED."""
    _pros_fed(space, 3)
    wait_for(lambda: len(_read_all(space, "")) == 3, what="the first sync")
    sync, meta = space.running.sync, admin(space)
    request = sync_pb2.GetConnectionRequest(destination_key="feed", computation=ref("pro"))

    def delivery() -> tuple[int, int]:
        status = sync.GetConnection(request, metadata=meta).connection.delivery
        return status.pending_count, status.delivered_count

    stream = sync.WatchChanges(sync_pb2.WatchChangesRequest(destination_key="feed"), metadata=meta)
    streamed = [item.change for item in itertools.islice(stream, 3)]
    stream.cancel()
    assert delivery() == (3, 0)
    sync.AckChanges(sync_pb2.AckChangesRequest(destination_key="feed", cursor=streamed[1].cursor), metadata=meta)
    assert delivery() == (1, 2)
    stream = sync.WatchChanges(sync_pb2.WatchChangesRequest(destination_key="feed", start_cursor=streamed[2].cursor,
                                                            heartbeat_interval=ms(1000)), metadata=meta)
    assert next(stream).HasField("heartbeat")  # its start cursor is acknowledged
    stream.cancel()
    assert delivery() == (0, 3)
    with pytest.raises(grpc.RpcError) as refused:
        sync.AckChanges(sync_pb2.AckChangesRequest(destination_key="feed"), metadata=meta)
    assert error_reason(refused.value) == "CURSOR_REQUIRED"


def test_export_10k_members_through_the_client(space: Space) -> None:
    """ExportAudience streams exactly the audience's members with the chosen identifiers and traits."""
    for start in range(0, 10_000, 2500):
        batch = [{"type": "identify", "userId": f"u{i}",
                  "traits": {"email": f"u{i}@x.io", "tier": i % 3, "name": f"N, {i}"}}
                 for i in range(start, start + 2500)]
        space.running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": batch}).encode()),
                                       metadata=bearer(space.tokens["write"]))
    space.define("tiered", "trait('tier') >= 1")
    space.tick()
    with Client(f"127.0.0.1:{space.running.port}", admin_token=space.tokens["admin"],
                credentials_file="/nonexistent") as client:
        data = b"".join(client.export_audience("tiered", external_id_types=["user_id", "email"],
                                               include_traits=["tier", "name"]))
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == ["profile_id", "user_id", "email", "tier", "name"]
    expected = {(f"u{i}", f"u{i}@x.io", str(i % 3), f"N, {i}") for i in range(10_000) if i % 3}
    assert {tuple(r[1:]) for r in rows[1:]} == expected
    assert len(rows) - 1 == len(expected)
    assert data.endswith(b"\r\n")


def test_export_unknown_audience_is_not_found(space: Space) -> None:
    """Exporting an audience that does not exist fails with NOT_FOUND."""
    stream = space.running.sync.ExportAudience(sync_pb2.ExportAudienceRequest(collection=1, key="nope"),
                                               metadata=admin(space))
    with pytest.raises(grpc.RpcError) as caught:
        list(stream)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND



def test_export_names_each_column_once(space: Space) -> None:
    """A name chosen both as an identifier type and as a trait (`email`), or twice, is one column:
    the identifier's."""
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "u1@x.io", "plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    stream = space.running.sync.ExportAudience(sync_pb2.ExportAudienceRequest(
        collection=1, key="pro", external_id_types=["user_id", "email", "email"],
        include_traits=["email", "plan", "plan"]), metadata=admin(space))
    rows = list(csv.reader(io.StringIO(b"".join(c.csv_data for c in stream).decode(), newline="")))
    assert rows[0] == ["profile_id", "user_id", "email", "plan"]
    assert rows[1][1:] == ["u1", "u1@x.io", "pro"]


def test_export_rows_come_in_the_order_profiles_were_first_seen(space: Space) -> None:
    """Rows follow the server's internal profile numbers, as docs/sync.md says: the order the
    profiles were first seen, the same on every export, which is not the order of the
    `prf_…` text in the profile_id column."""
    users = [f"u{n:02d}" for n in range(40)]
    for user in users:  # one call at a time: each profile is numbered in turn
        space.send({"type": "identify", "userId": user, "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()

    def export() -> list[list[str]]:
        stream = space.running.sync.ExportAudience(sync_pb2.ExportAudienceRequest(
            collection=1, key="pro", external_id_types=["user_id"]), metadata=admin(space))
        return list(csv.reader(io.StringIO(b"".join(c.csv_data for c in stream).decode(), newline="")))[1:]

    rows = export()
    assert [row[1] for row in rows] == users
    assert export() == rows
    assert [row[0] for row in rows] != sorted(row[0] for row in rows)  # random ids: 40 in order is 1 in 40!


def test_an_export_in_progress_leaves_other_reads_alone(space: Space) -> None:
    """A paused export's snapshot is its own: while it waits between chunks, every worker thread
    keeps serving profile reads (which take snapshots of their own) without an error."""
    batch = [{"type": "identify", "userId": f"u{i}", "traits": {"tier": 1}} for i in range(2500)]
    space.running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": batch}).encode()),
                                   metadata=bearer(space.tokens["write"]))
    space.define("everyone", "trait('tier') = 1")
    space.tick()
    stream = space.running.sync.ExportAudience(
        sync_pb2.ExportAudienceRequest(key="everyone", collection=common_pb2.COLLECTION_USERS), metadata=admin(space))
    first = next(stream)  # the export now holds its snapshot, between two chunks
    read = bearer(space.tokens["read"])
    for _ in range(4):  # more concurrent calls than worker threads: every thread serves some
        calls = [space.running.profiles.ListTraits.future(profiles_pb2.ListTraitsRequest(
            profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id=f"user_id:u{i}")),
            metadata=read) for i in range(48)]
        assert all(call.result(timeout=30).traits for call in calls)
    rest = sum(chunk.row_count for chunk in stream)
    assert first.row_count + rest == 2500


def test_a_cursor_of_non_ascii_digits_is_invalid_argument(space: Space) -> None:
    """A cursor such as `²` (a digit to Unicode, not a number to int) is refused as CURSOR_INVALID,
    never INTERNAL."""
    _feed(space)
    with pytest.raises(grpc.RpcError) as refused:
        space.running.sync.ListChanges(sync_pb2.ListChangesRequest(destination_key="feed", start_cursor="²"),
                                       metadata=admin(space))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_export_its_reader_leaves_ends_quietly(space: Space) -> None:
    """A client that stops reading an export (`… | head`) cancels it while the server makes its
    next chunk: the export ends once that chunk is made, and nothing is logged as an error."""
    batch = [{"type": "identify", "userId": f"u{i}", "traits": {"tier": 1}} for i in range(2500)]
    space.running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": batch}).encode()),
                                   metadata=bearer(space.tokens["write"]))
    space.define("everyone", "trait('tier') = 1")
    space.tick()
    with capture_logs() as logged:
        for _ in range(5):
            stream = space.running.sync.ExportAudience(sync_pb2.ExportAudienceRequest(
                key="everyone", collection=common_pb2.COLLECTION_USERS), metadata=admin(space))
            next(stream)
            stream.cancel()
        wait_for(lambda: sum(e["event"] == "rpc" for e in logged) >= 5, what="the five exports' lines")
    assert [e for e in logged if e["log_level"] in ("error", "critical")] == []


def _refusals(space: Space, key: str, cursor: str) -> list[str]:
    """The INVALID_ARGUMENT reasons of a cursor listed, watched and acknowledged (each must refuse it)."""
    sync, meta = space.running.sync, admin(space)
    reasons = []
    for call in (lambda: sync.ListChanges(sync_pb2.ListChangesRequest(destination_key=key, start_cursor=cursor),
                                          metadata=meta),
                 lambda: next(iter(sync.WatchChanges(sync_pb2.WatchChangesRequest(
                     destination_key=key, start_cursor=cursor), metadata=meta))),
                 lambda: sync.AckChanges(sync_pb2.AckChangesRequest(destination_key=key, cursor=cursor),
                                         metadata=meta)):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        reasons.append(error_reason(refused.value))
    return reasons


@pytest.mark.parametrize("cursor", [str(2**63), "9" * 19, "9" * 40, "999999"])
def test_a_cursor_the_feed_never_issued_is_refused_before_any_acknowledgement(space: Space, cursor: str) -> None:
    """A cursor past int64, or past every record of the feed, is CURSOR_INVALID (never INTERNAL),
    paged, streamed and acknowledged, and acknowledges nothing: the feed's records stay pending."""
    _pros_fed(space, 3)
    records = wait_for(lambda: len(_read_all(space, "")) == 3 and _read_all(space, ""), what="the first sync")
    sync, meta = space.running.sync, admin(space)
    assert _refusals(space, "feed", cursor) == ["CURSOR_INVALID"] * 3
    request = sync_pb2.GetConnectionRequest(destination_key="feed", computation=ref("pro"))
    assert sync.GetConnection(request, metadata=meta).connection.delivery.delivered_count == 0
    assert len(sync.ListChanges(sync_pb2.ListChangesRequest(
        destination_key="feed", start_cursor=records[-1].cursor), metadata=meta).changes) == 0


def test_a_cursor_of_another_feed_is_refused(space: Space) -> None:
    """A cursor naming a record of another feed of the space (still kept) is CURSOR_OTHER_FEED,
    paged, streamed and acknowledged, rather than read as a position in this feed (it skipped this
    feed's records below it); acknowledged, it acknowledges nothing."""
    _pros_fed(space, 2)
    _feed(space, "other")
    connect(space, "other", "pro")
    sync, meta = space.running.sync, admin(space)

    def read(key: str) -> list[sync_pb2.ChangeRecord]:
        return list(sync.ListChanges(sync_pb2.ListChangesRequest(destination_key=key), metadata=meta).changes)

    mine = wait_for(lambda: len(read("feed")) == 2 and read("feed"), what="the first feed's sync")
    theirs = wait_for(lambda: len(read("other")) == 2 and read("other"), what="the other feed's sync")
    assert int(theirs[0].cursor) > int(mine[-1].cursor)  # below the other feed's newest: it passed
    assert _refusals(space, "other", mine[-1].cursor) == ["CURSOR_OTHER_FEED"] * 3
    assert [r.cursor for r in read("other")] == [r.cursor for r in theirs]


def test_watching_a_feed_that_is_deleted_ends_not_found(space: Space) -> None:
    """A watcher of a feed whose destination is deleted is told NOT_FOUND at its next heartbeat
    instead of beating for ever."""
    _feed(space)
    stream = space.running.sync.WatchChanges(sync_pb2.WatchChangesRequest(
        destination_key="feed", heartbeat_interval=ms(1000)), metadata=admin(space))
    assert next(stream).HasField("heartbeat")
    space.running.sync.DeleteDestination(sync_pb2.DeleteDestinationRequest(key="feed"), metadata=admin(space))
    with pytest.raises(grpc.RpcError) as ended:
        list(itertools.islice(stream, 5))  # a heartbeat or two at most, then the end
    assert ended.value.code() == grpc.StatusCode.NOT_FOUND
