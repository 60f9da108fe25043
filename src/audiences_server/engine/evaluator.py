"""The incremental evaluator (docs/evaluator.md, "How a tick works").

A tick at time T evaluates only the profiles whose values could have changed: those touched
since the last tick (for the definitions the change can affect), the accounts of touched
users, profiles whose stored next-change time has come, and the dependents of values that
changed earlier in the same tick. Every changed value is written together with its change
record, in the writer's transaction. Work is cut into bounded jobs so that ingestion is never
stalled for long; backfills walk a collection the same way, a chunk per job.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any, Protocol, TypeVar

import apsw
import structlog

from audiences_server.core import ql
from audiences_server.engine.clock import Clock
from audiences_server.engine.registry import Compiled, Registry, overlay, trait_names
from audiences_server.engine.scan_ahead import Part, ScanAhead, Spec
from audiences_server.store import backlogs
from audiences_server.store import evaluation as store
from audiences_server.store import history as history_store
from audiences_server.store import versions as versions_store
from audiences_server.store.db import Readers
from audiences_server.store.identity import touch
from audiences_server.store.sql.plans import AccountPlan, Plan, Row, Scans, Shared, scan_together
from audiences_server.store.writer import Writer

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

# Profiles per job: bounds how long one job holds the writer (a compiled definition takes
# ~10-20 µs per profile; one the interpreter evaluates, ~10× more, gets a quarter of it).
JOB_PROFILES = 1000
# On the system clock, a live job takes as much waiting work as it can do in about this long
# (`job_size`), so that ingest, which waits for the writer between two jobs, is never held up
# for much longer; never fewer than JOB_MIN_PROFILES, never more than JOB_PROFILES. An ingest
# request that arrives as a job starts waits about one job, so a sender that waits for each
# answer gets at most one request in per job (docs/evaluator.md).
JOB_TARGET_MS = 50
JOB_MIN_PROFILES = 10
# (Definition, profile) pairs one job backfills at most: definitions created together share a job.
BACKFILL_PAIRS = 20_000
# A live job whose scans of compiled user definitions cover this many (definition, profile)
# pairs or more lends the scan-ahead process half of them (`Evaluation._scanned`): below, the
# exchange (~1 ms, plus the answer's unpickling) is not worth it.
LEND_PAIRS = 4_000
# The fewest profiles a job backfills for compiled user definitions together, which bounds how
# many share the job (BACKFILL_PAIRS / BACKFILL_PROFILES).
BACKFILL_PROFILES = 100
# How long a tick may go on taking jobs before it ends, so that under overload freshness degrades
# in proportion (each tick commits and announces its changes) instead of one tick running on.
TICK_BUDGET_MS = 1000
# A user's touches that can change which accounts it belongs to (a merge moves the merged
# profile's links): its accounts are evaluated whether or not its own results moved.
_LINKS_MOVE = frozenset({"profile", "merge", "link"})


@dataclass
class TickReport:
    """What one tick did."""

    tick_ms: int
    profiles_evaluated: int = 0
    definitions_evaluated: int = 0
    values_changed: int = 0
    duration_ms: float = 0.0
    # The writer thread's CPU time in the jobs (of a job, the rest of its `duration_ms` waited,
    # for the GIL or the disk).
    cpu_ms: float = 0.0
    jobs: int = 0
    # Waiting work taken: touched profiles and profiles with next change times due.
    taken: int = 0
    # Whether work was left waiting when the tick ended (its budget or slice was spent).
    backlog: bool = False
    # The profiles and the definitions evaluated (sets of ids, not of pairs: a tick of 200
    # definitions evaluates some 45,000 pairs).
    _profiles: set[int] = field(default_factory=set, repr=False)
    _definitions: set[int] = field(default_factory=set, repr=False)

    @property
    def evaluated(self) -> bool:
        """Whether anything was evaluated."""
        return bool(self._definitions)

    def evaluating(self, computation_id: int, profile_ids: Collection[int]) -> None:
        """Records that a computation was evaluated for these profiles (if any)."""
        if profile_ids:
            self._definitions.add(computation_id)
            self._profiles.update(profile_ids)

    def add(self, other: TickReport) -> None:
        """Adds what one job did (in time proportional to that job, whatever the tick's size)."""
        self._profiles |= other._profiles
        self._definitions |= other._definitions
        self.profiles_evaluated = len(self._profiles)
        self.definitions_evaluated = len(self._definitions)
        self.values_changed += other.values_changed
        self.taken += other.taken
        self.cpu_ms += other.cpu_ms
        self.jobs += 1


class DefinitionFailed(Exception):
    """A definition's evaluation raised (see `Evaluation.guarded`)."""

    def __init__(self, computation_id: int, error: str) -> None:
        super().__init__(error)
        self.computation_id = computation_id
        self.error = error


def job_size(per_item_ms: float | None, target_ms: float = JOB_TARGET_MS) -> int:
    """How much waiting work (touched and due profiles) a live job takes, from what a
    job's work has cost per item lately: as much as fits in `target_ms`, between
    JOB_MIN_PROFILES and JOB_PROFILES. A job's fixed cost makes a small job's cost per item
    look high; the next, larger job corrects it, and the size settles where a job takes about
    `target_ms`."""
    if per_item_ms is None or per_item_ms <= 0:
        return JOB_PROFILES
    return max(JOB_MIN_PROFILES, min(JOB_PROFILES, int(target_ms / per_item_ms)))


def undone_on_failure(conn: apsw.Connection, now_ms: int, attempt: Callable[[], _T]) -> _T:
    """Runs `attempt` (a job's evaluation, in the writer's transaction). When a definition fails
    in it, the attempt's writes are all undone, the definition is marked FAILED (which takes it
    out of the registry) and the attempt runs again, without it.

    One savepoint per job, rather than one per definition: SQLite copies each page a savepoint's
    writes touch into its journal once per savepoint, and the pages the definitions of a job
    write (the change records' last pages, the due-time index, the computations' sizes) are
    largely the same, so a savepoint per definition copied them again for each of the ~45
    definitions a 200-definition tick evaluates (~5–10% of a live writer's time).
    """
    while True:
        conn.execute("SAVEPOINT evaluation")
        try:
            result = attempt()
        except DefinitionFailed as failed:
            conn.execute("ROLLBACK TO evaluation")
            conn.execute("RELEASE evaluation")
            store.fail(conn, failed.computation_id, failed.error, now_ms)
            continue
        conn.execute("RELEASE evaluation")
        return result


class AccountsApart(Protocol):
    """Where a compiled account audience's users and accounts are kept apart: a cluster's shards
    (docs/scaling.md, "Account audiences across shards"). A shard's tick then computes its own
    users' results and leaves its accounts to `defer`; once every shard's counts for the tick are
    in, the accounts are combined from `flags` (see `Evaluator.combine_accounts`)."""

    def defer(self, conn: apsw.Connection, comp: Compiled, account_ids: Sequence[int], step: int) -> None:
        """Notes accounts the tick reached (this file's or another's), to combine once every
        shard's counts for the tick are in, with the step of the tick that reached them
        (`Evaluation.step`): accounts are combined in that order, so that an account's change
        records are in one node's order."""

    def flags(self, conn: apsw.Connection, comp: Compiled, account_ids: Sequence[int],
              operands: int) -> dict[tuple[int, int], tuple[bool, bool]]:
        """Per (account, operand): whether some linked user satisfies it, and whether some does not."""
        ...


def canonical(value: Any) -> str:
    """A value as stored: JSON with sorted keys, so equal values have equal text.

    Most values are scalars, written here as `json.dumps` writes them without its per-call cost
    (a tick writes one per evaluated pair)."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return _json_text(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Evaluation:
    """Evaluating computations for sets of profiles on one connection (inside a writer job)."""

    def __init__(self, conn: apsw.Connection, registry: Registry, now_ms: int,
                 apart: AccountsApart | None = None, combining: bool = False) -> None:
        self.conn = conn
        self.registry = registry
        self.now = now_ms
        # Accounts kept apart from their users (a cluster's shard): compiled account audiences
        # compute users' results only, or, `combining`, accounts only (see `AccountsApart`).
        self.apart = apart
        self.combining = combining
        # Which job of its tick this is (from 1), and whether a backfill chunk is being evaluated.
        self.job = 1
        self.backfilling = False
        self.report = TickReport(now_ms)
        # The anonymous-users rule: the profiles asked whether they hold an identifier other than
        # an anonymous id (once per job whatever the number of audiences), and those that do not.
        self._asked: set[int] = set()
        self._anonymous: set[int] = set()
        # Each profile's (space, collection, merged into), None for no such profile: a job
        # changes none of them, so they are read once per job.
        self._facts: dict[int, tuple[int, str, int | None] | None] = {}
        # The SQL plans' scans of this job: events do not change within it.
        self._scans: Scans = {}
        # Per computation, its part of the scans made together for the job's work (`prefetch`).
        # (An account audience's operands under (computation, operand).)
        self._shared: dict[int | tuple[int, int], Shared] = {}
        # Per computation, values already worked out from its part (a backfill's scan made ahead).
        self._results: dict[int, Mapping[int, Any]] = {}
        # Per computation, the stored values and next change times read with those scans, or
        # with a backfill chunk (`hold_chunk`): the profiles covered, and those holding either
        # (nothing changes them until it runs).
        self._held: dict[int, tuple[Collection[int], store.Stored]] = {}
        # The next change times read and written, per profile, until `flush` writes them.
        self.due = store.DueTimes(conn)
        # The change records and size changes of the computations evaluated, until `flush` writes
        # them: a statement per job, not per definition (nothing in a job reads either back).
        self._records: list[store.ChangeRecord] = []
        self._sizes: dict[int, int] = {}
        # Custom traits read, per top-level key: the profiles read, and the value of those that
        # have it (a job changes no custom trait, and a dozen definitions read `plan`).
        self._custom: dict[str, tuple[set[int], dict[int, Any]]] = {}
        # Per account read, its linked users (a job changes no link).
        self._links: dict[int, list[int]] = {}
        # The process a big live job lends half its scan to (engine/scan_ahead.py), if any.
        self.lender: ScanAhead | None = None

    def facts(self, profile_ids: Iterable[int]) -> dict[int, tuple[int, str, int | None]]:
        """Space, collection and survivor of each existing profile among these."""
        wanted = set(profile_ids)
        asked = [pid for pid in wanted if pid not in self._facts]
        if asked:
            found = store.profile_facts(self.conn, asked)
            self._facts.update((pid, found.get(pid)) for pid in asked)
        return {pid: fact for pid in wanted if (fact := self._facts[pid]) is not None}

    def linked(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """Per account, its linked users (read once per job)."""
        asked = [account for account in account_ids if account not in self._links]
        if asked:
            found = store.users_of(self.conn, asked)
            self._links.update((account, found.get(account, [])) for account in asked)
        return {account: self._links[account] for account in account_ids}

    def prefetch(self, work: Mapping[int, Collection[int]], stored: bool = True,
                 scanned: Mapping[int, Part] | None = None) -> None:
        """Scans the events of the work's compiled user definitions together, one query per set
        of event names over the candidates of the definitions reading them (`plans.scan_together`):
        a tick after 1,000 new orders evaluates dozens of definitions reading `Order Completed`
        for the same profiles. Each definition then takes its part; profiles it gets beyond these
        (from a changed dependency) are scanned when it runs. With `stored`, their stored values
        and next change times are read too (a backfill reads a chunk's instead); without, the
        chunk is a backfill's, and an account audience's operands take every user linked to its
        accounts (`_backfill_flags` evaluates those that have no results yet). `scanned`: parts
        of that scan already made (by computation; a backfill's scan made ahead), not made again,
        with the values worked out from them where the process did."""
        self._shared = {}
        self._held = {}
        self._results = {}
        if self.combining:
            return
        comps, keys, plans, candidates = self._scan_inputs(work, stored)
        given: dict[int | tuple[int, int], Shared] = {}
        for key in keys:
            if scanned and isinstance(key, int) and key in scanned:
                given[key], values = scanned[key]
                if values is not None:
                    self._results[key] = values
        left = [i for i, key in enumerate(keys) if key not in given]
        if len(left) >= 2:
            self._shared = self._scanned([(keys[i], plans[i], candidates[i]) for i in left], stored)
        elif not given:
            return
        self._shared.update(given)
        if not comps:
            return
        if stored:
            # Every definition's stored state for every profile of the job, one range per
            # profile (both tables are keyed by profile first): what a job reads is the rows of
            # the profiles it evaluates, side by side, however its definitions' profiles differ.
            union = frozenset().union(*(work[comp.id] for comp in comps))
            held = store.stored_of_profiles(self.conn, [comp.id for comp in comps], sorted(union), self.due)
            self._held = {cid: (union, found) for cid, found in held.items()}

    def _scanned(self, scans: Sequence[tuple[int | tuple[int, int], Plan, Collection[int]]],
                 stored: bool) -> dict[int | tuple[int, int], Shared]:
        """`scan_together` of these (key, plan, candidates). A big live job lends the scan-ahead
        process the scans of the last 45% of its profiles (engine/scan_ahead.py, `lend`: it also
        works out the values of the plans reading no trait) and scans the others meanwhile; an
        account audience's operands too, which read the same events in the same queries."""
        keys = [key for key, _, _ in scans]
        plans = [plan for _, plan, _ in scans]
        candidates = [found for _, _, found in scans]
        lender, token, theirs = self.lender, None, []
        if lender is not None and stored and len(scans) >= 2 and sum(map(len, candidates)) >= LEND_PAIRS:
            union = sorted(frozenset().union(*candidates))
            lent = frozenset(union[len(union) * 11 // 20:])
            specs = [spec_of(self.registry.by_id[key], None) if isinstance(key, int)
                     else spec_of(self.registry.by_id[key[0]], key[1]) for key in keys]
            theirs = [sorted(lent.intersection(found)) for found in candidates]
            token = lender.lend(specs, theirs, self.now)
            if token is not None:
                candidates = [[pid for pid in found if pid not in lent] for found in candidates]
        shared: dict[int | tuple[int, int], Shared] = dict(zip(
            keys, scan_together(self.conn, plans, candidates, self.now), strict=True))
        if lender is None or token is None:
            return shared
        answer = lender.collect(token)
        if answer is None:  # the process failed: those profiles are scanned here after all
            answer = [(part, None) for part in scan_together(self.conn, plans, theirs, self.now)]
        for key, ((covered, found), values) in zip(keys, answer, strict=True):
            mine_covered, mine_found = shared[key]
            shared[key] = (frozenset(mine_covered).union(covered), {**mine_found, **found})
            if values is not None and isinstance(key, int):
                self._results[key] = values
        return shared

    def _scan_inputs(self, work: Mapping[int, Collection[int]], stored: bool
                     ) -> tuple[list[Compiled], list[int | tuple[int, int]], list[Plan], list[Collection[int]]]:
        """What `prefetch` scans: the compiled user definitions, and the compiled account
        audiences' operands over their candidate users (`_refresh_members`), each under
        (computation, operand); their plans and candidates."""
        comps: list[Compiled] = []
        keys: list[int | tuple[int, int]] = []
        plans: list[Plan] = []
        candidates: list[Collection[int]] = []
        for comp in self.registry.order:
            if not work.get(comp.id):
                continue
            if isinstance(comp.plan, Plan) and comp.plan.query is not None:
                comps.append(comp)
                keys.append(comp.id)
                plans.append(comp.plan)
                candidates.append(work[comp.id])
            elif isinstance(comp.plan, AccountPlan) and self.apart is None:
                facts = self.facts(work[comp.id])
                users = [pid for pid, (_, collection, _) in facts.items() if collection == "users"]
                if not stored:
                    accounts = sorted(pid for pid, (_, collection, _) in facts.items() if collection == "accounts")
                    users = sorted({*users, *(u for linked in self.linked(accounts).values() for u in linked)})
                for k, (_, plan) in enumerate(comp.plan.quantified):
                    if plan.query is not None and users:
                        keys.append((comp.id, k))
                        plans.append(plan)
                        candidates.append(users)
        return comps, keys, plans, candidates

    def hold_chunk(self, computation_ids: Sequence[int], profile_ids: Sequence[int]) -> None:
        """Reads a backfill chunk's stored state for the definitions backfilling it together, in
        two statements for them all (`store.stored_of_chunk`), for `_stored_of` to hand out."""
        if profile_ids:
            covered = frozenset(profile_ids)
            held = store.stored_of_chunk(self.conn, computation_ids, profile_ids, self.due)
            self._held.update((cid, (covered, found)) for cid, found in held.items())

    def run(self, work: dict[int, set[int]]) -> None:
        """Evaluates the work, in dependency order, following changed values to dependents."""
        self.prefetch(work)
        changed: dict[int, set[int]] = {}
        for comp in self.registry.order:
            if self.combining and not isinstance(comp.plan, AccountPlan):
                continue
            candidates = set(work.get(comp.id, ()))
            for dep in comp.deps:
                moved = changed.get(dep, set())
                if moved and self.registry.by_id[dep].collection == comp.collection:
                    candidates |= moved
                elif moved and isinstance(comp.plan, AccountPlan):
                    candidates |= moved  # the users' results first, then the accounts they move
                elif moved and comp.collection == "accounts":
                    candidates |= {
                        a for accounts in store.accounts_of(self.conn, sorted(moved)).values() for a in accounts
                    }
                elif moved:
                    candidates |= {u for users in store.users_of(self.conn, sorted(moved)).values() for u in users}
            if candidates:
                changed[comp.id] = self.guarded(comp, sorted(candidates))
        self.flush()

    def flush(self) -> None:
        """Writes the change records, sizes and next change times of the work so far (the end
        of an evaluation's work)."""
        store.record_changes(self.conn, self._records, self.now)
        store.add_sizes(self.conn, self._sizes, self.now)
        self._records, self._sizes = [], {}
        self.due.flush()

    def guarded(self, comp: Compiled, profile_ids: Sequence[int]) -> set[int]:
        """Evaluates one computation; if it fails, raises `DefinitionFailed`, on which the job
        undoes its writes, marks the definition FAILED and runs again without it (`undone_on_failure`),
        so that one broken definition never stops the others or retries forever."""
        try:
            return self.evaluate(comp, profile_ids)
        except Exception as failure:
            log.exception("computation_failed", key=comp.key, space=comp.space_id)
            raise DefinitionFailed(comp.id, f"{type(failure).__name__}: {failure}") from failure

    def values(self, comp: Compiled, profile_ids: Sequence[int]) -> list[tuple[int, Any]]:
        """Computes values without storing anything (for previews)."""
        return [(pid, value) for pid, value, _ in self._compute(comp, profile_ids, with_due=False)]

    def _compute(
        self, comp: Compiled, profile_ids: Sequence[int], with_due: bool = True,
        traits: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> list[tuple[int, Any, int | None]]:
        """Each profile's value and next change time, with the anonymous-users rule applied.

        Definitions compiled to SQL plans run as one query over the profiles (an account
        audience, one per `ANY`/`ALL` over their users); the others are loaded into the reference
        interpreter profile by profile. `traits`: the user traits a compiled user definition
        reads, when already read.
        """
        if isinstance(comp.plan, AccountPlan):
            members = store.users_of(self.conn, profile_ids)
            users = sorted({u for linked in members.values() for u in linked})
            space = comp.space_id
            out = comp.plan.run(
                self.conn, profile_ids, self.now, self._traits(space, "accounts", profile_ids, comp.summary.traits),
                members, self._traits(space, "users", users, comp.summary.user_traits),
            )
        elif comp.plan is not None:
            if traits is None:
                traits = self._user_traits(comp, profile_ids)
            out = comp.plan.run(self.conn, profile_ids, self.now, traits, self._scans, self._shared.get(comp.id),
                                self._results.get(comp.id))
        else:
            out = self._interpret(comp, profile_ids, with_due)
        if comp.kind == "audience" and comp.collection == "users" and not comp.include_anonymous:
            anonymous = self._anonymous_among(profile_ids)
            if anonymous:  # most jobs have none: the results stand as they are
                out = [(pid, False if pid in anonymous else value, due) for pid, value, due in out]
        return out

    def _anonymous_among(self, profile_ids: Sequence[int]) -> set[int]:
        """The profiles among these holding no identifier but `anonymous_id` (each read once a job)."""
        asked = [pid for pid in profile_ids if pid not in self._asked]
        if asked:
            self._asked.update(asked)
            self._anonymous.update(set(asked) - store.known_profiles(self.conn, asked))
        return self._anonymous.intersection(profile_ids) if self._anonymous else set()

    def _interpret(
        self, comp: Compiled, profile_ids: Sequence[int], with_due: bool
    ) -> list[tuple[int, Any, int | None]]:
        """Each profile's value and next change time by the reference interpreter."""
        profiles = self._profiles(comp, profile_ids)
        out = []
        for pid in profile_ids:
            profile = profiles[pid]
            value = ql.evaluate(comp.checked, profile, self.now)
            due = ql.next_change_time(comp.checked, profile, self.now) if with_due else None
            out.append((pid, value, due))
        return out

    def evaluate(self, comp: Compiled, profile_ids: Sequence[int]) -> set[int]:
        """Evaluates one computation for the profiles; stores values, changes and due times.

        A compiled account audience may also be given users (whose changes can move it): see
        `_account_values`.
        """
        cid = comp.id
        narrowed = self._narrowed(comp, comp.plan, profile_ids) if isinstance(comp.plan, Plan) else None
        if narrowed is not None:
            computed, stored = narrowed
        else:
            if isinstance(comp.plan, AccountPlan):
                computed = self._account_values(comp, comp.plan, profile_ids)
            else:
                computed = self._compute(comp, profile_ids)
            stored = self._stored_of(cid, [pid for pid, _, _ in computed])
        due: dict[int, int | None] = {}  # the next change times that moved
        # What moved: the values written in one statement (the definitions after this one read
        # them), the change records and the size kept for `flush`.
        writes: list[tuple[int, str | None]] = []
        records = self._records
        space = comp.space_id
        size_delta = 0
        for pid, value, next_change in computed:
            before, was_due = stored.get(pid, (None, None))
            if next_change != was_due:
                due[pid] = next_change
            moved = self._diff(comp, before, value)
            if moved is not None:
                change, new, delta = moved
                writes.append((pid, new))
                records.append(store.ChangeRecord(space, cid, pid, change, before, new))
                size_delta += delta
        self.report.evaluating(cid, profile_ids if narrowed is not None else [pid for pid, _, _ in computed])
        store.write_values(self.conn, cid, writes, self.now)
        self.due.set(cid, due)
        self._sizes[cid] = self._sizes.get(cid, 0) + size_delta
        self.report.values_changed += len(writes)
        return {pid for pid, _ in writes}

    def _stored_of(self, computation_id: int, profile_ids: Sequence[int]) -> store.Stored:
        """Per profile holding either, its stored value and next change time for the computation:
        as read with the job's scans (`prefetch`) or its backfill chunk (`hold_chunk`), the
        profiles they did not cover read now."""
        held = self._held.pop(computation_id, None)
        if held is None:
            return store.stored_of(self.conn, computation_id, profile_ids, self.due)
        covered, found = held
        missing = [pid for pid in profile_ids if pid not in covered]
        return {**found, **store.stored_of(self.conn, computation_id, missing, self.due)} if missing else found

    def _narrowed(self, comp: Compiled, plan: Plan, profile_ids: Sequence[int]
                  ) -> tuple[list[Row], store.Stored] | None:
        """A backfill chunk's results and stored state for only the profiles that can hold a
        value: those with events the plan reads, with traits it reads other than a bare
        profile's, or with something stored. The others would all get the result of a profile
        with nothing, so when that result stores nothing (an audience's `false`, a trait's
        null) they are left out: most profiles of a space have none of a definition's events,
        and a backfill would otherwise diff each of them for nothing. None: no narrowing."""
        if not self.backfilling or not profile_ids:
            return None
        traits = self._user_traits(comp, profile_ids)
        usual = self.registry.bare_traits(comp)
        empty = tuple(out.empty for out in plan.outputs)
        for bare in ({}, usual):
            if self._diff(comp, None, plan.result(empty, bare, self.now)) is not None:
                return None
        scanned = plan.found(self.conn, profile_ids, self.now, self._scans, self._shared.get(comp.id))
        self._shared[comp.id] = (frozenset(profile_ids), scanned)
        stored = self._stored_of(comp.id, profile_ids)
        wanted = [pid for pid in profile_ids
                  if pid in scanned or pid in stored or ((held := traits.get(pid)) and held != usual)]
        return self._compute(comp, wanted, traits=traits), stored

    def _account_values(self, comp: Compiled, plan: AccountPlan, profile_ids: Sequence[int]) -> list[Row]:
        """A compiled account audience, incrementally.

        Users' results are computed and stored (`member_results`, their next change times in
        `due`): the candidate users', and every user's whose next change time has come (so no
        account ever reads a result that is out of date, whatever the order in which due times
        are taken). The accounts evaluated are the candidate accounts and those of users whose
        results moved, each from its links and the stored results. A candidate account may have
        users with no results yet (a backfill, a new link, links moved by a merge), and during a
        backfill any account may: those are computed first. An account's own next change is
        None (its users' due times stand for it).
        """
        if self.apart is not None:
            return self._apart_account_values(comp, plan, profile_ids, self.apart)
        facts = self.facts(profile_ids)
        given = sorted(p for p in profile_ids if facts[p][1] == "accounts")
        users = {p for p in profile_ids if facts[p][1] == "users"}
        users.update(self.due.come(comp.id, self.now))
        # Users of these accounts whose touches wait for a later job of this tick are computed
        # now too, so that no account records a change that their touch would undo (whose
        # results move, their accounts join in turn).
        pending = store.has_touches(self.conn)
        if pending and given:
            users.update(store.members_with_touches(self.conn, given))
        reached: set[int] = set(given)
        done: set[int] = set()
        while users:
            done |= users
            moved = self._refresh_members(comp, plan, sorted(users))
            new = {a for found in store.accounts_of(self.conn, sorted(moved)).values() for a in found} - reached
            reached |= new
            users = set(store.members_with_touches(self.conn, sorted(new))) - done if pending and new else set()
        accounts = sorted(reached)
        if self.backfilling:
            return self._combined(comp, plan, accounts, self._backfill_flags(comp, plan, accounts))
        missing = store.missing_members(self.conn, comp.id, given if comp.status == "LIVE" else accounts)
        if missing:
            self._refresh_members(comp, plan, missing)
        return self._combined(comp, plan, accounts, store.member_flags(self.conn, comp.id, accounts,
                                                                        len(plan.quantified)))

    def _backfill_flags(self, comp: Compiled, plan: AccountPlan,
                        accounts: Sequence[int]) -> dict[tuple[int, int], tuple[bool, bool]]:
        """`store.member_flags` for a backfill chunk's accounts, most of whose users have no
        results yet: their users' stored results are read in one statement, those with none are
        computed (`_refresh_members`, against what was read), and the flags are made from both,
        rather than asking the database which users have none and then for the flags."""
        links = self.linked(accounts)
        users = sorted({user for linked in links.values() for user in linked})
        results = store.member_results(self.conn, comp.id, users)
        have = {user for _, user in results}
        missing = [user for user in users if user not in have]
        if missing:
            self._refresh_members(comp, plan, missing, results)
        flags = {}
        for account, linked in links.items():
            for operand in range(len(plan.quantified)):
                held = {results.get((operand, user)) for user in linked}
                flags[(account, operand)] = (1 in held, 0 in held)
        return flags

    def _combined(self, comp: Compiled, plan: AccountPlan, accounts: list[int],
                  flags: dict[tuple[int, int], tuple[bool, bool]]) -> list[Row]:
        """The accounts' values from their users' flags per operand and their own traits (an
        account's next change is None: its users' due times stand for it)."""
        traits = self._traits(comp.space_id, "accounts", accounts, comp.summary.traits)
        width = range(len(plan.quantified))
        return [
            (account, plan.combine([flags.get((account, q), (False, False)) for q in width],
                                   traits.get(account, {}), self.now), None)
            for account in accounts
        ]

    def _apart_account_values(self, comp: Compiled, plan: AccountPlan, profile_ids: Sequence[int],
                              apart: AccountsApart) -> list[Row]:
        """A compiled account audience whose accounts are kept apart from their users.

        In a tick, the users' results are computed and stored as on one node (the candidate
        users', and those whose next change time has come) and the accounts one node would
        evaluate here (the candidates, and the accounts of users whose results moved) are
        deferred: their value needs every shard's users. Combining, the accounts this file owns
        are evaluated from `apart.flags` and their own traits; their next change is None, as on
        one node.
        """
        facts = self.facts(profile_ids)
        if not self.combining:
            users = {p for p in profile_ids if p in facts and facts[p][1] == "users"}
            users.update(self.due.come(comp.id, self.now))
            moved = self._refresh_members(comp, plan, sorted(users)) if users else set()
            # Another shard's account (a reference row here) too: its shard combines it.
            reached = {p for p in profile_ids if p in facts and facts[p][1] == "accounts"}
            reached.update(a for found in store.accounts_of(self.conn, sorted(moved)).values() for a in found)
            apart.defer(self.conn, comp, sorted(reached), self.step)
            return []
        accounts = sorted(p for p in profile_ids if p in facts and facts[p][1] == "accounts" and facts[p][2] is None)
        return self._combined(comp, plan, accounts, apart.flags(self.conn, comp, accounts, len(plan.quantified)))

    @property
    def step(self) -> int:
        """Where in its tick this evaluation comes: each job evaluates its backfill chunk, then
        its live work (2 × job, plus 1 for live work)."""
        return 2 * self.job + (0 if self.backfilling else 1)

    def refresh_unresolved_members(self, comp: Compiled) -> None:
        """Computes the results of every linked user that has none yet for a compiled account
        audience (a new link, links moved by a merge, a definition being backfilled): what a
        shard counts for the accounts must cover every user it links."""
        assert isinstance(comp.plan, AccountPlan)
        missing = store.unresolved_members(self.conn, comp.id)
        if missing:
            self._refresh_members(comp, comp.plan, missing)

    def _refresh_members(self, comp: Compiled, plan: AccountPlan, users: Sequence[int],
                         known: dict[tuple[int, int], int] | None = None) -> set[int]:
        """Computes the users' results and stores those that moved (or are new); returns their
        users. `known`: the stored results already read (by (operand, user), covering these
        users), updated here with the new ones."""
        traits = self._traits(comp.space_id, "users", users, comp.summary.user_traits)
        results = plan.operands(self.conn, users, self.now, traits, self._scans,
                                [self._shared.get((comp.id, k)) for k in range(len(plan.quantified))])
        old = store.member_results(self.conn, comp.id, users) if known is None else known
        rows = []
        moved: set[int] = set()
        # A user's next change time under the audience is written with its results, so only a
        # user with stored results can hold one to clear; the others (every user of a backfill's
        # chunk, most without a time) are not looked up in `due` at all.
        stored = {user for _, user in old}
        due: dict[int, int | None] = {user: None for user in users if user in stored}
        for operand, found in enumerate(results):
            for user, (held, next_change) in found.items():
                if old.get((operand, user)) != held:
                    rows.append((operand, user, held))
                    moved.add(user)
                if next_change is not None:
                    before = due.get(user)
                    due[user] = next_change if before is None else min(before, next_change)
        store.write_member_results(self.conn, comp.id, rows)
        if known is not None:
            known.update(((operand, user), held) for operand, user, held in rows)
        self.due.set(comp.id, due)
        self.report.evaluating(comp.id, users)
        return moved

    @staticmethod
    def _diff(comp: Compiled, old: str | None, value: Any) -> tuple[str, str | None, int] | None:
        """A changed value's change kind, new stored text and size delta; None if unchanged."""
        if comp.kind == "audience":
            member, was = bool(value), old == "true"
            if member == was:
                return None
            return ("entered", "true", 1) if member else ("exited", "false", -1)
        new_text = None if value is None else canonical(value)
        if new_text == old:
            return None
        return "changed", new_text, (new_text is not None) - (old is not None)

    def _profiles(self, comp: Compiled, profile_ids: Sequence[int]) -> dict[int, ql.Profile]:
        """The interpreter's view of the profiles: only the events and traits the definition reads."""
        if comp.collection == "users":
            events = self._events(comp, profile_ids)
            traits = self._user_traits(comp, profile_ids)
            return {p: ql.Profile(events.get(p, ()), traits.get(p, {})) for p in profile_ids}
        members = store.users_of(self.conn, profile_ids)
        users = sorted({u for linked in members.values() for u in linked})
        events = self._events(comp, users)
        user_traits = self._traits(comp.space_id, "users", users, comp.summary.user_traits)
        traits = self._traits(comp.space_id, "accounts", profile_ids, comp.summary.traits)
        return {
            p: ql.Profile(
                (),
                traits.get(p, {}),
                [ql.Profile(events.get(u, ()), user_traits.get(u, {})) for u in members.get(p, ())],
            )
            for p in profile_ids
        }

    def _user_traits(self, comp: Compiled, profile_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The traits a user definition reads, including the account audiences it reads."""
        traits = self._traits(comp.space_id, "users", profile_ids, comp.summary.traits)
        if comp.account_keys:
            self._overlay_accounts(comp, profile_ids, traits)
        return traits

    def _events(self, comp: Compiled, profile_ids: Sequence[int]) -> dict[int, list[ql.Event]]:
        summary = comp.summary
        if not summary.reads_events or not profile_ids:
            return {}
        bounds = [
            b
            for b in (None if summary.lookback_ms is None else self.now - summary.lookback_ms, comp.event_floor_ms)
            if b is not None
        ]
        return store.events_of(self.conn, profile_ids, summary.events, max(bounds) if bounds else None)

    def _traits(
        self, space_id: int, collection: str, profile_ids: Sequence[int], read: Iterable[str]
    ) -> dict[int, dict[str, Any]]:
        """The traits a definition reads (`read`, as written: `address.city` needs `address`):
        custom traits, overlaid with the values of the space's computations of the collection.

        An audience reads `false` for a profile that was never a member, as for one that left.
        """
        keys = trait_names(read)
        if not profile_ids or not keys:
            return {}
        custom = self.registry.custom_names(space_id, collection, keys)
        traits = self._custom_traits(profile_ids, custom) if custom else {}
        comps = self.registry.named(space_id, collection, keys)
        if not comps:
            return traits
        return overlay(traits, comps, profile_ids, store.values_of(self.conn, [c.id for c in comps], profile_ids))

    def _custom_traits(self, profile_ids: Sequence[int], keys: frozenset[str]) -> dict[int, dict[str, Any]]:
        """`store.custom_traits` of the profiles for these keys, each (profile, key) read once a job."""
        unread = sorted({pid for key in keys for pid in profile_ids if pid not in self._custom.get(key, ((), {}))[0]})
        if unread:
            found = store.custom_traits(self.conn, unread, keys)
            for key in keys:
                read, values = self._custom.setdefault(key, (set(), {}))
                read.update(unread)
                values.update((pid, own[key]) for pid, own in found.items() if key in own)
        traits: dict[int, dict[str, Any]] = {}
        ordered = sorted(keys)
        for pid in profile_ids:
            own = {key: values[pid] for key in ordered if pid in (values := self._custom[key][1])}
            if own:
                traits[pid] = own
        return traits

    def _overlay_accounts(self, comp: Compiled, profile_ids: Sequence[int], traits: dict[int, dict[str, Any]]) -> None:
        """A user reads an account audience as true when any of its accounts is a member."""
        audiences = self.registry.named(comp.space_id, "accounts", comp.account_keys)
        accounts = store.accounts_of(self.conn, profile_ids)
        linked = sorted({a for found in accounts.values() for a in found})
        values = store.values_of(self.conn, [c.id for c in audiences], linked)
        for pid in profile_ids:
            own = traits.setdefault(pid, {})
            for audience in audiences:
                own[audience.key] = any(values.get((audience.id, a)) == "true" for a in accounts.get(pid, ()))

    def retire(self, profile_id: int) -> None:
        """A profile merged into another: its values leave (members exit), its due times go."""
        for cid, old in store.values_of_profile(self.conn, profile_id).items():
            comp = self.registry.by_id.get(cid)
            if comp is None:
                continue
            if comp.kind == "audience":
                if old == "true":
                    store.record_change(self.conn, comp.space_id, cid, profile_id, "exited", old, "false", self.now)
                    store.add_sizes(self.conn, {cid: -1}, self.now)
                    self.report.values_changed += 1
            else:
                store.record_change(self.conn, comp.space_id, cid, profile_id, "changed", old, None, self.now)
                store.add_sizes(self.conn, {cid: -1}, self.now)
                self.report.values_changed += 1
            store.write_value(self.conn, cid, profile_id, None, self.now)
        store.drop_profile_state(self.conn, profile_id)
        self.due.forget(profile_id)


def collect_work(
    conn: apsw.Connection,
    registry: Registry,
    evaluation: Evaluation,
    touches: dict[int, set[tuple[str, str]]],
    due: Iterable[tuple[int, int]],
) -> dict[int, set[int]]:
    """Which computation to evaluate for which profiles, from touches and due times."""
    work: dict[int, set[int]] = defaultdict(set)
    facts = evaluation.facts(set(touches) | {p for _, p in due})
    # Most touches of a job have the same few kinds: the profiles are gathered by kinds, and what
    # those move is worked out once per kinds and added for all of them at once.
    by_kinds: dict[tuple[int, str, frozenset[tuple[str, str]]], list[int]] = defaultdict(list)
    for pid, kinds in touches.items():
        if pid not in facts:
            continue
        space, collection, merged_into = facts[pid]
        if merged_into is not None:
            evaluation.retire(pid)
            continue
        by_kinds[(space, collection, frozenset(kinds))].append(pid)
    # Account computations a user's change can move, per user: their accounts are looked up at once.
    via_users: dict[int, list[int]] = {}
    for (space, collection, touched), pids in by_kinds.items():
        itself, through_accounts = _moved_by(registry, space, collection, touched)
        for cid in itself:
            work[cid].update(pids)
        if through_accounts:
            via_users.update(dict.fromkeys(pids, through_accounts))
    for user, accounts in (store.accounts_of(conn, sorted(via_users)) if via_users else {}).items():
        for cid in via_users[user]:
            work[cid].update(accounts)
    for cid, pid in due:
        if cid in registry.by_id and pid in facts and facts[pid][2] is None:
            work[cid].add(pid)
    return work


def complete_work(
    conn: apsw.Connection,
    registry: Registry,
    evaluation: Evaluation,
    now: int,
    touches: dict[int, set[tuple[str, str]]],
    due: list[tuple[int, int]],
    also: Collection[int] = (),
) -> dict[int, set[int]]:
    """`collect_work` for what a job took, with everything else waiting for the profiles it
    evaluates (and for `also`: a backfill chunk's profiles) taken too (when anything else
    waits): a touched profile's due times that have
    come, a due profile's touches, and, where the space has account definitions, the waiting
    work of their accounts' users and their users' accounts, which account audiences and the
    user definitions reading account values read. Every value a job's definitions read is then
    current at `now`; otherwise a definition reading two others could read one new value and one
    stale (a trait changed while a window edge waits for a later job) and record an entry and an
    exit that no evaluation at any one time gives. A tick's slice bounds what a job takes from
    the backlog, not this work that comes with it."""
    work = collect_work(conn, registry, evaluation, touches, due)
    if not store.has_touches(conn) and not evaluation.due.waiting(now):
        return work  # the job took all there is
    touches, due = dict(touches), list(due)
    due_taken = {pid for _, pid in due}
    # An account audience evaluated recomputes first every user whose time under it has come (see
    # `AccountPlan`): those users are evaluated too, whatever the job took.
    recomputed = {pid for comp in registry.by_id.values() if isinstance(comp.plan, AccountPlan)
                  for pid in evaluation.due.come(comp.id, now)}
    # Profiles of the work whose linked profiles' waiting work was asked for, and profiles whose
    # own waiting work was taken: a linked profile taken in is asked about in the next round, once
    # it is in the work (its own links may lead to more).
    asked: set[int] = set()
    taken: set[int] = set()
    besides = recomputed.union(also)  # asked about besides the work's profiles
    while True:
        new = ({pid for pids in work.values() for pid in pids} | besides) - asked
        asked.update(new)
        near = set(store.waiting_near(conn, sorted(new), now)) if registry.has_accounts else set()
        around = sorted((new | near) - taken)
        taken.update(around)
        more_touches = store.take_touches_of(conn, [pid for pid in around if pid not in touches])
        more_due = evaluation.due.take_of([pid for pid in around if pid not in due_taken], now)
        if not more_touches and not more_due:
            return work
        touches.update(more_touches)
        due.extend(more_due)
        work = collect_work(conn, registry, evaluation, touches, due)


def _moved_by(registry: Registry, space: int, collection: str,
              kinds: set[tuple[str, str]] | frozenset[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """What touches of these kinds on a profile of the collection move: the computations to
    evaluate for the profile itself, and those to evaluate for its accounts (a user's)."""
    itself: set[int] = set()
    through_accounts: set[int] = set()
    account_plans: set[int] = set()
    for kind, name in kinds:
        one = registry.moved_by(space, collection, kind, name)
        itself |= one.itself
        through_accounts |= one.through_accounts
        account_plans |= one.account_plans
    if account_plans and any(k in _LINKS_MOVE for k, _ in kinds):
        through_accounts |= account_plans  # its accounts may have changed: they are evaluated too
    return sorted(itself), sorted(through_accounts)


class Evaluator:
    """Runs ticks and backfills: on demand, and from a background loop on the system clock."""

    # Set by a cluster's shard: account audiences' users and accounts are kept apart (see AccountsApart).
    apart: AccountsApart | None = None
    # Set by the engine (`backfill_scan_ahead`): big backfills scan their next chunk in a second process.
    scan_ahead: ScanAhead | None = None

    def __init__(self, writer: Writer, readers: Readers, clock: Clock, tick_interval_ms: int,
                 history_retention_ms: int = 90 * 86_400_000, tick_budget_ms: int = TICK_BUDGET_MS,
                 tick_slice: int = 0) -> None:
        self._writer = writer
        # A tick takes no new job once it has run this long, and no more waiting work than the
        # slice (touched profiles plus due profiles; 0: no such bound), then ends and commits.
        self.tick_budget_ms = tick_budget_ms
        self.tick_slice = tick_slice
        # Where the walk over waiting profiles stands (see store.take_touches).
        self._touch_cursor = 0
        # Where the history retention's next batch starts (store/history.py `prune`): a job undone
        # after pruning leaves it moved on, and those records wait for the next pass.
        self._pruned_to = 0
        # What a live job's work has cost per item lately (milliseconds; see `job_size`).
        self._per_item_ms: float | None = None
        # While a job is done again after a definition failed in its backfill: how many of the
        # group's definitions (those before the failed one) it takes (see `_backfill_chunk`).
        self._backfill_cap: int | None = None
        self.history_retention_ms = history_retention_ms
        self._readers = readers
        self._clock = clock
        self._interval = tick_interval_ms / 1000
        self._registry: Registry | None = None
        self._registry_version = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_tick: TickReport | None = None
        self.on_change: list[Callable[[], None]] = []
        self.on_tick: list[Callable[[TickReport], None]] = []  # told of every finished tick (metrics)

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the background loop (not with a manual clock: tests tick on demand)."""
        if self._clock.manual:
            return
        self._thread = threading.Thread(target=self._loop, name="evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the background loop after its current job."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self.scan_ahead is not None:
            self.scan_ahead.close()

    def wake(self) -> None:
        """Says that work may be waiting (new touches, a new definition)."""
        self._wake.set()

    def _loop(self) -> None:
        last = 0.0
        while not self._stopping.is_set():
            self._wake.wait(timeout=self._sleep_seconds())
            self._wake.clear()
            if self._stopping.is_set():
                return
            # Coalesce bursts: at most one tick per interval.
            wait = self._interval - (time.monotonic() - last)
            if wait > 0 and self._stopping.wait(wait):
                return
            last = time.monotonic()
            try:
                report = self.run_tick(until_idle=True, bounded=True)
            except Exception:
                log.exception("tick_failed")
                continue
            if report.backlog:
                self._wake.set()  # the next tick takes the rest, after the interval

    def _sleep_seconds(self) -> float:
        due = store.next_due(self._readers.get())
        if due is None:
            return 1.0
        return max(0.0, min(1.0, (due - self._clock.now_ms()) / 1000))

    # -- ticks ---------------------------------------------------------------------------

    def registry(self, conn: apsw.Connection) -> Registry:
        """The current registry, rebuilt when a computation changed."""
        version = store.state_version(conn)
        if self._registry is None or version != self._registry_version:
            self._registry = Registry(store.computations(conn))
            self._registry_version = version
        return self._registry

    def run_tick(self, until_idle: bool = True, bounded: bool = False) -> TickReport:
        """Runs one tick at the clock's time: backfill chunks, then touched and due profiles.

        With `until_idle`, the tick goes on job after job while work waits; `bounded`, within
        its bounds: it starts no job once it has run `tick_budget_ms`, and takes at most
        `tick_slice` of the waiting work, leaving the rest to the next tick (`backlog`). Without
        `until_idle` it runs one job (bounded by the slice). Each job commits on its own, and the
        change listeners are told after each job that changed a value: under a steady stream a
        tick runs job after job until its budget is spent, and its first changes should not wait
        for its last. On the system clock each job also evaluates at the time it starts (never
        earlier than the job before): a job is then what a tick of one job would be, and events
        that arrived during the tick are not in its future. On the manual clock the whole tick
        is at the time set.
        """
        with self._lock:
            now = self._clock.now_ms()
            started = time.perf_counter()
            report = TickReport(now)
            while True:
                if report.jobs and not self._clock.manual:
                    now = max(now, self._clock.now_ms())
                room = self.tick_slice - report.taken if self.tick_slice and (bounded or not until_idle) else None
                asked = time.perf_counter()
                # Alone: the ingest requests queued meanwhile commit first, not after the job.
                job = self._writer.run(functools.partial(self._job, now=now, room=room, number=report.jobs + 1),
                                       alone=True, keeps_events=True)
                log.debug("tick_job", number=report.jobs + 1, taken=job.taken, profiles=len(job._profiles),
                          changed=job.values_changed, ms=round((time.perf_counter() - asked) * 1000, 2),
                          ran_ms=round(job.duration_ms, 2), cpu_ms=round(job.cpu_ms, 2))
                report.add(job)
                self.announce(job)
                if not (job.jobs or job.evaluated):
                    break
                spent = (time.perf_counter() - started) * 1000 >= self.tick_budget_ms
                full = room is not None and report.taken >= self.tick_slice
                if not until_idle or (bounded and (spent or full)):
                    # The job did work: whether any is left is read, not guessed (the job that
                    # switches a finished backfill live leaves none).
                    report.backlog = backlogs.anything_waiting(self._readers.get(), now)
                    break
            report.duration_ms = (time.perf_counter() - started) * 1000
            self.last_tick = report
        for observer in self.on_tick:
            observer(report)
        log.debug(
            "tick", profiles=report.profiles_evaluated, changed=report.values_changed, ms=round(report.duration_ms, 2),
            cpu_ms=round(report.cpu_ms, 2), backlog=report.backlog,
        )
        return report

    def announce(self, report: TickReport) -> None:
        """Tells the change listeners (sync) when a committed job changed values."""
        if report.values_changed:
            for listener in self.on_change:
                listener()

    def run_ticks(self, limit: int = 1000) -> list[TickReport]:
        """Runs bounded ticks until no work waits (at most `limit` of them)."""
        reports = [self.run_tick(until_idle=True, bounded=True)]
        while reports[-1].backlog and len(reports) < limit:
            reports.append(self.run_tick(until_idle=True, bounded=True))
        return reports

    def _job(self, conn: apsw.Connection, now: int, room: int | None = None, number: int = 1) -> TickReport:
        """One bounded piece of a tick: up to JOB_PROFILES touched profiles and as many due profiles
        (the oldest; on the system clock, `job_size` of each instead), and no more than `room` of
        the two together when given (what is left of a tick's slice); `jobs` is 1 when more work
        may be waiting. A definition failing in it is marked FAILED and the job done again
        without it (`undone_on_failure`)."""
        started, cpu = time.perf_counter(), time.thread_time()
        size = JOB_PROFILES if self._clock.manual else job_size(self._per_item_ms)
        try:
            report, cursor, backfilled = undone_on_failure(
                conn, now, functools.partial(self._attempt, conn, now, size, room, number))
        finally:
            self._backfill_cap = None
        if cursor is not None:
            self._touch_cursor = cursor
        # The job's own time, without its wait for the writer or its commit (the tick's is set apart).
        report.duration_ms = (time.perf_counter() - started) * 1000
        report.cpu_ms = (time.thread_time() - cpu) * 1000
        if report.taken and not backfilled:
            cost = report.duration_ms / report.taken
            self._per_item_ms = cost if self._per_item_ms is None else 0.7 * self._per_item_ms + 0.3 * cost
        return report

    def _attempt(self, conn: apsw.Connection, now: int, size: int, room: int | None, number: int
                 ) -> tuple[TickReport, int | None, bool]:
        """A job's work (see `_job`), `size` standing for JOB_PROFILES; where the touch cursor
        goes once it is done, and whether it backfilled."""
        registry = self.registry(conn)
        evaluation = Evaluation(conn, registry, now, apart=self.apart)
        evaluation.job = number
        evaluation.lender = self.scan_ahead
        mark = history_store.mark(conn)
        # A backfill advances a chunk per job, and live work is done in the same job, so that a
        # long backfill never holds back what new events change. The live work comes first, with
        # the waiting work of the chunk's profiles (and of those linked) when the definitions
        # backfilling read others: the chunk then reads their values as they are at `now`, not
        # values about to move in this job (an entry and an exit at one time).
        chunk = self._backfill_next(conn, registry)
        touches = store.take_touches(conn, size if room is None else min(size, room), self._touch_cursor)
        cursor = next(reversed(touches)) if touches else None
        due = evaluation.due.take(now, size if room is None else min(size, room - len(touches)))
        reading = chunk.profile_ids if chunk is not None and any(comp.deps for comp in chunk.group) else ()
        evaluation.run(complete_work(conn, registry, evaluation, now, touches, due, reading))
        backfilling = chunk is not None
        if chunk is not None:
            self._backfill_chunk(conn, registry, evaluation, chunk)
            evaluation.flush()
        evaluation.report.taken = len(touches) + len({pid for _, pid in due})
        evaluation.report.jobs = int(bool(backfilling or touches or due))
        self._keep_history(conn, mark, evaluation.report, now)
        return evaluation.report, cursor, backfilling

    def _keep_history(self, conn: apsw.Connection, mark: int, report: TickReport, now: int) -> None:
        """A job's end: its change records (those after `mark`) added to the size series, and a
        batch of records older than the history retention pruned, from where the last left off."""
        self._pruned_to = history_store.keep(conn, mark, report.values_changed > 0,
                                             now - self.history_retention_ms, self._pruned_to)

    def combine_accounts(self, conn: apsw.Connection, now: int, batches: Sequence[dict[int, set[int]]]) -> TickReport:
        """Evaluates compiled account audiences for accounts kept apart from their users (a
        cluster's shard, once every shard's counts for the tick at `now` are in), one batch of
        work after the other, with their change records and history, in the caller's job."""
        assert self.apart is not None

        def attempt() -> TickReport:
            evaluation = Evaluation(conn, self.registry(conn), now, apart=self.apart, combining=True)
            mark = history_store.mark(conn)
            for work in batches:
                evaluation.run(work)
            self._keep_history(conn, mark, evaluation.report, now)
            return evaluation.report

        return undone_on_failure(conn, now, attempt)

    def _backfill_next(self, conn: apsw.Connection, registry: Registry) -> _Chunk | None:
        """The next chunk of the first backfilling computation, and of the others at the same
        place (same space, collection and cursor: created or edited together), up to
        BACKFILL_PAIRS (definition, profile) pairs, in dependency order; None if none backfills.

        Definitions created together so share each job (its commit, the profiles' facts and
        traits, and the scans their queries have in common) instead of a job each per chunk.
        """
        cursors = store.backfilling(conn)
        waiting = [c for c in registry.order if c.id in cursors]
        if not waiting:
            if self.scan_ahead is not None:
                self.scan_ahead.rest()
            return None
        first = waiting[0]
        group = [first] if first.plan is None else [
            c for c in waiting
            if c.plan is not None and cursors[c.id] == cursors[first.id]
            and (c.space_id, c.collection) == (first.space_id, first.collection)
        ]
        group = _ready(group, registry, cursors)[:self._backfill_cap or _backfill_group(first)]
        size = _backfill_chunk(group)
        pids = store.profiles_after(conn, first.space_id, first.collection, cursors[first.id], size)
        return _Chunk(group, pids, size, cursors)

    def _backfill_chunk(self, conn: apsw.Connection, registry: Registry, evaluation: Evaluation,
                        chunk: _Chunk) -> None:
        """Evaluates a backfill chunk (`_backfill_next`) for its definitions."""
        group, pids, size, cursors = chunk.group, chunk.profile_ids, chunk.size, chunk.cursors
        scanned = self._scanned_ahead(conn, group, pids, size, evaluation.now)
        evaluation.prefetch({comp.id: pids for comp in group}, stored=False, scanned=scanned)
        evaluation.hold_chunk([comp.id for comp in group], pids)
        ids = {comp.id for comp in group}
        for position, comp in enumerate(group):
            try:
                self._backfill(conn, comp, pids, evaluation, _readers_will_see(comp, ids, cursors, registry, pids))
            except DefinitionFailed:
                # The job is done again without it (`undone_on_failure`), taking only the
                # definitions before it, which did not fail; those after it take the next job.
                # Otherwise each failure would evaluate all those before it again: a group of
                # 200 failing one after another, ~20,000 evaluations in one job.
                self._backfill_cap = position or None
                raise

    def _scanned_ahead(self, conn: apsw.Connection, group: Sequence[Compiled], pids: list[int], size: int,
                       now: int) -> dict[int, Part] | None:
        """The chunk's scan of the group's compiled user definitions if it was made ahead (and
        still holds: engine/scan_ahead.py), and the next chunk's asked for, to be scanned while
        this one is evaluated."""
        ahead = self.scan_ahead
        if ahead is None or not pids:
            return None
        scanning = [comp for comp in group if isinstance(comp.plan, Plan) and comp.plan.query is not None]
        if len(scanning) < 2:
            return None  # a lone plan scans on its own (`Plan.run`), as it does without the process
        specs = [spec_of(comp, None) for comp in scanning]
        generation = self._writer.generation
        found = ahead.take(specs, pids, now, generation)
        if len(pids) == size:
            # The next chunk; before the process runs, as far as it takes to see whether the
            # backfill has enough profiles to go to start it.
            wanted = size if ahead.running else max(size, ahead.min_profiles)
            following = store.profiles_after(conn, group[0].space_id, group[0].collection, pids[-1], wanted)
            if len(following) >= size and len(following) >= min(wanted, ahead.min_profiles):
                ahead.ask(specs, following[:size], now, generation)
        return None if found is None else {comp.id: part for comp, part in zip(scanning, found, strict=True)}

    @staticmethod
    def _backfill(conn: apsw.Connection, comp: Compiled, pids: list[int], evaluation: Evaluation,
                  seen: bool = False) -> None:
        """One chunk of one computation's backfill (none left: it goes LIVE); `seen` when every
        reader of its values will evaluate these profiles after it anyway, so that its changes
        need no touches (`_readers_will_see`)."""
        if not pids:
            store.finish_backfill(conn, comp.id, evaluation.now)
            versions_store.mark_backfilled(conn, comp.id, evaluation.now)
            log.info("backfill_finished", key=comp.key, collection=comp.collection, kind=comp.kind,
                     space_id=comp.space_id)
            return
        evaluation.backfilling = True
        try:
            changed = evaluation.guarded(comp, pids)
        finally:
            evaluation.backfilling = False
        # Dependents see these changes at the next job, through ordinary touches.
        if not seen:
            touch(conn, [(p, "computed", comp.key) for p in changed])
        store.advance_backfill(conn, comp.id, pids[-1], len(pids))


def spec_of(comp: Compiled, operand: int | None) -> Spec:
    """What the scan-ahead process is told of a compiled definition's plan (or, with `operand`, of
    that operand's plan of an account audience) to compile it again."""
    return (comp.definition.checked.definition.source, comp.kind, comp.collection, comp.definition.event_floor_ms,
            operand)


def _ready(group: Sequence[Compiled], registry: Registry, cursors: Mapping[int, Any]) -> list[Compiled]:
    """The definitions of a backfill group (in dependency order) that read no definition still
    backfilling outside it, directly or through others: a user audience reading an account
    audience created with it waits for that audience's backfill (which comes first in the
    order), rather than read its values before they are computed and then move again once they
    are, an entry and an exit within one tick."""
    kept: list[Compiled] = []
    taken: set[int] = set()
    waits: dict[int, bool] = {}

    def waiting(cid: int) -> bool:
        if cid not in waits:
            waits[cid] = False  # no cycles; this only guards the recursion
            waits[cid] = any((dep in cursors and dep not in taken) or waiting(dep)
                             for dep in registry.by_id[cid].deps if dep in registry.by_id)
        return waits[cid]

    for comp in group:
        waits.clear()
        if not waiting(comp.id):
            kept.append(comp)
            taken.add(comp.id)
    return kept


@dataclass(frozen=True)
class _Chunk:
    """A backfill job's chunk: the definitions backfilling it together, its profiles, the size
    asked for (fewer profiles: the backfill's last chunk), and every backfill's cursor."""

    group: list[Compiled]
    profile_ids: list[int]
    size: int
    cursors: dict[int, int]


def _backfill_group(first: Compiled) -> int:
    """How many compiled definitions at the same place of their backfill share a job: up to
    BACKFILL_PAIRS / BACKFILL_PROFILES user definitions, and twenty account audiences (each of
    whose jobs takes JOB_PROFILES accounts)."""
    return max(1, BACKFILL_PAIRS // (JOB_PROFILES if isinstance(first.plan, AccountPlan) else BACKFILL_PROFILES))


def _backfill_chunk(group: Sequence[Compiled]) -> int:
    """How many profiles a backfill job takes for definitions backfilling together: compiled
    user definitions (up to 200 of them) share BACKFILL_PAIRS pairs, never fewer than
    BACKFILL_PROFILES profiles (one alone takes 20,000 profiles a job, twenty 1,000, two hundred
    100: each job costs about the same, a lone definition's backfill costs a few jobs rather than
    a hundred at 100,000 users, and two hundred read each profile's events together); compiled
    account audiences, which read every user of each account, take JOB_PROFILES (and up to
    twenty of them share it); a definition the interpreter evaluates, a quarter (at least one:
    none would read as the end of the backfill)."""
    if any(comp.plan is None for comp in group):
        return max(1, JOB_PROFILES // 4)
    if any(isinstance(comp.plan, AccountPlan) for comp in group):
        return JOB_PROFILES
    return max(BACKFILL_PROFILES, BACKFILL_PAIRS // len(group))


def _readers_will_see(comp: Compiled, group: Collection[int], cursors: Mapping[int, int], registry: Registry,
                      pids: Sequence[int]) -> bool:
    """Whether every definition reading `comp` will evaluate the chunk's profiles after it
    without being touched: those backfilling in the same group run next in this job (a group is
    in dependency order), and those of the same collection whose backfill has not reached the
    chunk yet, or of the other collection not yet started, read its new values when they do.
    Then a backfill's changes need no touches: without this rule, 200 definitions created
    together would evaluate their readers a second time for every value they fill in, and a
    definition nothing reads would queue a touch per value for nothing."""
    if not pids:
        return True
    for reader in comp.dependents:
        if reader in group:
            continue
        cursor = cursors.get(reader)
        if cursor is None:
            return False  # live: only a touch tells it
        same = registry.by_id[reader].collection == comp.collection
        if (same and cursor >= pids[0]) or (not same and cursor > 0):
            return False
    return True
