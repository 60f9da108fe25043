"""The type checker: what a definition may be, where each function may appear, and limits."""

from __future__ import annotations

import pytest

from audiences_server.core.ql import (
    MAX_PRIMARY_EXPRESSIONS,
    Collection,
    Definition,
    Kind,
    QueryError,
    check,
    parse,
    parse_and_check,
)
from audiences_server.core.ql.nodes import Comparison, Literal, Operator, TraitRef

FUNNEL = ("event('A').where(event('B').within(parent: 1 day).where("
          "property('x') = property(parent: 'x')).count() >= 1).count() >= 1")

VALID = [
    ("event('A').count() >= 1", "audience", "users"),
    ("event('A').count()", "computed_trait", "users"),
    ("event('A').unique('p')", "computed_trait", "users"),
    ("trait('x')", "computed_trait", "users"),
    ("event('A').where(property('p') > 1 AND context('c').exists()).count() > 0", "audience",
     "users"),
    ("event('A').sum(context('c'))", "computed_trait", "users"),
    (FUNNEL, "audience", "users"),
    ("event('A').where(event('B').between(parent: 1 day, 2 days).count() >= 1).count() >= 1",
     "audience", "users"),
    ("ANY (event('A').count() >= 1) AND trait('plan') = 'pro'", "audience", "accounts"),
    ("NOT (ALL NOT (trait('x') = 1)) OR ALL (trait('y') = 2)", "audience", "accounts"),
    ("event('A').count() >= 1", "audience", "accounts"),
    ("event('A').count()", "computed_trait", "accounts"),
    ("trait('d').before_date('2023-12-07')", "audience", "users"),
    ("trait('x').one_of(1, 'a', true)", "audience", "users"),
    ("event('A').between(7 days, 7 days).count() > 0", "audience", "users"),
    ("event('A').within(0 days).count() > 0", "audience", "users"),
]


@pytest.mark.parametrize(("text", "kind", "collection"), VALID)
def test_valid_definitions(text: str, kind: Kind, collection: Collection) -> None:
    """Definitions that follow every rule pass the checker for their kind and collection."""
    checked = parse_and_check(text, kind=kind, collection=collection)
    assert (checked.kind, checked.collection) == (kind, collection)


INVALID = [
    ("event('A').count()", "audience", "users", "an audience must end in a condition",
     "event('A').count()"),
    ("trait('x') = 1", "computed_trait", "users", "a computed trait must end in a value",
     "trait('x') = 1"),
    ("property('p') = 1", "audience", "users", "only valid inside where", "property('p')"),
    ("context('c') = 1", "audience", "users", "only valid inside where", "context('c')"),
    ("trait('x') = property('p')", "audience", "users", "only valid inside where",
     "property('p')"),
    ("property('p')", "computed_trait", "users", "only valid inside where", "property('p')"),
    ("event('A').where(property(parent: 'p') = 1).count() > 0", "audience", "users",
     "property(parent: …) is only valid", "property(parent: 'p')"),
    ("event('A').within(parent: 1 day).count() > 0", "audience", "users",
     "a parent: window is only valid", "within(parent: 1 day)"),
    ("event('A').between(parent: 1 day, 2 days).count() > 0", "audience", "users",
     "a parent: window is only valid", "between(parent: 1 day, 2 days)"),
    ("ANY trait('x') = 1", "audience", "users", "only account audiences use ANY/ALL",
     "ANY trait('x') = 1"),
    ("event('A').where(ANY trait('x') = 1).count()", "computed_trait", "accounts",
     "only account audiences use ANY/ALL", "ANY trait('x') = 1"),
    ("event('A').where(ALL (trait('x') = 1)).count() > 1", "audience", "accounts",
     "inside where", "ALL (trait('x') = 1)"),
    ("ANY (ALL (trait('x') = 1))", "audience", "accounts", "may not be nested",
     "ALL (trait('x') = 1)"),
    ("trait('d').before_date('yesterday')", "audience", "users", "ISO-8601", "'yesterday'"),
    ("trait('d').after_date(5)", "audience", "users", "ISO-8601", "5"),
    ("trait('s').contains(5)", "audience", "users", "compares text", "5"),
    ("trait('s').starts_with(true)", "audience", "users", "compares text", "true"),
    ("trait('s') > true", "audience", "users", "cannot be ordered", "true"),
    ("event('A').within(-1 days).count() > 0", "audience", "users", "between 0 and 100000 days",
     "-1 days"),
    ("trait('d').within_last(-2 hours)", "audience", "users", "between 0 and 100000 days",
     "-2 hours"),
    ("event('A').within(100001 days).count() > 0", "audience", "users", "100000 days",
     "100001 days"),
    ("event('A').between(10 days, 7 days).count() > 0", "audience", "users", "needs a <= b",
     "between(10 days, 7 days)"),
    ("event('A').mode('p', 0)", "computed_trait", "users", "at least 1",
     "event('A').mode('p', 0)"),
    ("event('').count() > 0", "audience", "users", "event name must not be empty", "event('')"),
    ("trait('') = 1", "audience", "users", "trait key must not be empty", "trait('')"),
]


@pytest.mark.parametrize(("text", "kind", "collection", "message", "found"), INVALID)
def test_invalid_definitions(text: str, kind: Kind, collection: Collection, message: str,
                             found: str) -> None:
    """Each broken rule is a QueryError of kind 'type' that points at the offending node."""
    with pytest.raises(QueryError) as caught:
        parse_and_check(text, kind=kind, collection=collection)
    assert caught.value.kind == "type"
    assert message in caught.value.message
    assert caught.value.text == found


def _conditions(count: int) -> str:
    return " OR ".join(f"trait('t{i}') = {i}" for i in range(count))


def test_fifty_primary_expressions_allowed() -> None:
    """Exactly 50 primary expressions is within the limit."""
    parse_and_check(_conditions(MAX_PRIMARY_EXPRESSIONS), kind="audience", collection="users")


def test_fifty_one_primary_expressions_refused() -> None:
    """The 51st primary expression is refused, and the error points at it."""
    with pytest.raises(QueryError) as caught:
        parse_and_check(_conditions(51), kind="audience", collection="users")
    assert "at most 50 primary expressions" in caught.value.message
    assert caught.value.text == "trait('t50')"


def test_primaries_count_every_extractor_but_literals() -> None:
    """event, trait, property and context each count; literals (and long lists) do not."""
    values = ", ".join(f"'v{i}'" for i in range(200))
    parse_and_check(f"trait('x').one_of({values})", kind="audience", collection="users")
    chain = "event('A').where(property('p') = 1).sum('q') > 0"  # 3 primaries
    text = " OR ".join([chain] * 16) + " OR trait('a') = 1 OR trait('b') = 1"  # 48 + 2
    parse_and_check(text, kind="audience", collection="users")
    with pytest.raises(QueryError):
        parse_and_check(text + " OR trait('c') = 1", kind="audience", collection="users")


def test_hand_built_tree_with_literal_subject() -> None:
    """A tree the parser could never make (a literal as subject) is refused by the checker."""
    tree = Definition(Comparison(Literal(1), Operator.EQUALS, (TraitRef("x"),)))
    with pytest.raises(QueryError, match="literal cannot be the value being tested"):
        check(tree, kind="audience", collection="users")


def test_hand_built_tree_with_wrong_operand_count() -> None:
    """A comparison whose operands do not fit its comparator is refused."""
    tree = Definition(Comparison(TraitRef("x"), Operator.EQUALS, ()))
    with pytest.raises(QueryError, match="wrong number of values"):
        check(tree, kind="audience", collection="users")


def test_checked_definition_carries_summary() -> None:
    """check() returns the definition with its kind, collection and dependency summary."""
    checked = check(parse("trait('vip') = true"), kind="audience", collection="users")
    assert checked.summary.traits == frozenset({"vip"})
    assert checked.definition == parse("trait('vip') = true")
