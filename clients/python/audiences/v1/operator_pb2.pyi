import datetime

from audiences.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_SCOPE_UNSPECIFIED: _ClassVar[TokenScope]
    TOKEN_SCOPE_WRITE: _ClassVar[TokenScope]
    TOKEN_SCOPE_READ: _ClassVar[TokenScope]
    TOKEN_SCOPE_ADMIN: _ClassVar[TokenScope]
    TOKEN_SCOPE_OPERATOR: _ClassVar[TokenScope]

class TokenState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_STATE_UNSPECIFIED: _ClassVar[TokenState]
    TOKEN_STATE_ACTIVE: _ClassVar[TokenState]
    TOKEN_STATE_EXPIRED: _ClassVar[TokenState]
    TOKEN_STATE_REVOKED: _ClassVar[TokenState]

class DeletionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELETION_STATE_UNSPECIFIED: _ClassVar[DeletionState]
    DELETION_STATE_PENDING: _ClassVar[DeletionState]
    DELETION_STATE_COMPLETE: _ClassVar[DeletionState]
TOKEN_SCOPE_UNSPECIFIED: TokenScope
TOKEN_SCOPE_WRITE: TokenScope
TOKEN_SCOPE_READ: TokenScope
TOKEN_SCOPE_ADMIN: TokenScope
TOKEN_SCOPE_OPERATOR: TokenScope
TOKEN_STATE_UNSPECIFIED: TokenState
TOKEN_STATE_ACTIVE: TokenState
TOKEN_STATE_EXPIRED: TokenState
TOKEN_STATE_REVOKED: TokenState
DELETION_STATE_UNSPECIFIED: DeletionState
DELETION_STATE_PENDING: DeletionState
DELETION_STATE_COMPLETE: DeletionState

class Space(_message.Message):
    __slots__ = ("name", "create_time", "event_retention")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_RETENTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    create_time: _timestamp_pb2.Timestamp
    event_retention: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_retention: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("token_id", "space", "scope", "label", "create_time", "expire_time", "last_used_time", "revoke_time", "state")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    space: str
    scope: TokenScope
    label: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    last_used_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    state: TokenState
    def __init__(self, token_id: _Optional[str] = ..., space: _Optional[str] = ..., scope: _Optional[_Union[TokenScope, str]] = ..., label: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[TokenState, str]] = ...) -> None: ...

class ProfileDeletion(_message.Message):
    __slots__ = ("deletion_id", "space", "profile", "profile_id", "suppress", "state", "create_time", "complete_time", "requested_by", "exits_recorded", "exits_undelivered", "events_deleted", "identifiers_suppressed", "delivery_timeout")
    DELETION_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    SUPPRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    EXITS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    EXITS_UNDELIVERED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    deletion_id: str
    space: str
    profile: _common_pb2.ProfileRef
    profile_id: str
    suppress: bool
    state: DeletionState
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    requested_by: str
    exits_recorded: int
    exits_undelivered: int
    events_deleted: int
    identifiers_suppressed: int
    delivery_timeout: _duration_pb2.Duration
    def __init__(self, deletion_id: _Optional[str] = ..., space: _Optional[str] = ..., profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., profile_id: _Optional[str] = ..., suppress: _Optional[bool] = ..., state: _Optional[_Union[DeletionState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ..., exits_recorded: _Optional[int] = ..., exits_undelivered: _Optional[int] = ..., events_deleted: _Optional[int] = ..., identifiers_suppressed: _Optional[int] = ..., delivery_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Suppression(_message.Message):
    __slots__ = ("external_id", "create_time", "deletion_id")
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETION_ID_FIELD_NUMBER: _ClassVar[int]
    external_id: _common_pb2.ExternalId
    create_time: _timestamp_pb2.Timestamp
    deletion_id: str
    def __init__(self, external_id: _Optional[_Union[_common_pb2.ExternalId, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deletion_id: _Optional[str] = ...) -> None: ...

class CreateSpaceRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: Space
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ...) -> None: ...

class CreateSpaceResponse(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: Space
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ...) -> None: ...

class GetSpaceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSpaceResponse(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: Space
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ...) -> None: ...

class ListSpacesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSpacesResponse(_message.Message):
    __slots__ = ("spaces", "next_page_token")
    SPACES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    spaces: _containers.RepeatedCompositeFieldContainer[Space]
    next_page_token: str
    def __init__(self, spaces: _Optional[_Iterable[_Union[Space, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSpaceRequest(_message.Message):
    __slots__ = ("space", "update_mask")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    space: Space
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSpaceResponse(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: Space
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("space", "scope", "label", "expire_time", "ttl")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    space: str
    scope: TokenScope
    label: str
    expire_time: _timestamp_pb2.Timestamp
    ttl: _duration_pb2.Duration
    def __init__(self, space: _Optional[str] = ..., scope: _Optional[_Union[TokenScope, str]] = ..., label: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: Token
    secret: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("space", "page_size", "page_token")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    space: str
    page_size: int
    page_token: str
    def __init__(self, space: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("space", "profile", "suppress", "delivery_timeout")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    space: str
    profile: _common_pb2.ProfileRef
    suppress: bool
    delivery_timeout: _duration_pb2.Duration
    def __init__(self, space: _Optional[str] = ..., profile: _Optional[_Union[_common_pb2.ProfileRef, _Mapping]] = ..., suppress: _Optional[bool] = ..., delivery_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class DeleteProfileResponse(_message.Message):
    __slots__ = ("deletion",)
    DELETION_FIELD_NUMBER: _ClassVar[int]
    deletion: ProfileDeletion
    def __init__(self, deletion: _Optional[_Union[ProfileDeletion, _Mapping]] = ...) -> None: ...

class GetProfileDeletionRequest(_message.Message):
    __slots__ = ("space", "deletion_id")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    DELETION_ID_FIELD_NUMBER: _ClassVar[int]
    space: str
    deletion_id: str
    def __init__(self, space: _Optional[str] = ..., deletion_id: _Optional[str] = ...) -> None: ...

class GetProfileDeletionResponse(_message.Message):
    __slots__ = ("deletion",)
    DELETION_FIELD_NUMBER: _ClassVar[int]
    deletion: ProfileDeletion
    def __init__(self, deletion: _Optional[_Union[ProfileDeletion, _Mapping]] = ...) -> None: ...

class ListProfileDeletionsRequest(_message.Message):
    __slots__ = ("space", "page_size", "page_token")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    space: str
    page_size: int
    page_token: str
    def __init__(self, space: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProfileDeletionsResponse(_message.Message):
    __slots__ = ("deletions", "next_page_token")
    DELETIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deletions: _containers.RepeatedCompositeFieldContainer[ProfileDeletion]
    next_page_token: str
    def __init__(self, deletions: _Optional[_Iterable[_Union[ProfileDeletion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListSuppressionsRequest(_message.Message):
    __slots__ = ("space", "page_size", "page_token")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    space: str
    page_size: int
    page_token: str
    def __init__(self, space: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSuppressionsResponse(_message.Message):
    __slots__ = ("suppressions", "next_page_token")
    SUPPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    suppressions: _containers.RepeatedCompositeFieldContainer[Suppression]
    next_page_token: str
    def __init__(self, suppressions: _Optional[_Iterable[_Union[Suppression, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSuppressionRequest(_message.Message):
    __slots__ = ("space", "external_id")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    space: str
    external_id: _common_pb2.ExternalId
    def __init__(self, space: _Optional[str] = ..., external_id: _Optional[_Union[_common_pb2.ExternalId, _Mapping]] = ...) -> None: ...

class DeleteSuppressionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
