"""The evaluator's contract, checked on random data: after every tick, every stored value equals a
from-scratch evaluation by the reference interpreter at that time (docs/evaluator.md, "Correctness").

Random event streams (out-of-order timestamps, events in the future, identity merges, trait
writes and removals, group links and their removal), random definitions from the whole language (windows,
`between`, filters, aggregates, funnels, NOT, audiences of audiences, account ANY/ALL/ALL NOT),
and random clock moves, some landing exactly on window edges; everything goes through the real
server and the generated client.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Running, start
from tests.evaluator.conftest import HOUR, T0, Space, new_space

MINUTE = 60_000
EVENTS = ("A", "B")
USERS = ("u1", "u2", "u3")
ANONS = ("x1", "x2")
GROUPS = ("g1", "g2")

USER_TEMPLATES = (
    "event('{e}').within({n} hours).count() >= 1",
    "event('{e}').within({n} hours).count() <= 1",
    "event('{e}').between(1 hours, {n} hours).count() >= 1",
    "event('{e}').where(property('v') > 2).count() >= 1",
    "event('{e}').where(property('v') = '3' OR property('k') = 'a').within({n} hours).count() >= 2",
    "NOT (event('{e}').within({n} hours).count() >= 1)",
    "trait('plan') = 'pro'",
    "trait('plan') != 'pro' AND event('{e}').count() >= 1",
    "event('A').where(event('B').within(parent: {n} hours).count() >= 1).count() >= 1",
    "event('{e}').within({n} hours).sum('v') >= 4",
    "event('{e}').within({n}799 seconds).count() >= 1",
    # A trait literally named with a dot is read first, then the walk into nested objects; an
    # escaped dot reads the literal name alone.
    "trait('addr.city') = 'oslo'",
    "trait('addr\\\\.city') = 'oslo' OR event('{e}').count() >= 2",
    "event('{e}').expires_after({n} hours).count() >= 2",
)
USER_TRAIT_TEMPLATES = (
    "event('{e}').within({n} hours).sum('v')",
    "event('{e}').max('v')",
    "event('{e}').within({n} hours).last('k')",
    "event('{e}').unique('k').count()",
    "event('{e}').mode('k', 1)",
    "event('{e}').between(1 hours, {n} hours).count()",
    "event('{e}').between(61 seconds, {n}801 seconds).count()",
    "event('{e}').expires_after({n} hours).count()",
    "event('{e}').where(property('v') > 2).expires_after({n}799 seconds).sum('v')",
)
ACCOUNT_TEMPLATES = (
    "ANY (event('{e}').within({n} hours).count() >= 1)",
    "ALL (trait('plan') = 'pro')",
    "ALL NOT (event('{e}').count() >= 2)",
    "ANY (event('{e}').expires_after({n} hours).count() >= 2)",
    "trait('industry') = 'retail' AND ANY (trait('plan') = 'pro')",
)


@st.composite
def definitions(draw: st.DrawFn) -> list[tuple[str, str, str, str]]:
    """(key, kind, collection, definition) in creation order; later user audiences may read earlier ones."""
    out: list[tuple[str, str, str, str]] = []
    user_audiences: list[str] = []
    account_audiences: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        e, n = draw(st.sampled_from(EVENTS)), draw(st.integers(1, 6))
        shape = draw(st.sampled_from(("user", "user", "trait", "account", "derived")))
        key = f"d{i}"
        if shape == "derived" and (user_audiences or account_audiences):
            other = draw(st.sampled_from(user_audiences + account_audiences))
            text = draw(
                st.sampled_from(
                    (f"trait('{other}') = true AND event('{e}').count() >= 1", f"NOT (trait('{other}') = true)")
                )
            )
            out.append((key, "audience", "users", text))
            user_audiences.append(key)
        elif shape == "trait":
            text = draw(st.sampled_from(USER_TRAIT_TEMPLATES)).format(e=e, n=n)
            out.append((key, "computed_trait", "users", text))
        elif shape == "account":
            text = draw(st.sampled_from(ACCOUNT_TEMPLATES)).format(e=e, n=n)
            if user_audiences and draw(st.booleans()):
                text = f"ANY (trait('{draw(st.sampled_from(user_audiences))}') = true)"
            out.append((key, "audience", "accounts", text))
            account_audiences.append(key)
        else:
            text = draw(st.sampled_from(USER_TEMPLATES)).format(e=e, n=n)
            out.append((key, "audience", "users", text))
            user_audiences.append(key)
    return out


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    """One tracking call, relative to now (`offset` is turned into a timestamp when sent)."""
    ids: dict[str, str] = {}
    who = draw(st.sampled_from(("user", "anon", "both")))
    if who in {"user", "both"}:
        ids["userId"] = draw(st.sampled_from(USERS))
    if who in {"anon", "both"}:
        ids["anonymousId"] = draw(st.sampled_from(ANONS))
    kind = draw(st.sampled_from(("track", "track", "track", "identify", "group")))
    if kind == "track":
        props: dict[str, Any] = {}
        if draw(st.booleans()):
            props["v"] = draw(st.sampled_from((1, 3, 5, "3", "x", None, 2.5, True)))
        if draw(st.booleans()):
            props["k"] = draw(st.sampled_from(("a", "b")))
        offset = draw(st.sampled_from((0, -1, -HOUR, -2 * HOUR - 1, -5 * HOUR, 30 * MINUTE, -7 * HOUR)))
        return {"type": "track", **ids, "event": draw(st.sampled_from(EVENTS)), "properties": props, "offset": offset}
    if kind == "identify":
        traits: dict[str, Any] = {"plan": draw(st.sampled_from(("pro", "free", None)))}
        if draw(st.booleans()):
            traits["addr.city"] = draw(st.sampled_from(("oslo", "rome", None)))
        if draw(st.booleans()):
            traits["addr"] = draw(st.sampled_from(({"city": "oslo"}, {"city": "rome"}, None)))
        return {"type": "identify", **ids, "traits": traits, "offset": draw(st.sampled_from((0, -HOUR)))}
    if draw(st.integers(0, 3)) == 0:  # a user leaving an account, possibly out of order
        return {"type": "group", **ids, "groupId": draw(st.sampled_from(GROUPS)), "context": {"unlink": True},
                "offset": draw(st.sampled_from((0, -HOUR)))}
    return {
        "type": "group",
        **ids,
        "groupId": draw(st.sampled_from(GROUPS)),
        "traits": {"industry": draw(st.sampled_from(("retail", "media")))},
        "offset": draw(st.sampled_from((0, 0, -HOUR))),
    }


steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.lists(calls(), min_size=1, max_size=4)),
        st.tuples(st.just("advance"), st.sampled_from((1, MINUTE, HOUR - 1, HOUR, HOUR + 1, 3 * HOUR, 30 * MINUTE))),
        # The clock moved with no tick: the next tick finds due edges and the calls sent meanwhile.
        st.tuples(st.just("move"), st.sampled_from((1, HOUR, HOUR + 1, 3 * HOUR))),
        st.tuples(st.just("tick"), st.none()),
    ),
    min_size=4,
    max_size=14,
)


@settings(
    max_examples=int(os.environ.get("EXACTNESS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(defs=definitions(), history=st.lists(calls(), min_size=2, max_size=8), script=steps)
def test_every_tick_matches_a_from_scratch_evaluation(
    shared_server: Running,
    defs: list[tuple[str, str, str, str]],
    history: list[dict[str, Any]],
    script: list[tuple[str, Any]],
) -> None:
    """Whatever the data, definitions and clock moves, after each tick stored values equal the oracle's."""
    _run(shared_server, defs, history, script)


@pytest.fixture(scope="module")
def sliced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A manual-clock server whose ticks take one piece of waiting work each (a touched profile
    or a due pair): every job of an unbounded tick becomes ticks of its own."""
    running = start(Path(tmp_path_factory.mktemp("sliced")) / "audiences.db", manual_clock=True, tick_slice=1)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


@settings(
    max_examples=int(os.environ.get("EXACTNESS_EXAMPLES", "60")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(defs=definitions(), history=st.lists(calls(), min_size=2, max_size=8), script=steps)
def test_bounded_ticks_match_a_from_scratch_evaluation_once_drained(
    sliced_server: Running,
    defs: list[tuple[str, str, str, str]],
    history: list[dict[str, Any]],
    script: list[tuple[str, Any]],
) -> None:
    """The same with a tick slice of one: the waiting work is taken a piece per tick (profiles in
    turn, due profiles oldest first), and once RunTick has drained it the values equal the oracle's."""
    _run(sliced_server, defs, history, script)


def _run(server: Running, defs: list[tuple[str, str, str, str]], history: list[dict[str, Any]],
         script: list[tuple[str, Any]]) -> None:
    space = new_space(server)
    for key, kind, collection, text in defs:
        space.define(key, text, kind=kind, collection=collection)
    for action, arg in [("send", PRELUDE + history), ("tick", None), *script, ("tick", None)]:
        if action == "send":
            send_relative(space, arg)
            continue
        if action == "move":
            space.running.server.engine.clock.set(space.now() + arg)
            continue
        mark = _last_change(space)
        space.tick(at=space.now() + arg if action == "advance" else None)
        assert space.stored() == space.expected()
        assert _changed_twice(space, mark) == []


def _last_change(space: Space) -> int:
    return int(space.running.query("SELECT coalesce(max(change_id), 0) FROM changes")[0][0])


def _changed_twice(space: Space, after: int) -> list[tuple[int, int, str]]:
    """The (definition, profile) pairs with more than one change record after `after`: a tick
    (until idle, at one time, with no call arriving) moves each value at most once, however its
    work was split into jobs; two records are an entry and an exit no evaluation at one time gives."""
    return [(cid, pid, changes) for cid, pid, changes in space.running.query(
        "SELECT computation_id, profile_id, group_concat(change) FROM changes WHERE change_id > ? AND space_id = ?"
        " GROUP BY computation_id, profile_id HAVING count(*) > 1", (after, space.space_id))]


# Every user starts in an account, so account definitions always have users to quantify over.
PRELUDE = [{"type": "group", "userId": u, "groupId": g, "traits": {}, "offset": 0}
           for u, g in zip(USERS, ("g1", "g2", "g1"), strict=True)]


def send_relative(space: Space, calls: list[dict[str, Any]]) -> None:
    """Sends calls drawn by `calls()`, each stamped at its `offset` from the space's now."""
    now = space.now()
    space.send(*[{**{k: v for k, v in c.items() if k != "offset"}, "at": now + c["offset"]} for c in calls])
