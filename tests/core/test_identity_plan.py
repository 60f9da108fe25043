"""The matching decision: create, attach, merge, and dropping ids that would break a rule."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from audiences_server.core.identity import (
    NO_MATCHING_IDENTIFIERS,
    Action,
    ExternalId,
    HeldId,
    IdentityRules,
    IdTypeRule,
    Limit,
    Period,
    ProfileState,
    ResolutionPlan,
    ViolationKind,
    plan_resolution,
    profile_after,
)

DAY = 24 * 60 * 60 * 1000
NOW = 10_000 * DAY
DEFAULT = IdentityRules.defaults()
BLOCKED = ViolationKind.ID_VALUE_BLOCKED
VALUE_LIMIT = ViolationKind.IDENTIFIER_VALUE_LIMIT_EXCEEDED
TIME_LIMIT = ViolationKind.IDENTIFIER_VALUE_TIME_LIMIT_EXCEEDED
MERGE_LIMIT = ViolationKind.PROFILE_MERGE_LIMIT_EXCEEDED
MAPPING_LIMIT = ViolationKind.IDENTIFIER_MAPPING_LIMIT_EXCEEDED


def xid(text: str) -> ExternalId:
    return ExternalId.parse(text)


def prof(
    pid: str | int, created: int, *ids: str | tuple[str, int], merges: int = 0
) -> ProfileState:
    """A stored profile; an id given alone was added when the profile was created."""
    held = []
    for item in ids:
        text, added = item if isinstance(item, tuple) else (item, created)
        held.append(HeldId(xid(text).type, xid(text).value, added))
    return ProfileState(pid, created, tuple(held), merges)


def rules_with(
    max_merges: int = 100, max_identifiers: int = 1000, **types: IdTypeRule
) -> IdentityRules:
    """The default rules with some types' rules, or the caps, replaced."""
    return IdentityRules(
        types={**DEFAULT.types, **types},
        default=DEFAULT.default,
        max_merges=max_merges,
        max_identifiers=max_identifiers,
    )


class Expect(NamedTuple):
    action: Action
    target: str | None = None
    merged: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    dropped: tuple[tuple[str, ViolationKind], ...] = ()


def check(plan: ResolutionPlan, expected: Expect) -> None:
    assert plan.action is expected.action
    assert plan.target == expected.target
    assert plan.merged == expected.merged
    assert sorted(map(str, plan.added)) == sorted(expected.added)
    assert [(str(v.dropped), v.kind) for v in plan.violations] == list(expected.dropped)


A_ANON = prof("A", 1, "anonymous_id:a1")
A_USER = prof("A", 1, "user_id:u1", "anonymous_id:a1")
B_ANON = prof("B", 2, "anonymous_id:a2")
B_USER = prof("B", 2, "user_id:u2")
JANE = prof("J", 1, "user_id:abc123", "email:jane@example1.com")
FIVE_EMAILS = prof("A", 1, "user_id:u1", *(f"email:e{i}@x.io" for i in range(5)))
EMAIL_ONCE = rules_with(email=IdTypeRule(limit=Limit(1), priority=2))


@pytest.mark.parametrize(
    ("incoming", "profiles", "rules", "expected"),
    [
        pytest.param(
            ["anonymous_id:a1"], [], DEFAULT,
            Expect(Action.CREATE, added=("anonymous_id:a1",)),
            id="no match creates a profile",
        ),
        pytest.param(
            ["anonymous_id:a1"], [A_ANON], DEFAULT, Expect(Action.ATTACH, "A"),
            id="known id attaches and adds nothing",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a1"], [A_ANON], DEFAULT,
            Expect(Action.ATTACH, "A", added=("user_id:u1",)),
            id="anonymous browsing then login attaches the user_id",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"], [A_USER, B_ANON], DEFAULT,
            Expect(Action.MERGE, "A", ("B",)),
            id="a second device of a known user merges into the user",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"], [B_ANON, A_USER], DEFAULT,
            Expect(Action.MERGE, "A", ("B",)),
            id="the oldest profile survives whatever the order of matches",
        ),
        pytest.param(
            ["user_id:u2", "anonymous_id:a1"], [A_USER], DEFAULT,
            Expect(Action.CREATE, added=("user_id:u2",),
                   dropped=(("anonymous_id:a1", VALUE_LIMIT),)),
            id="shared anonymous id, new user: anonymous id dropped, new profile",
        ),
        pytest.param(
            ["user_id:u2", "anonymous_id:a1"], [A_USER, B_USER], DEFAULT,
            Expect(Action.ATTACH, "B", dropped=(("anonymous_id:a1", VALUE_LIMIT),)),
            id="shared anonymous id, two known users: no merge, resolves to the user",
        ),
        pytest.param(
            ["user_id:abc456", "email:jane@example1.com"], [JANE], DEFAULT,
            Expect(Action.CREATE, added=("user_id:abc456",),
                   dropped=(("email:jane@example1.com", VALUE_LIMIT),)),
            id="Segment's priority example: email demoted, new profile for abc456",
        ),
        pytest.param(
            ["user_id:u2", "email:jane@example1.com", "anonymous_id:new"], [JANE], DEFAULT,
            Expect(Action.CREATE, added=("user_id:u2",), dropped=(
                ("anonymous_id:new", VALUE_LIMIT), ("email:jane@example1.com", VALUE_LIMIT),
            )),
            id="ids are dropped lowest priority first until the rest fit",
        ),
        pytest.param(
            ["user_id:u1", "email:e2@x.io"], [prof("A", 1, "user_id:u1", "email:e1@x.io")],
            EMAIL_ONCE,
            Expect(Action.ATTACH, "A", dropped=(("email:e2@x.io", VALUE_LIMIT),)),
            id="email limit 1: a user's new email is not added",
        ),
        pytest.param(
            ["user_id:u1", "email:e5@x.io"], [FIVE_EMAILS], DEFAULT,
            Expect(Action.ATTACH, "A", dropped=(("email:e5@x.io", VALUE_LIMIT),)),
            id="default email limit 5 ever: a sixth email is not added",
        ),
        pytest.param(
            ["user_id:u2", "email:e1@x.io"],
            [prof("A", 1, "user_id:u1", "email:e1@x.io", "email:e0@x.io")], DEFAULT,
            Expect(Action.CREATE, added=("user_id:u2",),
                   dropped=(("email:e1@x.io", VALUE_LIMIT),)),
            id="an email moving to another user stays with its first user",
        ),
        pytest.param(
            ["email:e1@x.io", "anonymous_id:a9"],
            [prof("A", 1, "user_id:u1", "email:e1@x.io"), prof("B", 2, "email:e2@x.io")],
            EMAIL_ONCE,
            Expect(Action.ATTACH, "A", added=("anonymous_id:a9",)),
            id="email limit 1: matching only A attaches to A",
        ),
        pytest.param(
            ["email:e1@x.io", "email:e2@x.io"],
            [prof("A", 1, "user_id:u1", "email:e1@x.io"), prof("B", 2, "email:e2@x.io")],
            EMAIL_ONCE,
            Expect(Action.ATTACH, "A", dropped=(("email:e2@x.io", VALUE_LIMIT),)),
            id="email limit 1: two profiles with one email each do not merge",
        ),
        pytest.param(
            ["user_id:0", "anonymous_id:a1"], [], DEFAULT,
            Expect(Action.CREATE, added=("anonymous_id:a1",),
                   dropped=(("user_id:0", BLOCKED),)),
            id="a blocked user_id is dropped and the rest resolves",
        ),
        pytest.param(
            ["user_id:null", "anonymous_id:anonymous", "email:", "ios.id:-1", "phone:0-0"],
            [prof("X", 1, "user_id:null")], DEFAULT,
            Expect(Action.UNRESOLVED, dropped=(
                ("user_id:null", BLOCKED), ("email:", BLOCKED), ("anonymous_id:anonymous", BLOCKED),
                ("ios.id:-1", BLOCKED), ("phone:0-0", BLOCKED),
            )),
            id="every default blocked value; all blocked resolves to no profile",
        ),
        pytest.param(
            [], [], DEFAULT, Expect(Action.UNRESOLVED), id="no ids resolves to no profile",
        ),
        pytest.param(
            ["anonymous_id:a1", "anonymous_id:a1"], [A_ANON, A_ANON, prof("Z", 0, "email:z")],
            DEFAULT, Expect(Action.ATTACH, "A"),
            id="duplicates and unrelated matches are ignored",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"],
            [prof("A", 1, "user_id:u1", merges=100), B_ANON], DEFAULT,
            Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a2", MERGE_LIMIT),)),
            id="merge cap: a profile with 100 merges absorbs no more, events still resolve",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"],
            [prof("A", 1, "user_id:u1", merges=99), B_ANON], DEFAULT,
            Expect(Action.MERGE, "A", ("B",)),
            id="merge cap: the hundredth merge is allowed",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"],
            [prof("A", 1, "user_id:u1", merges=95), prof("B", 2, "anonymous_id:a2", merges=5)],
            DEFAULT,
            Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a2", MERGE_LIMIT),)),
            id="merge cap counts the merges the loser had absorbed",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a2"],
            [prof("A", 1, "user_id:u1", merges=100)], DEFAULT,
            Expect(Action.ATTACH, "A", added=("anonymous_id:a2",)),
            id="merge cap does not stop adding ids",
        ),
        pytest.param(
            ["user_id:u1", "email:e@x.io"],
            [prof("A", 1, "user_id:u1", "anonymous_id:a1", "anonymous_id:a2")],
            rules_with(max_identifiers=3),
            Expect(Action.ATTACH, "A", dropped=(("email:e@x.io", MAPPING_LIMIT),)),
            id="identifier cap: a full profile takes no new id, events still resolve",
        ),
        pytest.param(
            ["email:e@x.io", "anonymous_id:a1"],
            [prof("A", 1, "user_id:u1", "anonymous_id:a1", "anonymous_id:a2")],
            rules_with(max_identifiers=3),
            Expect(Action.CREATE, added=("email:e@x.io",),
                   dropped=(("anonymous_id:a1", MAPPING_LIMIT),)),
            id="identifier cap: a higher-priority new id goes to a new profile",
        ),
        pytest.param(
            ["anonymous_id:a1", "anonymous_id:a2"],
            [prof("A", 1, "anonymous_id:a1", "ios.id:d1"), prof("B", 2, "anonymous_id:a2")],
            rules_with(max_identifiers=2),
            Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a2", MAPPING_LIMIT),)),
            id="identifier cap applies to merges",
        ),
        pytest.param(
            ["anonymous_id:a1", "email:e@x.io"],
            [prof("A", 1, *(f"anonymous_id:a{i}" for i in range(1000)))], DEFAULT,
            Expect(Action.CREATE, added=("email:e@x.io",),
                   dropped=(("anonymous_id:a1", MAPPING_LIMIT),)),
            id="default identifier cap is 1,000",
        ),
        pytest.param(
            ["user_id:u1", "anonymous_id:a1"],
            [prof("A", 1, "user_id:u1", *(f"anonymous_id:a{i}" for i in range(7)))], DEFAULT,
            Expect(Action.ATTACH, "A"),
            id="a profile over a limit still receives ids it holds",
        ),
    ],
)
def test_plan(
    incoming: list[str], profiles: list[ProfileState], rules: IdentityRules, expected: Expect
) -> None:
    """Matching creates, attaches or merges, dropping the lowest-priority id while a rule breaks."""
    check(plan_resolution([xid(i) for i in incoming], profiles, rules, NOW), expected)


WEEKLY_ANON = rules_with(anonymous_id=IdTypeRule(limit=Limit(2, Period.WEEKLY)))


@pytest.mark.parametrize(
    ("old_added_days_ago", "expected"),
    [
        pytest.param(8, Expect(Action.ATTACH, "A", added=("anonymous_id:a3",)),
                     id="an id added 8 days ago does not count"),
        pytest.param(7, Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a3", TIME_LIMIT),)),
                     id="an id added 7 days ago counts (inclusive edge)"),
        pytest.param(1, Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a3", TIME_LIMIT),)),
                     id="an id added yesterday counts"),
    ],
)
def test_weekly_limit(old_added_days_ago: int, expected: Expect) -> None:
    """A `2 weekly` limit counts only values added to the profile in the last 7 days."""
    profile = prof(
        "A", 1, ("user_id:u1", 1),
        ("anonymous_id:a1", NOW - old_added_days_ago * DAY),
        ("anonymous_id:a2", NOW - DAY),
    )
    plan = plan_resolution([xid("user_id:u1"), xid("anonymous_id:a3")], [profile], WEEKLY_ANON, NOW)
    check(plan, expected)


def test_weekly_limit_on_merge_counts_both_sides() -> None:
    """Merging counts recent values of both profiles against a period limit."""
    a = prof("A", 1, ("user_id:u1", 1), ("anonymous_id:a1", NOW - DAY))
    b = prof("B", 2, ("anonymous_id:a2", NOW - DAY), ("anonymous_id:b2", NOW - 2 * DAY))
    plan = plan_resolution([xid("user_id:u1"), xid("anonymous_id:a2")], [a, b], WEEKLY_ANON, NOW)
    check(plan, Expect(Action.ATTACH, "A", dropped=(("anonymous_id:a2", TIME_LIMIT),)))
    assert plan.violations[0].id_type == "anonymous_id"
    assert plan.violations[0].profile_ids == ("A", "B")


def test_violation_describes_the_broken_rule() -> None:
    """A violation names the dropped id, the type whose limit broke and the profiles involved."""
    plan = plan_resolution(
        [xid("user_id:abc456"), xid("email:jane@example1.com")], [JANE], DEFAULT, NOW
    )
    (violation,) = plan.violations
    assert violation.kind == "Identifier value limit exceeded"
    assert violation.kind.code == "IDENTIFIER_VALUE_LIMIT_EXCEEDED"
    assert violation.id_type == "user_id"
    assert violation.profile_ids == ("J",)
    assert "2 user_id values" in violation.detail
    assert "1 ever" in violation.detail
    assert plan.dropped == (xid("email:jane@example1.com"),)
    assert plan.resolved_ids == (xid("user_id:abc456"),)


def test_blocked_violation_detail_and_unresolved_error() -> None:
    """A blocked value says which rule blocked it; an all-blocked message has Segment's error."""
    plan = plan_resolution([xid("anonymous_id:000")], [], DEFAULT, NOW)
    assert plan.action is Action.UNRESOLVED
    assert plan.target is None
    assert plan.error == NO_MATCHING_IDENTIFIERS == "No matching identifiers on event"
    assert plan.violations[0].kind == "ID value blocked"
    assert "'^[0-]*$'" in plan.violations[0].detail
    assert plan_resolution([xid("anonymous_id:a")], [], DEFAULT, NOW).error is None


def test_merge_chain_in_one_message() -> None:
    """Three matched profiles A, B, C merge into the oldest, A, in age order B then C."""
    a = prof("A", 1, "anonymous_id:a1")
    b = prof("B", 2, "email:e@x.io")
    c = prof("C", 3, "ios.id:d1")
    incoming = [xid("anonymous_id:a1"), xid("email:e@x.io"), xid("ios.id:d1"), xid("user_id:u1")]
    plan = plan_resolution(incoming, [c, a, b], DEFAULT, NOW)
    check(plan, Expect(Action.MERGE, "A", ("B", "C"), added=("user_id:u1",)))
    after = profile_after(plan, [c, a, b], new_profile_id="N", now_ms=NOW)
    assert after is not None
    assert after.merge_count == 2
    assert {h.external_id for h in after.identifiers} == set(incoming)


def test_merge_chain_over_two_messages() -> None:
    """C merges into B, then B (carrying C) merges into A: A has absorbed 2 merges."""
    a = prof("A", 1, "anonymous_id:a1")
    b = prof("B", 2, "email:e@x.io")
    c = prof("C", 3, "ios.id:d1")
    first = plan_resolution([xid("email:e@x.io"), xid("ios.id:d1")], [b, c], DEFAULT, NOW)
    check(first, Expect(Action.MERGE, "B", ("C",)))
    b_after = profile_after(first, [b, c], new_profile_id="N", now_ms=NOW)
    assert b_after is not None
    assert b_after.merge_count == 1
    second = plan_resolution(
        [xid("anonymous_id:a1"), xid("ios.id:d1")], [a, b_after], DEFAULT, NOW + 1
    )
    check(second, Expect(Action.MERGE, "A", ("B",)))
    a_after = profile_after(second, [a, b_after], new_profile_id="N", now_ms=NOW + 1)
    assert a_after is not None
    assert a_after.merge_count == 2
    assert [h.added_ms for h in a_after.identifiers] == [1, 2, 3]


@pytest.mark.parametrize(
    ("profiles", "survivor"),
    [
        pytest.param([prof("b", 5, "anonymous_id:x"), prof("a", 5, "email:y")], "a",
                     id="same age: smallest id"),
        pytest.param([prof(10, 5, "anonymous_id:x"), prof(9, 5, "email:y")], 9,
                     id="integer ids compare as numbers"),
        pytest.param([prof("z", 4, "anonymous_id:x"), prof("a", 5, "email:y")], "z",
                     id="oldest wins over smaller id"),
    ],
)
def test_survivor_is_deterministic(profiles: list[ProfileState], survivor: object) -> None:
    """The oldest profile survives a merge; equal ages fall to the smallest id."""
    plan = plan_resolution([xid("anonymous_id:x"), xid("email:y")], profiles, DEFAULT, NOW)
    assert plan.target == survivor


def test_profile_after_create_and_attach() -> None:
    """profile_after adds new ids at the planning time and keeps old ids' times."""
    created = plan_resolution([xid("anonymous_id:a1")], [], DEFAULT, NOW)
    fresh = profile_after(created, [], new_profile_id="N", now_ms=NOW)
    assert fresh == ProfileState("N", NOW, (HeldId("anonymous_id", "a1", NOW),), 0)
    attached = plan_resolution([xid("anonymous_id:a1"), xid("user_id:u1")], [A_ANON], DEFAULT, NOW)
    after = profile_after(attached, [A_ANON], new_profile_id="N", now_ms=NOW)
    assert after is not None
    assert after.held() == {xid("anonymous_id:a1"): 1, xid("user_id:u1"): NOW}
    unresolved = plan_resolution([], [], DEFAULT, NOW)
    assert profile_after(unresolved, [], new_profile_id="N", now_ms=NOW) is None


def test_custom_type_priority_changes_what_is_dropped() -> None:
    """With phone ranked above email, the email is dropped instead of the phone."""
    rules = rules_with(phone=IdTypeRule(priority=2), email=IdTypeRule(priority=3))
    a = prof("A", 1, "user_id:u1", "email:e@x.io")
    incoming = [xid("user_id:u2"), xid("email:e@x.io"), xid("phone:555")]
    plan = plan_resolution(incoming, [a], rules, NOW)
    check(plan, Expect(Action.CREATE, added=("user_id:u2", "phone:555"),
                       dropped=(("email:e@x.io", VALUE_LIMIT),)))
