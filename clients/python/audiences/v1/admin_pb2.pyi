import datetime

from audiences.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComputationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPUTATION_STATUS_UNSPECIFIED: _ClassVar[ComputationStatus]
    COMPUTATION_STATUS_BACKFILLING: _ClassVar[ComputationStatus]
    COMPUTATION_STATUS_LIVE: _ClassVar[ComputationStatus]
    COMPUTATION_STATUS_DISABLED: _ClassVar[ComputationStatus]
    COMPUTATION_STATUS_FAILED: _ClassVar[ComputationStatus]

class IdentityLimitPeriod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_LIMIT_PERIOD_UNSPECIFIED: _ClassVar[IdentityLimitPeriod]
    IDENTITY_LIMIT_PERIOD_EVER: _ClassVar[IdentityLimitPeriod]
    IDENTITY_LIMIT_PERIOD_DAILY: _ClassVar[IdentityLimitPeriod]
    IDENTITY_LIMIT_PERIOD_WEEKLY: _ClassVar[IdentityLimitPeriod]
    IDENTITY_LIMIT_PERIOD_MONTHLY: _ClassVar[IdentityLimitPeriod]
    IDENTITY_LIMIT_PERIOD_ANNUALLY: _ClassVar[IdentityLimitPeriod]

class IdentityViolationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_VIOLATION_REASON_UNSPECIFIED: _ClassVar[IdentityViolationReason]
    IDENTITY_VIOLATION_REASON_IDENTIFIER_VALUE_LIMIT_EXCEEDED: _ClassVar[IdentityViolationReason]
    IDENTITY_VIOLATION_REASON_ID_VALUE_BLOCKED: _ClassVar[IdentityViolationReason]
    IDENTITY_VIOLATION_REASON_PROFILE_MERGE_LIMIT_EXCEEDED: _ClassVar[IdentityViolationReason]
    IDENTITY_VIOLATION_REASON_PROFILE_IDENTIFIER_LIMIT_EXCEEDED: _ClassVar[IdentityViolationReason]

class ClockMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_MODE_UNSPECIFIED: _ClassVar[ClockMode]
    CLOCK_MODE_SYSTEM: _ClassVar[ClockMode]
    CLOCK_MODE_MANUAL: _ClassVar[ClockMode]

class ExplainNodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLAIN_NODE_KIND_UNSPECIFIED: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_AND: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_OR: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_NOT: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_ANY: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_ALL: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_ALL_NOT: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_COMPARISON: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_LITERAL: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_TRAIT: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_AGGREGATE: _ClassVar[ExplainNodeKind]
    EXPLAIN_NODE_KIND_FIELD: _ClassVar[ExplainNodeKind]

class MembershipChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_CHANGE_TYPE_UNSPECIFIED: _ClassVar[MembershipChangeType]
    MEMBERSHIP_CHANGE_TYPE_ENTERED: _ClassVar[MembershipChangeType]
    MEMBERSHIP_CHANGE_TYPE_EXITED: _ClassVar[MembershipChangeType]
    MEMBERSHIP_CHANGE_TYPE_CHANGED: _ClassVar[MembershipChangeType]

class SizeInterval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIZE_INTERVAL_UNSPECIFIED: _ClassVar[SizeInterval]
    SIZE_INTERVAL_HOURLY: _ClassVar[SizeInterval]
    SIZE_INTERVAL_DAILY: _ClassVar[SizeInterval]
COMPUTATION_STATUS_UNSPECIFIED: ComputationStatus
COMPUTATION_STATUS_BACKFILLING: ComputationStatus
COMPUTATION_STATUS_LIVE: ComputationStatus
COMPUTATION_STATUS_DISABLED: ComputationStatus
COMPUTATION_STATUS_FAILED: ComputationStatus
IDENTITY_LIMIT_PERIOD_UNSPECIFIED: IdentityLimitPeriod
IDENTITY_LIMIT_PERIOD_EVER: IdentityLimitPeriod
IDENTITY_LIMIT_PERIOD_DAILY: IdentityLimitPeriod
IDENTITY_LIMIT_PERIOD_WEEKLY: IdentityLimitPeriod
IDENTITY_LIMIT_PERIOD_MONTHLY: IdentityLimitPeriod
IDENTITY_LIMIT_PERIOD_ANNUALLY: IdentityLimitPeriod
IDENTITY_VIOLATION_REASON_UNSPECIFIED: IdentityViolationReason
IDENTITY_VIOLATION_REASON_IDENTIFIER_VALUE_LIMIT_EXCEEDED: IdentityViolationReason
IDENTITY_VIOLATION_REASON_ID_VALUE_BLOCKED: IdentityViolationReason
IDENTITY_VIOLATION_REASON_PROFILE_MERGE_LIMIT_EXCEEDED: IdentityViolationReason
IDENTITY_VIOLATION_REASON_PROFILE_IDENTIFIER_LIMIT_EXCEEDED: IdentityViolationReason
CLOCK_MODE_UNSPECIFIED: ClockMode
CLOCK_MODE_SYSTEM: ClockMode
CLOCK_MODE_MANUAL: ClockMode
EXPLAIN_NODE_KIND_UNSPECIFIED: ExplainNodeKind
EXPLAIN_NODE_KIND_AND: ExplainNodeKind
EXPLAIN_NODE_KIND_OR: ExplainNodeKind
EXPLAIN_NODE_KIND_NOT: ExplainNodeKind
EXPLAIN_NODE_KIND_ANY: ExplainNodeKind
EXPLAIN_NODE_KIND_ALL: ExplainNodeKind
EXPLAIN_NODE_KIND_ALL_NOT: ExplainNodeKind
EXPLAIN_NODE_KIND_COMPARISON: ExplainNodeKind
EXPLAIN_NODE_KIND_LITERAL: ExplainNodeKind
EXPLAIN_NODE_KIND_TRAIT: ExplainNodeKind
EXPLAIN_NODE_KIND_AGGREGATE: ExplainNodeKind
EXPLAIN_NODE_KIND_FIELD: ExplainNodeKind
MEMBERSHIP_CHANGE_TYPE_UNSPECIFIED: MembershipChangeType
MEMBERSHIP_CHANGE_TYPE_ENTERED: MembershipChangeType
MEMBERSHIP_CHANGE_TYPE_EXITED: MembershipChangeType
MEMBERSHIP_CHANGE_TYPE_CHANGED: MembershipChangeType
SIZE_INTERVAL_UNSPECIFIED: SizeInterval
SIZE_INTERVAL_HOURLY: SizeInterval
SIZE_INTERVAL_DAILY: SizeInterval

class ComputationOptions(_message.Message):
    __slots__ = ("include_anonymous_users", "include_historical_data", "backfill_days")
    INCLUDE_ANONYMOUS_USERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORICAL_DATA_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_DAYS_FIELD_NUMBER: _ClassVar[int]
    include_anonymous_users: bool
    include_historical_data: bool
    backfill_days: int
    def __init__(self, include_anonymous_users: _Optional[bool] = ..., include_historical_data: _Optional[bool] = ..., backfill_days: _Optional[int] = ...) -> None: ...

class BackfillProgress(_message.Message):
    __slots__ = ("profiles_done", "profiles_total", "start_time", "end_time")
    PROFILES_DONE_FIELD_NUMBER: _ClassVar[int]
    PROFILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    profiles_done: int
    profiles_total: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, profiles_done: _Optional[int] = ..., profiles_total: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ComputationFailure(_message.Message):
    __slots__ = ("reason", "message", "fail_time")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAIL_TIME_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    fail_time: _timestamp_pb2.Timestamp
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ..., fail_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DefinitionSummary(_message.Message):
    __slots__ = ("event_names", "properties", "context_paths", "traits", "references", "longest_lookback", "lookback_unbounded", "primary_expression_count")
    EVENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_PATHS_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    LONGEST_LOOKBACK_FIELD_NUMBER: _ClassVar[int]
    LOOKBACK_UNBOUNDED_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_EXPRESSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    event_names: _containers.RepeatedScalarFieldContainer[str]
    properties: _containers.RepeatedScalarFieldContainer[str]
    context_paths: _containers.RepeatedScalarFieldContainer[str]
    traits: _containers.RepeatedScalarFieldContainer[str]
    references: _containers.RepeatedCompositeFieldContainer[_common_pb2.ComputationRef]
    longest_lookback: _duration_pb2.Duration
    lookback_unbounded: bool
    primary_expression_count: int
    def __init__(self, event_names: _Optional[_Iterable[str]] = ..., properties: _Optional[_Iterable[str]] = ..., context_paths: _Optional[_Iterable[str]] = ..., traits: _Optional[_Iterable[str]] = ..., references: _Optional[_Iterable[_Union[_common_pb2.ComputationRef, _Mapping]]] = ..., longest_lookback: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lookback_unbounded: _Optional[bool] = ..., primary_expression_count: _Optional[int] = ...) -> None: ...

class DefinitionError(_message.Message):
    __slots__ = ("reason", "message", "line", "column", "offending_text", "expected", "caret_display", "cycle_keys")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    OFFENDING_TEXT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CARET_DISPLAY_FIELD_NUMBER: _ClassVar[int]
    CYCLE_KEYS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    line: int
    column: int
    offending_text: str
    expected: _containers.RepeatedScalarFieldContainer[str]
    caret_display: str
    cycle_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., offending_text: _Optional[str] = ..., expected: _Optional[_Iterable[str]] = ..., caret_display: _Optional[str] = ..., cycle_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Audience(_message.Message):
    __slots__ = ("id", "key", "collection", "name", "description", "definition", "enabled", "options", "status", "size", "backfill", "last_compute_time", "create_time", "update_time", "failure", "summary", "etag", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    LAST_COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    collection: _common_pb2.Collection
    name: str
    description: str
    definition: str
    enabled: bool
    options: ComputationOptions
    status: ComputationStatus
    size: int
    backfill: BackfillProgress
    last_compute_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    failure: ComputationFailure
    summary: DefinitionSummary
    etag: str
    version: int
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., definition: _Optional[str] = ..., enabled: _Optional[bool] = ..., options: _Optional[_Union[ComputationOptions, _Mapping]] = ..., status: _Optional[_Union[ComputationStatus, str]] = ..., size: _Optional[int] = ..., backfill: _Optional[_Union[BackfillProgress, _Mapping]] = ..., last_compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure: _Optional[_Union[ComputationFailure, _Mapping]] = ..., summary: _Optional[_Union[DefinitionSummary, _Mapping]] = ..., etag: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ComputedTrait(_message.Message):
    __slots__ = ("id", "key", "collection", "name", "description", "definition", "enabled", "options", "status", "size", "backfill", "last_compute_time", "create_time", "update_time", "failure", "summary", "etag", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    LAST_COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    collection: _common_pb2.Collection
    name: str
    description: str
    definition: str
    enabled: bool
    options: ComputationOptions
    status: ComputationStatus
    size: int
    backfill: BackfillProgress
    last_compute_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    failure: ComputationFailure
    summary: DefinitionSummary
    etag: str
    version: int
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., definition: _Optional[str] = ..., enabled: _Optional[bool] = ..., options: _Optional[_Union[ComputationOptions, _Mapping]] = ..., status: _Optional[_Union[ComputationStatus, str]] = ..., size: _Optional[int] = ..., backfill: _Optional[_Union[BackfillProgress, _Mapping]] = ..., last_compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure: _Optional[_Union[ComputationFailure, _Mapping]] = ..., summary: _Optional[_Union[DefinitionSummary, _Mapping]] = ..., etag: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ProfileValue(_message.Message):
    __slots__ = ("profile", "value", "value_json")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileSummary
    value: _struct_pb2.Value
    value_json: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., value_json: _Optional[str] = ...) -> None: ...

class AudienceMember(_message.Message):
    __slots__ = ("profile", "enter_time", "traits")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ENTER_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileSummary
    enter_time: _timestamp_pb2.Timestamp
    traits: _struct_pb2.Struct
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., enter_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., traits: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateAudienceRequest(_message.Message):
    __slots__ = ("audience",)
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    audience: Audience
    def __init__(self, audience: _Optional[_Union[Audience, _Mapping]] = ...) -> None: ...

class CreateAudienceResponse(_message.Message):
    __slots__ = ("audience",)
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    audience: Audience
    def __init__(self, audience: _Optional[_Union[Audience, _Mapping]] = ...) -> None: ...

class GetAudienceRequest(_message.Message):
    __slots__ = ("collection", "key")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ...) -> None: ...

class GetAudienceResponse(_message.Message):
    __slots__ = ("audience",)
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    audience: Audience
    def __init__(self, audience: _Optional[_Union[Audience, _Mapping]] = ...) -> None: ...

class ListAudiencesRequest(_message.Message):
    __slots__ = ("collection", "page_size", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    page_size: int
    page_token: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAudiencesResponse(_message.Message):
    __slots__ = ("audiences", "next_page_token")
    AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audiences: _containers.RepeatedCompositeFieldContainer[Audience]
    next_page_token: str
    def __init__(self, audiences: _Optional[_Iterable[_Union[Audience, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAudienceRequest(_message.Message):
    __slots__ = ("audience", "update_mask")
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    audience: Audience
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, audience: _Optional[_Union[Audience, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAudienceResponse(_message.Message):
    __slots__ = ("audience",)
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    audience: Audience
    def __init__(self, audience: _Optional[_Union[Audience, _Mapping]] = ...) -> None: ...

class DeleteAudienceRequest(_message.Message):
    __slots__ = ("collection", "key", "force")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    force: bool
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteAudienceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAudienceMembersRequest(_message.Message):
    __slots__ = ("collection", "key", "include_traits", "page_size", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAITS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    include_traits: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., include_traits: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAudienceMembersResponse(_message.Message):
    __slots__ = ("members", "next_page_token", "total_size")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[AudienceMember]
    next_page_token: str
    total_size: int
    def __init__(self, members: _Optional[_Iterable[_Union[AudienceMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class CreateComputedTraitRequest(_message.Message):
    __slots__ = ("computed_trait",)
    COMPUTED_TRAIT_FIELD_NUMBER: _ClassVar[int]
    computed_trait: ComputedTrait
    def __init__(self, computed_trait: _Optional[_Union[ComputedTrait, _Mapping]] = ...) -> None: ...

class CreateComputedTraitResponse(_message.Message):
    __slots__ = ("computed_trait",)
    COMPUTED_TRAIT_FIELD_NUMBER: _ClassVar[int]
    computed_trait: ComputedTrait
    def __init__(self, computed_trait: _Optional[_Union[ComputedTrait, _Mapping]] = ...) -> None: ...

class GetComputedTraitRequest(_message.Message):
    __slots__ = ("collection", "key")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ...) -> None: ...

class GetComputedTraitResponse(_message.Message):
    __slots__ = ("computed_trait",)
    COMPUTED_TRAIT_FIELD_NUMBER: _ClassVar[int]
    computed_trait: ComputedTrait
    def __init__(self, computed_trait: _Optional[_Union[ComputedTrait, _Mapping]] = ...) -> None: ...

class ListComputedTraitsRequest(_message.Message):
    __slots__ = ("collection", "page_size", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    page_size: int
    page_token: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListComputedTraitsResponse(_message.Message):
    __slots__ = ("computed_traits", "next_page_token")
    COMPUTED_TRAITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    computed_traits: _containers.RepeatedCompositeFieldContainer[ComputedTrait]
    next_page_token: str
    def __init__(self, computed_traits: _Optional[_Iterable[_Union[ComputedTrait, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateComputedTraitRequest(_message.Message):
    __slots__ = ("computed_trait", "update_mask")
    COMPUTED_TRAIT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    computed_trait: ComputedTrait
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, computed_trait: _Optional[_Union[ComputedTrait, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateComputedTraitResponse(_message.Message):
    __slots__ = ("computed_trait",)
    COMPUTED_TRAIT_FIELD_NUMBER: _ClassVar[int]
    computed_trait: ComputedTrait
    def __init__(self, computed_trait: _Optional[_Union[ComputedTrait, _Mapping]] = ...) -> None: ...

class DeleteComputedTraitRequest(_message.Message):
    __slots__ = ("collection", "key", "force")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    force: bool
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteComputedTraitResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidateDefinitionRequest(_message.Message):
    __slots__ = ("definition", "kind", "collection", "key")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    definition: str
    kind: _common_pb2.ComputationKind
    collection: _common_pb2.Collection
    key: str
    def __init__(self, definition: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.ComputationKind, str]] = ..., collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ...) -> None: ...

class ValidateDefinitionResponse(_message.Message):
    __slots__ = ("valid", "error", "summary")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    error: DefinitionError
    summary: DefinitionSummary
    def __init__(self, valid: _Optional[bool] = ..., error: _Optional[_Union[DefinitionError, _Mapping]] = ..., summary: _Optional[_Union[DefinitionSummary, _Mapping]] = ...) -> None: ...

class PreviewDefinitionRequest(_message.Message):
    __slots__ = ("definition", "kind", "collection", "include_anonymous_users", "sample_size", "compare_key", "compare_options")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ANONYMOUS_USERS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPARE_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPARE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    definition: str
    kind: _common_pb2.ComputationKind
    collection: _common_pb2.Collection
    include_anonymous_users: bool
    sample_size: int
    compare_key: str
    compare_options: ComputationOptions
    def __init__(self, definition: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.ComputationKind, str]] = ..., collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., include_anonymous_users: _Optional[bool] = ..., sample_size: _Optional[int] = ..., compare_key: _Optional[str] = ..., compare_options: _Optional[_Union[ComputationOptions, _Mapping]] = ...) -> None: ...

class PreviewDefinitionResponse(_message.Message):
    __slots__ = ("count", "samples", "evaluate_time", "summary", "diff")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    count: int
    samples: _containers.RepeatedCompositeFieldContainer[ProfileValue]
    evaluate_time: _timestamp_pb2.Timestamp
    summary: DefinitionSummary
    diff: DefinitionDiff
    def __init__(self, count: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[ProfileValue, _Mapping]]] = ..., evaluate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[_Union[DefinitionSummary, _Mapping]] = ..., diff: _Optional[_Union[DefinitionDiff, _Mapping]] = ...) -> None: ...

class DefinitionDiff(_message.Message):
    __slots__ = ("compare_key", "entering_count", "exiting_count", "staying_count", "changed_count", "entering_samples", "exiting_samples", "staying_samples")
    COMPARE_KEY_FIELD_NUMBER: _ClassVar[int]
    ENTERING_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXITING_COUNT_FIELD_NUMBER: _ClassVar[int]
    STAYING_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENTERING_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    EXITING_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    STAYING_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    compare_key: str
    entering_count: int
    exiting_count: int
    staying_count: int
    changed_count: int
    entering_samples: _containers.RepeatedCompositeFieldContainer[ProfileChange]
    exiting_samples: _containers.RepeatedCompositeFieldContainer[ProfileChange]
    staying_samples: _containers.RepeatedCompositeFieldContainer[ProfileChange]
    def __init__(self, compare_key: _Optional[str] = ..., entering_count: _Optional[int] = ..., exiting_count: _Optional[int] = ..., staying_count: _Optional[int] = ..., changed_count: _Optional[int] = ..., entering_samples: _Optional[_Iterable[_Union[ProfileChange, _Mapping]]] = ..., exiting_samples: _Optional[_Iterable[_Union[ProfileChange, _Mapping]]] = ..., staying_samples: _Optional[_Iterable[_Union[ProfileChange, _Mapping]]] = ...) -> None: ...

class ProfileChange(_message.Message):
    __slots__ = ("profile", "old_value", "new_value", "old_value_json", "new_value_json")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileSummary
    old_value: _struct_pb2.Value
    new_value: _struct_pb2.Value
    old_value_json: str
    new_value_json: str
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., old_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., new_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., old_value_json: _Optional[str] = ..., new_value_json: _Optional[str] = ...) -> None: ...

class IdentityRule(_message.Message):
    __slots__ = ("id_type", "blocked_patterns", "blocked_values", "limit", "limit_period", "priority", "update_time", "source_keys")
    ID_TYPE_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_PATTERNS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_VALUES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KEYS_FIELD_NUMBER: _ClassVar[int]
    id_type: str
    blocked_patterns: _containers.RepeatedScalarFieldContainer[str]
    blocked_values: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    limit_period: IdentityLimitPeriod
    priority: int
    update_time: _timestamp_pb2.Timestamp
    source_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id_type: _Optional[str] = ..., blocked_patterns: _Optional[_Iterable[str]] = ..., blocked_values: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., limit_period: _Optional[_Union[IdentityLimitPeriod, str]] = ..., priority: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class IdentityRules(_message.Message):
    __slots__ = ("rules", "default_rule", "max_merges_per_profile", "max_identifiers_per_profile")
    RULES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RULE_FIELD_NUMBER: _ClassVar[int]
    MAX_MERGES_PER_PROFILE_FIELD_NUMBER: _ClassVar[int]
    MAX_IDENTIFIERS_PER_PROFILE_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[IdentityRule]
    default_rule: IdentityRule
    max_merges_per_profile: int
    max_identifiers_per_profile: int
    def __init__(self, rules: _Optional[_Iterable[_Union[IdentityRule, _Mapping]]] = ..., default_rule: _Optional[_Union[IdentityRule, _Mapping]] = ..., max_merges_per_profile: _Optional[int] = ..., max_identifiers_per_profile: _Optional[int] = ...) -> None: ...

class IdentityRuleViolation(_message.Message):
    __slots__ = ("reason", "rule_name", "id_type", "count", "sample_message_ids", "first_seen_time", "last_seen_time")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_NAME_FIELD_NUMBER: _ClassVar[int]
    ID_TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    reason: IdentityViolationReason
    rule_name: str
    id_type: str
    count: int
    sample_message_ids: _containers.RepeatedScalarFieldContainer[str]
    first_seen_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    def __init__(self, reason: _Optional[_Union[IdentityViolationReason, str]] = ..., rule_name: _Optional[str] = ..., id_type: _Optional[str] = ..., count: _Optional[int] = ..., sample_message_ids: _Optional[_Iterable[str]] = ..., first_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetIdentityRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIdentityRulesResponse(_message.Message):
    __slots__ = ("identity_rules",)
    IDENTITY_RULES_FIELD_NUMBER: _ClassVar[int]
    identity_rules: IdentityRules
    def __init__(self, identity_rules: _Optional[_Union[IdentityRules, _Mapping]] = ...) -> None: ...

class UpdateIdentityRuleRequest(_message.Message):
    __slots__ = ("rule", "update_mask")
    RULE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    rule: IdentityRule
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, rule: _Optional[_Union[IdentityRule, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateIdentityRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: IdentityRule
    def __init__(self, rule: _Optional[_Union[IdentityRule, _Mapping]] = ...) -> None: ...

class ListIdentityRuleViolationsRequest(_message.Message):
    __slots__ = ("start_time", "id_type", "page_size", "page_token")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ID_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    id_type: str
    page_size: int
    page_token: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., id_type: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIdentityRuleViolationsResponse(_message.Message):
    __slots__ = ("violations", "next_page_token")
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    violations: _containers.RepeatedCompositeFieldContainer[IdentityRuleViolation]
    next_page_token: str
    def __init__(self, violations: _Optional[_Iterable[_Union[IdentityRuleViolation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Tick(_message.Message):
    __slots__ = ("tick_time", "profiles_evaluated", "definitions_evaluated", "values_changed", "duration", "backlog")
    TICK_TIME_FIELD_NUMBER: _ClassVar[int]
    PROFILES_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    DEFINITIONS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    VALUES_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    tick_time: _timestamp_pb2.Timestamp
    profiles_evaluated: int
    definitions_evaluated: int
    values_changed: int
    duration: _duration_pb2.Duration
    backlog: bool
    def __init__(self, tick_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., profiles_evaluated: _Optional[int] = ..., definitions_evaluated: _Optional[int] = ..., values_changed: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., backlog: _Optional[bool] = ...) -> None: ...

class SetClockRequest(_message.Message):
    __slots__ = ("clock_time", "advance")
    CLOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    clock_time: _timestamp_pb2.Timestamp
    advance: _duration_pb2.Duration
    def __init__(self, clock_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., advance: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetClockResponse(_message.Message):
    __slots__ = ("previous_clock_time", "clock_time")
    PREVIOUS_CLOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    previous_clock_time: _timestamp_pb2.Timestamp
    clock_time: _timestamp_pb2.Timestamp
    def __init__(self, previous_clock_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clock_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunTickRequest(_message.Message):
    __slots__ = ("until_idle",)
    UNTIL_IDLE_FIELD_NUMBER: _ClassVar[int]
    until_idle: bool
    def __init__(self, until_idle: _Optional[bool] = ...) -> None: ...

class RunTickResponse(_message.Message):
    __slots__ = ("ticks",)
    TICKS_FIELD_NUMBER: _ClassVar[int]
    ticks: _containers.RepeatedCompositeFieldContainer[Tick]
    def __init__(self, ticks: _Optional[_Iterable[_Union[Tick, _Mapping]]] = ...) -> None: ...

class GetEvaluatorStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEvaluatorStatusResponse(_message.Message):
    __slots__ = ("clock_mode", "clock_time", "tick_interval", "last_tick", "pending_profiles", "next_due_time", "backfilling_count", "due_waiting", "due_lag")
    CLOCK_MODE_FIELD_NUMBER: _ClassVar[int]
    CLOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    TICK_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_FIELD_NUMBER: _ClassVar[int]
    PENDING_PROFILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    BACKFILLING_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUE_WAITING_FIELD_NUMBER: _ClassVar[int]
    DUE_LAG_FIELD_NUMBER: _ClassVar[int]
    clock_mode: ClockMode
    clock_time: _timestamp_pb2.Timestamp
    tick_interval: _duration_pb2.Duration
    last_tick: Tick
    pending_profiles: int
    next_due_time: _timestamp_pb2.Timestamp
    backfilling_count: int
    due_waiting: int
    due_lag: _duration_pb2.Duration
    def __init__(self, clock_mode: _Optional[_Union[ClockMode, str]] = ..., clock_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tick_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., last_tick: _Optional[_Union[Tick, _Mapping]] = ..., pending_profiles: _Optional[int] = ..., next_due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backfilling_count: _Optional[int] = ..., due_waiting: _Optional[int] = ..., due_lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ExplainMembershipRequest(_message.Message):
    __slots__ = ("collection", "key", "profile_id", "explain_time", "max_evidence")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    profile_id: str
    explain_time: _timestamp_pb2.Timestamp
    max_evidence: int
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., profile_id: _Optional[str] = ..., explain_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_evidence: _Optional[int] = ...) -> None: ...

class ExplainMembershipResponse(_message.Message):
    __slots__ = ("computation", "profile", "explain_time", "value", "value_json", "stored_value", "evaluation_pending", "anonymous_excluded", "root", "next_change")
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_PENDING_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHANGE_FIELD_NUMBER: _ClassVar[int]
    computation: _common_pb2.ComputationRef
    profile: _common_pb2.ProfileSummary
    explain_time: _timestamp_pb2.Timestamp
    value: _struct_pb2.Value
    value_json: str
    stored_value: _struct_pb2.Value
    evaluation_pending: bool
    anonymous_excluded: bool
    root: ExplainNode
    next_change: NextChange
    def __init__(self, computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., explain_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., value_json: _Optional[str] = ..., stored_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., evaluation_pending: _Optional[bool] = ..., anonymous_excluded: _Optional[bool] = ..., root: _Optional[_Union[ExplainNode, _Mapping]] = ..., next_change: _Optional[_Union[NextChange, _Mapping]] = ...) -> None: ...

class ExplainNode(_message.Message):
    __slots__ = ("kind", "text", "value", "value_json", "children", "trait", "stream", "users", "users_satisfying_count", "users_count")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    USERS_SATISFYING_COUNT_FIELD_NUMBER: _ClassVar[int]
    USERS_COUNT_FIELD_NUMBER: _ClassVar[int]
    kind: ExplainNodeKind
    text: str
    value: _struct_pb2.Value
    value_json: str
    children: _containers.RepeatedCompositeFieldContainer[ExplainNode]
    trait: TraitRead
    stream: StreamEvidence
    users: _containers.RepeatedCompositeFieldContainer[UserOutcome]
    users_satisfying_count: int
    users_count: int
    def __init__(self, kind: _Optional[_Union[ExplainNodeKind, str]] = ..., text: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., value_json: _Optional[str] = ..., children: _Optional[_Iterable[_Union[ExplainNode, _Mapping]]] = ..., trait: _Optional[_Union[TraitRead, _Mapping]] = ..., stream: _Optional[_Union[StreamEvidence, _Mapping]] = ..., users: _Optional[_Iterable[_Union[UserOutcome, _Mapping]]] = ..., users_satisfying_count: _Optional[int] = ..., users_count: _Optional[int] = ...) -> None: ...

class TraitRead(_message.Message):
    __slots__ = ("key", "trait_class")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TRAIT_CLASS_FIELD_NUMBER: _ClassVar[int]
    key: str
    trait_class: str
    def __init__(self, key: _Optional[str] = ..., trait_class: _Optional[str] = ...) -> None: ...

class StreamEvidence(_message.Message):
    __slots__ = ("event", "seen_count", "filters", "event_count", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SEEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: str
    seen_count: int
    filters: _containers.RepeatedCompositeFieldContainer[FilterStep]
    event_count: int
    events: _containers.RepeatedCompositeFieldContainer[EventEvidence]
    def __init__(self, event: _Optional[str] = ..., seen_count: _Optional[int] = ..., filters: _Optional[_Iterable[_Union[FilterStep, _Mapping]]] = ..., event_count: _Optional[int] = ..., events: _Optional[_Iterable[_Union[EventEvidence, _Mapping]]] = ...) -> None: ...

class FilterStep(_message.Message):
    __slots__ = ("filter", "remaining_count")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    REMAINING_COUNT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    remaining_count: int
    def __init__(self, filter: _Optional[str] = ..., remaining_count: _Optional[int] = ...) -> None: ...

class EventEvidence(_message.Message):
    __slots__ = ("message_id", "profile_id", "event", "event_time", "value_json", "read_json")
    class ReadJsonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    READ_JSON_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    profile_id: str
    event: str
    event_time: _timestamp_pb2.Timestamp
    value_json: str
    read_json: _containers.ScalarMap[str, str]
    def __init__(self, message_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., event: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value_json: _Optional[str] = ..., read_json: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UserOutcome(_message.Message):
    __slots__ = ("profile", "satisfied", "node")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SATISFIED_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.ProfileSummary
    satisfied: bool
    node: ExplainNode
    def __init__(self, profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., satisfied: _Optional[bool] = ..., node: _Optional[_Union[ExplainNode, _Mapping]] = ...) -> None: ...

class ChangeReason(_message.Message):
    __slots__ = ("reason_time", "description", "message_id")
    REASON_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    reason_time: _timestamp_pb2.Timestamp
    description: str
    message_id: str
    def __init__(self, reason_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., description: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class NextChange(_message.Message):
    __slots__ = ("check_time", "check_reasons", "change_time", "new_value_json", "reasons", "search_exhausted", "summary")
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    CHECK_REASONS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    check_time: _timestamp_pb2.Timestamp
    check_reasons: _containers.RepeatedCompositeFieldContainer[ChangeReason]
    change_time: _timestamp_pb2.Timestamp
    new_value_json: str
    reasons: _containers.RepeatedCompositeFieldContainer[ChangeReason]
    search_exhausted: bool
    summary: str
    def __init__(self, check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., check_reasons: _Optional[_Iterable[_Union[ChangeReason, _Mapping]]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., new_value_json: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[ChangeReason, _Mapping]]] = ..., search_exhausted: _Optional[bool] = ..., summary: _Optional[str] = ...) -> None: ...

class MembershipChange(_message.Message):
    __slots__ = ("change_id", "computation", "profile", "change_type", "old_value_json", "new_value_json", "change_time")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    change_id: int
    computation: _common_pb2.ComputationRef
    profile: _common_pb2.ProfileSummary
    change_type: MembershipChangeType
    old_value_json: str
    new_value_json: str
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, change_id: _Optional[int] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., profile: _Optional[_Union[_common_pb2.ProfileSummary, _Mapping]] = ..., change_type: _Optional[_Union[MembershipChangeType, str]] = ..., old_value_json: _Optional[str] = ..., new_value_json: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListMembershipHistoryRequest(_message.Message):
    __slots__ = ("collection", "profile_id", "key", "start_time", "end_time", "page_size", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    profile_id: str
    key: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., profile_id: _Optional[str] = ..., key: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMembershipHistoryResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[MembershipChange]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[MembershipChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SizePoint(_message.Message):
    __slots__ = ("start_time", "size", "entered_count", "exited_count", "changed_count")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ENTERED_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXITED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    size: int
    entered_count: int
    exited_count: int
    changed_count: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size: _Optional[int] = ..., entered_count: _Optional[int] = ..., exited_count: _Optional[int] = ..., changed_count: _Optional[int] = ...) -> None: ...

class GetSizeHistoryRequest(_message.Message):
    __slots__ = ("collection", "key", "interval", "start_time", "end_time")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    interval: SizeInterval
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., interval: _Optional[_Union[SizeInterval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSizeHistoryResponse(_message.Message):
    __slots__ = ("computation", "points", "current_size")
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    computation: _common_pb2.ComputationRef
    points: _containers.RepeatedCompositeFieldContainer[SizePoint]
    current_size: int
    def __init__(self, computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., points: _Optional[_Iterable[_Union[SizePoint, _Mapping]]] = ..., current_size: _Optional[int] = ...) -> None: ...

class DefinitionVersion(_message.Message):
    __slots__ = ("computation", "version", "definition", "options", "create_time", "actor", "backfill_end_time", "size_after_backfill", "current")
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_END_TIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_AFTER_BACKFILL_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    computation: _common_pb2.ComputationRef
    version: int
    definition: str
    options: ComputationOptions
    create_time: _timestamp_pb2.Timestamp
    actor: str
    backfill_end_time: _timestamp_pb2.Timestamp
    size_after_backfill: int
    current: bool
    def __init__(self, computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., version: _Optional[int] = ..., definition: _Optional[str] = ..., options: _Optional[_Union[ComputationOptions, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., backfill_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_after_backfill: _Optional[int] = ..., current: _Optional[bool] = ...) -> None: ...

class ListDefinitionVersionsRequest(_message.Message):
    __slots__ = ("collection", "key", "page_size", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    page_size: int
    page_token: str
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDefinitionVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[DefinitionVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[DefinitionVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDefinitionVersionRequest(_message.Message):
    __slots__ = ("collection", "key", "version")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    version: int
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetDefinitionVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: DefinitionVersion
    def __init__(self, version: _Optional[_Union[DefinitionVersion, _Mapping]] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("entry_id", "action_time", "actor", "action", "target_type", "target", "details")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    action_time: _timestamp_pb2.Timestamp
    actor: str
    action: str
    target_type: str
    target: str
    details: _struct_pb2.Struct
    def __init__(self, entry_id: _Optional[int] = ..., action_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target_type: _Optional[str] = ..., target: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("action", "target_type", "target", "page_size", "page_token")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    action: str
    target_type: str
    target: str
    page_size: int
    page_token: str
    def __init__(self, action: _Optional[str] = ..., target_type: _Optional[str] = ..., target: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
