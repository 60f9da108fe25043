"""The SQL plans give the interpreter's results exactly: a differential test on random data.

Random users (some holding only an anonymous id) with random events (several names, timestamps in
the past, on window edges, before the event floor and in the future, several sources) whose
properties and context are of every kind (missing, null, integers up to past 64 bits, floats,
numeric and other text, text with NUL, booleans, lists, objects, nested and dotted keys), random
traits and stored values of other definitions, and random definitions from the subset the fast
path compiles, all written into a real database made by the project's migrations. For every
profile, the value `Evaluation._compute` gets from the plan must equal the one it gets from the
interpreter (same JSON text, so `1` and `1.0` differ), and the plan's next change time must be
after now, one of the instants at which an event crosses a window edge, and never later than the
first instant at which the interpreter's result actually changes.

`FASTPATH_EXAMPLES=2000` runs longer.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from audiences_server.core import ql
from audiences_server.core.ql.interpreter import all_events
from audiences_server.core.ql.nodes import (
    OPERAND_SHAPE,
    Aggregate,
    AggregateFunction,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Definition,
    Duration,
    Filter,
    Literal,
    Not,
    Operator,
    Or,
    PropertyRef,
    Quantified,
    Scalar,
    Sources,
    Stream,
    TraitRef,
    Where,
    Within,
)
from audiences_server.engine.evaluator import Evaluation, canonical
from audiences_server.engine.registry import Compiled, Registry, definition
from audiences_server.engine.registry import Definition as Evaluated
from audiences_server.store import evaluation as store
from audiences_server.store.migrations import migrate
from audiences_server.store.sql.plans import AccountPlan, Plan, _parsed, scan_together

NOW = 1_800_000_000_000
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
EVENTS = ("A", "B", "C")
DURATIONS = (Duration(0, "minute"), Duration(1, "hour"), Duration(1, "day"), Duration(2, "day"), Duration(30, "day"))
# Every instant at which a stream of these windows can change is an event's timestamp plus one of these.
OFFSETS = sorted({0, *(d.ms for d in DURATIONS), *(d.ms + 1 for d in DURATIONS)})
PROPERTY_PATHS = ("v", "w", "a.b", "n.x", "k y", "a\\.b", "n\\.x.b")
CONTEXT_PATHS = ("ip", "page.url")
TRAIT_KEYS = ("plan", "score", "addr.city", "addr\\.city", "member", "total")
RELATIVE = frozenset({Operator.WITHIN_LAST, Operator.WITHIN_NEXT, Operator.BEFORE_LAST, Operator.AFTER_NEXT})
TEXT_OPERATORS = frozenset({Operator.CONTAINS, Operator.OMITS, Operator.STARTS_WITH, Operator.ENDS_WITH})
ORDERING = frozenset({Operator.GREATER_THAN, Operator.AT_LEAST, Operator.LESS_THAN, Operator.AT_MOST})
DATE_OPERATORS = frozenset({Operator.BEFORE_DATE, Operator.AFTER_DATE})
OPERATORS = sorted(set(Operator) - RELATIVE)
USUAL_OPERATORS = (Operator.EQUALS, Operator.GREATER_THAN, Operator.AT_LEAST, Operator.AT_MOST, Operator.EXISTS)

# ------------------------------------------------------------------ data

TEXTS = ("5", "05", "2.5", "1e3", " 5", "abc", "ab", "", "Ab", "é", "a\x00b", "x5", "-3", "+4", ".5", "5.",
         "1e400", "99999999999999999999", "2024-01-01", "2024-01-01T00:00:00Z", "2023-12-31T23:00:00-02:00",
         "47", "-abc", "1abc", ".", "+")
# Mostly values that definitions match (small numbers, their text), and every odd kind besides.
COMMON = (0, 1, 2, 3, 5, 2.5, 3.0, "3", "5", "ab", "Ab", "b", "")
usual = st.sampled_from(COMMON)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from((2**63, 2**70, -(2**63) - 1, 2**63 - 1, 10**20, 9007199254740993, 10**400, -(10**400))),
    st.sampled_from((1.0, -0.0, 0.1, 0.2, 1e16, 5.0, 9007199254740992.0, 1e308, -1e308)),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(TEXTS),
    st.text("ab5.e-", max_size=3),
)
scalars = st.one_of(usual, usual, odd)
values = st.one_of(
    scalars, scalars, scalars, st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(("b", "x", "url")), scalars, max_size=2),
)
properties = st.fixed_dictionaries({}, optional=dict.fromkeys(("v", "v", "w", "a.b", "a", "n", "n.x", "k y"), values))
contexts = st.fixed_dictionaries({}, optional=dict.fromkeys(("ip", "page", "page.url"), values))
# Mostly on or next to window edges (every duration used, either side), some anywhere.
EDGES = sorted({sign * d.ms + step for d in DURATIONS for sign in (-1, 1) for step in (-1, 0, 1)})
offsets = st.one_of(st.sampled_from(EDGES), st.sampled_from(EDGES), st.integers(-40 * DAY, 2 * DAY))
events = st.fixed_dictionaries({
    "event": st.sampled_from(("A", "A", "B", "B", "C", None)),
    "offset": offsets,
    "properties": properties,
    "context": contexts,
    "source": st.sampled_from(("", "", "s1", "s2")),
})
users = st.lists(
    st.fixed_dictionaries({
        "known": st.booleans(),
        "events": st.lists(events, max_size=10),
        "traits": st.dictionaries(st.sampled_from(("plan", "score", "addr", "addr.city")), values, max_size=3),
        "member": st.sampled_from((None, "true", "false")),
        "total": st.sampled_from((None, "3", "2.5", '"x"')),
    }),
    min_size=1,
    max_size=5,
)

# ------------------------------------------------------------------ definitions


def literals(operator: Operator) -> st.SearchStrategy[Literal]:
    """Literals the checker accepts for the operator (and that SQLite holds exactly)."""
    if operator in TEXT_OPERATORS:
        found: st.SearchStrategy[Any] = st.sampled_from(("a", "b", "5", "", "é", "ab", "Ab", "x5"))
    elif operator in DATE_OPERATORS:
        found = st.sampled_from(("2024-01-01", "2020-06-01T00:00:00Z"))
    else:
        common = [v for v in COMMON if operator not in ORDERING or not isinstance(v, bool)]
        found = st.one_of(
            st.sampled_from(common),
            st.sampled_from(common),
            st.integers(-3, 12),
            st.sampled_from((2**63 - 1, -(2**63), 9007199254740992)),
            st.sampled_from((2.5, 0.1, 5.0, -0.0, 1e16, 9007199254740992.0)),
            st.sampled_from(("5", "05", "2.5", "abc", "ab", "", "Ab", "1e3", "1e400", "x5", "2024-01-01", "47",
                             "-abc", "1abc")),
            *(() if operator in ORDERING else (st.booleans(),)),
        )
    return found.map(Literal)


@st.composite
def comparisons(draw: st.DrawFn, subjects: st.SearchStrategy[Scalar], others: st.SearchStrategy[Scalar]) -> Comparison:
    operator = draw(st.one_of(st.sampled_from(USUAL_OPERATORS), st.sampled_from(OPERATORS)))
    shape = OPERAND_SHAPE[operator]
    count = {"none": 0, "one": 1}[shape] if shape != "many" else draw(st.integers(1, 3))
    operand = st.one_of(literals(operator), others) if shape == "one" else literals(operator)
    return Comparison(draw(subjects), operator, tuple(draw(operand) for _ in range(count)))


def conditions(leaves: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
            inner.map(Not),
        ),
        max_leaves=4,
    )


fields = st.one_of(st.sampled_from(PROPERTY_PATHS).map(PropertyRef), st.sampled_from(CONTEXT_PATHS).map(ContextRef))
parent_fields = st.sampled_from(PROPERTY_PATHS).map(lambda path: PropertyRef(path, parent=True))
# Literal-only filters (the typing rules), and filters that also compare two fields of an event.
literal_wheres = conditions(comparisons(fields, st.nothing()))


def wheres_at(depth: int) -> st.SearchStrategy[Condition]:
    """`where` conditions of a stream `depth` levels down: field comparisons (against literals,
    other fields and, nested, the parent's properties) and, above the third level, funnel steps."""
    others = st.one_of(fields, parent_fields) if depth else fields
    leaves = comparisons(fields, others)
    if depth < 2:
        leaves = st.one_of(leaves, leaves, nested_counts(depth + 1))
    return conditions(leaves)


COUNT_OPERATORS = (Operator.AT_LEAST, Operator.AT_LEAST, Operator.EQUALS, Operator.LESS_THAN, Operator.AT_MOST,
                   Operator.GREATER_THAN, Operator.DIFFERS, Operator.ONE_OF, Operator.NONE_OF)


@st.composite
def nested_counts(draw: st.DrawFn, depth: int) -> Comparison:
    """A funnel step: the count of a stream nested in a `where`, with parent and now windows."""
    found: list[Filter] = []
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            found.append(Within(draw(st.sampled_from(DURATIONS)), parent=True))
        else:
            start, end = sorted(draw(st.lists(st.sampled_from(DURATIONS), min_size=2, max_size=2)), key=lambda d: d.ms)
            found.append(Between(start, end, parent=True))
    found += draw(windows()) if draw(st.integers(0, 2)) == 0 else []
    if draw(st.booleans()):
        found.append(Where(draw(wheres_at(depth))))
    if draw(st.integers(0, 3)) == 0:
        found.append(Sources(("s1",)))
    stream = Stream(draw(st.sampled_from(EVENTS)), tuple(draw(st.permutations(found))))
    operator = draw(st.sampled_from(COUNT_OPERATORS))
    numbers = st.sampled_from((0, 1, 1, 2, "1", 1.5, -1))
    count = draw(st.integers(1, 2)) if OPERAND_SHAPE[operator] == "many" else 1
    return Comparison(Aggregate(stream, AggregateFunction.COUNT), operator,
                      tuple(Literal(draw(numbers)) for _ in range(count)))


wheres = st.one_of(literal_wheres, wheres_at(0))


@st.composite
def windows(draw: st.DrawFn) -> list[Filter]:
    found: list[Filter] = []
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            found.append(Within(draw(st.sampled_from(DURATIONS))))
        else:
            start, end = sorted(draw(st.lists(st.sampled_from(DURATIONS), min_size=2, max_size=2)), key=lambda d: d.ms)
            found.append(Between(start, end))
    return found


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    filters = draw(windows())
    if draw(st.integers(0, 2)) == 0:
        filters.append(Where(draw(wheres)))
    if draw(st.integers(0, 3)) == 0:
        filters.append(Sources(tuple(draw(st.lists(st.sampled_from(("s1", "s2", "s3")), min_size=1, max_size=2)))))
    return Stream(draw(st.sampled_from(EVENTS[:2])), tuple(draw(st.permutations(filters))))


@st.composite
def aggregates(draw: st.DrawFn, unique: bool = False) -> Aggregate:
    functions = [f for f in AggregateFunction if unique or f is not AggregateFunction.UNIQUE]
    function = draw(st.sampled_from(functions))
    stream = draw(streams())
    if function is AggregateFunction.COUNT:
        return Aggregate(stream, function)
    value_type = None
    if function in (AggregateFunction.MIN, AggregateFunction.MAX):
        value_type = draw(st.sampled_from(("number", "string")))
    elif function is AggregateFunction.MODE:
        value_type = draw(st.sampled_from(("string", "number", "array")))
    minimum = draw(st.integers(1, 2)) if function is AggregateFunction.MODE else 1
    return Aggregate(stream, function, draw(fields), value_type, minimum)  # type: ignore[arg-type]


traits = st.sampled_from(TRAIT_KEYS).map(TraitRef)
tops = st.one_of(aggregates(), aggregates(), traits)
audiences = conditions(comparisons(tops, tops))
computed_traits = st.one_of(aggregates(unique=True), traits)

# ------------------------------------------------------------------ the database


Defined = tuple[str, Condition | Scalar, dict[str, Any]]
"""A definition to test: its kind, its tree and its options."""


def database(people: list[dict[str, Any]], defined: list[Defined]) -> apsw.Connection:
    """A migrated in-memory database holding the users and the definitions, keyed `x0`, `x1`, ….

    `member` (an audience) and `total` (a computed trait) are other definitions, whose stored
    values the definitions may read as traits.
    """
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    seq = itertools.count(1)
    others = [("member", "audience", "trait('plan') = 'pro'", {}),
              ("total", "computed_trait", "event('C').count()", {})]
    tested = [(f"x{i}", kind, ql.to_text(Definition(root)), opts) for i, (kind, root, opts) in enumerate(defined)]
    for cid, (key, kind, text, options) in enumerate([*others, *tested], start=1):
        conn.execute(
            "INSERT INTO computations (computation_id, space_id, kind, collection, key, public_id, name, description,"
            " definition, enabled, options, status, created_ms, updated_ms) VALUES (?, 1, ?, 'users', ?, ?, '', '',"
            " ?, 1, ?, 'LIVE', ?, ?)",
            (cid, kind, key, f"c{cid}", text, json.dumps(options), NOW - DAY, NOW - DAY),
        )
    for pid, person in enumerate(people, start=1):
        conn.execute(
            "INSERT INTO profiles (profile_id, space_id, collection, public_id, created_ms, updated_ms)"
            " VALUES (?, 1, 'users', ?, 0, 0)",
            (pid, f"p{pid}"),
        )
        conn.execute(
            "INSERT INTO identifiers (space_id, collection, id_type, id_value, profile_id, added_ms, seq)"
            " VALUES (1, 'users', ?, ?, ?, 0, 0)",
            ("user_id" if person["known"] else "anonymous_id", f"id{pid}", pid),
        )
        for event in person["events"]:
            n = next(seq)
            conn.execute(
                "INSERT INTO events (seq, space_id, message_id, type, event, profile_id, ts, received_ms, body,"
                " context, extra, source_id) VALUES (?, 1, ?, ?, ?, ?, ?, 0, ?, ?, '{}', ?)",
                (n, f"m{n}", "identify" if event["event"] is None else "track", event["event"], pid,
                 NOW + event["offset"], dump(event["properties"]), dump(event["context"]), event["source"]),
            )
        for key, value in person["traits"].items():
            conn.execute("INSERT INTO traits (profile_id, key, value, ts_ms, seq) VALUES (?, ?, ?, 0, ?)",
                         (pid, key, dump(value), next(seq)))
        for cid, stored in ((1, person["member"]), (2, person["total"])):
            if stored is not None:
                conn.execute("INSERT INTO computed_values (computation_id, profile_id, value, updated_ms)"
                             " VALUES (?, ?, ?, 0)", (cid, pid, stored))
    return conn


def dump(value: Any) -> str:
    """JSON as ingestion stores it (core.tracking): raw UTF-8, no NaN."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------------ the test

option_sets = st.fixed_dictionaries({}, optional={
    "include_anonymous_users": st.booleans(),
    "include_historical_data": st.booleans(),
    "backfill_days": st.integers(0, 2),
})
definitions = st.lists(
    st.one_of(
        st.tuples(st.just("audience"), audiences, option_sets),
        st.tuples(st.just("computed_trait"), computed_traits, option_sets),
    ),
    min_size=1,
    max_size=4,
)


def assert_like_the_interpreter(people: list[dict[str, Any]], defined: list[Defined]) -> None:
    """Every definition compiles, and its plan gives every profile the interpreter's value (as
    `Evaluation._compute` does, anonymous rule included) and a sound next change time."""
    conn = database(people, defined)
    registry = Registry(store.computations(conn))
    evaluation = Evaluation(conn, registry, NOW)
    pids = list(range(1, len(people) + 1))
    for comp in registry.order:
        if not comp.key.startswith("x"):
            continue
        assert comp.plan is not None, comp.checked.definition.source
        fast = evaluation._compute(comp, pids)
        with interpreted(comp):
            reference = evaluation._compute(comp, pids)
        assert [(p, canonical(v)) for p, v, _ in fast] == [(p, canonical(v)) for p, v, _ in reference]
        profiles = evaluation._profiles(comp, pids)
        for pid, _, due in fast:
            assert_sound(comp, profiles[pid], due)


@settings(
    max_examples=int(os.environ.get("FASTPATH_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(people=users, defined=definitions)
def test_the_plan_gives_the_interpreters_values_and_sound_change_times(
    people: list[dict[str, Any]], defined: list[Defined]
) -> None:
    assert_like_the_interpreter(people, defined)


@settings(
    max_examples=int(os.environ.get("FASTPATH_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(found=st.lists(properties, min_size=1, max_size=12), filters=st.lists(wheres, min_size=1, max_size=6))
def test_where_filters_read_values_as_the_interpreter_does(
    found: list[dict[str, Any]], filters: list[Condition]
) -> None:
    """The typing rules on their own: one event per user, many filters counted over them."""
    people = [
        {"known": True, "traits": {}, "member": None, "total": None,
         "events": [{"event": "A", "offset": -1, "properties": props, "context": props, "source": ""}]}
        for props in found
    ]
    counts = [Aggregate(Stream("A", (Where(condition),)), AggregateFunction.COUNT) for condition in filters]
    assert_like_the_interpreter(people, [("computed_trait", count, {}) for count in counts])


@settings(
    max_examples=int(os.environ.get("FASTPATH_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(people=users, defined=st.lists(st.one_of(st.tuples(st.just("audience"), audiences, option_sets),
                                               st.tuples(st.just("computed_trait"), computed_traits, option_sets)),
                                     min_size=2, max_size=8),
       subsets=st.lists(st.sets(st.integers(1, 12)), min_size=8, max_size=8),
       later=st.integers(-40 * DAY, 40 * DAY))
def test_plans_scanned_together_give_what_each_gives_alone(
    people: list[dict[str, Any]], defined: list[Defined], subsets: list[set[int]], later: int
) -> None:
    """`scan_together` (one query per set of event names, each plan filtered by its own floor and
    lookback) gives every plan the values and next change times of its own query, for profiles
    the shared scan covers and for profiles it does not (scanned when the plan runs); and so
    again at another time, where the same plans reuse the queries composed at the first."""
    conn = database(people, defined)
    registry = Registry(store.computations(conn))
    evaluation = Evaluation(conn, registry, NOW)
    comps = [comp for comp in registry.order if comp.key.startswith("x") and isinstance(comp.plan, Plan)
             and comp.plan.query is not None]
    plans = [comp.plan for comp in comps]
    everyone = list(range(1, len(people) + 1))
    # Each plan's candidates: all but one subset of the profiles, a different subset for each.
    candidates = [sorted(set(everyone) - subsets[i % len(subsets)]) for i in range(len(plans))]
    for now in (NOW, NOW + later):
        scanned = scan_together(conn, plans, candidates, now)  # type: ignore[arg-type]
        for comp, plan, (covered, found), asked in zip(comps, plans, scanned, subsets, strict=False):
            assert isinstance(plan, Plan)
            assert plan.query is not None
            # A plan covers the candidates of every plan reading its names, its own among them.
            assert covered == frozenset().union(*(c for c, p in zip(candidates, plans, strict=True)
                                                  if p.query is not None and p.query.names == plan.query.names))
            pids = sorted(asked & set(everyone)) or everyone
            traits = evaluation._user_traits(comp, pids)
            alone = plan.run(conn, pids, now, traits)
            together = plan.run(conn, pids, now, traits, shared=(covered, found))
            assert [(p, canonical(v), due) for p, v, due in together] == [
                (p, canonical(v), due) for p, v, due in alone]


def test_plans_scanned_together_keep_their_own_floor_and_lookback() -> None:
    """Definitions over the same event with different floors (historical data or not) and
    lookbacks share a query, and each still counts only the events it would read alone."""
    person = {"known": True, "traits": {}, "member": None, "total": None}
    people = [{**person, "events": [{"event": "A", "offset": -days * DAY - HOUR, "properties": {"v": days},
                                     "context": {}, "source": "s"} for days in (0, 3, 20)]}]
    texts = [("event('A').count()", {}), ("event('A').count()", {"include_historical_data": False}),
             ("event('A').within(7 days).sum('v')", {}), ("event('A').count()", {"backfill_days": 5})]
    defined: list[Defined] = [("computed_trait", ql.parse(text).root, options) for text, options in texts]
    conn = database(people, defined)
    registry = Registry(store.computations(conn))
    plans = [comp.plan for comp in registry.order if comp.key.startswith("x")]
    queries: list[str] = []
    conn.setexectrace(lambda _cursor, sql, _bindings: queries.append(sql) or True)
    scanned = scan_together(conn, plans, [[1]] * len(plans), NOW)  # type: ignore[arg-type]
    conn.setexectrace(None)
    assert len([q for q in queries if "GROUP BY pid" in q]) == 1
    together = [plan.run(conn, [1], NOW, {}, shared=part)[0][1]  # type: ignore[union-attr]
                for plan, part in zip(plans, scanned, strict=True)]
    alone = [plan.run(conn, [1], NOW, {})[0][1] for plan in plans]  # type: ignore[union-attr]
    assert together == alone == [3, 1, 3, 2]


def test_a_query_composed_again_binds_its_own_clocks_lowest_bound() -> None:
    """Plans scanned together at two times, the lowest bound of their shared query a different
    plan's at each (a lookback's, then a floor's): at each time every plan gets what its own
    query gives. The query's text is composed once and reused only where it reads the same."""
    person = {"known": True, "traits": {}, "member": None, "total": None}
    people = [{**person, "events": [{"event": "A", "offset": offset, "properties": {}, "context": {}, "source": "s"}
                                    for offset in (-2 * HOUR, DAY, 9 * DAY)]}]
    texts = [("event('A').count()", {"include_historical_data": False}), ("event('A').within(7 days).count()", {})]
    defined: list[Defined] = [("computed_trait", ql.parse(text).root, options) for text, options in texts]
    conn = database(people, defined)
    plans = [comp.plan for comp in Registry(store.computations(conn)).order if comp.key.startswith("x")]
    seen = []
    for now in (NOW, NOW + 10 * DAY):
        scanned = scan_together(conn, plans, [[1], [1]], now)  # type: ignore[arg-type]
        together = [plan.run(conn, [1], now, {}, shared=part)[0][1]  # type: ignore[union-attr]
                    for plan, part in zip(plans, scanned, strict=True)]
        assert together == [plan.run(conn, [1], now, {})[0][1] for plan in plans]  # type: ignore[union-attr]
        seen.append(together)
    # The floor (created a day before NOW) keeps all three events at the later time.
    assert seen == [[1, 1], [3, 1]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(value=json_values, spaced=st.booleans())
def test_a_fields_text_is_read_as_the_stdlib_reads_it(value: Any, spaced: bool) -> None:
    """`_parsed` (the reducers' field values) equals `json.loads`, types included (an integer
    past 64 bits stays exact, `1.0` stays a float), for JSON as SQLite's `->` writes it."""
    text = json.dumps(value, ensure_ascii=spaced, separators=None if spaced else (",", ":"))
    ours, stdlib = _parsed(text), json.loads(text)
    assert repr(ours) == repr(stdlib)
    assert type(ours) is type(stdlib)


@given(value=json_values | st.floats() | st.integers(-(2**200), 2**200))
def test_a_value_is_stored_as_json_dumps_writes_it(value: Any) -> None:
    """`canonical` (the stored text every evaluated value is compared with) is `json.dumps` with
    sorted keys and no spaces, scalars written without it included."""
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------ accounts

account_leaves = st.one_of(
    st.builds(Quantified, st.sampled_from(("any", "all", "none")), audiences),
    st.builds(Quantified, st.sampled_from(("any", "all", "none")), audiences),
    comparisons(st.sampled_from(("plan", "seats")).map(TraitRef), st.nothing()),
)
account_audiences = conditions(account_leaves)
accounts = st.lists(
    st.fixed_dictionaries({
        "users": st.sets(st.integers(0, 5), max_size=4),
        "traits": st.dictionaries(st.sampled_from(("plan", "seats")), scalars, max_size=2),
    }),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=int(os.environ.get("FASTPATH_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(people=users, found=accounts, defined=st.lists(account_audiences, min_size=1, max_size=3))
def test_account_plans_give_the_interpreters_values_and_sound_change_times(
    people: list[dict[str, Any]], found: list[dict[str, Any]], defined: list[Condition]
) -> None:
    """ANY / ALL / ALL NOT over the linked users (none, some, all of them) and account traits."""
    conn = database(people, [])
    first = len(people) + 1
    for n, account in enumerate(found):
        aid = first + n
        conn.execute("INSERT INTO profiles (profile_id, space_id, collection, public_id, created_ms, updated_ms)"
                     " VALUES (?, 1, 'accounts', ?, 0, 0)", (aid, f"a{aid}"))
        for user in account["users"]:
            if user < len(people):
                conn.execute("INSERT INTO links (user_id, account_id, linked_ms, last_linked_ms) VALUES (?, ?, 0, 0)",
                             (user + 1, aid))
        for key, value in account["traits"].items():
            conn.execute("INSERT INTO traits (profile_id, key, value, ts_ms, seq) VALUES (?, ?, ?, 0, 0)",
                         (aid, key, dump(value)))
    texts = [ql.to_text(Definition(root)) for root in defined]
    for text in texts:
        try:
            ql.parse_and_check(text, kind="audience", collection="accounts")
        except ql.QueryError:
            assume(False)  # over the language's size limits
    for n, root in enumerate(defined):
        conn.execute(
            "INSERT INTO computations (computation_id, space_id, kind, collection, key, public_id, name, description,"
            " definition, enabled, options, status, created_ms, updated_ms) VALUES (?, 1, 'audience', 'accounts',"
            " ?, ?, '', '', ?, 1, '{}', 'LIVE', ?, ?)",
            (10 + n, f"y{n}", f"c{10 + n}", ql.to_text(Definition(root)), NOW - DAY, NOW - DAY),
        )
    registry = Registry(store.computations(conn))
    evaluation = Evaluation(conn, registry, NOW)
    aids = list(range(first, first + len(found)))
    for comp in registry.order:
        if not comp.key.startswith("y"):
            continue
        assert isinstance(comp.plan, AccountPlan), comp.checked.definition.source
        fast = evaluation._compute(comp, aids)
        with interpreted(comp):
            reference = evaluation._compute(comp, aids)
        assert [(p, v) for p, v, _ in fast] == [(p, v) for p, v, _ in reference]
        profiles = evaluation._profiles(comp, aids)
        for aid, _, due in fast:
            assert_sound(comp, profiles[aid], due)


def assert_sound(comp: Compiled, profile: ql.Profile, due: int | None) -> None:
    """`due` is after now, an edge instant, and no later than the interpreter's first change."""
    instants = sorted({e.timestamp_ms + d for e in all_events(profile) for d in OFFSETS} - {NOW})
    if due is not None:
        assert due > NOW
        assert due in instants
    now_value = canonical(ql.evaluate(comp.checked, profile, NOW))
    for instant in instants:
        if instant <= NOW:
            continue
        if due is not None and instant >= due:
            break
        assert canonical(ql.evaluate(comp.checked, profile, instant)) == now_value, (instant, due)


@contextmanager
def interpreted(comp: Compiled) -> Iterator[None]:
    """Switches a computation to the interpreter for the duration of a block."""
    compiled = comp.definition
    comp.definition = Evaluated(compiled.checked, compiled.event_floor_ms, compiled.include_anonymous, compile=False)
    try:
        yield
    finally:
        comp.definition = compiled


KINDS_OF_VALUE = (
    None, True, False, 0, 1, 3, 5, -3, 2.5, 3.0, 5.0, -0.0, 0.1, 1e16, 2**63 - 1, 2**63, 2**70, -(2**63) - 1,
    9007199254740993, 9007199254740992.0, "", "5", "05", "3", "2.5", "1e3", " 5", "5.", ".5", "+4", "-3", "x5", "ab",
    "Ab", "abc", "b", "é", "a\x00b", "1e400", "99999999999999999999", "2024-01-01", "2024-01-01T00:00:00Z",
    "2020-06-01T00:00:00+02:00", [1, "a"], [], {"b": 1}, {}, 47, "47", "-abc", "1abc", ".", "+", 10**400, 1e308, -1e308,
)
KINDS_OF_LITERAL = (
    0, 3, 5, -3, 2.5, 3.0, -0.0, 1e16, 9007199254740992, 9007199254740992.0, 2**63 - 1, -(2**63), "5", "05", "3",
    "2.5", "1e3", "ab", "Ab", "", "x5", "1e400", True, False, 47, "47", "abc", "-abc", "1abc",
)


def every_comparison() -> Iterator[Comparison]:
    """Each comparator against each kind of literal it accepts, on `property('v')`."""
    subject = PropertyRef("v")
    for operator in OPERATORS:
        shape = OPERAND_SHAPE[operator]
        if shape == "none":
            yield Comparison(subject, operator)
            continue
        if operator in TEXT_OPERATORS:
            found: tuple[Any, ...] = ("", "a", "b", "ab", "Ab", "5", "é", "x5")
        elif operator in DATE_OPERATORS:
            found = ("2024-01-01", "2020-06-01T00:00:00Z")
        else:
            found = tuple(v for v in KINDS_OF_LITERAL if operator not in ORDERING or not isinstance(v, bool))
        for literal in found:
            yield Comparison(subject, operator, (Literal(literal),))
        if shape == "many":
            yield Comparison(subject, operator, (Literal(found[1]), Literal(found[-1])))


def test_every_comparator_reads_every_kind_of_value_as_the_interpreter_does() -> None:
    """The typing rules exhaustively: every kind of value (missing, null, numbers, numeric text, odd
    text, booleans, lists, objects) under every comparator and kind of literal, in a `where`."""
    people = [
        {"known": True, "traits": {}, "member": None, "total": None,
         "events": [{"event": "A", "offset": -1, "properties": {} if value is None else {"v": value},
                     "context": {}, "source": ""}]}
        for value in (*KINDS_OF_VALUE, "null")
    ]
    people[-1]["events"][0]["properties"] = {"v": None}
    counts = [Aggregate(Stream("A", (Where(c),)), AggregateFunction.COUNT) for c in every_comparison()]
    assert_like_the_interpreter(people, [("computed_trait", count, {}) for count in counts])


FIELD_VALUES = (None, "USD", "EUR", "usd", "", "é", "a\x00b", "a\x00c", "5", "05", "5.0", " 5", "x5", ".", 5, 5.0,
                True, [1], {"b": 1})


def test_every_comparator_between_two_fields_reads_them_as_the_interpreter_does() -> None:
    """Two fields of an event (`property('v') <op> property('w')`) under every comparator but the
    date and relative ones, over every pair of kinds of value: plain texts equal, differing and
    differing in case, texts that may be numeric, text holding NUL, numbers, booleans, lists."""
    people = [
        {"known": True, "traits": {}, "member": None, "total": None,
         "events": [{"event": "A", "offset": -1, "source": "", "context": {},
                     "properties": {k: x for k, x in (("v", v), ("w", w)) if x is not None}}]}
        for v in FIELD_VALUES for w in FIELD_VALUES
    ]
    operators = [op for op in OPERATORS if OPERAND_SHAPE[op] != "none" and op not in DATE_OPERATORS]
    counts = [Aggregate(Stream("A", (Where(Comparison(PropertyRef("v"), op, (PropertyRef("w"),))),)),
                        AggregateFunction.COUNT) for op in operators]
    assert_like_the_interpreter(people, [("computed_trait", count, {}) for count in counts])


# ------------------------------------------------------------------ what falls back

FALLBACKS = (
    ("audience", "users", "event('A').where(event('B').sum('v') >= 1).count() >= 1"),
    ("audience", "users", "event('A').where(event('B').count() >= 'x').count() >= 1"),
    ("audience", "users", "event('A').where(event('B').count() >= property('v')).count() >= 1"),
    ("audience", "users", "event('A').where(property('v') = trait('plan')).count() >= 1"),
    ("audience", "users", "event('A').where(property('v') > 99999999999999999999).count() >= 1"),
    ("audience", "users", "event('A').where(property('v\"s') = 1).count() >= 1"),
    ("audience", "users", "trait('signup').within_last(7 days)"),
    ("audience", "users", "event('A').where(property('d').within_last(7 days)).count() >= 1"),
    ("audience", "accounts", "ANY (trait('signup').within_last(7 days))"),
    ("audience", "accounts", "ANY (event('A').count() >= 1) AND event('B').count() >= 1"),
    ("audience", "accounts", "event('A').within(7 days).count() >= 1"),
    ("computed_trait", "accounts", "event('A').count()"),
)


@pytest.mark.parametrize(("kind", "collection", "text"), FALLBACKS)
def test_shapes_it_does_not_compile_fall_back(kind: str, collection: str, text: str) -> None:
    assert definition(text, kind, collection).plan is None


def test_the_query_reads_events_through_the_profile_index() -> None:
    """One query per chunk, each candidate's events found by `events_by_profile`, not by a scan."""
    text = "event('Order Completed').where(property('revenue') > 100).within(30 days).sum('revenue') >= 500"
    comp = definition(text, "audience", "users")
    assert comp.plan is not None
    assert comp.plan.sql is not None
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    assert comp.plan.run(conn, [1], NOW, {}) == [(1, False, None)]
    params = {**comp.plan.params, "ids": "[]", "lo": 0, "now": NOW, "floor": 0, "a0": 0, "b0": 0}
    plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + comp.plan.sql, params))
    assert "USING INDEX events_by_profile (profile_id=? AND event=? AND ts>?)" in plan, plan


def test_a_funnel_step_is_an_index_range_per_event() -> None:
    """A nested stream's count reads the profile's events of that name in the parent's window,
    through `events_by_profile`, once per outer event: no scan."""
    text = ("event('Product Added').where(event('Order Completed').where(property('currency') ="
            " property(parent: 'currency')).within(parent: 1 days).count() >= 1).within(7 days).count() >= 1")
    comp = definition(text, "audience", "users")
    assert isinstance(comp.plan, Plan)
    assert comp.plan.sql is not None
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    assert comp.plan.run(conn, [1], NOW, {}) == [(1, False, None)]
    params = {**comp.plan.params, "ids": "[]", "lo": 0, "now": NOW, "floor": 0, "a0": 0, "b0": 0, "na0": 0, "nb0": 0}
    plan = [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + comp.plan.sql, params)]
    assert not [step for step in plan if step.startswith("SCAN n") or step.startswith("SCAN e")], plan
    assert "SEARCH n0 USING INDEX events_by_profile (profile_id=? AND event=? AND ts>? AND ts<?)" in plan, plan


def test_definitions_reading_the_same_streams_share_one_scan_per_job() -> None:
    """Two definitions over the same stream (different thresholds) run one query between them in
    a job, and each still gets its own value; a different stream or other profiles scan again."""
    person = {"known": True, "traits": {}, "member": None, "total": None}
    people = [
        {**person, "events": [{"event": "A", "offset": -i * HOUR, "properties": {"v": i}, "context": {},
                               "source": "s"} for i in range(n)]}
        for n in (0, 1, 2, 3)
    ]
    texts = ["event('A').within(1 days).count() >= 1", "event('A').within(1 days).count() >= 3",
             "event('A').within(1 days).sum('v') >= 3", "event('B').within(1 days).count() >= 1"]
    defined: list[Defined] = [("audience", ql.parse(text).root, {}) for text in texts]
    conn = database(people, defined)
    registry = Registry(store.computations(conn))
    tested = [comp for comp in registry.order if comp.key.startswith("x")]
    pids = [1, 2, 3, 4]
    queries: list[str] = []
    conn.setexectrace(lambda _cursor, sql, _bindings: queries.append(sql) or True)
    shared = Evaluation(conn, registry, NOW)
    together = {comp.key: [v for _, v, _ in shared._compute(comp, pids)] for comp in tested}
    scans = [q for q in queries if "GROUP BY pid" in q]
    assert len(scans) == 3  # x0 and x1 share; x2 reads a field; x3 another event
    conn.setexectrace(None)
    alone = {comp.key: [v for _, v, _ in Evaluation(conn, registry, NOW)._compute(comp, pids)] for comp in tested}
    assert together == alone == {"x0": [False, True, True, True], "x1": [False, False, False, True],
                                 "x2": [False, False, False, True], "x3": [False, False, False, False]}
    queries.clear()
    conn.setexectrace(lambda _cursor, sql, _bindings: queries.append(sql) or True)
    shared._compute(tested[0], [1, 2])
    assert len([q for q in queries if "GROUP BY pid" in q]) == 1


def test_only_short_reducer_columns_are_kept_parsed() -> None:
    """A profile with many events makes reducer columns of megabytes, a new one with each event:
    kept parsed, they held the server's memory by the gigabyte (about 4 MiB an event for a user
    with 100,000). Columns past 64 KB are parsed each time; shorter ones, read several times in a
    row by definitions sharing them, once."""
    from audiences_server.store.sql import plans

    short = json.dumps([[1, 1, "1"], [2, 2, "2.5"]])
    long = json.dumps([[n, n, str(n)] for n in range(20_000)])
    assert len(long) > plans._FIELDS_KEPT_CHARS
    plans._kept_fields.cache_clear()
    assert plans._fields(short) == (1, 2.5)
    assert plans._fields(short) == (1, 2.5)
    assert plans._fields(long)[-1] == 19_999
    info = plans._kept_fields.cache_info()
    assert (info.hits, info.currsize) == (1, 1)
