"""Reading the argument lists of the language's functions (extractors, filters, reducers,
comparators). Each reader starts after the function's name and ends after its ``)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from audiences_server.core.ql.cursor import Cursor
from audiences_server.core.ql.errors import Span
from audiences_server.core.ql.nodes import (
    OPERAND_SHAPE,
    Aggregate,
    AggregateFunction,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Field,
    Filter,
    Literal,
    Operator,
    PropertyRef,
    Scalar,
    Session,
    Sources,
    Stream,
    TraitRef,
    ValueType,
    Where,
    Within,
    is_condition,
)

# The most values one list may hold (`one_of(…)`, `contains(…)`, `sources(exclude: …)`): each
# profile is compared with every one of them.
MAX_LIST_VALUES = 1_000
EXTRACTORS = ("event", "trait", "property", "context", "literal")
FILTERS = ("where", "sources", "within", "between", "expires_after")
REDUCERS = ("count", "sum", "avg", "min", "max", "mode", "first", "last", "unique")
# The older Engage reference spells some comparators differently; both spellings are read and
# the canonical printer writes the names of the public API reference.
COMPARATORS: dict[str, Operator] = {
    **{op.value: op for op in Operator},
    "eq": Operator.EQUALS,
    "neq": Operator.DIFFERS,
    "is_null": Operator.ABSENT,
    "is_set": Operator.EXISTS,
    "gt": Operator.GREATER_THAN,
    "gte": Operator.AT_LEAST,
    "lt": Operator.LESS_THAN,
    "lte": Operator.AT_MOST,
    "contains_one": Operator.CONTAINS,
}
# The first type listed is the default, written without ``as``.
VALUE_TYPES: dict[AggregateFunction, tuple[ValueType, ...]] = {
    AggregateFunction.SUM: ("number",),
    AggregateFunction.AVG: ("number",),
    AggregateFunction.MIN: ("number", "string"),
    AggregateFunction.MAX: ("number", "string"),
    AggregateFunction.MODE: ("string", "number", "array"),
}
_T = TypeVar("_T")
_N = TypeVar("_N")
_STORES_VALUE_TYPE = (AggregateFunction.MIN, AggregateFunction.MAX, AggregateFunction.MODE)


class CallReader(Cursor):
    """Argument-list readers; the junction and chain grammar lives in the subclass."""

    def expression(self) -> Condition | Scalar:
        """Read a full junction expression (implemented by the parser)."""
        raise NotImplementedError

    def operand(self) -> Scalar:
        """Read one scalar operand (implemented by the parser)."""
        raise NotImplementedError

    # -------------------------------------------------------------- argument lists

    def open_args(self) -> bool:
        """Read ``(``, and a ``{`` after it if present: the reference writes its examples as
        ``where({…})`` and ``sources({exclude: …})``, so braces around arguments are read."""
        self.expect("(")
        return self.accept("{")

    def close_args(self, braced: bool) -> None:
        """Read the ``}`` (if the list was braced) and ``)`` ending an argument list."""
        if braced:
            self.expect("}")
        self.expect(")")

    def listed(self, read_one: Callable[[], _T]) -> tuple[_T, ...]:
        """Read ``a, b, …`` or ``[a, b, …]``: one or more items."""
        bracketed = self.accept("[")
        items = [read_one()]
        while self.accept(","):
            if len(items) == MAX_LIST_VALUES:
                raise self.fail(f"a list may hold at most {MAX_LIST_VALUES:,} values; this is one more",
                                self.token.span, kind="limit")
            items.append(read_one())
        if bracketed:
            self.expect("]")
        return tuple(items)

    # -------------------------------------------------------------- extractors

    def extractor(self, name: str, start: int) -> Scalar | Stream:
        """Read the arguments of ``event``, ``trait``, ``property``, ``context``, ``literal``."""
        braced = self.open_args()
        node: Scalar | Stream
        if name == "event":
            event = self.string("an event name in quotes, as in event('Order Completed')")
            self.close_args(braced)
            return Stream(event, span=self.span_from(start))
        if name == "trait":
            node = TraitRef(self.string("a trait key in quotes"))
        elif name == "property":
            parent = self.label("parent")
            node = PropertyRef(self.string("a property name in quotes"), parent)
        elif name == "context":
            node = ContextRef(self.string("a context path in quotes, as in 'page.url'"))
        else:
            value = self.literal_value()
            if value is None:
                raise self.unexpected("a string, a number, true or false")
            node = Literal(value)
        self.close_args(braced)
        return _with_span(node, self.span_from(start))

    # -------------------------------------------------------------- filters

    def filter(self, name: str, start: int) -> Filter:
        """Read the arguments of ``where``, ``sources``, ``within``, ``between`` or ``expires_after``."""
        braced = self.open_args()
        result: Filter
        if name == "where":
            result = Where(self.condition(self.expression()))
        elif name == "sources":
            if not self.label("exclude"):
                raise self.unexpected("'exclude:'")
            result = Sources(self.listed(lambda: self.string("a source id in quotes")))
        elif name == "within":
            parent = self.label("parent")
            result = Within(self.duration(), parent)
        elif name == "expires_after":
            if self.at_label("parent"):
                raise self.unexpected("a duration, as in expires_after(30 minutes)",
                                      hint="a session is measured from now: expires_after takes no parent:")
            result = Session(self.duration())
        else:
            parent = self.label("parent")
            first = self.duration()
            self.expect(",")
            result = Between(first, self.duration(), parent)
        self.close_args(braced)
        return _with_span(result, self.span_from(start))

    def condition(self, node: Condition | Scalar) -> Condition:
        """Insist that ``node`` is a condition, pointing at it if it is only a value."""
        if is_condition(node):
            return node  # type: ignore[return-value]
        raise self.error_at(
            node.span,
            ["a condition"],
            hint="compare the value, e.g. with .exists() or > 0",
        )

    # -------------------------------------------------------------- reducers

    def reducer(self, stream: Stream, name: str, start: int) -> Aggregate:
        """Read the arguments of a reducer applied to ``stream``."""
        function = AggregateFunction(name)
        braced = self.open_args()
        if function is AggregateFunction.COUNT:
            self.close_args(braced)
            return Aggregate(stream, function, span=self.span_from(start))
        field = self.field()
        value_type = self.value_type(function)
        min_frequency = 1
        if function is AggregateFunction.MODE and self.accept(","):
            min_frequency = self.whole_number("a minimum frequency (a whole number)")
        self.close_args(braced)
        return Aggregate(stream, function, field, value_type, min_frequency,
                         span=self.span_from(start))

    def field(self) -> Field:
        """Read a reducer's field: ``'p'``, ``property('p')`` or ``context('p')``."""
        start = self.token.span.start
        if self.token.kind == "string":
            return PropertyRef(self.string(), span=self.span_from(start))
        if self.token.kind == "name" and self.token.text in ("property", "context"):
            name = self.advance().text
            braced = self.open_args()
            if self.at_label("parent"):
                raise self.unexpected(
                    "a property name in quotes",
                    hint="a reducer reads the events it reduces, not their parent",
                )
            path = self.string(f"a {name} name in quotes")
            self.close_args(braced)
            span = self.span_from(start)
            return PropertyRef(path, span=span) if name == "property" else ContextRef(path, span)
        raise self.unexpected("property('name')", "context('path')", "a property name in quotes")

    def value_type(self, function: AggregateFunction) -> ValueType | None:
        """Read an optional ``as <type>``; return the type stored in the tree."""
        allowed = VALUE_TYPES.get(function, ())
        chosen = allowed[0] if allowed else None
        if self.token.kind == "name" and self.token.text == "as":
            self.advance()
            token = self.token
            if not allowed or token.kind != "name" or token.text not in allowed:
                hint = "" if allowed else f"{function.value}() takes no 'as' type"
                raise self.unexpected(*(f"'{t}'" for t in allowed), hint=hint)
            self.advance()
            chosen = next(t for t in allowed if t == token.text)
        return chosen if function in _STORES_VALUE_TYPE else None

    # -------------------------------------------------------------- comparators

    def comparator(self, subject: Scalar, name: str, start: int) -> Comparison:
        """Read the arguments of a comparator method applied to ``subject``."""
        operator = COMPARATORS[name]
        shape = OPERAND_SHAPE[operator]
        braced = self.open_args()
        operands: tuple[Scalar, ...] = ()
        duration = None
        if shape == "one":
            operands = (self.operand(),)
        elif shape == "many":
            operands = self.listed(self.operand)
        elif shape == "duration":
            duration = self.duration()
        self.close_args(braced)
        return Comparison(subject, operator, operands, duration, span=self.span_from(start))


def _with_span(node: _N, span: Span) -> _N:
    return replace(node, span=span)  # type: ignore[type-var]
