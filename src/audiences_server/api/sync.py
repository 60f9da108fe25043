"""SyncService: decodes requests into the sync use cases and encodes their results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc
from audiences.v1 import common_pb2, sync_pb2, sync_pb2_grpc
from google.protobuf import duration_pb2, struct_pb2

from audiences_server.api import audit
from audiences_server.api.audit import audited
from audiences_server.api.computations import (
    COLLECTION_ENUM,
    KINDS,
    collection_of,
    fill_struct,
    json_value,
    kind_of,
    timestamp,
    value_json,
)
from audiences_server.api.context import TOKEN_RECHECK_S, grant, space_id
from audiences_server.core.numbers import dead_letter_number
from audiences_server.engine.destinations import registry
from audiences_server.engine.engine import Engine
from audiences_server.engine.page_tokens import page_size
from audiences_server.engine.profile_reads import MAX_PAGE_BYTES
from audiences_server.engine.sync import configs
from audiences_server.engine.sync.feed import FeedRecord, Heartbeat, parse_cursor
from audiences_server.engine.sync.service import ConnectionView, DeadLetterView
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sync import DestinationRow

T = TypeVar("T")

KIND_ENUM: dict[str, Any] = {v: k for k, v in KINDS.items()}
SELECTION: dict[int, str] = {
    sync_pb2.IDENTIFIER_SELECTION_UNSPECIFIED: "all",
    sync_pb2.IDENTIFIER_SELECTION_ALL: "all",
    sync_pb2.IDENTIFIER_SELECTION_FIRST_ADDED: "first_added",
    sync_pb2.IDENTIFIER_SELECTION_LAST_ADDED: "last_added",
}
SELECTION_ENUM = {"all": sync_pb2.IDENTIFIER_SELECTION_ALL, "first_added": sync_pb2.IDENTIFIER_SELECTION_FIRST_ADDED,
                  "last_added": sync_pb2.IDENTIFIER_SELECTION_LAST_ADDED}
CHANGE_ENUM = {"entered": sync_pb2.CHANGE_TYPE_ENTERED, "exited": sync_pb2.CHANGE_TYPE_EXITED,
               "changed": sync_pb2.CHANGE_TYPE_VALUE_CHANGED}
PHASE_ENUM = {"INITIAL_SYNC": sync_pb2.CONNECTION_PHASE_INITIAL_SYNC, "LIVE": sync_pb2.CONNECTION_PHASE_LIVE}
# The kinds' configs: one field of `Destination.config` per kind, named after it (engine.destinations).
CONFIGS = {f.name: f for f in sync_pb2.Destination.DESCRIPTOR.oneofs_by_name["config"].fields}
DURATION = "google.protobuf.Duration"
# An item of a repeated field costs its tag and length prefix besides its own bytes.
ITEM_OVERHEAD = 6
# Fields of a Destination an update never changes: `key` names it, the others are output only.
IMPLICIT_DESTINATION_FIELDS = {"key", "id", "create_time", "update_time"}
MAX_DURATION_S = 315_576_000_000  # a Duration's range: 10,000 years


def duration(ms: int) -> duration_pb2.Duration:
    """Milliseconds as a Duration."""
    out = duration_pb2.Duration()
    out.FromMilliseconds(ms)
    return out


def _enum_prefix(field: Any) -> str:
    """The prefix of an enum's value names (`WEBHOOK_PAYLOAD_STYLE_`), from its zero value."""
    return str(field.enum_type.values_by_number[0].name).removesuffix("UNSPECIFIED")


def _output_only(field: Any, names: Any) -> bool:
    """`<secret>_set` fields say whether a secret is stored; they are never input."""
    return bool(field.name.endswith("_set") and field.name.removesuffix("_set") in names)


def enum_value(table: Mapping[int, T], value: int, field: str) -> T:
    """What an enum field's value stands for. Enums are open, so a request may carry any
    number (a newer client's value, a negative one): one not in the table is INVALID_ARGUMENT
    `ENUM_INVALID` naming the field, as ProfilesService refuses one."""
    if value not in table:
        raise InvalidArgument(f"`{field}` has no value {value}", reason="ENUM_INVALID",
                              violations=[FieldViolation(field, "unknown value")])
    return table[value]


def _plain(message: Any, path: str, only: str = "") -> dict[str, Any]:
    """A config or policy message as the engine stores it: durations as `<name>_ms`
    milliseconds, enum values by their short lower-case name (empty when unset), maps as dicts.
    Errors name its fields under `path` (`webhook.payload_style`). With `only`, that field alone
    (by its name or its stored name), so a field an update mask leaves out is not read."""
    out: dict[str, Any] = {}
    names = message.DESCRIPTOR.fields_by_name
    for field in message.DESCRIPTOR.fields:
        duration_field = field.message_type is not None and field.message_type.full_name == DURATION
        stored = field.name + "_ms" if duration_field else field.name
        if _output_only(field, names) or only not in ("", field.name, stored):
            continue
        value = getattr(message, field.name)
        if duration_field:
            out[stored] = _milliseconds(value, f"{path}.{field.name}")
        elif field.enum_type is not None:
            known = field.enum_type.values_by_number
            name = str(enum_value(known, value, f"{path}.{field.name}").name) if value else ""
            out[field.name] = name.removeprefix(_enum_prefix(field)).lower()
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[field.name] = dict(value)
        elif field.is_repeated:
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def _milliseconds(value: duration_pb2.Duration, field: str) -> int:
    """A duration setting in milliseconds, which is how settings are kept. One that is positive
    but under a millisecond is refused: read as 0 it would silently mean the default."""
    if 0 < value.ToNanoseconds() < 1_000_000:
        raise configs.invalid(field, f"`{field}` must be at least 1 ms (unset or 0 for the default)")
    if abs(value.seconds) > MAX_DURATION_S:
        raise configs.invalid(field, f"`{field}` is past the range of a google.protobuf.Duration")
    return int(value.ToMilliseconds())


def _config_message(kind: str, stored: dict[str, Any]) -> Any:
    """A kind's stored settings as its config message, secrets blanked."""
    shown = configs.public_config(kind, stored)
    message = type(getattr(sync_pb2.Destination(), kind))()
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.full_name == DURATION:
            if field.name + "_ms" in shown:
                getattr(message, field.name).CopyFrom(duration(shown[field.name + "_ms"]))
        elif field.name not in shown:
            continue
        elif field.enum_type is not None:
            value = field.enum_type.values_by_name.get(_enum_prefix(field) + str(shown[field.name]).upper())
            setattr(message, field.name, value.number if value is not None else 0)
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name).update(shown[field.name])
        elif field.is_repeated:
            getattr(message, field.name).extend(shown[field.name])
        else:
            setattr(message, field.name, shown[field.name])
    return message


def destination_message(row: DestinationRow) -> sync_pb2.Destination:
    """A stored destination as the API shows it, secrets blanked."""
    policy = row.policy
    return sync_pb2.Destination(
        id=row.public_id, key=row.key, name=row.name, enabled=row.enabled,
        delivery_policy=sync_pb2.DeliveryPolicy(
            max_attempts=policy["max_attempts"], initial_backoff=duration(policy["initial_backoff_ms"]),
            max_backoff=duration(policy["max_backoff_ms"]), request_timeout=duration(policy["request_timeout_ms"])),
        create_time=timestamp(row.created_ms), update_time=timestamp(row.updated_ms),
        **{row.kind: _config_message(row.kind, row.config)},
    )


def ref_of(message: common_pb2.ComputationRef, field: str = "computation") -> tuple[str, str, str]:
    """A computation reference as (kind, collection, key)."""
    if not message.key:
        raise configs.invalid(f"{field}.key", f"`{field}.key` is required", "COMPUTATION_REQUIRED")
    return kind_of(message.kind), collection_of(message.collection, f"{field}.collection"), message.key


def computation_ref(row: ComputationRow) -> common_pb2.ComputationRef:
    """A computation's reference."""
    return common_pb2.ComputationRef(kind=KIND_ENUM[row.kind], collection=COLLECTION_ENUM[row.collection],
                                     key=row.key)


def connection_message(view: ConnectionView) -> sync_pb2.Connection:
    """A connection with its delivery status."""
    row, status, options = view.row, view.status, view.row.options
    return sync_pb2.Connection(
        destination_key=view.destination.key, computation=computation_ref(view.computation),
        send_identify=options["send_identify"], send_track=options["send_track"], send_group=options["send_group"],
        identifier_selection=SELECTION_ENUM[options["identifier_selection"]],
        external_id_types=options["external_id_types"], phase=PHASE_ENUM[row.phase],
        delivery=sync_pb2.DeliveryStatus(
            pending_count=status["pending"], delivered_count=status["delivered"],
            retrying_count=status["retrying"], dead_letter_count=status["dead"], last_error=row.last_error,
            last_error_time=timestamp(row.last_error_ms), last_delivery_time=timestamp(row.last_delivery_ms),
            lag=duration(status["lag_ms"])),
        create_time=timestamp(row.created_ms), update_time=timestamp(row.updated_ms),
    )


def _options(message: sync_pb2.Connection, paths: list[str]) -> dict[str, Any]:
    if not paths:
        paths = [f.name for f, _ in message.ListFields() if f.name in configs.CONNECTION_FIELDS]
    if "*" in paths:
        paths = list(configs.CONNECTION_FIELDS)
    unknown = [p for p in paths if p not in configs.CONNECTION_FIELDS]
    if unknown:
        raise configs.invalid("update_mask", f"cannot update {', '.join(unknown)}", "FIELD_UNKNOWN")
    full = {name: getattr(message, name) for name in configs.CONNECTION_FIELDS}
    full["external_id_types"] = list(message.external_id_types)
    if "identifier_selection" in paths:  # read only when given, as the other fields are
        full["identifier_selection"] = enum_value(SELECTION, message.identifier_selection,
                                                  "connection.identifier_selection")
    return {p: full[p] for p in paths}


def dead_letter_message(view: DeadLetterView) -> sync_pb2.DeadLetter:
    """A parked delivery."""
    payload = struct_pb2.Struct()
    fill_struct(payload, view.payload)
    return sync_pb2.DeadLetter(
        id=f"dlq_{view.delivery_id}", destination_key=view.destination_key,
        computation=computation_ref(view.computation), profile_id=view.profile_public_id,
        message_id=view.message_id, payload=payload, attempt_count=view.attempts, last_error=view.last_error,
        first_attempt_time=timestamp(view.first_attempt_ms), dead_letter_time=timestamp(view.dead_ms),
    )


def change_message(record: FeedRecord) -> sync_pb2.ChangeRecord:
    """A feed record."""
    comp = record.computation
    return sync_pb2.ChangeRecord(
        cursor=record.cursor, computation=computation_ref(comp), computation_id=comp.public_id,
        profile_id=record.profile_public_id,
        external_ids=[common_pb2.ExternalId(type=t, value=v, collection=COLLECTION_ENUM[comp.collection])
                      for t, v in record.external_ids],
        change_type=CHANGE_ENUM[record.change],
        old_value=None if record.old is None else json_value(record.old),
        new_value=None if record.new is None else json_value(record.new),
        change_time=timestamp(record.at_ms), message_id=record.message_id,
        old_value_json="" if record.old is None else value_json(record.old),
        new_value_json="" if record.new is None else value_json(record.new),
    )


def _dead_letter_id(text: str) -> int:
    number = dead_letter_number(text)
    if number is None:
        raise configs.invalid("dead_letter_ids", f"{text!r} is not a dead letter id", "DEAD_LETTER_ID_INVALID")
    return number


class SyncServicer(sync_pb2_grpc.SyncServiceServicer):
    """SyncService."""

    def __init__(self, engine: Engine, pool: Executor) -> None:
        self.engine = engine
        self._pool = pool

    # -- destinations --------------------------------------------------------------------

    @audited(audit.destination_create)
    def CreateDestination(self, request: sync_pb2.CreateDestinationRequest,
                          context: grpc.ServicerContext) -> sync_pb2.CreateDestinationResponse:
        message = request.destination
        kind = message.WhichOneof("config")
        if kind is None:
            raise configs.invalid("destination.config", f"set one of {', '.join(registry.kinds())}",
                                  "DESTINATION_CONFIG_REQUIRED")
        row = self.engine.sync.create_destination(
            space_id(), message.key, message.name, message.enabled if message.HasField("enabled") else True, kind,
            _plain(getattr(message, kind), kind),
            _plain(message.delivery_policy, "delivery_policy"))
        return sync_pb2.CreateDestinationResponse(destination=destination_message(row))

    def GetDestination(self, request: sync_pb2.GetDestinationRequest,
                       context: grpc.ServicerContext) -> sync_pb2.GetDestinationResponse:
        row = self.engine.sync.destination(space_id(), request.key)
        return sync_pb2.GetDestinationResponse(destination=destination_message(row))

    def ListDestinations(self, request: sync_pb2.ListDestinationsRequest,
                         context: grpc.ServicerContext) -> sync_pb2.ListDestinationsResponse:
        scope = {"space": space_id(), "list": "destinations"}
        after = self.engine.page_tokens.decode(request.page_token, scope) or ""
        size = page_size(request.page_size, 50, 1000)
        rows = self.engine.sync.destinations(space_id(), after, size + 1)
        # Cut before the destination that would take the reply past what a default client
        # accepts (never before the first): a page may then hold fewer than asked while more follow.
        shown: list[sync_pb2.Destination] = []
        total = 0
        for row in rows[:size]:
            message = destination_message(row)
            total += message.ByteSize() + ITEM_OVERHEAD
            if shown and total > MAX_PAGE_BYTES:
                break
            shown.append(message)
        token = self.engine.page_tokens.encode(shown[-1].key, scope) if len(rows) > len(shown) else ""
        return sync_pb2.ListDestinationsResponse(destinations=shown, next_page_token=token)

    @audited(audit.destination_update)
    def UpdateDestination(self, request: sync_pb2.UpdateDestinationRequest,
                          context: grpc.ServicerContext) -> sync_pb2.UpdateDestinationResponse:
        message = request.destination
        current = self.engine.sync.destination(space_id(), message.key)
        changes = _destination_changes(message, current.kind, list(request.update_mask.paths))
        row = self.engine.sync.update_destination(space_id(), message.key, changes)
        return sync_pb2.UpdateDestinationResponse(destination=destination_message(row))

    @audited(audit.destination_delete)
    def DeleteDestination(self, request: sync_pb2.DeleteDestinationRequest,
                          context: grpc.ServicerContext) -> sync_pb2.DeleteDestinationResponse:
        self.engine.sync.delete_destination(space_id(), request.key, request.force)
        return sync_pb2.DeleteDestinationResponse()

    # -- connections ---------------------------------------------------------------------

    @audited(audit.connection_create)
    def ConnectDestination(self, request: sync_pb2.ConnectDestinationRequest,
                           context: grpc.ServicerContext) -> sync_pb2.ConnectDestinationResponse:
        message = request.connection
        view = self.engine.sync.connect(space_id(), message.destination_key, ref_of(message.computation),
                                        _options(message, ["*"]))
        return sync_pb2.ConnectDestinationResponse(connection=connection_message(view))

    def GetConnection(self, request: sync_pb2.GetConnectionRequest,
                      context: grpc.ServicerContext) -> sync_pb2.GetConnectionResponse:
        view = self.engine.sync.connection(space_id(), request.destination_key, ref_of(request.computation))
        return sync_pb2.GetConnectionResponse(connection=connection_message(view))

    def ListConnections(self, request: sync_pb2.ListConnectionsRequest,
                        context: grpc.ServicerContext) -> sync_pb2.ListConnectionsResponse:
        ref = ref_of(request.computation) if request.HasField("computation") else None
        scope = {"space": space_id(), "list": "connections", "destination": request.destination_key, "ref": ref}
        after = self.engine.page_tokens.decode(request.page_token, scope)
        size = page_size(request.page_size, 50, 1000)
        views = self.engine.sync.connections(space_id(), request.destination_key, ref)
        if after is not None:
            views = [v for v in views if list(_order(v)) > after]
        token = self.engine.page_tokens.encode(list(_order(views[size - 1])), scope) if len(views) > size else ""
        return sync_pb2.ListConnectionsResponse(connections=[connection_message(v) for v in views[:size]],
                                                next_page_token=token)

    @audited(audit.connection_update)
    def UpdateConnection(self, request: sync_pb2.UpdateConnectionRequest,
                         context: grpc.ServicerContext) -> sync_pb2.UpdateConnectionResponse:
        message = request.connection
        view = self.engine.sync.update_connection(space_id(), message.destination_key, ref_of(message.computation),
                                                  _options(message, list(request.update_mask.paths)))
        return sync_pb2.UpdateConnectionResponse(connection=connection_message(view))

    @audited(audit.connection_delete)
    def DisconnectDestination(self, request: sync_pb2.DisconnectDestinationRequest,
                              context: grpc.ServicerContext) -> sync_pb2.DisconnectDestinationResponse:
        self.engine.sync.disconnect(space_id(), request.destination_key, ref_of(request.computation))
        return sync_pb2.DisconnectDestinationResponse()

    # -- dead letters --------------------------------------------------------------------

    def ListDeadLetters(self, request: sync_pb2.ListDeadLettersRequest,
                        context: grpc.ServicerContext) -> sync_pb2.ListDeadLettersResponse:
        ref = ref_of(request.computation) if request.HasField("computation") else None
        if self.engine.cluster_sync is not None:  # a cluster's front: the shards' dead letters
            return self.engine.cluster_sync.list_dead_letters(space_id(), request, ref)
        scope = {"space": space_id(), "list": "dead_letters", "destination": request.destination_key, "ref": ref}
        after = self.engine.page_tokens.decode(request.page_token, scope) or 0
        size = page_size(request.page_size, 50, 1000)
        views = self.engine.sync.dead_letters(space_id(), request.destination_key, ref, after, size + 1)
        token = self.engine.page_tokens.encode(views[size - 1].delivery_id, scope) if len(views) > size else ""
        return sync_pb2.ListDeadLettersResponse(dead_letters=[dead_letter_message(v) for v in views[:size]],
                                                next_page_token=token)

    @audited(audit.redrive)
    def RedriveDeadLetters(self, request: sync_pb2.RedriveDeadLettersRequest,
                           context: grpc.ServicerContext) -> sync_pb2.RedriveDeadLettersResponse:
        ref = ref_of(request.computation) if request.HasField("computation") else None
        if self.engine.cluster_sync is not None:  # a cluster's front: sent to the shards holding them
            return sync_pb2.RedriveDeadLettersResponse(redriven_count=self.engine.cluster_sync.redrive(
                space_id(), request, ref))
        ids = [_dead_letter_id(i) for i in request.dead_letter_ids]
        count = self.engine.sync.redrive(space_id(), request.destination_key, ref, ids)
        return sync_pb2.RedriveDeadLettersResponse(redriven_count=count)

    # -- the feed and export -------------------------------------------------------------

    def ListChanges(self, request: sync_pb2.ListChangesRequest,
                    context: grpc.ServicerContext) -> sync_pb2.ListChangesResponse:
        if self.engine.cluster_sync is not None:  # a cluster's front: the shards' feeds merged
            return self.engine.cluster_sync.list_changes(space_id(), request)
        scope = {"space": space_id(), "list": "changes", "destination": request.destination_key,
                 "start": request.start_cursor}
        after = self.engine.page_tokens.decode(request.page_token, scope)
        start = parse_cursor(request.start_cursor) if after is None else int(after)
        size = page_size(request.page_size, 100, 1000)
        records, more = self.engine.feed.page(space_id(), request.destination_key, start, size)
        token = self.engine.page_tokens.encode(int(records[-1].cursor), scope) if more else ""
        return sync_pb2.ListChangesResponse(changes=[change_message(r) for r in records], next_page_token=token)

    def AckChanges(self, request: sync_pb2.AckChangesRequest,
                   context: grpc.ServicerContext) -> sync_pb2.AckChangesResponse:
        if not request.cursor:
            raise configs.invalid("cursor", "`cursor` is required: the cursor of the last record processed",
                                  "CURSOR_REQUIRED")
        if self.engine.cluster_sync is not None:  # a cluster's front: each shard's part of the cursor
            self.engine.cluster_sync.ack_changes(space_id(), request)
            return sync_pb2.AckChangesResponse()
        self.engine.feed.ack(space_id(), request.destination_key, parse_cursor(request.cursor, "cursor"))
        return sync_pb2.AckChangesResponse()

    async def WatchChanges(self, request: sync_pb2.WatchChangesRequest,
                           context: Any) -> AsyncIterator[sync_pb2.WatchChangesResponse]:
        interval = request.heartbeat_interval.ToMilliseconds() if request.HasField("heartbeat_interval") else 15_000
        if not 1000 <= interval <= 300_000:
            raise configs.invalid("heartbeat_interval", "`heartbeat_interval` must be 1 second to 5 minutes",
                                  "HEARTBEAT_INTERVAL_INVALID")
        if self.engine.cluster_sync is not None:  # a cluster's front: the shards' feeds merged
            responses = self.engine.cluster_sync.watch_changes(space_id(), request, interval / 1000, self._blocking)
        else:
            responses = self._watched(request, interval)
        caller, checked = grant(), time.monotonic()
        async for response in responses:
            if time.monotonic() - checked >= TOKEN_RECHECK_S:
                # A token revoked or expired since the stream opened ends it (docs/operations.md).
                await self._blocking(self.engine.auth.still_granted, caller)
                checked = time.monotonic()
            yield response

    async def _watched(self, request: sync_pb2.WatchChangesRequest,
                       interval: int) -> AsyncIterator[sync_pb2.WatchChangesResponse]:
        items = self.engine.feed.watch(space_id(), request.destination_key, parse_cursor(request.start_cursor),
                                       interval / 1000, self._blocking)
        async for item in items:
            if isinstance(item, Heartbeat):
                yield sync_pb2.WatchChangesResponse(heartbeat=sync_pb2.Heartbeat(
                    heartbeat_time=timestamp(item.at_ms), latest_cursor=item.latest_cursor))
            else:
                yield sync_pb2.WatchChangesResponse(change=change_message(item))

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def ExportAudience(self, request: sync_pb2.ExportAudienceRequest,
                       context: grpc.ServicerContext) -> Iterator[sync_pb2.ExportAudienceResponse]:
        chunks = self.engine.sync.export(space_id(), collection_of(request.collection), request.key,
                                         list(request.external_id_types), list(request.include_traits),
                                         enum_value(SELECTION, request.identifier_selection,
                                                    "identifier_selection"))
        for data, count in chunks:
            yield sync_pb2.ExportAudienceResponse(csv_data=data, row_count=count)


def _order(view: ConnectionView) -> tuple[str, str, str, str]:
    comp = view.computation
    return view.destination.key, comp.collection, comp.kind, comp.key


def _destination_changes(message: sync_pb2.Destination, kind: str, paths: list[str]) -> dict[str, Any]:
    """The fields an update names; a config named whole is replaced, a config field is merged.

    An empty mask names every field set (but `key`, which names the destination, and the
    output-only ones a client writing back what it read sends along); `*` names them all,
    but `enabled` only when set (unset means true, and a destination is not disabled by a
    field left out). Either way, another kind's config set in the message is refused, not
    ignored: the kind cannot change."""
    given = [f.name for f, _ in message.ListFields() if f.name not in IMPLICIT_DESTINATION_FIELDS]
    if not paths:
        paths = given
    if "*" in paths:
        paths = ["name", *(["enabled"] if message.HasField("enabled") else []), "delivery_policy", kind,
                 *(name for name in given if name in CONFIGS and name != kind)]
    foreign = next((p for p in paths if p.partition(".")[0] in CONFIGS and p.partition(".")[0] != kind), None)
    if foreign is not None:
        raise configs.invalid("update_mask", f"a {kind} destination has no {foreign.partition('.')[0]} settings;"
                              " its kind cannot change", "DESTINATION_KIND_IMMUTABLE")
    changes: dict[str, Any] = {}
    for path in paths:
        top, _, sub = path.partition(".")
        if top == "name":
            changes["name"] = message.name
        elif top == "enabled":
            changes["enabled"] = message.enabled
        elif top == "delivery_policy":
            changes["policy"] = _picked(message.delivery_policy, "delivery_policy", sub)
        elif top == kind:
            changes["config"] = {**changes.get("config", {}),
                                 **_picked(getattr(message, kind), kind, sub)}
        else:
            raise configs.invalid("update_mask", f"cannot update {path!r}", "FIELD_UNKNOWN")
    return changes


def _picked(message: Any, path: str, sub: str) -> dict[str, Any]:
    """One field of a message, converted (durations are stored as `<name>_ms`), or all of them."""
    picked = _plain(message, path, sub)
    if sub and not picked:
        raise configs.invalid("update_mask", f"unknown field {sub!r}", "FIELD_UNKNOWN")
    return picked
