"""The one error type of the query language, with positions a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["syntax", "type"]


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
            definition that breaks a typing or placement rule.
        line: 1-based line of the offending text.
        column: 1-based column (in characters) of the offending text.
        text: The offending text itself (``""`` at the end of input).
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
        self.text = source[span.start : span.end]
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
        width = max(1, min(len(self.text.split("\n", 1)[0]), len(line_text) - start))
        # Keep tabs so the caret lines up under the same terminal columns as the source.
        pad = "".join("\t" if ch == "\t" else " " for ch in line_text[:start])
        return f"{self}\n{line_text}\n{pad}{'^' * width}"


def line_and_column(source: str, offset: int) -> tuple[int, int]:
    """Return the 1-based line and column of a character offset in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    line_start = source.rfind("\n", 0, offset) + 1
    return line, offset - line_start + 1


def _line_text(source: str, line: int) -> str:
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    return lines[line - 1].rstrip("\r")


def describe(text: str) -> str:
    """Quote a piece of source text for a message, naming the end of input plainly."""
    return "end of input" if text == "" else repr(text)
