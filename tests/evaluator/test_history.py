"""Membership history and size series through the server: replaying a profile's history gives its
current values, the records are the change records, the size series adds them up, merged
profiles' records follow the survivor, and old rows are pruned in bounded batches."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import apsw
import grpc
import pytest
from audiences.v1 import admin_pb2
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.store import history as history_store
from tests.conftest import Running, bearer, error_reason, start
from tests.evaluator.conftest import COLLECTION, DAY, HOUR, Space, new_space
from tests.evaluator.test_exactness import USERS, calls, definitions

NEVER = {"audience": False, "computed_trait": None}


def history(space: Space, collection: str, *, key: str = "", profile: str = "", page_size: int = 3
            ) -> list[admin_pb2.MembershipChange]:
    """Every record of a profile and/or definition, following small pages."""
    out, token = [], ""
    while True:
        page = space.running.admin.ListMembershipHistory(
            admin_pb2.ListMembershipHistoryRequest(collection=COLLECTION[collection], key=key, profile_id=profile,
                                                   page_size=page_size, page_token=token),
            metadata=bearer(space.tokens["admin"]))
        out += page.changes
        token = page.next_page_token
        if not token:
            return out


def sizes(space: Space, collection: str, key: str, start_ms: int,
          daily: bool = False) -> admin_pb2.GetSizeHistoryResponse:
    """The hourly (or daily) size series from `start_ms` to now."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(start_ms)
    interval = admin_pb2.SIZE_INTERVAL_DAILY if daily else admin_pb2.SIZE_INTERVAL_HOURLY
    return space.running.admin.GetSizeHistory(
        admin_pb2.GetSizeHistoryRequest(collection=COLLECTION[collection], key=key, interval=interval,
                                        start_time=stamp), metadata=bearer(space.tokens["admin"]))


def _live_profiles(space: Space) -> list[tuple[str, int, str]]:
    return list(space._conn().execute(
        "SELECT collection, profile_id, public_id FROM profiles WHERE space_id = ? AND merged_into IS NULL",
        (space.space_id,)))


def _check_replay(space: Space, kinds: dict[tuple[str, str], str]) -> None:
    """Each live profile's history, replayed record by record, ends at its stored values (never-set
    values where it has no record); profiles merged into it end with nothing."""
    stored = space.stored()
    for collection, pid, public in _live_profiles(space):
        final: dict[tuple[str, str], Any] = {}
        for record in history(space, collection, profile=public):
            final[(record.profile.profile_id, record.computation.key)] = json.loads(record.new_value_json)
        for (c, key), kind in kinds.items():
            if c == collection:
                assert final.pop((public, key), NEVER[kind]) == stored[(collection, key, pid)], (key, public)
        assert all(value in (False, None) for value in final.values()), final


def _check_sizes(space: Space, key: str, collection: str, kind: str) -> None:
    """The definition's records are its change records; the hourly series counts them hour by hour
    with the running size at each hour's end, the daily one agrees, and both end at the size now."""
    records = history(space, collection, key=key, page_size=50)
    rows = list(space._conn().execute(
        "SELECT h.change_id, h.change, h.old_value, h.new_value, h.at_ms FROM changes h JOIN computations c"
        " USING (computation_id) WHERE c.space_id = ? AND c.key = ? AND c.collection = ?"
        " AND h.change IN ('entered', 'exited', 'changed') ORDER BY h.change_id", (space.space_id, key, collection)))
    assert [r.change_id for r in records] == [r[0] for r in rows]
    created = next(space._conn().execute("SELECT created_ms, size FROM computations WHERE space_id = ? AND key = ?"
                                         " AND collection = ?", (space.space_id, key, collection)))
    series = sizes(space, collection, key, created[0])
    moves: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _, change, old, new, at in rows:
        gained = change == "entered" or (change == "changed" and old is None)
        lost = change == "exited" or (change == "changed" and new is None)
        moves[at - at % HOUR][0] += gained
        moves[at - at % HOUR][1] += lost
    size = 0
    for point in series.points:
        entered, exited = moves.pop(point.start_time.ToMilliseconds(), [0, 0])
        size += entered - exited
        assert (point.entered_count, point.exited_count, point.size) == (entered, exited, size)
    assert not moves
    assert series.points[-1].size == series.current_size == created[1]
    daily = sizes(space, collection, key, created[0], daily=True)
    assert daily.points[-1].size == created[1]
    assert sum(p.entered_count for p in daily.points) == sum(p.entered_count for p in series.points)


steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.lists(calls(), min_size=1, max_size=4)),
        st.tuples(st.just("advance"), st.sampled_from((1, HOUR - 1, HOUR + 1, 3 * HOUR, DAY - HOUR))),
    ),
    min_size=2,
    max_size=8,
)


@settings(
    max_examples=int(os.environ.get("HISTORY_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(defs=definitions(), script=steps)
def test_history_replays_to_the_current_values(shared_server: Running, defs: list[tuple[str, str, str, str]],
                                               script: list[tuple[str, Any]]) -> None:
    """After random streams and ticks (merges, windows expiring, account links), replaying each
    profile's history gives its current values, and each definition's size series matches its
    change records."""
    space = new_space(shared_server)
    for key, kind, collection, text in defs:
        space.define(key, text, kind=kind, collection=collection)
    space.send(*[{"type": "group", "userId": u, "groupId": g, "traits": {}} for u, g in zip(USERS, ("g1", "g2", "g1"),
                                                                                            strict=True)])
    space.tick()
    for action, arg in script:
        if action == "send":
            now = space.now()
            space.send(*[{**{k: v for k, v in c.items() if k != "offset"}, "at": now + c["offset"]} for c in arg])
            space.tick()
        else:
            space.tick(at=space.now() + arg)
    kinds = {(collection, key): kind for key, kind, collection, _ in defs}
    _check_replay(space, kinds)
    for (collection, key), kind in kinds.items():
        _check_sizes(space, key, collection, kind)


def test_a_merged_profile_s_records_follow_the_survivor(space: Space) -> None:
    """An anonymous member merged into a user: the survivor's history holds the merged profile's
    entry and exit, and its own entry."""
    space.send({"type": "track", "anonymousId": "a1", "event": "A", "at": space.now()},
               {"type": "track", "userId": "ada", "event": "A", "at": space.now()})
    space.define("did_a", "event('A').count() >= 1", include_anonymous_users=True)
    space.tick()
    space.send({"type": "identify", "userId": "ada", "anonymousId": "a1", "traits": {}})
    space.tick()
    records = history(space, "users", profile="user_id:ada")
    survivor = next(iter(space._conn().execute(
        "SELECT p.public_id FROM identifiers i JOIN profiles p USING (profile_id) WHERE i.space_id = ?"
        " AND i.id_value = 'ada'", (space.space_id,))))[0]
    by_profile: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_profile[record.profile.profile_id].append(record.change_type)
    merged = next(p for p in by_profile if p != survivor)
    assert by_profile == {survivor: [admin_pb2.MEMBERSHIP_CHANGE_TYPE_ENTERED],
                          merged: [admin_pb2.MEMBERSHIP_CHANGE_TYPE_ENTERED, admin_pb2.MEMBERSHIP_CHANGE_TYPE_EXITED]}


def test_deleting_a_definition_removes_its_history(space: Space) -> None:
    """A deleted definition's records and size series go with it."""
    space.send({"type": "track", "userId": "ada", "event": "A", "at": space.now()})
    space.define("did_a", "event('A').count() >= 1")
    space.tick()
    assert len(history(space, "users", profile="user_id:ada")) == 1
    space.running.admin.DeleteAudience(admin_pb2.DeleteAudienceRequest(collection=COLLECTION["users"], key="did_a"),
                                       metadata=bearer(space.tokens["admin"]))
    assert history(space, "users", profile="user_id:ada") == []
    assert space.running.query("SELECT count(*) FROM size_history WHERE computation_id NOT IN"
                               " (SELECT computation_id FROM computations)") == [(0,)]


def test_old_history_is_pruned_in_bounded_batches(tmp_path: Path) -> None:
    """With one day kept: records older than a day are no longer listed, and each evaluator job
    prunes at most 1,000 of them (the change records, which are the history), so 1,200 go in two
    ticks (with the hour buckets wholly past)."""
    running = start(tmp_path / "audiences.db", manual_clock=True, history_retention_days=1)
    try:
        engine = running.server.engine
        engine.clock.set(1_800_000_000_000)
        space = Space(running, 1, running.tokens)
        space.send(*[{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(1200)])
        space.define("pros", "trait('plan') = 'pro'")
        space.tick()
        assert len(history(space, "users", key="pros", page_size=1000)) == 1200
        space.tick(at=space.now() + DAY + HOUR)
        assert history(space, "users", key="pros") == []
        assert running.query("SELECT count(*) FROM changes") == [(200,)]
        space.tick()
        assert running.query("SELECT count(*) FROM changes") == [(0,)]
        assert running.query("SELECT count(*) FROM size_history") == [(0,)]
        series = sizes(space, "users", "pros", 0)
        assert [p.size for p in series.points] == [1200] * len(series.points)
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def test_the_size_series_reads_only_the_jobs_change_records(space: Space) -> None:
    """Adding a job's change records to the size series reads them by a range of their ids, not
    by walking every change record ever written (which would make each job slower as the table
    grows: the planner picks that walk to save the GROUP BY's sort)."""
    conn = apsw.Connection(str(space.running.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + history_store.SIZES, (0,))]
    finally:
        conn.close()
    assert "SEARCH h USING INTEGER PRIMARY KEY (rowid>?)" in plan


def test_a_range_ending_before_it_starts_is_refused(space: Space) -> None:
    """`end_time` before `start_time` is TIME_RANGE_INVALID for the history and the size series, as
    for ListEvents, rather than an empty answer that says nothing happened."""
    space.define("did_a", "event('A').count() >= 1")
    meta = bearer(space.tokens["admin"])
    start, end = timestamp_pb2.Timestamp(seconds=2_000_000_000), timestamp_pb2.Timestamp(seconds=1_900_000_000)
    calls = [lambda: space.running.admin.ListMembershipHistory(admin_pb2.ListMembershipHistoryRequest(
                 collection=COLLECTION["users"], key="did_a", start_time=start, end_time=end), metadata=meta),
             lambda: space.running.admin.GetSizeHistory(admin_pb2.GetSizeHistoryRequest(
                 collection=COLLECTION["users"], key="did_a", interval=admin_pb2.SIZE_INTERVAL_HOURLY, start_time=start,
                 end_time=end), metadata=meta)]
    for call in calls:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                                        "TIME_RANGE_INVALID")
