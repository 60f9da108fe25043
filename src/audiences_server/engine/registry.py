"""The enabled computations, parsed and checked once, in dependency order, with what touches them."""

from __future__ import annotations

import functools
import graphlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from audiences_server.core import ql
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sql.plans import AccountPlan, Plan, compile_definition

# A touch of one of these kinds can change any definition of the profile's collection: a new
# profile (NOT-audiences), a merge (everything moved), a new identifier (the anonymous rule).
_TOUCHES_ALL = frozenset({"profile", "merge", "identifier"})


def _tops(keys: Iterable[str]) -> frozenset[str]:
    # A change of trait `address` changes what `trait('address.city')` reads.
    return frozenset(key.split(".", 1)[0] for key in keys)


@dataclass(eq=False)
class Compiled:
    """One enabled computation, ready to evaluate."""

    row: ComputationRow
    checked: ql.CheckedDefinition
    deps: list[int] = field(default_factory=list)
    dependents: list[int] = field(default_factory=list)
    # Account audiences a user definition reads (a user reads true if any of its accounts is in).
    account_keys: frozenset[str] = frozenset()
    @functools.cached_property
    def plan(self) -> Plan | AccountPlan | None:
        """The definition compiled to a SQL plan; None when the interpreter evaluates it (see
        store/sql/plans.py). Compiled when first asked for: a cycle check needs none."""
        return compile_definition(self.checked, self.event_floor_ms)

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
        return kind == "link" and (self.collection == "accounts" or bool(self.account_keys))

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


def dependencies(comps: Iterable[Compiled]) -> None:
    """Fills in what each computation reads and is read by.

    `trait('k')` names a definition of the same collection when one has key `k`; in a user
    definition it may also name an account audience, read through the user's accounts. Inside
    an account's ANY/ALL it names a user definition.
    """
    comps = list(comps)
    keys = {(c.row.space_id, c.collection, c.row.key): c for c in comps}
    for comp in comps:
        space = comp.row.space_id
        deps = {keys.get((space, comp.collection, k)) for k in comp.summary.traits}
        deps |= {keys.get((space, "users", k)) for k in comp.summary.user_traits}
        if comp.collection == "users":
            named = [keys.get((space, "accounts", k)) for k in comp.summary.traits if (space, "users", k) not in keys]
            across = {a for a in named if a is not None and a.row.kind == "audience"}
            comp.account_keys = frozenset(a.row.key for a in across)
            deps |= across
        comp.deps = sorted(d.id for d in deps if d is not None and d is not comp)
        comp.dependents = []
    by_id = {c.id: c for c in comps}
    for comp in comps:
        for dep in comp.deps:
            by_id[dep].dependents.append(comp.id)


def reads_itself(comp: Compiled) -> bool:
    """Whether a definition reads its own key: `trait('c')` in the definition saved as `c` names
    that definition itself (a cycle of length one). Inside an account's ANY/ALL, `trait('c')`
    reads the users' `c`, another definition."""
    return comp.row.key in comp.summary.traits


def compile_row(row: ComputationRow) -> Compiled:
    """Parses and checks a stored definition."""
    checked = ql.parse_and_check(row.definition, kind=row.kind, collection=row.collection)  # type: ignore[arg-type]
    return Compiled(row, checked)


def find_cycle(comps: Iterable[Compiled]) -> list[str] | None:
    """The keys along a dependency cycle among the computations, if there is one."""
    comps = list(comps)
    dependencies(comps)
    names = {c.id: c.row.key for c in comps}
    try:
        graphlib.TopologicalSorter({c.id: c.deps for c in comps}).prepare()
    except graphlib.CycleError as cycle:
        return [names[i] for i in cycle.args[1]]
    return None


@dataclass(frozen=True)
class Moved:
    """What a touch of one kind on a profile moves (see `Registry.moved_by`)."""

    # The computations to evaluate for the profile itself (a user's compiled account audiences
    # among them: their stored results for the user come first).
    itself: frozenset[int]
    # For a user: the account computations to evaluate for its accounts.
    through_accounts: frozenset[int]
    # For a user: the compiled account audiences it moves, whose accounts are evaluated too
    # when the touches also move the user's links.
    account_plans: frozenset[int]


class Registry:
    """Every enabled computation, in an order where each comes after those it reads."""

    def __init__(self, rows: Iterable[ComputationRow]) -> None:
        self.by_id: dict[int, Compiled] = {
            row.computation_id: compile_row(row) for row in rows if row.enabled and row.status != "FAILED"
        }
        dependencies(self.by_id.values())
        self.order = self._sorted()
        self._moved: dict[tuple[int, str, str, str], Moved] = {}

    def moved_by(self, space_id: int, collection: str, kind: str, name: str) -> Moved:
        """What a touch of one kind (an event name, a trait key, a merge, …) on a profile of the
        collection moves, worked out once per registry: a job's touched profiles have many
        different sets of touches, each the union of a few kinds."""
        key = (space_id, collection, kind, name)
        found = self._moved.get(key)
        if found is None:
            itself: set[int] = set()
            through: set[int] = set()
            plans: set[int] = set()
            for comp in self.of_space(space_id):
                if comp.collection == collection and comp.touched_by(kind, name):
                    itself.add(comp.id)
                elif collection == "users" and comp.touched_by_user(kind, name):
                    if isinstance(comp.plan, AccountPlan):
                        itself.add(comp.id)
                        plans.add(comp.id)
                    else:
                        through.add(comp.id)
            found = self._moved[key] = Moved(frozenset(itself), frozenset(through), frozenset(plans))
        return found

    def _sorted(self) -> list[Compiled]:
        graph = {cid: comp.deps for cid, comp in sorted(self.by_id.items())}
        return [self.by_id[cid] for cid in graphlib.TopologicalSorter(graph).static_order()]

    def of_space(self, space_id: int) -> list[Compiled]:
        """The space's computations in dependency order."""
        return [c for c in self.order if c.row.space_id == space_id]
