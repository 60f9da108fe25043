"""Errors a person can fix at once: one type, with line, column, text, expectation and caret."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audiences_server.core.ql import QueryError, check, parse, parse_and_check


def parse_error(text: str) -> QueryError:
    """The QueryError raised by parsing ``text``."""
    with pytest.raises(QueryError) as caught:
        parse(text)
    return caught.value


def test_multiline_error_has_line_column_expected_and_caret() -> None:
    """A bad unit on line 2 is reported at line 2, column 13, with the line and a caret."""
    error = parse_error("event('A')\n  .within(7 dayz)\n  .count() >= 1")
    assert (error.line, error.column, error.text) == (2, 13, "dayz")
    assert error.expected == ("a time unit: seconds, minutes, hours, days or weeks",)
    assert error.kind == "syntax"
    assert error.caret() == (
        "line 2, column 13: expected a time unit: seconds, minutes, hours, days or weeks but found "
        "'dayz'\n"
        "  .within(7 dayz)\n"
        "            ^^^^"
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_every_line_ending_counts_as_a_line(newline: str) -> None:
    """`\n`, `\r\n` and a lone `\r` (read as whitespace) each end a line: the fault is placed
    where an editor shows it, and the caret is under its own line (a lone `\r` was no line end:
    line 1, column 33, and a caret past the end of a three-line display)."""
    error = parse_error(f"trait('x') = 1{newline}AND trait('y') = = 2")
    assert (error.line, error.column) == (2, 18)
    assert error.caret().splitlines()[1:] == ["AND trait('y') = = 2", " " * 17 + "^"]


def test_str_names_line_and_column() -> None:
    """``str(error)`` starts with the position, so a log line or gRPC status says where."""
    error = parse_error("trait('x') = 1 AND")
    assert str(error).startswith("line 1, column 19: expected event(")
    assert error.text == ""
    assert "end of input" in error.message


def test_caret_keeps_tabs_aligned() -> None:
    """Tabs before the fault are copied into the caret line so it lines up in a terminal."""
    error = parse_error("\ttrait('x') @ 1")
    assert error.caret().splitlines()[-1] == "\t           ^"


@pytest.mark.parametrize(
    ("text", "line", "column", "found", "expected_part", "message_part"),
    [
        ("trait('plan = 1", 1, 7, "'plan = 1", "'", "unterminated string"),
        ("evnt('A').count() > 1", 1, 1, "evnt", "event(", "did you mean 'event'?"),
        ("event('A').cont() > 1", 1, 12, "cont", "count", "did you mean 'count'?"),
        ("trait('x').count()", 1, 12, "count", "equals", "count() cannot follow a single value"),
        ("event('A') > 5", 1, 12, ">", ".count()", "reduce it first"),
        ("event('A').count() >= 1 event('B')", 1, 25, "event", "AND", "expected AND, OR"),
        ("trait(\u2019x\u2019) = 1", 1, 7, "\u2019", None, "start strings with ' or \""),
        ("5 = trait('x')", 1, 3, "=", "AND", "a literal cannot start a comparison"),
        ("trait('x') = 1 = 2", 1, 16, "=", "AND", "join comparisons with AND or OR"),
        ("trait('x').equals(1).exists()", 1, 22, "exists", None,
         "cannot follow a comparison"),
        ("", 1, 1, "", "event(", "found end of input"),
        ("trait('x') = 'a\\qb'", 1, 16, "\\q", "\\n", "unknown escape"),
        # Segment's screens show a dotted key as utm\.source: inside quotes the backslash is escaped.
        ("trait('utm\\.source') = 1", 1, 11, "\\.", "\\\\", "written \\\\. in quotes"),
        ("trait('x') = 1e999", 1, 14, "1e999", None, "too large"),
        ("trait('x') = '\\ud800'", 1, 15, "\\ud800", None, "surrogate"),
        ("event('A').within(1.5 days).count()", 1, 19, "1.5", "a whole number, as in '7 days'",
         "whole number"),
        ("event('A').sources('a').count()", 1, 20, "'a'", "'exclude:'", "exclude"),
        ("event('A').max(property('x') as array)", 1, 33, "array", "'string'", "'number'"),
        ("event('A').first(property('x') as string)", 1, 35, "string", None,
         "first() takes no 'as' type"),
        ("event('A').sum(property(parent: 'x'))", 1, 25, "parent", "a property name in quotes",
         "not their parent"),
        ("trait('x') ! 1", 1, 12, "!", None, "did you mean '!='?"),
        ("event('A').where(trait('x')).count()", 1, 18, "trait('x')", "a condition",
         "compare the value"),
        ("trait('x') AND trait('y') = 1", 1, 1, "trait('x')", "a condition", "compare"),
        ("trait('x') = trait('y').exists()", 1, 14, "trait('y').exists()", "a single value",
         "cannot be compared with"),
        ("event('A').unique('p') > 1", 1, 24, ">", "AND", "only .count() may follow"),
        ("trait('x') > event('A')", 1, 24, "", ".count()", "stream of events"),
        ("trait('x') @ 1", 1, 12, "@", None, "unexpected character '@'"),
        ("event('A').count(\n) >= 1 OR\n  trait('y') =", 3, 15, "", "a value", "found end"),
        ("event('A').within(7 days).count() >= 1 AND (trait('x') = 1", 1, 59, "", "')'",
         "expected ')'"),
    ],
)
def test_syntax_errors(text: str, line: int, column: int, found: str,
                       expected_part: str | None, message_part: str) -> None:
    """Each malformed definition is reported where the fault is, saying what would fit."""
    error = parse_error(text)
    assert (error.line, error.column, error.text) == (line, column, found)
    assert message_part in error.message
    if expected_part is not None:
        assert any(expected_part in item for item in error.expected), error.expected
    assert error.caret().splitlines()[-1].strip().startswith("^")


@pytest.mark.parametrize("text", ["(" * 500, "NOT " * 500 + "trait('x') = 1",
                                  "event('A').where(" * 200, "(" * 500 + "trait('x')" + ")" * 500 + ".exists()",
                                  "trait('x') = " + "(" * 500 + "5" + ")" * 500,
                                  "trait('x').one_of(" + "(" * 500 + "'a'" + ")" * 500 + ")"])
def test_deep_nesting_is_a_query_error(text: str) -> None:
    """Input nested past 40 levels is refused with a QueryError, never a RecursionError."""
    error = parse_error(text)
    assert "nested more than 40 levels" in error.message


def _nested_where(levels: int) -> str:
    text = "trait('x') = 1"
    for level in range(levels):
        text = f"event('E{level}').where({text}).count() >= 1"
    return text


@pytest.mark.parametrize("make", [lambda n: "(" * n + "trait('x') = 1" + ")" * n,
                                  lambda n: "NOT " * n + "trait('x') = 1", _nested_where],
                         ids=["parentheses", "not", "where"])
def test_forty_levels_of_nesting_are_taken_and_forty_one_refused(make: Callable[[int], str]) -> None:
    """The documented limit, 40 levels of parentheses, `NOT` or `where`, is exactly where it refuses."""
    parse_and_check(make(40), kind="audience", collection="users")
    refused = parse_error(make(41))
    assert ("nested more than 40 levels" in refused.message, refused.kind) == (True, "limit")


@pytest.mark.parametrize(("text", "said"), [
    ("trait('x') = 1e999", "number 1e999 is too large"),
    ("trait('x') = 1e-400", "number 1e-400 is too small: it would be read as 0")])
def test_a_number_a_double_cannot_hold_is_refused_where_it_is(text: str, said: str) -> None:
    """A literal past a double's range either way is refused at its position, never read as
    another number (1e-400 would have equalled 0); 0e5 and 1e-320 are numbers as written."""
    error = parse_error(text)
    assert (error.message, error.column) == (said, 14)
    parse_and_check("trait('x') = 0e5 OR trait('x') = 1e-320", kind="audience", collection="users")


def test_type_errors_carry_positions() -> None:
    """Checker errors are QueryErrors of kind 'type', pointing into the original text."""
    with pytest.raises(QueryError) as caught:
        parse_and_check("trait('a') = 1 AND\n  property('p') = 2", kind="audience",
                        collection="users")
    error = caught.value
    assert error.kind == "type"
    assert (error.line, error.column, error.text) == (2, 3, "property('p')")
    assert error.caret().splitlines()[1:] == ["  property('p') = 2", "  ^^^^^^^^^^^^^"]


def test_type_error_on_hand_built_tree_has_a_message() -> None:
    """A tree without source text still gets a readable error (at line 1, column 1)."""
    definition = parse("trait('x') = 1")
    from audiences_server.core.ql import Definition

    bare = Definition(definition.root)
    with pytest.raises(QueryError) as caught:
        check(bare, kind="computed_trait", collection="users")
    assert (caught.value.line, caught.value.column) == (1, 1)
    assert "computed trait must end in a value" in caught.value.caret()


def test_non_text_input() -> None:
    """Passing something that is not text is still a QueryError."""
    with pytest.raises(QueryError):
        parse(None)  # type: ignore[arg-type]


def test_limits_are_errors_of_kind_limit_at_the_place_they_are_passed() -> None:
    """A number too long, a list too long and a text too long are `limit` errors pointing at the
    number, the first value too many and the first character past the limit."""
    from audiences_server.core.ql.calls import MAX_LIST_VALUES
    from audiences_server.core.ql.lexer import MAX_NUMBER_LENGTH
    from audiences_server.core.ql.parser import MAX_DEFINITION_BYTES

    number = parse_error("trait('x') = " + "1" * (MAX_NUMBER_LENGTH + 1))
    assert (number.kind, number.column) == ("limit", 14)
    parse("trait('x') = " + "1" * MAX_NUMBER_LENGTH)
    values = ", ".join(str(i) for i in range(MAX_LIST_VALUES + 1))
    listed = parse_error(f"trait('x').one_of({values})")
    assert (listed.kind, listed.text) == ("limit", str(MAX_LIST_VALUES))
    text = "trait('x') = 1 OR\n" + "x" * MAX_DEFINITION_BYTES
    long = parse_error(text)
    assert (long.kind, long.line, long.column) == ("limit", 2, MAX_DEFINITION_BYTES - len("trait('x') = 1 OR\n") + 1)


def test_long_lines_are_quoted_around_the_fault() -> None:
    """On a long line the caret shows the fault with 60 characters either side, the cut ends
    marked; the offending text is cut after 80 characters."""
    text = "trait('x') = '" + "a" * 300 + "' AND trait('y') = '" + "b" * 300 + "' @"
    error = parse_error(text)
    _, shown, caret = error.caret().splitlines()
    assert shown == "\u2026" + text[-61:-1] + "@"
    assert caret == " " * 61 + "^"
    unterminated = parse_error("trait('x') = '" + "c" * 500)
    assert unterminated.text == "'" + "c" * 79 + "\u2026"
