"""Properties of identity resolution over random messages, rules and clocks (hypothesis).

A tiny in-memory identity graph applies each plan the way the storage layer must: merged
profiles disappear into the target, added ids join it at the planning time.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.core.identity import (
    Action,
    ExternalId,
    HeldId,
    IdentityRules,
    IdTypeRule,
    Limit,
    Period,
    ProfileState,
    ResolutionPlan,
    plan_resolution,
    profile_after,
)

DAY = 24 * 60 * 60 * 1000
POOL = [
    *(ExternalId("user_id", f"u{i}") for i in range(3)),
    *(ExternalId("email", f"e{i}") for i in range(3)),
    *(ExternalId("anonymous_id", f"a{i}") for i in range(4)),
    *(ExternalId("ios.id", f"d{i}") for i in range(2)),
    ExternalId("anonymous_id", "null"),
    ExternalId("user_id", "0"),
]
TYPES = ("email", "anonymous_id", "ios.id")
# Device and anonymous ids are drawn more often than user_ids, so that merges happen.
WEIGHTED_POOL = POOL + [i for i in POOL if i.type in TYPES] * 2


@st.composite
def rule_sets(draw: st.DrawFn) -> IdentityRules:
    priorities = draw(st.permutations([2, 3, 4, None, None]))
    types = {"user_id": IdTypeRule(limit=Limit(1), priority=1)}
    for id_type, priority in zip(TYPES, priorities, strict=False):
        limit = Limit(draw(st.integers(1, 4)), draw(st.sampled_from(list(Period))))
        types[id_type] = IdTypeRule(limit=limit, priority=priority)
    return IdentityRules(
        types=types,
        max_merges=draw(st.integers(1, 4)),
        max_identifiers=draw(st.integers(2, 12)),
    )


messages = st.lists(
    st.tuples(st.lists(st.sampled_from(WEIGHTED_POOL), min_size=1, max_size=4), st.integers(0, 10)),
    max_size=25,
)


class Graph:
    """Profiles by id; each identifier belongs to at most one profile."""

    def __init__(self) -> None:
        self.profiles: dict[str, ProfileState] = {}

    def matches(self, ids: list[ExternalId]) -> list[ProfileState]:
        wanted = set(ids)
        return [p for p in self.profiles.values() if wanted & set(p.held())]

    def apply(self, plan: ResolutionPlan, matches: list[ProfileState], now: int) -> None:
        after = profile_after(plan, matches, new_profile_id=f"p{len(self.profiles)}_{now}",
                              now_ms=now)
        for merged in plan.merged:
            del self.profiles[str(merged)]
        if after is not None:
            self.profiles[str(after.profile_id)] = after


def counted(profile: ProfileState, id_type: str, limit: Limit, now: int) -> int:
    return sum(1 for h in profile.identifiers if h.type == id_type and limit.counts(h.added_ms, now))


def assert_within_rules(graph: Graph, rules: IdentityRules, now: int) -> None:
    owners = Counter(h.external_id for p in graph.profiles.values() for h in p.identifiers)
    assert all(n == 1 for n in owners.values()), "an identifier is on two profiles"
    for profile in graph.profiles.values():
        assert sum(1 for h in profile.identifiers if h.type == "user_id") <= 1
        for id_type in {h.type for h in profile.identifiers}:
            limit = rules.rule_for(id_type).limit
            assert counted(profile, id_type, limit, now) <= limit.count
        assert profile.merge_count <= rules.max_merges
        assert len(profile.identifiers) <= rules.max_identifiers


@settings(max_examples=300, deadline=None)
@given(rule_sets(), messages)
def test_plans_never_break_the_rules(rules: IdentityRules, stream: list[tuple[list[ExternalId], int]]) -> None:
    """Whatever the messages, no profile ever holds two user_ids, exceeds a per-type limit
    (over its period), a merge cap or an identifier cap, and no id is on two profiles."""
    graph, now = Graph(), 0
    for ids, days_later in stream:
        now += days_later * DAY + 1
        matches = graph.matches(ids)
        plan = plan_resolution(ids, matches, rules, now)
        assert set(plan.resolved_ids) | set(plan.dropped) == set(ids)
        assert not set(plan.resolved_ids) & set(plan.dropped)
        graph.apply(plan, matches, now)
        assert_within_rules(graph, rules, now)
        if plan.action is not Action.UNRESOLVED:
            target = next(p for p in graph.profiles.values() if set(plan.resolved_ids) <= set(p.held()))
            assert plan.target in (None, target.profile_id)


held_ids = st.builds(
    HeldId, st.sampled_from(["user_id", *TYPES]), st.sampled_from("abcdef"), st.integers(0, 30 * DAY)
)


@st.composite
def arbitrary_profiles(draw: st.DrawFn) -> list[ProfileState]:
    """Profiles in any state, even over the rules (as after the rules were tightened)."""
    all_ids = draw(st.lists(held_ids, max_size=14, unique_by=lambda h: (h.type, h.value)))
    owner = draw(st.lists(st.integers(0, 3), min_size=len(all_ids), max_size=len(all_ids)))
    return [
        ProfileState(f"p{n}", draw(st.integers(0, 5)),
                     tuple(h for h, o in zip(all_ids, owner, strict=True) if o == n),
                     draw(st.integers(0, 5)))
        for n in range(4)
    ]


@settings(max_examples=300, deadline=None)
@given(rule_sets(), arbitrary_profiles(), st.lists(held_ids, max_size=6))
def test_a_plan_never_makes_a_profile_worse(
    rules: IdentityRules, profiles: list[ProfileState], incoming_held: list[HeldId]
) -> None:
    """From any stored state, the planned profile holds no more user_ids, values of a type, or
    identifiers than both the rules and the worst profile it was built from allow."""
    now = 30 * DAY
    incoming = [h.external_id for h in incoming_held]
    plan = plan_resolution(incoming, profiles, rules, now)
    after = profile_after(plan, profiles, new_profile_id="new", now_ms=now)
    if after is None:
        return
    involved = [p for p in profiles if p.profile_id in (plan.target, *plan.merged)]
    for id_type in {"user_id", *TYPES}:
        limit = rules.rule_for(id_type).limit
        worst = max((counted(p, id_type, limit, now) for p in involved), default=0)
        assert counted(after, id_type, limit, now) <= max(limit.count, worst)
    worst_size = max((len(p.identifiers) for p in involved), default=0)
    assert len(after.identifiers) <= max(rules.max_identifiers, worst_size)
    if plan.merged:
        assert after.merge_count <= rules.max_merges
