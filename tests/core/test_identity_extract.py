"""Which external ids a tracking-spec message carries (docs/identity.md, Segment's externalIDs table)."""

from __future__ import annotations

from typing import Any

import pytest

from audiences_server.core.identity import ExternalId, ExtractedIds, extract_external_ids


def ids(*pairs: str) -> tuple[ExternalId, ...]:
    return tuple(sorted(ExternalId.parse(pair) for pair in pairs))


def device(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "E", "anonymousId": "a1", "context": {"device": fields}}


@pytest.mark.parametrize(
    ("message", "users"),
    [
        pytest.param({"type": "track", "userId": "u1"}, ids("user_id:u1"), id="userId"),
        pytest.param(
            {"type": "page", "anonymousId": "a1"}, ids("anonymous_id:a1"), id="anonymousId"
        ),
        pytest.param(
            {"type": "identify", "userId": "u1", "anonymousId": "a1"},
            ids("user_id:u1", "anonymous_id:a1"),
            id="both",
        ),
        pytest.param(
            {"type": "identify", "userId": "u1", "traits": {"email": "j@x.io"}},
            ids("user_id:u1", "email:j@x.io"),
            id="traits.email",
        ),
        pytest.param(
            {"type": "track", "userId": "u1", "context": {"traits": {"email": "j@x.io"}}},
            ids("user_id:u1", "email:j@x.io"),
            id="context.traits.email",
        ),
        pytest.param(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "top@x.io"},
                "context": {"traits": {"email": "ctx@x.io"}},
            },
            ids("user_id:u1", "email:top@x.io"),
            id="traits.email wins over context.traits.email",
        ),
        pytest.param(
            {"type": "identify", "userId": "u1", "traits": {"email": None},
             "context": {"traits": {"email": "ctx@x.io"}}},
            ids("user_id:u1", "email:ctx@x.io"),
            id="unusable traits.email falls back to context",
        ),
        pytest.param(
            {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"email": "co@x.io"}},
            ids("user_id:u1"),
            id="group traits.email is the account's, not the user's",
        ),
        pytest.param(
            device(type="ios", id="D1", token="T1"),
            ids("anonymous_id:a1", "ios.id:D1", "ios.push_token:T1"),
            id="ios device id and push token",
        ),
        pytest.param(
            device(type="android", id="D1", token="T1"),
            ids("anonymous_id:a1", "android.id:D1", "android.push_token:T1"),
            id="android device id and push token",
        ),
        pytest.param(
            device(type="ios", advertisingId="AD", adTrackingEnabled=True),
            ids("anonymous_id:a1", "ios.idfa:AD"),
            id="ios idfa with ad tracking",
        ),
        pytest.param(
            device(type="android", advertisingId="AD", adTrackingEnabled=True),
            ids("anonymous_id:a1", "android.idfa:AD"),
            id="android idfa with ad tracking",
        ),
        pytest.param(
            device(type="ios", advertisingId="AD", adTrackingEnabled=False),
            ids("anonymous_id:a1"),
            id="no idfa when ad tracking is off",
        ),
        pytest.param(
            device(type="ios", advertisingId="AD"),
            ids("anonymous_id:a1"),
            id="no idfa when ad tracking is not said",
        ),
        pytest.param(
            device(type="ios", advertisingId="AD", adTrackingEnabled="true"),
            ids("anonymous_id:a1"),
            id="no idfa when ad tracking is only the string true",
        ),
        pytest.param(
            device(type="iOS", id="D1"),
            ids("anonymous_id:a1", "ios.id:D1"),
            id="device type is case-insensitive",
        ),
        pytest.param(
            device(type="web", id="D1", token="T1"),
            ids("anonymous_id:a1"),
            id="other device types give no device ids",
        ),
        pytest.param(
            device(id="D1"), ids("anonymous_id:a1"), id="no device type gives no device ids"
        ),
        pytest.param(
            {"type": "track", "userId": 42, "anonymousId": 7.0},
            ids("user_id:42", "anonymous_id:7"),
            id="numbers become their decimal text",
        ),
        pytest.param(
            {"type": "track", "userId": 4.5}, ids("user_id:4.5"), id="fractional number"
        ),
        pytest.param(
            {"type": "track", "userId": True, "anonymousId": ["a"], "context": "x"},
            (),
            id="booleans, lists and bad context are not ids",
        ),
        pytest.param(
            {"type": "track", "userId": float("nan"), "anonymousId": {"a": 1}},
            (),
            id="NaN and objects are not ids",
        ),
        pytest.param(
            {"type": "track", "userId": "0", "anonymousId": "null"},
            ids("user_id:0", "anonymous_id:null"),
            id="blocked values are still extracted (the planner drops them)",
        ),
        pytest.param(
            {"type": "track", "userId": "u1", "anonymousId": "u1"},
            ids("user_id:u1", "anonymous_id:u1"),
            id="same value of two types is two ids",
        ),
    ],
)
def test_default_user_ids(message: dict[str, Any], users: tuple[ExternalId, ...]) -> None:
    """Each default externalID is read from its documented location, and nothing else is."""
    assert extract_external_ids(message).users == users


def custom(*items: Any) -> dict[str, Any]:
    return {"type": "track", "event": "E", "userId": "u1", "context": {"externalIds": list(items)}}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            custom({"id": "555", "type": "phone", "collection": "users", "encoding": "none"}),
            ExtractedIds(users=ids("user_id:u1", "phone:555")),
            id="users collection",
        ),
        pytest.param(
            custom({"id": "acme", "type": "sfdc_id", "collection": "accounts", "encoding": "none"}),
            ExtractedIds(users=ids("user_id:u1"), accounts=ids("sfdc_id:acme")),
            id="accounts collection",
        ),
        pytest.param(
            custom({"id": "555", "type": " Phone_Number ", "collection": "users"}),
            ExtractedIds(users=ids("user_id:u1", "phone_number:555")),
            id="type is lower-cased and trimmed, encoding defaults to none",
        ),
        pytest.param(
            custom({"id": 555, "type": "phone"}),
            ExtractedIds(users=ids("user_id:u1", "phone:555")),
            id="numeric id, collection defaults to users",
        ),
        pytest.param(
            custom(
                {"id": "555", "type": "phone", "collection": "devices"},
                {"id": "555", "type": "phone", "encoding": "base64"},
                {"id": "555", "type": ""},
                {"id": None, "type": "phone"},
                {"type": "phone"},
                "not an object",
            ),
            ExtractedIds(users=ids("user_id:u1")),
            id="unusable items are skipped",
        ),
        pytest.param(
            custom(
                {"id": "555", "type": "phone"},
                {"id": "555", "type": "PHONE"},
                {"id": "u1", "type": "user_id"},
            ),
            ExtractedIds(users=ids("user_id:u1", "phone:555")),
            id="duplicates collapse",
        ),
        pytest.param(
            {"type": "track", "userId": "u1", "context": {"externalIds": "phone:555"}},
            ExtractedIds(users=ids("user_id:u1")),
            id="externalIds that is not a list is ignored",
        ),
    ],
)
def test_custom_external_ids(message: dict[str, Any], expected: ExtractedIds) -> None:
    """`context.externalIds` items become ids of their collection, types in lower case."""
    assert extract_external_ids(message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            {"type": "group", "userId": "u1", "groupId": "g1"},
            ExtractedIds(users=ids("user_id:u1"), accounts=ids("group_id:g1")),
            id="group call",
        ),
        pytest.param(
            {"type": "group", "userId": "u1", "groupId": 99},
            ExtractedIds(users=ids("user_id:u1"), accounts=ids("group_id:99")),
            id="numeric groupId",
        ),
        pytest.param(
            {"type": "track", "userId": "u1", "groupId": "g1", "context": {"groupId": "g2"}},
            ExtractedIds(users=ids("user_id:u1")),
            id="groupId outside a group call is no account id",
        ),
        pytest.param(
            {"type": "alias", "userId": "u1", "previousId": "a1"},
            ExtractedIds(users=ids("user_id:u1", "anonymous_id:a1")),
            id="alias previousId is an anonymous_id",
        ),
        pytest.param(
            {"type": "alias", "userId": "u1", "previousId": "a1", "anonymousId": "a1"},
            ExtractedIds(users=ids("user_id:u1", "anonymous_id:a1")),
            id="alias previousId equal to anonymousId collapses",
        ),
        pytest.param(
            {"type": "identify", "userId": "u1", "previousId": "a1"},
            ExtractedIds(users=ids("user_id:u1")),
            id="previousId outside an alias call is ignored",
        ),
    ],
)
def test_call_specific_ids(message: dict[str, Any], expected: ExtractedIds) -> None:
    """Group calls name an account by groupId; alias calls add previousId."""
    assert extract_external_ids(message) == expected


def test_order_is_sorted_and_deterministic() -> None:
    """Ids come sorted by (type, value) whatever order the message lists them in."""
    items = [{"id": v, "type": t} for t, v in [("zed", "2"), ("abc", "9"), ("zed", "1")]]
    forward = extract_external_ids(custom(*items))
    backward = extract_external_ids(custom(*reversed(items)))
    assert forward == backward
    assert [str(i) for i in forward.users] == ["abc:9", "user_id:u1", "zed:1", "zed:2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user_id:u1", ExternalId("user_id", "u1")),
        ("Email:J@x.io", ExternalId("email", "J@x.io")),
        ("phone:+1:555", ExternalId("phone", "+1:555")),
        ("anonymous_id:", ExternalId("anonymous_id", "")),
    ],
)
def test_parse_type_value(text: str, expected: ExternalId) -> None:
    """`type:value` splits at the first colon and lower-cases only the type."""
    assert ExternalId.parse(text) == expected
    assert str(expected) == f"{expected.type}:{expected.value}"


@pytest.mark.parametrize("text", ["no-colon", ":value", "  :v"])
def test_parse_rejects_missing_type(text: str) -> None:
    """An id without a type is refused with ValueError."""
    with pytest.raises(ValueError, match="type:value"):
        ExternalId.parse(text)
