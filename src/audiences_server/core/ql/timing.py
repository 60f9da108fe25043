"""When a result can next change with no new data: the clock passing a window edge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audiences_server.core.ql.interpreter import DefinitionLike, Profile, all_events, root_of
from audiences_server.core.ql.nodes import (
    Aggregate,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Literal,
    Not,
    Operator,
    Or,
    PropertyRef,
    Quantified,
    Scalar,
    Session,
    Stream,
    TraitRef,
    Where,
    Within,
)
from audiences_server.core.ql.values import as_date_ms, resolve


def next_change_time(definition: DefinitionLike, profile: Profile, now_ms: int) -> int | None:
    """The earliest time after ``now_ms`` at which the result could change by itself.

    Sound, and possibly early: the result is the same at every millisecond strictly between
    ``now_ms`` and the returned time (which is when it may first differ). Traits are taken as
    fixed; a change in another definition's value is the caller's to propagate.

    How: a result depends on the clock only through (1) which events are at or before
    ``now``, (2) windows relative to ``now`` and (3) relative date comparators. Each of these,
    for one event timestamp or one date, is an interval of ``now`` with inclusive edges, so it
    flips only at the interval's first millisecond and the millisecond after its last. We
    collect those instants for every event and every date value the definition could look
    at; between two of them nothing the result depends on moves.

    Args:
        definition: A checked definition.
        profile: The profile, as for :func:`evaluate`.
        now_ms: The current time.

    Returns:
        A time in milliseconds strictly after ``now_ms``, or ``None`` if the result can
        never change without new data.
    """
    root = root_of(definition)
    events = all_events(profile)
    instants: set[int] = set()
    for stream in _streams(root):
        instants.update(_stream_edges(stream, events))
    for comparison in relative_date_comparisons(root):
        for value in possible_values(comparison.subject, profile, events):
            instants.update(_date_edges(comparison, value))
    later = [t for t in instants if t > now_ms]
    return min(later) if later else None


def _stream_edges(stream: Stream, events: list[Any]) -> Iterator[int]:
    windows = [f for f in stream.filters if isinstance(f, Within | Between) and not f.parent]
    timeouts = [f.duration.ms for f in stream.filters if isinstance(f, Session)]
    for event in events:
        if event.name != stream.event:
            continue
        ts = event.timestamp_ms
        yield ts  # a future-stamped event arrives
        for window in windows:
            low, high = ((0, window.duration.ms) if isinstance(window, Within)
                         else (window.start.ms, window.end.ms))
            # In the window while ts + low <= now <= ts + high.
            yield ts + low
            yield ts + high + 1
        for timeout in timeouts:
            # A session whose last event this is expires once now > ts + timeout. Which event
            # is last moves only at the instants above (arrivals, window edges).
            yield ts + timeout + 1


def _date_edges(comparison: Comparison, value: object) -> Iterator[int]:
    date = as_date_ms(value)
    if date is None or comparison.duration is None:
        return
    length = comparison.duration.ms
    operator = comparison.operator
    if operator is Operator.WITHIN_LAST:  # date <= now <= date + length
        yield from (date, date + length + 1)
    elif operator is Operator.WITHIN_NEXT:  # date - length <= now <= date
        yield from (date - length, date + 1)
    elif operator is Operator.BEFORE_LAST:  # now >= date + length
        yield date + length
    else:  # after_next: now <= date - length
        yield date - length + 1


def possible_values(node: Scalar, profile: Profile, events: list[Any]) -> Iterator[Any]:
    """Every value ``node`` could take for this profile, at any time (a superset): a literal, the
    profile's and its users' trait, the field on every event (and each item of an array)."""
    if isinstance(node, Literal):
        yield node.value
    elif isinstance(node, TraitRef):
        for owner in (profile, *profile.users):
            yield from _with_items(resolve(owner.traits, node.key))
    elif isinstance(node, PropertyRef | ContextRef | Aggregate):
        field = node.field if isinstance(node, Aggregate) else node
        # Reducers return one of their values (or a number, which is never a date).
        for event in events:
            if isinstance(field, PropertyRef):
                yield from _with_items(resolve(event.properties, field.path))
            elif isinstance(field, ContextRef):
                yield from _with_items(resolve(event.context, field.path))


def _with_items(value: Any) -> Iterator[Any]:
    # ``mode`` returns single items of an array value.
    yield value
    if isinstance(value, list):
        yield from value


def _streams(node: Condition | Scalar) -> Iterator[Stream]:
    for child in walk(node):
        if isinstance(child, Aggregate):
            yield child.stream


def relative_date_comparisons(node: Condition | Scalar) -> Iterator[Comparison]:
    """Every comparison of a date against a rolling edge (`within_last`, `after_next`, …)."""
    for child in walk(node):
        if isinstance(child, Comparison) and child.duration is not None:
            yield child


def walk(node: Condition | Scalar) -> Iterator[Condition | Scalar]:
    """Every condition and scalar node in the tree, including those inside streams."""
    yield node
    children: tuple[Condition | Scalar, ...] = ()
    if isinstance(node, And | Or):
        children = node.items
    elif isinstance(node, Not | Quantified):
        children = (node.operand,)
    elif isinstance(node, Comparison):
        children = (node.subject, *node.operands)
    elif isinstance(node, Aggregate):
        wheres = tuple(f.condition for f in node.stream.filters if isinstance(f, Where))
        children = (*wheres, *((node.field,) if node.field else ()))
    for child in children:
        yield from walk(child)
