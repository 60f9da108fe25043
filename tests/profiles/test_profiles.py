"""ProfilesService through the generated client: every read, its parameters, paging and errors."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, profiles_pb2
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import HOUR, Space

USERS, ACCOUNTS = common_pb2.COLLECTION_USERS, common_pb2.COLLECTION_ACCOUNTS


def ref(address: str, collection: int = USERS) -> common_pb2.ProfileRef:
    return common_pb2.ProfileRef(collection=collection, id=address)


def call(space: Space, rpc: str, request: Any) -> Any:
    return getattr(space.running.profiles, rpc)(request, metadata=bearer(space.tokens["read"]))


@pytest.fixture
def shop(space: Space) -> Space:
    """A user with traits, ten events, two accounts, an audience and a computed trait."""
    now = space.now()
    space.send(
        {
            "type": "identify",
            "userId": "ada",
            "anonymousId": "dev1",
            "traits": {"plan": "pro", "email": "ada@x.io", "address": {"city": "Paris"}},
        }
    )
    space.send(
        *[
            {
                "type": "track",
                "userId": "ada",
                "event": "Viewed" if i % 2 else "Bought",
                "properties": {"i": i},
                "at": now - (10 - i) * HOUR,
            }
            for i in range(10)
        ]
    )
    space.send({"type": "page", "userId": "ada", "name": "Home", "at": now - 30 * 60_000})
    space.send(
        {"type": "group", "userId": "ada", "groupId": "acme", "traits": {"tier": "gold"}},
        {"type": "group", "userId": "ada", "groupId": "initech"},
        {"type": "group", "userId": "bob", "groupId": "acme"},
    )
    space.define("buyers", "event('Bought').count() >= 1")
    space.define("bought", "event('Bought').count()", kind="computed_trait")
    space.tick()
    return space


def test_traits_of_every_class(shop: Space) -> None:
    """ListTraits shows custom traits, computed traits and memberships, by key, with their class when verbose."""
    reply = call(
        shop, "ListTraits", profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), verbose=True, page_size=50)
    )
    got = {(t.key, t.trait_class): t for t in reply.traits}
    assert [t.key for t in reply.traits] == sorted(t.key for t in reply.traits)
    assert got[("plan", profiles_pb2.TRAIT_CLASS_CUSTOM)].value.string_value == "pro"
    assert got[("address", profiles_pb2.TRAIT_CLASS_CUSTOM)].value.struct_value["city"] == "Paris"
    assert got[("buyers", profiles_pb2.TRAIT_CLASS_AUDIENCE)].value.bool_value is True
    assert got[("buyers", profiles_pb2.TRAIT_CLASS_AUDIENCE)].source_id.startswith("aud_")
    assert got[("bought", profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT)].value.number_value == 5
    assert reply.profile_id.startswith("prf_")


@pytest.mark.parametrize(
    ("include", "trait_class", "keys"),
    [
        (["plan"], profiles_pb2.TRAIT_CLASS_UNSPECIFIED, ["plan"]),
        ([], profiles_pb2.TRAIT_CLASS_AUDIENCE, ["buyers"]),
        ([], profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT, ["bought"]),
        (["plan", "buyers"], profiles_pb2.TRAIT_CLASS_CUSTOM, ["plan"]),
    ],
)
def test_trait_filters(shop: Space, include: list[str], trait_class: int, keys: list[str]) -> None:
    """`include` names keys and `trait_class` picks a class; without `verbose` only key and value come back."""
    reply = call(
        shop,
        "ListTraits",
        profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), include=include, trait_class=trait_class),
    )
    assert [t.key for t in reply.traits] == keys
    assert all(not t.HasField("update_time") for t in reply.traits)


def test_events_filters_and_order(shop: Space) -> None:
    """ListEvents filters by time and name, sorts either way, and shows page calls as Page Viewed."""
    now = shop.now()
    newest = call(shop, "ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=3))
    assert [e.event for e in newest.events] == ["Page Viewed", "Viewed", "Bought"]
    assert newest.events[0].type == profiles_pb2.EVENT_TYPE_PAGE
    start = timestamp_pb2.Timestamp()
    start.FromMilliseconds(now - 4 * HOUR)
    asc = call(
        shop,
        "ListEvents",
        profiles_pb2.ListEventsRequest(
            profile=ref("user_id:ada"),
            start_time=start,
            include=["Bought"],
            sort_order=profiles_pb2.SORT_ORDER_ASCENDING,
        ),
    )
    assert [e.properties["i"] for e in asc.events] == [6, 8]
    no_views = call(
        shop,
        "ListEvents",
        profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), exclude=["Viewed"], page_size=200),
    )
    assert {e.event for e in no_views.events} == {"Bought", "Page Viewed"}


def test_ids_links_metadata_memberships(shop: Space) -> None:
    """External ids oldest first, links both ways, metadata, and current memberships."""
    ids = call(shop, "ListExternalIds", profiles_pb2.ListExternalIdsRequest(profile=ref("email:ada@x.io")))
    assert {f"{i.type}:{i.value}" for i in ids.external_ids} == {"user_id:ada", "anonymous_id:dev1", "email:ada@x.io"}
    accounts = call(shop, "ListLinks", profiles_pb2.ListLinksRequest(profile=ref("user_id:ada")))
    assert {i.value for link in accounts.links for i in link.profile.external_ids} == {"acme", "initech"}
    users = call(shop, "ListLinks", profiles_pb2.ListLinksRequest(profile=ref("group_id:acme", ACCOUNTS)))
    assert {i.value for link in users.links for i in link.profile.external_ids if i.type == "user_id"} == {"ada", "bob"}
    meta = call(shop, "GetMetadata", profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada"))).metadata
    assert meta.first_message_time.ToMilliseconds() <= meta.last_message_time.ToMilliseconds()
    assert meta.collection == USERS
    memberships = call(
        shop, "ListAudienceMemberships", profiles_pb2.ListAudienceMembershipsRequest(profile=ref("user_id:ada"))
    )
    assert [m.audience_key for m in memberships.memberships] == ["buyers"]
    account_traits = call(shop, "ListTraits", profiles_pb2.ListTraitsRequest(profile=ref("group_id:acme", ACCOUNTS)))
    assert [(t.key, t.value.string_value) for t in account_traits.traits] == [("tier", "gold")]


@pytest.mark.parametrize(
    ("request_message", "code", "reason"),
    [
        (
            profiles_pb2.GetMetadataRequest(profile=ref("user_id:nobody")),
            grpc.StatusCode.NOT_FOUND,
            "PROFILE_NOT_FOUND",
        ),
        (profiles_pb2.GetMetadataRequest(profile=ref("prf_nothing")), grpc.StatusCode.NOT_FOUND, "PROFILE_NOT_FOUND"),
        (
            profiles_pb2.GetMetadataRequest(profile=ref("no-colon")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PROFILE_ID_INVALID",
        ),
        (profiles_pb2.GetMetadataRequest(profile=ref("")), grpc.StatusCode.INVALID_ARGUMENT, "PROFILE_ID_MISSING"),
        (
            profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(id="user_id:ada")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "COLLECTION_INVALID",
        ),
        (
            profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada", ACCOUNTS)),
            grpc.StatusCode.NOT_FOUND,
            "PROFILE_NOT_FOUND",
        ),
    ],
)
def test_errors(shop: Space, request_message: Any, code: grpc.StatusCode, reason: str) -> None:
    """Unknown profiles are NOT_FOUND "profile not found"; malformed addresses are INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        call(shop, "GetMetadata", request_message)
    assert (caught.value.code(), error_reason(caught.value)) == (code, reason)
    if code == grpc.StatusCode.NOT_FOUND:
        assert caught.value.details() == "profile not found"


def test_page_tokens_and_sizes(shop: Space) -> None:
    """page_size is cut to 200; a token from another request, profile or space is PAGE_TOKEN_INVALID."""
    first = call(shop, "ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=2))
    assert len(first.events) == 2
    assert (
        len(
            call(
                shop, "ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=10_000)
            ).events
        )
        == 11
    )
    others = [
        profiles_pb2.ListEventsRequest(
            profile=ref("user_id:ada"), page_size=2, include=["Bought"], page_token=first.next_page_token
        ),
        profiles_pb2.ListEventsRequest(profile=ref("user_id:bob"), page_size=2, page_token=first.next_page_token),
        profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=2, page_token="bm90LWEtdG9rZW4"),
    ]
    for request in others:
        with pytest.raises(grpc.RpcError) as caught:
            call(shop, "ListEvents", request)
        assert error_reason(caught.value) == "PAGE_TOKEN_INVALID"
    with pytest.raises(grpc.RpcError) as caught:
        shop.running.profiles.ListTraits(
            profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada")), metadata=bearer(shop.tokens["write"])
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


LISTINGS = [
    ("ListTraits", profiles_pb2.ListTraitsRequest, "traits", lambda t: (t.key, t.trait_class)),
    ("ListEvents", profiles_pb2.ListEventsRequest, "events", lambda e: e.message_id),
    ("ListExternalIds", profiles_pb2.ListExternalIdsRequest, "external_ids", lambda i: (i.type, i.value)),
    ("ListLinks", profiles_pb2.ListLinksRequest, "links", lambda link: link.profile.profile_id),
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(listing=st.sampled_from(LISTINGS), size=st.integers(1, 6))
def test_paging_yields_every_item_once_in_order(shop: Space, listing: Any, size: int) -> None:
    """Paging through any listing with any page size yields every item exactly once, in order."""
    rpc, request_type, field, key = listing
    everything = [
        key(i)
        for i in getattr(
            call(
                shop,
                rpc,
                request_type(
                    profile=ref("user_id:ada"), page_size=200, **({"verbose": True} if rpc == "ListTraits" else {})
                ),
            ),
            field,
        )
    ]
    seen, token = [], ""
    while True:
        extra = {"verbose": True} if rpc == "ListTraits" else {}
        reply = call(shop, rpc, request_type(profile=ref("user_id:ada"), page_size=size, page_token=token, **extra))
        items = getattr(reply, field)
        assert len(items) <= size
        seen += [key(i) for i in items]
        token = reply.next_page_token
        if not token:
            break
    assert seen == everything
    assert len(seen) == len(set(seen))
