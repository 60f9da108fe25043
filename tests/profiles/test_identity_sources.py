"""Where identifiers come from (the GA client id, keys a rule names), how long they may be, which
type a held-back identifier is filed under, and the daily limit period: through the real server."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2
from google.protobuf import field_mask_pb2

from tests.conftest import bearer, error_reason, field_violations
from tests.evaluator.conftest import DAY, HOUR, Space
from tests.profiles.test_identity_rules import ids_of, update, violations

DAILY = admin_pb2.IDENTITY_LIMIT_PERIOD_DAILY


def rules_of(space: Space) -> dict[str, admin_pb2.IdentityRule]:
    reply = space.running.admin.GetIdentityRules(admin_pb2.GetIdentityRulesRequest(),
                                                 metadata=bearer(space.tokens["admin"]))
    return {rule.id_type: rule for rule in reply.identity_rules.rules}


def listed_violations(space: Space) -> list[tuple[str, str, int]]:
    return [(v.rule_name, v.id_type, v.count) for v in violations(space).violations]


# -- ga_client_id ---------------------------------------------------------------------------------

def test_two_visitors_sharing_a_ga_client_id_are_one_profile(space: Space) -> None:
    """The Google Analytics client id, in `context.integrations` or in the call's own
    `integrations`, is the `ga_client_id` identifier: two anonymous ids carrying it land on one
    profile."""
    space.send(
        {"type": "page", "anonymousId": "a1", "name": "Home",
         "context": {"integrations": {"Google Analytics": {"clientId": "GA1.2.345.678"}}}},
        {"type": "track", "anonymousId": "a2", "event": "Viewed",
         "integrations": {"Google Analytics": {"clientId": "GA1.2.345.678"}}},
    )
    expected = {"anonymous_id:a1", "anonymous_id:a2", "ga_client_id:GA1.2.345.678"}
    assert ids_of(space, "anonymous_id:a1") == expected
    assert ids_of(space, "ga_client_id:GA1.2.345.678") == expected


def test_other_integrations_carry_no_ga_client_id(space: Space) -> None:
    """Only `Google Analytics`'s `clientId` is read: another integration's, or a switch, is not."""
    space.send(
        {"type": "track", "anonymousId": "b1", "event": "E",
         "integrations": {"Mixpanel": {"clientId": "same"}, "Google Analytics": True}},
        {"type": "track", "anonymousId": "b2", "event": "E", "integrations": {"Mixpanel": {"clientId": "same"}}},
    )
    assert ids_of(space, "anonymous_id:b1") == {"anonymous_id:b1"}


# -- keys a rule names ------------------------------------------------------------------------------

def test_a_rule_reads_its_type_from_the_keys_it_names(space: Space) -> None:
    """With `phone` read from `properties.phone` and `context.traits.phone`, two visitors sending the
    same phone in either place are one profile; before the rule named them, the key was not read."""
    space.send({"type": "track", "anonymousId": "early", "event": "E", "properties": {"phone": "+33 1 23"}})
    rule = update(space, ["source_keys"], id_type="phone", source_keys=["properties.phone", "context.traits.phone"])
    assert list(rule.source_keys) == ["properties.phone", "context.traits.phone"]
    assert list(rules_of(space)["phone"].source_keys) == ["properties.phone", "context.traits.phone"]
    space.send(
        {"type": "track", "anonymousId": "v1", "event": "Called", "properties": {"phone": "+33 1 23"}},
        {"type": "identify", "anonymousId": "v2", "context": {"traits": {"phone": "+33 1 23"}}},
        {"type": "track", "anonymousId": "v3", "event": "Called", "properties": {"phone": 33123}},
    )
    assert ids_of(space, "anonymous_id:v1") == {"anonymous_id:v1", "anonymous_id:v2", "phone:+33 1 23"}
    assert ids_of(space, "anonymous_id:early") == {"anonymous_id:early"}
    assert ids_of(space, "phone:33123") == {"anonymous_id:v3", "phone:33123"}


def test_a_key_read_by_a_rule_follows_the_rule_s_limits(space: Space) -> None:
    """An identifier read from a key is held to its type's rule like any other: a blocked value is
    not used, and counted under its type."""
    update(space, ["source_keys", "blocked_values"], id_type="phone", source_keys=["properties.phone"],
           blocked_values=["unknown"])
    space.send({"type": "track", "anonymousId": "w1", "event": "E", "properties": {"phone": "unknown"}})
    assert ids_of(space, "anonymous_id:w1") == {"anonymous_id:w1"}
    assert listed_violations(space) == [("ID value blocked", "phone", 1)]


@pytest.mark.parametrize(
    ("id_type", "keys"),
    [
        pytest.param("phone", ["traits.phone"], id="not properties or context.traits"),
        pytest.param("phone", ["properties."], id="no key"),
        pytest.param("phone", ["properties.phone", "properties.phone"], id="twice"),
        pytest.param("phone", [f"properties.k{i}" for i in range(11)], id="eleven keys"),
        pytest.param("phone", ["properties." + "k" * 200], id="too long"),
        pytest.param("user_id", ["properties.uid"], id="user_id"),
        pytest.param("anonymous_id", ["properties.anon"], id="anonymous_id"),
    ],
)
def test_source_keys_are_checked(space: Space, id_type: str, keys: list[str]) -> None:
    """A key that is not `properties.<key>` or `context.traits.<key>`, a repeat, more than ten, or
    keys for a type read from its own field are RULE_INVALID naming `rule.source_keys`, and change
    nothing."""
    request = admin_pb2.UpdateIdentityRuleRequest(
        rule=admin_pb2.IdentityRule(id_type=id_type, source_keys=keys),
        update_mask=field_mask_pb2.FieldMask(paths=["source_keys"]))
    with pytest.raises(grpc.RpcError) as caught:
        space.running.admin.UpdateIdentityRule(request, metadata=bearer(space.tokens["admin"]))
    assert (caught.value.code(), error_reason(caught.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "RULE_INVALID")
    assert [f for f, _ in field_violations(caught.value)] == ["rule.source_keys"]
    assert "phone" not in rules_of(space)


# -- what a violation is filed under ----------------------------------------------------------------

def test_a_violation_is_filed_under_the_type_held_back(space: Space) -> None:
    """After identify u1/a1 then identify u2/a1, the user_id limit keeps u2 apart by holding back
    `anonymous_id:a1`: the violation is listed under `anonymous_id`, and filtering by it finds it."""
    space.send({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    space.send({"type": "identify", "userId": "u2", "anonymousId": "a1", "messageId": "second"})
    assert ids_of(space, "user_id:u2") == {"user_id:u2"}
    assert listed_violations(space) == [("Identifier value limit exceeded", "anonymous_id", 1)]
    assert [v.sample_message_ids[0] for v in violations(space, id_type="anonymous_id").violations] == ["second"]
    assert list(violations(space, id_type="user_id").violations) == []


# -- lengths --------------------------------------------------------------------------------------

def test_an_identifier_over_500_characters_is_held_back_as_blocked(space: Space) -> None:
    """An identifier value over 500 characters (an email here) stays on the call but is not used,
    counted as `ID value blocked` under its type; at 500 it is used."""
    long_email = "e" * 495 + "@x.io"
    space.send({"type": "identify", "userId": "long", "traits": {"email": "x" + long_email}},
               {"type": "identify", "userId": "fits", "traits": {"email": long_email}})
    assert ids_of(space, "user_id:long") == {"user_id:long"}
    assert ids_of(space, "user_id:fits") == {"user_id:fits", f"email:{long_email}"}
    assert listed_violations(space) == [("ID value blocked", "email", 1)]


def test_a_custom_type_over_100_characters_is_not_read(space: Space) -> None:
    """A `context.externalIds` item whose type is over 100 characters is skipped, like an encoded one."""
    items: list[dict[str, Any]] = [{"id": "c1", "type": "t" * 101}, {"id": "c2", "type": "t" * 100}]
    space.send({"type": "track", "userId": "ext", "event": "E", "context": {"externalIds": items}})
    assert ids_of(space, "user_id:ext") == {"user_id:ext", f"{'t' * 100}:c2"}


def test_a_custom_type_holding_a_colon_is_not_read(space: Space) -> None:
    """A `context.externalIds` type with a `:` is skipped: no `type:value` address could find it."""
    items: list[dict[str, Any]] = [{"id": "c1", "type": "salesforce:contact"}, {"id": "c2", "type": "salesforce"}]
    space.send({"type": "track", "userId": "colon", "event": "E", "context": {"externalIds": items}})
    assert ids_of(space, "user_id:colon") == {"user_id:colon", "salesforce:c2"}


# -- daily ----------------------------------------------------------------------------------------

def test_a_daily_limit_counts_the_last_24_hours(space: Space) -> None:
    """With email limited to one a day, a second email the same day is dropped (a time-limit
    violation) and a third one 25 hours later is kept."""
    rule = update(space, ["limit", "limit_period"], id_type="email", limit=1, limit_period=DAILY)
    assert (rule.limit, rule.limit_period) == (1, DAILY)
    assert rules_of(space)["email"].limit_period == DAILY
    space.send({"type": "identify", "userId": "d1", "traits": {"email": "0@x.io"}})
    space.send({"type": "identify", "userId": "d1", "traits": {"email": "1@x.io"}})
    assert ids_of(space, "user_id:d1") == {"user_id:d1", "email:0@x.io"}
    space.running.server.engine.clock.set(space.now() + DAY + HOUR)
    space.send({"type": "identify", "userId": "d1", "traits": {"email": "2@x.io"}})
    assert ids_of(space, "user_id:d1") == {"user_id:d1", "email:0@x.io", "email:2@x.io"}
    assert listed_violations(space) == [("Identifier value time limit exceeded", "email", 1)]
