"""An edit previewed as a diff: which profiles a new definition text would make enter, exit or stay
in a saved audience (gain, lose or keep a value, for a computed trait), changing nothing.

The new text is evaluated now, on a read snapshot, as the saved definition would be after an
update of its text and of the options given (same key and creation time; the options not given
keep their stored values, so the event floor and anonymous-users rule are those the update would
save), over every profile of the collection; the other side is what is stored for the saved
definition (exact while it is LIVE).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import apsw

from audiences_server.core import ql
from audiences_server.engine.evaluator import Evaluation
from audiences_server.engine.registry import Compiled, Registry, definition, dependencies
from audiences_server.store import evaluation as store
from audiences_server.store.evaluation import ComputationRow

CHUNK = 1000
Sample = tuple[int, Any, Any]  # (profile id, old value, new value)


@dataclass
class Diff:
    """Counts and samples of each outcome; `changed` counts the staying profiles of a computed
    trait whose value would change."""

    row: ComputationRow
    now_ms: int
    entering: int = 0
    exiting: int = 0
    staying: int = 0
    changed: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"entering": [], "exiting": [], "staying": []})

    def add(self, outcome: str, sample: Sample, sample_size: int) -> None:
        """Counts one profile's outcome, keeping it as a sample while there is room."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if len(self.samples[outcome]) < sample_size:
            self.samples[outcome].append(sample)


def diff(conn: apsw.Connection, saved: ComputationRow, checked: ql.CheckedDefinition, sample_size: int,
         now_ms: int, options: Mapping[str, Any] | None = None) -> Diff:
    """Evaluates `checked` as the new text of `saved` (with `options` over its stored ones) over
    every profile and compares with what is stored."""
    registry = Registry(store.computations(conn, saved.space_id))
    comp = _candidate(registry, saved, checked, {**saved.options, **(options or {})})
    found = Diff(saved, now_ms)
    held = _held(saved.kind)
    after = 0
    while pids := store.profiles_after(conn, saved.space_id, saved.collection, after, CHUNK):
        after = pids[-1]
        old = store.values_of(conn, [saved.computation_id], pids)
        # An evaluation per chunk: what one holds (the custom traits it read, say) stays a chunk's.
        for pid, value in Evaluation(conn, registry, now_ms).values(comp, pids):
            before = _value(saved.kind, old.get((saved.computation_id, pid)))
            _classify(found, pid, before, value, held, sample_size)
    return found


def _candidate(registry: Registry, saved: ComputationRow, checked: ql.CheckedDefinition,
               options: Mapping[str, Any]) -> Compiled:
    """The saved definition with the new text and options, its dependencies on the space's others
    worked out."""
    others = [c for c in registry.by_id.values() if c.id != saved.computation_id]
    text = definition(checked.definition.source, checked.kind, checked.collection, options, saved.created_ms)
    comp = Compiled(0, saved.space_id, saved.key, text)
    dependencies([*others, comp])  # account audiences a user definition reads, through the user's accounts
    return comp


def _held(kind: str) -> Callable[[Any], bool]:
    if kind == "audience":
        return lambda value: value is True
    return lambda value: value is not None


def _value(kind: str, raw: str | None) -> Any:
    if kind == "audience":
        return raw == "true"
    return None if raw is None else json.loads(raw)


def _classify(found: Diff, pid: int, before: Any, after: Any, held: Callable[[Any], bool], sample_size: int) -> None:
    was, now = held(before), held(after)
    if now and not was:
        found.add("entering", (pid, before, after), sample_size)
    elif was and not now:
        found.add("exiting", (pid, before, after), sample_size)
    elif was:
        found.add("staying", (pid, before, after), sample_size)
        if _canonical(before) != _canonical(after):
            found.changed += 1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
