"""Segment's Profile API over HTTP, through a real server and a real HTTP client (urllib)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audiences.v1 import common_pb2, profiles_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import HOUR, T0, Space, new_space


@dataclass
class Reply:
    """An HTTP response: status, raw body and the body as JSON."""

    status: int
    raw: bytes
    headers: dict[str, str]

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Named:
    """A space of the shared server with its name (the `{space}` of the paths)."""

    space: Space
    name: str

    def get(self, path: str, token: str | None = "", **headers: str) -> Reply:
        """GETs a path under this space's profiles with its read token (None: no Authorization)."""
        url = f"{self.space.running.http_url}/v1/spaces/{self.name}/collections/{path}"
        return fetch(url, self.space.tokens["read"] if token == "" else token, **headers)


def fetch(url: str, token: str | None, method: str = "GET", **headers: str) -> Reply:
    """Asks a URL (GET unless told) with HTTP Basic (the token as user name, an empty password)."""
    request = urllib.request.Request(url, headers=headers, method=method)
    if token is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{token}:".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), dict(error.headers))


def named(running: Running) -> Named:
    """A fresh space, with its name."""
    space = new_space(running)
    name = next(s.name for s in running.server.engine.auth.list_spaces() if s.space_id == space.space_id)
    return Named(space, name)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One manual-clock server with HTTP for this module."""
    running = start(Path(tmp_path_factory.mktemp("http_profiles")) / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def _alex(base: int) -> list[dict[str, Any]]:
    identify = {"type": "identify", "userId": "alex", "anonymousId": "anon-1", "messageId": "m-identify",
                "at": base - 10 * HOUR,
                "traits": {"email": "alex@segment.com", "plan": "pro", "visits": 3, "ratio": 2.5, "whole": 4.0,
                           "huge": 12345678901234567890123, "address": {"city": "Paris", "zip": 75001},
                           "bought": "yes"}}
    orders = [{"type": "track", "userId": "alex", "event": "Order Completed", "messageId": f"m-order-{n}",
               "properties": {"revenue": revenue}, "at": base - at * HOUR}
              for n, (revenue, at) in enumerate([(120, 3), (15, 2)], 1)]
    viewed = {"type": "track", "userId": "alex", "event": "Viewed", "messageId": "m-viewed",
              "properties": {"price": 9.5, "count": 2}, "context": {"ip": "10.0.0.1"}, "at": base - HOUR}
    page = {"type": "page", "userId": "alex", "anonymousId": "anon-1", "name": "Home", "messageId": "m-page",
            "at": base - 30 * 60_000, "context": {"page": {"url": "https://x.io/"}}}
    groups = [{"type": "group", "userId": "alex", "groupId": group, "traits": traits, "at": base - at * HOUR}
              for group, traits, at in [("acme", {"employees": 40}, 4), ("initech", {}, 5)]]
    return [identify, *orders, viewed, page, *groups]


def _pager(base: int) -> list[dict[str, Any]]:
    traits = {"type": "identify", "userId": "pager", "traits": {f"t{i:02}": i for i in range(25)},
              "at": base - 2 * HOUR}
    events = [{"type": "track", "userId": "pager", "event": "E", "messageId": f"p-{i:02}",
               "at": base - HOUR + i * 1000} for i in range(25)]
    return [traits, *events]


@dataclass
class Shop:
    """The filled space and the clock time (ms) its calls were stamped relative to."""

    named: Named
    base: int

    def get(self, path: str, token: str | None = "", **headers: str) -> Reply:
        return self.named.get(path, token, **headers)


@pytest.fixture(scope="module")
def shop(server: Running) -> Shop:
    """Alex (email alex@segment.com), from the source `web`: custom traits of every JSON type,
    two orders, a view, a page, two accounts, the audience `high_value_user` (in), the computed traits
    `lifetime_revenue` (135) and `bought` (2, beside a custom `bought`); `pager` with 25 traits
    and 25 events."""
    shop = named(server)
    # Calls sent with a token labelled `web`: the label is their source.
    shop.space.tokens["write"] = server.server.engine.auth.create_token(shop.name, "write", 0, "web").token
    base = shop.space.now()
    shop.space.send(*_alex(base), *_pager(base))
    shop.space.define("high_value_user", "event('Order Completed').where(property('revenue') >= 100).count() >= 1")
    shop.space.define("lifetime_revenue", "event('Order Completed').sum(property('revenue'))", kind="computed_trait")
    shop.space.define("bought", "event('Order Completed').count()", kind="computed_trait")
    shop.space.tick()
    return Shop(shop, base)


ALEX = "users/profiles/email:alex@segment.com"


# -- traits -----------------------------------------------------------------------------------


def test_the_founding_example(shop: Shop) -> None:
    """`…/profiles/email:alex@segment.com/traits?limit=100&include=high_value_user` answers exactly
    Segment's example body."""
    reply = shop.get(f"{ALEX}/traits?limit=100&include=high_value_user")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == {"traits": {"high_value_user": True},
                          "cursor": {"url": "", "has_more": False, "next": "", "limit": 100}}


def test_every_trait_of_a_profile(shop: Shop) -> None:
    """Custom, computed and audience traits in one object by key; the default limit is 10."""
    body = shop.get(f"{ALEX}/traits?limit=200").body
    assert body["traits"] == {
        "address": {"city": "Paris", "zip": 75001}, "bought": 2, "email": "alex@segment.com",
        "high_value_user": True, "huge": 12345678901234567890123, "lifetime_revenue": 135, "plan": "pro",
        "ratio": 2.5, "visits": 3, "whole": 4.0,
    }
    assert shop.get(f"{ALEX}/traits").body["cursor"]["limit"] == 10


def test_numbers_keep_their_json_type(shop: Shop) -> None:
    """An integer prints as an integer (`3`, `135`, a 73-bit one too), a fraction as a fraction, a
    float sent as `4.0` as a float, in traits and in event properties alike."""
    raw = shop.get(f"{ALEX}/traits?include=visits,lifetime_revenue,ratio,huge,whole,address").raw
    for text in (b'"visits":3,', b'"lifetime_revenue":135,', b'"ratio":2.5', b'"huge":12345678901234567890123',
                 b'"whole":4.0', b'"zip":75001'):
        assert text in raw, text
    events = shop.get(f"{ALEX}/events?include=Viewed,Order%20Completed").raw
    for text in (b'"revenue":120', b'"revenue":15', b'"price":9.5', b'"count":2'):
        assert text in events, text
    assert b"120.0" not in events


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("include=plan,visits", ["plan", "visits"]),
        ("include=plan&include=visits,%20ratio", ["plan", "ratio", "visits"]),
        ("class=audience", ["high_value_user"]),
        ("class=computed_trait", ["bought", "lifetime_revenue"]),
        ("class=custom", ["address", "bought", "email", "huge", "plan", "ratio", "visits", "whole"]),
        ("class=custom&include=plan,high_value_user", ["plan"]),
        ("include=nothing", []),
    ],
)
def test_trait_filters(shop: Shop, query: str, keys: list[str]) -> None:
    """`include` (comma-separated, repeatable) names keys and `class` picks one class."""
    assert list(shop.get(f"{ALEX}/traits?limit=200&{query}").body["traits"]) == keys


def test_a_key_of_two_classes_shows_the_last_updated(shop: Shop) -> None:
    """A custom trait and a computed trait of one key: the one updated last wins (here the
    computed count, evaluated after the identify call); `class` shows either."""
    assert shop.get(f"{ALEX}/traits?include=bought").body["traits"] == {"bought": 2}
    assert shop.get(f"{ALEX}/traits?include=bought&class=custom").body["traits"] == {"bought": "yes"}
    assert shop.get(f"{ALEX}/traits?include=bought&class=computed_trait").body["traits"] == {"bought": 2}


def test_a_custom_trait_set_after_the_computed_one_wins(server: Running) -> None:
    """Set again after the tick, the custom trait is the last updated, so it is the one shown."""
    space = named(server)
    base = space.space.now()
    space.space.send({"type": "track", "userId": "u", "event": "E", "at": base - HOUR},
                     {"type": "identify", "userId": "u", "traits": {"n": "custom"}, "at": base - HOUR})
    space.space.define("n", "event('E').count()", kind="computed_trait")
    space.space.tick()
    assert space.get("users/profiles/user_id:u/traits").body["traits"] == {"n": 1}
    space.space.send({"type": "identify", "userId": "u", "traits": {"n": "later"}, "at": base + HOUR})
    assert space.get("users/profiles/user_id:u/traits").body["traits"] == {"n": "later"}


def test_verbose_traits(shop: Shop) -> None:
    """`verbose=true`: each trait is `{value, source_id, updated_at}`; a custom trait's source is
    the call that set it and its time the call's, a computed one's the definition and the tick."""
    traits = shop.get(f"{ALEX}/traits?verbose=true&include=plan,high_value_user,visits").body["traits"]
    assert traits["plan"] == {"value": "pro", "source_id": "m-identify", "updated_at": _iso(shop.base - 10 * HOUR)}
    assert traits["visits"]["value"] == 3
    assert traits["high_value_user"]["value"] is True
    assert traits["high_value_user"]["source_id"].startswith("aud_")
    assert traits["high_value_user"]["updated_at"] == _iso(shop.base)
    assert shop.get(f"{ALEX}/traits?verbose=false&include=plan").body["traits"] == {"plan": "pro"}


def test_account_traits(shop: Shop) -> None:
    """An account's traits come from its group calls, under `collections/accounts`."""
    assert shop.get("accounts/profiles/group_id:acme/traits").body["traits"] == {"employees": 40}


def test_trait_pages_through_next(shop: Shop) -> None:
    """25 custom traits and a computed one at a limit of 10: three pages through `next` (and the
    cursor's `url`), each key once, as one page of 200 shows them."""
    seen: list[str] = []
    cursors = []
    path = "users/profiles/user_id:pager/traits?limit=10"
    reply = shop.get(path)
    while True:
        body = reply.body
        seen += list(body["traits"])
        cursors.append(body["cursor"])
        if not body["cursor"]["has_more"]:
            break
        reply = fetch(shop.named.space.running.http_url + body["cursor"]["url"], shop.named.space.tokens["read"])
    whole = list(shop.get("users/profiles/user_id:pager/traits?limit=200").body["traits"])
    assert whole == ["bought", *[f"t{i:02}" for i in range(25)]]
    assert seen == whole
    assert [(c["has_more"], bool(c["next"]), c["limit"]) for c in cursors] == [(True, True, 10)] * 2 + [
        (False, False, 10)]
    assert cursors[-1]["url"] == ""
    assert cursors[0]["url"].startswith(f"/v1/spaces/{shop.named.name}/collections/users/profiles/user_id:pager/"
                                        "traits?limit=10&next=")
    # `next` given by hand, with another page size, carries on from the same place.
    follow = shop.get(f"{path.replace('limit=10', 'limit=3')}&next={cursors[0]['next']}").body
    assert list(follow["traits"]) == ["t09", "t10", "t11"]


def test_a_page_never_splits_a_key_of_two_classes(shop: Shop) -> None:
    """A page ending on a key held by a custom and a computed trait takes the key's other entry
    too, so a key is answered on one page only, with the value of the last updated."""
    pages = []
    query = "traits?include=address,bought,email&limit=2"
    reply = shop.get(f"{ALEX}/{query}")
    while True:
        pages.append(reply.body["traits"])
        if not reply.body["cursor"]["has_more"]:
            break
        reply = shop.get(f"{ALEX}/{query}&next={reply.body['cursor']['next']}")
    assert pages == [{"address": {"city": "Paris", "zip": 75001}, "bought": 2}, {"email": "alex@segment.com"}]


# -- events -----------------------------------------------------------------------------------


def event_ids(shop: Shop, query: str = "", profile: str = ALEX) -> list[str]:
    return [e["message_id"] for e in shop.get(f"{profile}/events?limit=200&{query}").body["data"]]


def test_an_event_in_segments_shape(shop: Shop) -> None:
    """An event: its call's identifiers, context, type, message id, source, time, properties,
    name and the profile it belongs to."""
    body = shop.get(f"{ALEX}/events?limit=1").body
    profile_id = shop.named.space.running.query(
        "SELECT p.public_id FROM identifiers i JOIN profiles p USING (profile_id)"
        " WHERE i.id_type = 'user_id' AND i.id_value = 'alex'")[0][0]
    assert body["data"] == [{
        "external_ids": [{"collection": "users", "type": "user_id", "id": "alex", "encoding": "none"},
                         {"collection": "users", "type": "anonymous_id", "id": "anon-1", "encoding": "none"}],
        "context": {"page": {"url": "https://x.io/"}}, "type": "page", "message_id": "m-page",
        "source_id": "web",
        "timestamp": _iso(shop.base - 30 * 60_000), "properties": {"page_name": "Home"}, "event": "Page Viewed",
        "related": {"users": profile_id},
    }]
    assert list(body["data"][0]) == ["external_ids", "context", "type", "message_id", "source_id", "timestamp",
                                     "properties", "event", "related"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["m-page", "m-viewed", "m-order-2", "m-order-1"]),
        ("sort=desc", ["m-page", "m-viewed", "m-order-2", "m-order-1"]),
        ("sort=asc", ["m-order-1", "m-order-2", "m-viewed", "m-page"]),
        ("include=Order%20Completed", ["m-order-2", "m-order-1"]),
        ("include=Viewed,Page%20Viewed&sort=asc", ["m-viewed", "m-page"]),
        ("exclude=Order%20Completed,Viewed", ["m-page"]),
        ("include=Nothing", []),
    ],
)
def test_event_names_and_order(shop: Shop, query: str, expected: list[str]) -> None:
    """Newest first unless `sort=asc`; `include`/`exclude` are comma-separated event names."""
    assert event_ids(shop, query) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (-2, None, ["m-page", "m-viewed", "m-order-2"]),
        (None, -2, ["m-order-1"]),
        (-3, -1, ["m-order-2", "m-order-1"]),
        (-2, -2, []),
    ],
)
def test_event_time_range(shop: Shop, start: int | None, end: int | None, expected: list[str]) -> None:
    """`start` is inclusive and `end` exclusive, ISO-8601 times on the event time."""
    query = "&".join(f"{name}={urllib.parse.quote(_iso(shop.base + at * HOUR))}"
                     for name, at in (("start", start), ("end", end)) if at is not None)
    assert event_ids(shop, query) == expected


def test_event_dates_and_offsets(shop: Shop) -> None:
    """A date is midnight UTC, a time without offset is UTC, and an offset is honoured."""
    day = _iso(shop.base)[:10]
    assert event_ids(shop, f"start={day}") == event_ids(shop, f"start={day}T00:00:00Z")
    assert event_ids(shop, f"start={day}T00:00:00") == event_ids(shop, f"start={day}T02:00:00%2B02:00")


def test_event_pages_through_next(shop: Shop) -> None:
    """25 events at a limit of 10, oldest first: three pages through `next`, each event once."""
    seen: list[str] = []
    path = "users/profiles/user_id:pager/events?limit=10&sort=asc"
    reply = shop.get(path)
    while True:
        seen += [e["message_id"] for e in reply.body["data"]]
        cursor = reply.body["cursor"]
        if not cursor["has_more"]:
            assert cursor == {"url": "", "has_more": False, "next": "", "limit": 10}
            break
        reply = fetch(shop.named.space.running.http_url + cursor["url"], shop.named.space.tokens["read"])
    assert seen == [f"p-{i:02}" for i in range(25)]


# -- external ids, links, metadata ------------------------------------------------------------


def test_external_ids(shop: Shop) -> None:
    """Every identifier of the profile, oldest first, in Segment's shape."""
    body = shop.get(f"{ALEX}/external_ids").body
    got = [(i["type"], i["id"], i["collection"], i["encoding"]) for i in body["data"]]
    assert got == [("anonymous_id", "anon-1", "users", "none"), ("email", "alex@segment.com", "users", "none"),
                   ("user_id", "alex", "users", "none")]
    first = body["data"][0]
    assert first == {"source_id": "web", "collection": "users", "id": "anon-1", "type": "anonymous_id",
                     "created_at": first["created_at"], "encoding": "none", "first_message_id": "m-identify"}
    assert list(first) == ["source_id", "collection", "id", "type", "created_at", "encoding", "first_message_id"]
    assert first["created_at"].endswith("Z")
    assert body["cursor"] == {"url": "", "has_more": False, "next": "", "limit": 10}


@pytest.mark.parametrize(
    ("query", "types"),
    [
        ("include=email", ["email"]),
        ("include=user_id,anonymous_id", ["anonymous_id", "user_id"]),
        ("include=user_id&include=email", ["email", "user_id"]),
        ("include=crm_id", []),
    ],
)
def test_external_ids_of_some_types(shop: Shop, query: str, types: list[str]) -> None:
    """`include` (comma-separated, repeatable) keeps the identifiers of those types, still oldest first."""
    assert [i["type"] for i in shop.get(f"{ALEX}/external_ids?{query}").body["data"]] == types


def test_external_ids_of_some_types_page_through_next(shop: Shop) -> None:
    """Paging a filtered list goes on with the filter, and its cursor is refused without it."""
    first = shop.get(f"{ALEX}/external_ids?include=user_id,email&limit=1").body
    assert [i["type"] for i in first["data"]] == ["email"]
    token = first["cursor"]["next"]
    rest = shop.get(f"{ALEX}/external_ids?include=user_id,email&limit=1&next={token}").body
    assert ([i["type"] for i in rest["data"]], rest["cursor"]["has_more"]) == (["user_id"], False)
    assert _error(shop.get(f"{ALEX}/external_ids?limit=1&next={token}")) == (400, "PAGE_TOKEN_INVALID")


@pytest.mark.parametrize(("endpoint", "field"), [("external_ids", "data"), ("metadata", "metadata")])
def test_verbose_is_accepted_where_every_field_is_given(shop: Shop, endpoint: str, field: str) -> None:
    """`verbose` on external ids and metadata is Segment's parameter: accepted, the same body."""
    assert shop.get(f"{ALEX}/{endpoint}?verbose=true").body[field] == shop.get(f"{ALEX}/{endpoint}").body[field]
    assert _error(shop.get(f"{ALEX}/{endpoint}?verbose=maybe")) == (400, "VERBOSE_INVALID")


def test_external_ids_page_through_next(shop: Shop) -> None:
    """A limit of 1 pages through the identifiers one at a time."""
    seen = []
    reply = shop.get(f"{ALEX}/external_ids?limit=1")
    while True:
        seen += [i["type"] for i in reply.body["data"]]
        if not reply.body["cursor"]["has_more"]:
            break
        reply = shop.get(f"{ALEX}/external_ids?limit=1&next={reply.body['cursor']['next']}")
    assert seen == ["anonymous_id", "email", "user_id"]


def test_links_both_ways(shop: Shop) -> None:
    """A user's accounts (oldest link first) and an account's users, in Segment's shape."""
    body = shop.get(f"{ALEX}/links").body
    assert [(d["to_collection"], [(i["type"], i["id"]) for i in d["external_ids"]]) for d in body["data"]] == [
        ("accounts", [("group_id", "initech")]), ("accounts", [("group_id", "acme")])]
    assert body["data"][0]["external_ids"][0] == {
        "id": "initech", "type": "group_id", "source_id": "web", "collection": "accounts",
        "created_at": body["data"][0]["external_ids"][0]["created_at"], "encoding": "none"}
    assert list(body["data"][0]["external_ids"][0]) == ["id", "type", "source_id", "collection", "created_at",
                                                        "encoding"]
    users = shop.get("accounts/profiles/group_id:acme/links").body["data"]
    assert [d["to_collection"] for d in users] == ["users"]
    assert {(i["type"], i["id"]) for i in users[0]["external_ids"]} == {
        ("user_id", "alex"), ("anonymous_id", "anon-1"), ("email", "alex@segment.com")}
    one = shop.get(f"{ALEX}/links?limit=1").body
    assert (len(one["data"]), one["cursor"]["has_more"]) == (1, True)
    rest = shop.get(f"{ALEX}/links?limit=1&next={one['cursor']['next']}").body
    assert [i["id"] for d in rest["data"] for i in d["external_ids"]] == ["acme"]


def test_metadata(shop: Shop) -> None:
    """Metadata in Segment's shape: created and updated times, no expiry, and the first and last
    call by event time with their source."""
    metadata = shop.get(f"{ALEX}/metadata").body["metadata"]
    assert list(metadata) == ["created_at", "updated_at", "expires_at", "first_message_id", "first_source_id",
                              "last_message_id", "last_source_id"]
    assert metadata["expires_at"] is None
    assert metadata["created_at"] <= metadata["updated_at"]
    assert (metadata["first_message_id"], metadata["last_message_id"]) == ("m-identify", "m-page")
    assert (metadata["first_source_id"], metadata["last_source_id"]) == ("web", "web")


def test_a_profile_by_any_of_its_addresses(shop: Shop) -> None:
    """The same profile by user id, anonymous id, email, or its `prf_…` id; a `+` in a value is sent as `%2B`."""
    by_email = shop.get(f"{ALEX}/traits?include=plan").body
    profile_id = shop.named.space.running.query(
        "SELECT p.public_id FROM identifiers i JOIN profiles p USING (profile_id)"
        " WHERE i.id_type = 'user_id' AND i.id_value = 'alex'")[0][0]
    for address in ("user_id:alex", "anonymous_id:anon-1", "EMAIL:alex@segment.com", profile_id):
        assert shop.get(f"users/profiles/{address}/traits?include=plan").body == by_email
    shop.named.space.send({"type": "identify", "userId": "+33 1/2", "traits": {"plan": "plus"}})
    assert shop.get("users/profiles/user_id:%2B33%201%2F2/traits").body["traits"] == {"plan": "plus"}


# -- errors -----------------------------------------------------------------------------------


def _error(reply: Reply) -> tuple[int, str]:
    assert set(reply.body) == {"error"}
    return reply.status, reply.body["error"]["reason"]


@pytest.mark.parametrize("path", [f"{ALEX}/traits", "users/nowhere"])
def test_another_method_is_405_in_segments_shape_after_the_token(shop: Shop, path: str) -> None:
    """POST (or any method but GET) on a Profile API path: with a read token, 405 with Segment's
    `invalid_request_error` and `Allow`; with none, 401 first, as for a read."""
    url = f"{shop.named.space.running.http_url}/v1/spaces/{shop.named.name}/collections/{path}"
    refused = fetch(url, shop.named.space.tokens["read"], method="POST")
    assert (refused.status, refused.body["error"]["code"], refused.headers["Allow"]) == (
        405, "invalid_request_error", "GET, HEAD")
    assert fetch(url, None, method="POST").status == 401


def test_unknown_profile_is_404(shop: Shop) -> None:
    """An address no profile has, in either collection, on every endpoint: 404 "profile not found"."""
    for endpoint in ("traits", "events", "external_ids", "links", "metadata"):
        reply = shop.get(f"users/profiles/user_id:nobody/{endpoint}")
        assert _error(reply) == (404, "PROFILE_NOT_FOUND")
        assert reply.body["error"]["message"] == "profile not found"
    assert _error(shop.get("accounts/profiles/user_id:alex/traits")) == (404, "PROFILE_NOT_FOUND")


def test_error_codes_are_segments(shop: Shop) -> None:
    """Each error's `code` is Segment's Profile API code for it, its `reason` this server's: a
    client written against Segment's reference tells `not_found` from the other failures. The
    request id is in `Request-Id`, where Segment's reference says it is."""
    answers = {
        "not_found": shop.get("users/profiles/user_id:nobody/traits"),
        "validation_error": shop.get("people/profiles/user_id:alex/traits"),
        "invalid_request_error": shop.get(f"{ALEX}/traits?limit=0"),
        "authentication_error": shop.get(f"{ALEX}/traits", "aud_read_unknown"),
    }
    assert {code: (reply.body["error"]["code"], reply.status) for code, reply in answers.items()} == {
        "not_found": ("not_found", 404), "validation_error": ("validation_error", 400),
        "invalid_request_error": ("invalid_request_error", 400), "authentication_error": ("authentication_error", 401)}
    assert answers["not_found"].body == {"error": {"code": "not_found", "reason": "PROFILE_NOT_FOUND",
                                                   "message": "profile not found"}}
    other_path = shop.get("users/elsewhere")
    assert (other_path.status, other_path.body["error"]["code"]) == (400, "validation_error")
    assert answers["not_found"].headers["Request-Id"] == answers["not_found"].headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (f"{ALEX}/traits?limit=0", "LIMIT_INVALID"),
        (f"{ALEX}/traits?limit=201", "LIMIT_INVALID"),
        (f"{ALEX}/traits?limit=ten", "LIMIT_INVALID"),
        (f"{ALEX}/traits?limit=-1", "LIMIT_INVALID"),
        (f"{ALEX}/events?limit=", "LIMIT_INVALID"),
        (f"{ALEX}/traits?limit=1&limit=2", "PARAMETER_REPEATED"),
        (f"{ALEX}/traits?class=audiences", "CLASS_INVALID"),
        (f"{ALEX}/traits?verbose=yes", "VERBOSE_INVALID"),
        (f"{ALEX}/traits?next=garbage", "PAGE_TOKEN_INVALID"),
        (f"{ALEX}/traits?sort=asc", "PARAMETER_UNKNOWN"),
        (f"{ALEX}/metadata?limit=5", "PARAMETER_UNKNOWN"),
        (f"{ALEX}/events?sort=newest", "SORT_INVALID"),
        (f"{ALEX}/events?start=yesterday", "TIMESTAMP_INVALID"),
        (f"{ALEX}/events?start=2027-01-02X10:00:00", "TIMESTAMP_INVALID"),
        (f"{ALEX}/events?start=2027-01-02&end=2027-01-01", "TIME_RANGE_INVALID"),
        ("users/profiles/alex/traits", "PROFILE_ID_INVALID"),
        ("users/profiles/user_id:/traits", "PROFILE_ID_INVALID"),
        ("people/profiles/user_id:alex/traits", "COLLECTION_INVALID"),
        (f"{ALEX}/friends", "ENDPOINT_INVALID"),
        ("users/profiles/user_id:alex", "PATH_INVALID"),
        (f"{ALEX}/traits/more", "PATH_INVALID"),
    ],
)
def test_bad_requests_are_400(shop: Shop, path: str, reason: str) -> None:
    """A bad parameter, cursor, address, collection, endpoint or path: 400 with its reason."""
    assert _error(shop.get(path)) == (400, reason)


def test_a_cursor_of_other_filters_is_400(shop: Shop) -> None:
    """A `next` cursor is valid only with the filters that made it."""
    token = shop.get("users/profiles/user_id:pager/traits?limit=2").body["cursor"]["next"]
    assert _error(shop.get(f"users/profiles/user_id:pager/traits?limit=2&class=custom&next={token}")) == (
        400, "PAGE_TOKEN_INVALID")
    assert _error(shop.get(f"users/profiles/user_id:pager/events?next={token}")) == (400, "PAGE_TOKEN_INVALID")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "TOKEN_MISSING"),
        ({"Authorization": "Basic " + base64.b64encode(b"aud_read_unknown:").decode()}, "TOKEN_UNKNOWN"),
        ({"Authorization": "Bearer something"}, "TOKEN_MALFORMED"),
        ({"Authorization": "Basic !!!"}, "TOKEN_MALFORMED"),
    ],
)
def test_missing_or_bad_token_is_401(shop: Shop, headers: dict[str, str], reason: str) -> None:
    """No token, an unknown one, or an Authorization that is not Basic: 401, before anything
    else is looked at (the path here is wrong too)."""
    for path in (f"{ALEX}/traits", f"{ALEX}/traits?limit=0", "people/x/y"):
        reply = shop.get(path, None, **headers)
        assert _error(reply) == (401, reason)
        assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_token_of_another_scope_is_403(shop: Shop) -> None:
    """A write or admin token of the space: 403."""
    for scope in ("write", "admin"):
        assert _error(shop.get(f"{ALEX}/traits", shop.named.space.tokens[scope])) == (403, "SCOPE_MISSING")


def test_a_token_of_another_space_learns_nothing(shop: Shop, server: Running) -> None:
    """A read token of another space gets, for this space's profiles, exactly the answer it gets
    for a space that does not exist: 404 "space not found", whatever the profile or parameters."""
    other = named(server)
    other.space.send({"type": "identify", "userId": "alex", "traits": {"email": "alex@segment.com"}})
    token = other.space.tokens["read"]
    root = server.http_url + "/v1/spaces"
    replies = [fetch(f"{root}/{space}/collections/{path}", token)
               for space in (shop.named.name, "no-such-space")
               for path in (f"{ALEX}/traits", "users/profiles/user_id:nobody/metadata", f"{ALEX}/traits?limit=0")]
    assert {(r.status, r.raw) for r in replies} == {(404, replies[0].raw)}
    assert replies[0].body["error"] == {"code": "not_found", "reason": "SPACE_NOT_FOUND", "message": "space not found"}
    # The same token reads its own space's profile of that address.
    assert other.get(f"{ALEX}/traits").body["traits"] == {"email": "alex@segment.com"}


def test_the_readme_curl_example_answers_as_written(server: Running, tmp_path: Path) -> None:
    """The README's curl example, run verbatim (only the host pointed at the test's server) from a
    folder holding the server's var/credentials.json, after the walkthrough's calls and
    definitions in the default space, prints exactly the body the README shows."""
    default = next(s.space_id for s in server.server.engine.auth.list_spaces() if s.name == "default")
    space = Space(server, default, server.tokens)
    now = space.now()
    space.send({"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com", "plan": "pro"}},
               {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"revenue": 120},
                "at": now - HOUR},
               {"type": "track", "userId": "grace", "event": "Order Completed", "properties": {"revenue": 15},
                "at": now - HOUR})
    space.define("big_buyers", "event('Order Completed').where(property('revenue') >= 100).within(30 days)"
                               ".count() >= 1")
    space.define("lifetime_revenue", "event('Order Completed').sum(property('revenue'))", kind="computed_trait")
    space.tick()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## The Profile API over HTTP\n", 1)[1]
    script, shown = (re.search(rf"```{language}\n(.*?)```", section, re.S) for language in ("sh", "json"))
    assert script is not None
    assert shown is not None
    assert "http://127.0.0.1:8080" in script.group(1)
    (tmp_path / "var").mkdir()
    shutil.copy(server.db.parent / "credentials.json", tmp_path / "var" / "credentials.json")
    ran = subprocess.run(["bash", "-c", script.group(1).replace("http://127.0.0.1:8080", server.http_url)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == shown.group(1).strip()


def _iso(ms: int) -> str:
    from audiences_server.core.tracking import format_time

    return format_time(ms)


def test_an_event_lists_every_identifier_its_call_carried(server: Running) -> None:
    """An event's `external_ids` are all the identifiers its call carried, as ingestion read them
    (a device id, `context.traits.email`, `context.externalIds`; a blocked value, `email: "null"`,
    is none), `user_id` and `anonymous_id` first, over HTTP and in gRPC's `Event.external_ids`."""
    space = named(server)
    space.space.send({"type": "track", "userId": "ada", "anonymousId": "anon-9", "event": "Opened",
                      "messageId": "m-carried", "context": {
                          "traits": {"email": "ada@example.com"}, "device": {"type": "ios", "id": "dev-1"},
                          "externalIds": [{"id": "c-42", "type": "shop_customer", "collection": "users",
                                           "encoding": "none"}, {"id": "null", "type": "email", "collection": "users",
                                                                 "encoding": "none"}]}})
    expected = [("user_id", "ada"), ("anonymous_id", "anon-9"), ("email", "ada@example.com"), ("ios.id", "dev-1"),
                ("shop_customer", "c-42")]
    body = space.get("users/profiles/user_id:ada/events").body
    assert [(i["type"], i["id"]) for i in body["data"][0]["external_ids"]] == expected
    assert {(i["collection"], i["encoding"]) for i in body["data"][0]["external_ids"]} == {("users", "none")}
    reply = server.profiles.ListEvents(profiles_pb2.ListEventsRequest(
        profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id="user_id:ada")),
        metadata=bearer(space.space.tokens["read"]))
    assert [(i.type, i.value) for i in reply.events[0].external_ids] == expected
