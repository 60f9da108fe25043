"""Every Profiles page fits the 4 MiB a default gRPC client accepts, however large its items: a
page stops early, by bytes, and its token carries on where it stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from audiences.v1 import common_pb2, ingest_pb2, profiles_pb2

from tests.conftest import Running

DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024


def send(running: Running, calls: list[dict[str, Any]]) -> None:
    """Sends calls in batches under the 500 KB batch limit; every one must be accepted."""
    batch: list[dict[str, Any]] = []
    for call in [*calls, None]:
        if call is None or len(json.dumps({"batch": [*batch, call]})) > 480_000:
            reply = running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": batch}).encode()),
                                             metadata=running.auth("write"))
            assert reply.accepted_count == len(batch), reply.results
            batch = []
        if call is not None:
            batch.append(call)


def read_all(running: Running, rpc: Callable[..., Any], request: Any, items: str) -> list[list[Any]]:
    """Every page of a listing at the largest page size, through a default client; the items of each page."""
    pages, token = [], ""
    while True:
        request.page_token = token
        reply = rpc(request, metadata=running.auth("read"))
        assert reply.ByteSize() <= DEFAULT_CLIENT_LIMIT
        pages.append(list(getattr(reply, items)))
        token = reply.next_page_token
        if not token:
            return pages


def user(address: str) -> common_pb2.ProfileRef:
    return common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id=address)


def test_events_of_any_size_page_within_a_default_client_s_limit(running: Running) -> None:
    """150 calls near 32 KB each (4.8 MB) and 60 whose numbers weigh five times more as a Struct
    than as JSON are all read back with a default client, 200 asked per page: each page is cut
    under the limit and the pages together hold every event exactly once."""
    big = [{"type": "track", "userId": "heavy", "event": "Big", "messageId": f"big-{i}",
            "properties": {"blob": "x" * 31_000}} for i in range(150)]
    numbers = [{"type": "track", "userId": "heavy", "event": "Numbers", "messageId": f"num-{i}",
                "properties": {"n": [0] * 10_000}} for i in range(60)]
    send(running, big + numbers)
    request = profiles_pb2.ListEventsRequest(profile=user("user_id:heavy"), page_size=200)
    pages = read_all(running, running.profiles.ListEvents, request, "events")
    ids = [event.message_id for page in pages for event in page]
    assert sorted(ids) == sorted(call["messageId"] for call in big + numbers)
    assert len(pages) > 2
    assert all(len(page) < 200 for page in pages)


def test_traits_of_any_size_page_within_a_default_client_s_limit(running: Running) -> None:
    """150 traits of 30 KB each (4.5 MB) are read back with a default client, 200 asked per page,
    every key once, in key order."""
    send(running, [{"type": "identify", "userId": "wordy", "traits": {f"t{i:03d}": "y" * 30_000}}
                   for i in range(150)])
    request = profiles_pb2.ListTraitsRequest(profile=user("user_id:wordy"), page_size=200, verbose=True)
    pages = read_all(running, running.profiles.ListTraits, request, "traits")
    assert [trait.key for page in pages for trait in page] == [f"t{i:03d}" for i in range(150)]
    assert len(pages) > 1


def test_a_page_that_fits_is_not_cut(running: Running) -> None:
    """Small items come in pages of the size asked for, so the byte limit changes nothing for them."""
    send(running, [{"type": "track", "userId": "light", "event": "E", "messageId": f"l{i}"} for i in range(30)])
    request = profiles_pb2.ListEventsRequest(profile=user("user_id:light"), page_size=20)
    pages = read_all(running, running.profiles.ListEvents, request, "events")
    assert [len(page) for page in pages] == [20, 10]



def test_links_to_accounts_with_many_identifiers_page_within_the_limit(running: Running) -> None:
    """A user linked to 30 accounts of 275 long identifiers each (each link lists its account's
    identifiers, 4 MB in all) reads back every link with a default client, 200 asked per page."""
    calls = []
    for account in range(30):
        for batch in range(5):
            ids = [{"type": f"t{k}", "id": f"{account}-{batch}-" + "v" * 480, "collection": "accounts"}
                   for k in range(55)]
            calls.append({"type": "group", "userId": "member", "groupId": f"acct-{account}",
                          "context": {"externalIds": ids}})
    send(running, calls)
    request = profiles_pb2.ListLinksRequest(profile=user("user_id:member"), page_size=200)
    pages = read_all(running, running.profiles.ListLinks, request, "links")
    links = [link for page in pages for link in page]
    linked = [next(i.value for i in link.profile.external_ids if i.type == "group_id") for link in links]
    assert sorted(linked) == sorted(f"acct-{a}" for a in range(30))
    assert len(pages) > 1
    assert all(len(link.profile.external_ids) == 276 for link in links)
