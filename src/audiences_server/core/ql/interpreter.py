"""The reference interpreter: evaluates a definition over an in-memory profile.

Written to be read, not to be fast: it is the oracle the SQL evaluator is tested against, and it
evaluates the definitions that are not compiled. A stream is computed from the profile's full
event list, once per evaluation and per event its ``where`` encloses when it reads that event
(`stream_events`): recomputing it each time it is needed made nested ``where``s cost the number
of events to the power of their depth (five levels over an account's ~25 events took 35 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from audiences_server.core.ql.checker import CheckedDefinition
from audiences_server.core.ql.comparators import compare
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Definition,
    Filter,
    Literal,
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
    is_condition,
)
from audiences_server.core.ql.reducers import reduce_values
from audiences_server.core.ql.values import resolve


@dataclass(frozen=True)
class Event:
    """One event of a profile.

    Attributes:
        name: The event name (``Page Viewed`` for page calls, and so on).
        timestamp_ms: When it happened, milliseconds since the Unix epoch, UTC.
        properties: Its properties (JSON-like).
        context: Its context object (JSON-like).
        source_id: The id of the source that sent it, for ``sources(exclude: …)``.
        seq: Arrival order, which breaks timestamp ties for ``first``/``last``.
    """

    name: str
    timestamp_ms: int
    properties: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    source_id: str = ""
    seq: int = 0


@dataclass(frozen=True)
class Profile:
    """A user or account as the interpreter sees it.

    Attributes:
        events: The profile's own events (empty for an account).
        traits: Custom traits and the current values of other definitions (audience key to
            bool, computed trait key to value).
        users: For an account, its linked user profiles. An account's streams read the
            union of its own and its users' events; ``ANY``/``ALL`` evaluate on each user.
    """

    events: Sequence[Event] = ()
    traits: Mapping[str, Any] = field(default_factory=dict)
    users: Sequence[Profile] = ()


DefinitionLike = Definition | CheckedDefinition


def evaluate(definition: DefinitionLike, profile: Profile, now_ms: int) -> Any:
    """Evaluate a checked definition for one profile at time ``now_ms``.

    Args:
        definition: A definition that passed :func:`check` (or its :class:`CheckedDefinition`).
        profile: The profile, with the values of definitions it reads already in its traits.
        now_ms: The evaluation time in milliseconds since the Unix epoch.

    Returns:
        For an audience, ``True`` or ``False``; for a computed trait its value, ``None``
        when absent.
    """
    root = root_of(definition)
    scope = Scope(profile, now_ms)
    if is_condition(root):
        return holds(root, scope)  # type: ignore[arg-type]
    return value_of(root, scope)  # type: ignore[arg-type]


def root_of(definition: DefinitionLike) -> Condition | Scalar:
    """The root node of a definition or checked definition."""
    if isinstance(definition, CheckedDefinition):
        return definition.definition.root
    return definition.root


@dataclass(frozen=True)
class Scope:
    """What an expression sees: whose traits and events, the clock, and in a ``where`` the
    event being tested (``event``) and the one whose ``where`` encloses it (``parent``)."""

    profile: Profile
    now_ms: int
    event: Event | None = None
    parent: Event | None = None
    # The streams read so far in this evaluation, shared by every scope made from this one
    # (`stream_events`).
    read: dict[tuple[int, int, int, int | None], tuple[Any, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    def testing(self, event: Event) -> Scope:
        """The scope inside a stream's ``where`` (or reducer) while ``event`` is tested."""
        return replace(self, event=event, parent=self.event)


def all_events(profile: Profile) -> list[Event]:
    """The events a profile's streams read: its own and, for an account, its users'."""
    return [*profile.events, *(event for user in profile.users for event in user.events)]


# ------------------------------------------------------------------ conditions


def holds(node: Condition, scope: Scope) -> bool:
    """Whether a condition holds in ``scope``."""
    if isinstance(node, And):
        return all(holds(item, scope) for item in node.items)
    if isinstance(node, Or):
        return any(holds(item, scope) for item in node.items)
    if isinstance(node, Not):
        return not holds(node.operand, scope)
    if isinstance(node, Quantified):
        return _quantified(node, scope)
    return _comparison(node, scope)


def _quantified(node: Quantified, scope: Scope) -> bool:
    results = [holds(node.operand, Scope(user, scope.now_ms, read=scope.read)) for user in scope.profile.users]
    if node.quantifier == "any":
        return any(results)
    if node.quantifier == "all":
        return bool(results) and all(results)
    return not any(results)


def _comparison(node: Comparison, scope: Scope) -> bool:
    subject = value_of(node.subject, scope)
    operands = [value_of(operand, scope) for operand in node.operands]
    return compare(node.operator, subject, operands, node.duration, scope.now_ms)


# ------------------------------------------------------------------ values


def value_of(node: Scalar, scope: Scope) -> Any:
    """The value of a scalar expression in ``scope``; ``None`` when absent."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, TraitRef):
        return resolve(scope.profile.traits, node.key)
    if isinstance(node, PropertyRef):
        event = scope.parent if node.parent else scope.event
        return None if event is None else resolve(event.properties, node.path)
    if isinstance(node, ContextRef):
        return None if scope.event is None else resolve(scope.event.context, node.path)
    return _aggregate(node, scope)


def _aggregate(node: Aggregate, scope: Scope) -> Any:
    events = stream_events(node.stream, scope)
    if node.function is AggregateFunction.COUNT:
        return len(events)
    assert node.field is not None
    values = [value_of(node.field, scope.testing(event)) for event in events]
    return reduce_values(node.function, values, node.value_type, node.min_frequency)


# ------------------------------------------------------------------ streams


def stream_events(node: Stream, scope: Scope) -> list[Event]:
    """The events of a stream in ``scope``, oldest first (ties in arrival order).

    Only events at or before ``now`` are seen: a future-stamped event counts once its time
    comes.

    A stream's events depend on the profile, the time and, when it reads it (`_reads_parent`),
    the event its ``where`` encloses (``scope.event``), nothing else: each is computed once per
    evaluation (``scope.read``). The entry holds the objects whose ids make its key, so that no
    id is reused while it is kept.
    """
    anchor = scope.event if _reads_parent(node) else None
    key = (id(node), id(scope.profile), scope.now_ms, None if anchor is None else id(anchor))
    kept = scope.read.get(key)
    if kept is not None:
        return cast(list[Event], kept[0])
    if any(isinstance(found, Session) for found in node.filters):
        events = _in_order(node, scope)
    else:
        selected = [
            event
            for event in all_events(scope.profile)
            if event.name == node.event
            and event.timestamp_ms <= scope.now_ms
            and all(passes(found, event, scope) for found in node.filters)
        ]
        events = sorted(selected, key=lambda event: (event.timestamp_ms, event.seq))
    scope.read[key] = (events, node, scope.profile, anchor)
    return events


def _in_order(node: Stream, scope: Scope) -> list[Event]:
    """A stream with a session (`Session`): its filters applied one after the other, in
    written order, since a session reads the events the filters before it kept together."""
    events = sorted((event for event in all_events(scope.profile)
                     if event.name == node.event and event.timestamp_ms <= scope.now_ms),
                    key=lambda event: (event.timestamp_ms, event.seq))
    for found in node.filters:
        if isinstance(found, Session):
            events = current_session(events, found, scope.now_ms)
        else:
            events = [event for event in events if passes(found, event, scope)]
    return events


def current_session(events: list[Event], session: Session, now_ms: int) -> list[Event]:
    """The current session of `events` (oldest first, all at or before `now_ms`): the last event
    and the run before it with no gap longer than the timeout between neighbours, or none once
    the last is more than the timeout before now. Edges are inclusive, as windows' are: a gap of
    exactly the timeout keeps the session going, and it expires the millisecond after
    `last + timeout`."""
    timeout = session.duration.ms
    if not events or now_ms - events[-1].timestamp_ms > timeout:
        return []
    start = len(events) - 1
    while start > 0 and events[start].timestamp_ms - events[start - 1].timestamp_ms <= timeout:
        start -= 1
    return events[start:]


def _reads_parent(node: Stream) -> bool:
    """Whether a stream may read the event its ``where`` encloses: a parent window, or a parent
    property anywhere in its conditions (those of the streams nested in them included, which
    over-approximates: a nested stream's parent is the event its own ``where`` tests)."""
    for found in node.filters:
        if isinstance(found, Within | Between) and found.parent:
            return True
        if isinstance(found, Where) and _mentions_parent(found.condition):
            return True
    return False


def _mentions_parent(node: Condition | Scalar) -> bool:
    if isinstance(node, And | Or):
        return any(_mentions_parent(item) for item in node.items)
    if isinstance(node, Not | Quantified):
        return _mentions_parent(node.operand)
    if isinstance(node, Comparison):
        return any(_mentions_parent(item) for item in (node.subject, *node.operands))
    if isinstance(node, PropertyRef):
        return node.parent
    if isinstance(node, Aggregate):
        return _reads_parent(node.stream) or (node.field is not None and _mentions_parent(node.field))
    return False


def passes(node: Filter, event: Event, scope: Scope) -> bool:
    """Whether ``event`` passes one filter of a stream read in ``scope`` (not a session, which
    keeps events by their neighbours: `current_session`)."""
    assert not isinstance(node, Session)
    if isinstance(node, Where):
        return holds(node.condition, scope.testing(event))
    if isinstance(node, Sources):
        return event.source_id not in node.exclude
    low, high = _window(node)
    if node.parent:
        # The parent is the event being tested by the ``where`` this stream sits in.
        anchor = scope.event
        if anchor is None:
            return False
        return anchor.timestamp_ms + low <= event.timestamp_ms <= anchor.timestamp_ms + high
    return scope.now_ms - high <= event.timestamp_ms <= scope.now_ms - low


def _window(node: Within | Between) -> tuple[int, int]:
    """A window as (nearest, furthest) distance in ms from its anchor, both inclusive."""
    if isinstance(node, Within):
        return 0, node.duration.ms
    assert isinstance(node, Between)
    return node.start.ms, node.end.ms
