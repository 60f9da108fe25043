"""ProfilesService: read one profile by any of its addresses."""

from __future__ import annotations

import json
from typing import Any

import grpc
from audiences.v1 import common_pb2, profiles_pb2, profiles_pb2_grpc

from audiences_server.api.computations import COLLECTION_ENUM, collection_of, json_value, profile_summaries, timestamp
from audiences_server.api.context import space_id
from audiences_server.engine.engine import Engine
from audiences_server.errors import FieldViolation, InvalidArgument

TRAIT_CLASSES = {
    profiles_pb2.TRAIT_CLASS_AUDIENCE: "audience", profiles_pb2.TRAIT_CLASS_COMPUTED_TRAIT: "computed_trait",
    profiles_pb2.TRAIT_CLASS_CUSTOM: "custom",
}
TRAIT_CLASS_ENUM: dict[str, Any] = {v: k for k, v in TRAIT_CLASSES.items()}
EVENT_TYPES: dict[str, Any] = {
    "track": profiles_pb2.EVENT_TYPE_TRACK, "page": profiles_pb2.EVENT_TYPE_PAGE,
    "screen": profiles_pb2.EVENT_TYPE_SCREEN,
}


def _ref(ref: common_pb2.ProfileRef) -> tuple[str, str]:
    if not ref.id:
        raise InvalidArgument("`profile.id` is required", reason="PROFILE_ID_MISSING",
                              violations=[FieldViolation("profile.id", "required")])
    return collection_of(ref.collection, "profile.collection"), ref.id


def _ms(message: Any, field: str) -> int | None:
    return int(getattr(message, field).ToMilliseconds()) if message.HasField(field) else None


class ProfilesServicer(profiles_pb2_grpc.ProfilesServiceServicer):
    """Decodes profile reads and encodes what the engine finds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reads = engine.profile_reads

    def ListTraits(self, request: profiles_pb2.ListTraitsRequest,
                   context: grpc.ServicerContext) -> profiles_pb2.ListTraitsResponse:
        collection, address = _ref(request.profile)
        trait_class = TRAIT_CLASSES.get(request.trait_class)
        page = self._reads.traits(space_id(), collection, address, list(request.include), trait_class,
                                  request.page_size, request.page_token)
        traits = []
        for item in page.items:
            trait = profiles_pb2.Trait(key=item.key, value=json_value(item.value))
            if request.verbose:
                trait.trait_class = TRAIT_CLASS_ENUM[item.trait_class]
                trait.source_id = item.source_id
                trait.update_time.FromMilliseconds(item.updated_ms)
            traits.append(trait)
        return profiles_pb2.ListTraitsResponse(profile_id=page.profile_id, traits=traits,
                                               next_page_token=page.next_token)

    def ListEvents(self, request: profiles_pb2.ListEventsRequest,
                   context: grpc.ServicerContext) -> profiles_pb2.ListEventsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.events(
            space_id(), collection, address, start=_ms(request, "start_time"), end=_ms(request, "end_time"),
            include=list(request.include), exclude=list(request.exclude),
            descending=request.sort_order != profiles_pb2.SORT_ORDER_ASCENDING,
            size=request.page_size, token=request.page_token)
        events = []
        for row in page.items:
            event = profiles_pb2.Event(message_id=row["message_id"], type=EVENT_TYPES.get(row["type"], 0),
                                       event=row["event"], user_id=row["user_id"] or "",
                                       anonymous_id=row["anonymous_id"] or "",
                                       event_time=timestamp(row["ts"]), receive_time=timestamp(row["received_ms"]))
            event.properties.update(json.loads(row["body"]))
            event.context.update(json.loads(row["context"]))
            events.append(event)
        return profiles_pb2.ListEventsResponse(profile_id=page.profile_id, events=events,
                                               next_page_token=page.next_token)

    def ListExternalIds(self, request: profiles_pb2.ListExternalIdsRequest,
                        context: grpc.ServicerContext) -> profiles_pb2.ListExternalIdsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.external_ids(space_id(), collection, address, request.page_size, request.page_token)
        ids = [common_pb2.ExternalId(type=t, value=v, collection=COLLECTION_ENUM[collection], encoding="none",
                                     create_time=timestamp(added)) for _, (t, v, added) in page.items]
        return profiles_pb2.ListExternalIdsResponse(profile_id=page.profile_id, external_ids=ids,
                                                    next_page_token=page.next_token)

    def ListLinks(self, request: profiles_pb2.ListLinksRequest,
                  context: grpc.ServicerContext) -> profiles_pb2.ListLinksResponse:
        collection, address = _ref(request.profile)
        page = self._reads.links(space_id(), collection, address, request.page_size, request.page_token)
        summaries = profile_summaries(self.engine, [pid for pid, _ in page.items])
        links = [profiles_pb2.ProfileLink(profile=summaries[pid], create_time=timestamp(at)) for pid, at in page.items]
        return profiles_pb2.ListLinksResponse(profile_id=page.profile_id, links=links,
                                              next_page_token=page.next_token)

    def GetMetadata(self, request: profiles_pb2.GetMetadataRequest,
                    context: grpc.ServicerContext) -> profiles_pb2.GetMetadataResponse:
        collection, address = _ref(request.profile)
        row, merged = self._reads.metadata(space_id(), collection, address)
        return profiles_pb2.GetMetadataResponse(metadata=profiles_pb2.ProfileMetadata(
            profile_id=row["public_id"], collection=COLLECTION_ENUM[row["collection"]],
            create_time=timestamp(row["created_ms"]), update_time=timestamp(row["updated_ms"]),
            first_message_time=timestamp(row["first_message_ms"]), last_message_time=timestamp(row["last_message_ms"]),
            merged_profile_ids=merged))

    def ListAudienceMemberships(self, request: profiles_pb2.ListAudienceMembershipsRequest,
                                context: grpc.ServicerContext) -> profiles_pb2.ListAudienceMembershipsResponse:
        collection, address = _ref(request.profile)
        page = self._reads.memberships(space_id(), collection, address, request.page_size, request.page_token)
        memberships = [profiles_pb2.AudienceMembership(audience_key=key, audience_id=public, audience_name=name,
                                                       enter_time=timestamp(at))
                       for key, public, name, at in page.items]
        return profiles_pb2.ListAudienceMembershipsResponse(profile_id=page.profile_id, memberships=memberships,
                                                            next_page_token=page.next_token)
