"""Recursive-descent parser: definition text to a :class:`Definition` tree.

Grammar (``{}`` around an argument list and ``[]`` around a list are also read)::

    definition  := expression END
    expression  := conjunction ( "OR" conjunction )*
    conjunction := unary ( "AND" unary )*
    unary       := "NOT" unary | "ANY" unary | "ALL" "NOT" unary | "ALL" unary | primary
    primary     := "(" [ "{" ] expression [ "}" ] ")" [ ( "." call )* [ sugar operand ] ] | chain
    chain       := literal | extractor ( "." call )* [ sugar operand ]
    operand     := "(" operand ")" | literal | chain
    sugar       := "=" | "==" | "!=" | ">" | ">=" | "<" | "<="

The return-type rules of the language decide which call may follow which, and are enforced
here as the chain is read: a stream (``event()`` and filters) takes filters and reducers; a
scalar takes comparators; ``unique()`` takes only ``count()``; a comparison ends the chain.
"""

from __future__ import annotations

import difflib
from typing import TypeGuard

from audiences_server.core.ql.calls import (
    COMPARATORS,
    EXTRACTORS,
    FILTERS,
    REDUCERS,
    CallReader,
)
from audiences_server.core.ql.errors import NO_SPAN, QueryError, Span
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Comparison,
    Condition,
    Definition,
    Literal,
    Not,
    Operator,
    Or,
    Quantified,
    Quantifier,
    Scalar,
    Stream,
)

_SUGAR = {
    "=": Operator.EQUALS,
    "==": Operator.EQUALS,
    "!=": Operator.DIFFERS,
    ">": Operator.GREATER_THAN,
    ">=": Operator.AT_LEAST,
    "<": Operator.LESS_THAN,
    "<=": Operator.AT_MOST,
}
# The longest definition, in bytes of UTF-8. Parsing costs about 2 µs a byte and a definition is
# parsed again whenever it is listed or the evaluator reloads: 16 KiB is room for 1,000 listed
# values, and a definition of that size still parses in about 35 ms.
MAX_DEFINITION_BYTES = 16_384
_START = ("event(", "trait(", "property(", "context(", "literal(", "NOT", "ANY", "ALL", "'('")
_Chained = Scalar | Stream | Comparison


def parse(text: str) -> Definition:
    """Parse definition text into a tree, applying the language's call-chain type rules.

    Placement rules that depend on what the definition is for (audience or computed trait,
    users or accounts) are checked by :func:`~audiences_server.core.ql.check`.

    Args:
        text: The definition, e.g. ``event('Shoes Bought').within(7 days).count() >= 1``.

    Returns:
        The parsed definition.

    Raises:
        QueryError: For any text that is not a well-formed definition. No other exception
            escapes, whatever the input.
    """
    if not isinstance(text, str):
        raise QueryError("a definition must be text", source="", span=NO_SPAN)
    _refuse_oversized(text)
    try:
        parser = _Parser(text)
        root = parser.expression()
        if parser.token.kind != "end":
            hint = "join comparisons with AND or OR" if parser.token.kind == "op" else ""
            raise parser.unexpected("AND", "OR", "end of input", hint=hint)
    except RecursionError:  # pragma: no cover - nesting is bounded well below the stack
        raise QueryError("definition is nested too deeply", source=text, span=NO_SPAN) from None
    return Definition(root, source=text)


def _refuse_oversized(text: str) -> None:
    """Refuses a definition longer than MAX_DEFINITION_BYTES, before any parsing work, pointing at
    the first character past the limit."""
    if len(text) * 4 <= MAX_DEFINITION_BYTES:
        return  # no character takes more than 4 bytes
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_DEFINITION_BYTES:
        return
    fits = len(encoded[:MAX_DEFINITION_BYTES].decode("utf-8", "ignore"))
    raise QueryError(f"a definition may be at most {MAX_DEFINITION_BYTES:,} bytes long (UTF-8); this one has "
                     f"{len(encoded):,}", source=text, span=Span(fits, fits + 1), kind="limit")


class _Parser(CallReader):
    # -------------------------------------------------------------- junctions

    def expression(self) -> Condition | Scalar:
        with self.nested():
            start = self.token.span.start
            items = [self.conjunction()]
            while self.at_keyword("OR"):
                self.advance()
                items.append(self.conjunction())
            if len(items) == 1:
                return items[0]
            return Or(tuple(self.condition(i) for i in items), span=self.span_from(start))

    def conjunction(self) -> Condition | Scalar:
        start = self.token.span.start
        items = [self.unary()]
        while self.at_keyword("AND"):
            self.advance()
            items.append(self.unary())
        if len(items) == 1:
            return items[0]
        return And(tuple(self.condition(i) for i in items), span=self.span_from(start))

    def unary(self) -> Condition | Scalar:
        start = self.token.span.start
        if self.at_keyword("NOT"):
            self.advance()
            with self.nested():
                return Not(self.condition(self.unary()), span=self.span_from(start))
        if self.at_keyword("ANY", "ALL"):
            quantifier: Quantifier = "any" if self.advance().text.upper() == "ANY" else "all"
            if quantifier == "all" and self.at_keyword("NOT"):
                self.advance()
                quantifier = "none"
            with self.nested():
                operand = self.condition(self.unary())
            return Quantified(quantifier, operand, span=self.span_from(start))
        return self.primary()

    def primary(self) -> Condition | Scalar:
        start = self.token.span.start
        if self.accept("("):
            braced = self.accept("{")  # the reference's `NOT ({Comparator})`, `ANY ({Comparator})`
            node = self.expression()
            if braced:
                self.expect("}")
            self.expect(")")
            return self.continued(node, start)
        if self.token.kind == "end" or self.at(")"):
            raise self.unexpected(*_START)
        return self.chain(operand=False)

    def continued(self, node: Condition | Scalar, start: int) -> Condition | Scalar:
        """A value in parentheses goes on as its chain would have, as the reference writes
        `(expression).absent()` and `(expression) != (value)`; a condition in parentheses ends
        there, and a literal stands alone as it does anywhere."""
        if isinstance(node, Literal):
            return self.lone_literal(node, operand=False)
        if isinstance(node, Comparison | And | Or | Not | Quantified):
            return node
        chained: _Chained = node
        while self.at("."):
            chained = self.call(chained, start)
        if self.token.kind == "op":
            chained = self.sugar(chained, start)
        assert not isinstance(chained, Stream)  # a value's calls are comparators, or count() of a list
        return chained

    # -------------------------------------------------------------- chains

    def operand(self) -> Scalar:
        start = self.token.span.start
        if self.accept("("):  # the reference's `(value)`
            with self.nested():
                inner = self.operand()
            self.expect(")")
            return inner
        value = self.literal_value()
        if value is not None:
            return Literal(value, span=self.span_from(start))
        if self.token.kind != "name":
            raise self.unexpected("a value: a string, a number, true, false or trait('key')")
        node = self.chain(operand=True)
        if isinstance(node, Comparison) or _is_list(node):
            raise self.error_at(node.span, ["a single value"],
                                hint="a comparison or a unique() list cannot be compared with")
        return node

    def chain(self, *, operand: bool) -> Scalar | Comparison:
        start = self.token.span.start
        value = self.literal_value()
        if value is not None:
            return self.lone_literal(Literal(value, span=self.span_from(start)), operand)
        token = self.name(*_START)
        if token.text not in EXTRACTORS:
            raise self.error_at(token.span, _START, hint=_suggest(token.text, EXTRACTORS))
        node: _Chained = self.extractor(token.text, start)
        if isinstance(node, Literal):
            return self.lone_literal(node, operand)
        while self.at("."):
            node = self.call(node, start)
        if not operand and self.token.kind == "op":
            node = self.sugar(node, start)
        if isinstance(node, Stream):
            raise self.unexpected(".where(…)", ".within(…)", ".count()", "another reducer",
                                  hint=f"event({node.event!r}) is a stream of events: "
                                  "filter it and reduce it to a value")
        return node

    def lone_literal(self, node: Literal, operand: bool) -> Literal:
        """A literal stands alone: no calls follow it and it is never a comparison's subject."""
        if self.at(".") or (not operand and self.token.kind == "op"):
            raise self.unexpected(
                "AND", "OR", "')'", "end of input",
                hint="a literal cannot start a comparison; put the value being tested first, "
                "as in trait('plan') = 'pro'",
            )
        return node

    def call(self, node: _Chained, start: int) -> _Chained:
        self.expect(".")
        allowed = _allowed_after(node)
        token = self.name(*allowed)
        name, call_start = token.text, token.span.start
        if name not in allowed and not (_takes_comparator(node) and name in COMPARATORS):
            known = EXTRACTORS + FILTERS + REDUCERS + tuple(COMPARATORS)
            hint = (f"{name}() cannot follow {_describe(node)}" if name in known
                    else _suggest(name, allowed))
            raise self.error_at(token.span, allowed, hint=hint)
        if isinstance(node, Stream):
            if name in FILTERS:
                found = self.filter(name, call_start)
                return Stream(node.event, (*node.filters, found), span=self.span_from(start))
            return self.reducer(node, name, start)
        if isinstance(node, Aggregate) and node.function is AggregateFunction.UNIQUE:
            self.close_args(self.open_args())
            return Aggregate(node.stream, AggregateFunction.UNIQUE_COUNT, node.field,
                             span=self.span_from(start))
        assert _takes_comparator(node)  # every other kind of node returned above
        return self.comparator(node, name, start)

    def sugar(self, node: _Chained, start: int) -> _Chained:
        token = self.token
        if token.text not in _SUGAR:  # pragma: no cover - the lexer makes only these operators
            raise self.unexpected(*_SUGAR)
        if _takes_comparator(node):
            self.advance()
            operand = self.operand()
            return Comparison(node, _SUGAR[token.text], (operand,), span=self.span_from(start))
        if isinstance(node, Stream):
            raise self.error_at(token.span, [".count()", "another reducer"],
                                hint=f"event({node.event!r}) is a stream of events; reduce "
                                f"it first, as in event({node.event!r}).count() {token.text} …")
        raise self.error_at(token.span, ["AND", "OR", "end of input"],
                            hint=f"{token.text} cannot follow {_describe(node)}")


def _allowed_after(node: _Chained) -> tuple[str, ...]:
    if isinstance(node, Stream):
        return FILTERS + REDUCERS
    if _is_list(node):
        return ("count",)
    if isinstance(node, Comparison):
        return ()
    return tuple(op.value for op in Operator)


def _takes_comparator(node: _Chained) -> TypeGuard[Scalar]:
    return not isinstance(node, Stream | Comparison) and not _is_list(node)


def _describe(node: _Chained) -> str:
    if isinstance(node, Stream):
        return "an event stream; reduce it first, e.g. with .count()"
    if _is_list(node):
        return "unique(), a list; only .count() may follow it"
    if isinstance(node, Comparison):
        return "a comparison, which ends the expression"
    return "a single value; compare it, e.g. with .equals(…) or > 0"


def _is_list(node: object) -> bool:
    return isinstance(node, Aggregate) and node.function is AggregateFunction.UNIQUE


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"{name!r} is not a function here"

