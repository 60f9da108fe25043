import datetime

from audiences.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TraitClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAIT_CLASS_UNSPECIFIED: _ClassVar[TraitClass]
    TRAIT_CLASS_AUDIENCE: _ClassVar[TraitClass]
    TRAIT_CLASS_COMPUTED_TRAIT: _ClassVar[TraitClass]
    TRAIT_CLASS_CUSTOM: _ClassVar[TraitClass]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_TRACK: _ClassVar[EventType]
    EVENT_TYPE_PAGE: _ClassVar[EventType]
    EVENT_TYPE_SCREEN: _ClassVar[EventType]

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_ASCENDING: _ClassVar[SortOrder]
    SORT_ORDER_DESCENDING: _ClassVar[SortOrder]
TRAIT_CLASS_UNSPECIFIED: TraitClass
TRAIT_CLASS_AUDIENCE: TraitClass
TRAIT_CLASS_COMPUTED_TRAIT: TraitClass
TRAIT_CLASS_CUSTOM: TraitClass
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_TRACK: EventType
EVENT_TYPE_PAGE: EventType
EVENT_TYPE_SCREEN: EventType
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_ASCENDING: SortOrder
SORT_ORDER_DESCENDING: SortOrder

class Trait(_message.Message):
    __slots__ = ("key", "value", "trait_class", "source_id", "update_time", "value_json")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TRAIT_CLASS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    trait_class: TraitClass
    source_id: str
    update_time: _timestamp_pb2.Timestamp
    value_json: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., trait_class: _Optional[_Union[TraitClass, str]] = ..., source_id: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value_json: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("message_id", "type", "event", "properties", "context", "user_id", "anonymous_id", "event_time", "receive_time", "properties_json", "context_json", "source_id", "external_ids")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    type: EventType
    event: str
    properties: _struct_pb2.Struct
    context: _struct_pb2.Struct
    user_id: str
    anonymous_id: str
    event_time: _timestamp_pb2.Timestamp
    receive_time: _timestamp_pb2.Timestamp
    properties_json: str
    context_json: str
    source_id: str
    external_ids: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExternalId]
    def __init__(self, message_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., event: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., user_id: _Optional[str] = ..., anonymous_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties_json: _Optional[str] = ..., context_json: _Optional[str] = ..., source_id: _Optional[str] = ..., external_ids: _Optional[_Iterable[_Union[_common_pb2.ExternalId, _Mapping]]] = ...) -> None: ...

class ProfileLink(_message.Message):
    __slots__ = ("profile", "create_time")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileSummary
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProfileMetadata(_message.Message):
    __slots__ = ("profile_id", "collection", "create_time", "update_time", "first_message_time", "last_message_time", "merged_profile_ids", "first_message_id", "first_source_id", "last_message_id", "last_source_id")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    MERGED_PROFILE_IDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    collection: _common_pb2.Collection
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    first_message_time: _timestamp_pb2.Timestamp
    last_message_time: _timestamp_pb2.Timestamp
    merged_profile_ids: _containers.RepeatedScalarFieldContainer[str]
    first_message_id: str
    first_source_id: str
    last_message_id: str
    last_source_id: str
    def __init__(self, profile_id: _Optional[str] = ..., collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_message_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_message_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_profile_ids: _Optional[_Iterable[str]] = ..., first_message_id: _Optional[str] = ..., first_source_id: _Optional[str] = ..., last_message_id: _Optional[str] = ..., last_source_id: _Optional[str] = ...) -> None: ...

class AudienceMembership(_message.Message):
    __slots__ = ("audience_key", "audience_id", "audience_name", "enter_time")
    AUDIENCE_KEY_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_NAME_FIELD_NUMBER: _ClassVar[int]
    ENTER_TIME_FIELD_NUMBER: _ClassVar[int]
    audience_key: str
    audience_id: str
    audience_name: str
    enter_time: _timestamp_pb2.Timestamp
    def __init__(self, audience_key: _Optional[str] = ..., audience_id: _Optional[str] = ..., audience_name: _Optional[str] = ..., enter_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTraitsRequest(_message.Message):
    __slots__ = ("profile", "include", "trait_class", "verbose", "page_size", "page_token")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    TRAIT_CLASS_FIELD_NUMBER: _ClassVar[int]
    VERBOSE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    include: _containers.RepeatedScalarFieldContainer[str]
    trait_class: TraitClass
    verbose: bool
    page_size: int
    page_token: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., include: _Optional[_Iterable[str]] = ..., trait_class: _Optional[_Union[TraitClass, str]] = ..., verbose: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTraitsResponse(_message.Message):
    __slots__ = ("profile_id", "traits", "next_page_token")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    traits: _containers.RepeatedCompositeFieldContainer[Trait]
    next_page_token: str
    def __init__(self, profile_id: _Optional[str] = ..., traits: _Optional[_Iterable[_Union[Trait, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("profile", "start_time", "end_time", "include", "exclude", "sort_order", "page_size", "page_token")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    include: _containers.RepeatedScalarFieldContainer[str]
    exclude: _containers.RepeatedScalarFieldContainer[str]
    sort_order: SortOrder
    page_size: int
    page_token: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., include: _Optional[_Iterable[str]] = ..., exclude: _Optional[_Iterable[str]] = ..., sort_order: _Optional[_Union[SortOrder, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("profile_id", "events", "next_page_token")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, profile_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListExternalIdsRequest(_message.Message):
    __slots__ = ("profile", "page_size", "page_token", "include")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    page_size: int
    page_token: str
    include: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include: _Optional[_Iterable[str]] = ...) -> None: ...

class ListExternalIdsResponse(_message.Message):
    __slots__ = ("profile_id", "external_ids", "next_page_token")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    external_ids: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExternalId]
    next_page_token: str
    def __init__(self, profile_id: _Optional[str] = ..., external_ids: _Optional[_Iterable[_Union[_common_pb2.ExternalId, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListLinksRequest(_message.Message):
    __slots__ = ("profile", "page_size", "page_token")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    page_size: int
    page_token: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLinksResponse(_message.Message):
    __slots__ = ("profile_id", "links", "next_page_token")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    links: _containers.RepeatedCompositeFieldContainer[ProfileLink]
    next_page_token: str
    def __init__(self, profile_id: _Optional[str] = ..., links: _Optional[_Iterable[_Union[ProfileLink, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMetadataRequest(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ...) -> None: ...

class GetMetadataResponse(_message.Message):
    __slots__ = ("metadata",)
    METADATA_FIELD_NUMBER: _ClassVar[int]
    metadata: ProfileMetadata
    def __init__(self, metadata: _Optional[_Union[ProfileMetadata, _Mapping]] = ...) -> None: ...

class ListAudienceMembershipsRequest(_message.Message):
    __slots__ = ("profile", "page_size", "page_token")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileRef
    page_size: int
    page_token: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAudienceMembershipsResponse(_message.Message):
    __slots__ = ("profile_id", "memberships", "next_page_token")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    memberships: _containers.RepeatedCompositeFieldContainer[AudienceMembership]
    next_page_token: str
    def __init__(self, profile_id: _Optional[str] = ..., memberships: _Optional[_Iterable[_Union[AudienceMembership, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
