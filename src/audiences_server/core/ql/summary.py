"""What a definition reads: events, properties, traits, and how far back in time it looks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from audiences_server.core.ql.nodes import (
    Aggregate,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Definition,
    Literal,
    Not,
    Or,
    PropertyRef,
    Quantified,
    Scalar,
    Stream,
    TraitRef,
    Where,
    Within,
)

_Unbounded = None


@dataclass(frozen=True)
class Summary:
    """The dependencies of a definition.

    Attributes:
        events: Event names read by any ``event()``.
        properties: Per event name, the property paths read from such events (in ``where``,
            as a reducer's field, or through ``property(parent: …)`` from a child).
        context_paths: Per event name, the ``context()`` paths read from such events.
        traits: Trait keys read from the profile itself (custom traits, or the keys of other
            audiences and computed traits of the same collection), exactly as written.
        user_traits: For account definitions, trait keys read from the linked users inside
            ``ANY``/``ALL``; empty for user definitions.
        reads_events: Whether any ``event()`` is read.
        lookback_ms: The furthest back before ``now`` an event can be and still matter;
            ``None`` if unbounded (some stream has no window). ``0`` if no events are read.
        relative_dates: Whether a ``within_last``/``within_next``/``before_last``/
            ``after_next`` comparator makes the result depend on the clock.
        primary_expressions: How many primary expressions (``event``, ``trait``, ``property``,
            ``context``) it has, as the checker counts them against the limit of 50; 0 for a
            definition not checked.
    """

    events: frozenset[str] = frozenset()
    properties: dict[str, frozenset[str]] = field(default_factory=dict)
    context_paths: dict[str, frozenset[str]] = field(default_factory=dict)
    traits: frozenset[str] = frozenset()
    user_traits: frozenset[str] = frozenset()
    reads_events: bool = False
    lookback_ms: int | None = 0
    relative_dates: bool = False
    primary_expressions: int = 0

    @property
    def time_dependent(self) -> bool:
        """Whether the result can change with no new data, as the clock moves."""
        return self.reads_events or self.relative_dates


def summarize(definition: Definition) -> Summary:
    """Collect what ``definition`` reads.

    Args:
        definition: A parsed definition.

    Returns:
        Its :class:`Summary`.
    """
    walker = _Walker()
    walker.node(definition.root, ())
    return walker.summary()


class _Walker:
    def __init__(self) -> None:
        self.events: set[str] = set()
        self.properties: defaultdict[str, set[str]] = defaultdict(set)
        self.context_paths: defaultdict[str, set[str]] = defaultdict(set)
        self.traits: set[str] = set()
        self.user_traits: set[str] = set()
        self.lookbacks: list[int | None] = []
        self.relative_dates = False
        self.in_quantifier = False

    def summary(self) -> Summary:
        lookback: int | None = 0
        if _Unbounded in self.lookbacks:
            lookback = None
        elif self.lookbacks:
            lookback = max(x for x in self.lookbacks if x is not None)
        return Summary(
            events=frozenset(self.events),
            properties={k: frozenset(v) for k, v in self.properties.items()},
            context_paths={k: frozenset(v) for k, v in self.context_paths.items()},
            traits=frozenset(self.traits),
            user_traits=frozenset(self.user_traits),
            reads_events=bool(self.events),
            lookback_ms=lookback,
            relative_dates=self.relative_dates,
        )

    # ``streams`` holds (event name, lookback) of the enclosing streams, innermost last.
    def node(self, node: Condition | Scalar, streams: tuple[tuple[str, int | None], ...]) -> None:
        if isinstance(node, And | Or):
            for item in node.items:
                self.node(item, streams)
        elif isinstance(node, Not):
            self.node(node.operand, streams)
        elif isinstance(node, Quantified):
            self.in_quantifier = True
            self.node(node.operand, streams)
            self.in_quantifier = False
        elif isinstance(node, Comparison):
            self.relative_dates |= node.duration is not None
            for part in (node.subject, *node.operands):
                self.node(part, streams)
        else:
            self.scalar(node, streams)

    def scalar(self, node: Scalar, streams: tuple[tuple[str, int | None], ...]) -> None:
        if isinstance(node, TraitRef):
            (self.user_traits if self.in_quantifier else self.traits).add(node.key)
        elif isinstance(node, PropertyRef):
            depth = 2 if node.parent else 1
            if len(streams) >= depth:
                self.properties[streams[-depth][0]].add(node.path)
        elif isinstance(node, ContextRef):
            if streams:
                self.context_paths[streams[-1][0]].add(node.path)
        elif isinstance(node, Aggregate):
            inner = self.stream(node.stream, streams)
            if node.field is not None:
                self.scalar(node.field, inner)
        else:
            assert isinstance(node, Literal)

    def stream(
        self, node: Stream, streams: tuple[tuple[str, int | None], ...]
    ) -> tuple[tuple[str, int | None], ...]:
        self.events.add(node.event)
        lookback = stream_lookback(node, streams[-1][1] if streams else _Unbounded)
        self.lookbacks.append(lookback)
        inner = (*streams, (node.event, lookback))
        for found in node.filters:
            if isinstance(found, Where):
                self.node(found.condition, inner)
        return inner


def stream_lookback(node: Stream, parent_lookback: int | None) -> int | None:
    """How far before ``now`` an event of this stream can be, given its enclosing stream's.

    A window relative to ``now`` bounds the stream; with several, the tightest wins (they
    all must hold). A window relative to the parent event keeps the child at or after the
    parent, so the parent's bound applies. Without either the stream is unbounded.
    """
    own = [
        (f.duration.ms if isinstance(f, Within) else f.end.ms)
        for f in node.filters
        if isinstance(f, Within | Between) and not f.parent
    ]
    if own:
        return min(own)
    if any(isinstance(f, Within | Between) and f.parent for f in node.filters):
        return parent_lookback
    return _Unbounded
