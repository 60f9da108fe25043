"""The enabled computations, parsed and checked once, in dependency order, with what touches them."""

from __future__ import annotations

import functools
import graphlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audiences_server.core import ql
from audiences_server.core.ql.values import path_parts
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sql.plans import AccountPlan, Plan, compile_definition

# A touch of one of these kinds can change any definition of the profile's collection: a new
# profile (NOT-audiences), a merge (everything moved), a new identifier (the anonymous rule).
_TOUCHES_ALL = frozenset({"profile", "merge", "identifier"})
# An audience's stored value as the definitions reading it see it.
_FLAGS = {"true": True, "false": False}


def trait_names(keys: Iterable[str]) -> frozenset[str]:
    """The trait names that trait keys read: `trait('address.city')` reads the trait `address`
    and a trait literally named `address.city`, which it reads first (a change of either
    changes what it reads); `trait('utm\\.source')` reads the trait `utm.source` alone."""
    names = set()
    for key in keys:
        parts, whole_first = path_parts(key)
        names.add(parts[0])
        if whole_first:
            names.add(key)
    return frozenset(names)


@dataclass(frozen=True, eq=False)
class Definition:
    """A definition as the engine evaluates it: its text parsed and checked (`checked`, with the
    summary of what it reads), the options that change what it counts, and its SQL plan.

    Made by `definition`, from a stored row's text and options (`Compiled.of_row`) or from a
    text not saved yet, never from a fabricated row, and once per process for each text and
    options (`definition` remembers the last ones made): a registry rebuilt because one
    definition of 200 changed status compiles no plan again.
    """

    checked: ql.CheckedDefinition
    # The oldest event time that counts (None: all of them): without historical data, only events
    # from the definition's creation on; with `backfill_days`, that many days before it.
    event_floor_ms: int | None = None
    # Whether profiles with only anonymous ids may be members.
    include_anonymous: bool = False
    # False: always evaluated by the interpreter (the reference the SQL plans are tested against).
    compile: bool = True

    @property
    def kind(self) -> str:
        """`audience` or `computed_trait`."""
        return self.checked.kind

    @property
    def collection(self) -> str:
        """`users` or `accounts`."""
        return self.checked.collection

    @property
    def summary(self) -> ql.Summary:
        """What the definition reads."""
        return self.checked.summary

    @functools.cached_property
    def plan(self) -> Plan | AccountPlan | None:
        """The definition compiled to a SQL plan; None when the interpreter evaluates it (see
        store/sql/plans.py). Compiled when first asked for: a cycle check needs none."""
        return compile_definition(self.checked, self.event_floor_ms) if self.compile else None


def definition(text: str, kind: str, collection: str, options: Mapping[str, Any] | None = None,
               created_ms: int = 0) -> Definition:
    """The definition of a text with its options (`include_historical_data`, `backfill_days`,
    `include_anonymous_users`), created at `created_ms`; raises `ql.QueryError` when the text
    does not parse or check."""
    options = options or {}
    floor: int | None = None
    if not options.get("include_historical_data", True):
        floor = created_ms
    elif (days := int(options.get("backfill_days", 0))) > 0:
        floor = created_ms - days * 86_400_000
    return _definition(text, kind, collection, floor, bool(options.get("include_anonymous_users", False)))


def compiled(text: str, kind: str, collection: str, floor_ms: int | None) -> Definition:
    """The definition of a text whose events count from `floor_ms` on, for a process that is told
    only that (engine/scan_ahead.py): the same plan, and what it reads."""
    return _definition(text, kind, collection, floor_ms, False)


@functools.lru_cache(maxsize=4096)
def _definition(text: str, kind: str, collection: str, floor_ms: int | None, include_anonymous: bool) -> Definition:
    checked = ql.parse_and_check(text, kind=kind, collection=collection)  # type: ignore[arg-type]
    return Definition(checked, floor_ms, include_anonymous)


@dataclass(eq=False)
class Compiled:
    """One computation of a space as the evaluator sees it: its identity, its definition, and
    where it sits among the space's others (what it reads and what reads it)."""

    id: int
    space_id: int
    key: str
    definition: Definition
    # LIVE, BACKFILLING, … (a registry is rebuilt when a status changes).
    status: str = "LIVE"
    deps: list[int] = field(default_factory=list)
    dependents: list[int] = field(default_factory=list)
    # Account audiences a user definition reads (a user reads true if any of its accounts is in).
    account_keys: frozenset[str] = frozenset()
    # The definition's kind (`audience` or `computed_trait`) and collection (`users` or
    # `accounts`), kept as attributes: the evaluator reads them for every pair it evaluates.
    kind: str = field(init=False)
    collection: str = field(init=False)

    def __post_init__(self) -> None:
        self.kind, self.collection = self.definition.kind, self.definition.collection

    @staticmethod
    def of_row(row: ComputationRow) -> Compiled:
        """A stored computation (raises `ql.QueryError` if its text no longer checks)."""
        stored = definition(row.definition, row.kind, row.collection, row.options, row.created_ms)
        return Compiled(row.computation_id, row.space_id, row.key, stored, row.status)

    @property
    def checked(self) -> ql.CheckedDefinition:
        """The definition parsed and checked."""
        return self.definition.checked

    @property
    def summary(self) -> ql.Summary:
        """What the definition reads."""
        return self.definition.summary

    @property
    def plan(self) -> Plan | AccountPlan | None:
        """The definition's SQL plan (see `Definition.plan`)."""
        return self.definition.plan

    @property
    def event_floor_ms(self) -> int | None:
        """The oldest event time that counts (see `Definition.event_floor_ms`)."""
        return self.definition.event_floor_ms

    @property
    def include_anonymous(self) -> bool:
        """Whether profiles with only anonymous ids may be members."""
        return self.definition.include_anonymous

    def touched_by(self, kind: str, name: str) -> bool:
        """Whether a change of this kind to a profile of the collection can change the value."""
        if kind in _TOUCHES_ALL:
            return True
        if kind == "event":
            return name in self.summary.events
        if kind in {"trait", "computed"}:
            return name in trait_names(self.summary.traits)
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
            return name in trait_names(self.summary.user_traits)
        return False


def dependencies(comps: Iterable[Compiled]) -> None:
    """Fills in what each computation reads and is read by.

    `trait('k')` names a definition of the same collection when one has key `k`; in a user
    definition it may also name an account audience, read through the user's accounts. Inside
    an account's ANY/ALL it names a user definition.
    """
    comps = list(comps)
    keys = {(c.space_id, c.collection, c.key): c for c in comps}
    for comp in comps:
        space = comp.space_id
        deps = {keys.get((space, comp.collection, k)) for k in comp.summary.traits}
        deps |= {keys.get((space, "users", k)) for k in comp.summary.user_traits}
        if comp.collection == "users":
            named = [keys.get((space, "accounts", k)) for k in comp.summary.traits if (space, "users", k) not in keys]
            across = {a for a in named if a is not None and a.kind == "audience"}
            comp.account_keys = frozenset(a.key for a in across)
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
    return comp.key in comp.summary.traits


def find_cycle(comps: Iterable[Compiled]) -> list[str] | None:
    """The keys along a dependency cycle among the computations, if there is one."""
    comps = list(comps)
    dependencies(comps)
    names = {c.id: c.key for c in comps}
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
            row.computation_id: Compiled.of_row(row) for row in rows if row.enabled and row.status != "FAILED"
        }
        dependencies(self.by_id.values())
        self.order = self._sorted()
        # Whether any definition is of accounts: only then do a profile's values read another's.
        self.has_accounts = any(c.collection == "accounts" for c in self.by_id.values())
        self._moved: dict[tuple[int, str, str, str], Moved] = {}
        # Asked once per definition and job (hundreds of times a job): worked out once per registry.
        self._spaces: dict[int, tuple[Compiled, ...]] = {}
        self._named: dict[tuple[int, str, frozenset[str]], tuple[Compiled, ...]] = {}
        self._bare: dict[int, dict[str, Any]] = {}

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

    def of_space(self, space_id: int) -> tuple[Compiled, ...]:
        """The space's computations in dependency order."""
        found = self._spaces.get(space_id)
        if found is None:
            found = self._spaces[space_id] = tuple(c for c in self.order if c.space_id == space_id)
        return found

    def named(self, space_id: int, collection: str, keys: frozenset[str]) -> tuple[Compiled, ...]:
        """The space's computations of the collection whose keys are among `keys` (top-level
        trait names): what a definition reading those names reads instead of custom traits."""
        key = (space_id, collection, keys)
        found = self._named.get(key)
        if found is None:
            found = self._named[key] = tuple(
                c for c in self.of_space(space_id) if c.collection == collection and c.key in keys)
        return found

    def custom_names(self, space_id: int, collection: str, keys: frozenset[str]) -> frozenset[str]:
        """Of these top-level trait names, those read as custom traits: a computation of the
        name (`named`) stands in for the custom trait (see `overlay`)."""
        return keys.difference(c.key for c in self.named(space_id, collection, keys))

    def bare_traits(self, comp: Compiled) -> dict[str, Any]:
        """The traits a user definition reads as a profile with none of them reads them: `false`
        for each audience it reads (an audience reads `false` for a profile never a member, and a
        user reads an account audience `false` without a member account); nothing else. Not to
        be changed by the caller."""
        found = self._bare.get(comp.id)
        if found is None:
            keys = trait_names(comp.summary.traits)
            found = {c.key: False for c in self.named(comp.space_id, comp.collection, keys) if c.kind == "audience"}
            found.update((key, False) for key in comp.account_keys)
            self._bare[comp.id] = found
        return found


def overlay(traits: dict[int, dict[str, Any]], comps: Sequence[Compiled], profile_ids: Sequence[int],
            values: Mapping[tuple[int, int], str | None]) -> dict[int, dict[str, Any]]:
    """Custom traits (by profile, changed in place and returned) as a definition reads them: the
    stored value of each computation (JSON text in `values`, by computation and profile) stands
    in for the custom trait of its key; an audience reads `false` for a profile that was never a
    member, as for one that left, and a computed trait without a value is missing."""
    for pid in profile_ids:
        own = traits.setdefault(pid, {})
        for comp in comps:
            stored = values.get((comp.id, pid))
            if stored is not None:
                flag = _FLAGS.get(stored)  # most values read are audiences'
                own[comp.key] = json.loads(stored) if flag is None else flag
            elif comp.kind == "audience":
                own[comp.key] = False
            else:
                own.pop(comp.key, None)
    return traits
