"""Segment's query language: parse, check, print, summarise and evaluate definitions.

Typical use::

    checked = parse_and_check(text, kind="audience", collection="users")
    member = evaluate(checked, profile, now_ms)
    due = next_change_time(checked, profile, now_ms)

Every error in a definition is a :class:`QueryError` with a line, a column and a caret.
"""

from audiences_server.core.ql.batch import (
    CycleError,
    Results,
    dependencies,
    dependency_order,
    evaluate_all,
)
from audiences_server.core.ql.checker import (
    MAX_PRIMARY_EXPRESSIONS,
    CheckedDefinition,
    Collection,
    Kind,
    check,
    parse_and_check,
)
from audiences_server.core.ql.errors import QueryError, Span
from audiences_server.core.ql.interpreter import Event, Profile, evaluate
from audiences_server.core.ql.nodes import Definition
from audiences_server.core.ql.parser import parse
from audiences_server.core.ql.printer import to_text
from audiences_server.core.ql.summary import Summary, summarize
from audiences_server.core.ql.timing import next_change_time

__all__ = [
    "MAX_PRIMARY_EXPRESSIONS",
    "CheckedDefinition",
    "Collection",
    "CycleError",
    "Definition",
    "Event",
    "Kind",
    "Profile",
    "QueryError",
    "Results",
    "Span",
    "Summary",
    "check",
    "dependencies",
    "dependency_order",
    "evaluate",
    "evaluate_all",
    "next_change_time",
    "parse",
    "parse_and_check",
    "summarize",
    "to_text",
]
