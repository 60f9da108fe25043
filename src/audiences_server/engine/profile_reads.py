"""ProfilesService use cases: find a profile by any of its addresses, and page through what it holds."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.errors import FieldViolation, InvalidArgument, NotFound
from audiences_server.store import profile_reads as store
from audiences_server.store.db import Readers

T = TypeVar("T")
DEFAULT_PAGE, MAX_PAGE = 10, 200
CLASS_ORDER = {"custom": 0, "computed_trait": 1, "audience": 2}


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
    """Items of one page, the profile they belong to, and the token of the next page."""

    profile_id: str
    items: list[Any]
    next_token: str


def _address(address: str) -> tuple[str, str]:
    id_type, sep, value = address.partition(":")
    if address.startswith("prf_"):
        return "prf", address
    if not sep or not id_type or not value:
        raise InvalidArgument(f"profile id {address!r} must be `type:value` or a profile id `prf_…`",
                              reason="PROFILE_ID_INVALID", violations=[FieldViolation("profile.id", "malformed")])
    return id_type.strip().lower(), value


class ProfileReads:
    """Reads of single profiles, with opaque page tokens."""

    def __init__(self, readers: Readers, tokens: PageTokens) -> None:
        self._readers = readers
        self._tokens = tokens

    def find(self, space_id: int, collection: str, address: str) -> int:
        """The surviving profile an address names.

        Raises:
            NotFound: no profile has that address in the space.
        """
        kind, value = _address(address)
        conn = self._readers.get()
        if kind == "prf":
            found = store.by_public_id(conn, space_id, collection, value)
        else:
            found = store.by_identifier(conn, space_id, collection, kind, value)
        if found is None:
            raise NotFound("profile not found", reason="PROFILE_NOT_FOUND")
        return found

    def _page(self, space_id: int, items: Sequence[T], key: Callable[[T], Any], scope: dict[str, Any],
              token: str, size: int, public_id: str) -> Page:
        """Slices a sorted list by a keyset cursor carried in the page token."""
        after = self._tokens.decode(token, {**scope, "space": space_id})
        rest = [item for item in items if after is None or _after(key(item), after)]
        limit = page_size(size, DEFAULT_PAGE, MAX_PAGE)
        page = rest[:limit]
        nxt = self._tokens.encode(key(page[-1]), {**scope, "space": space_id}) if len(rest) > limit else ""
        return Page(public_id, page, nxt)

    def traits(self, space_id: int, collection: str, address: str, include: Sequence[str], trait_class: str | None,
               size: int, token: str) -> Page:
        """A profile's traits by key (custom, computed and audience membership)."""
        pid = self.find(space_id, collection, address)
        conn = self._readers.get()
        items = [TraitItem(k, json.loads(v), "custom", m, ts) for k, v, ts, m in store.custom_traits(conn, pid)]
        items += [TraitItem(k, json.loads(v), kind, public, ts)
                  for k, kind, v, ts, public in store.computed_traits(conn, pid)]
        items = [t for t in items if (not include or t.key in include)
                 and (trait_class is None or t.trait_class == trait_class)]
        items.sort(key=_trait_key)
        scope = {"rpc": "traits", "profile": pid, "include": sorted(include), "class": trait_class}
        return self._page(space_id, items, _trait_key, scope, token, size, self._public(pid))

    def events(self, space_id: int, collection: str, address: str, *, start: int | None, end: int | None,
               include: Sequence[str], exclude: Sequence[str], descending: bool, size: int, token: str) -> Page:
        """A profile's events in time order, paged by a (time, arrival) cursor in SQL."""
        pid = self.find(space_id, collection, address)
        scope = {"rpc": "events", "profile": pid, "start": start, "end": end, "include": sorted(include),
                 "exclude": sorted(exclude), "descending": descending, "space": space_id}
        after = self._tokens.decode(token, scope)
        limit = page_size(size, DEFAULT_PAGE, MAX_PAGE)
        found = store.events_page(self._readers.get(), pid, start=start, end=end, include=include, exclude=exclude,
                                  descending=descending, after=tuple(after) if after else None, limit=limit + 1)
        page = found[:limit]
        nxt = self._tokens.encode([page[-1]["ts"], page[-1]["seq"]], scope) if len(found) > limit else ""
        return Page(self._public(pid), page, nxt)

    def external_ids(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """A profile's identifiers, oldest first."""
        pid = self.find(space_id, collection, address)
        items = list(enumerate(store.identifiers(self._readers.get(), pid)))
        return self._page(space_id, items, lambda item: item[0], {"rpc": "ids", "profile": pid}, token, size,
                          self._public(pid))

    def links(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """A user's accounts or an account's users, by profile id."""
        pid = self.find(space_id, collection, address)
        items = store.linked(self._readers.get(), pid, collection)
        return self._page(space_id, items, lambda item: item[0], {"rpc": "links", "profile": pid}, token, size,
                          self._public(pid))

    def memberships(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """The audiences a profile is in, by key."""
        pid = self.find(space_id, collection, address)
        items = store.memberships(self._readers.get(), pid)
        return self._page(space_id, items, lambda item: item[0], {"rpc": "memberships", "profile": pid}, token,
                          size, self._public(pid))

    def metadata(self, space_id: int, collection: str, address: str) -> tuple[dict[str, Any], list[str]]:
        """A profile's row and the public ids of the profiles merged into it."""
        pid = self.find(space_id, collection, address)
        conn = self._readers.get()
        return store.profile_row(conn, pid), store.merged_public_ids(conn, pid)

    def _public(self, profile_id: int) -> str:
        return str(store.profile_row(self._readers.get(), profile_id)["public_id"])


def _trait_key(item: TraitItem) -> list[Any]:
    return [item.key, CLASS_ORDER[item.trait_class]]


def _after(key: Any, cursor: Any) -> bool:
    # Cursors travel through JSON, so tuples come back as lists: compare in one shape.
    return bool(json.loads(json.dumps(key)) > cursor)
