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

class WebhookPayloadStyle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_PAYLOAD_STYLE_UNSPECIFIED: _ClassVar[WebhookPayloadStyle]
    WEBHOOK_PAYLOAD_STYLE_EVENT: _ClassVar[WebhookPayloadStyle]
    WEBHOOK_PAYLOAD_STYLE_LIST: _ClassVar[WebhookPayloadStyle]

class IdentifierSelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_SELECTION_UNSPECIFIED: _ClassVar[IdentifierSelection]
    IDENTIFIER_SELECTION_ALL: _ClassVar[IdentifierSelection]
    IDENTIFIER_SELECTION_FIRST_ADDED: _ClassVar[IdentifierSelection]
    IDENTIFIER_SELECTION_LAST_ADDED: _ClassVar[IdentifierSelection]

class ConnectionPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_PHASE_UNSPECIFIED: _ClassVar[ConnectionPhase]
    CONNECTION_PHASE_INITIAL_SYNC: _ClassVar[ConnectionPhase]
    CONNECTION_PHASE_LIVE: _ClassVar[ConnectionPhase]

class ChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_TYPE_UNSPECIFIED: _ClassVar[ChangeType]
    CHANGE_TYPE_ENTERED: _ClassVar[ChangeType]
    CHANGE_TYPE_EXITED: _ClassVar[ChangeType]
    CHANGE_TYPE_VALUE_CHANGED: _ClassVar[ChangeType]
WEBHOOK_PAYLOAD_STYLE_UNSPECIFIED: WebhookPayloadStyle
WEBHOOK_PAYLOAD_STYLE_EVENT: WebhookPayloadStyle
WEBHOOK_PAYLOAD_STYLE_LIST: WebhookPayloadStyle
IDENTIFIER_SELECTION_UNSPECIFIED: IdentifierSelection
IDENTIFIER_SELECTION_ALL: IdentifierSelection
IDENTIFIER_SELECTION_FIRST_ADDED: IdentifierSelection
IDENTIFIER_SELECTION_LAST_ADDED: IdentifierSelection
CONNECTION_PHASE_UNSPECIFIED: ConnectionPhase
CONNECTION_PHASE_INITIAL_SYNC: ConnectionPhase
CONNECTION_PHASE_LIVE: ConnectionPhase
CHANGE_TYPE_UNSPECIFIED: ChangeType
CHANGE_TYPE_ENTERED: ChangeType
CHANGE_TYPE_EXITED: ChangeType
CHANGE_TYPE_VALUE_CHANGED: ChangeType

class WebhookConfig(_message.Message):
    __slots__ = ("url", "headers", "hmac_secret", "hmac_secret_set", "payload_style", "batch_size", "batch_interval", "signing_secret", "signing_secret_set", "max_in_flight")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    HMAC_SECRET_FIELD_NUMBER: _ClassVar[int]
    HMAC_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_STYLE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCH_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    url: str
    headers: _containers.ScalarMap[str, str]
    hmac_secret: str
    hmac_secret_set: bool
    payload_style: WebhookPayloadStyle
    batch_size: int
    batch_interval: _duration_pb2.Duration
    signing_secret: str
    signing_secret_set: bool
    max_in_flight: int
    def __init__(self, url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., hmac_secret: _Optional[str] = ..., hmac_secret_set: _Optional[bool] = ..., payload_style: _Optional[_Union[WebhookPayloadStyle, str]] = ..., batch_size: _Optional[int] = ..., batch_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., signing_secret: _Optional[str] = ..., signing_secret_set: _Optional[bool] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class SegmentConfig(_message.Message):
    __slots__ = ("base_url", "write_key", "batch_size", "batch_interval")
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    WRITE_KEY_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCH_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    base_url: str
    write_key: str
    batch_size: int
    batch_interval: _duration_pb2.Duration
    def __init__(self, base_url: _Optional[str] = ..., write_key: _Optional[str] = ..., batch_size: _Optional[int] = ..., batch_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GrpcFeedConfig(_message.Message):
    __slots__ = ("retention",)
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    retention: _duration_pb2.Duration
    def __init__(self, retention: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CsvConfig(_message.Message):
    __slots__ = ("directory", "external_id_types", "include_traits", "interval")
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_TYPES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAITS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    directory: str
    external_id_types: _containers.RepeatedScalarFieldContainer[str]
    include_traits: _containers.RepeatedScalarFieldContainer[str]
    interval: _duration_pb2.Duration
    def __init__(self, directory: _Optional[str] = ..., external_id_types: _Optional[_Iterable[str]] = ..., include_traits: _Optional[_Iterable[str]] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PostgresConfig(_message.Message):
    __slots__ = ("dsn", "dsn_set", "schema", "table_prefix", "external_id_types", "include_traits", "batch_size")
    DSN_FIELD_NUMBER: _ClassVar[int]
    DSN_SET_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TABLE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_TYPES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAITS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    dsn: str
    dsn_set: bool
    schema: str
    table_prefix: str
    external_id_types: _containers.RepeatedScalarFieldContainer[str]
    include_traits: _containers.RepeatedScalarFieldContainer[str]
    batch_size: int
    def __init__(self, dsn: _Optional[str] = ..., dsn_set: _Optional[bool] = ..., schema: _Optional[str] = ..., table_prefix: _Optional[str] = ..., external_id_types: _Optional[_Iterable[str]] = ..., include_traits: _Optional[_Iterable[str]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class DeliveryPolicy(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff", "max_backoff", "request_timeout")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff: _duration_pb2.Duration
    max_backoff: _duration_pb2.Duration
    request_timeout: _duration_pb2.Duration
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Destination(_message.Message):
    __slots__ = ("id", "key", "name", "enabled", "webhook", "segment", "grpc_feed", "csv", "postgres", "delivery_policy", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    GRPC_FEED_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    POSTGRES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_POLICY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    name: str
    enabled: bool
    webhook: WebhookConfig
    segment: SegmentConfig
    grpc_feed: GrpcFeedConfig
    csv: CsvConfig
    postgres: PostgresConfig
    delivery_policy: DeliveryPolicy
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., name: _Optional[str] = ..., enabled: _Optional[bool] = ..., webhook: _Optional[_Union[WebhookConfig, _Mapping]] = ..., segment: _Optional[_Union[SegmentConfig, _Mapping]] = ..., grpc_feed: _Optional[_Union[GrpcFeedConfig, _Mapping]] = ..., csv: _Optional[_Union[CsvConfig, _Mapping]] = ..., postgres: _Optional[_Union[PostgresConfig, _Mapping]] = ..., delivery_policy: _Optional[_Union[DeliveryPolicy, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliveryStatus(_message.Message):
    __slots__ = ("pending_count", "delivered_count", "retrying_count", "dead_letter_count", "last_error", "last_error_time", "last_delivery_time", "lag")
    PENDING_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_COUNT_FIELD_NUMBER: _ClassVar[int]
    RETRYING_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_DELIVERY_TIME_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    pending_count: int
    delivered_count: int
    retrying_count: int
    dead_letter_count: int
    last_error: str
    last_error_time: _timestamp_pb2.Timestamp
    last_delivery_time: _timestamp_pb2.Timestamp
    lag: _duration_pb2.Duration
    def __init__(self, pending_count: _Optional[int] = ..., delivered_count: _Optional[int] = ..., retrying_count: _Optional[int] = ..., dead_letter_count: _Optional[int] = ..., last_error: _Optional[str] = ..., last_error_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_delivery_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lag: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Connection(_message.Message):
    __slots__ = ("destination_key", "computation", "send_identify", "send_track", "send_group", "identifier_selection", "external_id_types", "phase", "delivery", "create_time", "update_time")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    SEND_IDENTIFY_FIELD_NUMBER: _ClassVar[int]
    SEND_TRACK_FIELD_NUMBER: _ClassVar[int]
    SEND_GROUP_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_SELECTION_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_TYPES_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    send_identify: bool
    send_track: bool
    send_group: bool
    identifier_selection: IdentifierSelection
    external_id_types: _containers.RepeatedScalarFieldContainer[str]
    phase: ConnectionPhase
    delivery: DeliveryStatus
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., send_identify: _Optional[bool] = ..., send_track: _Optional[bool] = ..., send_group: _Optional[bool] = ..., identifier_selection: _Optional[_Union[IdentifierSelection, str]] = ..., external_id_types: _Optional[_Iterable[str]] = ..., phase: _Optional[_Union[ConnectionPhase, str]] = ..., delivery: _Optional[_Union[DeliveryStatus, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("id", "destination_key", "computation", "profile_id", "message_id", "payload", "attempt_count", "last_error", "first_attempt_time", "dead_letter_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    destination_key: str
    computation: _common_pb2.ComputationRef
    profile_id: str
    message_id: str
    payload: _struct_pb2.Struct
    attempt_count: int
    last_error: str
    first_attempt_time: _timestamp_pb2.Timestamp
    dead_letter_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., profile_id: _Optional[str] = ..., message_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., attempt_count: _Optional[int] = ..., last_error: _Optional[str] = ..., first_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dead_letter_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChangeRecord(_message.Message):
    __slots__ = ("cursor", "computation", "computation_id", "profile_id", "external_ids", "change_type", "old_value", "new_value", "change_time", "message_id", "old_value_json", "new_value_json")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_IDS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    computation: _common_pb2.ComputationRef
    computation_id: str
    profile_id: str
    external_ids: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExternalId]
    change_type: ChangeType
    old_value: _struct_pb2.Value
    new_value: _struct_pb2.Value
    change_time: _timestamp_pb2.Timestamp
    message_id: str
    old_value_json: str
    new_value_json: str
    def __init__(self, cursor: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., computation_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., external_ids: _Optional[_Iterable[_Union[_common_pb2.ExternalId, _Mapping]]] = ..., change_type: _Optional[_Union[ChangeType, str]] = ..., old_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., new_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_id: _Optional[str] = ..., old_value_json: _Optional[str] = ..., new_value_json: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("heartbeat_time", "latest_cursor")
    HEARTBEAT_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_CURSOR_FIELD_NUMBER: _ClassVar[int]
    heartbeat_time: _timestamp_pb2.Timestamp
    latest_cursor: str
    def __init__(self, heartbeat_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_cursor: _Optional[str] = ...) -> None: ...

class CreateDestinationRequest(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class CreateDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class GetDestinationRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class GetDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class ListDestinationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDestinationsResponse(_message.Message):
    __slots__ = ("destinations", "next_page_token")
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[Destination]
    next_page_token: str
    def __init__(self, destinations: _Optional[_Iterable[_Union[Destination, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateDestinationRequest(_message.Message):
    __slots__ = ("destination", "update_mask")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class DeleteDestinationRequest(_message.Message):
    __slots__ = ("key", "force")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    key: str
    force: bool
    def __init__(self, key: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectDestinationRequest(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class ConnectDestinationResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class GetConnectionRequest(_message.Message):
    __slots__ = ("destination_key", "computation")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ...) -> None: ...

class GetConnectionResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class ListConnectionsRequest(_message.Message):
    __slots__ = ("destination_key", "computation", "page_size", "page_token")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    page_size: int
    page_token: str
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConnectionsResponse(_message.Message):
    __slots__ = ("connections", "next_page_token")
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[Connection]
    next_page_token: str
    def __init__(self, connections: _Optional[_Iterable[_Union[Connection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateConnectionRequest(_message.Message):
    __slots__ = ("connection", "update_mask")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateConnectionResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class DisconnectDestinationRequest(_message.Message):
    __slots__ = ("destination_key", "computation")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ...) -> None: ...

class DisconnectDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("destination_key", "computation", "page_size", "page_token")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    page_size: int
    page_token: str
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RedriveDeadLettersRequest(_message.Message):
    __slots__ = ("destination_key", "computation", "dead_letter_ids")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_IDS_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    computation: _common_pb2.ComputationRef
    dead_letter_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, destination_key: _Optional[str] = ..., computation: _Optional[_Union[_common_pb2.ComputationRef, _Mapping]] = ..., dead_letter_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RedriveDeadLettersResponse(_message.Message):
    __slots__ = ("redriven_count",)
    REDRIVEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    redriven_count: int
    def __init__(self, redriven_count: _Optional[int] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("destination_key", "start_cursor", "page_size", "page_token")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    START_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    start_cursor: str
    page_size: int
    page_token: str
    def __init__(self, destination_key: _Optional[str] = ..., start_cursor: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ChangeRecord]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[ChangeRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchChangesRequest(_message.Message):
    __slots__ = ("destination_key", "start_cursor", "heartbeat_interval")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    START_CURSOR_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    start_cursor: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, destination_key: _Optional[str] = ..., start_cursor: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AckChangesRequest(_message.Message):
    __slots__ = ("destination_key", "cursor")
    DESTINATION_KEY_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    destination_key: str
    cursor: str
    def __init__(self, destination_key: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class AckChangesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchChangesResponse(_message.Message):
    __slots__ = ("change", "heartbeat")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    change: ChangeRecord
    heartbeat: Heartbeat
    def __init__(self, change: _Optional[_Union[ChangeRecord, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class ExportAudienceRequest(_message.Message):
    __slots__ = ("collection", "key", "external_id_types", "include_traits", "identifier_selection")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_TYPES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAITS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_SELECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.Collection
    key: str
    external_id_types: _containers.RepeatedScalarFieldContainer[str]
    include_traits: _containers.RepeatedScalarFieldContainer[str]
    identifier_selection: IdentifierSelection
    def __init__(self, collection: _Optional[_Union[_common_pb2.Collection, str]] = ..., key: _Optional[str] = ..., external_id_types: _Optional[_Iterable[str]] = ..., include_traits: _Optional[_Iterable[str]] = ..., identifier_selection: _Optional[_Union[IdentifierSelection, str]] = ...) -> None: ...

class ExportAudienceResponse(_message.Message):
    __slots__ = ("csv_data", "row_count")
    CSV_DATA_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    csv_data: bytes
    row_count: int
    def __init__(self, csv_data: _Optional[bytes] = ..., row_count: _Optional[int] = ...) -> None: ...
