"""Account audiences and computed traits, in real time, through the real server (docs/query-language.md and
docs/identity.md, "Account audiences" and "Accounts")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.evaluator.conftest import DAY, HOUR, Space

QUANTIFIERS = [
    # (definition, users' plans (None: no users), expected membership)
    ("ANY (trait('plan') = 'pro')", None, False),
    ("ANY (trait('plan') = 'pro')", ["pro"], True),
    ("ANY (trait('plan') = 'pro')", ["free"], False),
    ("ANY (trait('plan') = 'pro')", ["free", "free", "pro"], True),
    ("ALL (trait('plan') = 'pro')", None, False),
    ("ALL (trait('plan') = 'pro')", ["pro"], True),
    ("ALL (trait('plan') = 'pro')", ["pro", "pro", "pro"], True),
    ("ALL (trait('plan') = 'pro')", ["pro", "free", "pro"], False),
    ("ALL NOT (trait('plan') = 'pro')", None, True),
    ("ALL NOT (trait('plan') = 'pro')", ["free"], True),
    ("ALL NOT (trait('plan') = 'pro')", ["pro"], False),
    ("ALL NOT (trait('plan') = 'pro')", ["free", "free", "free"], True),
    ("ALL NOT (trait('plan') = 'pro')", ["free", "pro", "free"], False),
]


@pytest.mark.parametrize(("definition", "plans", "member"), QUANTIFIERS)
def test_any_all_and_all_not(space: Space, definition: str, plans: list[str] | None, member: bool) -> None:
    """ANY needs one linked user, ALL needs at least one and every one, ALL NOT needs none."""
    # "0" is a blocked identifier: that group call makes the account but links no user to it.
    calls: list[dict[str, Any]] = [{"type": "group", "anonymousId": "0", "groupId": "acme"}]
    for i, plan in enumerate(plans or []):
        calls += [{"type": "identify", "userId": f"u{i}", "traits": {"plan": plan}},
                  {"type": "group", "userId": f"u{i}", "groupId": "acme"}]
    space.send(*calls)
    space.define("acct", definition, collection="accounts")
    space.tick()
    assert space.member_ids("acct", "accounts") == ({"group_id:acme"} if member else set())
    assert space.stored() == space.expected()


def test_account_audience_follows_a_users_event_ageing_out(space: Space) -> None:
    """An account leaves when its only user's qualifying event leaves the window, with nothing new sent."""
    now = space.now()
    space.send({"type": "group", "userId": "u1", "groupId": "acme"},
               {"type": "track", "userId": "u1", "event": "Login", "at": now - 20 * HOUR})
    space.define("active_account", "ANY (event('Login').within(1 days).count() >= 1)", collection="accounts")
    space.tick()
    assert space.member_ids("active_account", "accounts") == {"group_id:acme"}
    space.tick(at=now + 4 * HOUR + 1)
    assert space.member_ids("active_account", "accounts") == set()


def test_account_computed_trait_feeds_an_account_audience(space: Space) -> None:
    """An account computed trait sums a property over all its users' events; an audience reads it."""
    now = space.now()
    space.send({"type": "group", "userId": "a", "groupId": "acme"}, {"type": "group", "userId": "b", "groupId": "acme"},
               {"type": "group", "userId": "c", "groupId": "tiny"},
               {"type": "track", "userId": "a", "event": "Order", "properties": {"revenue": 300}, "at": now - DAY},
               {"type": "track", "userId": "b", "event": "Order", "properties": {"revenue": 250}, "at": now - 2 * DAY},
               {"type": "track", "userId": "c", "event": "Order", "properties": {"revenue": 900}, "at": now - 40 * DAY})
    space.define("revenue_30d", "event('Order').within(30 days).sum('revenue')", kind="computed_trait",
                 collection="accounts")
    space.define("big_accounts", "trait('revenue_30d') >= 500", collection="accounts")
    space.tick()
    assert space.member_ids("big_accounts", "accounts") == {"group_id:acme"}
    space.send({"type": "track", "userId": "c", "event": "Order", "properties": {"revenue": 600}})
    space.tick()
    assert space.member_ids("big_accounts", "accounts") == {"group_id:acme", "group_id:tiny"}
    space.tick(at=now + 28 * DAY + 1)  # acme's 250 has left the window: 300 remains
    assert space.member_ids("big_accounts", "accounts") == {"group_id:tiny"}
    assert space.stored() == space.expected()


def test_user_audience_reads_an_account_audience(space: Space) -> None:
    """A user reads an account audience as true when any of its accounts is a member; it follows links."""
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"tier": "enterprise"}},
               {"type": "group", "userId": "u2", "groupId": "solo", "traits": {"tier": "free"}})
    space.define("enterprise", "trait('tier') = 'enterprise'", collection="accounts")
    space.define("enterprise_users", "trait('enterprise') = true")
    space.tick()
    assert space.member_ids("enterprise_users") == {"user_id:u1"}
    space.send({"type": "group", "userId": "u2", "groupId": "acme"})  # u2 joins a second account
    space.tick()
    assert space.member_ids("enterprise_users") == {"user_id:u1", "user_id:u2"}
    space.send({"type": "group", "userId": "u3", "groupId": "acme", "traits": {"tier": "free"}})
    space.tick()
    assert space.member_ids("enterprise_users") == set()
    assert space.stored() == space.expected()


def test_a_user_audience_backfills_after_the_account_audience_it_reads(space: Space) -> None:
    """Created together with a user computed trait before them, a user audience reading an
    account audience waits for that audience's backfill rather than backfill with the trait (the
    first in the order): it never reads the account audience before it is computed, so a user in
    a member account neither enters nor exits."""
    space.define("spend", "event('B').within(1 hours).sum('v')", kind="computed_trait")
    space.define("calm", "ALL NOT (event('B').count() >= 2)", collection="accounts")
    space.define("restless", "NOT (trait('calm') = true)")
    space.send({"type": "group", "userId": "u3", "groupId": "g2", "traits": {"industry": "retail"}})
    space.tick()
    assert space.member_ids("calm", "accounts") == {"group_id:g2"}
    assert space.running.query(
        "SELECT count(*) FROM changes AS h JOIN computations AS c USING (computation_id)"
        " WHERE c.space_id = ? AND c.key = ?",
        (space.space_id, "restless")) == [(0,)]
    assert space.stored() == space.expected()


def test_a_user_moving_from_one_account_to_another(space: Space) -> None:
    """`context.unlink` removes the old link: the old account loses the user's events, the new one
    gains them, and a user audience that reads an account audience follows, in one tick."""
    now = space.now()
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"tier": "enterprise"}},
               {"type": "group", "userId": "u2", "groupId": "globex", "traits": {"tier": "free"}},
               {"type": "track", "userId": "u1", "event": "Login", "at": now - HOUR})
    space.define("active_account", "ANY (event('Login').within(7 days).count() >= 1)", collection="accounts")
    space.define("enterprise", "trait('tier') = 'enterprise'", collection="accounts")
    space.define("enterprise_users", "trait('enterprise') = true")
    space.tick()
    assert space.member_ids("active_account", "accounts") == {"group_id:acme"}
    assert space.member_ids("enterprise_users") == {"user_id:u1"}
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}, "at": now + 1},
               {"type": "group", "userId": "u1", "groupId": "globex", "at": now + 2})
    space.tick()
    assert space.member_ids("active_account", "accounts") == {"group_id:globex"}
    assert space.member_ids("enterprise_users") == set()
    assert space.stored() == space.expected()


def test_links_are_last_write_wins_by_event_time(space: Space) -> None:
    """A group call older than a removal does not bring the link back; a newer one does; a removal
    older than the latest link is ignored; an unknown account is never created by a removal."""
    now = space.now()
    space.define("has_users", "ANY (trait('seen') = true)", collection="accounts")
    space.send({"type": "identify", "userId": "u1", "traits": {"seen": True}},
               {"type": "group", "userId": "u1", "groupId": "acme", "at": now - 3 * HOUR},
               {"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}, "at": now - HOUR},
               {"type": "group", "userId": "u1", "groupId": "acme", "at": now - 2 * HOUR})
    space.tick()
    assert space.member_ids("has_users", "accounts") == set()
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "at": now})
    space.tick()
    assert space.member_ids("has_users", "accounts") == {"group_id:acme"}
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}, "at": now - 1},
               {"type": "group", "userId": "u1", "groupId": "nowhere", "context": {"unlink": True}})
    space.tick()
    assert space.member_ids("has_users", "accounts") == {"group_id:acme"}
    assert space.stored() == space.expected()
    unknown = space.running.query("SELECT 1 FROM identifiers WHERE space_id = ? AND id_value = 'nowhere'",
                                  (space.space_id,))
    assert not list(unknown)


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one-batch"])
def test_a_removal_before_the_account_exists_holds_against_an_older_group_call(space: Space, together: bool) -> None:
    """A removal naming an account no call has made yet is kept (no account is made from it): a
    group call older than it, arriving later, makes the account without linking the user; a newer
    one links them. The same when both come in one batch."""
    now = space.now()
    space.define("has_users", "ANY (trait('seen') = true)", collection="accounts")
    calls = [{"type": "identify", "userId": "u1", "traits": {"seen": True}},
             {"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}, "at": now - HOUR},
             {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"tier": "pro"}, "at": now - 2 * HOUR}]
    if together:
        space.send(*calls)
    else:
        for call in calls:
            space.send(call)
    space.tick()
    assert space.member_ids("has_users", "accounts") == set()
    kept = space.running.query("SELECT count(*) FROM pending_unlinks AS u JOIN profiles AS p ON p.profile_id ="
                               " u.user_id WHERE p.space_id = ?", (space.space_id,))
    assert kept == [(0,)]  # taken over by the account
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "at": now})
    space.tick()
    assert space.member_ids("has_users", "accounts") == {"group_id:acme"}
    assert space.stored() == space.expected()


@pytest.mark.parametrize("account_first", [True, False], ids=["account-first", "removal-first"])
def test_a_remembered_removal_ends_a_link_taken_over_by_a_merge(space: Space, account_first: bool) -> None:
    """u1 removes its link to acme (at t-1h); an anonymous profile's older group call (t-2h) links
    it to acme; the two merge. Whether acme existed when the removal came or not, u1 is not linked:
    the removal is the latest word on the pair."""
    now = space.now()
    space.define("has_users", "ANY (trait('seen') = true)", collection="accounts")
    unlink = {"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}, "at": now - HOUR}
    anonymous = {"type": "group", "anonymousId": "w", "groupId": "acme", "at": now - 2 * HOUR}
    for call in ([anonymous, unlink] if account_first else [unlink, anonymous]):
        space.send(call)
    space.send({"type": "identify", "userId": "u1", "anonymousId": "w", "traits": {"seen": True}, "at": now})
    space.tick()
    assert space.member_ids("has_users", "accounts") == set()
    assert space.stored() == space.expected()


def test_account_audiences_backfilled_a_few_accounts_a_job_read_every_users_result(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Account audiences created together backfill two accounts a job here, and most users are
    linked to two accounts: a job's accounts read the results of users an earlier job computed
    beside those it computes, as the interpreter reads them, and later changes (a new order, orders
    ageing out) follow from what the backfill stored. One account links no user."""
    from audiences_server.engine import evaluator

    now = space.now()
    calls: list[dict[str, Any]] = [{"type": "group", "anonymousId": "0", "groupId": "empty"}]
    for i in range(10):
        if i % 3:
            calls.append({"type": "track", "userId": f"u{i}", "event": "Order Completed", "at": now - i * 12 * HOUR})
        calls += [{"type": "group", "userId": f"u{i}", "groupId": f"a{account}"} for account in {i % 4, i * 5 % 7}]
    space.send(*calls)
    space.tick()  # the users' touches taken: a job's own users with touches are computed with its accounts
    monkeypatch.setattr(evaluator, "JOB_PROFILES", 2)
    space.define("any_order", "ANY (event('Order Completed').within(3 days).count() >= 1)", collection="accounts")
    space.define("all_order", "ALL (event('Order Completed').within(4 days).count() >= 1)", collection="accounts")
    space.define("no_recent", "ALL NOT (event('Order Completed').within(2 days).count() >= 1)"
                 " AND ANY (event('Order Completed').count() >= 1)", collection="accounts")
    space.tick()
    accounts = space.running.query("SELECT count(*) FROM profiles WHERE space_id = ? AND collection = 'accounts'",
                                   (space.space_id,))
    assert accounts[0][0] == 8  # four jobs of two
    assert space.member_ids("any_order", "accounts")
    assert space.stored() == space.expected()
    space.send({"type": "track", "userId": "u0", "event": "Order Completed", "at": now + DAY})
    space.tick(at=now + DAY + 1)
    assert space.stored() == space.expected()
    space.tick(at=now + 3 * DAY)
    assert space.stored() == space.expected()
