"""explain(): the tree's values, the events behind each reducer, and the next change with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.core.ql import CheckedDefinition, Event, Profile, evaluate, next_change_time, parse_and_check
from audiences_server.core.ql.explain import Node, explain
from audiences_server.core.ql.interpreter import Scope, holds, root_of, stream_events, value_of
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Comparison,
    Not,
    Or,
    Quantified,
    is_condition,
)
from audiences_server.core.ql.reasons import edges, summary

NOW = 1_782_900_000_000  # 2026-07-01T10:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def iso(ms: int) -> str:
    """ISO-8601 UTC text of an epoch-ms instant."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def checked(text: str, kind: str = "audience", collection: str = "users") -> CheckedDefinition:
    """A checked definition."""
    return parse_and_check(text, kind=kind, collection=collection)  # type: ignore[arg-type]


def test_a_count_lists_its_events_and_says_when_the_member_leaves() -> None:
    """A member of a 30-day audience: the count's events (with the property the where reads), how
    many each filter kept, and that it leaves when its one qualifying order is 30 days old."""
    definition = checked("event('Order Completed').where(property('revenue') >= 100).within(30 days).count() >= 1")
    profile = Profile([
        Event("Order Completed", NOW - 30 * DAY + HOUR, {"revenue": 120}, seq=7),
        Event("Order Completed", NOW - DAY, {"revenue": 15}, seq=9),
        Event("Order Completed", NOW - 40 * DAY, {"revenue": 500}, seq=3),
    ])
    explained = explain(definition, profile, NOW)
    assert explained.value is True
    count = explained.root.children[0]
    assert (count.kind, count.value) == ("aggregate", 1)
    assert count.stream is not None
    assert count.stream.seen == 3
    assert [(s.text, s.remaining) for s in count.stream.steps] == [
        (".where(property('revenue') >= 100)", 2), (".within(30 days)", 1)]
    assert [(e.seq, e.read) for e in count.stream.events] == [(7, (("property('revenue')", 120),))]
    leaves = NOW + HOUR + 1
    assert explained.next.check_ms == leaves == next_change_time(definition, profile, NOW)
    assert summary("audience", explained.next) == (
        "leaves at 2026-07-01T11:00:00.001Z, when the `Order Completed` of 2026-06-01T11:00:00Z"
        " falls out of `within(30 days)`")


def test_a_session_shows_what_it_kept_and_says_when_it_expires() -> None:
    """A session count: the events each filter kept (the session keeps the last run), and the
    member leaves when the session expires, a timeout after its last event."""
    definition = checked("event('Page Viewed').expires_after(30 minutes).count() >= 2")
    profile = Profile([Event("Page Viewed", NOW - 3 * HOUR, seq=1), Event("Page Viewed", NOW - 40 * MIN, seq=2),
                       Event("Page Viewed", NOW - 15 * MIN, seq=3)])
    explained = explain(definition, profile, NOW)
    assert explained.value is True
    count = explained.root.children[0]
    assert count.stream is not None
    assert (count.stream.seen, [(s.text, s.remaining) for s in count.stream.steps]) == (
        3, [(".expires_after(30 minutes)", 2)])
    assert explained.next.check_ms == NOW + 15 * MIN + 1 == next_change_time(definition, profile, NOW)
    assert summary("audience", explained.next) == (
        f"leaves at {iso(NOW + 15 * MIN + 1)}, when the session of the `Page Viewed` of 2026-07-01T09:45:00Z"
        " expires (`expires_after(30 minutes)`)")


def test_an_early_check_is_told_apart_from_the_real_change() -> None:
    """An order that fails the where still makes an edge: the check comes first, the change later."""
    definition = checked("event('A').where(property('v') > 1).within(1 day).count() >= 1")
    profile = Profile([Event("A", NOW - 20 * HOUR, {"v": 0}, seq=1), Event("A", NOW - 10 * HOUR, {"v": 5}, seq=2)])
    found = explain(definition, profile, NOW).next
    assert found.check_ms == NOW + 4 * HOUR + 1
    assert [e.seq for e in found.check_reasons] == [1]
    assert (found.change_ms, found.value, [e.seq for e in found.reasons]) == (NOW + 14 * HOUR + 1, False, [2])


def test_accounts_show_which_users_satisfied_any() -> None:
    """ANY lists the users who satisfy it first, with counts, each explained on its own profile."""
    definition = checked("ANY (trait('plan') = 'pro')", collection="accounts")
    users = [Profile([], {"plan": "free"}), Profile([], {"plan": "pro"}), Profile([], {})]
    explained = explain(definition, Profile([], {}, users), NOW, user_ids=["u1", "u2", "u3"])
    node = explained.root
    assert (node.kind, node.value, node.users_holding, node.users_total) == ("any", True, 1, 3)
    assert [(u.user, u.value) for u in node.users] == [("u2", True), ("u1", False), ("u3", False)]
    assert node.users[0].node.children[0].value == "pro"


def test_limits_keep_the_newest_events_and_the_oldest_for_first() -> None:
    """At most `limit` events are listed: the newest, except the oldest for first(); the count is whole."""
    profile = Profile([Event("A", NOW - i * MIN, {"k": i}, seq=i) for i in range(1, 8)])
    last = explain(checked("event('A').last('k')", "computed_trait"), profile, NOW, limit=3).root
    first = explain(checked("event('A').first('k')", "computed_trait"), profile, NOW, limit=3).root
    assert last.stream is not None
    assert first.stream is not None
    assert (last.value, [e.value for e in last.stream.events], last.stream.count) == (1, [1, 2, 3], 7)
    assert (first.value, [e.value for e in first.stream.events]) == (7, [7, 6, 5])


def test_a_relative_date_names_the_value_and_a_trait_its_new_value() -> None:
    """A date comparator's edge names the value crossing it; a computed trait's change names the new value."""
    definition = checked("trait('renewal').within_next(7 days)")
    profile = Profile([], {"renewal": iso(NOW + 10 * DAY)})
    found = explain(definition, profile, NOW).next
    assert summary("audience", found) == (
        f"enters at {iso(NOW + 3 * DAY)[:-5]}Z, when `trait('renewal')` = '{iso(NOW + 10 * DAY)}'"
        " comes into `within_next(7 days)`")
    counted = explain(checked("event('A').within(1 hour).count()", "computed_trait"),
                      Profile([Event("A", NOW - 30 * MIN, seq=1)]), NOW).next
    assert summary("computed_trait", counted).startswith(f"becomes 0 at {iso(NOW + 30 * MIN + 1)}")


def test_no_change_without_new_data() -> None:
    """Nothing on the clock ahead: the value does not change and every edge was searched."""
    found = explain(checked("trait('plan') = 'pro'"), Profile([], {"plan": "pro"}), NOW).next
    assert (found.check_ms, found.change_ms, found.exhausted) == (None, None, True)
    assert summary("audience", found) == "does not change without new data"


# ---------------------------------------------------------------- on random definitions and data

NAME = st.sampled_from(["A", "B"])
WINDOW = st.one_of(st.just(""), st.integers(1, 48).map(lambda h: f".within({h} hours)"),
                   st.integers(0, 24).map(lambda h: f".between({h} hours, {h + 12} hours)"),
                   st.integers(1, 12).map(lambda h: f".expires_after({h} hours)"))
WHERE = st.one_of(st.just(""), st.integers(0, 3).map(lambda k: f".where(property('n') >= {k})"),
                  st.just(".where(event('B').within(parent: 2 hours).count() >= 1)"))
REDUCER = st.sampled_from(["count()", "sum('n')", "max('n')", "first('n')", "last('d')", "unique('n').count()",
                           "mode('n', 1)"])
LEAF = st.one_of(
    st.builds(lambda n, w, f, k: f"event('{n}'){f}{w}.count() >= {k}", NAME, WINDOW, WHERE, st.integers(0, 2)),
    st.builds(lambda n, w, f: f"event('{n}'){w}{f}.sum('n') > 2", NAME, WINDOW, WHERE),
    st.sampled_from(["trait('plan') = 'pro'", "trait('d').within_last(1 day)", "trait('d').within_next(6 hours)",
                     "event('A').last('d').before_last(2 hours)"]),
)
CONDITION = st.recursive(LEAF, lambda inner: st.one_of(
    inner.map(lambda c: f"NOT ({c})"),
    st.builds(lambda a, b: f"({a}) AND ({b})", inner, inner),
    st.builds(lambda a, b: f"({a}) OR ({b})", inner, inner)), max_leaves=3)
OFFSET = st.builds(lambda m, j: m * MIN + j, st.integers(-3 * 24 * 60, 12 * 60), st.sampled_from([0, 1, -1]))


@st.composite
def users(draw: st.DrawFn) -> Profile:
    """A user with a few A/B events (seq unique within the case) and plan/date traits."""
    count = draw(st.integers(0, 6))
    events = [Event(draw(NAME), NOW + draw(OFFSET), {"n": draw(st.integers(0, 4)), "d": iso(NOW + draw(OFFSET))},
                    seq=draw(st.integers(0, 10**6))) for _ in range(count)]
    return Profile(events, {"plan": draw(st.sampled_from(["pro", "free"])), "d": iso(NOW + draw(OFFSET))})


@st.composite
def cases(draw: st.DrawFn) -> tuple[CheckedDefinition, Profile, str]:
    """A user audience, a user computed trait or an account audience, and a profile for it."""
    shape = draw(st.sampled_from(["audience", "trait", "account"]))
    if shape == "trait":
        text = f"event('{draw(NAME)}'){draw(WINDOW)}{draw(WHERE)}.{draw(REDUCER)}"
        return checked(text, "computed_trait"), draw(users()), "computed_trait"
    text = draw(CONDITION)
    if shape == "audience":
        return checked(text), draw(users()), "audience"
    quantifier = draw(st.sampled_from(["ANY", "ALL", "ALL NOT"]))
    account = Profile([], {"plan": "pro"}, draw(st.lists(users(), max_size=3)))
    return checked(f"{quantifier} ({text})", collection="accounts"), account, "audience"


def _parts(tree: Any) -> tuple[Any, ...]:
    """The sub-parts the explanation's children stand for."""
    if isinstance(tree, And | Or):
        return tree.items
    if isinstance(tree, Not):
        return (tree.operand,)
    if isinstance(tree, Comparison):
        return (tree.subject, *tree.operands)
    return ()


def _check_node(node: Node, scope: Scope, tree: Any, limit: int) -> None:
    """Each part's value is the interpreter's, and each reducer's events agree with its stream
    (all of them, for a count under the limit)."""
    wanted_value = holds(tree, scope) if is_condition(tree) else value_of(tree, scope)
    assert json.dumps(node.value) == json.dumps(wanted_value)
    if isinstance(tree, Aggregate):
        assert node.stream is not None
        wanted = stream_events(tree.stream, scope)
        assert node.stream.count == len(wanted)
        assert len(node.stream.events) == min(limit, len(wanted))
        if tree.function is AggregateFunction.COUNT and len(wanted) <= limit:
            assert sorted(e.seq for e in node.stream.events) == sorted(e.seq for e in wanted)
    if isinstance(tree, Quantified):
        assert node.users_total == len(scope.profile.users)
        for user in node.users:
            user_scope = Scope(scope.profile.users[user.user], scope.now_ms)
            _check_node(user.node, user_scope, tree.operand, limit)
        return
    parts = _parts(tree)
    assert len(node.children) == len(parts)
    for child, part in zip(node.children, parts, strict=True):
        _check_node(child, scope, part, limit)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 4), st.integers(-DAY, DAY))
def test_explanations_agree_with_the_interpreter(case: tuple[CheckedDefinition, Profile, str], limit: int,
                                                 shift: int) -> None:
    """On random definitions and profiles: the root is the interpreter's value, every node's events
    agree with its stream, the check time is next_change_time (the earliest edge), and the change
    found is the first instant the value differs."""
    definition, profile, kind = case
    now = NOW + shift
    explained = explain(definition, profile, now, limit=limit)
    value = evaluate(definition, profile, now)
    assert json.dumps(explained.value) == json.dumps(explained.root.value) == json.dumps(value)
    _check_node(explained.root, Scope(profile, now), root_of(definition), limit)
    found = explained.next
    assert found.check_ms == next_change_time(definition, profile, now)
    instants = sorted({e.at_ms for e in edges(definition, profile, now)})
    assert found.check_ms == (instants[0] if instants else None)
    if found.change_ms is not None:
        assert found.check_ms is not None
        assert found.check_ms <= found.change_ms
        assert json.dumps(evaluate(definition, profile, found.change_ms - 1)) == json.dumps(value)
        assert json.dumps(evaluate(definition, profile, found.change_ms)) == json.dumps(found.value)
        assert found.reasons
        assert summary(kind, found)
    elif found.exhausted:
        assert all(json.dumps(evaluate(definition, profile, t)) == json.dumps(value) for t in instants)


def test_the_next_change_of_a_profile_of_very_many_events_is_searched_within_a_budget(
        monkeypatch: Any) -> None:
    """Each edge tried evaluates the whole profile again: a profile of 500,000 events took minutes
    over its 200 edges. With more events than the budget allows for 200 tries, fewer edges are
    tried (at least one) and the search says it was cut short; a change among them is still
    found exactly."""
    from audiences_server.core.ql import reasons

    events = [Event("A", NOW - DAY + (n + 1) * MIN, {}, seq=n) for n in range(100)]
    anyone = checked("event('A').within(1 day).count() >= 1")  # changes when the last falls out
    every = checked("event('A').within(1 day).count() >= 100")  # changes when the first does
    found = explain(anyone, Profile(events), NOW).next
    assert (found.change_ms, found.exhausted) == (NOW + 100 * MIN + 1, True)
    monkeypatch.setattr(reasons, "SEARCH_BUDGET", 1_000)  # 100 events: 10 edges tried
    cut = explain(anyone, Profile(events), NOW).next
    assert (cut.change_ms, cut.exhausted) == (None, False)
    first = explain(every, Profile(events), NOW).next
    assert (first.change_ms, first.exhausted) == (NOW + MIN + 1, True)
