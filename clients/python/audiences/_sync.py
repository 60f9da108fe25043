"""SyncService: destinations, connections, dead letters, the change feed and CSV export."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from google.protobuf import field_mask_pb2, json_format

from audiences._base import Base, CollectionArg, KindArg, choose, collection_value, duration, kind_value
from audiences.v1 import common_pb2, sync_pb2

_SELECTION = {
    "all": sync_pb2.IDENTIFIER_SELECTION_ALL,
    "first_added": sync_pb2.IDENTIFIER_SELECTION_FIRST_ADDED,
    "last_added": sync_pb2.IDENTIFIER_SELECTION_LAST_ADDED,
}
Config = Mapping[str, Any] | Any
# Seconds an export may take when the caller chose no timeout (a large audience takes a while).
EXPORT_TIMEOUT = 3600.0


def selection_value(value: str) -> sync_pb2.IdentifierSelection:
    """`"all"`, `"first_added"`, `"last_added"` as the `IdentifierSelection` enum."""
    return choose(_SELECTION, value, "identifier_selection", "IDENTIFIER_SELECTION_INVALID")


def change_values(change: sync_pb2.ChangeRecord) -> tuple[Any, Any]:
    """A change record's value before and after as plain data, integers as integers (2^53 + 1
    exact, 120 not 120.0): read from `old_value_json` / `new_value_json`, or from the `Value`s
    (which hold every number as a double) when a server does not send the JSON text; None where
    there is no value."""
    return (_change_value(change, "old_value"), _change_value(change, "new_value"))


def _change_value(change: sync_pb2.ChangeRecord, name: str) -> Any:
    text: str = getattr(change, f"{name}_json")
    if text:
        return json.loads(text)
    return json_format.MessageToDict(getattr(change, name)) if change.HasField(name) else None


def computation_ref(
    key: str, *, kind: KindArg = "audience", collection: CollectionArg = "users"
) -> common_pb2.ComputationRef:
    """Names an audience or computed trait."""
    return common_pb2.ComputationRef(key=key, kind=kind_value(kind), collection=collection_value(collection))


def _config(message_type: type[Any], value: Config) -> Any:
    return json_format.ParseDict(dict(value), message_type()) if isinstance(value, Mapping) else value


# Each kind of destination is a field of `Destination.config` named after it.
KINDS = tuple(f.name for f in sync_pb2.Destination.DESCRIPTOR.oneofs_by_name["config"].fields)


def _destination(
    key: str,
    name: str | None,
    enabled: bool | None,
    delivery_policy: Config | None,
    configs: Mapping[str, Config | None],
) -> tuple[sync_pb2.Destination, list[str]]:
    destination, paths = sync_pb2.Destination(key=key), list[str]()
    if name is not None:
        destination.name, paths = name, [*paths, "name"]
    if enabled is not None:
        destination.enabled, paths = enabled, [*paths, "enabled"]
    if delivery_policy is not None:
        destination.delivery_policy.CopyFrom(_config(sync_pb2.DeliveryPolicy, delivery_policy))
        paths.append("delivery_policy")
    unknown = sorted(set(configs) - set(KINDS))
    if unknown:
        raise TypeError(f"no kind of destination named {', '.join(unknown)}; the kinds are {', '.join(KINDS)}")
    for field, value in configs.items():
        if value is not None:
            config = getattr(destination, field)
            config.CopyFrom(_config(type(config), value))
            paths.append(field)
    return destination, paths


class SyncMethods(Base):
    """Destinations and what is sent to them (`admin` token). Config arguments take the
    generated message or a dict in its JSON form (`{"url": "https://…"}`)."""

    def create_destination(
        self,
        key: str,
        *,
        name: str = "",
        enabled: bool = True,
        delivery_policy: Config | None = None,
        **config: Config,
    ) -> sync_pb2.Destination:
        """Creates a destination of one kind: give exactly one config, named after its kind
        (`webhook={"url": …}`, `segment=…`, `grpc_feed={}`, `csv=…`, `postgres=…`: see KINDS)."""
        if len(config) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}")
        destination, _ = _destination(key, name, enabled, delivery_policy, config)
        request = sync_pb2.CreateDestinationRequest(destination=destination)
        return self._call(
            "admin", sync_pb2.CreateDestinationResponse, self.sync_stub.CreateDestination, request
        ).destination

    def get_destination(self, key: str) -> sync_pb2.Destination:
        """One destination."""
        return self._call(
            "admin",
            sync_pb2.GetDestinationResponse,
            self.sync_stub.GetDestination,
            sync_pb2.GetDestinationRequest(key=key),
        ).destination

    def list_destinations(self, *, page_size: int = 0, page_token: str = "") -> sync_pb2.ListDestinationsResponse:
        """One page of destinations."""
        request = sync_pb2.ListDestinationsRequest(page_size=page_size, page_token=page_token)
        return self._call("admin", sync_pb2.ListDestinationsResponse, self.sync_stub.ListDestinations, request)

    def iter_destinations(self) -> Iterator[sync_pb2.Destination]:
        """Every destination."""
        return self._pages(lambda token: self.list_destinations(page_size=1000, page_token=token), "destinations")

    def update_destination(
        self,
        key: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        delivery_policy: Config | None = None,
        **config: Config,
    ) -> sync_pb2.Destination:
        """Changes the given fields (a config given, named after the destination's kind, replaces
        that whole config)."""
        destination, paths = _destination(key, name, enabled, delivery_policy, config)
        request = sync_pb2.UpdateDestinationRequest(
            destination=destination, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return self._call(
            "admin", sync_pb2.UpdateDestinationResponse, self.sync_stub.UpdateDestination, request
        ).destination

    def delete_destination(self, key: str, *, force: bool = False) -> None:
        """Deletes a destination (`force` also removes its connections and queued deliveries)."""
        self._call(
            "admin",
            sync_pb2.DeleteDestinationResponse,
            self.sync_stub.DeleteDestination,
            sync_pb2.DeleteDestinationRequest(key=key, force=force),
        )

    def connect_destination(
        self,
        destination_key: str,
        key: str,
        *,
        kind: KindArg = "audience",
        collection: CollectionArg = "users",
        send_identify: bool = False,
        send_track: bool = False,
        send_group: bool = False,
        identifier_selection: str = "all",
        external_id_types: Sequence[str] = (),
    ) -> sync_pb2.Connection:
        """Connects an audience or computed trait to a destination; its first sync starts."""
        connection = sync_pb2.Connection(
            destination_key=destination_key,
            computation=computation_ref(key, kind=kind, collection=collection),
            send_identify=send_identify,
            send_track=send_track,
            send_group=send_group,
            identifier_selection=selection_value(identifier_selection),
            external_id_types=list(external_id_types),
        )
        request = sync_pb2.ConnectDestinationRequest(connection=connection)
        return self._call(
            "admin", sync_pb2.ConnectDestinationResponse, self.sync_stub.ConnectDestination, request
        ).connection

    def get_connection(
        self, destination_key: str, key: str, *, kind: KindArg = "audience", collection: CollectionArg = "users"
    ) -> sync_pb2.Connection:
        """One connection with its delivery status."""
        request = sync_pb2.GetConnectionRequest(
            destination_key=destination_key, computation=computation_ref(key, kind=kind, collection=collection)
        )
        return self._call("admin", sync_pb2.GetConnectionResponse, self.sync_stub.GetConnection, request).connection

    def list_connections(
        self,
        *,
        destination_key: str = "",
        computation: common_pb2.ComputationRef | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> sync_pb2.ListConnectionsResponse:
        """One page of connections with their delivery status."""
        request = sync_pb2.ListConnectionsRequest(
            destination_key=destination_key, computation=computation, page_size=page_size, page_token=page_token
        )
        return self._call("admin", sync_pb2.ListConnectionsResponse, self.sync_stub.ListConnections, request)

    def update_connection(
        self,
        destination_key: str,
        key: str,
        *,
        kind: KindArg = "audience",
        collection: CollectionArg = "users",
        send_identify: bool | None = None,
        send_track: bool | None = None,
        send_group: bool | None = None,
        identifier_selection: str | None = None,
        external_id_types: Sequence[str] | None = None,
    ) -> sync_pb2.Connection:
        """Changes what a connection sends from now on (only the fields given)."""
        connection = sync_pb2.Connection(
            destination_key=destination_key, computation=computation_ref(key, kind=kind, collection=collection)
        )
        paths = []
        for path, value in (("send_identify", send_identify), ("send_track", send_track), ("send_group", send_group)):
            if value is not None:
                setattr(connection, path, value)
                paths.append(path)
        if identifier_selection is not None:
            connection.identifier_selection = selection_value(identifier_selection)
            paths.append("identifier_selection")
        if external_id_types is not None:
            connection.external_id_types.extend(external_id_types)
            paths.append("external_id_types")
        request = sync_pb2.UpdateConnectionRequest(
            connection=connection, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return self._call(
            "admin", sync_pb2.UpdateConnectionResponse, self.sync_stub.UpdateConnection, request
        ).connection

    def disconnect_destination(
        self, destination_key: str, key: str, *, kind: KindArg = "audience", collection: CollectionArg = "users"
    ) -> None:
        """Removes a connection; nothing more is sent for it."""
        request = sync_pb2.DisconnectDestinationRequest(
            destination_key=destination_key, computation=computation_ref(key, kind=kind, collection=collection)
        )
        self._call("admin", sync_pb2.DisconnectDestinationResponse, self.sync_stub.DisconnectDestination, request)

    def list_dead_letters(
        self,
        *,
        destination_key: str = "",
        computation: common_pb2.ComputationRef | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> sync_pb2.ListDeadLettersResponse:
        """One page of parked deliveries, the oldest first."""
        request = sync_pb2.ListDeadLettersRequest(
            destination_key=destination_key, computation=computation, page_size=page_size, page_token=page_token
        )
        return self._call("admin", sync_pb2.ListDeadLettersResponse, self.sync_stub.ListDeadLetters, request)

    def redrive_dead_letters(
        self,
        destination_key: str,
        *,
        computation: common_pb2.ComputationRef | None = None,
        dead_letter_ids: Sequence[str] = (),
    ) -> int:
        """Puts parked deliveries back in the queue; returns how many."""
        request = sync_pb2.RedriveDeadLettersRequest(
            destination_key=destination_key, computation=computation, dead_letter_ids=list(dead_letter_ids)
        )
        return self._call(
            "admin", sync_pb2.RedriveDeadLettersResponse, self.sync_stub.RedriveDeadLetters, request
        ).redriven_count

    def list_changes(
        self, destination_key: str, *, start_cursor: str = "", page_size: int = 0, page_token: str = ""
    ) -> sync_pb2.ListChangesResponse:
        """One page of a `grpc_feed` destination's change records after a cursor. Each record's
        values are also JSON text, integers exact (`old_value_json`, `new_value_json`);
        `audiences.change_values(record)` reads them as plain data."""
        request = sync_pb2.ListChangesRequest(
            destination_key=destination_key, start_cursor=start_cursor, page_size=page_size, page_token=page_token
        )
        return self._call("admin", sync_pb2.ListChangesResponse, self.sync_stub.ListChanges, request)

    def ack_changes(self, destination_key: str, cursor: str) -> None:
        """Acknowledges a `grpc_feed` destination's records up to `cursor` (the last one processed),
        as a `watch_changes` consumer does once it has processed them; returns once stored."""
        request = sync_pb2.AckChangesRequest(destination_key=destination_key, cursor=cursor)
        self._call("admin", sync_pb2.AckChangesResponse, self.sync_stub.AckChanges, request)

    def watch_changes(
        self, destination_key: str, *, start_cursor: str = "", heartbeat_interval: dt.timedelta | float | None = None
    ) -> Iterator[sync_pb2.WatchChangesResponse]:
        """Follows a `grpc_feed` destination's change feed: the backlog, then each new record,
        with heartbeats while quiet. Runs until the caller stops iterating. Records streamed are
        not acknowledged (the start cursor is): call `ack_changes` once they are processed.
        `audiences.change_values(item.change)` reads a record's values, integers exact."""
        request = sync_pb2.WatchChangesRequest(
            destination_key=destination_key, start_cursor=start_cursor, heartbeat_interval=duration(heartbeat_interval)
        )
        return self._stream("admin", self.sync_stub.WatchChanges, request)

    def export_audience(
        self,
        key: str,
        *,
        collection: CollectionArg = "users",
        external_id_types: Sequence[str] = (),
        include_traits: Sequence[str] = (),
        identifier_selection: str = "all",
    ) -> Iterator[bytes]:
        """An audience's members as CSV chunks (the header row first), from one snapshot.

        The whole export is one call: it may take the client's `timeout` when one was chosen
        (None: no limit), else an hour."""
        request = sync_pb2.ExportAudienceRequest(
            key=key,
            collection=collection_value(collection),
            external_id_types=list(external_id_types),
            include_traits=list(include_traits),
            identifier_selection=selection_value(identifier_selection),
        )
        return (chunk.csv_data for chunk in self._stream("admin", self.sync_stub.ExportAudience, request,
                                                         self._long_timeout(EXPORT_TIMEOUT)))

    def export_audience_to(self, key: str, out: IO[bytes], **options: Any) -> int:
        """Writes an audience's CSV export to a binary file; returns the bytes written."""
        written = 0
        for chunk in self.export_audience(key, **options):
            written += out.write(chunk)
        return written
