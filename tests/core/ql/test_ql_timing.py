"""next_change_time: exact edges on simple cases, and soundness on random definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.core.ql import (
    CheckedDefinition,
    Collection,
    Event,
    Profile,
    evaluate,
    next_change_time,
    parse_and_check,
)

NOW = 1_700_000_000_000
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def iso(ms: int) -> str:
    """ISO-8601 UTC text of an epoch-ms instant."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def audience(text: str, collection: Collection = "users") -> CheckedDefinition:
    """A checked audience."""
    return parse_and_check(text, kind="audience", collection=collection)


EXACT = [
    ("session_expires", "event('A').expires_after(30 minutes).count() >= 1",
     Profile([Event("A", NOW - 40 * MIN), Event("A", NOW - 10 * MIN)]), NOW + 20 * MIN + 1),
    ("leaves_within", "event('A').within(7 days).count() >= 1",
     Profile([Event("A", NOW - DAY)]), NOW + 6 * DAY + 1),
    ("future_event_arrives", "event('A').count() >= 1", Profile([Event("A", NOW + 5 * HOUR)]),
     NOW + 5 * HOUR),
    ("enters_between", "event('A').between(1 day, 2 days).count() >= 1",
     Profile([Event("A", NOW - 12 * HOUR)]), NOW + 12 * HOUR),
    ("leaves_between", "event('A').between(1 day, 2 days).count() >= 1",
     Profile([Event("A", NOW - 36 * HOUR)]), NOW + 12 * HOUR + 1),
    ("within_last_leaves", "trait('d').within_last(7 days)",
     Profile([], {"d": iso(NOW - DAY)}), NOW + 6 * DAY + 1),
    ("within_next_enters", "trait('d').within_next(7 days)",
     Profile([], {"d": iso(NOW + 10 * DAY)}), NOW + 3 * DAY),
    ("within_next_leaves", "trait('d').within_next(7 days)",
     Profile([], {"d": iso(NOW - 1 + DAY)}), NOW + DAY),
    ("before_last_enters", "trait('d').before_last(7 days)",
     Profile([], {"d": iso(NOW - DAY)}), NOW + 6 * DAY),
    ("after_next_leaves", "trait('d').after_next(7 days)",
     Profile([], {"d": iso(NOW + 10 * DAY)}), NOW + 3 * DAY + 1),
    ("property_date", "event('A').where(property('d').within_last(1 day)).count() >= 1",
     Profile([Event("A", NOW - HOUR, {"d": iso(NOW - HOUR)})]), NOW + 23 * HOUR + 1),
    ("account_user_event", "ANY event('A').within(1 hour).count() >= 1",
     Profile([], {}, [Profile([Event("A", NOW - 30 * MIN)])]), NOW + 30 * MIN + 1),
    ("account_user_trait_date", "ANY trait('d').within_last(1 hour)",
     Profile([], {}, [Profile([], {"d": iso(NOW - 30 * MIN)})]), NOW + 30 * MIN + 1),
]


@pytest.mark.parametrize(("text", "profile", "expected"),
                         [pytest.param(*row[1:], id=row[0]) for row in EXACT])
def test_exact_edges(text: str, profile: Profile, expected: int) -> None:
    """For one event or date the time returned is exactly the first millisecond that differs."""
    definition = audience(text, "accounts" if profile.users else "users")
    assert next_change_time(definition, profile, NOW) == expected
    assert evaluate(definition, profile, expected - 1) == evaluate(definition, profile, NOW)
    assert evaluate(definition, profile, expected) != evaluate(definition, profile, NOW)


@pytest.mark.parametrize(
    ("text", "profile"),
    [
        ("trait('plan') = 'pro'", Profile([], {"plan": "pro"})),
        ("event('A').count() >= 1", Profile([Event("A", NOW - DAY)])),
        ("trait('d').before_date('2030-01-01')", Profile([], {"d": iso(NOW)})),
        ("event('A').within(1 day).count() >= 1", Profile([Event("B", NOW)])),
        ("trait('d').within_last(1 day)", Profile([], {"d": "not a date"})),
    ],
)
def test_never_changes(text: str, profile: Profile) -> None:
    """With nothing ahead on the clock the answer is None."""
    assert next_change_time(audience(text), profile, NOW) is None


# ---------------------------------------------------------------- soundness on random input

DURATION = st.builds(lambda n, u: f"{n} {u}", st.integers(0, 4),
                     st.sampled_from(["seconds", "minutes", "hours", "days"]))
DATE_OPS = st.sampled_from(["within_last", "within_next", "before_last", "after_next"])
COMPARE = st.sampled_from([">=", "<=", "=", ">", "<"])


@st.composite
def between(draw: st.DrawFn, parent: bool = False) -> str:
    """A between() filter with start <= end (in minutes)."""
    low = draw(st.integers(0, 3000))
    high = draw(st.integers(low, 3000))
    label = "parent: " if parent else ""
    return f".between({label}{low} minutes, {high} minutes)"


SESSION = st.builds(lambda n, u: f".expires_after({n} {u})", st.integers(1, 4), st.sampled_from(["minutes", "hours"]))
FILTER = st.one_of(DURATION.map(lambda d: f".within({d})"), between(),
                   st.integers(0, 3).map(lambda k: f".where(property('n') >= {k})"), SESSION)
CHILD_FILTER = st.one_of(FILTER, DURATION.map(lambda d: f".within(parent: {d})"),
                         between(parent=True))
FILTERS = st.lists(FILTER, max_size=2).map("".join)
CHILD_FILTERS = st.lists(CHILD_FILTER, max_size=2).map("".join)
NAME = st.sampled_from(["A", "B"])
REDUCER = st.sampled_from(["first('d')", "last('d')", "min('d' as string)",
                           "max('d' as string)", "mode('d', 1)"])


def leaves() -> st.SearchStrategy[str]:
    """Leaf conditions touching every clock-dependent feature."""
    return st.one_of(
        st.builds(lambda n, f, op, k: f"event('{n}'){f}.count() {op} {k}", NAME, FILTERS,
                  COMPARE, st.integers(0, 2)),
        st.builds(lambda n, f, r, op, d: f"event('{n}'){f}.{r}.{op}({d})", NAME, FILTERS,
                  REDUCER, DATE_OPS, DURATION),
        st.builds(lambda op, d: f"trait('d').{op}({d})", DATE_OPS, DURATION),
        st.builds(lambda f, c: f"event('A'){f}.where(event('B'){c}.count() >= 1).count() >= 1",
                  FILTERS, CHILD_FILTERS),
        st.builds(lambda n, f, op, d: f"event('{n}'){f}.where(property('d').{op}({d}))"
                  ".count() >= 1", NAME, FILTERS, DATE_OPS, DURATION),
        st.builds(lambda n, f, k: f"event('{n}'){f}.sum('n') > {k}", NAME, FILTERS,
                  st.integers(0, 4)),
    )


def conditions() -> st.SearchStrategy[str]:
    """Leaves combined with NOT, AND and OR."""
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            inner.map(lambda c: f"NOT ({c})"),
            st.builds(lambda a, b: f"({a}) AND ({b})", inner, inner),
            st.builds(lambda a, b: f"({a}) OR ({b})", inner, inner),
        ),
        max_leaves=3,
    )


OFFSET = st.builds(lambda m, j: m * MIN + j, st.integers(-4 * 24 * 60, 24 * 60),
                   st.sampled_from([0, 0, 1, -1]))


def events() -> st.SearchStrategy[list[Event]]:
    """A few A/B events near NOW, with a number and a date property."""
    event = st.builds(lambda name, ts, n, d, seq: Event(name, NOW + ts, {"n": n, "d": iso(NOW + d)},
                                                        seq=seq),
                      NAME, OFFSET, st.integers(0, 3), OFFSET, st.integers(0, 5))
    return st.lists(event, max_size=5)


def users() -> st.SearchStrategy[Profile]:
    """A user profile with events and a date trait."""
    return st.builds(lambda evs, d: Profile(evs, {"d": iso(NOW + d)}), events(), OFFSET)


@st.composite
def cases(draw: st.DrawFn) -> tuple[CheckedDefinition, Profile]:
    """A checked audience and a user or account profile to evaluate it on."""
    text = draw(conditions())
    if draw(st.booleans()):
        return audience(text), draw(users())
    quantifier = draw(st.sampled_from(["ANY", "ALL", "ALL NOT", ""]))
    text = f"{quantifier} ({text})" if quantifier else text
    account = Profile([], {"d": iso(NOW + draw(OFFSET))}, draw(st.lists(users(), max_size=3)))
    return audience(text, "accounts"), account


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.data())
def test_next_change_time_is_sound(case: tuple[CheckedDefinition, Profile],
                                   data: st.DataObject) -> None:
    """No result change happens strictly between now and next_change_time.

    The clock walks from change time to change time; each gap is sampled at its first and
    last millisecond (where an off-by-one edge would show) and at random points inside it.
    """
    definition, profile = case
    now = NOW + data.draw(st.integers(-DAY, DAY))
    for _ in range(8):
        before = evaluate(definition, profile, now)
        due = next_change_time(definition, profile, now)
        assert due is None or due > now
        end = now + 10 * DAY if due is None else due - 1
        if end > now:
            inside = data.draw(st.lists(st.integers(now + 1, end), max_size=3))
            for moment in sorted({now + 1, end, *inside}):
                assert evaluate(definition, profile, moment) == before, (moment - now, due)
        if due is None:
            return
        now = due
