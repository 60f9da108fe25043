"""Paging through ProfilesService listings: every item once, in order, whatever the page size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audiences.v1 import profiles_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.evaluator.conftest import HOUR, Space
from tests.profiles.conftest import ACCOUNTS, Shop, call, ref

Listing = tuple[str, Any, str, Callable[[Any], Any], dict[str, Any]]
LISTINGS: list[Listing] = [
    ("ListTraits", profiles_pb2.ListTraitsRequest, "traits", lambda t: (t.key, t.trait_class), {"verbose": True}),
    ("ListTraits", profiles_pb2.ListTraitsRequest, "traits", lambda t: t.key,
     {"trait_class": profiles_pb2.TRAIT_CLASS_CUSTOM}),
    ("ListEvents", profiles_pb2.ListEventsRequest, "events", lambda e: e.message_id, {}),
    ("ListEvents", profiles_pb2.ListEventsRequest, "events", lambda e: e.message_id,
     {"sort_order": profiles_pb2.SORT_ORDER_ASCENDING, "exclude": ["Viewed"]}),
    ("ListExternalIds", profiles_pb2.ListExternalIdsRequest, "external_ids", lambda i: (i.type, i.value), {}),
    ("ListLinks", profiles_pb2.ListLinksRequest, "links", lambda link: link.profile.profile_id, {}),
    ("ListAudienceMemberships", profiles_pb2.ListAudienceMembershipsRequest, "memberships",
     lambda m: m.audience_key, {}),
]
ADDRESSES = [ref("user_id:ada"), ref("group_id:acme", ACCOUNTS)]


def page_through(space: Space, listing: Listing, profile: Any, size: int,
                 between: Callable[[], None] = lambda: None) -> list[Any]:
    """Every item of a listing, read `size` at a time, calling `between` after each page."""
    rpc, request_type, field, key, extra = listing
    seen, token = [], ""
    while True:
        reply = call(space, rpc, request_type(profile=profile, page_size=size, page_token=token, **extra))
        items = getattr(reply, field)
        assert len(items) <= size
        seen += [key(i) for i in items]
        token = reply.next_page_token
        if not token:
            return seen
        assert len(items) == size
        between()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(listing=st.sampled_from(LISTINGS), profile=st.sampled_from(ADDRESSES), size=st.integers(1, 7))
def test_paging_yields_every_item_once_in_order(shop: Shop, listing: Listing, profile: Any, size: int) -> None:
    """Paging through any listing with any page size yields every item exactly once, in the listing's order."""
    everything = page_through(shop.space, listing, profile, 200)
    assert page_through(shop.space, listing, profile, size) == everything
    assert len(everything) == len(set(everything))


def test_paging_is_stable_while_events_arrive(space: Space) -> None:
    """Events arriving between pages, older or newer, never repeat or hide an event already there."""
    now = space.now()
    space.send(*[{"type": "track", "userId": "u", "event": "E", "messageId": f"e{i:02}", "at": now - i * HOUR}
                 for i in range(20)])
    arrivals = iter(range(100))

    def arrive() -> None:
        n = next(arrivals)
        space.send({"type": "track", "userId": "u", "event": "E", "messageId": f"new{n:02}",
                    "at": now - (n % 3) * 7 * HOUR - 30 * 60_000})

    listing = LISTINGS[2]
    seen = page_through(space, listing, ref("user_id:u"), 3, arrive)
    assert len(seen) == len(set(seen))
    assert [m for m in seen if m.startswith("e")] == [f"e{i:02}" for i in range(20)]
