"""Identity rules and their violations through AudienceAdminService."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, profiles_pb2
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.conftest import bearer, error_reason, field_violations
from tests.evaluator.conftest import DAY, Space

WEEKLY = admin_pb2.IDENTITY_LIMIT_PERIOD_WEEKLY


def admin(space: Space, rpc: str, request: Any) -> Any:
    return getattr(space.running.admin, rpc)(request, metadata=bearer(space.tokens["admin"]))


def update(space: Space, paths: list[str] | None = None, **rule: Any) -> admin_pb2.IdentityRule:
    request = admin_pb2.UpdateIdentityRuleRequest(
        rule=admin_pb2.IdentityRule(**rule), update_mask=field_mask_pb2.FieldMask(paths=paths or [])
    )
    return admin(space, "UpdateIdentityRule", request).rule


def violations(space: Space, **fields: Any) -> admin_pb2.ListIdentityRuleViolationsResponse:
    return admin(space, "ListIdentityRuleViolations", admin_pb2.ListIdentityRuleViolationsRequest(**fields))


def ids_of(space: Space, address: str) -> set[str]:
    reply = space.running.profiles.ListExternalIds(
        profiles_pb2.ListExternalIdsRequest(profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS,
                                                                          id=address)),
        metadata=bearer(space.tokens["read"]),
    )
    return {f"{i.type}:{i.value}" for i in reply.external_ids}


def test_default_rules_by_priority(space: Space) -> None:
    """The defaults: user_id 1 ever first, email second, then the other types alphabetically, 5 ever each."""
    rules = admin(space, "GetIdentityRules", admin_pb2.GetIdentityRulesRequest()).identity_rules
    listed = [(r.id_type, r.priority, r.limit) for r in rules.rules]
    assert listed[:3] == [("user_id", 1, 1), ("email", 2, 5), ("android.id", 3, 5)]
    assert [p for _, p, _ in listed] == list(range(1, len(listed) + 1))
    assert [t for t, _, _ in listed[2:]] == sorted(t for t, _, _ in listed[2:])
    assert all(not r.HasField("update_time") for r in rules.rules)
    assert list(rules.rules[0].blocked_values) == ["-1", "null", "anonymous", ""]
    assert list(rules.rules[0].blocked_patterns) == ["^[0-]*$"]
    assert (rules.default_rule.id_type, rules.default_rule.priority, rules.default_rule.limit) == ("", 0, 5)
    assert (rules.max_merges_per_profile, rules.max_identifiers_per_profile) == (100, 1000)


def test_an_update_changes_only_the_masked_fields(space: Space) -> None:
    """The mask picks what changes; the response and later reads show the rule with its change time."""
    rule = update(space, ["limit"], id_type="email", limit=2, limit_period=WEEKLY, priority=9)
    assert (rule.limit, rule.limit_period, rule.priority) == (2, admin_pb2.IDENTITY_LIMIT_PERIOD_EVER, 2)
    assert rule.update_time.ToMilliseconds() == space.now()
    rules = admin(space, "GetIdentityRules", admin_pb2.GetIdentityRulesRequest()).identity_rules
    email = next(r for r in rules.rules if r.id_type == "email")
    assert (email.limit, email.HasField("update_time")) == (2, True)


def test_a_new_type_gets_a_rule_and_later_messages_follow_it(space: Space) -> None:
    """A rule for a custom type blocks its values from then on; an identifier attached before stays."""
    external = [{"id": "C-0", "type": "crm_id", "collection": "users"}]
    space.send({"type": "track", "userId": "u1", "event": "E", "context": {"externalIds": external}})
    rule = update(space, id_type="CRM_ID", blocked_values=["C-0", "C-1"])
    assert (rule.id_type, list(rule.blocked_values), rule.limit) == ("crm_id", ["C-0", "C-1"], 5)
    space.send({"type": "track", "userId": "u2", "event": "E",
                "context": {"externalIds": [{"id": "C-1", "type": "crm_id", "collection": "users"}]}})
    assert ids_of(space, "user_id:u2") == {"user_id:u2"}
    assert ids_of(space, "crm_id:C-0") == {"user_id:u1", "crm_id:C-0"}


@pytest.mark.parametrize(
    ("paths", "rule", "field"),
    [
        (["limit"], {"id_type": "email", "limit": 0}, "rule.limit"),
        (["limit"], {"id_type": "email", "limit": 1001}, "rule.limit"),
        (["limit"], {"id_type": "user_id", "limit": 2}, "rule.limit"),
        (["limit_period"], {"id_type": "email"}, "rule.limit_period"),
        (["limit_period"], {"id_type": "email", "limit_period": 42}, "rule.limit_period"),
        (["priority"], {"id_type": "email", "priority": 1}, "rule.priority"),
        (["priority"], {"id_type": "email", "priority": -1}, "rule.priority"),
        (["blocked_patterns"], {"id_type": "ios.id", "blocked_patterns": ["(unclosed"]}, "rule.blocked_patterns"),
        (["blocked_patterns"], {"id_type": "email", "blocked_patterns": ["^(?!.*@)"]}, "rule.blocked_patterns"),
        (["blocked_patterns"], {"id_type": "email", "blocked_patterns": [r"(a)\1"]}, "rule.blocked_patterns"),
        (["update_time"], {"id_type": "email"}, "update_mask.paths"),
        (["limit"], {"limit": 3}, "rule.id_type"),
        (["limit"], {"id_type": "salesforce:contact", "limit": 3}, "rule.id_type"),
    ],
)
def test_bad_updates_name_the_field(space: Space, paths: list[str], rule: dict[str, Any], field: str) -> None:
    """A rule that cannot be used is INVALID_ARGUMENT naming the request's field, and nothing changes."""
    before = admin(space, "GetIdentityRules", admin_pb2.GetIdentityRulesRequest())
    with pytest.raises(grpc.RpcError) as caught:
        update(space, paths, **rule)
    assert (caught.value.code(), error_reason(caught.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "RULE_INVALID")
    assert [f for f, _ in field_violations(caught.value)] == [field]
    assert admin(space, "GetIdentityRules", admin_pb2.GetIdentityRulesRequest()) == before


@pytest.mark.parametrize(("id_type", "priority", "holder"), [
    ("anonymous_id", 2, "email"), ("ga_client_id", 1, "user_id")])
def test_a_taken_priority_names_the_type_that_holds_it(space: Space, id_type: str, priority: int, holder: str) -> None:
    """A priority another type has is refused naming that type, whichever of the two sorts first."""
    with pytest.raises(grpc.RpcError) as caught:
        update(space, ["priority"], id_type=id_type, priority=priority)
    assert field_violations(caught.value) == [("rule.priority", f"{priority} is already the priority of {holder}")]


def _make_violations(space: Space) -> None:
    """Three blocked user ids, two blocked anonymous ids, one anonymous id over its limit."""
    space.send(*[{"type": "track", "userId": v, "anonymousId": f"a{v}", "event": "E", "messageId": f"b{i}"}
                 for i, v in enumerate(["0", "null", "-1"])])
    space.send(*[{"type": "track", "userId": f"u{i}", "anonymousId": "anonymous", "event": "E"} for i in range(2)])
    space.send(*[{"type": "track", "userId": "many", "anonymousId": f"d{i}", "event": "E", "messageId": f"d{i}"}
                 for i in range(6)])


def test_violations_most_frequent_first_with_operator_names(space: Space) -> None:
    """Violations per rule and type, most frequent first, named as operators know them, latest samples first."""
    _make_violations(space)
    got = [(v.rule_name, v.reason, v.id_type, v.count, list(v.sample_message_ids))
           for v in violations(space).violations]
    assert got[0] == ("ID value blocked", admin_pb2.IDENTITY_VIOLATION_REASON_ID_VALUE_BLOCKED, "user_id", 3,
                      ["b2", "b1", "b0"])
    assert got[1][:4] == ("ID value blocked", admin_pb2.IDENTITY_VIOLATION_REASON_ID_VALUE_BLOCKED,
                          "anonymous_id", 2)
    assert got[2] == ("Identifier value limit exceeded",
                      admin_pb2.IDENTITY_VIOLATION_REASON_IDENTIFIER_VALUE_LIMIT_EXCEEDED, "anonymous_id", 1, ["d5"])
    assert len(got) == 3


def test_violations_page_and_filter(space: Space) -> None:
    """Violations page one at a time in the same order, filter by type and time, and refuse foreign tokens."""
    _make_violations(space)
    everything = [(v.rule_name, v.id_type) for v in violations(space).violations]
    seen, token = [], ""
    while True:
        reply = violations(space, page_size=1, page_token=token)
        seen += [(v.rule_name, v.id_type) for v in reply.violations]
        token = reply.next_page_token
        if not token:
            break
    assert seen == everything
    assert {v.id_type for v in violations(space, id_type="USER_ID").violations} == {"user_id"}
    later = timestamp_pb2.Timestamp()
    later.FromMilliseconds(space.now() + 2 * DAY)
    assert list(violations(space, start_time=later).violations) == []
    first = violations(space, page_size=1).next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        violations(space, page_size=1, page_token=first, id_type="user_id")
    assert error_reason(caught.value) == "PAGE_TOKEN_INVALID"


def test_violations_refuse_an_impossible_start_time(space: Space) -> None:
    """A start time no Timestamp may hold is INVALID_ARGUMENT naming `start_time`."""
    with pytest.raises(grpc.RpcError) as caught:
        violations(space, start_time=timestamp_pb2.Timestamp(seconds=10**12))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["start_time"]


def test_a_pattern_matches_in_time_linear_in_the_value(space: Space) -> None:
    """Blocked patterns are RE2's: one that backtracks for ever in most engines (`(a+)+$` over
    thousands of `a` then `!`) answers at once, and blocks what it matches."""
    update(space, ["blocked_patterns"], id_type="email", blocked_patterns=["(a+)+$", "^[0-]*$"])
    space.send({"type": "identify", "userId": "slow", "traits": {"email": "a" * 40 + "!"}},
               {"type": "identify", "userId": "blocked", "traits": {"email": "x" + "a" * 40}})
    assert ids_of(space, "user_id:slow") == {"user_id:slow", "email:" + "a" * 40 + "!"}
    assert ids_of(space, "user_id:blocked") == {"user_id:blocked"}
