"""ProfilesService errors: unknown and malformed addresses, bad arguments, page tokens, token scopes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, profiles_pb2
from google.protobuf import timestamp_pb2

from tests.conftest import bearer, error_reason, field_violations
from tests.evaluator.conftest import Space, new_space
from tests.profiles.conftest import ACCOUNTS, Shop, call, ref

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


def failure(space: Space, rpc: str, request: Any, scope: str = "read") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(space, rpc, request, scope)
    return caught.value


def far_future() -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=10**12)


@pytest.mark.parametrize(
    ("request_message", "code", "reason", "field"),
    [
        (profiles_pb2.GetMetadataRequest(profile=ref("user_id:nobody")), NOT_FOUND, "PROFILE_NOT_FOUND", None),
        (profiles_pb2.GetMetadataRequest(profile=ref("user_id:ADA")), NOT_FOUND, "PROFILE_NOT_FOUND", None),
        (profiles_pb2.GetMetadataRequest(profile=ref("prf_nothing")), NOT_FOUND, "PROFILE_NOT_FOUND", None),
        (profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada", ACCOUNTS)), NOT_FOUND, "PROFILE_NOT_FOUND", None),
        (profiles_pb2.GetMetadataRequest(profile=ref("no-colon")), INVALID, "PROFILE_ID_INVALID", "profile.id"),
        (profiles_pb2.GetMetadataRequest(profile=ref("prf_")), INVALID, "PROFILE_ID_INVALID", "profile.id"),
        (profiles_pb2.GetMetadataRequest(profile=ref(":ada")), INVALID, "PROFILE_ID_INVALID", "profile.id"),
        (profiles_pb2.GetMetadataRequest(profile=ref("user_id:")), INVALID, "PROFILE_ID_INVALID", "profile.id"),
        (profiles_pb2.GetMetadataRequest(profile=ref("")), INVALID, "PROFILE_ID_MISSING", "profile.id"),
        (profiles_pb2.GetMetadataRequest(), INVALID, "PROFILE_ID_MISSING", "profile.id"),
        (
            profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(id="user_id:ada")),
            INVALID, "COLLECTION_INVALID", "profile.collection",
        ),
        (
            profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(collection=9, id="user_id:ada")),
            INVALID, "COLLECTION_INVALID", "profile.collection",
        ),
    ],
)
def test_address_errors(shop: Shop, request_message: Any, code: grpc.StatusCode, reason: str,
                        field: str | None) -> None:
    """Unknown profiles are NOT_FOUND "profile not found"; malformed addresses INVALID_ARGUMENT naming the field."""
    error = failure(shop.space, "GetMetadata", request_message)
    assert (error.code(), error_reason(error)) == (code, reason)
    if code == NOT_FOUND:
        assert error.details() == "profile not found"
    else:
        assert [f for f, _ in field_violations(error)] == [field]


@pytest.mark.parametrize(
    ("rpc", "request_message", "reason", "field"),
    [
        ("ListTraits", profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), trait_class=9), "ENUM_INVALID",
         "trait_class"),
        ("ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), sort_order=9), "ENUM_INVALID",
         "sort_order"),
        ("ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), start_time=far_future()),
         "TIMESTAMP_INVALID", "start_time"),
        ("ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), end_time=far_future()),
         "TIMESTAMP_INVALID", "end_time"),
        ("ListEvents", profiles_pb2.ListEventsRequest(
            profile=ref("user_id:ada"), start_time=timestamp_pb2.Timestamp(seconds=20),
            end_time=timestamp_pb2.Timestamp(seconds=10)), "TIME_RANGE_INVALID", "end_time"),
        ("ListEvents", profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=-1), "PAGE_SIZE_INVALID",
         "page_size"),
        ("ListLinks", profiles_pb2.ListLinksRequest(profile=ref("user_id:ada"), page_size=-5), "PAGE_SIZE_INVALID",
         "page_size"),
    ],
)
def test_argument_errors(shop: Shop, rpc: str, request_message: Any, reason: str, field: str) -> None:
    """Unknown enum values, impossible times and negative page sizes are INVALID_ARGUMENT naming the field."""
    error = failure(shop.space, rpc, request_message)
    assert (error.code(), error_reason(error)) == (INVALID, reason)
    assert [f for f, _ in field_violations(error)] == [field]


def _first_token(space: Space, **fields: Any) -> str:
    request = profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=2, **fields)
    token = call(space, "ListEvents", request).next_page_token
    assert token
    return str(token)


@pytest.mark.parametrize(
    "changes",
    [
        {"include": ["Bought"]},
        {"exclude": ["Viewed"]},
        {"sort_order": profiles_pb2.SORT_ORDER_ASCENDING},
        {"start_time": timestamp_pb2.Timestamp(seconds=1)},
        {"end_time": timestamp_pb2.Timestamp(seconds=4_000_000_000)},
        {"profile": ref("user_id:many")},
    ],
)
def test_a_token_only_works_with_its_request(shop: Shop, changes: dict[str, Any]) -> None:
    """A token used with other filters or another profile is INVALID_ARGUMENT PAGE_TOKEN_INVALID."""
    fields = {"profile": ref("user_id:ada"), "page_size": 2, "page_token": _first_token(shop.space), **changes}
    error = failure(shop.space, "ListEvents", profiles_pb2.ListEventsRequest(**fields))
    assert (error.code(), error_reason(error)) == (INVALID, "PAGE_TOKEN_INVALID")
    assert [f for f, _ in field_violations(error)] == ["page_token"]


def test_a_token_of_another_listing_is_refused(shop: Shop) -> None:
    """A token from ListEvents does not page ListTraits of the same profile."""
    request = profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada"), page_token=_first_token(shop.space))
    assert error_reason(failure(shop.space, "ListTraits", request)) == "PAGE_TOKEN_INVALID"


def test_a_merge_into_the_profile_ends_its_tokens(shop: Shop) -> None:
    """A profile absorbs another while a client pages its events: the merged events may sort
    before the token's cursor, so the token is refused (PAGE_TOKEN_INVALID) and the client starts
    again and gets every event; paging a profile never merged into goes on as before."""
    space = new_space(shop.space.running)
    space.send(*[{"type": "track", "userId": "keeper", "event": "E", "messageId": f"k{n}",
                  "timestamp": f"2026-01-0{n + 1}T00:00:00Z"} for n in range(4)],
               *[{"type": "track", "anonymousId": "stray", "event": "E", "messageId": f"s{n}",
                  "timestamp": f"2026-01-0{n + 1}T12:00:00Z"} for n in range(4)])
    first = call(space, "ListEvents", profiles_pb2.ListEventsRequest(
        profile=ref("user_id:keeper"), page_size=2, sort_order=profiles_pb2.SORT_ORDER_ASCENDING))
    space.send({"type": "identify", "userId": "keeper", "anonymousId": "stray"})
    request = profiles_pb2.ListEventsRequest(profile=ref("user_id:keeper"), page_size=2,
                                             sort_order=profiles_pb2.SORT_ORDER_ASCENDING,
                                             page_token=first.next_page_token)
    assert error_reason(failure(space, "ListEvents", request)) == "PAGE_TOKEN_INVALID"
    again = call(space, "ListEvents", profiles_pb2.ListEventsRequest(
        profile=ref("user_id:keeper"), page_size=2, sort_order=profiles_pb2.SORT_ORDER_ASCENDING))
    following = call(space, "ListEvents", profiles_pb2.ListEventsRequest(
        profile=ref("user_id:keeper"), page_size=20, sort_order=profiles_pb2.SORT_ORDER_ASCENDING,
        page_token=again.next_page_token))
    listed = {e.message_id for e in [*again.events, *following.events]}
    assert listed >= {*(f"k{n}" for n in range(4)), *(f"s{n}" for n in range(4))}


def test_a_token_of_another_space_is_refused(shop: Shop) -> None:
    """The same request in another space, for a user of the same id, refuses the first space's token."""
    other = new_space(shop.space.running)
    other.send(*[{"type": "track", "userId": "ada", "event": "E"} for _ in range(3)])
    request = profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=2,
                                             page_token=_first_token(shop.space))
    assert error_reason(failure(other, "ListEvents", request)) == "PAGE_TOKEN_INVALID"
    assert call(other, "ListEvents", profiles_pb2.ListEventsRequest(
        profile=ref("user_id:ada"), page_size=2, page_token=_first_token(other))).events


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:10] + t[11:],
        lambda t: "x" + t,
        lambda t: "not a token",
        lambda t: "eyJjIjpbMCwiIl0sImYiOiIwMDAwIn0AAAAAAAAAAAAAAAAAAAAA",
    ],
    ids=["last character changed", "a character dropped", "a character added", "garbled", "forged"],
)
def test_altered_and_forged_tokens_are_refused(shop: Shop, forge: Any) -> None:
    """A token not exactly as the server made it is INVALID_ARGUMENT PAGE_TOKEN_INVALID, never a crash."""
    request = profiles_pb2.ListEventsRequest(profile=ref("user_id:ada"), page_size=2,
                                             page_token=forge(_first_token(shop.space)))
    error = failure(shop.space, "ListEvents", request)
    assert (error.code(), error_reason(error)) == (INVALID, "PAGE_TOKEN_INVALID")


@pytest.mark.parametrize(("scope", "code"), [
    ("write", grpc.StatusCode.PERMISSION_DENIED),
    ("admin", grpc.StatusCode.PERMISSION_DENIED),
])
def test_only_a_read_token_reads_profiles(shop: Shop, scope: str, code: grpc.StatusCode) -> None:
    """ProfilesService needs a `read` token; others are PERMISSION_DENIED."""
    error = failure(shop.space, "ListTraits", profiles_pb2.ListTraitsRequest(profile=ref("user_id:ada")), scope)
    assert error.code() == code


def test_no_token_is_unauthenticated(shop: Shop) -> None:
    """A call without a token, or with an unknown one, is UNAUTHENTICATED."""
    request = profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada"))
    for metadata in ((), bearer("nope")):
        with pytest.raises(grpc.RpcError) as caught:
            shop.space.running.profiles.GetMetadata(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_profiles_of_another_space_are_not_found(shop: Shop) -> None:
    """A read token only sees its own space: Ada of the shop is unknown elsewhere, even by `prf_` id."""
    public_id = call(shop.space, "GetMetadata",
                     profiles_pb2.GetMetadataRequest(profile=ref("user_id:ada"))).metadata.profile_id
    other = new_space(shop.space.running)
    for address in ("user_id:ada", public_id):
        error = failure(other, "GetMetadata", profiles_pb2.GetMetadataRequest(profile=ref(address)))
        assert error.code() == NOT_FOUND
