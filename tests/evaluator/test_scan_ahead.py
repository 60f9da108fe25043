"""Backfills whose next chunk is scanned in a second process (engine/scan_ahead.py): what they
store is what a from-scratch evaluation gives, whether the scan made ahead is taken, thrown away
(events arrived), taken in part (a profile's next change came meanwhile) or
never made (the process died).

The server here backfills a profile or a few per job and starts the process whatever the space's
size; `run_tick(until_idle=False)` runs one job, so that sends and clock moves fall between a
chunk's scan made ahead and the job that takes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.engine import evaluator
from audiences_server.engine.scan_ahead import ScanAhead, _valid_at
from tests.conftest import Running, start
from tests.evaluator.conftest import DAY, HOUR, T0, Space, new_space
from tests.evaluator.test_exactness import PRELUDE, calls, definitions, send_relative

MINUTE = 60_000

SHAPES = (
    ("recent", "audience", "event('Order').within(3 hours).count() >= 1"),
    ("often", "audience", "event('Order').within(2 days).count() >= 2"),
    ("big", "audience", "event('Order').where(property('v') > 2).count() >= 1"),
    ("spent", "computed_trait", "event('Order').within(1 days).sum('v')"),
    ("last_v", "computed_trait", "event('Order').last('v')"),
    ("funnel", "audience", "event('Visit').where(event('Order').within(parent: 2 hours).count() >= 1).count() >= 1"),
    ("visits", "computed_trait", "event('Visit').count()"),
)


@pytest.fixture(scope="module")
def ahead_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A manual-clock server whose backfills take chunks of BACKFILL_PROFILES profiles and scan
    each next chunk ahead, however few profiles a space has."""
    running = start(Path(tmp_path_factory.mktemp("ahead")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    ahead = running.server.engine.evaluator.scan_ahead
    assert ahead is not None  # on by default
    ahead.min_profiles = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluator, "BACKFILL_PROFILES", 2)
        patch.setattr(evaluator, "BACKFILL_PAIRS", 2 * len(SHAPES))  # the shapes together, two profiles a job
        yield running
    running.channel.close()
    running.server.stop(grace=1)


def _ahead(running: Running) -> ScanAhead:
    ahead = running.server.engine.evaluator.scan_ahead
    assert ahead is not None
    return ahead


def _job(running: Running) -> None:
    running.server.engine.evaluator.run_tick(until_idle=False)


def _shop(space: Space, users: int = 12) -> None:
    """Orders and visits of `users` users at times around now, some on the windows' edges."""
    now = space.now()
    calls: list[dict[str, Any]] = []
    for i in range(users):
        for k in range(i % 4):
            calls.append({"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"v": (i + k) % 5},
                          "at": now - (i * 37 + k * 53) * MINUTE})
        if i % 3:
            calls.append({"type": "track", "userId": f"u{i}", "event": "Visit", "at": now - (i * 41) * MINUTE})
    space.send(*calls)
    space.tick()


def _define_all(space: Space) -> None:
    for key, kind, text in SHAPES:
        space.define(key, text, kind=kind)


def test_a_backfill_takes_the_scans_made_ahead_and_stores_exact_values(ahead_server: Running) -> None:
    space = new_space(ahead_server)
    _shop(space)
    ahead = _ahead(ahead_server)
    taken = ahead.taken
    _define_all(space)
    space.tick()
    assert ahead.taken - taken >= 4  # twelve users, two a job: most chunks come from the process
    assert space.stored() == space.expected()
    space.tick(at=space.now() + 5 * HOUR)  # what the backfill stored goes on from there
    assert space.stored() == space.expected()


def test_definitions_reading_traits_get_their_values_from_the_job(ahead_server: Running) -> None:
    """The process works out values only for definitions that read no trait: one reading `plan`
    beside one that does not, over users of both plans, every chunk but the first scanned ahead."""
    space = new_space(ahead_server)
    space.send(*[{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro" if i % 2 else "free"}}
                 for i in range(12)])
    _shop(space)
    ahead = _ahead(ahead_server)
    taken = ahead.taken
    space.define("pro_buyers", "trait('plan') = 'pro' AND event('Order').count() >= 1")
    space.define("free_orders", "trait('plan') != 'pro' AND event('Order').within(2 days).count() >= 1")
    space.define("buyers", "event('Order').count() >= 1")
    space.define("orders", "event('Order').count()", kind="computed_trait")
    space.tick()
    assert ahead.taken - taken >= 2
    stored = space.stored()
    assert stored == space.expected()
    assert any(stored[key] for key in stored if key[1] == "pro_buyers")
    assert any(stored[key] for key in stored if key[1] == "free_orders")


def test_events_arriving_between_two_jobs_throw_the_scan_made_ahead_away(ahead_server: Running) -> None:
    space = new_space(ahead_server)
    _shop(space)
    ahead = _ahead(ahead_server)
    _define_all(space)
    _job(ahead_server)  # the first chunk, and the second's scan asked for
    discarded = ahead.discarded
    # An order for every user: whichever are in the next chunk, its scan no longer holds.
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"v": 9}} for i in range(12)])
    _job(ahead_server)
    assert ahead.discarded == discarded + 1
    space.tick()
    assert space.stored() == space.expected()


def test_a_profile_whose_next_change_comes_between_two_jobs_is_scanned_again(ahead_server: Running) -> None:
    """User i's only order leaves `within(3 hours)` i + 1 minutes after now, and a job takes
    seven users: a clock moved ten minutes between the first two jobs leaves the second chunk's
    first three users out of its scan made ahead, and the job scans them itself."""
    space = new_space(ahead_server)
    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"v": 1},
                  "at": now - 3 * HOUR + (i + 1) * MINUTE} for i in range(30)])
    space.tick()
    ahead = _ahead(ahead_server)
    space.define("recent", "event('Order').within(3 hours).count() >= 1")
    space.define("spent", "event('Order').within(3 hours).sum('v')", kind="computed_trait")
    _job(ahead_server)
    taken = ahead.taken
    ahead_server.server.engine.clock.set(now + 10 * MINUTE + 1)
    while space.running.query("SELECT count(*) FROM computations WHERE space_id = ? AND status = 'BACKFILLING'",
                              (space.space_id,))[0][0]:
        _job(ahead_server)
    assert ahead.taken > taken
    assert space.stored() == space.expected()
    # The chunk's first three were evaluated after their orders had left: no entry, and no exit.
    # (A scan made ahead taken whole would have entered them, and their next change exited them.)
    names = _names(ahead_server, space)
    recorded = {names[pid] for (pid,) in ahead_server.query(
        "SELECT h.profile_id FROM changes h JOIN computations c USING (computation_id)"
        " WHERE c.space_id = ? AND c.key = 'recent'", (space.space_id,))}
    assert {("user_id:u7",), ("user_id:u8",), ("user_id:u9",)} & recorded == set()
    assert ("user_id:u6",) in recorded
    assert ("user_id:u10",) in recorded


def test_a_scan_process_that_dies_leaves_the_backfill_to_the_writer(tmp_path: Path) -> None:
    running = start(tmp_path / "audiences.db", manual_clock=True)
    try:
        running.server.engine.clock.set(T0)
        ahead = _ahead(running)
        ahead.min_profiles = 0
        space = new_space(running)
        _shop(space)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(evaluator, "BACKFILL_PROFILES", 2)
            patch.setattr(evaluator, "BACKFILL_PAIRS", 2 * len(SHAPES))
            _define_all(space)
            _job(running)
            assert ahead.running
            ahead._process.kill()  # type: ignore[union-attr]
            space.tick()
        assert not ahead.running
        assert ahead._broken
        assert space.stored() == space.expected()
        space.tick(at=space.now() + DAY)
        assert space.stored() == space.expected()
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def test_the_process_stops_once_no_backfill_has_been_left_for_a_while(ahead_server: Running) -> None:
    space = new_space(ahead_server)
    _shop(space)
    _define_all(space)
    _job(ahead_server)
    ahead = _ahead(ahead_server)
    assert ahead.running
    space.tick()
    space.tick()  # its job finds nothing to backfill
    assert ahead.running  # kept for the next definitions
    ahead.idle_s = 0
    try:
        space.tick()
    finally:
        ahead.idle_s = 30
    assert not ahead.running


def test_a_part_made_at_an_earlier_time_leaves_out_the_profiles_whose_change_has_come() -> None:
    covered = frozenset({1, 2, 3, 4})
    found = {1: ((1,), 100), 2: ((2,), 200), 3: ((0,), None)}
    values = {1: True, 2: True, 3: False}
    assert _valid_at(((covered, found), values), 99) == ((covered, found), values)
    assert _valid_at(((covered, found), values), 100) == (
        ({2, 3, 4}, {2: ((2,), 200), 3: ((0,), None)}), {2: True, 3: False})
    assert _valid_at(((covered, found), None), 500) == (({3, 4}, {3: ((0,), None)}), None)


@settings(
    max_examples=int(os.environ.get("EXACTNESS_EXAMPLES", "60")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    defs=definitions(),
    history=st.lists(calls(), min_size=3, max_size=10),
    script=st.lists(
        st.one_of(
            st.tuples(st.just("job"), st.none()),
            st.tuples(st.just("job"), st.none()),
            st.tuples(st.just("send"), st.lists(calls(), min_size=1, max_size=3)),
            st.tuples(st.just("move"), st.sampled_from((1, MINUTE, HOUR - 1, HOUR, HOUR + 1, 3 * HOUR))),
        ),
        max_size=12,
    ),
)
def test_backfills_scanned_ahead_write_what_backfills_scanned_in_process_write(
    lone_server: Running,
    defs: list[tuple[str, str, str, str]],
    history: list[dict[str, Any]],
    script: list[tuple[str, Any]],
) -> None:
    """Definitions created over random data, backfilled a profile or two a job, with sends and
    clock moves (some onto window edges) between the jobs. Once drained, the stored values equal
    the oracle's; and the same script in a space of its own with the process off leaves the same
    values and the same change records (the outbox), in the same order, at the same times."""
    evaluator_ = lone_server.server.engine.evaluator
    ahead = evaluator_.scan_ahead
    with_process = _scenario(lone_server, defs, history, script)
    evaluator_.scan_ahead = None
    try:
        without = _scenario(lone_server, defs, history, script)
    finally:
        evaluator_.scan_ahead = ahead
    assert with_process == without


@pytest.fixture(scope="module")
def lone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server of its own for the property test, whose scenarios delete their definitions when
    done: a job takes at most two due profiles here, so another space's next change times coming
    due would change which job takes a scenario's, and so its records' times."""
    running = start(Path(tmp_path_factory.mktemp("lone")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    _ahead(running).min_profiles = 0
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def _scenario(running: Running, defs: list[tuple[str, str, str, str]], history: list[dict[str, Any]],
              script: list[tuple[str, Any]]) -> tuple[dict[Any, Any], list[tuple[Any, ...]]]:
    """Runs the script in a new space; its stored values and change records, by identifiers and
    with times from the script's start."""
    space = new_space(running)
    start = space.now()
    send_relative(space, PRELUDE + history)
    space.tick()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluator, "BACKFILL_PROFILES", 1)
        patch.setattr(evaluator, "BACKFILL_PAIRS", 4)  # up to four definitions together, a profile or two a job
        patch.setattr(evaluator, "JOB_PROFILES", 2)  # and two account audiences, two accounts a job
        for key, kind, collection, text in defs:
            space.define(key, text, kind=kind, collection=collection)
        for action, arg in script:
            if action == "job":
                _job(running)
            elif action == "send":
                send_relative(space, arg)
            else:
                running.server.engine.clock.set(space.now() + arg)
        space.tick()
    stored = space.stored()
    assert stored == space.expected()
    names = _names(running, space)
    records = running.query(
        "SELECT c.key, h.profile_id, h.change, h.old_value, h.new_value, h.at_ms FROM changes h"
        " JOIN computations c USING (computation_id) WHERE h.space_id = ? ORDER BY h.change_id", (space.space_id,))
    for key, kind, collection, _ in reversed(defs):  # readers first
        running.server.engine.computations.delete(space.space_id, kind, collection, key)
    named = {pid: names.get(pid, ("merged away",)) for pid in {pid for _, _, pid in stored} | {r[1] for r in records}}
    return ({(collection, key, named[pid]): value for (collection, key, pid), value in stored.items()},
            [(key, named[pid], change, old, new, at - start) for key, pid, change, old, new, at in records])


def _names(running: Running, space: Space) -> dict[int, tuple[str, ...]]:
    """Each profile of the space by its identifiers (the same in two spaces given the same calls)."""
    names: dict[int, list[str]] = {}
    for pid, kind, value in running.query(
        "SELECT p.profile_id, i.id_type, i.id_value FROM profiles p JOIN identifiers i USING (profile_id)"
        " WHERE p.space_id = ?", (space.space_id,),
    ):
        names.setdefault(pid, []).append(f"{kind}:{value}")
    return {pid: tuple(sorted(found)) for pid, found in names.items()}


@pytest.fixture
def lending(tmp_path: Path) -> Iterator[Running]:
    """A manual-clock server whose live jobs lend the scan-ahead process part of their scans
    whatever their size (engine/evaluator.py, `LEND_PAIRS`)."""
    running = start(tmp_path / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluator, "LEND_PAIRS", 2)
        yield running
    running.channel.close()
    running.server.stop(grace=1)


def test_live_jobs_lend_part_of_their_scans_and_store_exact_values(lending: Running) -> None:
    """Live jobs after new orders, visits and links lend the process the scans of part of their
    profiles, account audiences' operands included: what they store is what a from-scratch
    evaluation gives, job after job, as the clock moves on."""
    space = new_space(lending)
    _define_all(space)
    space.define("ordering", "ANY (event('Order').within(1 days).count() >= 1)", collection="accounts")
    space.define("big_accounts", "ALL (event('Order').sum('v') >= 3)", collection="accounts")
    space.tick()
    ahead = _ahead(lending)
    now = space.now()
    for step in range(6):
        space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order" if (i + step) % 3 else "Visit",
                      "properties": {"v": (i * step) % 5}, "at": now - (i * 23 + step * 7) * MINUTE}
                     for i in range(12)],
                   *[{"type": "group", "userId": f"u{i}", "groupId": f"g{(i + step) % 4}", "at": now}
                     for i in range(0, 12, 5)])
        space.tick()
        assert space.stored() == space.expected()
        if step == 0:  # the first lend starts the process; jobs lend once it is ready
            deadline = time.monotonic() + 30
            while not ahead._is_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
        now += 2 * HOUR
        space.tick(at=now)
        assert space.stored() == space.expected()
    assert ahead.lent >= 5


def test_a_lent_scan_that_never_comes_back_is_made_by_the_job(lending: Running,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A lent scan whose answer fails (the process died, or answered an error) is made by the job
    itself: the values are exact all the same."""
    space = new_space(lending)
    _define_all(space)
    space.tick()
    ahead = _ahead(lending)
    asked: list[int] = []

    def lost(token: int) -> None:
        asked.append(token)

    monkeypatch.setattr(ahead, "collect", lost)
    now = space.now()
    for step in range(4):
        space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"v": i % 4},
                      "at": now - (i * 29 + step) * MINUTE} for i in range(10)])
        space.tick()
        if step == 0:
            deadline = time.monotonic() + 30
            while not ahead._is_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert space.stored() == space.expected()
    assert asked
