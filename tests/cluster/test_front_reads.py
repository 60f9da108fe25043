"""The HTTP Profile API and ListLinks through a cluster's front server: after the random equality
stream, every profile read over HTTP through the front answers as one node's HTTP Profile API
does for the same stream (bodies, cursors and paging, errors), and ListLinks over gRPC as one
node's, an account's links merged from every shard that holds a part of them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import httpx
from audiences.v1 import common_pb2, profiles_pb2
from google.protobuf import json_format
from yarl import URL

from audiences_server.api.computations import COLLECTION_ENUM
from audiences_server.api.context import set_grant
from audiences_server.api.profiles import ProfilesServicer
from audiences_server.cluster.log import JetStreamLog, LocalLog, Log
from audiences_server.errors import AudiencesError
from audiences_server.http.profiles import Read, error_body, serve
from audiences_server.store.spaces import Grant
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, SingleNode
from tests.cluster.streams import HOUR, T0, Stream
from tests.cluster.test_front_admin import SOURCE, FrontDriven, _ids, _named, drive

# Every user id, and the anonymous ids of some people (the others' resolve to the same profiles).
USERS = [f"user_id:u{p}" for p in range(14)] + [f"anonymous_id:a{p}-{k}" for p in range(0, 14, 3) for k in range(3)]
EMAILS = [f"email:u{p}@example.com" for p in range(4)]
ACCOUNTS = [f"group_id:g{g}" for g in range(4)]
# Each read, with the query of its first page (pages after it follow `next`).
QUERIES = {
    "traits": ["", "limit=2", "include=plan,tier&verbose=true", "class=custom&verbose=1&limit=1",
               "class=audience&verbose=true", "class=computed_trait&verbose=true"],
    "events": ["limit=3", "sort=asc&limit=4", "include=Order%20Completed", "exclude=Page%20Viewed&limit=2",
               "start=2027-01-15T06:00:00Z&end=2027-01-16&sort=asc&limit=2"],
    "external_ids": ["", "limit=1", "include=anonymous_id,email&limit=2", "verbose=true"],
    "links": ["", "limit=1"],
    "metadata": ["", "verbose=false"],
}


class OneNodeHttp:
    """One node's HTTP Profile API for the same stream, called as the route calls it."""

    def __init__(self, single: SingleNode, tokens: dict[str, str]) -> None:
        self._engine = single.engine
        self.tokens = tokens

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        url = URL(path)
        parts = url.path.split("/")  # /v1/spaces/S/collections/C/profiles/P/E
        read = Read(parts[3], parts[5], parts[7], parts[8], url.query, url)
        try:
            return 200, json.loads(serve(self._engine, self.tokens["read"] if token is None else token, read))
        except AudiencesError as error:
            return error_body(error)


def _front_get(driven: FrontDriven, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(driven.front.http_url + path, auth=(driven.front.tokens["read"] if token is None else token, ""))
    return answer.status_code, answer.json()


def _path(collection: str, address: str, endpoint: str, query: str) -> str:
    path = f"/v1/spaces/default/collections/{collection}/profiles/{quote(address, safe=':@')}/{endpoint}"
    return f"{path}?{query}" if query else path


def _plain(body: dict[str, Any], collection: str, endpoint: str, self_id: str, names: dict[str, str]) -> dict[str, Any]:
    """A body without what a file names its own way: page tokens (the cursor says whether there
    is a next page, and its url keeps every other parameter), the profile's own `prf_` id (as
    `self`) and definitions' ids (by key). An account's identifiers and custom traits name their
    group call (`source_id`, `first_message_id`) only when the call's user lives on the account's
    shard (docs/scaling.md): empty through the front, those fields are left out of both sides."""
    body = _named(json.loads(json.dumps(body)), names)
    cursor = body.get("cursor")
    if cursor is not None and cursor["next"]:
        cursor["next"] = "TOKEN"
        cursor["url"] = str(URL(cursor["url"]).update_query(next="TOKEN"))
    for event in body.get("data", []) if endpoint == "events" else []:
        assert event["related"] == {collection: self_id}
        event["related"] = {collection: "self"}
    return body


def _account_group_fields(one: dict[str, Any], front: dict[str, Any], endpoint: str, collection: str) -> int:
    """Leaves out, on both sides, an account's call fields that the front gives empty (see
    `_plain`); returns how many it checked equal instead."""
    pairs: list[tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]] = []
    if endpoint == "external_ids" and collection == "accounts":
        pairs += [(o, f, ("source_id", "first_message_id")) for o, f in zip(one["data"], front["data"], strict=True)]
    if endpoint == "links" and collection == "users":
        pairs += [(o, f, ("source_id",)) for lo, lf in zip(one["data"], front["data"], strict=True)
                  for o, f in zip(lo["external_ids"], lf["external_ids"], strict=True)]
    if endpoint == "traits" and collection == "accounts":
        pairs += [(one["traits"][key], front["traits"][key], ("source_id",)) for key in one["traits"]
                  if isinstance(front["traits"].get(key), dict) and "source_id" in front["traits"][key]
                  and not front["traits"][key]["source_id"].startswith(("aud_", "trt_", "definition "))]
    checked = 0
    for o, f, names in pairs:
        for name in names:
            if f[name] == "":
                o.pop(name)
                f.pop(name)
            else:
                checked += 1
    return checked


def _same_http(driven: FrontDriven, single: SingleNode, one_node: OneNodeHttp, every: int = 1) -> None:
    """Every read of every profile over HTTP, page after page, answers through the front as on one
    node; so do an unknown profile (404), bad parameters and a bad address (400), a token the
    front does not know (401) and one of another scope (403). With `every`, only every n-th
    address of each collection is read (a run over another log, whose reads are the same code)."""
    set_grant(Grant(SPACE, "default", "read"))
    one_ids = ProfilesServicer(single.engine)
    single_names = _ids(single.engine.readers.get())
    front_names = _ids(driven.front.server.engine.readers.get())
    auth = driven.front.auth("read")
    compared = account_fields = pages = 0
    for collection, addresses in (("users", USERS + EMAILS), ("accounts", ACCOUNTS)):
        for address in addresses[::every]:
            request = profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(
                collection=COLLECTION_ENUM[collection], id=address))
            try:
                one_self = one_ids.GetMetadata(request, None).metadata.profile_id
            except AudiencesError:
                one_self = ""
            front_self = ""
            for endpoint, queries in QUERIES.items():
                for query in queries:
                    # Page after page: each side follows its own `next` url (tokens are each file's own).
                    one_url = front_url = _path(collection, address, endpoint, query)
                    while one_url:
                        one_status, one_body = one_node.get(one_url)
                        front_status, front_body = _front_get(driven, front_url)
                        assert front_status == one_status, (front_url, front_body, one_body)
                        if one_status != 200:
                            assert front_body == one_body, front_url
                            assert one_status == 404, front_url
                            assert not one_self, front_url
                            break
                        front_self = front_self or driven.front.profiles.GetMetadata(
                            request, metadata=auth).metadata.profile_id
                        one = _plain(one_body, collection, endpoint, one_self, single_names)
                        front = _plain(front_body, collection, endpoint, front_self, front_names)
                        account_fields += _account_group_fields(one, front, endpoint, collection)
                        assert front == one, front_url
                        compared += 1
                        one_url, front_url = (body.get("cursor", {}).get("url", "") for body in (one_body, front_body))
                        assert bool(one_url) == bool(front_url), front_url
                        pages += bool(one_url)
    assert compared > 400 // every, compared
    assert pages > 50 // every, pages
    assert account_fields > 0  # some account calls' fields are there (their users on the account's shard)
    _same_errors(driven, one_node)


def _same_errors(driven: FrontDriven, one_node: OneNodeHttp) -> None:
    cases = [
        (_path("users", "user_id:nobody", "traits", ""), None, 404),
        (_path("accounts", "group_id:nowhere", "links", ""), None, 404),
        (_path("users", "user_id:u1", "traits", "limit=0"), None, 400),
        (_path("users", "user_id:u1", "events", "sort=sideways"), None, 400),
        (_path("users", "user_id:u1", "events", "start=2027-01-16&end=2027-01-15"), None, 400),
        (_path("users", "user_id:u1", "external_ids", "bogus=1"), None, 400),
        (_path("users", "user_id:u1", "traits", "next=not-a-token"), None, 400),
        (_path("accounts", "group_id:g1", "links", "next=not-a-token"), None, 400),
        (_path("users", "no-colon", "metadata", ""), None, 400),
        (_path("users", "user_id:u1", "friends", ""), None, 400),
        (_path("people", "user_id:u1", "traits", ""), None, 400),
        ("/v1/spaces/elsewhere/collections/users/profiles/user_id:u1/traits", None, 404),
        (_path("users", "user_id:u1", "traits", ""), "not-a-token", 401),
        (_path("users", "user_id:u1", "traits", ""), "write", 403),
    ]
    for path, token, status in cases:
        front_token = driven.front.tokens["write"] if token == "write" else token
        one_token = one_node.tokens["write"] if token == "write" else token
        front_status, front_body = _front_get(driven, path, front_token)
        one_status, one_body = one_node.get(path, one_token)
        assert front_status == one_status == status, (path, front_body, one_body)
        assert front_body == one_body, path
    # A page token of one profile is refused for another, as on one node.
    first = _front_get(driven, _path("users", "user_id:u1", "events", "limit=1"))[1]["cursor"]["next"]
    status, body = _front_get(driven, _path("users", "user_id:u2", "events", f"limit=1&next={first}"))
    assert (status, body["error"]["reason"]) == (400, "PAGE_TOKEN_INVALID")


def _link_list(answer: Any) -> list[dict[str, Any]]:
    """A ListLinks page's links without the linked profiles' `prf_` ids (made by each file), and
    an account's identifiers' call fields when the front gives them empty (see `_plain`)."""
    links = json_format.MessageToDict(answer).get("links", [])
    for link in links:
        link["profile"].pop("profileId")
    return links


def _same_links(driven: FrontDriven, single: SingleNode) -> None:
    """ListLinks over gRPC, page after page of one link, equals one node's for users and for
    accounts, some of whose users live on different shards."""
    one_node = ProfilesServicer(single.engine)
    auth = driven.front.auth("read")
    spread = 0
    for collection, addresses in (("users", USERS), ("accounts", ACCOUNTS)):
        for address in addresses:
            ref = common_pb2.ProfileRef(collection=COLLECTION_ENUM[collection], id=address)
            for size in (0, 1, 2):
                sides: dict[str, list[list[dict[str, Any]]]] = {"one": [], "front": []}
                for side, pages in sides.items():
                    token = ""
                    while True:
                        request = profiles_pb2.ListLinksRequest(profile=ref, page_size=size, page_token=token)
                        try:
                            page = (one_node.ListLinks(request, None) if side == "one"
                                    else driven.front.profiles.ListLinks(request, metadata=auth))
                        except (AudiencesError, grpc.RpcError) as refused:
                            code = refused.code() if isinstance(refused, grpc.RpcError) else refused.code
                            pages.append([{"refused": str(code).rsplit(".", 1)[-1]}])
                            break
                        pages.append(_link_list(page))
                        token = page.next_page_token
                        if not token:
                            break
                for one_page, front_page in zip(sides["one"], sides["front"], strict=True):
                    for one_link, front_link in zip(one_page, front_page, strict=True):
                        for one_id, front_id in zip(one_link.get("profile", {}).get("externalIds", []),
                                                    front_link.get("profile", {}).get("externalIds", []), strict=True):
                            if collection == "users" and not front_id.get("sourceId"):
                                one_id.pop("sourceId", None)
                                one_id.pop("firstMessageId", None)
                                front_id.pop("firstMessageId", None)
                assert sides["front"] == sides["one"], (address, size)
            if collection == "accounts":
                account = driven.front.profiles.GetMetadata(profiles_pb2.GetMetadataRequest(profile=ref),
                                                            metadata=auth).metadata.profile_id
                holding = [shard.engine.readers.get().execute(
                    "SELECT count(*) FROM links l JOIN profiles p ON p.profile_id = l.account_id"
                    " WHERE p.public_id = ?", (account,)).fetchone()[0] for shard in driven.cluster.shards]
                spread += sum(1 for count in holding if count) > 1
    assert spread >= 2  # accounts whose users are on several shards
    # Links made at the same time are ordered by the user's profile number: the identity stage's
    # numbers, which the shards keep, are one node's.
    numbers = "SELECT id_type, id_value, profile_id FROM identifiers ORDER BY 1, 2"
    assert (list(driven.cluster.identity_engine.readers.get().execute(numbers))
            == list(single.engine.readers.get().execute(numbers)))


def _emails() -> list[dict[str, Any]]:
    """Identify calls that give a few users an email address (`email:` addresses)."""
    return [{"type": "identify", "userId": f"u{p}", "messageId": f"email-{p}", "timestamp": "2027-01-15T09:00:00Z",
             "traits": {"email": f"u{p}@example.com"}} for p in range(4)]


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int, every: int = 1) -> None:
    single = SingleNode(tmp_path, T0, source=SOURCE)
    driven = FrontDriven(tmp_path, connect)
    try:
        steps = Stream(seed).steps(ticks, calls_per_tick=30)
        last = max(value for kind, value in steps if kind == "tick")
        drive(driven, single, [*steps, ("calls", _emails()), ("tick", last + HOUR)])
        one_node = OneNodeHttp(single, _tokens(tmp_path))
        _same_http(driven, single, one_node, every)
        _same_links(driven, single)
    finally:
        driven.close()
        single.close()


def _tokens(tmp_path: Path) -> dict[str, str]:
    tokens: dict[str, str] = json.loads((tmp_path / "single.json").read_text())["tokens"]
    return tokens


def test_http_profile_api_and_links_through_a_front(tmp_path: Path) -> None:
    """Over the in-process log."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    _run(tmp_path, connect, seed=7, ticks=6)


def test_http_profile_api_and_links_through_a_front_over_jetstream(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream."""
    _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=8, ticks=4, every=3)
