"""ProfilesService through the generated client: every read and each of its parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from audiences.v1 import profiles_pb2
from google.protobuf import json_format, timestamp_pb2

from tests.evaluator.conftest import HOUR
from tests.profiles.conftest import ACCOUNTS, USERS, Shop, call, ref


def stamp(ms: int) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromMilliseconds(ms)
    return out


def traits(shop: Shop, **fields: Any) -> list[profiles_pb2.Trait]:
    request = profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), page_size=200, **fields)
    return list(call(shop.space, "ListTraits", request).traits)


def event_ids(shop: Shop, *, address: str = "user_id:ada", **fields: Any) -> list[str]:
    request = profiles_pb2.ListEventsRequest(profile=ref(address), page_size=200, **fields)
    return [e.message_id for e in call(shop.space, "ListEvents", request).events]


def test_traits_of_every_class_by_key(shop: Shop) -> None:
    """Custom traits, computed traits and audiences by key; a custom trait sharing a key comes first."""
    got = [(t.key, t.trait_class, json_format.MessageToDict(t.value)) for t in traits(shop, verbose=True)]
    assert got == [
        ("address", profiles_pb2.TRAIT_CLASS_CUSTOM, {"city": "Paris"}),
        ("bought", profiles_pb2.TRAIT_CLASS_CUSTOM, "yes"),
        ("bought", profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT, 5),
        ("buyers", profiles_pb2.TRAIT_CLASS_AUDIENCE, True),
        ("email", profiles_pb2.TRAIT_CLASS_CUSTOM, "ada@x.io"),
        ("plan", profiles_pb2.TRAIT_CLASS_CUSTOM, "pro"),
        ("recent_buyers", profiles_pb2.TRAIT_CLASS_AUDIENCE, False),
    ]


def test_verbose_traits_name_their_source_and_time(shop: Shop) -> None:
    """Verbose: a custom trait's source is the call's message id and its time the event time;
    a computed one's source is the definition's id and its time the tick's."""
    by_key = {(t.key, t.trait_class): t for t in traits(shop, verbose=True)}
    plan = by_key[("plan", profiles_pb2.TRAIT_CLASS_CUSTOM)]
    assert (plan.source_id, plan.update_time.ToMilliseconds()) == ("m-identify", shop.base - 11 * HOUR)
    buyers = by_key[("buyers", profiles_pb2.TRAIT_CLASS_AUDIENCE)]
    assert buyers.source_id.startswith("aud_")
    assert buyers.update_time.ToMilliseconds() == shop.base
    assert by_key[("bought", profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT)].source_id.startswith("trt_")


def test_plain_traits_carry_key_and_value_only(shop: Shop) -> None:
    """Without `verbose` a trait has no class, source or time."""
    for trait in traits(shop):
        assert (trait.trait_class, trait.source_id, trait.HasField("update_time")) == (0, "", False)


@pytest.mark.parametrize(
    ("include", "trait_class", "keys"),
    [
        (["plan"], profiles_pb2.TRAIT_CLASS_UNSPECIFIED, ["plan"]),
        (["bought"], profiles_pb2.TRAIT_CLASS_UNSPECIFIED, ["bought", "bought"]),
        ([], profiles_pb2.TRAIT_CLASS_AUDIENCE, ["buyers", "recent_buyers"]),
        ([], profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT, ["bought"]),
        ([], profiles_pb2.TRAIT_CLASS_CUSTOM, ["address", "bought", "email", "plan"]),
        (["plan", "buyers"], profiles_pb2.TRAIT_CLASS_CUSTOM, ["plan"]),
        (["coupon", "nothing"], profiles_pb2.TRAIT_CLASS_UNSPECIFIED, []),
    ],
)
def test_trait_filters(shop: Shop, include: list[str], trait_class: int, keys: list[str]) -> None:
    """`include` names keys and `trait_class` picks a class; a trait removed by null is gone."""
    assert [t.key for t in traits(shop, include=include, trait_class=trait_class)] == keys


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize(
    ("include", "trait_class"),
    [
        ([], profiles_pb2.TRAIT_CLASS_UNSPECIFIED),
        ([], profiles_pb2.TRAIT_CLASS_CUSTOM),
        ([], profiles_pb2.TRAIT_CLASS_AUDIENCE),
        (["bought", "plan", "buyers"], profiles_pb2.TRAIT_CLASS_UNSPECIFIED),
        (["bought", "plan"], profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT),
    ],
)
def test_trait_pages_add_up_to_the_whole_list(shop: Shop, include: list[str], trait_class: int, size: int) -> None:
    """Paging traits of any filter returns each trait once, in order, even across a key shared
    by a custom and a computed trait."""
    whole = [(t.key, t.trait_class) for t in traits(shop, include=include, trait_class=trait_class, verbose=True)]
    paged: list[tuple[str, int]] = []
    token = ""
    while True:
        request = profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), page_size=size, page_token=token,
                                                 include=include, trait_class=trait_class, verbose=True)
        reply = call(shop.space, "ListTraits", request)
        paged += [(t.key, t.trait_class) for t in reply.traits]
        token = reply.next_page_token
        if not token:
            break
    assert whole
    assert paged == whole


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ["m-page", "t9", "t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0", "m-crm"]),
        ({"sort_order": profiles_pb2.SORT_ORDER_DESCENDING}, ["m-page", "t9", "t8", "t7"]),
        ({"sort_order": profiles_pb2.SORT_ORDER_ASCENDING}, ["m-crm", "t0", "t1", "t2"]),
        ({"include": ["Bought"], "sort_order": profiles_pb2.SORT_ORDER_ASCENDING}, ["t0", "t2", "t4", "t6", "t8"]),
        ({"exclude": ["Bought", "Viewed", "Synced"]}, ["m-page"]),
        ({"include": ["Page Viewed", "Synced"]}, ["m-page", "m-crm"]),
        ({"include": ["Nothing"]}, []),
    ],
)
def test_event_names_and_order(shop: Shop, fields: dict[str, Any], expected: list[str]) -> None:
    """Events newest first unless asked otherwise, filtered by name (page calls are `Page Viewed`)."""
    assert event_ids(shop, **fields)[: len(expected) or None] == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (-4 * HOUR, None, ["m-page", "t9", "t8", "t7", "t6"]),
        (None, -8 * HOUR, ["t1", "t0", "m-crm"]),
        (-8 * HOUR, -6 * HOUR, ["t3", "t2"]),
        (-6 * HOUR, -6 * HOUR, []),
    ],
)
def test_event_time_range(shop: Shop, start: int | None, end: int | None, expected: list[str]) -> None:
    """`start_time` is inclusive and `end_time` exclusive, both on the event time."""
    fields: dict[str, Any] = {
        name: stamp(shop.base + at) for name, at in (("start_time", start), ("end_time", end)) if at is not None
    }
    assert event_ids(shop, **fields) == expected


def test_events_carry_the_call(shop: Shop) -> None:
    """An event shows its type, properties (page name and category too), context, ids and both times."""
    page = call(shop.space, "ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=1))
    event = page.events[0]
    assert (event.message_id, event.type, event.event) == ("m-page", profiles_pb2.EVENT_TYPE_PAGE, "Page Viewed")
    assert json_format.MessageToDict(event.properties) == {"page_name": "Home", "page_category": "Docs"}
    assert json_format.MessageToDict(event.context) == {"page": {"url": "https://x.io/"}}
    assert (event.user_id, event.anonymous_id) == ("ada", "dev1")
    assert event.event_time.ToMilliseconds() == shop.base - 30 * 60_000
    assert event.HasField("receive_time")
    track = call(
        shop.space, "ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), include=["Viewed"])
    ).events[0]
    assert (track.type, json_format.MessageToDict(track.properties)) == (profiles_pb2.EVENT_TYPE_TRACK, {"i": 9})
    # The Struct says 9.0; the JSON text beside it keeps the integer, and so does the context's.
    assert track.properties.fields["i"].number_value == 9.0
    assert json.loads(track.properties_json) == {"i": 9}
    assert isinstance(json.loads(track.properties_json)["i"], int)
    assert json.loads(event.properties_json) == {"page_name": "Home", "page_category": "Docs"}
    assert json.loads(event.context_json) == {"page": {"url": "https://x.io/"}}


def test_events_stamped_alike_order_by_message_id(shop: Shop) -> None:
    """Ties on event time order by message id, both ways."""
    assert event_ids(shop, address="user_id:tie", sort_order=profiles_pb2.SORT_ORDER_ASCENDING) == ["tie-a", "tie-b"]
    assert event_ids(shop, address="user_id:tie") == ["tie-b", "tie-a"]


def test_external_ids_oldest_first(shop: Shop) -> None:
    """Identifiers come oldest first, with their time, collection, and `none` encoding for custom types only."""
    reply = call(shop.space, "ListExternalIds", profiles_pb2.ListExternalIdsRequest(profile=ref("email:ada@x.io")))
    got = [(i.type, i.value, i.encoding, i.collection) for i in reply.external_ids]
    assert got == [
        ("anonymous_id", "dev1", "", USERS),
        ("email", "ada@x.io", "", USERS),
        ("user_id", "ada", "", USERS),
        ("crm_id", "C-1", "none", USERS),
    ]
    times = [i.create_time.ToMilliseconds() for i in reply.external_ids]
    assert times == sorted(times)


def test_links_both_ways_oldest_first(shop: Shop) -> None:
    """A user's accounts and an account's users, oldest link (by the group call's event time) first."""
    accounts = call(shop.space, "ListLinks", profiles_pb2.ListLinksRequest(profile=ref("user_id:ada"))).links
    assert [[i.value for i in link.profile.external_ids] for link in accounts] == [["initech"], ["acme"]]
    assert [link.create_time.ToMilliseconds() for link in accounts] == [shop.base - 5 * HOUR, shop.base - 2 * HOUR]
    assert {link.profile.collection for link in accounts} == {ACCOUNTS}
    assert accounts[0].profile.profile_id.startswith("prf_")
    users = call(shop.space, "ListLinks", profiles_pb2.ListLinksRequest(profile=ref("group_id:acme", ACCOUNTS))).links
    assert [{f"{i.type}:{i.value}" for i in link.profile.external_ids} for link in users] == [
        {"user_id:ada", "anonymous_id:dev1", "email:ada@x.io", "crm_id:C-1"},
        {"user_id:bob"},
    ]


def test_account_traits(shop: Shop) -> None:
    """An account's custom traits come from its group calls."""
    reply = call(shop.space, "ListTraits", profiles_pb2.ListTraitsRequest(profile=ref("group_id:acme", ACCOUNTS)))
    assert [(t.key, t.value.string_value) for t in reply.traits] == [("tier", "gold")]


def test_metadata(shop: Shop) -> None:
    """Metadata: the profile's id and collection, creation, and its first and last message by event time."""
    meta = call(shop.space, "GetMetadata", profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada"))).metadata
    assert meta.profile_id.startswith("prf_")
    assert meta.collection == USERS
    assert meta.first_message_time.ToMilliseconds() == shop.base - 12 * HOUR
    assert meta.last_message_time.ToMilliseconds() == shop.base - 30 * 60_000
    assert meta.create_time.ToMilliseconds() <= meta.update_time.ToMilliseconds()
    assert list(meta.merged_profile_ids) == []


def test_memberships_are_current_ones(shop: Shop) -> None:
    """Memberships list the audiences a profile is in now, not the ones it left."""
    reply = call(
        shop.space, "ListAudienceMemberships", profiles_pb2.ListAudienceMembershipsRequest(profile=ref("user_id:ada"))
    )
    got = [(m.audience_key, m.audience_id[:4], m.enter_time.ToMilliseconds()) for m in reply.memberships]
    assert got == [("buyers", "aud_", shop.base)]
    assert reply.memberships[0].audience_name


@pytest.mark.parametrize("address", ["user_id:ada", "USER_ID:ada", " user_id:ada", "email:ada@x.io", "crm_id:C-1"])
def test_any_address_finds_the_profile(shop: Shop, address: str) -> None:
    """Every identifier finds the profile, with the type read case-insensitively, and so does its `prf_` id."""
    meta = call(shop.space, "GetMetadata", profiles_pb2.GetMetadataRequest(profile=ref(address))).metadata
    by_id = call(shop.space, "GetMetadata", profiles_pb2.GetMetadataRequest(profile=ref(meta.profile_id))).metadata
    assert by_id.profile_id == meta.profile_id
    replies = [
        call(shop.space, rpc, request(profile=ref(address)))
        for rpc, request in (
            ("ListTraits", profiles_pb2.ListTraitsRequest),
            ("ListEvents", profiles_pb2.ListEventsRequest),
            ("ListExternalIds", profiles_pb2.ListExternalIdsRequest),
            ("ListLinks", profiles_pb2.ListLinksRequest),
            ("ListAudienceMemberships", profiles_pb2.ListAudienceMembershipsRequest),
        )
    ]
    assert {r.profile_id for r in replies} == {meta.profile_id}


@pytest.mark.parametrize(
    ("rpc", "request_type", "field", "size", "expected"),
    [
        ("ListEvents", profiles_pb2.ListEventsRequest, "events", 0, 10),
        ("ListEvents", profiles_pb2.ListEventsRequest, "events", 200, 200),
        ("ListEvents", profiles_pb2.ListEventsRequest, "events", 201, 200),
        ("ListEvents", profiles_pb2.ListEventsRequest, "events", 1_000_000, 200),
        ("ListExternalIds", profiles_pb2.ListExternalIdsRequest, "external_ids", 0, 1),
    ],
)
def test_page_size_default_and_cap(
    shop: Shop, rpc: str, request_type: Any, field: str, size: int, expected: int
) -> None:
    """page_size 0 means 10 and anything above 200 is read as 200."""
    reply = call(shop.space, rpc, request_type(profile=ref("user_id:many"), page_size=size))
    assert len(getattr(reply, field)) == expected
    assert bool(reply.next_page_token) == (expected < 205 and rpc == "ListEvents")
