"""The enabled computations, parsed and checked once, in dependency order, with what touches them."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from audiences_server.core import ql
from audiences_server.store.evaluation import ComputationRow

# A touch of one of these kinds can change any definition of the profile's collection: a new
# profile (NOT-audiences), a merge (everything moved), a new identifier (the anonymous rule).
_TOUCHES_ALL = frozenset({"profile", "merge", "identifier"})


def _tops(keys: Iterable[str]) -> frozenset[str]:
    # A change of trait `address` changes what `trait('address.city')` reads.
    return frozenset(key.split(".", 1)[0] for key in keys)


@dataclass
class Compiled:
    """One enabled computation, ready to evaluate."""

    row: ComputationRow
    checked: ql.CheckedDefinition
    deps: list[int] = field(default_factory=list)
    dependents: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        """The computation id."""
        return self.row.computation_id

    @property
    def collection(self) -> str:
        """`users` or `accounts`."""
        return self.row.collection

    @property
    def summary(self) -> ql.Summary:
        """What the definition reads."""
        return self.checked.summary

    @property
    def event_floor_ms(self) -> int | None:
        """The oldest event time that counts: without historical data, only events from the
        definition's creation on; with `backfill_days`, that many days before it."""
        options = self.row.options
        if not options.get("include_historical_data", True):
            return self.row.created_ms
        days = int(options.get("backfill_days", 0))
        return self.row.created_ms - days * 86_400_000 if days > 0 else None

    @property
    def include_anonymous(self) -> bool:
        """Whether profiles with only anonymous ids may be members."""
        return bool(self.row.options.get("include_anonymous_users", False))

    def touched_by(self, kind: str, name: str) -> bool:
        """Whether a change of this kind to a profile of the collection can change the value."""
        if kind in _TOUCHES_ALL:
            return True
        if kind == "event":
            return name in self.summary.events
        if kind in {"trait", "computed"}:
            return name in _tops(self.summary.traits)
        return kind == "link" and self.collection == "accounts"

    def touched_by_user(self, kind: str, name: str) -> bool:
        """For an account computation: whether a change to one of its users can change it."""
        if self.collection != "accounts":
            return False
        if kind in _TOUCHES_ALL:
            return True
        if kind == "event":
            return name in self.summary.events
        if kind in {"trait", "computed"}:
            return name in _tops(self.summary.user_traits)
        return False


class Registry:
    """Every enabled computation, in an order where each comes after those it reads."""

    def __init__(self, rows: Iterable[ComputationRow]) -> None:
        self.by_id: dict[int, Compiled] = {}
        for row in rows:
            if row.enabled and row.status != "FAILED":
                checked = ql.parse_and_check(row.definition, kind=row.kind, collection=row.collection)  # type: ignore[arg-type]
                self.by_id[row.computation_id] = Compiled(row, checked)
        self._link()
        self.order = self._sorted()

    def _link(self) -> None:
        keys = {(c.row.space_id, c.collection, c.row.key): c.id for c in self.by_id.values()}
        for comp in self.by_id.values():
            space = comp.row.space_id
            deps = {keys.get((space, comp.collection, k)) for k in comp.summary.traits}
            deps |= {keys.get((space, "users", k)) for k in comp.summary.user_traits}
            comp.deps = sorted(d for d in deps if d is not None and d != comp.id)
            for dep in comp.deps:
                self.by_id[dep].dependents.append(comp.id)

    def _sorted(self) -> list[Compiled]:
        graph = {cid: comp.deps for cid, comp in sorted(self.by_id.items())}
        return [self.by_id[cid] for cid in graphlib.TopologicalSorter(graph).static_order()]

    def of_space(self, space_id: int) -> list[Compiled]:
        """The space's computations in dependency order."""
        return [c for c in self.order if c.row.space_id == space_id]
