"""When a result changes with no new data, and why: the window and date edges of
:func:`next_change_time`, each with the event or date behind it.

:func:`next_change_time` says when a result *could* next change (it may be early: an event that
fails a stream's ``where`` still makes an edge). :func:`next_change` also walks those edges in
order, evaluating at each, to find the first at which the value really differs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from audiences_server.core.ql.interpreter import DefinitionLike, Event, Profile, all_events, evaluate, root_of
from audiences_server.core.ql.nodes import (
    Aggregate,
    Between,
    Comparison,
    Condition,
    Operator,
    Scalar,
    Session,
    Within,
)
from audiences_server.core.ql.printer import duration_text, literal_text, scalar_text
from audiences_server.core.ql.timing import next_change_time, possible_values, relative_date_comparisons, walk
from audiences_server.core.ql.values import as_date_ms
from audiences_server.core.tracking import MAX_TIME_MS

# At most this many reasons are kept for one instant (a burst of events stamped alike).
MAX_REASONS = 5


@dataclass(frozen=True)
class Edge:
    """An instant at which something the result depends on moves, and what: ``seq`` names the
    event behind it (``None`` for a date value)."""

    at_ms: int
    reason: str
    seq: int | None = None


@dataclass(frozen=True)
class NextChange:
    """When the value next changes with no new data.

    Attributes:
        check_ms: :func:`next_change_time`: when the value could first change (the evaluator
            re-evaluates the profile then); ``None`` when it never can.
        check_reasons: The edges at ``check_ms``.
        change_ms: The first edge at which the value differs from now's; ``None`` when none of
            the edges searched changes it.
        value: The value from ``change_ms`` on.
        reasons: The edges at ``change_ms``.
        exhausted: Whether every future edge was searched (so ``change_ms`` of ``None`` means
            the value never changes without new data).
    """

    check_ms: int | None
    check_reasons: tuple[Edge, ...]
    change_ms: int | None
    value: Any
    reasons: tuple[Edge, ...]
    exhausted: bool


# How many (event, evaluation) pairs `next_change` may spend searching, about 3 s of trying: each
# edge tried evaluates the whole profile again (some 6 µs an event), so a profile of 500,000
# events took minutes for its 200 edges. A profile with more events than this over 200 tries
# fewer edges (at least one), and says the search was cut short (`exhausted` false) when edges
# were left untried.
SEARCH_BUDGET = 500_000


def next_change(definition: DefinitionLike, profile: Profile, now_ms: int, steps: int = 200) -> NextChange:
    """When the value next changes, trying at most ``steps`` edges after ``now_ms`` (fewer for a
    profile of very many events, `SEARCH_BUDGET`).

    Between two consecutive edges nothing the value depends on moves, so trying each edge in
    order finds the first change exactly.
    """
    steps = min(steps, max(1, SEARCH_BUDGET // max(1, len(all_events(profile)))))
    by_time: dict[int, list[Edge]] = defaultdict(list)
    cut = False
    for edge in edges(definition, profile, now_ms):
        # Time ends with the year 9999 (no clock moves past it, no Timestamp shows a later time).
        if edge.at_ms <= MAX_TIME_MS:
            by_time[edge.at_ms].append(edge)
            if len(by_time) > 2 * steps:  # only the earliest `steps` instants are ever read
                for at in sorted(by_time)[steps:]:
                    del by_time[at]
                cut = True
    check = next_change_time(definition, profile, now_ms)
    if check is not None and check > MAX_TIME_MS:
        check = None
    instants = sorted(by_time)
    current = _canonical(evaluate(definition, profile, now_ms))
    for at in instants[:steps]:
        value = evaluate(definition, profile, at)
        if _canonical(value) != current:
            return NextChange(check, _first(by_time.get(check or -1, [])), at, value, _first(by_time[at]), True)
    return NextChange(check, _first(by_time.get(check or -1, [])), None, None, (),
                      not cut and len(instants) <= steps)


def _first(found: list[Edge]) -> tuple[Edge, ...]:
    return tuple(sorted(found, key=lambda e: (e.seq is None, e.seq or 0, e.reason))[:MAX_REASONS])


def _canonical(value: Any) -> str:
    # As the evaluator stores values: 1 and 1.0 differ, True and 1 differ.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def edges(definition: DefinitionLike, profile: Profile, now_ms: int) -> Iterator[Edge]:
    """Every instant after ``now_ms`` at which a window or date edge passes, with its reason:
    the instants :func:`next_change_time` takes its minimum over."""
    root = root_of(definition)
    events = all_events(profile)
    for stream, where in _streams(root):
        sessions = [f for f in stream.filters if isinstance(f, Session)]
        for event in events:
            if event.name == stream.event:
                yield from (e for e in _event_edges(event, where) if e.at_ms > now_ms)
                yield from (e for e in _session_edges(event, sessions) if e.at_ms > now_ms)
    for comparison in relative_date_comparisons(root):
        for value in possible_values(comparison.subject, profile, events):
            yield from (e for e in _date_edges(comparison, value) if e.at_ms > now_ms)


def _event_edges(event: Event, windows: list[Within | Between]) -> Iterator[Edge]:
    ts, name = event.timestamp_ms, f"the `{event.name}` of {iso(event.timestamp_ms)}"
    yield Edge(ts, f"{name} comes due (it was stamped ahead of its arrival)", event.seq)
    for window in windows:
        low, high = (0, window.duration.ms) if isinstance(window, Within) else (window.start.ms, window.end.ms)
        text = window_text(window)
        yield Edge(ts + low, f"{name} enters `{text}`", event.seq)
        yield Edge(ts + high + 1, f"{name} falls out of `{text}`", event.seq)


def _session_edges(event: Event, sessions: list[Session]) -> Iterator[Edge]:
    """When a session ends if this event is its last: the millisecond after its timeout."""
    for session in sessions:
        yield Edge(event.timestamp_ms + session.duration.ms + 1,
                   f"the session of the `{event.name}` of {iso(event.timestamp_ms)} expires"
                   f" (`expires_after({duration_text(session.duration)})`)", event.seq)


def _date_edges(comparison: Comparison, value: object) -> Iterator[Edge]:
    date = as_date_ms(value)
    if date is None or comparison.duration is None:
        return
    length, operator = comparison.duration.ms, comparison.operator
    what = f"`{scalar_text(comparison.subject)}` = {_value_text(value)}"
    test = f"`{operator.value}({duration_text(comparison.duration)})`"
    if operator is Operator.WITHIN_LAST:
        yield Edge(date, f"{what} comes into {test}")
        yield Edge(date + length + 1, f"{what} falls out of {test}")
    elif operator is Operator.WITHIN_NEXT:
        yield Edge(date - length, f"{what} comes into {test}")
        yield Edge(date + 1, f"{what} falls out of {test}")
    elif operator is Operator.BEFORE_LAST:
        yield Edge(date + length, f"{what} comes into {test}")
    else:
        yield Edge(date - length + 1, f"{what} falls out of {test}")


def _value_text(value: object) -> str:
    return literal_text(value) if isinstance(value, str | int | float | bool) else json.dumps(value)


def window_text(window: Within | Between) -> str:
    """A now-relative window as written: ``within(30 days)``, ``between(1 day, 2 days)``."""
    if isinstance(window, Within):
        return f"within({duration_text(window.duration)})"
    return f"between({duration_text(window.start)}, {duration_text(window.end)})"


def iso(ms: int) -> str:
    """An instant as ISO-8601 UTC: ``2026-07-01T10:00:00Z``, with milliseconds when it has some."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    # Not strftime's %Y, which writes the year 999 as `999`.
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


def _streams(node: Condition | Scalar) -> Iterator[tuple[Any, list[Within | Between]]]:
    """Every stream anywhere in the tree, with its now-relative windows."""
    for child in walk(node):
        if isinstance(child, Aggregate):
            windows = [f for f in child.stream.filters if isinstance(f, Within | Between) and not f.parent]
            yield child.stream, windows


def summary(kind: str, found: NextChange, excluded: bool = False) -> str:
    """One sentence: ``leaves at 2026-07-01T10:00:00Z, when the `Order Completed` of … falls out
    of `within(30 days)``; for a computed trait, ``becomes 3 at …``."""
    if excluded:
        return "stays out: the audience admits only profiles with an identifier other than anonymous_id"
    if found.change_ms is None:
        if found.exhausted:
            return "does not change without new data"
        return "does not change at the next window or date edges searched"
    if kind == "audience":
        verb = "enters" if found.value else "leaves"
    else:
        verb = "becomes absent" if found.value is None else f"becomes {_canonical(found.value)}"
    why = " and ".join(edge.reason for edge in found.reasons)
    return f"{verb} at {iso(found.change_ms)}" + (f", when {why}" if why else "")
