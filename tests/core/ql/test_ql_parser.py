"""The parser and canonical printer: accepted spellings, tree shapes and canonical text."""

from __future__ import annotations

import pytest

from audiences_server.core.ql import Definition, QueryError, parse, parse_and_check, to_text
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Comparison,
    Literal,
    Operator,
    Or,
    PropertyRef,
    Quantified,
    Stream,
    TraitRef,
)

X = TraitRef("x")


def root(text: str) -> object:
    """The root node parsed from ``text``."""
    return parse(text).root


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("trait('x') >= 1", "trait('x').at_least(1)"),
        ("trait('x') >= 1", "trait('x').gte(literal(1))"),
        ("trait('x') = 'a'", "trait('x').equals(literal('a'))"),
        ("trait('x') == 'a'", "trait('x') = \"a\""),
        ("trait('x') != 1", "trait('x').neq(1)"),
        ("event('A').sum('p')", "event('A').sum(property('p'))"),
        ("event('A').max('p')", "event('A').max(property('p') as number)"),
        ("event('A').mode('p')", "event('A').mode(property('p') as string, 1)"),
        ("trait('x').one_of('a', 'b')", "trait('x').one_of(['a', 'b'])"),
        ("trait('x').one_of('a')", "trait('x').one_of({['a']})"),
        ("event('A').sources(exclude: 's').count()",
         "event('A').sources({exclude: ['s']}).count()"),
        ("event('A').within(1 day).count()", "event('A').within(1 days).count()"),
        ("event('A').within(2 HOURS).count()", "event('A').within(2 hours).count()"),
        ("trait('x') = 1 AND trait('y') = 2", "trait('x') = 1 and trait('y') = 2"),
        ("trait('x') = 1", "  trait ( 'x' )\n\t=\n1  "),
        ("trait('x') = 1", "((trait('x') = 1))"),
        ("trait('x') = true", "trait('x').eq(literal(true))"),
        ("trait('x').absent()", "trait('x').is_null()"),
        ("event('A').within(90 seconds).count()", "event('A').within(90 SECOND).count()"),
        ("trait('x').before_date('2023-12-07T18:50:00Z')", "trait('x').before_date(2023-12-07T18:50:00Z)"),
        ("trait('x').after_date('2023-12-07')", "trait('x').after_date(2023-12-07)"),
        ("trait('d') = '2023-12-07T18:50:00.250+01:00'", "trait('d') = 2023-12-07T18:50:00.250+01:00"),
        ("trait('x').one_of('2023-12-07', 3)", "trait('x').one_of(2023-12-07, 3)"),
    ],
)
def test_equivalent_spellings(first: str, second: str) -> None:
    """Sugar, aliases, auto-wrapped literals, braces, brackets and spacing give one tree."""
    assert parse(first) == parse(second)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("trait('x').equals(1)", "trait('x') = 1"),
        ("trait('x')==1", "trait('x') = 1"),
        ("trait('x').at_most(-2.5)", "trait('x') <= -2.5"),
        ("trait(\"it's\") = \"say \\\"hi\\\"\"", "trait('it\\'s') = 'say \"hi\"'"),
        ("trait('x').contains_one(['a','b'])", "trait('x').contains('a', 'b')"),
        ("event('A').sum('p')", "event('A').sum(property('p'))"),
        ("event('A').max(property('p') as number)", "event('A').max(property('p'))"),
        ("event('A').min('p' as string)", "event('A').min(property('p') as string)"),
        ("event('A').mode('p')", "event('A').mode(property('p'), 1)"),
        ("event('A').mode('p' as number, 3)", "event('A').mode(property('p') as number, 3)"),
        ("event('A').unique('p').count()", "event('A').unique(property('p')).count()"),
        ("event('A').within(1 days).count()", "event('A').within(1 day).count()"),
        ("event('A').between(1 hour,2 hour).count()",
         "event('A').between(1 hour, 2 hours).count()"),
        ("event('A').sources({exclude: ['a','b']}).count()",
         "event('A').sources(exclude: 'a', 'b').count()"),
        ("event('A').expires_after(30 minute).within(1 days).count()",
         "event('A').expires_after(30 minutes).within(1 day).count()"),
        ("ALL NOT trait('x') = 1", "ALL NOT (trait('x') = 1)"),
        ("any trait('x') = 1", "ANY (trait('x') = 1)"),
        ("NOT trait('x') = 1", "NOT (trait('x') = 1)"),
        ("(trait('a') = 1 OR trait('b') = 1) AND trait('c') = 1",
         "(trait('a') = 1 OR trait('b') = 1) AND trait('c') = 1"),
        ("trait('a') = 1 OR (trait('b') = 1 AND trait('c') = 1)",
         "trait('a') = 1 OR trait('b') = 1 AND trait('c') = 1"),
        ("(trait('a') = 1 AND trait('b') = 1) AND trait('c') = 1",
         "(trait('a') = 1 AND trait('b') = 1) AND trait('c') = 1"),
        ("literal(5)", "5"),
        ("trait('x') = literal(false)", "trait('x') = false"),
        ("trait('x') = 1e3", "trait('x') = 1000.0"),
        ("trait('tab\\there') = 'line\\nbreak'", "trait('tab\\there') = 'line\\nbreak'"),
        ("trait('\\u00e9') = 1", "trait('\u00e9') = 1"),
        ("trait('\u2018quoted\u2019') = 1", "trait('\u2018quoted\u2019') = 1"),
        ("trait(\u2018x\u2019) = \u201cy\u201d", "trait('x') = 'y'"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    """The printer writes one canonical spelling, which reads back as the same tree."""
    definition = parse(text)
    assert to_text(definition) == canonical
    assert parse(canonical) == definition


def test_and_binds_tighter_than_or() -> None:
    """``a OR b AND c`` is ``a OR (b AND c)``."""
    tree = root("trait('a') = 1 OR trait('b') = 1 AND trait('c') = 1")
    assert isinstance(tree, Or)
    assert isinstance(tree.items[1], And)


def test_junctions_flatten_but_parentheses_nest() -> None:
    """A run of ANDs is one n-ary node; a parenthesised AND inside an AND stays nested."""
    flat = root("trait('a') = 1 AND trait('b') = 1 AND trait('c') = 1")
    nested = root("(trait('a') = 1 AND trait('b') = 1) AND trait('c') = 1")
    assert isinstance(flat, And)
    assert isinstance(nested, And)
    assert (len(flat.items), len(nested.items)) == (3, 2)
    assert flat != nested


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("(trait('x')).exists()", "trait('x').exists()"),
        ("NOT (trait('x')).absent()", "NOT trait('x').absent()"),
        ("NOT (trait('x')) = (5)", "NOT trait('x') = 5"),
        ("(trait('x')) != (trait('y')) OR (trait('x')).absent()", "trait('x') != trait('y') OR trait('x').absent()"),
        ("(event('A').count()) >= 2", "event('A').count() >= 2"),
        ("(event('A').unique('k')).count() > 1", "event('A').unique('k').count() > 1"),
        ("trait('x').equals((5))", "trait('x') = 5"),
        ("trait('x') = ((('a')))", "trait('x') = 'a'"),
    ],
)
def test_a_value_in_parentheses_goes_on_as_its_chain(text: str, same_as: str) -> None:
    """The reference writes `(expression).absent()` and `NOT (expression) = (value)` in its notes:
    a value in parentheses takes the calls and comparator it would take bare."""
    assert parse(text).root == parse(same_as).root


@pytest.mark.parametrize(
    "text",
    ["(5) = trait('x')", "(trait('x') = 1).exists()", "(trait('a') = 1 AND trait('b') = 1) = 2", "(event('A'))"],
)
def test_parentheses_do_not_make_a_value_of_a_condition_or_a_stream(text: str) -> None:
    """A literal still cannot start a comparison, a condition in parentheses ends there, and a
    stream still needs reducing."""
    with pytest.raises(QueryError):
        parse(text)


def test_quantifiers() -> None:
    """``ANY``, ``ALL`` and ``ALL NOT`` parse to the quantifiers any, all and none."""
    trees = [root(f"{q} trait('x') = 1") for q in ("ANY", "ALL", "ALL NOT")]
    assert [tree.quantifier for tree in trees if isinstance(tree, Quantified)] == [
        "any", "all", "none"]
    assert isinstance(root("ALL (NOT (trait('x') = 1))"), Quantified)


def test_tree_of_a_reference_example() -> None:
    """The first reference example parses to the documented tree."""
    tree = root("event('Shoes Bought').where(property('price') >= 100).within(7 days)"
                ".count() >= 1")
    assert isinstance(tree, Comparison)
    assert tree.operator is Operator.AT_LEAST
    assert tree.operands == (Literal(1),)
    assert isinstance(tree.subject, Aggregate)
    assert tree.subject.function is AggregateFunction.COUNT
    stream = tree.subject.stream
    assert isinstance(stream, Stream)
    assert stream.event == "Shoes Bought"
    assert [type(f).__name__ for f in stream.filters] == ["Where", "Within"]


def test_literals_keep_their_types() -> None:
    """``1``, ``1.0`` and ``true`` are different literals though Python finds them equal."""
    values = [root(f"trait('x') = {v}").operands[0] for v in ("1", "1.0", "true")]  # type: ignore[attr-defined]
    assert values[0] != values[1] != values[2] != values[0]
    assert [type(v.value) for v in values] == [int, float, bool]


def test_spans_do_not_affect_equality() -> None:
    """A parsed tree equals the same tree built by hand (positions are ignored by ==)."""
    built = Definition(Comparison(X, Operator.EQUALS, (Literal(1),)))
    assert parse("  trait('x')   =   1") == built


def test_property_parent_label() -> None:
    """``property(parent: 'p')`` reads the parent event's property."""
    tree = root("event('A').where(event('B').where(property(parent: 'p') = 1).count() > 0)"
                ".count() > 0")
    inner = tree.subject.stream.filters[0].condition.subject.stream.filters[0]  # type: ignore[attr-defined]
    assert inner.condition.subject == PropertyRef("p", parent=True)


def test_escapes() -> None:
    """String escapes: backslash, both quotes, newline, tab, return and \\uXXXX."""
    tree = root(r"trait('x') = 'a\\b\'c\"d\ne\tf\rg\u0041'")
    assert tree.operands[0].value == "a\\b'c\"d\ne\tf\rgA"  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["trait('x') = 2023-12", "trait('x') = 2023-12-07T", "trait('x') = 2023-12-07x",
                                  "trait('x') = 2023-12-077"])
def test_an_unquoted_date_is_whole_or_no_date(text: str) -> None:
    """Only a whole date or timestamp reads as one without quotes; anything else is the error it was."""
    with pytest.raises(QueryError):
        parse(text)


@pytest.mark.parametrize("junction", ["NOT", "ANY", "ALL", "ALL NOT"])
def test_a_junction_reads_the_references_braces(junction: str) -> None:
    """The reference writes `NOT ({Comparator})`, `ANY ({Comparator})` and `ALL ({Comparator})`, in
    the notation of `where({…})`: braces inside the parentheses read as the parentheses alone."""
    collection = "users" if junction == "NOT" else "accounts"
    braced = parse_and_check(f"{junction} ({{trait('x') = 1}})", kind="audience", collection=collection)
    plain = parse_and_check(f"{junction} (trait('x') = 1)", kind="audience", collection=collection)
    assert braced.definition == plain.definition
