"""Properties over generated input: printer round trip, and nothing but QueryError escapes."""

from __future__ import annotations

from functools import cache
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.core.ql import (
    Definition,
    Event,
    Profile,
    QueryError,
    check,
    evaluate,
    next_change_time,
    parse,
    summarize,
    to_text,
)
from audiences_server.core.ql.calls import VALUE_TYPES
from audiences_server.core.ql.explain import filter_text
from audiences_server.core.ql.nodes import (
    OPERAND_SHAPE,
    SUGAR,
    UNIT_MS,
    Aggregate,
    AggregateFunction,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Duration,
    Literal,
    Not,
    Operator,
    Or,
    PropertyRef,
    Quantified,
    Quantifier,
    Scalar,
    Session,
    Sources,
    Stream,
    TraitRef,
    Where,
    Within,
)
from audiences_server.core.ql.printer import duration_text, scalar_text, stream_text, string_text

NAMES = st.text(max_size=6)
DURATIONS = st.builds(Duration, st.integers(-5, 10**6), st.sampled_from(list(UNIT_MS)))
LITERALS = st.builds(
    Literal,
    st.one_of(st.text(max_size=6), st.integers(-(10**20), 10**20), st.booleans(),
              st.floats(allow_nan=False, allow_infinity=False)),
)
FIELDS = st.one_of(st.builds(PropertyRef, NAMES), st.builds(ContextRef, NAMES))
EXTRACTED = st.one_of(st.builds(TraitRef, NAMES), st.builds(PropertyRef, NAMES, st.booleans()),
                      st.builds(ContextRef, NAMES))
REDUCERS = tuple(f for f in AggregateFunction if f is not AggregateFunction.UNIQUE)


@cache
def aggregates(depth: int, functions: tuple[AggregateFunction, ...]
               ) -> st.SearchStrategy[Aggregate]:
    """Reducers over generated streams, with a field and type that fit each function."""

    @st.composite
    def build(draw: st.DrawFn) -> Aggregate:
        function = draw(st.sampled_from(functions))
        stream = draw(streams(depth))
        if function is AggregateFunction.COUNT:
            return Aggregate(stream, function)
        types = VALUE_TYPES.get(function, ())
        keeps_type = function in (AggregateFunction.MIN, AggregateFunction.MAX,
                                  AggregateFunction.MODE)
        value_type = draw(st.sampled_from(types)) if keeps_type else None
        frequency = draw(st.integers(-3, 50)) if function is AggregateFunction.MODE else 1
        return Aggregate(stream, function, draw(FIELDS), value_type, frequency)

    return build()


@cache
def streams(depth: int) -> st.SearchStrategy[Stream]:
    """event() with up to three filters (sessions among them); where() only while depth remains."""
    filters: list[st.SearchStrategy[Any]] = [
        st.builds(Sources, st.lists(NAMES, min_size=1, max_size=3).map(tuple)),
        st.builds(Within, DURATIONS, st.booleans()),
        st.builds(Between, DURATIONS, DURATIONS, st.booleans()),
        st.builds(Session, DURATIONS),
    ]
    if depth > 0:
        filters.append(st.builds(Where, conditions(depth - 1)))
    return st.builds(Stream, NAMES, st.lists(st.one_of(filters), max_size=3).map(tuple))


@cache
def scalars(depth: int) -> st.SearchStrategy[Scalar]:
    """Values that may be compared (never a literal, never a unique() list)."""
    if depth == 0:
        return EXTRACTED
    return st.one_of(EXTRACTED, aggregates(depth - 1, REDUCERS))


@st.composite
def comparisons(draw: st.DrawFn, depth: int) -> Comparison:
    """A comparison with operands shaped as its comparator requires."""
    operator = draw(st.sampled_from(list(Operator)))
    subject = draw(scalars(depth))
    operand = st.one_of(LITERALS, scalars(depth))
    shape = OPERAND_SHAPE[operator]
    if shape == "duration":
        return Comparison(subject, operator, (), draw(DURATIONS))
    count = {"none": 0, "one": 1}.get(shape)
    size = st.just(count) if count is not None else st.integers(1, 3)
    operands = tuple(draw(operand) for _ in range(draw(size)))
    return Comparison(subject, operator, operands)


@cache
def conditions(depth: int) -> st.SearchStrategy[Condition]:
    """Comparisons combined by every junction."""
    leaf = comparisons(depth)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
            st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
            st.builds(Not, inner),
            st.builds(Quantified, st.sampled_from(get_args(Quantifier)), inner),
        ),
        max_leaves=4,
    )


ROOTS = st.one_of(
    conditions(2),
    scalars(2),
    LITERALS,
    aggregates(1, tuple(AggregateFunction)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROOTS)
def test_printer_round_trip(root: Condition | Scalar) -> None:
    """parse(to_text(tree)) == tree for generated trees, and printing is a fixed point."""
    definition = Definition(root)
    text = to_text(definition)
    assert parse(text) == definition
    assert to_text(parse(text)) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROOTS)
def test_values_in_parentheses_read_as_bare_values(root: Condition | Scalar) -> None:
    """Every value written in parentheses, the reference's `(expression).absent()` and
    `NOT (expression) = (value)`, parses to the tree the bare value gives (decision 2)."""
    text = _parenthesised(root)
    try:
        parsed = parse(text)
    except QueryError as error:  # the parentheses count towards the nesting limit
        if "nested more than" not in str(error):
            raise
        return
    assert parsed == Definition(root)


def _parenthesised(node: Condition | Scalar) -> str:
    """Canonical text with every value, the root included, in parentheses."""
    if isinstance(node, And | Or):
        junction = " AND " if isinstance(node, And) else " OR "
        return junction.join(f"({_parenthesised(item)})" for item in node.items)
    if isinstance(node, Not | Quantified):
        keyword = "NOT" if isinstance(node, Not) else {"any": "ANY", "all": "ALL", "none": "ALL NOT"}[node.quantifier]
        return f"{keyword} ({_parenthesised(node.operand)})"
    if not isinstance(node, Comparison):
        return f"({_value(node)})"
    subject = f"({_value(node.subject)})"
    if node.operator in SUGAR:
        return f"{subject} {SUGAR[node.operator]} ({_value(node.operands[0])})"
    if node.duration is not None:
        return f"{subject}.{node.operator.value}({duration_text(node.duration)})"
    return f"{subject}.{node.operator.value}({', '.join(f'({_value(o)})' for o in node.operands)})"


def _value(node: Scalar) -> str:
    if not isinstance(node, Aggregate):
        return scalar_text(node)
    text = scalar_text(node)
    stream = stream_text(node.stream)
    assert text.startswith(stream)
    filters = "".join(f".where({_parenthesised(f.condition)})" if isinstance(f, Where) else filter_text(f)
                      for f in node.stream.filters)
    return f"event({string_text(node.stream.event)}){filters}{text[len(stream):]}"


VOCABULARY = [
    "event('A')", "trait('t')", "property('p')", "property(parent: 'p')", "context('c')",
    "literal(1)", ".where(", ".within(", ".between(", ".sources(exclude: 's')", ".count()",
    ".sum('p')", ".mode('p' as array, 2)", ".unique('p')", ".first('p')", ".max('p' as string)",
    ".equals(", ".absent()", ".one_of(", ".within_last(", ".before_date(", "parent:", "7 days",
    "1 hour", "0 minutes", ", ", "(", ")", "[", "]", "{", "}", " AND ", " OR ", "NOT ", "ANY ",
    "ALL ", "ALL NOT ", " = ", " >= ", " != ", " < ", "'x'", "\u2018y\u2019", "'2023-01-01'",
    "5", "-2.5", "true", " as ", "number", ".", ",", ":", "'", "\\", "\n", "@", "\u201c",
    ".expires_after(", "30 minutes", "trait('a\\\\.b')", "'p\\\\.q'", "(trait('t'))", "(5)",
]
FUZZ = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(VOCABULARY), max_size=14).map("".join),
)
PROFILE = Profile(
    [Event("A", 1_000, {"p": 1, "t": "2023-01-01"}, {"c": "x"}, "s"),
     Event("A", 2_000, {"p": [1, "a"]}), Event("A", 3_000)],
    {"t": "2023-01-01T00:00:00Z"},
    [Profile([Event("A", 500, {"p": "z"})], {"t": 3})],
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FUZZ)
def test_arbitrary_text_raises_only_query_error(text: str) -> None:
    """Any text either parses or raises QueryError; whatever parses prints back to itself,
    and whatever also checks can be summarised and evaluated without error."""
    try:
        definition = parse(text)
    except QueryError as error:
        _assert_locates(error)
        return
    assert parse(to_text(definition)) == definition
    for kind in ("audience", "computed_trait"):
        for collection in ("users", "accounts"):
            try:
                checked = check(definition, kind=kind, collection=collection)
            except QueryError:
                continue
            summarize(definition)
            evaluate(checked, PROFILE, 2_500)
            next_change_time(checked, PROFILE, 2_500)


def _assert_locates(error: QueryError) -> None:
    """The error names a real position and renders a caret."""
    assert error.line >= 1
    assert error.column >= 1
    assert "^" in error.caret()
