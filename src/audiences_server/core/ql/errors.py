"""The one error type of the query language, with positions a person can act on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["syntax", "type", "limit"]
# How much of the source an error quotes: the offending text, and the line around the fault in the
# caret display. A definition may be one long line; an error about it must stay a short message
# (it travels in a gRPC status, whose trailers are a few kilobytes at most).
MAX_QUOTED = 80
_CONTEXT = 60


@dataclass(frozen=True)
class Span:
    """A half-open range ``[start, end)`` of character offsets into the definition text."""

    start: int
    end: int


NO_SPAN = Span(0, 0)


class QueryError(Exception):
    """A definition that cannot be parsed or type-checked.

    Every failure of :func:`parse` and :func:`check` on any input is this type, so a caller
    can map it to one client error (``INVALID_ARGUMENT``) without guessing.

    Attributes:
        message: What is wrong, in one sentence, naming what was found.
        kind: ``"syntax"`` for text the grammar cannot read, ``"type"`` for a well-formed
            definition that breaks a typing or placement rule, ``"limit"`` for a definition
            larger than the language allows (its length, a list's values, a number's digits).
        line: 1-based line of the offending text.
        column: 1-based column (in characters) of the offending text.
        text: The offending text itself (``""`` at the end of input), cut after
            ``MAX_QUOTED`` characters with ``…``.
        expected: What would have been accepted at that place, if that is a short list.
        source: The whole definition text, so :meth:`caret` can show the line.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        span: Span,
        expected: Sequence[str] = (),
        kind: ErrorKind = "syntax",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind
        self.source = source
        self.span = span
        self.expected = tuple(expected)
        self.text = _quoted(source[span.start : min(span.end, span.start + MAX_QUOTED + 1)])
        self.line, self.column = line_and_column(source, span.start)

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"

    def caret(self) -> str:
        """Return the message, the offending source line and a caret line under the fault.

        Returns:
            Three lines of text, e.g.::

                line 1, column 22: expected ')' but found 'AND'
                event('A').where(x AND
                                   ^^^
        """
        line_text = _line_text(self.source, self.line)
        start = self.column - 1
        # A long line is shown around the fault only, its cut ends marked with an ellipsis.
        first = max(0, start - _CONTEXT)
        last = max(first, min(len(line_text), start + _CONTEXT))
        shown = ("\u2026" if first else "") + line_text[first:last] + ("\u2026" if last < len(line_text) else "")
        start += (1 if first else 0) - first
        width = max(1, min(len(_BREAK.split(self.text, maxsplit=1)[0]), len(shown) - start))
        # Keep tabs so the caret lines up under the same terminal columns as the source.
        pad = "".join("\t" if ch == "\t" else " " for ch in shown[:start])
        return f"{self}\n{shown}\n{pad}{'^' * width}"


def _quoted(text: str) -> str:
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "\u2026"


# A line ends at `\r\n`, `\n` or a lone `\r`, as the lexer reads each as whitespace and editors as
# a line break.
_BREAK = re.compile(r"\r\n|\r|\n")


def line_and_column(source: str, offset: int) -> tuple[int, int]:
    """Return the 1-based line and column of a character offset in ``source``."""
    offset = max(0, min(offset, len(source)))
    breaks = list(_BREAK.finditer(source, 0, offset))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - line_start + 1


def _line_text(source: str, line: int) -> str:
    lines = _BREAK.split(source)
    if not 1 <= line <= len(lines):
        return ""
    return lines[line - 1]


def describe(text: str) -> str:
    """Quote a piece of source text for a message, naming the end of input plainly."""
    return "end of input" if text == "" else repr(_quoted(text))
