"""ProfilesService use cases: find a profile by any of its addresses, and page through what it holds.

Each read runs in one snapshot, so that the profile an address resolves to and the rows listed
for it come from the same committed state even while a merge commits alongside.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import apsw

from audiences_server.core.identity import ExternalId, extract_external_ids, with_configured_ids
from audiences_server.core.identity.planner import blocked_by
from audiences_server.core.identity.rules import IdentityRules
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.errors import FieldViolation, InvalidArgument, NotFound
from audiences_server.store import identity as identity_store
from audiences_server.store import profile_reads as store
from audiences_server.store.db import Readers
from audiences_server.store.profile_reads import EventFilter

DEFAULT_PAGE, MAX_PAGE = 10, 200
# What the items of one reply may weigh, encoded: a default gRPC client refuses a message over
# 4 MiB, and the reply's other fields (profile id, page token) need far less than the margin.
# A page stops before the item that would pass it (never before the first: one item is at
# most a 32 KB call, or a linked profile's 1,000 bounded identifiers).
MAX_PAGE_BYTES = 4 * 1024 * 1024 - 64 * 1024
# Identifier types read from the call's own fields; every other type came from a
# `context.externalIds` item, whose only usable encoding is `none` (see core.identity.ids).
FIELD_ID_TYPES = frozenset({
    "user_id", "anonymous_id", "email", "group_id", "ios.id", "android.id", "ios.idfa", "android.idfa",
    "ios.push_token", "android.push_token", "ga_client_id",
})

__all__ = ["EventFilter", "Page", "ProfileReads", "ProfileSource", "TraitItem", "encoding_of"]


@dataclass(frozen=True)
class TraitItem:
    """One trait of a profile and where it comes from."""

    key: str
    value: Any
    trait_class: str
    source_id: str
    updated_ms: int


@dataclass(frozen=True)
class Page:
    """Items of one page, the profile they belong to, and the token of the next page.

    `token_after(n)` is the token of the page that follows the first n items, for a caller that
    returns fewer items than it was given (see `fit`).
    """

    profile_id: str
    items: list[Any]
    next_token: str
    token_after: Callable[[int], str] = field(default=lambda count: "", repr=False, compare=False)

    def fit(self, sizes: Sequence[int], limit: int = MAX_PAGE_BYTES) -> Page:
        """The page cut before the item that would take the sizes past `limit`, with the token
        of what follows; the page itself when all of it fits. The first item always stays.

        Args:
            sizes: the encoded size of each item, in order.
            limit: the most all of them may weigh.
        """
        total = 0
        for count, size in enumerate(sizes):
            total += size
            if total > limit and count > 0:
                return Page(self.profile_id, self.items[:count], self.token_after(count), self.token_after)
        return self


@dataclass(frozen=True)
class Listing:
    """One paged read: the token's scope, the cursor of a row, and the query of a page."""

    scope: dict[str, Any]
    cursor: Callable[[dict[str, Any]], Any]
    fetch: Callable[[apsw.Connection, int, Any, int], list[dict[str, Any]]]


def encoding_of(id_type: str) -> str:
    """The `encoding` the API shows for an identifier of this type."""
    return "" if id_type in FIELD_ID_TYPES else "none"


def _address(address: str) -> tuple[str, str]:
    """An address as (`prf`, public id) or (type, value); the type ends at the first colon."""
    id_type, colon, value = address.partition(":")
    if not colon and address.startswith("prf_") and len(address) > 4:
        return "prf", address
    if not colon or not id_type.strip() or not value:
        raise InvalidArgument(f"profile id {address!r} must be `type:value` or a profile id `prf_…`",
                              reason="PROFILE_ID_INVALID",
                              violations=[FieldViolation("profile.id", "not `type:value` nor `prf_…`")])
    return id_type.strip().lower(), value


class ProfileSource(Protocol):
    """Where the profile APIs (gRPC and HTTP) read single profiles: this file (ProfileReads), or on
    a cluster's front the shards' read endpoints (cluster/reads.py, ShardProfileReads). Each list
    gives a Page of the same rows, so that both APIs format them with one code."""

    def traits(self, space_id: int, collection: str, address: str, *, include: Sequence[str],
               trait_class: str | None, size: int, token: str) -> Page: ...

    def events(self, space_id: int, collection: str, address: str, wanted: EventFilter, size: int,
               token: str) -> Page: ...

    def external_ids(self, space_id: int, collection: str, address: str, size: int, token: str,
                     types: Sequence[str] = ()) -> Page: ...

    def links(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page: ...

    def memberships(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page: ...

    def metadata(self, space_id: int, collection: str, address: str) -> tuple[dict[str, Any], list[str]]: ...


class ProfileReads:
    """Reads of single profiles, with opaque keyset page tokens."""

    def __init__(self, readers: Readers, tokens: PageTokens) -> None:
        self._readers = readers
        self._tokens = tokens

    def traits(self, space_id: int, collection: str, address: str, *, include: Sequence[str],
               trait_class: str | None, size: int, token: str) -> Page:
        """A profile's traits (custom, computed and audience membership) by key."""
        names = sorted(set(include))

        def fetch(conn: apsw.Connection, pid: int, after: Any, limit: int) -> list[dict[str, Any]]:
            return store.traits_page(conn, pid, include=names, trait_class=trait_class, after=after, limit=limit)

        listing = Listing({"rpc": "traits", "include": names, "class": trait_class},
                          lambda r: [r["key"], r["rank"]], fetch)
        page = self._list(space_id, collection, address, listing, size, token)
        items = [TraitItem(r["key"], json.loads(r["value"]), r["trait_class"], r["source_id"], r["updated_ms"])
                 for r in page.items]
        return Page(page.profile_id, items, page.next_token, page.token_after)

    def events(self, space_id: int, collection: str, address: str, wanted: EventFilter, size: int,
               token: str) -> Page:
        """A profile's events by (event time, message id), newest or oldest first."""
        scope = {"rpc": "events", "start": wanted.start, "end": wanted.end, "include": sorted(set(wanted.include)),
                 "exclude": sorted(set(wanted.exclude)), "descending": wanted.descending}

        def fetch(conn: apsw.Connection, pid: int, after: Any, limit: int) -> list[dict[str, Any]]:
            found = store.events_page(conn, pid, wanted, after, limit)
            if not found:
                return found
            rules = identity_store.rules(conn, space_id)
            return [{**row, "external_ids": carried_ids(row, rules)} for row in found]

        return self._list(space_id, collection, address,
                          Listing(scope, lambda r: [r["ts"], r["message_id"]], fetch), size, token)

    def external_ids(self, space_id: int, collection: str, address: str, size: int, token: str,
                     types: Sequence[str] = ()) -> Page:
        """A profile's identifiers, oldest first; only those of `types` when some are given."""
        wanted = sorted(set(types))

        def fetch(conn: apsw.Connection, pid: int, after: Any, limit: int) -> list[dict[str, Any]]:
            return store.identifiers_page(conn, pid, after, limit, types=wanted)

        # The scope names the types only when there are some, so that tokens of the whole list stay as they were.
        scope: dict[str, Any] = {"rpc": "ids", "types": wanted} if wanted else {"rpc": "ids"}
        listing = Listing(scope, lambda r: [r["added_ms"], r["seq"], r["id_type"], r["id_value"]], fetch)
        return self._list(space_id, collection, address, listing, size, token)

    def links(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """A user's accounts or an account's users, oldest link first, each with its summary."""

        # The cursor also holds the latest merge when its page was read: a linked profile that
        # survives a later merge takes the earlier of the two link times, which may put it before
        # the cursor, so that merge ends the token (as a merge of the profile itself does). And it
        # holds the number of the latest link made when the first page was read: later pages list
        # no link made after it, so a profile unlinked and linked again meanwhile (its link made
        # anew, whatever its event time) is not listed twice; links made since are in the next
        # listing.
        merged_up_to = 0
        until: int | None = None

        def fetch(conn: apsw.Connection, pid: int, after: Any, limit: int) -> list[dict[str, Any]]:
            nonlocal merged_up_to, until
            if after is not None and len(after) > 2 and store.links_merged_since(conn, pid, collection, after[2]):
                raise _ended_by_merge()
            merged_up_to = store.last_merge(conn)
            until = after[3] if after is not None and len(after) > 3 else store.latest_link(conn, pid, collection)
            found = store.links_page(conn, pid, collection, after, limit, until)
            summaries = store.summaries(conn, [r["profile_id"] for r in found])
            return [{**r, "summary": summaries[r["profile_id"]]} for r in found]

        listing = Listing({"rpc": "links"}, lambda r: [r["linked_ms"], r["profile_id"], merged_up_to, until], fetch)
        return self._list(space_id, collection, address, listing, size, token)

    def memberships(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """The audiences a profile is in now, by key."""
        listing = Listing({"rpc": "memberships"}, lambda r: r["key"], store.memberships_page)
        return self._list(space_id, collection, address, listing, size, token)

    def metadata(self, space_id: int, collection: str, address: str) -> tuple[dict[str, Any], list[str]]:
        """A profile's row and the public ids of the profiles merged into it."""
        with self._readers.snapshot() as conn:
            pid, _ = _find(conn, space_id, collection, address)
            return store.profile_row(conn, pid), store.merged_public_ids(conn, pid)

    def _list(self, space_id: int, collection: str, address: str, listing: Listing, size: int,
              token: str) -> Page:
        """One page of a listing: resolve the address, read past the token's cursor, sign the next cursor.

        The token is bound to the space, the profile and the listing's filters (not to the page
        size, which may change from page to page), and to the profiles merged into it: a merge
        brings items a page already passed, so it ends the profile's tokens.
        """
        limit = page_size(size, DEFAULT_PAGE, MAX_PAGE)
        with self._readers.snapshot() as conn:
            pid, public_id = _find(conn, space_id, collection, address)
            scope = {**listing.scope, "space": space_id, "profile": pid}
            merges = store.merge_count(conn, pid)
            if merges:  # absent until a merge, so that the tokens of a profile never merged stay as they were
                scope["merges"] = merges
            found = listing.fetch(conn, pid, self._tokens.decode(token, scope), limit + 1)
        page = found[:limit]

        def token_after(count: int) -> str:
            return self._tokens.encode(listing.cursor(page[count - 1]), scope)

        return Page(public_id, page, token_after(len(page)) if len(found) > limit else "", token_after)


def carried_ids(row: Mapping[str, Any], rules: IdentityRules) -> list[tuple[str, ExternalId]]:
    """The identifiers a stored event's call carried, as (collection, id), read as ingestion reads
    them with the space's rules (their keys read, their blocked values left out): `user_id` and
    `anonymous_id` first, then the others by type and value."""
    message = {**json.loads(row["extra"]), "type": row["type"], "userId": row["user_id"],
               "anonymousId": row["anonymous_id"], "context": json.loads(row["context"]),
               "properties": json.loads(row["body"])}
    found = with_configured_ids(extract_external_ids(message), message, rules.sources)
    first = {"user_id": 0, "anonymous_id": 1}
    users = sorted((i for i in found.users if blocked_by(i, rules) is None), key=lambda i: (first.get(i.type, 2), i))
    return [("users", i) for i in users] + [("accounts", i) for i in found.accounts if blocked_by(i, rules) is None]


def _ended_by_merge() -> InvalidArgument:
    return InvalidArgument("the page token is no longer valid: profiles it lists were merged since; start again"
                           " from the first page", reason="PAGE_TOKEN_INVALID",
                           violations=[FieldViolation("page_token", "ended by a merge")])


def _find(conn: apsw.Connection, space_id: int, collection: str, address: str) -> tuple[int, str]:
    """The surviving profile an address names, as (profile id, public id).

    Raises:
        InvalidArgument: the address is neither `type:value` nor `prf_…`.
        NotFound: no profile of the collection has that address in the space.
    """
    kind, value = _address(address)
    if kind == "prf":
        found = store.by_public_id(conn, space_id, collection, value)
    else:
        found = store.by_identifier(conn, space_id, collection, kind, value)
    if found is None:
        raise NotFound("profile not found", reason="PROFILE_NOT_FOUND")
    return found
