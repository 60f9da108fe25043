"""The canonical printer: one spelling per tree, so ``parse(to_text(d)) == d``.

Canonical form: single-quoted strings; comparators with a symbol printed as ``=``, ``!=``,
``>``, ``>=``, ``<``, ``<=``; literals bare; reducer fields as ``property('p')``; the default
``as`` type omitted; ``mode`` always with its minimum frequency; ``NOT``, ``ANY``, ``ALL`` and
``ALL NOT`` always followed by parentheses; ``AND``/``OR`` parenthesised only where needed.
"""

from __future__ import annotations

import math

from audiences_server.core.ql.calls import VALUE_TYPES
from audiences_server.core.ql.nodes import (
    OPERAND_SHAPE,
    SUGAR,
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
    LiteralValue,
    Not,
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
)

_QUANTIFIER = {"any": "ANY", "all": "ALL", "none": "ALL NOT"}
_ESCAPED = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def to_text(definition: Definition | Condition | Scalar) -> str:
    """Print a definition (or any condition or scalar node) in canonical form.

    Args:
        definition: A parsed or hand-built tree.

    Returns:
        Text that :func:`parse` reads back into an equal tree.
    """
    node = definition.root if isinstance(definition, Definition) else definition
    if isinstance(node, Comparison | And | Or | Not | Quantified):
        return condition_text(node)
    return scalar_text(node)


def condition_text(node: Condition) -> str:
    """Print a condition."""
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, And):
        # An OR inside an AND, or an AND inside an AND, keeps its parentheses.
        return " AND ".join(_grouped(item, And | Or) for item in node.items)
    if isinstance(node, Or):
        return " OR ".join(_grouped(item, Or) for item in node.items)
    if isinstance(node, Not):
        return f"NOT ({condition_text(node.operand)})"
    return f"{_QUANTIFIER[node.quantifier]} ({condition_text(node.operand)})"


def _grouped(node: Condition, needs_parens: type | object) -> str:
    text = condition_text(node)
    return f"({text})" if isinstance(node, needs_parens) else text  # type: ignore[arg-type]


def _comparison(node: Comparison) -> str:
    subject = scalar_text(node.subject)
    if node.operator in SUGAR:
        return f"{subject} {SUGAR[node.operator]} {scalar_text(node.operands[0])}"
    if OPERAND_SHAPE[node.operator] == "duration":
        assert node.duration is not None
        arguments = duration_text(node.duration)
    else:
        arguments = ", ".join(scalar_text(operand) for operand in node.operands)
    return f"{subject}.{node.operator.value}({arguments})"


def scalar_text(node: Scalar) -> str:
    """Print a scalar expression."""
    if isinstance(node, Literal):
        return literal_text(node.value)
    if isinstance(node, TraitRef):
        return f"trait({string_text(node.key)})"
    if isinstance(node, PropertyRef):
        label = "parent: " if node.parent else ""
        return f"property({label}{string_text(node.path)})"
    if isinstance(node, ContextRef):
        return f"context({string_text(node.path)})"
    return _aggregate(node)


def _aggregate(node: Aggregate) -> str:
    stream = stream_text(node.stream)
    function = node.function
    if function is AggregateFunction.COUNT:
        return f"{stream}.count()"
    assert node.field is not None
    argument = scalar_text(node.field)
    if node.value_type is not None and node.value_type != VALUE_TYPES[function][0]:
        argument += f" as {node.value_type}"
    if function is AggregateFunction.MODE:
        argument += f", {node.min_frequency}"
    if function is AggregateFunction.UNIQUE_COUNT:
        return f"{stream}.unique({argument}).count()"
    return f"{stream}.{function.value}({argument})"


def stream_text(node: Stream) -> str:
    """Print ``event('Name')`` and its filters."""
    return f"event({string_text(node.event)})" + "".join(_filter(f) for f in node.filters)


def _filter(node: Filter) -> str:
    if isinstance(node, Where):
        return f".where({condition_text(node.condition)})"
    if isinstance(node, Sources):
        return f".sources(exclude: {', '.join(string_text(s) for s in node.exclude)})"
    if isinstance(node, Session):
        return f".expires_after({duration_text(node.duration)})"
    label = "parent: " if node.parent else ""
    if isinstance(node, Within):
        return f".within({label}{duration_text(node.duration)})"
    assert isinstance(node, Between)
    return f".between({label}{duration_text(node.start)}, {duration_text(node.end)})"


def duration_text(node: Duration) -> str:
    """Print ``7 days`` / ``1 day``."""
    unit = node.unit if node.amount == 1 else node.unit + "s"
    return f"{node.amount} {unit}"


def literal_text(value: LiteralValue) -> str:
    """Print a literal value bare: ``'text'``, ``42``, ``4.5``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return string_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} has no literal form")
    return repr(value)


def string_text(value: str) -> str:
    """Quote a string with single quotes, escaping what the lexer would not read back."""
    out = []
    for ch in value:
        if ch in _ESCAPED:
            out.append(_ESCAPED[ch])
        elif (ch.isspace() and ch != " ") or not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else ch)
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"
