"""Comparisons across kinds of value: a numeric string is its number, and mismatched kinds
(a number or numeric string against non-numeric text, a boolean against a number, …) compare
false under every comparator, `differs` and `none_of` included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.core.ql import Event, Profile, evaluate, parse_and_check
from audiences_server.core.ql.comparators import compare
from audiences_server.core.ql.nodes import OPERAND_SHAPE, Operator
from audiences_server.core.ql.values import as_number

# Comparators that read their value as text (`contains`, …) or as a date are not comparisons of
# two values of a kind; the others are every comparator taking a value.
TEXT = frozenset({Operator.CONTAINS, Operator.OMITS, Operator.STARTS_WITH, Operator.ENDS_WITH})
BINARY = [op for op in Operator if OPERAND_SHAPE[op] in ("one", "many") and op not in TEXT]
numbers = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False))
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=5),
                    st.sampled_from(("47", "abc", "", "-abc", "1abc", "5.", ".5", "+4", "2024-01-01")))


def _text_of(number: int | float) -> str:
    """The number as a client might send it in a string."""
    return str(number) if isinstance(number, int) else repr(number)


@settings(max_examples=300, deadline=None)
@given(number=numbers, other=scalars, operator=st.sampled_from(BINARY))
def test_a_numeric_string_compares_as_its_number(number: int | float, other: object, operator: Operator) -> None:
    """`"47"` and `47` give the same answer against any value, on either side of any comparator."""
    text = _text_of(number)
    assert as_number(text) == number
    assert compare(operator, text, [other], None, 0) == compare(operator, number, [other], None, 0)
    assert compare(operator, other, [text], None, 0) == compare(operator, other, [number], None, 0)


non_numeric_text = st.text(max_size=6).filter(lambda t: as_number(t) is None)
numeric = st.one_of(numbers, numbers.map(_text_of))


@settings(max_examples=300, deadline=None)
@given(value=numeric, text=non_numeric_text, operator=st.sampled_from(BINARY))
def test_numbers_against_non_numeric_text_are_mismatched(value: object, text: str, operator: Operator) -> None:
    """A number or numeric string against non-numeric text is false, `!=` and `none_of` included."""
    assert not compare(operator, value, [text], None, 0)
    assert not compare(operator, text, [value], None, 0)


@settings(max_examples=100, deadline=None)
@given(flag=st.booleans(), value=numeric, operator=st.sampled_from(BINARY))
def test_booleans_against_numbers_are_mismatched(flag: bool, value: object, operator: Operator) -> None:
    """A boolean against a number (or numeric string) is false under every comparator."""
    assert not compare(operator, flag, [value], None, 0)
    assert not compare(operator, value, [flag], None, 0)


@pytest.mark.parametrize(
    ("score", "p", "at_least", "less"),
    [("47", "abc", False, False), (47, "abc", False, False), ("47", "50", True, False), (47, "50", True, False),
     ("47", 46, False, True), (47, "46", False, True), ("abc", "abd", True, False), (True, 1, False, False)],
)
def test_property_against_a_trait_reads_alike(score: object, p: object, at_least: bool, less: bool) -> None:
    """`property('p') >= trait('s')` is the same whether the score was sent as `"47"` or `47`;
    when one side is not a number, both `>=` and `<` are false."""
    profile = Profile([Event("A", 1_000, {"p": p})], {"s": score})
    for operator, expected in ((">=", at_least), ("<", less)):
        checked = parse_and_check(f"event('A').where(property('p') {operator} trait('s')).count() >= 1",
                                  kind="audience", collection="users")
        assert evaluate(checked, profile, 2_000) is expected, operator
