"""The matching decision: which profile a message resolves to, and what changes to get there.

`plan_resolution` is Segment's "flat matching logic" with its rules
(`src/unify/identity-resolution/identity-resolution-onboarding.md`): drop blocked values;
no profile holds any id → create one; one does → attach; several do → merge them. When the
resulting profile would break a limit, the lowest-priority id of the message is dropped and
matching is tried again with the ids that remain. Violations are named as Segment's Profile
Insights names them (`src/unify/insights.md`).

The function is pure: the caller loads every profile holding any of the message's ids (after
following merges to the survivors) and applies the returned plan in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, TypeAlias

from .ids import MAX_ID_VALUE_CHARS, ExternalId
from .rules import IdentityRules, Limit, Period

ProfileId: TypeAlias = str | int
NO_MATCHING_IDENTIFIERS = "No matching identifiers on event"


class HeldId(NamedTuple):
    """One identifier of a stored profile and when it was added to that profile."""

    type: str
    value: str
    added_ms: int

    @property
    def external_id(self) -> ExternalId:
        """The identifier without its time."""
        return ExternalId(self.type, self.value)


@dataclass(frozen=True, slots=True)
class ProfileState:
    """What the planner needs to know of one stored (surviving) profile.

    Attributes:
        profile_id: the storage layer's id; opaque here.
        created_ms: when the profile was created; the oldest profile survives a merge.
        identifiers: every identifier the profile holds, including those of profiles merged
            into it, each with the time it was first added (to this profile or to the merged
            one: a merge moves identifiers without renewing them).
        merge_count: how many profiles have been merged into this one, counting the merges
            those had absorbed before (merging B, which absorbed C, into A adds 2 to A's).
    """

    profile_id: ProfileId
    created_ms: int
    identifiers: tuple[HeldId, ...] = ()
    merge_count: int = 0

    def held(self) -> dict[ExternalId, int]:
        """The identifiers as a map to the time each was added."""
        return {held.external_id: held.added_ms for held in self.identifiers}


class ViolationKind(StrEnum):
    """Why an incoming id was not used, in the words of Segment's Profile Insights."""

    ID_VALUE_BLOCKED = "ID value blocked"
    IDENTIFIER_VALUE_LIMIT_EXCEEDED = "Identifier value limit exceeded"
    IDENTIFIER_VALUE_TIME_LIMIT_EXCEEDED = "Identifier value time limit exceeded"
    PROFILE_MERGE_LIMIT_EXCEEDED = "Profile merge limit exceeded"
    IDENTIFIER_MAPPING_LIMIT_EXCEEDED = "Identifier mapping limit exceeded"

    @property
    def code(self) -> str:
        """The UPPER_SNAKE form, for logs and API reasons."""
        return self.name


@dataclass(frozen=True, slots=True)
class Violation:
    """One incoming id that was dropped, and why.

    Attributes:
        kind: the operator-facing name of the broken rule.
        dropped: the incoming id that was not used (for limits, the lowest-priority id of the
            message at that step, which need not be of the type whose limit broke).
        id_type: the type whose rule broke; None for the hard caps.
        profile_ids: the profiles the refused attempt would have touched, survivor first.
        detail: one sentence for operators.
    """

    kind: ViolationKind
    dropped: ExternalId
    id_type: str | None
    profile_ids: tuple[ProfileId, ...]
    detail: str


class Action(StrEnum):
    """What resolving the message does."""

    CREATE = "create"
    ATTACH = "attach"
    MERGE = "merge"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class ResolutionPlan:
    """The outcome of matching one message's ids.

    Attributes:
        action: CREATE a profile, ATTACH to one, MERGE several, or UNRESOLVED when no usable
            id is left; the event is then kept without a profile and reported as
            `NO_MATCHING_IDENTIFIERS`.
        target: the existing profile the message resolves to (the survivor of a merge); None
            for CREATE (the caller makes the new profile) and UNRESOLVED.
        merged: profiles to merge into `target`, in this order (oldest first).
        resolved_ids: the incoming ids the message resolved with, highest priority first.
        added: ids to add to the target (all of `resolved_ids` for CREATE), at the
            planning time.
        violations: dropped ids with the reason, in the order they were dropped (blocked
            values first).
    """

    action: Action
    target: ProfileId | None = None
    merged: tuple[ProfileId, ...] = ()
    resolved_ids: tuple[ExternalId, ...] = ()
    added: tuple[ExternalId, ...] = ()
    violations: tuple[Violation, ...] = ()

    @property
    def dropped(self) -> tuple[ExternalId, ...]:
        """The incoming ids not used, in the order they were dropped."""
        return tuple(violation.dropped for violation in self.violations)

    @property
    def error(self) -> str | None:
        """Segment's error text when the message resolved to no profile, else None."""
        return NO_MATCHING_IDENTIFIERS if self.action is Action.UNRESOLVED else None


def plan_resolution(
    incoming: Iterable[ExternalId],
    matches: Sequence[ProfileState],
    rules: IdentityRules,
    now_ms: int,
) -> ResolutionPlan:
    """Decide which profile one message's ids resolve to.

    Blocked values are dropped first. Then, with the remaining ids in priority order, the
    profiles holding any of them are found in `matches`: none → CREATE, one → ATTACH, several
    → MERGE into the oldest (smallest `created_ms`, then smallest id). If the resulting
    profile would break a rule, the lowest-priority remaining id is dropped and matching is
    tried again; the rules, checked in this order:

    - merges: the survivor's merge count after the merge exceeds `rules.max_merges`;
    - per-type limits: more values of a type counted by its `Limit` than the limit allows.
      Because `user_id` is `1 ever`, two user_ids never share a profile (merge protection);
    - identifiers: more than `rules.max_identifiers` on the resulting profile.

    A limit is only broken by growth: a profile already over a limit (the rules were
    tightened after it was built) still receives messages carrying ids it holds, and may
    absorb profiles that add nothing of the over-limit type.

    A single remaining id always resolves, so UNRESOLVED means every id was blocked (or the
    message had none).

    Args:
        incoming: the message's ids of one collection (duplicates are ignored).
        matches: every profile holding any incoming id, merges already followed; profiles
            holding none of the usable ids are ignored, so it may include extra ones.
        rules: the space's rules.
        now_ms: the planning time; new ids are added at it and period limits end at it.

    Returns:
        The plan.
    """
    candidates, violations = _unblocked(incoming, rules)
    while candidates:
        attempt = _attempt(candidates, matches, now_ms)
        broken = _broken_rule(attempt, rules, now_ms)
        if broken is None:
            return attempt.plan(tuple(violations))
        dropped = candidates.pop()
        violations.append(
            Violation(broken.kind, dropped, broken.id_type, attempt.profile_ids, broken.detail)
        )
    return ResolutionPlan(Action.UNRESOLVED, violations=tuple(violations))


def profile_after(
    plan: ResolutionPlan,
    matches: Sequence[ProfileState],
    *,
    new_profile_id: ProfileId,
    now_ms: int,
) -> ProfileState | None:
    """The target profile as it is once `plan` is applied: a reference for the storage layer.

    Args:
        plan: a plan made from `matches` at `now_ms`.
        matches: the profiles the plan was made from.
        new_profile_id: the id to give the profile a CREATE plan makes.
        now_ms: the planning time, when the added ids are added.

    Returns:
        The resulting profile, or None for an UNRESOLVED plan.
    """
    if plan.action is Action.UNRESOLVED:
        return None
    by_id = {profile.profile_id: profile for profile in matches}
    involved = [by_id[pid] for pid in (plan.target, *plan.merged) if pid is not None]
    held = _union(involved)
    held.update((external_id, now_ms) for external_id in plan.added)
    return ProfileState(
        profile_id=plan.target if plan.target is not None else new_profile_id,
        created_ms=involved[0].created_ms if involved else now_ms,
        identifiers=tuple(HeldId(i.type, i.value, held[i]) for i in sorted(held)),
        merge_count=_merge_count_after(involved),
    )


_ACTION_BY_MATCHES = {0: Action.CREATE, 1: Action.ATTACH}


@dataclass(frozen=True, slots=True)
class _Attempt:
    ids: tuple[ExternalId, ...]
    profiles: tuple[ProfileState, ...]  # survivor first
    held: dict[ExternalId, int]  # the resulting profile's identifiers
    added: tuple[ExternalId, ...]

    @property
    def profile_ids(self) -> tuple[ProfileId, ...]:
        return tuple(profile.profile_id for profile in self.profiles)

    def plan(self, violations: tuple[Violation, ...]) -> ResolutionPlan:
        ids = self.profile_ids
        return ResolutionPlan(
            action=_ACTION_BY_MATCHES.get(len(ids), Action.MERGE),
            target=ids[0] if ids else None,
            merged=ids[1:],
            resolved_ids=self.ids,
            added=self.added,
            violations=violations,
        )


@dataclass(frozen=True, slots=True)
class _Broken:
    kind: ViolationKind
    id_type: str | None
    detail: str


def _unblocked(
    incoming: Iterable[ExternalId], rules: IdentityRules
) -> tuple[list[ExternalId], list[Violation]]:
    kept: list[ExternalId] = []
    violations: list[Violation] = []
    for external_id in sorted(set(incoming), key=lambda i: (rules.rank(i.type), i.value)):
        why = blocked_by(external_id, rules)
        if why is None:
            kept.append(external_id)
            continue
        detail = f"{external_id.type} value blocked by {why}"
        violations.append(
            Violation(ViolationKind.ID_VALUE_BLOCKED, external_id, external_id.type, (), detail)
        )
    return kept, violations


def blocked_by(external_id: ExternalId, rules: IdentityRules) -> str | None:
    """What blocks an incoming id, or None: its length, else its type's blocked values."""
    if len(external_id.value) > MAX_ID_VALUE_CHARS:
        return f"its length ({len(external_id.value)} characters; at most {MAX_ID_VALUE_CHARS})"
    blocked = rules.rule_for(external_id.type).blocked
    return blocked.reason(external_id.value) if blocked.blocks(external_id.value) else None


def _attempt(
    ids: Sequence[ExternalId], matches: Sequence[ProfileState], now_ms: int
) -> _Attempt:
    wanted = set(ids)
    holders: dict[ProfileId, ProfileState] = {}
    for profile in matches:
        if any(held.external_id in wanted for held in profile.identifiers):
            holders.setdefault(profile.profile_id, profile)
    profiles = tuple(sorted(holders.values(), key=_age))
    held = _union(profiles)
    added = tuple(external_id for external_id in ids if external_id not in held)
    held.update((external_id, now_ms) for external_id in added)
    return _Attempt(tuple(ids), profiles, held, added)


def _age(profile: ProfileState) -> tuple[int, bool, ProfileId]:
    # The bool keeps int and str ids from being compared with each other.
    return (profile.created_ms, isinstance(profile.profile_id, str), profile.profile_id)


def _union(profiles: Iterable[ProfileState]) -> dict[ExternalId, int]:
    held: dict[ExternalId, int] = {}
    for profile in profiles:
        for external_id, added_ms in profile.held().items():
            held[external_id] = min(added_ms, held.get(external_id, added_ms))
    return held


def _merge_count_after(profiles: Sequence[ProfileState]) -> int:
    absorbed = sum(profile.merge_count + 1 for profile in profiles[1:])
    return (profiles[0].merge_count if profiles else 0) + absorbed


def _broken_rule(attempt: _Attempt, rules: IdentityRules, now_ms: int) -> _Broken | None:
    return (
        _merge_cap(attempt, rules)
        or _type_limits(attempt, rules, now_ms)
        or _identifier_cap(attempt, rules)
    )


def _merge_cap(attempt: _Attempt, rules: IdentityRules) -> _Broken | None:
    if len(attempt.profiles) < 2:
        return None
    after = _merge_count_after(attempt.profiles)
    if after <= rules.max_merges:
        return None
    detail = (
        f"merging {len(attempt.profiles)} profiles would make {after} merges,"
        f" over the cap of {rules.max_merges}"
    )
    return _Broken(ViolationKind.PROFILE_MERGE_LIMIT_EXCEEDED, None, detail)


def _type_limits(attempt: _Attempt, rules: IdentityRules, now_ms: int) -> _Broken | None:
    for id_type in sorted({external_id.type for external_id in attempt.held}, key=rules.rank):
        limit = rules.rule_for(id_type).limit
        count = _counted(attempt.held, id_type, limit, now_ms)
        before = max(
            (_counted(p.held(), id_type, limit, now_ms) for p in attempt.profiles), default=0
        )
        if count > limit.count and count > before:
            return _limit_broken(id_type, limit, count)
    return None


def _limit_broken(id_type: str, limit: Limit, count: int) -> _Broken:
    if limit.period is Period.EVER:
        kind = ViolationKind.IDENTIFIER_VALUE_LIMIT_EXCEEDED
        scope = ""
    else:
        kind = ViolationKind.IDENTIFIER_VALUE_TIME_LIMIT_EXCEEDED
        scope = f" added within the {limit.period.value} window"
    detail = f"the profile would hold {count} {id_type} values{scope}, over its limit of {limit}"
    return _Broken(kind, id_type, detail)


def _counted(held: dict[ExternalId, int], id_type: str, limit: Limit, now_ms: int) -> int:
    return sum(
        1 for external_id, added_ms in held.items()
        if external_id.type == id_type and limit.counts(added_ms, now_ms)
    )


def _identifier_cap(attempt: _Attempt, rules: IdentityRules) -> _Broken | None:
    total = len(attempt.held)
    before = max((len(profile.held()) for profile in attempt.profiles), default=0)
    if total <= rules.max_identifiers or total <= before:
        return None
    detail = f"the profile would hold {total} identifiers, over the cap of {rules.max_identifiers}"
    return _Broken(ViolationKind.IDENTIFIER_MAPPING_LIMIT_EXCEEDED, None, detail)
