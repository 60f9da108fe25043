import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Collection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLLECTION_UNSPECIFIED: _ClassVar[Collection]
    COLLECTION_USERS: _ClassVar[Collection]
    COLLECTION_ACCOUNTS: _ClassVar[Collection]

class ComputationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPUTATION_KIND_UNSPECIFIED: _ClassVar[ComputationKind]
    COMPUTATION_KIND_AUDIENCE: _ClassVar[ComputationKind]
    COMPUTATION_KIND_COMPUTED_TRAIT: _ClassVar[ComputationKind]
COLLECTION_UNSPECIFIED: Collection
COLLECTION_USERS: Collection
COLLECTION_ACCOUNTS: Collection
COMPUTATION_KIND_UNSPECIFIED: ComputationKind
COMPUTATION_KIND_AUDIENCE: ComputationKind
COMPUTATION_KIND_COMPUTED_TRAIT: ComputationKind

class ExternalId(_message.Message):
    __slots__ = ("type", "value", "collection", "encoding", "create_time", "source_id", "first_message_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    collection: Collection
    encoding: str
    create_time: _timestamp_pb2.Timestamp
    source_id: str
    first_message_id: str
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ..., collection: _Optional[_Union[Collection, str]] = ..., encoding: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_id: _Optional[str] = ..., first_message_id: _Optional[str] = ...) -> None: ...

class ProfileRef(_message.Message):
    __slots__ = ("collection", "id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    id: str
    def __init__(self, collection: _Optional[_Union[Collection, str]] = ..., id: _Optional[str] = ...) -> None: ...

class ProfileSummary(_message.Message):
    __slots__ = ("profile_id", "collection", "external_ids")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    collection: Collection
    external_ids: _containers.RepeatedCompositeFieldContainer[ExternalId]
    def __init__(self, profile_id: _Optional[str] = ..., collection: _Optional[_Union[Collection, str]] = ..., external_ids: _Optional[_Iterable[_Union[ExternalId, _Mapping]]] = ...) -> None: ...

class ComputationRef(_message.Message):
    __slots__ = ("kind", "collection", "key")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    kind: ComputationKind
    collection: Collection
    key: str
    def __init__(self, kind: _Optional[_Union[ComputationKind, str]] = ..., collection: _Optional[_Union[Collection, str]] = ..., key: _Optional[str] = ...) -> None: ...
