"""ProfilesService: read one profile by any of its addresses."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import grpc
import orjson
from audiences.v1 import common_pb2, profiles_pb2, profiles_pb2_grpc
from google.protobuf.message import Message

from audiences_server.api.computations import (
    COLLECTION_ENUM,
    collection_of,
    fill_struct,
    json_value,
    time_ms,
    timestamp,
)
from audiences_server.api.context import space_id
from audiences_server.engine.engine import Engine
from audiences_server.engine.history import check_time_range
from audiences_server.engine.profile_reads import EventFilter, Page, ProfileSource, TraitItem, encoding_of
from audiences_server.errors import FieldViolation, InvalidArgument

TRAIT_CLASSES: dict[int, str | None] = {
    profiles_pb2.TRAIT_CLASS_UNSPECIFIED: None,
    profiles_pb2.TRAIT_CLASS_AUDIENCE: "audience",
    profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT: "computed_trait",
    profiles_pb2.TRAIT_CLASS_CUSTOM: "custom",
}
TRAIT_CLASS_ENUM: dict[str, Any] = {v: k for k, v in TRAIT_CLASSES.items() if v}
# Unset means newest first (the proto's comment).
DESCENDING: dict[int, bool] = {
    profiles_pb2.SORT_ORDER_UNSPECIFIED: True,
    profiles_pb2.SORT_ORDER_ASCENDING: False,
    profiles_pb2.SORT_ORDER_DESCENDING: True,
}
EVENT_TYPES: dict[str, Any] = {
    "track": profiles_pb2.EVENT_TYPE_TRACK, "page": profiles_pb2.EVENT_TYPE_PAGE,
    "screen": profiles_pb2.EVENT_TYPE_SCREEN,
}


M = TypeVar("M", bound=Message)
# An item of a repeated field costs its tag and length prefix besides its own bytes.
_ITEM_OVERHEAD = 6


def _fitted(page: Page, items: Sequence[M]) -> tuple[list[M], str]:
    """The encoded items of a page that fit one reply a default client accepts, and the token
    of what follows them."""
    cut = page.fit([item.ByteSize() + _ITEM_OVERHEAD for item in items])
    return list(items[:len(cut.items)]), cut.next_token


def _ref(ref: common_pb2.ProfileRef) -> tuple[str, str]:
    if not ref.id:
        raise InvalidArgument("`profile.id` is required", reason="PROFILE_ID_MISSING",
                              violations=[FieldViolation("profile.id", "required")])
    return collection_of(ref.collection, "profile.collection"), ref.id


def _enum(table: dict[int, Any], value: int, field: str) -> Any:
    if value not in table:
        raise InvalidArgument(f"`{field}` has no value {value}", reason="ENUM_INVALID",
                              violations=[FieldViolation(field, "unknown value")])
    return table[value]


def _event_filter(request: profiles_pb2.ListEventsRequest) -> EventFilter:
    start, end = time_ms(request, "start_time"), time_ms(request, "end_time")
    check_time_range(start, end)
    return EventFilter(start, end, tuple(request.include), tuple(request.exclude),
                       _enum(DESCENDING, request.sort_order, "sort_order"))


def json_text(value: Any) -> str:
    """A value as compact JSON text, numbers as they were stored (an integer stays an integer).

    orjson refuses integers beyond 64 bits, which a trait may hold; the stdlib writes any.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _trait(item: TraitItem, verbose: bool) -> profiles_pb2.Trait:
    # `value_json` beside the Value: a Value holds every number as a double.
    trait = profiles_pb2.Trait(key=item.key, value=json_value(item.value), value_json=json_text(item.value))
    if verbose:
        trait.trait_class = TRAIT_CLASS_ENUM[item.trait_class]
        trait.source_id = item.source_id
        trait.update_time.FromMilliseconds(item.updated_ms)
    return trait


def _event(row: dict[str, Any]) -> profiles_pb2.Event:
    event = profiles_pb2.Event(message_id=row["message_id"], type=EVENT_TYPES.get(row["type"], 0),
                               event=row["event"], user_id=row["user_id"] or "",
                               anonymous_id=row["anonymous_id"] or "",
                               event_time=timestamp(row["ts"]), receive_time=timestamp(row["received_ms"]),
                               properties_json=row["body"], context_json=row["context"], source_id=row["source_id"],
                               external_ids=[common_pb2.ExternalId(type=found.type, value=found.value,
                                                                   collection=COLLECTION_ENUM[collection])
                                             for collection, found in row["external_ids"]])
    # The JSON text beside the Structs, as stored: a Struct holds every number as a double.
    fill_struct(event.properties, json.loads(row["body"]))
    fill_struct(event.context, json.loads(row["context"]))
    return event


def external_id(row: dict[str, Any], collection: str) -> common_pb2.ExternalId:
    """An identifier row as the API shows it."""
    return common_pb2.ExternalId(type=row["id_type"], value=row["id_value"], collection=COLLECTION_ENUM[collection],
                                 encoding=encoding_of(row["id_type"]), create_time=timestamp(row["added_ms"]),
                                 source_id=row["source_id"], first_message_id=row["message_id"])


def link_message(row: dict[str, Any]) -> profiles_pb2.ProfileLink:
    """A link row (the linked profile's summary and the link's time) as the API shows it."""
    summary = row["summary"]
    collection = summary["collection"]
    profile = common_pb2.ProfileSummary(
        profile_id=summary["public_id"], collection=COLLECTION_ENUM[collection],
        external_ids=[external_id(i, collection) for i in summary["identifiers"]])
    return profiles_pb2.ProfileLink(profile=profile, create_time=timestamp(row["linked_ms"]))


S = TypeVar("S", bound="ProfilesServicer")


def _routed(method: Callable[[S, Any, grpc.ServicerContext], M]) -> Callable[[S, Any, grpc.ServicerContext], M]:
    """On a cluster's front, the read goes to the shard that owns the profile (cluster/reads.py)."""
    name = method.__name__

    @functools.wraps(method)
    def read(self: S, request: Any, context: grpc.ServicerContext) -> M:
        router = self.engine.profile_router
        if router is not None:
            return cast(M, router(name, request))
        return method(self, request, context)

    return read


class ProfilesServicer(profiles_pb2_grpc.ProfilesServiceServicer):
    """Decodes profile reads and encodes what the engine finds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def _reads(self) -> ProfileSource:
        # On a cluster's front, reads from the shards (cluster/reads.py, ShardProfileReads).
        return self.engine.profile_reads

    @_routed
    def ListTraits(self, request: profiles_pb2.ListTraitsRequest,
                   context: grpc.ServicerContext) -> profiles_pb2.ListTraitsResponse:
        collection, address = _ref(request.profile)
        trait_class = _enum(TRAIT_CLASSES, request.trait_class, "trait_class")
        page = self._reads.traits(space_id(), collection, address, include=list(request.include),
                                  trait_class=trait_class, size=request.page_size, token=request.page_token)
        traits, token = _fitted(page, [_trait(t, request.verbose) for t in page.items])
        return profiles_pb2.ListTraitsResponse(profile_id=page.profile_id, traits=traits, next_page_token=token)

    @_routed
    def ListEvents(self, request: profiles_pb2.ListEventsRequest,
                   context: grpc.ServicerContext) -> profiles_pb2.ListEventsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.events(space_id(), collection, address, _event_filter(request), request.page_size,
                                  request.page_token)
        events, token = _fitted(page, [_event(r) for r in page.items])
        return profiles_pb2.ListEventsResponse(profile_id=page.profile_id, events=events, next_page_token=token)

    @_routed
    def ListExternalIds(self, request: profiles_pb2.ListExternalIdsRequest,
                        context: grpc.ServicerContext) -> profiles_pb2.ListExternalIdsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.external_ids(space_id(), collection, address, request.page_size, request.page_token,
                                        types=list(request.include))
        ids, token = _fitted(page, [external_id(r, collection) for r in page.items])
        return profiles_pb2.ListExternalIdsResponse(profile_id=page.profile_id, external_ids=ids, next_page_token=token)

    def ListLinks(self, request: profiles_pb2.ListLinksRequest,
                  context: grpc.ServicerContext) -> profiles_pb2.ListLinksResponse:
        collection, address = _ref(request.profile)
        page = self._reads.links(space_id(), collection, address, request.page_size, request.page_token)
        links, token = _fitted(page, [link_message(r) for r in page.items])
        return profiles_pb2.ListLinksResponse(profile_id=page.profile_id, links=links, next_page_token=token)

    @_routed
    def GetMetadata(self, request: profiles_pb2.GetMetadataRequest,
                    context: grpc.ServicerContext) -> profiles_pb2.GetMetadataResponse:
        collection, address = _ref(request.profile)
        row, merged = self._reads.metadata(space_id(), collection, address)
        return profiles_pb2.GetMetadataResponse(metadata=profiles_pb2.ProfileMetadata(
            profile_id=row["public_id"], collection=COLLECTION_ENUM[row["collection"]],
            create_time=timestamp(row["created_ms"]), update_time=timestamp(row["updated_ms"]),
            first_message_time=timestamp(row["first_message_ms"]), last_message_time=timestamp(row["last_message_ms"]),
            merged_profile_ids=merged, first_message_id=row["first_message_id"],
            first_source_id=row["first_source_id"], last_message_id=row["last_message_id"],
            last_source_id=row["last_source_id"]))

    @_routed
    def ListAudienceMemberships(self, request: profiles_pb2.ListAudienceMembershipsRequest,
                                context: grpc.ServicerContext) -> profiles_pb2.ListAudienceMembershipsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.memberships(space_id(), collection, address, request.page_size, request.page_token)
        memberships, token = _fitted(page, [
            profiles_pb2.AudienceMembership(audience_key=r["key"], audience_id=r["public_id"], audience_name=r["name"],
                                            enter_time=timestamp(r["updated_ms"]))
            for r in page.items])
        return profiles_pb2.ListAudienceMembershipsResponse(profile_id=page.profile_id, memberships=memberships,
                                                            next_page_token=token)
