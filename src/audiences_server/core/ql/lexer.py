"""Turns definition text into tokens: strings, numbers, names, operators and punctuation."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from audiences_server.core.ql.errors import QueryError, Span

TokenKind = Literal["string", "number", "name", "op", "punct", "end"]


@dataclass(frozen=True)
class Token:
    """One token: its kind, its exact source text, its value and where it is."""

    kind: TokenKind
    text: str
    value: str | int | float
    span: Span


# Straight quotes close themselves; typographic quotes pasted from rendered docs close with
# their right-hand partner, so ‘Shoes Bought’ reads like 'Shoes Bought'.
_CLOSING_QUOTE = {"'": "'", '"': '"', "\u2018": "\u2019", "\u201c": "\u201d"}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r",
            "\u2019": "\u2019", "\u201d": "\u201d"}
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# A date or timestamp written without quotes, as Segment's reference allows (`2023-12-07`,
# `2023-12-07T18:50:00Z`): the same string as quoted. Whole only: `2023-12` stays a number and
# what follows it, an error as before.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
                   r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?(?![0-9A-Za-z_.:+-])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("==", "!=", ">=", "<=", "=", ">", "<")
_PUNCTUATION = "()[]{}.,:"
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
# The longest number literal, in characters: far beyond any value worth writing (a 64-bit integer
# has 19 digits, a double 17 significant ones), and well under the 4,300 digits past which Python
# refuses to turn digits into an integer.
MAX_NUMBER_LENGTH = 100


def tokenize(source: str) -> list[Token]:
    """Split definition text into tokens, ending with one ``end`` token.

    Args:
        source: The definition text.

    Returns:
        The tokens in order.

    Raises:
        QueryError: On a character or string the language cannot read.
    """
    return list(_Lexer(source).tokens())


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def tokens(self) -> list[Token]:
        found: list[Token] = []
        while True:
            self._skip_space()
            if self.pos >= len(self.source):
                found.append(Token("end", "", "", Span(self.pos, self.pos)))
                return found
            found.append(self._next())

    def _skip_space(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def _next(self) -> Token:
        ch = self.source[self.pos]
        if ch in _CLOSING_QUOTE:
            return self._string(ch)
        if ch.isascii() and ch.isdigit() and (date := _DATE.match(self.source, self.pos)):
            return self._take("string", date.end() - self.pos)
        if ch.isascii() and (ch.isdigit() or ch == "-"):
            return self._number()
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            return self._match(_NAME, "name")
        for op in _OPERATORS:
            if self.source.startswith(op, self.pos):
                return self._take("op", len(op))
        if ch in _PUNCTUATION:
            return self._take("punct", 1)
        raise self._unexpected(ch)

    def _take(self, kind: TokenKind, length: int) -> Token:
        start = self.pos
        self.pos += length
        text = self.source[start : self.pos]
        return Token(kind, text, text, Span(start, self.pos))

    def _match(self, pattern: re.Pattern[str], kind: TokenKind) -> Token:
        found = pattern.match(self.source, self.pos)
        assert found is not None  # the caller checked the first character
        return self._take(kind, found.end() - self.pos)

    def _number(self) -> Token:
        found = _NUMBER.match(self.source, self.pos)
        if found is None:
            raise self._unexpected(self.source[self.pos])
        start, text = self.pos, found.group()
        self.pos = found.end()
        span = Span(start, self.pos)
        if len(text) > MAX_NUMBER_LENGTH:
            raise QueryError(f"a number may be at most {MAX_NUMBER_LENGTH} characters long; this one has "
                             f"{len(text):,}", source=self.source, span=span, kind="limit")
        if found.group(1) is None and found.group(2) is None:
            return Token("number", text, int(text), span)
        value = float(text)
        if not math.isfinite(value):
            raise QueryError(f"number {text} is too large", source=self.source, span=span)
        if value == 0 and any(digit in "123456789" for digit in text.lower().partition("e")[0]):
            raise QueryError(f"number {text} is too small: it would be read as 0", source=self.source, span=span)
        return Token("number", text, value, span)

    def _string(self, opening: str) -> Token:
        closing = _CLOSING_QUOTE[opening]
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.pos >= len(self.source) or self.source[self.pos] in "\r\n":
                raise QueryError(
                    f"unterminated string: expected a closing {closing} on the same line",
                    source=self.source,
                    span=Span(start, self.pos),
                    expected=(closing,),
                )
            ch = self.source[self.pos]
            if ch == closing:
                self.pos += 1
                text = self.source[start : self.pos]
                return Token("string", text, "".join(chars), Span(start, self.pos))
            if ch == "\\":
                chars.append(self._escape())
            else:
                chars.append(ch)
                self.pos += 1

    def _escape(self) -> str:
        start = self.pos
        code = self.source[self.pos + 1 : self.pos + 2]
        if code in _ESCAPES:
            self.pos += 2
            return _ESCAPES[code]
        if code == "u" and _HEX4.fullmatch(self.source, self.pos + 2, self.pos + 6):
            self.pos += 6
            char = chr(int(self.source[start + 2 : self.pos], 16))
            if "\ud800" <= char <= "\udfff":
                # A lone surrogate is not text: it could never be stored or sent as UTF-8.
                raise QueryError("\\u escape names a surrogate, not a character",
                                 source=self.source, span=Span(start, self.pos))
            return char
        message = "unknown escape in string"
        if code == ".":
            # Segment's screens show a dotted key as `utm\.source`; in quotes its backslash is escaped.
            message += "; a dot belonging to its key is written \\\\. in quotes, as in trait('utm\\\\.source')"
        raise QueryError(
            message,
            source=self.source,
            span=Span(start, min(start + 2, len(self.source))),
            expected=("\\\\", "\\'", '\\"', "\\n", "\\t", "\\r", "\\uXXXX"),
        )

    def _unexpected(self, ch: str) -> QueryError:
        span = Span(self.pos, self.pos + 1)
        if ch in "\u2019\u201d":
            message = (
                f"unexpected closing quote {ch}: start strings with ' or \" "
                "(or with the opening quote \u2018 or \u201c)"
            )
        elif ch == "!":
            message = "unexpected '!': did you mean '!='?"
        else:
            message = f"unexpected character {ch!r}"
        return QueryError(message, source=self.source, span=span)
