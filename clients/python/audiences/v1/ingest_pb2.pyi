import datetime

from audiences.v1 import tracking_pb2 as _tracking_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATUS_UNSPECIFIED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_ACCEPTED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_DUPLICATE: _ClassVar[MessageStatus]
    MESSAGE_STATUS_REJECTED: _ClassVar[MessageStatus]
MESSAGE_STATUS_UNSPECIFIED: MessageStatus
MESSAGE_STATUS_ACCEPTED: MessageStatus
MESSAGE_STATUS_DUPLICATE: MessageStatus
MESSAGE_STATUS_REJECTED: MessageStatus

class MessageResult(_message.Message):
    __slots__ = ("index", "message_id", "status", "reason", "detail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    message_id: str
    status: MessageStatus
    reason: str
    detail: str
    def __init__(self, index: _Optional[int] = ..., message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("track",)
    TRACK_FIELD_NUMBER: _ClassVar[int]
    track: _tracking_pb2.Track
    def __init__(self, track: _Optional[_Union[_tracking_pb2.Track, _Mapping]] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("identify",)
    IDENTIFY_FIELD_NUMBER: _ClassVar[int]
    identify: _tracking_pb2.Identify
    def __init__(self, identify: _Optional[_Union[_tracking_pb2.Identify, _Mapping]] = ...) -> None: ...

class IdentifyResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class PageRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _tracking_pb2.Page
    def __init__(self, page: _Optional[_Union[_tracking_pb2.Page, _Mapping]] = ...) -> None: ...

class PageResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class ScreenRequest(_message.Message):
    __slots__ = ("screen",)
    SCREEN_FIELD_NUMBER: _ClassVar[int]
    screen: _tracking_pb2.Screen
    def __init__(self, screen: _Optional[_Union[_tracking_pb2.Screen, _Mapping]] = ...) -> None: ...

class ScreenResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class GroupRequest(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _tracking_pb2.Group
    def __init__(self, group: _Optional[_Union[_tracking_pb2.Group, _Mapping]] = ...) -> None: ...

class GroupResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class AliasRequest(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: _tracking_pb2.Alias
    def __init__(self, alias: _Optional[_Union[_tracking_pb2.Alias, _Mapping]] = ...) -> None: ...

class AliasResponse(_message.Message):
    __slots__ = ("message_id", "status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: MessageStatus
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("batch", "context", "integrations", "sent_time")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    batch: _containers.RepeatedCompositeFieldContainer[_tracking_pb2.TrackingCall]
    context: _struct_pb2.Struct
    integrations: _struct_pb2.Struct
    sent_time: _timestamp_pb2.Timestamp
    def __init__(self, batch: _Optional[_Iterable[_Union[_tracking_pb2.TrackingCall, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., integrations: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("results", "accepted_count", "duplicate_count", "rejected_count")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MessageResult]
    accepted_count: int
    duplicate_count: int
    rejected_count: int
    def __init__(self, results: _Optional[_Iterable[_Union[MessageResult, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ...) -> None: ...

class BatchJsonRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class BatchJsonResponse(_message.Message):
    __slots__ = ("results", "accepted_count", "duplicate_count", "rejected_count")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MessageResult]
    accepted_count: int
    duplicate_count: int
    rejected_count: int
    def __init__(self, results: _Optional[_Iterable[_Union[MessageResult, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ...) -> None: ...

class StreamCallsRequest(_message.Message):
    __slots__ = ("call",)
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: _tracking_pb2.TrackingCall
    def __init__(self, call: _Optional[_Union[_tracking_pb2.TrackingCall, _Mapping]] = ...) -> None: ...

class StreamCallsResponse(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "rejected_count", "rejected")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    rejected_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[MessageResult]
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[MessageResult, _Mapping]]] = ...) -> None: ...
