"""The type checker: rules that depend on where a node is and what the definition is for."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Literal as TypingLiteral

from audiences_server.core.ql.errors import QueryError, Span
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
    Session,
    Sources,
    Stream,
    TraitRef,
    Where,
    Within,
    is_condition,
)
from audiences_server.core.ql.parser import parse
from audiences_server.core.ql.summary import Summary, summarize
from audiences_server.core.ql.values import as_date_ms

Kind = TypingLiteral["audience", "computed_trait"]
Collection = TypingLiteral["users", "accounts"]
MAX_PRIMARY_EXPRESSIONS = 50
# About 274 years: far beyond any useful window, and small enough for 64-bit milliseconds.
MAX_DURATION_MS = 100_000 * 86_400_000
_STRING_OPERATORS = (Operator.CONTAINS, Operator.OMITS, Operator.STARTS_WITH, Operator.ENDS_WITH)
_ORDERING = (Operator.GREATER_THAN, Operator.AT_LEAST, Operator.LESS_THAN, Operator.AT_MOST)
_DATES = (Operator.BEFORE_DATE, Operator.AFTER_DATE)


@dataclass(frozen=True)
class CheckedDefinition:
    """A definition that passed :func:`check` for one kind and collection."""

    definition: Definition
    kind: Kind
    collection: Collection
    summary: Summary


def check(definition: Definition, *, kind: Kind, collection: Collection) -> CheckedDefinition:
    """Check a parsed definition against the placement and typing rules.

    Rules: an audience ends in a condition and a computed trait in a value; ``property()``
    and ``context()`` only inside a ``where`` or as a reducer's field; ``parent:`` only in a
    stream nested in another stream's ``where``; ``ANY``/``ALL`` only at the top of an account
    audience; at most 50 primary expressions; durations, frequencies and literal operands
    that make sense.

    Args:
        definition: The parsed definition.
        kind: ``"audience"`` or ``"computed_trait"``.
        collection: ``"users"`` or ``"accounts"``.

    Returns:
        The definition with its kind, collection and dependency summary.

    Raises:
        QueryError: (``kind == "type"``) naming the first rule broken and where.
    """
    checker = _Checker(definition, kind, collection)
    checker.check()
    summary = dataclasses.replace(summarize(definition), primary_expressions=checker.primaries)
    return CheckedDefinition(definition, kind, collection, summary)


def parse_and_check(text: str, *, kind: Kind, collection: Collection) -> CheckedDefinition:
    """:func:`parse` then :func:`check`; raises :class:`QueryError` for either.

    Remembered for the texts last checked (a checked definition is immutable): a space's
    definitions are checked again whenever one of them is saved (for cycles) and whenever the
    evaluator's registry is rebuilt, and parsing 200 of them takes some 35 ms.
    """
    return _parsed_and_checked(text, kind, collection)


@functools.lru_cache(maxsize=4096)
def _parsed_and_checked(text: str, kind: Kind, collection: Collection) -> CheckedDefinition:
    return check(parse(text), kind=kind, collection=collection)


@dataclass(frozen=True)
class _Place:
    """Where a node sits: inside how many streams' ``where``, and whether ANY/ALL may go."""

    event_depth: int = 0
    quantifiable: bool = False

    def inside_stream(self) -> _Place:
        return _Place(self.event_depth + 1, quantifiable=False)


class _Checker:
    def __init__(self, definition: Definition, kind: Kind, collection: Collection) -> None:
        self.definition = definition
        self.kind = kind
        self.collection = collection
        self.primaries = 0

    def fail(self, message: str, span: Span, expected: tuple[str, ...] = ()) -> QueryError:
        return QueryError(message, source=self.definition.source, span=span,
                          expected=expected, kind="type")

    def check(self) -> None:
        root = self.definition.root
        if self.kind == "audience" and not is_condition(root):
            raise self.fail("an audience must end in a condition, but this is a value; compare "
                            "it, e.g. with >= 1 or .exists()", root.span, ("a comparison",))
        if self.kind == "computed_trait" and is_condition(root):
            raise self.fail("a computed trait must end in a value (such as .count() or "
                            ".sum(…)), but this is a condition", root.span, ("a value",))
        top = _Place(quantifiable=self.kind == "audience" and self.collection == "accounts")
        if is_condition(root):
            self.condition(root, top)  # type: ignore[arg-type]
        else:
            self.scalar(root, top, as_subject=False)  # type: ignore[arg-type]

    # -------------------------------------------------------------- conditions

    def condition(self, node: Condition, place: _Place) -> None:
        if isinstance(node, And | Or):
            if len(node.items) < 2:
                raise self.fail("AND/OR needs at least two conditions", node.span)
            for item in node.items:
                self.condition(item, place)
        elif isinstance(node, Not):
            self.condition(node.operand, place)
        elif isinstance(node, Quantified):
            self.quantified(node, place)
        else:
            self.comparison(node, place)

    def quantified(self, node: Quantified, place: _Place) -> None:
        if not place.quantifiable:
            reason = ("only account audiences use ANY/ALL"
                      if self.collection == "users" or self.kind != "audience"
                      else "ANY/ALL may not be nested in each other or used inside where(…)")
            raise self.fail(f"{reason}: they combine the linked users' results", node.span)
        self.condition(node.operand, _Place(place.event_depth, quantifiable=False))

    def comparison(self, node: Comparison, place: _Place) -> None:
        self.scalar(node.subject, place, as_subject=True)
        shape = OPERAND_SHAPE[node.operator]
        count = len(node.operands)
        if (shape in ("none", "duration") and count) or (shape == "one" and count != 1) or (
            shape == "many" and count < 1
        ):
            raise self.fail(f"wrong number of values for {node.operator.value}()", node.span)
        if (shape == "duration") != (node.duration is not None):
            raise self.fail(f"{node.operator.value}() takes a duration such as '7 days'",
                            node.span)
        if node.duration is not None:
            self.duration(node.duration)
        for operand in node.operands:
            self.scalar(operand, place, as_subject=False)
            self.literal_operand(node.operator, operand)

    def literal_operand(self, operator: Operator, operand: Scalar) -> None:
        if not isinstance(operand, Literal):
            return
        value = operand.value
        if operator in _DATES and as_date_ms(value) is None:
            raise self.fail(f"{operator.value}() needs an ISO-8601 date with a zone, such as "
                            "'2023-12-07T18:50:00Z' or '2023-12-07'", operand.span,
                            ("an ISO-8601 date",))
        if operator in _STRING_OPERATORS and not isinstance(value, str):
            raise self.fail(f"{operator.value}() compares text: give a quoted string",
                            operand.span, ("a string",))
        if operator in _ORDERING and isinstance(value, bool):
            raise self.fail("true and false cannot be ordered; use = or !=", operand.span,
                            ("a number", "a string"))

    # -------------------------------------------------------------- scalars

    def scalar(self, node: Scalar, place: _Place, *, as_subject: bool) -> None:
        if isinstance(node, Literal):
            if as_subject:
                raise self.fail("a literal cannot be the value being tested", node.span)
        elif isinstance(node, TraitRef):
            self.primary(node.key, "trait key", node.span)
        elif isinstance(node, PropertyRef | ContextRef):
            self.event_field(node, place)
        else:
            self.aggregate(node, place, as_subject=as_subject)

    def event_field(self, node: PropertyRef | ContextRef, place: _Place) -> None:
        name = "property" if isinstance(node, PropertyRef) else "context"
        self.primary(node.path, f"{name} name", node.span)
        if place.event_depth < 1:
            raise self.fail(f"{name}() reads an event, so it is only valid inside where(…) "
                            "or as a reducer's argument", node.span)
        if isinstance(node, PropertyRef) and node.parent and place.event_depth < 2:
            raise self.fail("property(parent: …) is only valid in a stream nested inside "
                            "another event's where(…) (a funnel)", node.span)

    def aggregate(self, node: Aggregate, place: _Place, *, as_subject: bool) -> None:
        unique = node.function is AggregateFunction.UNIQUE
        if unique and as_subject:
            raise self.fail("unique() is a list; only .count() may follow it", node.span)
        self.stream(node.stream, place)
        if (node.field is None) != (node.function is AggregateFunction.COUNT):
            raise self.fail(f"{node.function.value}() needs a property", node.span)
        if isinstance(node.field, PropertyRef) and node.field.parent:
            raise self.fail("a reducer reads its own events, not their parent", node.span)
        if node.field is not None:
            self.event_field(node.field, place.inside_stream())
        if node.function is AggregateFunction.MODE and node.min_frequency < 1:
            raise self.fail("mode()'s minimum frequency must be at least 1", node.span)

    def stream(self, node: Stream, place: _Place) -> None:
        self.primary(node.event, "event name", node.span)
        for found in node.filters:
            self.filter(found, place)

    def filter(self, node: Filter, place: _Place) -> None:
        if isinstance(node, Where):
            self.condition(node.condition, place.inside_stream())
        elif isinstance(node, Sources):
            if not node.exclude:
                raise self.fail("sources(exclude: …) needs at least one source id", node.span)
        elif isinstance(node, Session):
            self.duration(node.duration)
            if node.duration.ms == 0:
                raise self.fail("expires_after(…) needs a session timeout longer than 0", node.span)
        else:
            if node.parent and place.event_depth < 1:
                raise self.fail("a parent: window is only valid in a stream nested inside "
                                "another event's where(…) (a funnel)", node.span)
            if isinstance(node, Within):
                self.duration(node.duration)
            else:
                self.between(node)

    def between(self, node: Between) -> None:
        self.duration(node.start)
        self.duration(node.end)
        if node.start.ms > node.end.ms:
            raise self.fail("between(a, b) needs a <= b: it takes events from b ago to a ago",
                            node.span)

    def duration(self, node: Duration) -> None:
        if not 0 <= node.ms <= MAX_DURATION_MS:
            raise self.fail("a duration must be between 0 and 100000 days", node.span)

    def primary(self, name: str, what: str, span: Span) -> None:
        if not name:
            raise self.fail(f"the {what} must not be empty", span)
        self.primaries += 1
        if self.primaries > MAX_PRIMARY_EXPRESSIONS:
            raise self.fail(f"a definition may use at most {MAX_PRIMARY_EXPRESSIONS} primary "
                            "expressions (event, trait, property, context); this is one more",
                            span)
