"""Identity resolution of accepted calls, run inside the ingest transaction.

For each call, in arrival order: extract its ids, plan with the pure planner, apply the plan
(create, attach or merge), apply identify/group traits by last-write-wins, link users to
accounts, and note what changed for the evaluator. Because it runs in the same transaction as
the insert, a Profiles read after the ingest RPC returns sees the result.

Which profile holds each id is asked once per batch (one query per id type), then kept in a
map that the resolver updates as it adds identifiers and merges profiles, so that it always
says what the database would. A call whose ids are all on one profile already (a known user's
next event) needs no planning and no query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apsw

from audiences_server.core.identity import (
    ACCOUNTS,
    USERS,
    Action,
    ExternalId,
    ExtractedIds,
    apply_traits,
    extract_external_ids,
    merge_traits_into,
    plan_resolution,
    with_configured_ids,
)
from audiences_server.core.tracking import Call, unlinks
from audiences_server.store import deletions as deletion_store
from audiences_server.store import identity as store
from audiences_server.store.evaluation import record_link_change
from audiences_server.store.identity import Touch


class Resolver:
    """Resolves the calls of one ingest job; `finish()` writes what it gathered."""

    def __init__(self, conn: apsw.Connection, space_id: int, now_ms: int) -> None:
        self._conn = conn
        self._space = space_id
        self._now = now_ms
        self._rules = store.rules(conn, space_id)
        self._touches: set[Touch] = set()
        self._received: dict[int, tuple[int, int]] = {}
        # Per collection: id → the profile holding it, or None when no profile does.
        self._holders: dict[str, dict[ExternalId, int | None]] = {USERS: {}, ACCOUNTS: {}}
        self._merged_into: dict[int | None, int] = {}

    def resolve_all(self, calls: Sequence[Call], first_seq: int,
                    extracted: Sequence[ExtractedIds] | None = None) -> list[int | None]:
        """Resolves calls in order, the n-th with arrival number `first_seq + n`; returns the
        user profile each one's event belongs to, if any.

        `extracted` are the calls' `extract_external_ids`, when the caller has them already.
        """
        if extracted is None:
            extracted = [extract_external_ids(call.message) for call in calls]
        sources = self._rules.sources
        if sources:
            # Keys the rules name are read here, where the rules are known; most spaces have none.
            extracted = [with_configured_ids(ids, call.message, sources) for call, ids in zip(calls, extracted,
                                                                                              strict=True)]
        pairs = list(zip(calls, extracted, strict=True))
        self._look_up(USERS, {i for _, ids in pairs for i in ids.users})
        self._look_up(ACCOUNTS, {i for call, ids in pairs if call.type == "group" for i in ids.accounts})
        profiles = [self._resolve_call(call, ids, first_seq + n) for n, (call, ids) in enumerate(pairs)]
        # The events are inserted after the whole batch is resolved, so a profile merged away by a
        # later call no longer holds them for `move_profile` to move: they go to its survivor.
        return [self._survivor(p) for p in profiles] if self._merged_into else profiles

    def resolve(self, call: Call, seq: int) -> int | None:
        """Resolves one call; returns the user profile its event belongs to, if any."""
        return self.resolve_all([call], seq)[0]

    def _survivor(self, profile_id: int | None) -> int | None:
        while profile_id in self._merged_into:
            profile_id = self._merged_into[profile_id]
        return profile_id

    def _resolve_call(self, call: Call, ids: ExtractedIds, seq: int) -> int | None:
        user = self._resolve(USERS, ids.users, call, seq)
        if user is not None:
            self._note(user, call)
            if call.event is not None:
                self._touches.add((user, "event", call.event))
            if call.type == "identify":
                self._set_traits(user, call, seq)
        if call.type == "group" and unlinks(call):
            self._unlink(user, ids.accounts, call)
        elif call.type == "group":
            account = self._resolve(ACCOUNTS, ids.accounts, call, seq)
            if account is not None and self._owns(account):
                self._note(account, call)
                self._set_traits(account, call, seq)
            if account is not None and user is not None:
                store.adopt_unlinks(self._conn, user, account)
                if store.link(self._conn, user, account, call.timestamp_ms):
                    self._linked(user, account, "user_linked")
        return user

    def _owns(self, profile_id: int) -> bool:
        """Whether this store keeps the profile's traits and messages: always on one node; a
        cluster's shard keeps only those of its own partition (docs/scaling.md)."""
        return True

    def _unlink(self, user: int | None, ids: Sequence[ExternalId], call: Call) -> None:
        """A group call that removes the link: the account is looked up, never created, and
        its traits are left alone. A removal naming an account no profile holds yet is kept by
        the account's identifiers, for when a group call makes it (`store.adopt_unlinks`)."""
        holders = set(self._held(ACCOUNTS, ids).values())
        if user is not None and not holders and ids:
            store.remember_unlink(self._conn, user, ids, call.timestamp_ms)
        if user is None or len(holders) != 1:
            return
        account = holders.pop()
        if store.unlink(self._conn, user, account, call.timestamp_ms):
            self._linked(user, account, "user_unlinked")

    def _linked(self, user: int, account: int, change: str) -> None:
        self._touches.update({(user, "link", ""), (account, "link", "")})
        record_link_change(self._conn, account, user, change, self._now)

    def finish(self) -> None:
        """Writes message times and the evaluator's touches."""
        store.note_messages(self._conn, self._received, self._now)
        store.touch(self._conn, self._touches)

    def _note(self, profile_id: int, call: Call) -> None:
        # First and last message are event times (ProfileMetadata's contract), not arrival times.
        self._widen(profile_id, call.timestamp_ms, call.timestamp_ms)

    def _widen(self, profile_id: int, first: int, last: int) -> None:
        known_first, known_last = self._received.get(profile_id, (first, last))
        self._received[profile_id] = (min(known_first, first), max(known_last, last))

    def _look_up(self, collection: str, ids: Iterable[ExternalId]) -> None:
        known = self._holders[collection]
        missing = [i for i in ids if i not in known]
        if missing:
            found = store.find_holders(self._conn, self._space, collection, missing)
            known.update((i, found.get(i)) for i in missing)

    def _held(self, collection: str, ids: Sequence[ExternalId]) -> dict[ExternalId, int]:
        """Which profile holds each of the ids that is held, from the map."""
        self._look_up(collection, ids)  # asks only for ids the map has not seen
        known = self._holders[collection]
        return {i: holder for i in ids if (holder := known[i]) is not None}

    def _resolve(self, collection: str, ids: Sequence[ExternalId], call: Call, seq: int) -> int | None:
        if len(ids) == 1 and (holder := self._holders[collection].get(ids[0])) is not None:
            return holder  # the commonest case of the one below, without building a map
        holders = self._held(collection, ids)
        if ids and len(holders) == len(ids) and len(set(holders.values())) == 1:
            # Every id is already on one profile: nothing to add, so no rule can break. The
            # common case of a known user's next event skips the planner.
            return next(iter(holders.values()))
        if len(set(holders.values())) > 1 and (deleting := deletion_store.being_deleted(self._conn, holders.values())):
            # A profile being deleted merges with no other (docs/operations.md): the call is its
            # own (and goes with it), and the identifiers other profiles hold stay theirs.
            kept = min(deleting)
            ids = [i for i in ids if holders.get(i, kept) == kept]
            holders = {i: holder for i, holder in holders.items() if holder == kept}
            if len(holders) == len(ids):
                return kept
        states = store.load_states(self._conn, set(holders.values()))
        plan = plan_resolution(list(ids), states, self._rules, self._now)
        for violation in plan.violations:
            store.record_violation(self._conn, self._space, violation, call.message_id, self._now)
        if plan.action is Action.UNRESOLVED:
            return None
        if plan.action is Action.CREATE:
            target = store.create_profile(self._conn, self._space, collection, self._now)
            self._touches.add((target, "profile", "created"))
        else:
            target = int(plan.target)  # type: ignore[arg-type]
        for merged in plan.merged:
            self._merge(target, int(merged), call.message_id)
        if plan.added:
            store.add_identifiers(self._conn, self._space, collection, target, plan.added, self._now, seq)
            self._holders[collection].update(dict.fromkeys(plan.added, target))
            self._touches.add((target, "identifier", ""))
        return target

    def _merge(self, survivor: int, merged: int, message_id: str) -> None:
        changed = merge_profiles(self._conn, self._space, survivor, merged, message_id, self._now)
        self._merged_into[merged] = survivor
        for known in self._holders.values():
            # The merged profile's identifiers are the survivor's now.
            known.update({i: survivor for i, holder in known.items() if holder == merged})
        self._touches.update((survivor, "trait", key) for key in changed)
        self._touches.update({(survivor, "merge", ""), (merged, "merge", "")})
        if merged in self._received:
            # Widen, not replace: the survivor may have had messages earlier in this job.
            self._widen(survivor, *self._received.pop(merged))

    def _set_traits(self, profile_id: int, call: Call, seq: int) -> None:
        incoming = call.message.get("traits") or {}
        if not incoming:
            return
        current = store.load_traits(self._conn, profile_id, incoming)
        update = apply_traits(current, incoming, call.timestamp_ms, seq)
        store.write_traits(self._conn, profile_id, current, update.written)
        self._touches.update((profile_id, "trait", key) for key in update.changed)


def merge_profiles(conn: apsw.Connection, space_id: int, survivor: int, merged: int, message_id: str,
                   now_ms: int) -> list[str]:
    """Merges one stored profile into another (traits by last-write-wins, then everything else
    moved); returns the survivor's trait keys whose value changed."""
    kept = store.load_traits(conn, survivor)
    update = merge_traits_into(kept, store.load_traits(conn, merged))
    store.write_traits(conn, survivor, kept, update.written)
    gained = store.links_gained(conn, survivor, merged)
    for user, account in store.move_profile(conn, space_id, survivor, merged, message_id, now_ms):
        # A link one profile had and the other's later removal ends, as it would have on one profile.
        store.touch(conn, [(user, "link", ""), (account, "link", "")])
        record_link_change(conn, account, user, "user_unlinked", now_ms)
    for user, account in store.still_linked(conn, gained):
        # A link the survivor takes over from the merged profile: per-user calls of the account's
        # audiences reach the survivor as they would had it been linked itself.
        store.touch(conn, [(user, "link", ""), (account, "link", "")])
        record_link_change(conn, account, user, "user_linked", now_ms)
    return list(update.changed)
