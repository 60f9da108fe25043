"""Bounded ticks (docs/evaluator.md, "Bounded ticks"): a tick takes at most a slice of the waiting
work, commits, and leaves the rest to the next; the backlog shows in the status and drains, and
the values reached equal those of one unbounded tick over the same data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import admin_pb2
from google.protobuf import duration_pb2

from audiences_server.engine.evaluator import JOB_MIN_PROFILES, JOB_PROFILES, JOB_TARGET_MS, TickReport, job_size
from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import DAY, HOUR, T0, Space, new_space
from tests.test_metrics import scrape, value

SLICE = 7
DEFINITIONS = (
    ("recent", "audience", "users", "event('Order Completed').within(2 hours).count() >= 1"),
    ("spend", "computed_trait", "users", "event('Order Completed').within(1 days).sum('revenue')"),
    ("big_spender", "audience", "users", "event('Order Completed').where(property('revenue') > 50).count() >= 2"),
    ("both", "audience", "users", "trait('recent') = true AND trait('big_spender') = true"),
    ("buying_accounts", "audience", "accounts", "ANY (event('Order Completed').within(3 hours).count() >= 1)"),
    ("cart_then_order", "audience", "users",
     "event('Product Added').where(event('Order Completed').within(parent: 1 hours).count() >= 1).count() >= 1"),
)


def _server(tmp_path: Path, name: str, tick_slice: int) -> Running:
    running = start(tmp_path / name / "audiences.db", manual_clock=True, tick_slice=tick_slice)
    running.server.engine.clock.set(T0)
    return running


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Running, Running]]:
    """A server whose ticks take at most SLICE of the waiting work, and one with no bound."""
    pair = (_server(tmp_path, "sliced", SLICE), _server(tmp_path, "whole", 0))
    yield pair
    for running in pair:
        running.channel.close()
        running.server.stop(grace=1)


def _traffic(rng: random.Random, now: int, users: int) -> list[dict[str, Any]]:
    """Orders, carts, account links and merges (an anonymous visitor identified as a user)."""
    calls: list[dict[str, Any]] = []
    for i in rng.sample(range(users), users // 2):
        user = f"u{i}"
        at = now - rng.choice((0, HOUR, 2 * HOUR, 5 * HOUR, DAY))
        calls.append({"type": "track", "userId": user, "event": "Product Added", "at": at - 1})
        calls.append({"type": "track", "userId": user, "event": "Order Completed", "at": at,
                      "properties": {"revenue": rng.choice((10, 60, 120))}})
        if rng.random() < 0.3:
            calls.append({"type": "group", "userId": user, "groupId": f"g{i % 5}", "at": now})
        if rng.random() < 0.15:
            anon = f"anon-{i}-{rng.randrange(1000)}"
            calls.append({"type": "track", "anonymousId": anon, "event": "Order Completed", "at": now - HOUR,
                          "properties": {"revenue": 200}})
            calls.append({"type": "identify", "anonymousId": anon, "userId": user, "at": now})
    return calls


def _status(space: Space) -> admin_pb2.GetEvaluatorStatusResponse:
    return space.running.admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(),
                                                  metadata=bearer(space.tokens["admin"]))


def _one_tick(space: Space) -> None:
    space.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=False), metadata=bearer(space.tokens["admin"]))


def _values(space: Space) -> dict[tuple[str, str], Any]:
    """Stored values by (key, identifier of the profile), comparable across servers."""
    rows = space.running.query(
        "SELECT c.key, min(i.id_type || ':' || i.id_value), v.value FROM computed_values v"
        " JOIN computations c USING (computation_id) JOIN identifiers i ON i.profile_id = v.profile_id"
        " WHERE c.space_id = ? AND i.id_type != 'anonymous_id' GROUP BY c.key, v.profile_id",
        (space.space_id,),
    )
    return {(key, who): value for key, who, value in rows}


def test_bounded_ticks_drain_the_backlog_to_the_unbounded_result(servers: tuple[Running, Running]) -> None:
    """With 40 users touched at once and a slice of 7, every tick takes at most 7 pieces of work,
    the status shows the backlog shrinking to zero, nothing is lost (the values equal a
    from-scratch evaluation), and they equal an unbounded server's after the same data and clock."""
    sliced, whole = (new_space(running) for running in servers)
    reports: list[TickReport] = []
    sliced.running.server.engine.evaluator.on_tick.append(reports.append)
    for space in (sliced, whole):
        for key, kind, collection, text in DEFINITIONS:
            space.define(key, text, kind=kind, collection=collection)
        space.tick()
    rng_seed = 18
    for step, advance in enumerate((0, HOUR, 2 * HOUR + 1, DAY)):
        for space in (sliced, whole):
            now = space.now() + advance
            if advance:
                space.tick(at=now)
            space.send(*_traffic(random.Random(rng_seed + step), now, 40))
        backlog = [_status(sliced).pending_profiles]
        reports.clear()
        while backlog[-1] or not reports or reports[-1].backlog:
            _one_tick(sliced)
            backlog.append(_status(sliced).pending_profiles)
            assert len(reports) < 200, "the backlog never drained"
        whole.tick()
        assert backlog[0] > SLICE
        assert len(reports) >= 2  # (a job also takes the waiting work of its accounts' users)
        assert all(r.taken <= SLICE for r in reports), [r.taken for r in reports]
        assert backlog == sorted(backlog, reverse=True)
        assert backlog[-1] == 0
        assert sliced.stored() == sliced.expected()
        assert _values(sliced) == _values(whole)


def test_run_tick_until_idle_returns_each_bounded_tick(servers: tuple[Running, Running]) -> None:
    """RunTick(until_idle) runs bounded ticks one after another until nothing waits, and returns
    every one of them; the last leaves no backlog."""
    space = new_space(servers[0])
    space.define("recent", "event('Order Completed').within(2 hours).count() >= 1")
    space.tick()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order Completed", "at": space.now()}
                 for i in range(30)])
    reply = space.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True),
                                        metadata=bearer(space.tokens["admin"]))
    assert len(reply.ticks) >= 30 // SLICE
    assert sum(t.values_changed for t in reply.ticks) == 30
    assert _status(space).pending_profiles == 0
    assert space.stored() == space.expected()


def test_the_backlog_shows_in_the_status_and_the_metrics(servers: tuple[Running, Running]) -> None:
    """Due pairs whose time has come wait in the status (`due_waiting`, `due_lag`) and in the
    `audiences_evaluator_due_*` gauges; a tick that stops at its slice says so (`backlog`), and
    the last tick of a drain leaves nothing waiting."""
    space = new_space(servers[0])
    space.define("recent", "event('Order Completed').within(1 hours).count() >= 1")
    space.tick()
    sent = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order Completed", "at": sent} for i in range(20)])
    space.tick()
    meta = bearer(space.tokens["admin"])
    space.running.admin.SetClock(admin_pb2.SetClockRequest(advance=duration_pb2.Duration(seconds=2 * 3600)),
                                 metadata=meta)
    status = _status(space)
    lag_ms = sent + 2 * HOUR - (sent + HOUR + 1)  # each left its window at sent + 1 hour + 1 ms
    assert status.due_waiting == 20
    assert status.due_lag.ToMilliseconds() == lag_ms
    # Another space's admin learns nothing of this one's backlog (its times are this space's events').
    other = _status(new_space(servers[0]))
    assert (other.due_waiting, other.due_lag.ToMilliseconds(), other.pending_profiles, other.HasField(
        "next_due_time"), other.backfilling_count) == (0, 0, 0, False, 0)
    samples = scrape(space.running)
    assert value(samples, "audiences_evaluator_due_waiting") == 20
    assert value(samples, "audiences_evaluator_due_lag_seconds") == lag_ms / 1000
    first = space.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=False), metadata=meta).ticks[0]
    assert first.backlog
    assert first.values_changed == SLICE
    assert _status(space).due_waiting == 20 - SLICE
    rest = space.running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=meta).ticks
    assert [t.backlog for t in rest] == [True] * (len(rest) - 1) + [False]
    status = _status(space)
    assert (status.due_waiting, status.due_lag.ToMilliseconds(), status.pending_profiles) == (0, 0, 0)
    assert space.member_ids("recent") == set()


@pytest.mark.parametrize(("fixed_ms", "per_profile_ms"), [(40.0, 1.3), (5.0, 0.05), (200.0, 10.0), (1.0, 0.2)])
def test_a_live_job_takes_what_it_can_do_in_its_target_time(fixed_ms: float, per_profile_ms: float) -> None:
    """Fed back what each job cost per item (a fixed cost, then a cost per profile), the job
    size settles where a job takes about JOB_TARGET_MS, within JOB_MIN_PROFILES and
    JOB_PROFILES, whatever the first, small job made the cost per item look like."""
    assert job_size(None) == JOB_PROFILES
    estimate = None
    taken = 23  # a first job of a few touched profiles
    for _ in range(30):
        cost = (fixed_ms + per_profile_ms * taken) / taken
        estimate = cost if estimate is None else 0.7 * estimate + 0.3 * cost
        taken = job_size(estimate)
    settled = (JOB_TARGET_MS - fixed_ms) / per_profile_ms
    assert JOB_MIN_PROFILES <= taken <= JOB_PROFILES
    if JOB_MIN_PROFILES < settled < JOB_PROFILES:
        assert abs(fixed_ms + per_profile_ms * taken - JOB_TARGET_MS) <= 0.05 * JOB_TARGET_MS
    else:
        assert taken == (JOB_PROFILES if settled >= JOB_PROFILES else JOB_MIN_PROFILES)


def _records(space: Space, key: str, collection: str = "users") -> list[tuple[str, str]]:
    """The definition's change records, in order, as (identifier, change)."""
    rows = space.running.query(
        "SELECT min(i.id_type || ':' || i.id_value), h.change FROM changes h JOIN computations c USING"
        " (computation_id) JOIN identifiers i ON i.profile_id = h.profile_id"
        " WHERE c.space_id = ? AND c.key = ? AND c.collection = ? AND i.id_type != 'anonymous_id'"
        " GROUP BY h.change_id ORDER BY h.change_id",
        (space.space_id, key, collection),
    )
    return [(who, change) for who, change in rows]


@pytest.fixture
def one_at_a_time(tmp_path: Path) -> Iterator[Space]:
    """A space on a server whose ticks take one piece of the waiting work each."""
    running = _server(tmp_path, "one", 1)
    yield new_space(running)
    running.channel.close()
    running.server.stop(grace=1)


def test_a_profile_s_waiting_work_is_taken_together(one_at_a_time: Space) -> None:
    """u1's trait changes while its window edge waits: with one piece per tick, the job taking the
    trait's touch takes the edge too, so `same` (reading both) never reads one new and one stale
    value, and records nothing: it is false before and after, as from scratch at any time."""
    space = one_at_a_time
    space.define("recent", "event('A').within(1 hours).count() >= 1")
    space.define("pro", "trait('plan') = 'pro'")
    space.define("same", "trait('recent') = trait('pro')")
    space.send({"type": "track", "userId": "u1", "event": "A", "at": T0})
    space.tick()
    space.running.server.engine.clock.set(T0 + HOUR + 1)  # the edge is due, and u1's plan changes
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "at": T0 + HOUR + 1})
    space.tick()
    assert _records(space, "same") == []
    assert space.stored() == space.expected()


def test_an_account_s_users_waiting_work_is_taken_with_it(one_at_a_time: Space) -> None:
    """u1's touch moves the account while u2's window edge waits: the job evaluating the account
    takes u2's edge too, so the account never reads u2's stale value and records no entry and
    exit (one of its users is quiet before, u1, and after, u2)."""
    space = one_at_a_time
    space.define("quiet", "NOT (event('A').within(1 hours).count() >= 1)")
    space.define("none_quiet", "ALL NOT (trait('quiet') = true)", collection="accounts")
    space.send({"type": "track", "userId": "u2", "event": "A", "at": T0},
               {"type": "group", "userId": "u1", "groupId": "g1", "at": T0},
               {"type": "group", "userId": "u2", "groupId": "g1", "at": T0})
    space.tick()
    space.running.server.engine.clock.set(T0 + HOUR + 1)  # u2's edge is due, and u1 is touched
    space.send({"type": "track", "userId": "u1", "event": "A", "at": T0 + HOUR + 1})
    space.tick()
    assert sorted(_records(space, "quiet")) == [("user_id:u1", "entered"), ("user_id:u1", "exited"),
                                                ("user_id:u2", "entered")]
    assert _records(space, "none_quiet", "accounts") == []
    assert space.stored() == space.expected()


def test_users_an_account_audience_recomputes_are_taken_whole(one_at_a_time: Space) -> None:
    """An account audience evaluated (here for u9's account, u9 touched) recomputes every user
    whose time under it has come: u1, whose `recent` edge waits too. The job takes that edge with
    it, so `same` of u1 (reading both) never reads a new `anybuy` and a stale `recent`, and records
    no exit and entry: it is true before and after."""
    space = one_at_a_time
    space.define("anybuy", "ANY (event('Buy').within(2 hours).count() >= 1)", collection="accounts")
    space.define("recent", "event('Buy').within(1 hours).count() >= 1")
    space.define("same", "trait('recent') = trait('anybuy')")
    space.send({"type": "group", "userId": "u1", "groupId": "a1", "at": T0},
               {"type": "group", "userId": "u9", "groupId": "a9", "at": T0},
               {"type": "track", "userId": "u1", "event": "Buy", "at": T0})
    space.tick()
    assert space.member_ids("same") == {"user_id:u1", "user_id:u9"}  # both true, or both false
    space.running.server.engine.clock.set(T0 + 2 * HOUR + 1)  # both of u1's edges are due, u9 is touched
    space.send({"type": "track", "userId": "u9", "event": "Buy", "at": T0 + 2 * HOUR + 1})
    space.tick()
    assert [change for who, change in _records(space, "same") if who == "user_id:u1"] == ["entered"]
    assert space.stored() == space.expected()


def test_a_linked_profile_taken_in_leads_to_its_own_links(one_at_a_time: Space) -> None:
    """u5 is linked to g1 and g3, u4 to g3. u5's window edge is due while u4 gets a new `B`: the
    job taking g1's work takes u5's edge, and must then take u4's touch too, through u5's other
    account g3. Otherwise g3 is evaluated with u5 gone and without u4 come, and records an exit
    and an entry within one tick, although one of its users is in `d2` before and after."""
    space = one_at_a_time
    space.define("d2", "event('B').between(1 hours, 5 hours).count() >= 1")
    space.define("d3", "ANY (trait('d2') = true)", collection="accounts")
    space.send({"type": "group", "userId": "u4", "groupId": "g3", "at": T0},
               {"type": "track", "anonymousId": "x2", "event": "B", "at": T0 - 1})
    space.running.server.engine.clock.set(T0 + 3 * HOUR)
    space.tick()
    space.send({"type": "group", "anonymousId": "x2", "groupId": "g3", "at": T0 + 2 * HOUR})
    space.send({"type": "alias", "userId": "u5", "previousId": "x2", "at": T0 + 3 * HOUR})
    space.running.server.engine.clock.set(T0 + 3 * HOUR + 60_000)
    space.tick()
    assert space.member_ids("d3", "accounts") == {"group_id:g3"}
    now = T0 + 5 * HOUR + 60_001  # u5's `B` leaves the window with no tick; u4 gets one an hour old
    space.send({"type": "group", "anonymousId": "x2", "groupId": "g1", "at": T0 + 3 * HOUR + 60_000})
    space.running.server.engine.clock.set(now)
    space.send({"type": "track", "userId": "u8", "event": "A", "at": now - 2 * HOUR - 1},
               {"type": "track", "userId": "u4", "event": "B", "at": now - HOUR})
    space.running.server.engine.clock.set(now + 1)
    space.tick()
    assert _records(space, "d3", "accounts") == [("group_id:g3", "entered")]
    assert space.stored() == space.expected()


@pytest.mark.parametrize(("collection", "definition"), [("users", "trait('d0') = true"),
                                                        ("accounts", "ANY (trait('d0') = true)")])
def test_a_backfill_reads_its_dependencies_as_they_are_at_the_tick(one_at_a_time: Space, collection: str,
                                                                   definition: str) -> None:
    """u1's time under `d0` has come with no tick when `d1`, reading `d0`, is created: the job
    backfilling `d1` takes that waiting work first, so `d1` reads `d0` as it is then (u1 out)
    and records nothing, rather than an entry and then an exit within one tick."""
    space = one_at_a_time
    space.define("d0", "event('B').within(1 hours).count() >= 1")
    space.send({"type": "group", "userId": "u1", "groupId": "g1", "at": T0},
               {"type": "track", "userId": "u1", "event": "B", "at": T0})
    space.tick()
    space.running.server.engine.clock.set(T0 + HOUR + 1)
    space.define("d1", definition, collection=collection)
    space.tick()
    assert _records(space, "d1", collection) == []
    assert _records(space, "d0") == [("user_id:u1", "entered"), ("user_id:u1", "exited")]
    assert space.stored() == space.expected()
