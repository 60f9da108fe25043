"""The sync use cases: destinations, connections, delivery status and dead letters (docs/sync.md)."""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Queue, check_id_types, check_trait_names
from audiences_server.engine.destinations.loop import IoLoop
from audiences_server.engine.sync import configs
from audiences_server.engine.sync.delivery import DestinationWorker, wall_ms
from audiences_server.engine.sync.files import csv_chunks
from audiences_server.engine.sync.payloads import calls_for
from audiences_server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from audiences_server.store import evaluation
from audiences_server.store import sync as store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sync import ConnectionRow, DestinationRow
from audiences_server.store.writer import Writer


@dataclass(frozen=True)
class ConnectionView:
    """A connection with its destination, its computation and its delivery status."""

    destination: DestinationRow
    computation: ComputationRow
    row: ConnectionRow
    status: dict[str, Any]


@dataclass(frozen=True)
class DeadLetterView:
    """A parked delivery as the API shows it."""

    delivery_id: int
    destination_key: str
    computation: ComputationRow
    profile_public_id: str
    message_id: str
    payload: dict[str, Any]
    attempts: int
    last_error: str
    first_attempt_ms: int | None
    dead_ms: int | None
    change: str  # entered, exited or changed
    old: Any
    new: Any


class Sync:
    """Destinations, connections and their delivery workers."""

    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers
        self._workers: dict[int, DestinationWorker] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        # The event loop every destination's requests go out from (EVENT-style webhooks).
        self._io = IoLoop()
        # Told (from any thread) when a feed record is queued or the server stops: wakes watchers.
        self.feed_listeners: list[Callable[[], None]] = []
        # A cluster's front (docs/scaling.md, "Destinations on a cluster"): every change of a
        # destination or connection is handed to `control`, inside the writer job that saves it
        # (an exception rolls the job back), and this file's workers deliver nothing (`deliver`).
        self.control: Callable[[dict[str, Any]], None] | None = None
        self.deliver = True
        # A cluster's front: connections' phase and delivery status from the shards, which deliver.
        self.delivery_status: Callable[[list[ConnectionView]], list[ConnectionView]] | None = None
        # A cluster's shard: names this file in the message ids it makes (`payloads.message_id`),
        # since every shard numbers its own changes and connections.
        self.message_scope = ""

    # -- workers -------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (streams end)."""
        return self._stopping.is_set()

    @property
    def started(self) -> bool:
        """Whether `start` was called."""
        return self._supervisor is not None

    def start(self) -> None:
        """Starts one delivery worker per destination, and a supervisor that follows changes."""
        self._supervisor = threading.Thread(target=self._supervise, name="sync-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """Stops the workers; a request in flight is abandoned and will be sent again at start."""
        self._stopping.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()
        self._feed_queued()
        for worker in workers:
            worker.thread.join(timeout=2)
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)
        self._io.close()

    def wake(self) -> None:
        """Says change records may be waiting (the evaluator calls this after each job that changed a value)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._follow_destinations()
            self._stopping.wait(0.2)

    def _follow_destinations(self) -> None:
        wanted = {d.destination_id for d in store.all_destinations(self._readers.get())} if self.deliver else set()
        with self._lock:
            for gone in set(self._workers) - wanted:
                self._workers.pop(gone).stop()
            for new in wanted - set(self._workers):
                worker = DestinationWorker(new, self._writer, self._readers, self._feed_queued, self._io,
                                           self.message_scope)
                self._workers[new] = worker
                worker.start()

    def _feed_queued(self) -> None:
        for listener in list(self.feed_listeners):
            listener()

    # -- destinations --------------------------------------------------------------------

    def _controlled(self, entry: dict[str, Any]) -> None:
        if self.control is not None:
            self.control(entry)

    def create_destination(self, space_id: int, key: str, name: str, enabled: bool, kind: str,
                           config: Mapping[str, Any], policy: Mapping[str, Any], public_id: str = ""
                           ) -> DestinationRow:
        """Creates a destination of a kind (with `public_id` as its id, if given: a cluster's
        shards name their copies as the front does)."""
        configs.check_key(key)
        configs.check_name(name)
        settings, rules = configs.config(kind, config), configs.policy(policy)

        def job(conn: apsw.Connection) -> DestinationRow:
            if store.destination(conn, space_id, key) is not None:
                raise AlreadyExists(f"destination {key!r} already exists", reason="DESTINATION_EXISTS")
            store.insert_destination(conn, space_id, key, public_id or "dst_" + secrets.token_hex(10), name or key,
                                     kind, enabled, settings, rules, wall_ms())
            created = self._destination(conn, space_id, key)
            self._controlled({"op": "create_destination", "space": space_id, "key": key, "name": name,
                              "enabled": enabled, "kind": kind, "config": dict(config), "policy": dict(policy),
                              "public_id": created.public_id})
            return created

        created = self._writer.run(job, keeps_events=True)
        self._follow_destinations()
        return created

    def destination(self, space_id: int, key: str) -> DestinationRow:
        """One destination."""
        return self._destination(self._readers.get(), space_id, key)

    def _destination(self, conn: apsw.Connection, space_id: int, key: str) -> DestinationRow:
        if not key:
            raise configs.invalid("key", "`key` is required", "KEY_REQUIRED")
        row = store.destination(conn, space_id, key)
        if row is None:
            raise NotFound(f"destination {key!r} not found", reason="DESTINATION_NOT_FOUND")
        return row

    def destinations(self, space_id: int, after_key: str, limit: int) -> list[DestinationRow]:
        """A page of destinations, by key."""
        return store.destinations(self._readers.get(), space_id, after_key, limit)

    def update_destination(self, space_id: int, key: str, changes: Mapping[str, Any]) -> DestinationRow:
        """Changes name, enabled, the kind's settings (`config`) or the delivery policy."""

        def job(conn: apsw.Connection) -> DestinationRow:
            row = self._destination(conn, space_id, key)
            if changes.get("name", row.name) != row.name:  # one stored before the limit may be sent back
                configs.check_name(changes["name"])
            kind = changes.get("kind", row.kind)
            if kind != row.kind:
                raise InvalidArgument(f"destination {key!r} is a {row.kind} destination; its kind cannot change",
                                      reason="DESTINATION_KIND_IMMUTABLE")
            updated = dataclasses.replace(
                row, name=changes.get("name", row.name), enabled=changes.get("enabled", row.enabled),
                config=configs.config(kind, changes["config"], row.config) if "config" in changes else row.config,
                policy=configs.policy(changes["policy"], row.policy) if "policy" in changes else row.policy)
            if "config" in changes:
                _refuse_shared_places(conn, updated)
            store.update_destination(conn, updated, wall_ms())
            self._controlled({"op": "update_destination", "space": space_id, "key": key, "changes": dict(changes)})
            return self._destination(conn, space_id, key)

        updated = self._writer.run(job, keeps_events=True)
        self.wake()
        return updated

    def delete_destination(self, space_id: int, key: str, force: bool) -> None:
        """Deletes a destination; with connections only when forced."""

        def job(conn: apsw.Connection) -> None:
            row = self._destination(conn, space_id, key)
            if store.connections_of(conn, row.destination_id) and not force:
                raise FailedPrecondition(f"destination {key!r} still has connections; disconnect them or force",
                                         reason="DESTINATION_IN_USE")
            store.delete_destination(conn, row.destination_id)
            self._controlled({"op": "delete_destination", "space": space_id, "key": key, "force": force})

        self._writer.run(job, keeps_events=True)
        self._follow_destinations()

    # -- connections ---------------------------------------------------------------------

    def _computation(self, conn: apsw.Connection, space_id: int, kind: str, collection: str, key: str
                     ) -> ComputationRow:
        row = evaluation.computation(conn, space_id, collection, key)
        if row is None or row.kind != kind:
            raise NotFound(f"{kind.replace('_', ' ')} {key!r} not found in {collection}", reason="NOT_FOUND")
        return row

    def connect(self, space_id: int, destination_key: str, ref: tuple[str, str, str], options: Mapping[str, Any],
                identity: tuple[int, int] | None = None) -> ConnectionView:
        """Connects an audience or computed trait (kind, collection, key); its first sync starts.

        `identity`: the connection's id and creation time, given by a cluster's front so that
        every shard's copy is the same connection to the destination (a PostgreSQL table knows its
        connection by them)."""

        def job(conn: apsw.Connection) -> None:
            destination = self._destination(conn, space_id, destination_key)
            comp = self._computation(conn, space_id, *ref)
            chosen = configs.connection_options(destination.kind, comp.collection, options)
            if store.connection(conn, destination.destination_id, comp.computation_id) is not None:
                raise AlreadyExists(f"{ref[2]!r} is already connected to {destination_key!r}",
                                    reason="CONNECTION_EXISTS")
            _refuse_shared_places(conn, destination, (comp.collection, comp.key))
            store.insert_connection(conn, destination.destination_id, comp.computation_id, chosen,
                                    identity[1] if identity else wall_ms(), identity[0] if identity else None)
            if self.control is not None:
                row = store.connection(conn, destination.destination_id, comp.computation_id)
                assert row is not None
                self._controlled({"op": "connect", "space": space_id, "destination": destination_key,
                                  "ref": list(ref), "options": dict(options),
                                  "identity": [row.connection_id, row.created_ms]})

        self._writer.run(job, keeps_events=True)
        self.wake()
        return self.connection(space_id, destination_key, ref, saved=True)

    def connection(self, space_id: int, destination_key: str, ref: tuple[str, str, str], saved: bool = False
                   ) -> ConnectionView:
        """One connection with its status (`saved`: just saved by this call, see `_delivered`)."""
        conn = self._readers.get()
        destination = self._destination(conn, space_id, destination_key)
        comp = self._computation(conn, space_id, *ref)
        row = store.connection(conn, destination.destination_id, comp.computation_id)
        if row is None:
            raise NotFound(f"{ref[2]!r} is not connected to {destination_key!r}", reason="CONNECTION_NOT_FOUND")
        return self._delivered([ConnectionView(destination, comp, row, self._status(conn, destination, row))],
                               saved)[0]

    def connections(self, space_id: int, destination_key: str, ref: tuple[str, str, str] | None
                    ) -> list[ConnectionView]:
        """Every connection (filtered), ordered by destination key, then collection, kind, key."""
        conn = self._readers.get()
        comps = {c.computation_id: c for c in evaluation.computations(conn, space_id)}
        destinations = {d.key: d for d in store.destinations(conn, space_id, "", 1_000_000)}
        views = [
            ConnectionView(destinations[key], comps[row.computation_id], row,
                           self._status(conn, destinations[key], row))
            for key, row in store.connections_of_space(conn, space_id)
            if row.computation_id in comps and (not destination_key or key == destination_key)
        ]
        if ref is not None:
            views = [v for v in views if (v.computation.kind, v.computation.collection, v.computation.key) == ref]
        return self._delivered(sorted(views, key=connection_order))

    def _delivered(self, views: list[ConnectionView], saved: bool = False) -> list[ConnectionView]:
        """The views with the cluster's delivery status, on a front; a connection this call has
        just saved shows INITIAL_SYNC with nothing delivered if the shards cannot say."""
        if self.delivery_status is None or not views:
            return views
        try:
            return self.delivery_status(views)
        except Unavailable:
            if not saved:
                raise
            empty = {"pending": 0, "delivered": 0, "retrying": 0, "dead": 0, "lag_ms": 0}
            return [dataclasses.replace(v, row=dataclasses.replace(v.row, phase="INITIAL_SYNC", delivered_count=0),
                                        status=empty) for v in views]

    def update_connection(self, space_id: int, destination_key: str, ref: tuple[str, str, str],
                          changes: Mapping[str, Any]) -> ConnectionView:
        """Changes what a connection sends, from the next send on."""
        current = self.connection(space_id, destination_key, ref)
        merged = configs.connection_options(current.destination.kind, current.computation.collection,
                                            {**current.row.options, **changes})

        def job(conn: apsw.Connection) -> None:
            store.update_connection_options(conn, current.row.connection_id, merged, wall_ms())
            self._controlled({"op": "update_connection", "space": space_id, "destination": destination_key,
                              "ref": list(ref), "changes": dict(changes)})

        self._writer.run(job, keeps_events=True)
        self.wake()
        return self.connection(space_id, destination_key, ref, saved=True)

    def disconnect(self, space_id: int, destination_key: str, ref: tuple[str, str, str]) -> None:
        """Removes a connection with its queue and dead letters; nothing more is sent."""
        current = self.connection(space_id, destination_key, ref)

        def job(conn: apsw.Connection) -> None:
            store.delete_connection(conn, current.row.connection_id)
            self._controlled({"op": "disconnect", "space": space_id, "destination": destination_key,
                              "ref": list(ref)})

        self._writer.run(job, keeps_events=True)
        self.wake()

    def _status(self, conn: apsw.Connection, destination: DestinationRow, row: ConnectionRow) -> dict[str, Any]:
        if registry.get(destination.kind).queue is Queue.FEED:
            done, waiting, lag = store.feed_counts(conn, row.connection_id, destination.feed_acked, wall_ms())
            return {"pending": waiting, "delivered": done + row.delivered_count, "retrying": 0, "dead": 0,
                    "lag_ms": lag}
        counts = store.delivery_counts(conn, row.connection_id, wall_ms())
        counts["delivered"] = row.delivered_count
        return counts

    # -- dead letters --------------------------------------------------------------------

    def dead_letters(self, space_id: int, destination_key: str, ref: tuple[str, str, str] | None, after: int,
                     limit: int) -> list[DeadLetterView]:
        """Parked deliveries, the oldest first."""
        conn = self._readers.get()
        destination_id, connection_id = self._filters(conn, space_id, destination_key, ref)
        comps = {c.computation_id: c for c in evaluation.computations(conn, space_id)}
        views = []
        for row in store.dead_letters(conn, space_id, destination_id, connection_id, after, limit):
            delivery_id, key, cid, _pid, mid, record, attempts, error, first, dead, conn_id = row
            options = store.connection_by_id(conn, conn_id)
            stored = _json(record)
            calls = calls_for(stored, options.options if options else {})
            payload = calls[0] if len(calls) == 1 else {"batch": calls}
            views.append(DeadLetterView(delivery_id, key, comps[cid], stored["profile"], mid, payload,
                                        attempts, error, first, dead, stored["change"], stored["old"], stored["new"]))
        return views

    def _filters(self, conn: apsw.Connection, space_id: int, destination_key: str, ref: tuple[str, str, str] | None
                 ) -> tuple[int | None, int | None]:
        destination = self._destination(conn, space_id, destination_key) if destination_key else None
        if ref is None:
            return (destination.destination_id if destination else None), None
        comp = self._computation(conn, space_id, *ref)
        if destination is None:
            raise configs.invalid("destination_key", "`destination_key` is required with `computation`")
        row = store.connection(conn, destination.destination_id, comp.computation_id)
        return destination.destination_id, (row.connection_id if row else -1)

    def redrive(self, space_id: int, destination_key: str, ref: tuple[str, str, str] | None, ids: list[int]) -> int:
        """Puts parked deliveries back in the queue; unknown ids refuse the whole request."""
        if not destination_key:
            raise configs.invalid("destination_key", "`destination_key` is required", "KEY_REQUIRED")
        parked = {v.delivery_id for v in self.dead_letters(space_id, destination_key, ref, 0, 1_000_000)}
        missing = [i for i in ids if i not in parked]
        if missing:
            raise NotFound(f"dead letter ids not found for {destination_key!r}: "
                           + ", ".join(f"dlq_{i}" for i in missing) + " (redriven already, or never parked here)",
                           reason="DEAD_LETTER_NOT_FOUND")
        count = self._writer.run(lambda conn: store.redrive(conn, ids or sorted(parked)), keeps_events=True)
        self.wake()
        return count


    # -- export --------------------------------------------------------------------------

    def export(self, space_id: int, collection: str, key: str, id_types: list[str], traits: list[str],
               selection: str) -> Iterator[tuple[bytes, int]]:
        """An audience's members as CSV chunks, all read from one snapshot."""
        if not key:
            raise configs.invalid("key", "`key` is required", "KEY_REQUIRED")
        check_id_types(id_types, "external_id_types", "EXPORT_INVALID")
        check_trait_names(traits, "include_traits", "EXPORT_INVALID")
        self._computation(self._readers.get(), space_id, "audience", collection, key)
        # Its own connection: the chunks are read on whichever worker thread the stream's
        # next step lands on, and the snapshot must stay out of the other requests' way.
        with self._readers.private_snapshot() as conn:
            comp = self._computation(conn, space_id, "audience", collection, key)
            yield from csv_chunks(conn, comp, id_types, traits, selection)


def connection_order(view: ConnectionView) -> tuple[str, str, str, str]:
    """Lists order connections by destination key, then computation."""
    comp = view.computation
    return view.destination.key, comp.collection, comp.kind, comp.key


def _json(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _refuse_shared_places(conn: apsw.Connection, destination: DestinationRow,
                          connecting: tuple[str, str] | None = None) -> None:
    """Refuses settings, or a connection (`connecting`: its collection and key), that would put
    connections of two destinations, of this space or another, where the kind keeps what it
    writes (`Destination.place`: a PostgreSQL table, a CSV file), where each would undo the
    other's writes."""
    kind = registry.get(destination.kind)
    connections = store.every_connection(conn)
    refs = [(collection, key) for owner, _, _, collection, key in connections if owner == destination.destination_id]
    wanted = {kind.place(destination.config, collection, key) for collection, key in
              [*refs, *([connecting] if connecting else [])]} - {None}
    if not wanted:
        return
    for other, other_kind, config, collection, key in connections:
        if other_kind != destination.kind or other == destination.destination_id:
            continue
        place = kind.place(config, collection, key)
        if place is not None and place in wanted:
            raise FailedPrecondition(
                f"a connection of another destination already writes {place[-1]} there; give destination"
                f" {destination.key!r} settings of its own ({kind.own_places})",
                reason="DESTINATION_PLACE_TAKEN")
