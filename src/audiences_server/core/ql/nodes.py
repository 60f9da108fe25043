"""The syntax tree of a definition: small frozen dataclasses, compared by value.

A definition is a tree of three sorts of node:

* **scalar expressions** (:data:`Scalar`) yield one value per profile (or per event, inside a
  ``where``): :class:`Literal`, :class:`TraitRef`, :class:`PropertyRef`, :class:`ContextRef`
  and :class:`Aggregate` (a reducer over a :class:`Stream` of events);
* **streams** (:class:`Stream`) are an event name plus filters (:data:`Filter`): the events a
  reducer reads;
* **conditions** (:data:`Condition`) yield a boolean: :class:`Comparison`, :class:`And`,
  :class:`Or`, :class:`Not` and, for account audiences, :class:`Quantified`.

Every node carries a ``span`` (where it came from in the text, for error messages) that is
ignored by ``==`` and ``hash``, so a tree parsed from text equals the same tree built by hand. The sugar of the
surface syntax is gone here: ``x >= 1`` and ``x.at_least(literal(1))`` are the same tree, and
``'p'`` as a reducer argument is ``property('p')``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal as TypingLiteral

from audiences_server.core.ql.errors import NO_SPAN, Span

TimeUnit = TypingLiteral["second", "minute", "hour", "day", "week"]
UNIT_MS: dict[TimeUnit, int] = {
    "second": 1_000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 604_800_000,
}
LiteralValue = str | int | float | bool


@dataclass(frozen=True)
class Duration:
    """``amount unit``, e.g. ``7 days``. A day is exactly 24 hours (UTC, no calendar)."""

    amount: int
    unit: TimeUnit
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)

    @property
    def ms(self) -> int:
        """The length in milliseconds."""
        return self.amount * UNIT_MS[self.unit]


# ---------------------------------------------------------------- scalar expressions


@dataclass(frozen=True, eq=False)
class Literal:
    """A constant: ``'text'``, ``42``, ``4.5``, ``true``. Written bare or as ``literal(v)``.

    Equality is by type as well as value, so ``Literal(True) != Literal(1)`` and
    ``Literal(1) != Literal(1.0)`` even though Python's ``True == 1 == 1.0``.
    """

    value: LiteralValue
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)

    def _key(self) -> tuple[str, LiteralValue]:
        return type(self.value).__name__, self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class TraitRef:
    """``trait('key')``: a trait of the profile being evaluated (custom, computed or an
    audience's membership). A dotted key reads into nested objects."""

    key: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class PropertyRef:
    """``property('path')`` of the current event, or ``property(parent: 'path')`` of the
    event whose ``where`` encloses the current event's stream (funnels)."""

    path: str
    parent: bool = False
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class ContextRef:
    """``context('page.url')``: a field of the current event's ``context`` object."""

    path: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


class AggregateFunction(StrEnum):
    """The reducers. ``UNIQUE_COUNT`` is ``unique(p).count()``."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    MODE = "mode"
    FIRST = "first"
    LAST = "last"
    UNIQUE = "unique"
    UNIQUE_COUNT = "unique_count"


ValueType = TypingLiteral["number", "string", "array"]
Field = PropertyRef | ContextRef


@dataclass(frozen=True)
class Aggregate:
    """A reducer over a stream: ``event('A').within(7 days).sum(property('total'))``.

    Attributes:
        stream: The events reduced.
        function: Which reducer.
        field: The event field read; ``None`` exactly for ``COUNT``. Never a parent property.
        value_type: The ``as`` type. Always set for ``MIN``/``MAX`` (``number`` or
            ``string``) and ``MODE`` (``string``, ``number`` or ``array``); ``None`` for the
            others. The default (``number`` for min/max, ``string`` for mode) prints bare.
        min_frequency: For ``MODE`` the least number of occurrences a value needs; 1 otherwise.

    ``UNIQUE`` yields a sorted list (a list scalar): it may end a computed trait or be
    followed by ``.count()`` (which makes ``UNIQUE_COUNT``), and nothing else.
    """

    stream: Stream
    function: AggregateFunction
    field: Field | None = None
    value_type: ValueType | None = None
    min_frequency: int = 1
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


Scalar = Literal | TraitRef | PropertyRef | ContextRef | Aggregate


# ---------------------------------------------------------------- streams and filters


@dataclass(frozen=True)
class Where:
    """``.where(condition)``: keeps the events for which ``condition`` holds. Inside it,
    ``property()`` and ``context()`` read the event being tested."""

    condition: Condition
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Sources:
    """``.sources(exclude: 'id', …)``: drops events whose ``source_id`` is listed."""

    exclude: tuple[str, ...]
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Within:
    """``.within(d)``: ``now - d <= ts <= now``. With ``parent=True`` (``within(parent: d)``)
    the window is ``parent.ts <= ts <= parent.ts + d`` instead."""

    duration: Duration
    parent: bool = False
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Between:
    """``.between(a, b)``: ``now - b <= ts <= now - a``. With ``parent=True``
    (``between(parent: a, b)``) the window is ``parent.ts + a <= ts <= parent.ts + b``."""

    start: Duration
    end: Duration
    parent: bool = False
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Session:
    """``.expires_after(d)``: the stream's current session. Of the events the filters before it
    kept (oldest first), the last one and those before it with no gap longer than ``d`` between
    neighbours; none once ``now`` is more than ``d`` after the last one (the session expired).
    Unlike the other filters it reads the events together, so where it is written matters:
    filters after it keep what they keep of the session."""

    duration: Duration
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


Filter = Where | Sources | Within | Between | Session


@dataclass(frozen=True)
class Stream:
    """``event('Name')`` and its filters, in written order (they commute, all must hold, but for
    a session, `Session`, which keeps what the filters before it kept of the current session).

    Only events whose timestamp is at or before ``now`` are ever in a stream."""

    event: str
    filters: tuple[Filter, ...] = ()
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- conditions


class Operator(StrEnum):
    """The comparators. Operand shapes are given by :data:`OPERAND_SHAPE`."""

    EQUALS = "equals"
    DIFFERS = "differs"
    ABSENT = "absent"
    EXISTS = "exists"
    GREATER_THAN = "greater_than"
    AT_LEAST = "at_least"
    LESS_THAN = "less_than"
    AT_MOST = "at_most"
    CONTAINS = "contains"
    OMITS = "omits"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    ONE_OF = "one_of"
    NONE_OF = "none_of"
    BEFORE_DATE = "before_date"
    AFTER_DATE = "after_date"
    WITHIN_LAST = "within_last"
    WITHIN_NEXT = "within_next"
    BEFORE_LAST = "before_last"
    AFTER_NEXT = "after_next"


OperandShape = TypingLiteral["none", "one", "many", "duration"]
_O = Operator
OPERAND_SHAPE: dict[Operator, OperandShape] = {
    **dict.fromkeys((_O.ABSENT, _O.EXISTS), "none"),
    **dict.fromkeys(
        (_O.EQUALS, _O.DIFFERS, _O.GREATER_THAN, _O.AT_LEAST, _O.LESS_THAN, _O.AT_MOST,
         _O.STARTS_WITH, _O.ENDS_WITH, _O.BEFORE_DATE, _O.AFTER_DATE),
        "one",
    ),
    **dict.fromkeys((_O.CONTAINS, _O.OMITS, _O.ONE_OF, _O.NONE_OF), "many"),
    **dict.fromkeys((_O.WITHIN_LAST, _O.WITHIN_NEXT, _O.BEFORE_LAST, _O.AFTER_NEXT), "duration"),
}
"""``none``: no operands; ``one``: exactly one scalar operand; ``many``: one or more scalar
operands (the comparison holds for any of them, or for ``omits``/``none_of`` all of them);
``duration``: no operands, a :class:`Duration` instead."""

SUGAR: dict[Operator, str] = {
    _O.EQUALS: "=", _O.DIFFERS: "!=", _O.GREATER_THAN: ">",
    _O.AT_LEAST: ">=", _O.LESS_THAN: "<", _O.AT_MOST: "<=",
}


@dataclass(frozen=True)
class Comparison:
    """``subject.op(operands…)`` or ``subject <sugar> operand``: a boolean leaf.

    Attributes:
        subject: What is compared; never a :class:`Literal`, never a ``UNIQUE`` aggregate.
        operator: The comparator.
        operands: Scalars to compare with, per :data:`OPERAND_SHAPE`.
        duration: For the relative date comparators (``within_last`` …), else ``None``.
    """

    subject: Scalar
    operator: Operator
    operands: tuple[Scalar, ...] = ()
    duration: Duration | None = None
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class And:
    """``a AND b AND …`` (two or more items). Binds tighter than ``OR``."""

    items: tuple[Condition, ...]
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Or:
    """``a OR b OR …`` (two or more items)."""

    items: tuple[Condition, ...]
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    """``NOT (a)``."""

    operand: Condition
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


Quantifier = TypingLiteral["any", "all", "none"]


@dataclass(frozen=True)
class Quantified:
    """Account audiences only: ``ANY (a)`` (some linked user satisfies ``a``), ``ALL (a)``
    (at least one linked user, and every one satisfies ``a``) and ``ALL NOT (a)``, written
    ``quantifier="none"`` (no linked user satisfies ``a``; true for an account without users).
    ``operand`` is evaluated on each linked user's own profile."""

    quantifier: Quantifier
    operand: Condition
    span: Span = dataclasses.field(default=NO_SPAN, compare=False, repr=False)


Condition = Comparison | And | Or | Not | Quantified


@dataclass(frozen=True)
class Definition:
    """A parsed definition: a condition (audiences) or a scalar (computed traits).

    ``source`` is the text it was parsed from (empty when built by hand); it is only used to
    point at the text in errors and is ignored by ``==``.
    """

    root: Condition | Scalar
    source: str = dataclasses.field(default="", compare=False, repr=False)


def is_condition(node: object) -> bool:
    """Whether ``node`` is a boolean condition node."""
    return isinstance(node, Comparison | And | Or | Not | Quantified)
