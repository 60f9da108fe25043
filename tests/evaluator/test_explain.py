"""ExplainMembership through the server: the tree, the events behind it, the stored value, earlier
times, and when the value next changes and why."""

from __future__ import annotations

import grpc
import pytest
from audiences.v1 import admin_pb2
from google.protobuf import timestamp_pb2

from audiences_server.core.ql.reasons import iso
from audiences_server.engine import explain as explainer
from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import COLLECTION, DAY, HOUR, Space

BIG = "event('Order Completed').where(property('revenue') >= 100).within(30 days).count() >= 1"


def explain(space: Space, key: str, profile: str, collection: str = "users", at: int | None = None,
            limit: int = 0) -> admin_pb2.ExplainMembershipResponse:
    """Calls ExplainMembership with the space's admin token."""
    request = admin_pb2.ExplainMembershipRequest(collection=COLLECTION[collection], key=key, profile_id=profile,
                                                 max_evidence=limit)
    if at is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromMilliseconds(at)
        request.explain_time.CopyFrom(stamp)
    return space.running.admin.ExplainMembership(request, metadata=bearer(space.tokens["admin"]))


def _orders(space: Space) -> int:
    """Ada: a big order 20 days ago and a small one yesterday; grace: a small one. Returns the big one's time."""
    now = space.now()
    big = now - 20 * DAY
    space.send(
        {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 120}, "at": big,
         "messageId": "m-big"},
        {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 15}, "at": now - DAY,
         "messageId": "m-small"},
        {"type": "track", "userId": "grace", "event": "Order Completed", "properties": {"revenue": 15}, "at": now},
    )
    return big


def test_a_member_sees_the_order_that_decided_it_and_when_it_leaves(space: Space) -> None:
    """The count names the one order that passes the where (with the revenue read), each filter's
    count, the stored value, and that ada leaves when that order falls out of the window."""
    big = _orders(space)
    space.define("big_buyers", BIG)
    space.tick()
    reply = explain(space, "big_buyers", "user_id:ada")
    assert (reply.value_json, reply.stored_value.bool_value, reply.evaluation_pending) == ("true", True, False)
    count = reply.root.children[0]
    assert count.kind == admin_pb2.EXPLAIN_NODE_KIND_AGGREGATE
    assert (count.stream.seen_count, count.stream.event_count) == (2, 1)
    assert [(s.filter, s.remaining_count) for s in count.stream.filters] == [
        (".where(property('revenue') >= 100)", 1), (".within(30 days)", 1)]
    assert [(e.message_id, dict(e.read_json)) for e in count.stream.events] == [
        ("m-big", {"property('revenue')": "120"})]
    leaves = big + 30 * DAY + 1
    assert reply.next_change.change_time.ToMilliseconds() == leaves == reply.next_change.check_time.ToMilliseconds()
    assert reply.next_change.summary == (
        f"leaves at {iso(leaves)}, when the `Order Completed` of {iso(big)} falls out of `within(30 days)`")
    assert [r.message_id for r in reply.next_change.reasons] == ["m-big"]
    grace = explain(space, "big_buyers", "user_id:grace")
    assert (grace.value_json, grace.next_change.summary) == ("false", "does not change without new data")


@pytest.mark.parametrize(("held", "wait_s", "said"), [
    ("_turns", 0.2, "none finished within 0.2 s"),  # all running: another waits, then is refused
    ("_admitted", 60.0, "2 more waiting"),  # running and waiting: another is refused at once
], ids=["running", "waiting"])
def test_explanations_past_the_bound_are_refused(space: Space, monkeypatch: pytest.MonkeyPatch, held: str,
                                                 wait_s: float, said: str) -> None:
    """While `AT_ONCE` explanations run, another waits for a turn, and none within the wait, it is
    refused as RESOURCE_EXHAUSTED `EXPLAIN_BUSY` with a retry hint; with `WAITING` more waiting too,
    another is refused at once, not after the wait (a waiting explanation holds an RPC thread, and a
    burst of them held every one: tracking and reads waited the 10 s behind them). Either is
    answered once one is done."""
    _orders(space)
    space.define("big_buyers", BIG)
    space.tick()
    monkeypatch.setattr(explainer, "WAIT_S", wait_s)
    slots = getattr(space.running.server.engine.explainer, held)
    taken = 0
    try:
        while slots.acquire(blocking=False):  # each explanation still running (or waiting)
            taken += 1
        assert taken == explainer.AT_ONCE + (explainer.WAITING if held == "_admitted" else 0)
        with pytest.raises(grpc.RpcError) as refused:
            explain(space, "big_buyers", "user_id:ada")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(refused.value) == "EXPLAIN_BUSY"
        assert said in (refused.value.details() or "")
        slots.release()
        taken -= 1
        assert explain(space, "big_buyers", "user_id:ada").value_json == "true"
    finally:
        for _ in range(taken):
            slots.release()


def test_a_profile_waiting_for_a_tick_says_so(space: Space) -> None:
    """New data not yet evaluated: the value is what the next tick stores, the stored value is the
    old one, and the reply says it is pending until that tick."""
    _orders(space)
    space.define("big_buyers", BIG)
    space.tick()
    space.send({"type": "track", "userId": "grace", "event": "Order Completed", "properties": {"revenue": 500},
                "at": space.now()})
    before = explain(space, "big_buyers", "user_id:grace")
    assert (before.value_json, before.stored_value.bool_value, before.evaluation_pending) == ("true", False, True)
    space.tick()
    after = explain(space, "big_buyers", "user_id:grace")
    assert (after.value_json, after.stored_value.bool_value, after.evaluation_pending) == ("true", True, False)


def test_an_earlier_time_is_explained_from_the_history(space: Space) -> None:
    """After ada left, the time she was in is explained as it was (stored value from the history);
    a time before the definition was live, after a trait it reads was written, or in the future is refused."""
    _orders(space)
    space.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}})
    space.define("pro_buyers", BIG.replace("count() >= 1", "count() >= 1 AND trait('plan') = 'pro'"))
    space.tick()
    member_at = space.now()
    space.tick(at=member_at + 11 * DAY)
    now = explain(space, "pro_buyers", "user_id:ada")
    then = explain(space, "pro_buyers", "user_id:ada", at=member_at + HOUR)
    assert (now.value_json, now.stored_value.bool_value) == ("false", False)
    assert (then.value_json, then.stored_value.bool_value, then.evaluation_pending) == ("true", True, False)
    assert then.explain_time.ToMilliseconds() == member_at + HOUR
    assert then.next_change.summary.startswith("leaves at ")
    for at, cause in ((member_at - 1, "not live yet"), (member_at + 11 * DAY + 1, "")):
        with pytest.raises(grpc.RpcError) as refused:
            explain(space, "pro_buyers", "user_id:ada", at=at)
        expected = "EXPLAIN_TIME_NOT_REPRODUCIBLE" if cause else "EXPLAIN_TIME_IN_FUTURE"
        assert error_reason(refused.value) == expected
    space.send({"type": "identify", "userId": "ada", "traits": {"plan": "free"}})
    space.tick()
    with pytest.raises(grpc.RpcError) as refused:
        explain(space, "pro_buyers", "user_id:ada", at=member_at + HOUR)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "a trait it reads was written since" in (refused.value.details() or "")


def test_a_disabled_definition_is_frozen_not_pending(space: Space) -> None:
    """Disabled, a definition keeps the values it had: new data that would change a value is not
    pending (no tick will bring it), `value` is what ticks store (the stored value) while the tree
    shows what the definition says now, and no next change is predicted for it."""
    _orders(space)
    space.define("big_buyers", BIG)
    space.tick()
    space.update("big_buyers", enabled=False)
    space.send({"type": "track", "userId": "grace", "event": "Order Completed", "properties": {"revenue": 500},
                "at": space.now()})
    space.tick()
    grace = explain(space, "big_buyers", "user_id:grace")
    assert (grace.value_json, grace.stored_value.bool_value, grace.evaluation_pending) == ("false", False, False)
    assert grace.root.value_json == "true"
    ada = explain(space, "big_buyers", "user_id:ada")
    assert (ada.stored_value.bool_value, ada.evaluation_pending) == (True, False)
    assert ada.next_change.summary == ("stays as stored: the definition is disabled, so its values are frozen until"
                                       " it is enabled again")
    assert not ada.next_change.HasField("change_time")
    assert not ada.next_change.HasField("check_time")
    assert ada.next_change.search_exhausted  # enabled, her big order's 30 days would end her membership


def test_a_time_before_the_profile_was_seen_is_refused_as_such(space: Space) -> None:
    """A profile first seen after the time asked is not blamed on the anonymous-users rule: the
    time is refused, naming the cause."""
    space.define("big_buyers", BIG)
    space.tick()
    live = space.now()
    space.tick(at=live + DAY)
    space.send({"type": "track", "userId": "late", "event": "Order Completed", "properties": {"revenue": 200},
                "at": space.now()})
    space.tick()
    with pytest.raises(grpc.RpcError) as refused:
        explain(space, "big_buyers", "user_id:late", at=live + HOUR)
    assert error_reason(refused.value) == "EXPLAIN_TIME_NOT_REPRODUCIBLE"
    assert "the profile had not been seen yet then" in (refused.value.details() or "")
    assert explain(space, "big_buyers", "user_id:late").value_json == "true"


def test_an_account_lists_which_users_satisfied_any(space: Space) -> None:
    """ANY shows how many linked users satisfy it, the satisfying ones first, each explained."""
    _orders(space)
    space.send({"type": "group", "userId": "ada", "groupId": "acme"},
               {"type": "group", "userId": "grace", "groupId": "acme"})
    space.define("big_buyers", BIG)
    space.define("buying_accounts", "ANY trait('big_buyers') = true", collection="accounts")
    space.tick()
    reply = explain(space, "buying_accounts", "group_id:acme", "accounts")
    root = reply.root
    assert (reply.value_json, root.kind, root.users_satisfying_count, root.users_count) == (
        "true", admin_pb2.EXPLAIN_NODE_KIND_ANY, 1, 2)
    assert [(u.profile.external_ids[0].value, u.satisfied) for u in root.users] == [("ada", True), ("grace", False)]
    trait = root.users[0].node.children[0]
    assert (trait.trait.key, trait.trait.trait_class, trait.value_json) == ("big_buyers", "audience", "true")


def test_an_anonymous_profile_is_kept_out_whatever_the_tree_says(space: Space) -> None:
    """The anonymous-users rule: the tree holds, the value (and the stored one) is false."""
    space.send({"type": "track", "anonymousId": "anon-1", "event": "Order Completed", "properties": {"revenue": 300},
                "at": space.now()})
    space.define("big_buyers", BIG)
    space.tick()
    reply = explain(space, "big_buyers", "anonymous_id:anon-1")
    assert (reply.value_json, reply.root.value_json, reply.anonymous_excluded) == ("false", "true", True)
    assert reply.stored_value.bool_value is False
    assert reply.next_change.summary.startswith("stays out")


def test_a_computed_trait_names_its_next_value(space: Space) -> None:
    """A windowed sum: the value, the events summed with the value read on each, and what it becomes next."""
    now = space.now()
    space.send({"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 7},
                "at": now - 2 * HOUR, "messageId": "m-7"},
               {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 5},
                "at": now - HOUR, "messageId": "m-5"})
    space.define("revenue_3h", "event('Order Completed').within(3 hours).sum('revenue')", kind="computed_trait")
    space.tick()
    reply = explain(space, "revenue_3h", "user_id:ada", limit=1)
    assert (reply.value_json, reply.stored_value.number_value) == ("12", 12)
    assert (reply.root.stream.event_count, [(e.message_id, e.value_json) for e in reply.root.stream.events]) == (
        2, [("m-5", "5")])
    assert reply.next_change.summary.startswith(f"becomes 5 at {iso(now + HOUR + 1)}")


def test_unknown_definitions_and_profiles_are_not_found(space: Space) -> None:
    """A key or a profile that does not exist is NOT_FOUND; a malformed address INVALID_ARGUMENT."""
    space.send({"type": "identify", "userId": "ada", "traits": {}})
    space.define("big_buyers", BIG)
    space.tick()
    for key, profile, reason in (("nope", "user_id:ada", "NOT_FOUND"), ("big_buyers", "user_id:nobody",
                                 "PROFILE_NOT_FOUND"), ("big_buyers", "ada", "PROFILE_ID_INVALID")):
        with pytest.raises(grpc.RpcError) as refused:
            explain(space, key, profile)
        assert error_reason(refused.value) == reason


def test_an_account_at_an_earlier_time_until_its_links_change(space: Space) -> None:
    """An account explained at a time before its user's order left the window: as it was then;
    once a group call names the account again, that time can no longer be reproduced."""
    now = space.now()
    space.send({"type": "group", "userId": "ada", "groupId": "acme", "at": now},
               {"type": "track", "userId": "ada", "event": "Order Completed", "at": now - 23 * HOUR})
    space.define("ordering", "ANY event('Order Completed').within(1 day).count() >= 1", collection="accounts")
    space.tick()
    space.tick(at=now + 2 * HOUR)
    then = explain(space, "ordering", "group_id:acme", "accounts", at=now + HOUR - 1)
    assert (then.value_json, then.stored_value.bool_value, then.root.users_satisfying_count) == ("true", True, 1)
    assert explain(space, "ordering", "group_id:acme", "accounts").value_json == "false"
    space.send({"type": "group", "userId": "grace", "groupId": "acme", "at": space.now()})
    with pytest.raises(grpc.RpcError) as refused:
        explain(space, "ordering", "group_id:acme", "accounts", at=now + HOUR - 1)
    assert "its account links changed since" in (refused.value.details() or "")


def test_an_account_at_an_earlier_time_until_a_user_of_it_is_deleted(space: Space) -> None:
    """A deletion removes a user's links without a group call (and the user's own group calls
    with it): an account explained at a time before the deletion is refused, where it was
    explained from the links as they are now, contradicting its history."""
    now = space.now()
    space.send({"type": "group", "userId": "ada", "groupId": "acme", "at": now},
               {"type": "group", "userId": "bob", "groupId": "acme", "at": now},
               {"type": "track", "userId": "bob", "event": "Order Completed", "at": now})
    space.define("ordering", "ANY event('Order Completed').within(1 day).count() >= 1", collection="accounts")
    space.tick()
    space.tick(at=now + HOUR)
    assert explain(space, "ordering", "group_id:acme", "accounts", at=now + 1).value_json == "true"
    space.running.server.engine.lifecycle.deletions.request(space.space_id, "users", "user_id:bob", False, 0, "test")
    space.tick(at=now + 2 * HOUR)
    with pytest.raises(grpc.RpcError) as refused:
        explain(space, "ordering", "group_id:acme", "accounts", at=now + 1)
    assert error_reason(refused.value) == "EXPLAIN_TIME_NOT_REPRODUCIBLE"
    assert "a profile of the space was deleted since" in (refused.value.details() or "")


def test_no_change_is_explained_past_the_year_9999(space: Space) -> None:
    """Time ends with the year 9999 (no clock moves past it): an edge after it, here an event of its
    last day entering a `between(1 days, 2 days)` window, is no next change, and the explanation
    reads."""
    space.send({"type": "track", "userId": "late", "event": "L", "timestamp": "9999-12-31T00:00:00Z"})
    space.define("late_aud", "event('L').between(1 days, 2 days).count() >= 1")
    space.tick()
    reply = explain(space, "late_aud", "user_id:late")
    assert (reply.value_json, reply.next_change.HasField("change_time")) == ("false", False)
    assert reply.next_change.summary == "does not change without new data"
    assert iso(-30_610_224_000_001) == "0999-12-31T23:59:59.999Z"
