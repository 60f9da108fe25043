"""ExplainMembership: why a profile has its value for an audience or computed trait.

The profile's data is read as the evaluator reads it (the events the definition names, from its
event floor on; custom traits overlaid with the values of the space's other definitions), as it
stood at the time asked: now, or an earlier time the evaluator can reproduce. The explanation
itself is `core.ql.explain`, the reference interpreter's, so its root is what a tick at that time
computes; `stored` is what the evaluator had stored then, and the two are equal unless the
profile was waiting for a tick (`pending`). A disabled definition is not evaluated: its stored
values stay as they were, so nothing is pending and no change is predicted for it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import apsw

from audiences_server.core import ql
from audiences_server.core.ql.explain import Explanation, explain
from audiences_server.core.ql.reasons import NextChange, iso, summary
from audiences_server.engine.clock import Clock
from audiences_server.engine.profile_reads import _find
from audiences_server.engine.registry import Compiled, Registry, overlay, trait_names
from audiences_server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from audiences_server.store import evaluation as store
from audiences_server.store import explain as explain_store
from audiences_server.store import history as history_store
from audiences_server.store import spaces
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow

DEFAULT_LIMIT, MAX_LIMIT = 10, 100
# Explanations running at once, how many more may wait for a turn, and how long one waits before
# it is refused; past those waiting, another is refused at once. An explanation of a profile of
# very many events takes seconds and its events' memory, and a waiting one holds an RPC thread:
# without both bounds a burst of them would take every RPC thread (the tracking and the reads of
# every space waiting behind it) and the server's memory.
AT_ONCE, WAITING, WAIT_S = 2, 2, 10.0
# What a disabled definition's next change is: none, whatever its events' edges (no tick runs it).
FROZEN = NextChange(None, (), None, None, (), True)


@dataclass(frozen=True)
class Explained:
    """An explanation with what the API shows around it.

    Attributes:
        row: The definition explained.
        profile_id: The profile (the survivor the address resolved to).
        at_ms: The time explained.
        explanation: The interpreter's explanation of the definition's value.
        value: The result, with the anonymous-users rule applied (what a tick at `at_ms` stores).
        stored: What the evaluator had stored for the profile at `at_ms`.
        pending: Whether the profile was waiting for a tick then, so `stored` differs from `value`
            (never for a disabled definition: no tick will change what it stores).
        excluded: Whether the anonymous-users rule keeps the profile out whatever the definition says.
        summary: When the value next changes with no new data, and why, in one sentence.
        messages: Message id and profile of each event read, by arrival number (`seq`).
        users: For an account, its linked users (profile ids) in the explanation's order.
        trait_classes: What each trait key read names: `audience`, `computed_trait`,
            `account_audience` (a user reading its accounts'), or `custom`.
    """

    row: ComputationRow
    profile_id: int
    at_ms: int
    explanation: Explanation
    value: Any
    stored: Any
    pending: bool
    excluded: bool
    summary: str
    messages: dict[int, tuple[str, int]] = field(default_factory=dict)
    users: list[int] = field(default_factory=list)
    trait_classes: dict[str, str] = field(default_factory=dict)


class Explainer:
    """Explains stored values, reading on a snapshot; changes nothing."""

    def __init__(self, readers: Readers, clock: Clock, retention_ms: int) -> None:
        self._readers = readers
        self._clock = clock
        self._retention_ms = retention_ms
        # Each space's definitions compiled, kept while none changes (the evaluator's own are its thread's).
        self._registries: dict[int, tuple[tuple[Any, ...], Registry]] = {}
        self._lock = threading.Lock()
        self._turns = threading.BoundedSemaphore(AT_ONCE)
        self._admitted = threading.BoundedSemaphore(AT_ONCE + WAITING)  # running or waiting

    def _compiled(self, conn: apsw.Connection, space_id: int) -> Registry:
        rows = store.computations(conn, space_id)
        version = tuple((r.computation_id, r.version, r.enabled, r.status) for r in rows)
        with self._lock:
            kept = self._registries.get(space_id)
            if kept is None or kept[0] != version:
                kept = self._registries[space_id] = (version, Registry(rows))
            return kept[1]

    def explain(self, space_id: int, collection: str, key: str, address: str, at_ms: int | None,
                limit: int = 0) -> Explained:
        """Explains the value of definition `key` for the profile at `address`, at `at_ms` (default now).

        Raises:
            ResourceExhausted: `AT_ONCE` explanations kept running for `WAIT_S` (`EXPLAIN_BUSY`).
        """
        if not 0 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"`max_evidence` must be 0 to {MAX_LIMIT}", reason="MAX_EVIDENCE_INVALID",
                                  violations=[FieldViolation("max_evidence", "out of range")])
        if not self._admitted.acquire(blocking=False):
            raise ResourceExhausted(f"{AT_ONCE} explanations are running and {WAITING} more waiting; retry shortly",
                                    reason="EXPLAIN_BUSY", metadata={"retry_after_s": "5"})
        try:
            if not self._turns.acquire(timeout=WAIT_S):
                raise ResourceExhausted(f"{AT_ONCE} explanations are running and none finished within {WAIT_S:g} s;"
                                        " retry shortly", reason="EXPLAIN_BUSY", metadata={"retry_after_s": "5"})
            try:
                return self._explain(space_id, collection, key, address, at_ms, limit)
            finally:
                self._turns.release()
        finally:
            self._admitted.release()

    def _explain(self, space_id: int, collection: str, key: str, address: str, at_ms: int | None,
                 limit: int) -> Explained:
        now = self._clock.now_ms()
        at = now if at_ms is None else at_ms
        if at > now:
            raise InvalidArgument("`explain_time` is after the evaluator's clock", reason="EXPLAIN_TIME_IN_FUTURE",
                                  violations=[FieldViolation("explain_time", "in the future")])
        with self._readers.snapshot() as conn:
            row = store.computation(conn, space_id, collection, key)
            if row is None:
                raise NotFound(f"definition {key!r} not found in {collection}", reason="NOT_FOUND")
            pid, _ = _find(conn, space_id, collection, address)
            registry = self._compiled(conn, space_id)
            comp = registry.by_id.get(row.computation_id) or Compiled.of_row(row)
            return _Reading(conn, registry, comp, at, now).explain(row, pid, limit or DEFAULT_LIMIT, self._retention_ms)


class _Reading:
    """One explanation's reads, on one snapshot."""

    def __init__(self, conn: apsw.Connection, registry: Registry, comp: Compiled, at_ms: int, now_ms: int) -> None:
        self.conn, self.registry, self.comp = conn, registry, comp
        self.at, self.now = at_ms, now_ms
        self.space = comp.space_id
        self.messages: dict[int, tuple[str, int]] = {}

    def explain(self, row: ComputationRow, pid: int, limit: int, retention_ms: int) -> Explained:
        comp = self.comp
        users = store.users_of(self.conn, [pid]).get(pid, []) if comp.collection == "accounts" else []
        if self.at < self.now:
            self._check_reproducible(pid, users, retention_ms)
        profile = self._account(pid, users) if comp.collection == "accounts" else self._user(pid)
        explained = explain(comp.checked, profile, self.at, limit=limit, user_ids=users)
        excluded = (comp.kind == "audience" and comp.collection == "users" and not comp.include_anonymous
                    and pid not in explain_store.known_at(self.conn, [pid], self.at))
        value = False if excluded else explained.value
        stored = self._stored(pid)
        if row.enabled:
            pending, said = _canonical(value) != _canonical(stored), summary(comp.kind, explained.next, excluded)
        else:
            # DISABLED: its values stay as they were (docs/evaluator.md): what a tick stores is the
            # stored value, whatever the tree (kept, for the why) evaluates to now.
            explained, pending, value = replace(explained, next=FROZEN), False, stored
            said = "stays as stored: the definition is disabled, so its values are frozen until it is enabled again"
        return Explained(row, pid, self.at, explained, value, stored, pending, excluded, said, self.messages, users,
                         self._trait_classes())

    def _check_reproducible(self, pid: int, users: list[int], retention_ms: int) -> None:
        """Refuses an earlier time whose inputs cannot be read back as they were."""
        comp, conn, at = self.comp, self.conn, self.at
        backfilled = explain_store.version_backfilled(conn, comp.id)
        reads_links = comp.collection == "accounts" or bool(comp.account_keys)
        causes = [
            (at < self.now - retention_ms, "it is older than the history kept"),
            (backfilled is None or at < backfilled, "the definition's current version was not live yet"),
            (explain_store.merged_since(conn, [pid, *users], at), "a profile was merged into it since"),
            (at < explain_store.created_at(conn, pid), "the profile had not been seen yet then"),
            (explain_store.traits_written_since(conn, [pid], trait_names(comp.summary.traits), at)
             or explain_store.traits_written_since(conn, users, trait_names(comp.summary.user_traits), at),
             "a trait it reads was written since"),
            (reads_links and _links_moved(conn, comp, pid, at), "its account links changed since"),
            # A deletion removes links without a group call, and the deleted profile's own calls
            # with them: which links it removed is gone, so any since refuses.
            (reads_links and explain_store.deletions_since(conn, comp.space_id, at),
             "a profile of the space was deleted since, and a deletion removes account links"),
            (self._events_swept(), "events it read then may have been deleted by the space's event retention"),
        ]
        for failed, cause in causes:
            if failed:
                raise FailedPrecondition(f"cannot explain {iso(at)}: {cause}", reason="EXPLAIN_TIME_NOT_REPRODUCIBLE",
                                         metadata={"cause": cause})

    def _events_swept(self) -> bool:
        """Whether events the definition read at the explained time may be gone: the space keeps
        events `event_retention_ms`, and the oldest the definition reads then (its lookback before
        that time, or every event for a stream without a window) is older than that now."""
        summary = self.comp.summary
        if not summary.reads_events:
            return False
        space = spaces.space_by_id(self.conn, self.space)
        kept = None if space is None else space.event_retention_ms
        if kept is None:
            return False
        return summary.lookback_ms is None or self.at - summary.lookback_ms < self.now - kept

    def _user(self, pid: int) -> ql.Profile:
        events = self._events([pid])
        traits = self._traits("users", [pid], self.comp.summary.traits)
        if self.comp.account_keys:
            self._overlay_accounts(pid, traits.setdefault(pid, {}))
        return ql.Profile(events.get(pid, ()), traits.get(pid, {}))

    def _account(self, pid: int, users: list[int]) -> ql.Profile:
        events = self._events(users)
        user_traits = self._traits("users", users, self.comp.summary.user_traits)
        traits = self._traits("accounts", [pid], self.comp.summary.traits)
        linked = [ql.Profile(events.get(u, ()), user_traits.get(u, {})) for u in users]
        return ql.Profile((), traits.get(pid, {}), linked)

    def _events(self, pids: Sequence[int]) -> dict[int, list[ql.Event]]:
        summary = self.comp.summary
        if not summary.reads_events or not pids:
            return {}
        events, messages = explain_store.events_at(self.conn, pids, summary.events, self.comp.event_floor_ms, self.at)
        self.messages.update(messages)
        return events

    def _values(self, comps: Sequence[Compiled], pids: Sequence[int]) -> dict[tuple[int, int], str | None]:
        """Stored values of definitions for profiles as they were at the time explained."""
        values: dict[tuple[int, int], str | None] = dict(store.values_of(self.conn, [c.id for c in comps], pids))
        if self.at < self.now:
            values.update(history_store.values_at(self.conn, [c.id for c in comps], pids, self.at))
        return values

    def _traits(self, collection: str, pids: Sequence[int], read: Iterable[str]) -> dict[int, dict[str, Any]]:
        """Custom traits overlaid with the space's definitions' values, as the evaluator reads them."""
        keys = trait_names(read)
        if not pids or not keys:
            return {}
        custom = self.registry.custom_names(self.space, collection, keys)
        traits = store.custom_traits(self.conn, pids, custom) if custom else {}
        comps = self.registry.named(self.space, collection, keys)
        return overlay(traits, comps, pids, self._values(comps, pids))

    def _overlay_accounts(self, pid: int, own: dict[str, Any]) -> None:
        """A user reads an account audience as true when any of its accounts is a member."""
        audiences = self.registry.named(self.space, "accounts", self.comp.account_keys)
        accounts = store.accounts_of(self.conn, [pid]).get(pid, [])
        values = self._values(audiences, accounts)
        for audience in audiences:
            own[audience.key] = any(values.get((audience.id, a)) == "true" for a in accounts)

    def _stored(self, pid: int) -> Any:
        raw = self._values([self.comp], [pid]).get((self.comp.id, pid))
        if self.comp.kind == "audience":
            return raw == "true"
        return None if raw is None else json.loads(raw)

    def _trait_classes(self) -> dict[str, str]:
        comp = self.comp
        named = {(c.collection, c.key): c.kind for c in self.registry.of_space(self.space)}
        found = {}
        for key in trait_names(comp.summary.traits):
            kind = named.get((comp.collection, key))
            found[key] = kind or ("account_audience" if key in comp.account_keys else "custom")
        for key in trait_names(comp.summary.user_traits):
            found.setdefault(key, named.get(("users", key), "custom"))
        return found


def _links_moved(conn: apsw.Connection, comp: Compiled, pid: int, at_ms: int) -> bool:
    if comp.collection == "accounts":
        return explain_store.links_changed_since(conn, pid, at_ms)
    return explain_store.group_calls_since(conn, [pid], at_ms)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
