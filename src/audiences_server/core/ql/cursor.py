"""A cursor over tokens with the small reading helpers the parser is built from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from audiences_server.core.ql.errors import ErrorKind, QueryError, Span, describe
from audiences_server.core.ql.lexer import Token, tokenize
from audiences_server.core.ql.nodes import UNIT_MS, Duration, LiteralValue, TimeUnit

# Deep enough for any real definition, shallow enough that no input can exhaust Python's stack.
MAX_NESTING = 40
KEYWORDS = frozenset({"AND", "OR", "NOT", "ANY", "ALL"})
_UNITS: dict[str, TimeUnit] = {
    **{unit: unit for unit in UNIT_MS},
    **{unit + "s": unit for unit in UNIT_MS},
}


class Cursor:
    """Reads tokens one at a time and raises :class:`QueryError` naming what was expected."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0

    # -------------------------------------------------------------- looking

    @property
    def token(self) -> Token:
        """The next unread token."""
        return self.tokens[self.index]

    @property
    def last_end(self) -> int:
        """The end offset of the last token read."""
        return self.tokens[self.index - 1].span.end if self.index else 0

    def at(self, *texts: str) -> bool:
        """Whether the next token is punctuation or an operator spelled as one of ``texts``."""
        return self.token.kind in ("punct", "op") and self.token.text in texts

    def at_keyword(self, *words: str) -> bool:
        """Whether the next token is one of the junction keywords (any letter case)."""
        return self.token.kind == "name" and self.token.text.upper() in words

    def at_label(self, label: str) -> bool:
        """Whether the next tokens are ``label:`` (as in ``parent:`` or ``exclude:``)."""
        following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        return self.token.kind == "name" and self.token.text == label and following.text == ":"

    def span_from(self, start: int) -> Span:
        """The span from ``start`` to the end of the last token read."""
        return Span(start, max(start, self.last_end))

    # -------------------------------------------------------------- reading

    def advance(self) -> Token:
        """Read and return the next token."""
        token = self.token
        if token.kind != "end":
            self.index += 1
        return token

    def expect(self, text: str) -> Token:
        """Read punctuation or an operator spelled ``text``, or fail naming it."""
        if not self.at(text):
            raise self.unexpected(repr(text))
        return self.advance()

    def accept(self, text: str) -> bool:
        """Read punctuation spelled ``text`` if it is next; say whether it was."""
        if self.at(text):
            self.advance()
            return True
        return False

    def name(self, *expected: str) -> Token:
        """Read a name token, or fail naming ``expected``."""
        if self.token.kind != "name":
            raise self.unexpected(*expected)
        return self.advance()

    def string(self, what: str = "a quoted string") -> str:
        """Read a string literal and return its value."""
        if self.token.kind != "string":
            raise self.unexpected(what)
        return str(self.advance().value)

    def label(self, label: str) -> bool:
        """Read ``label:`` if it is next; say whether it was."""
        if self.at_label(label):
            self.advance()
            self.advance()
            return True
        return False

    def literal_value(self) -> LiteralValue | None:
        """Read a string, number, ``true`` or ``false`` if one is next, else return None."""
        token = self.token
        if token.kind in ("string", "number"):
            self.advance()
            return token.value
        if token.kind == "name" and token.text in ("true", "false"):
            self.advance()
            return token.text == "true"
        return None

    def whole_number(self, what: str) -> int:
        """Read an integer literal."""
        token = self.token
        if token.kind != "number" or not isinstance(token.value, int):
            raise self.unexpected(what)
        self.advance()
        return token.value

    def duration(self) -> Duration:
        """Read ``N unit`` such as ``7 days`` or ``1 hour``."""
        start = self.token.span.start
        amount = self.whole_number("a whole number, as in '7 days'")
        unit_token = self.token
        unit = _UNITS.get(unit_token.text.lower()) if unit_token.kind == "name" else None
        if unit is None:
            raise self.unexpected("a time unit: seconds, minutes, hours, days or weeks")
        self.advance()
        return Duration(amount, unit, span=self.span_from(start))

    # -------------------------------------------------------------- failing

    def unexpected(self, *expected: str, hint: str = "") -> QueryError:
        """An error at the next token saying what was expected instead."""
        return self.error_at(self.token.span, expected, hint)

    def error_at(self, span: Span, expected: Sequence[str], hint: str = "") -> QueryError:
        """An error at ``span`` saying what was expected and what was found there."""
        found = describe(self.source[span.start : span.end])
        wanted = _one_of(expected)
        message = f"expected {wanted} but found {found}" if wanted else f"unexpected {found}"
        if hint:
            message = f"{message}; {hint}"
        return QueryError(message, source=self.source, span=span, expected=expected)

    def fail(self, message: str, span: Span, expected: Sequence[str] = (), kind: ErrorKind = "syntax"
             ) -> QueryError:
        """An error with a message of its own."""
        return QueryError(message, source=self.source, span=span, expected=expected, kind=kind)

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Count one level of nesting, refusing input nested too deeply to handle."""
        if self.depth > MAX_NESTING:  # the definition itself is the first level entered
            raise self.fail(f"definition is nested more than {MAX_NESTING} levels deep",
                            self.token.span, kind="limit")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


def _one_of(expected: Sequence[str]) -> str:
    if len(expected) <= 1:
        return "".join(expected)
    return ", ".join(expected[:-1]) + " or " + expected[-1]
