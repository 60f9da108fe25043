"""Why a definition has its value for one profile: each part's value and the data that decided it.

A pure function over the same inputs as :func:`evaluate`: the interpreter's own functions give
every value, so the explanation's root is the evaluation's result by construction. Parts inside a
``where(…)`` have a value per event, not per profile: they show as the filters of their stream,
with how many events each filter kept.

    explained = explain(checked, profile, now_ms, limit=10)
    explained.value            # == evaluate(checked, profile, now_ms)
    explained.root.children    # the tree, each node with its value
    explained.next             # when the value could change, and when it does, and why
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audiences_server.core.ql.comparators import compare
from audiences_server.core.ql.interpreter import (
    DefinitionLike,
    Event,
    Profile,
    Scope,
    all_events,
    current_session,
    evaluate,
    holds,
    passes,
    root_of,
    value_of,
)
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Filter,
    Literal,
    Not,
    Or,
    PropertyRef,
    Quantified,
    Scalar,
    Session,
    Sources,
    TraitRef,
    Where,
)
from audiences_server.core.ql.printer import condition_text, duration_text, scalar_text, string_text, to_text
from audiences_server.core.ql.reasons import NextChange, next_change

DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class EventRef:
    """One event a stream kept: its arrival number (``seq``), name and time, for a reducer with a
    field the value it read there (``None`` when absent), and in ``read`` the value of each
    ``property()``/``context()`` the stream's ``where`` reads, by its text."""

    seq: int
    name: str
    timestamp_ms: int
    value: Any = None
    read: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class FilterStep:
    """One filter of a stream, as written, and how many events were left after it (filters are
    applied in written order; the result does not depend on it)."""

    text: str
    remaining: int


@dataclass(frozen=True)
class StreamEvidence:
    """The events behind a reducer.

    Attributes:
        event: The event name the stream reads.
        seen: How many events of that name are at or before ``now``.
        steps: Each filter with the events left after it.
        count: How many events the stream holds (after every filter).
        events: At most ``limit`` of them: the oldest for ``first``, otherwise the newest, in
            that order.
    """

    event: str
    seen: int
    steps: tuple[FilterStep, ...]
    count: int
    events: tuple[EventRef, ...]


@dataclass(frozen=True)
class UserResult:
    """How one linked user of an account fared in an ``ANY``/``ALL``: ``user`` is the caller's id
    for it (see :func:`explain`), ``node`` the operand explained on that user's profile."""

    user: Any
    value: bool
    node: Node


@dataclass(frozen=True)
class Node:
    """One part of the definition with its value for the profile.

    Attributes:
        kind: ``and``, ``or``, ``not``, ``any``, ``all``, ``none`` (``ALL NOT``), ``comparison``,
            ``literal``, ``trait``, ``aggregate`` or ``field`` (a property or context path).
        text: The part in canonical form.
        value: Its value (a boolean for conditions; ``None`` is absent).
        children: The parts it is made of (a comparison's subject, then its operands).
        trait: For a ``trait`` node, the key it reads.
        stream: For an ``aggregate`` node, the events behind it.
        users: For ``any``/``all``/``none``, up to ``limit`` users who satisfy the operand, then
            up to ``limit`` who do not.
        users_holding: How many linked users satisfy the operand.
        users_total: How many users are linked.
    """

    kind: str
    text: str
    value: Any
    children: tuple[Node, ...] = ()
    trait: str | None = None
    stream: StreamEvidence | None = None
    users: tuple[UserResult, ...] = ()
    users_holding: int = 0
    users_total: int = 0


@dataclass(frozen=True)
class Explanation:
    """A definition explained for one profile at ``now_ms``: ``value`` equals :func:`evaluate`'s
    result, ``root`` is the tree, ``next`` when and why it changes with no new data."""

    now_ms: int
    value: Any
    root: Node
    next: NextChange


def explain(
    definition: DefinitionLike,
    profile: Profile,
    now_ms: int,
    *,
    limit: int = DEFAULT_LIMIT,
    user_ids: Sequence[Any] = (),
    search_steps: int = 200,
) -> Explanation:
    """Explain a checked definition's value for one profile at ``now_ms``.

    Args:
        definition: A definition that passed :func:`check`.
        profile: The profile, as for :func:`evaluate`.
        now_ms: The evaluation time.
        limit: The most events listed per stream, and users per outcome of ``ANY``/``ALL``.
        user_ids: For an account, an id for each of ``profile.users`` (same order), reported in
            :class:`UserResult`; the user's position when not given.
        search_steps: How many window and date edges after ``now_ms`` to try when looking for
            the first one at which the value really changes.

    Returns:
        The explanation; its ``value`` is ``evaluate(definition, profile, now_ms)``.
    """
    root = root_of(definition)
    scope = Scope(profile, now_ms)
    ids = list(user_ids) or list(range(len(profile.users)))
    node = _condition(root, scope, limit, ids) if _is_condition(root) else _scalar(root, scope, limit)  # type: ignore[arg-type]
    value = evaluate(definition, profile, now_ms)
    return Explanation(now_ms, value, node, next_change(definition, profile, now_ms, search_steps))


def _is_condition(node: object) -> bool:
    return isinstance(node, Comparison | And | Or | Not | Quantified)


def _condition(node: Condition, scope: Scope, limit: int, ids: list[Any]) -> Node:
    if isinstance(node, And | Or):
        children = tuple(_condition(item, scope, limit, ids) for item in node.items)
        values = [child.value for child in children]
        value = all(values) if isinstance(node, And) else any(values)
        return Node("and" if isinstance(node, And) else "or", condition_text(node), value, children)
    if isinstance(node, Not):
        child = _condition(node.operand, scope, limit, ids)
        return Node("not", condition_text(node), not child.value, (child,))
    if isinstance(node, Quantified):
        return _quantified(node, scope, limit, ids)
    subject = _scalar(node.subject, scope, limit)
    operands = tuple(_scalar(operand, scope, limit) for operand in node.operands)
    value = compare(node.operator, subject.value, [o.value for o in operands], node.duration, scope.now_ms)
    return Node("comparison", condition_text(node), value, (subject, *operands))


def _quantified(node: Quantified, scope: Scope, limit: int, ids: list[Any]) -> Node:
    """ANY/ALL/ALL NOT: each user's result, and up to `limit` users of each outcome explained."""
    results = [(ids[i], holds(node.operand, Scope(user, scope.now_ms, read=scope.read)), user)
               for i, user in enumerate(scope.profile.users)]
    holding = sum(1 for _, held, _ in results if held)
    if node.quantifier == "any":
        value = holding > 0
    elif node.quantifier == "all":
        value = bool(results) and holding == len(results)
    else:
        value = holding == 0
    listed = [r for r in results if r[1]][:limit] + [r for r in results if not r[1]][:limit]
    users = tuple(UserResult(uid, held, _condition(node.operand, Scope(user, scope.now_ms, read=scope.read), limit, []))
                  for uid, held, user in listed)
    return Node(node.quantifier, condition_text(node), value, users=users, users_holding=holding,
                users_total=len(results))


def _scalar(node: Scalar, scope: Scope, limit: int) -> Node:
    value = value_of(node, scope)
    text = scalar_text(node)
    if isinstance(node, Literal):
        return Node("literal", text, value)
    if isinstance(node, TraitRef):
        return Node("trait", text, value, trait=node.key)
    if isinstance(node, Aggregate):
        return Node("aggregate", text, value, stream=_stream(node, scope, limit))
    return Node("field", text, value)


def _stream(node: Aggregate, scope: Scope, limit: int) -> StreamEvidence:
    """The events a reducer reads, filter by filter, and up to `limit` of those it kept."""
    stream = node.stream
    kept = [e for e in all_events(scope.profile) if e.name == stream.event and e.timestamp_ms <= scope.now_ms]
    kept.sort(key=lambda e: (e.timestamp_ms, e.seq))
    seen = len(kept)
    steps = []
    for found in stream.filters:
        if isinstance(found, Session):
            kept = current_session(kept, found, scope.now_ms)
        else:
            kept = [e for e in kept if passes(found, e, scope)]
        steps.append(FilterStep(filter_text(found), len(kept)))
    chosen = kept[:limit] if node.function is AggregateFunction.FIRST else kept[::-1][:limit]
    fields = _fields_read(node)
    return StreamEvidence(stream.event, seen, tuple(steps), len(kept),
                          tuple(_event_ref(node, e, scope, fields) for e in chosen))


def _event_ref(node: Aggregate, event: Event, scope: Scope, fields: list[PropertyRef | ContextRef]) -> EventRef:
    inside = scope.testing(event)
    value = None if node.field is None else value_of(node.field, inside)
    read = tuple((scalar_text(f), value_of(f, inside)) for f in fields)
    return EventRef(event.seq, event.name, event.timestamp_ms, value, read)


def _fields_read(node: Aggregate) -> list[PropertyRef | ContextRef]:
    """The event's own fields the stream's `where` conditions read (not a nested stream's), once each."""
    found: dict[str, PropertyRef | ContextRef] = {}
    pending: list[Condition | Scalar] = [f.condition for f in node.stream.filters if isinstance(f, Where)]
    while pending:
        part = pending.pop()
        if isinstance(part, And | Or):
            pending.extend(part.items)
        elif isinstance(part, Not | Quantified):
            pending.append(part.operand)
        elif isinstance(part, Comparison):
            pending.extend((part.subject, *part.operands))
        elif isinstance(part, ContextRef) or (isinstance(part, PropertyRef) and not part.parent):
            found.setdefault(scalar_text(part), part)
    return [found[text] for text in sorted(found)]


def filter_text(node: Filter) -> str:
    """A filter as written in canonical form, with its leading dot: ``.within(30 days)``."""
    if isinstance(node, Where):
        return f".where({condition_text(node.condition)})"
    if isinstance(node, Sources):
        return f".sources(exclude: {', '.join(string_text(s) for s in node.exclude)})"
    if isinstance(node, Session):
        return f".expires_after({duration_text(node.duration)})"
    label = "parent: " if node.parent else ""
    if isinstance(node, Between):
        return f".between({label}{duration_text(node.start)}, {duration_text(node.end)})"
    return f".within({label}{duration_text(node.duration)})"


def definition_text(definition: DefinitionLike) -> str:
    """The definition in canonical form (the text of the explanation's root)."""
    return to_text(root_of(definition))
