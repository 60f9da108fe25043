"""ProfilesService: a profile's traits, events, identifiers, links, record and memberships."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf import json_format

from audiences._base import Base, CollectionArg, choose, collection_value, timestamp
from audiences.v1 import common_pb2, profiles_pb2

_SORT = {"asc": profiles_pb2.SORT_ORDER_ASCENDING, "desc": profiles_pb2.SORT_ORDER_DESCENDING}
_CLASSES = {
    "audience": profiles_pb2.TRAIT_CLASS_AUDIENCE,
    "computed_trait": profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT,
    "custom": profiles_pb2.TRAIT_CLASS_CUSTOM,
}


def trait_value(trait: profiles_pb2.Trait) -> Any:
    """A trait's value as plain data, integers as integers: read from `value_json` (the Value
    holds every number as a double), or from the Value when a server does not send it."""
    if trait.value_json:
        return json.loads(trait.value_json)
    return json_format.MessageToDict(trait.value)


def _ref(profile: str, collection: CollectionArg) -> common_pb2.ProfileRef:
    return common_pb2.ProfileRef(id=profile, collection=collection_value(collection or "users"))


class ProfileMethods(Base):
    """Reads profiles (`read` token). A profile is `type:value` (`user_id:ada`) or `prf_…`."""

    def list_traits(
        self,
        profile: str,
        *,
        collection: CollectionArg = "users",
        include: Sequence[str] = (),
        trait_class: str | None = None,
        verbose: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> profiles_pb2.ListTraitsResponse:
        """One page of a profile's traits by key (`trait_class`: audience, computed_trait, custom)."""
        request = profiles_pb2.ListTraitsRequest(
            profile=_ref(profile, collection),
            include=list(include),
            verbose=verbose,
            page_size=page_size,
            page_token=page_token,
            trait_class=choose(_CLASSES, trait_class, "trait_class", "TRAIT_CLASS_INVALID") if trait_class else None,
        )
        return self._call("read", profiles_pb2.ListTraitsResponse, self.profiles_stub.ListTraits, request)

    def get_traits(
        self, profile: str, *, collection: CollectionArg = "users", trait_class: str | None = None
    ) -> dict[str, Any]:
        """Every trait of a profile as a plain dict: custom, computed and audience traits."""
        traits = self._pages(
            lambda token: self.list_traits(
                profile, collection=collection, trait_class=trait_class, page_size=200, page_token=token
            ),
            "traits",
        )
        return {t.key: trait_value(t) for t in traits}

    def list_events(
        self,
        profile: str,
        *,
        collection: CollectionArg = "users",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        sort: str = "desc",
        page_size: int = 0,
        page_token: str = "",
    ) -> profiles_pb2.ListEventsResponse:
        """One page of a profile's events (`sort`: desc, newest first, or asc)."""
        request = profiles_pb2.ListEventsRequest(
            profile=_ref(profile, collection),
            start_time=timestamp(start_time),
            end_time=timestamp(end_time),
            include=list(include),
            exclude=list(exclude),
            sort_order=choose(_SORT, sort, "sort", "SORT_INVALID"),
            page_size=page_size,
            page_token=page_token,
        )
        return self._call("read", profiles_pb2.ListEventsResponse, self.profiles_stub.ListEvents, request)

    def iter_events(
        self, profile: str, *, collection: CollectionArg = "users", sort: str = "desc", **filters: Any
    ) -> Iterator[profiles_pb2.Event]:
        """Every event of a profile (filters as in `list_events`), following the pages."""
        return self._pages(
            lambda token: self.list_events(
                profile, collection=collection, sort=sort, page_size=200, page_token=token, **filters
            ),
            "events",
        )

    def list_external_ids(
        self, profile: str, *, collection: CollectionArg = "users", page_size: int = 0, page_token: str = ""
    ) -> profiles_pb2.ListExternalIdsResponse:
        """One page of a profile's identifiers, oldest first."""
        request = profiles_pb2.ListExternalIdsRequest(
            profile=_ref(profile, collection), page_size=page_size, page_token=page_token
        )
        return self._call("read", profiles_pb2.ListExternalIdsResponse, self.profiles_stub.ListExternalIds, request)

    def list_links(
        self, profile: str, *, collection: CollectionArg = "users", page_size: int = 0, page_token: str = ""
    ) -> profiles_pb2.ListLinksResponse:
        """One page of a user's accounts, or of an account's users."""
        request = profiles_pb2.ListLinksRequest(
            profile=_ref(profile, collection), page_size=page_size, page_token=page_token
        )
        return self._call("read", profiles_pb2.ListLinksResponse, self.profiles_stub.ListLinks, request)

    def get_metadata(self, profile: str, *, collection: CollectionArg = "users") -> profiles_pb2.ProfileMetadata:
        """When a profile was created and updated, its first and last message, its merges."""
        request = profiles_pb2.GetMetadataRequest(profile=_ref(profile, collection))
        return self._call("read", profiles_pb2.GetMetadataResponse, self.profiles_stub.GetMetadata, request).metadata

    def list_audience_memberships(
        self, profile: str, *, collection: CollectionArg = "users", page_size: int = 0, page_token: str = ""
    ) -> profiles_pb2.ListAudienceMembershipsResponse:
        """One page of the audiences a profile is in now."""
        request = profiles_pb2.ListAudienceMembershipsRequest(
            profile=_ref(profile, collection), page_size=page_size, page_token=page_token
        )
        return self._call(
            "read", profiles_pb2.ListAudienceMembershipsResponse, self.profiles_stub.ListAudienceMemberships, request
        )
