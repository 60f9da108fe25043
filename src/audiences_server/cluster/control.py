"""A front server's admin API on a cluster (docs/scaling.md, "Control through a front").

On a front (`audiences-server cluster front`), the definition RPCs validate and store exactly as
one node does, in the front's own file (so `Get`, `List`, `ValidateDefinition` and version
history read it), and append a control entry (`define`, `update`, `delete`) to `aud.calls` in
the same writer job: a refused definition is never appended, and one the log did not store is
rolled back from the front's file (`UNAVAILABLE`, `LOG_UNAVAILABLE`). `SetClock` moves the
front's manual clock and appends a `clock` entry. Every RPC a front cannot serve for the whole
cluster is refused with `UNIMPLEMENTED` (`CLUSTER_FRONT_UNIMPLEMENTED`) instead of answering
from the front's file, which holds no profiles.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import apsw
import structlog

from audiences_server.cluster.entries import encode
from audiences_server.cluster.feeds import ClusterSync
from audiences_server.cluster.front import LogBridge, define_entry, refuse_unbuilt
from audiences_server.cluster.log import CALLS, Log
from audiences_server.cluster.reads import ShardProfileReads, ShardReads
from audiences_server.cluster.shard import user_definitions_reading_accounts
from audiences_server.engine.computations import EDITABLE, Computations, Spec
from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Queue
from audiences_server.engine.engine import Engine
from audiences_server.errors import Unavailable, Unimplemented
from audiences_server.http.profiles import HTTP_READ
from audiences_server.store import evaluation as evaluation_store
from audiences_server.store import sync as sync_store
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.writer import Writer, WriterClosed

log = structlog.get_logger(__name__)

_ADMIN = "/audiences.v1.AudienceAdminService/"
_OPERATOR = "/audiences.v1.OperatorService/"
_SYNC = "/audiences.v1.SyncService/"
# What a front serves: ingest (to the log), the definitions (its file, and the log; their status
# from the shards), the clock (the log), version history and audit of its own admin calls, spaces
# and tokens (its file), profile reads (the shards).
SERVED = frozenset({
    *(_ADMIN + name for name in (
        "CreateAudience", "GetAudience", "ListAudiences", "UpdateAudience", "DeleteAudience",
        "CreateComputedTrait", "GetComputedTrait", "ListComputedTraits", "UpdateComputedTrait",
        "DeleteComputedTrait", "ValidateDefinition", "SetClock", "ListDefinitionVersions",
        "GetDefinitionVersion", "ListAuditEntries")),
    *(_OPERATOR + name for name in ("GetSpace", "ListSpaces", "CreateToken", "ListTokens", "RevokeToken")),
    # Destinations and connections: the front's file and the log; connections' delivery status
    # summed over the shards (docs/scaling.md, "Destinations on a cluster").
    *(_SYNC + name for name in (
        "CreateDestination", "GetDestination", "ListDestinations", "UpdateDestination", "DeleteDestination",
        "ConnectDestination", "GetConnection", "ListConnections", "UpdateConnection", "DisconnectDestination",
        # Change feeds and dead letters: the shards' own, merged (cluster/feeds.py).
        "ListChanges", "WatchChanges", "AckChanges", "ListDeadLetters", "RedriveDeadLetters")),
    # Answered by the shard that owns the profile, an account's links by every shard
    # (cluster/reads.py), over gRPC and over the HTTP Profile API.
    *("/audiences.v1.ProfilesService/" + name for name in (
        "ListTraits", "ListEvents", "ListExternalIds", "ListLinks", "GetMetadata", "ListAudienceMemberships")),
    HTTP_READ,
})
INGEST = "/audiences.v1.IngestService/"


def gate(method: str) -> None:
    """Refuses an RPC (a full method name) that a front does not serve for the whole cluster.

    Raises:
        Unimplemented: CLUSTER_FRONT_UNIMPLEMENTED.
    """
    if method.startswith(INGEST) or method in SERVED:
        return
    raise Unimplemented(f"{method.rsplit('/', 1)[-1]} is not served by a cluster's front yet (docs/scaling.md)",
                        reason="CLUSTER_FRONT_UNIMPLEMENTED")


class Appender:
    """Appends control entries from the server's threads to the log's loop, waiting for the ack.

    Each entry has an id of its own (JetStream's `Nats-Msg-Id`), and is sent again under that
    id until the log acknowledges it or `TIMEOUT_S` passes: an entry written to a connection as
    it broke is stored without an acknowledgement, and sending it again once the connection is
    back gets the acknowledgement of the stored copy (the log keeps one of each id within its
    duplicate window), so the front does not roll back a change the shards apply."""

    TIMEOUT_S = 10.0
    # How long one attempt waits for its acknowledgement before the entry is sent again.
    ATTEMPT_S = 2.0
    # The pause after an attempt that failed at once (NATS away: a front's connection refuses
    # to buffer), before the next.
    PAUSE_S = 0.25

    def __init__(self, log: Log, loop: asyncio.AbstractEventLoop) -> None:
        self._log = log
        self._loop = loop
        self.last = 0  # the position of the last entry appended (a clock entry's is its tick's number)

    def __call__(self, data: bytes) -> int:
        """Appends one entry to `aud.calls`; returns its position.

        Raises:
            Unavailable: LOG_UNAVAILABLE, the log did not acknowledge in time.
        """
        if not self._log.connected:
            # Nothing can be written: refused at once rather than holding the writer (and every
            # call waiting for it) for TIMEOUT_S. Nothing was sent, so nothing is left unsettled.
            raise Unavailable("the log is not reachable", reason="LOG_UNAVAILABLE")
        msg_id = f"control-{uuid.uuid4().hex}"
        deadline = time.monotonic() + self.TIMEOUT_S
        while True:
            appended = asyncio.run_coroutine_threadsafe(self._log.append(CALLS, data, msg_id=msg_id), self._loop)
            remaining = deadline - time.monotonic()
            try:
                self.last = appended.result(max(0.0, min(self.ATTEMPT_S, remaining)))
                return self.last
            except Exception as failure:
                appended.cancel()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._log.connected:
                    # Given up (in time, or the connection is down: waiting would hold the writer
                    # and every call behind it); the entry may be stored all the same: unsettled.
                    raise Unavailable(f"the log did not store the entry: {type(failure).__name__}",
                                      reason="LOG_UNAVAILABLE") from None
                if not isinstance(failure, concurrent.futures.TimeoutError):
                    time.sleep(min(self.PAUSE_S, remaining))


class Unsettled:
    """What a front's control entries changed while the log did not acknowledge them: each such
    entry may or may not have been stored (written to the connection as it broke). Every
    `SETTLE_S`, once the log answers again, `settle` appends an entry per unsettled thing with
    the front's view of it as its file holds it then (in a writer job: in order with the other
    control entries), and the shards make their copies match it."""

    SETTLE_S = 1.0

    def __init__(self, writer: Writer, settle: Callable[[apsw.Connection, Any], None], name: str) -> None:
        self._writer = writer
        self._settle = settle
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        threading.Thread(target=self._settle_while_open, name=name, daemon=True).start()

    def add(self, thing: Any) -> None:
        """Notes a thing whose last control entry the log may or may not hold."""
        with self._lock:
            self._pending.add(thing)
        self._wakeup.set()

    @property
    def pending(self) -> set[Any]:
        """The things not settled yet."""
        with self._lock:
            return set(self._pending)

    def _settle_while_open(self) -> None:
        while True:
            self._wakeup.wait(self.SETTLE_S)
            self._wakeup.clear()
            pending = self.pending
            if not pending:
                continue
            try:
                self._writer.run(functools.partial(self._settle_all, pending=pending), keeps_events=True)
            except WriterClosed:
                return
            except Unavailable:
                continue  # the log is still away: again in SETTLE_S
            except Exception:
                log.exception("control_settle_failed")
                continue
            with self._lock:
                self._pending -= pending

    def _settle_all(self, conn: apsw.Connection, pending: set[Any]) -> None:
        for thing in sorted(pending):
            self._settle(conn, thing)


class FrontComputations(Computations):
    """The admin use cases on a front: one node's, in the front's file, then the control entry
    appended inside the same writer job (its savepoint is rolled back if the append fails).

    An entry the log did not acknowledge in time may still have been stored (written to the
    connection as it broke): its definition is then *unsettled* (`Unsettled`), and once the log
    answers again the front appends a `converge` entry with the definition as its file holds it
    (or none), which every shard applies by creating, updating or deleting its copy."""

    def __init__(self, engine: Engine, append: Appender) -> None:
        super().__init__(engine.writer, engine.readers, engine.clock, engine.evaluator)
        self._append = append
        self._unsettled = Unsettled(engine.writer, self._settle, "front-settle")  # (space, collection, key)

    def _refuse(self, conn: apsw.Connection, space_id: int, spec: Spec) -> None:
        refuse_unbuilt(spec)
        readers = user_definitions_reading_accounts(conn, space_id, spec)
        if readers:
            raise Unimplemented(f"{', '.join(readers)} would read an account audience: a cluster does not bring an "
                                "account's value to its users' shards yet",
                                reason="CLUSTER_USER_READS_ACCOUNT_UNIMPLEMENTED")

    def _insert(self, conn: apsw.Connection, space_id: int, spec: Spec, actor: str) -> ComputationRow:
        row = super()._insert(conn, space_id, spec, actor)
        self._refuse(conn, space_id, spec)
        self._append_for(space_id, spec.collection, spec.key, define_entry(space_id, spec, row.public_id))
        return row

    def _apply_update(self, conn: apsw.Connection, current: ComputationRow, changes: Mapping[str, Any],
                      actor: str = "") -> ComputationRow:
        row = super()._apply_update(conn, current, changes, actor)
        merged = {name: changes.get(name, getattr(current, name)) for name in EDITABLE}
        merged["options"] = {**current.options, **merged["options"]}
        self._refuse(conn, current.space_id, Spec(current.kind, current.collection, current.key, **merged))
        self._append_for(current.space_id, current.collection, current.key,
                         encode({"t": "update", "space": current.space_id, "kind": current.kind,
                                 "collection": current.collection, "key": current.key, "changes": dict(changes)}))
        return row

    def _delete(self, conn: apsw.Connection, current: ComputationRow, force: bool) -> int:
        removed = super()._delete(conn, current, force)
        self._append_for(current.space_id, current.collection, current.key,
                         encode({"t": "delete", "space": current.space_id, "kind": current.kind,
                                 "collection": current.collection, "key": current.key, "force": force}))
        return removed

    def _append_for(self, space_id: int, collection: str, key: str, data: bytes) -> None:
        """Appends a definition's control entry; if the log does not acknowledge it, the
        definition is unsettled (the job fails and is rolled back all the same)."""
        try:
            self._append(data)
        except Unavailable:
            self._unsettled.add((space_id, collection, key))
            log.warning("definition_unsettled", key=key, collection=collection)
            raise

    @property
    def unsettled(self) -> set[tuple[int, str, str]]:
        """The definitions whose last control entry the log may or may not hold, not converged yet."""
        return self._unsettled.pending

    def _settle(self, conn: apsw.Connection, definition: tuple[int, str, str]) -> None:
        """Appends a `converge` entry with the definition as the front's file holds it now."""
        space_id, collection, key = definition
        row = evaluation_store.computation(conn, space_id, collection, key)
        self._append(encode({
            "t": "converge", "space": space_id, "collection": collection, "key": key,
            "kind": row.kind if row is not None else "",
            "fields": None if row is None else {name: getattr(row, name) for name in sorted(EDITABLE)},
            "public_id": row.public_id if row is not None else "",
        }))
        log.info("definition_settled", key=key, collection=collection, held=row is not None)


class SyncControl:
    """A destination or connection change on a front, inside the writer job that saved it in the
    front's file: refuses the kinds whose output is not the union of the shards' outputs, and
    appends a `sync` entry (every shard applies it with one node's code, docs/scaling.md).

    One the log did not acknowledge in time leaves its destination *unsettled* (`Unsettled`):
    once the log answers again the front appends a `converge_destination` entry with the
    destination and its connections as its file holds them (or none), and every shard makes its
    copy match."""

    def __init__(self, append: Appender, writer: Writer) -> None:
        self._append = append
        self._unsettled = Unsettled(writer, self._settle, "front-settle-sync")  # (space, destination key)

    def __call__(self, entry: dict[str, Any]) -> None:
        """Appends the entry.

        Raises:
            Unimplemented: CLUSTER_SYNC_KIND_UNIMPLEMENTED, a CSV destination;
                CLUSTER_SYNC_ACCOUNT_USERS_UNIMPLEMENTED, an account computation's connection
                sending identify or track calls (to the account's users).
            Unavailable: LOG_UNAVAILABLE (the writer job is rolled back).
        """
        if entry["op"] == "create_destination" and registry.get(entry["kind"]).queue is Queue.NONE:
            raise Unimplemented(f"a {entry['kind']} destination is not served by a cluster yet: each shard holds "
                                "its own profiles, and this kind's output (one file) is not the union of the "
                                "shards' outputs", reason="CLUSTER_SYNC_KIND_UNIMPLEMENTED")
        if entry["op"] in ("connect", "update_connection") and entry["ref"][1] == "accounts" and (
                entry.get("options", entry.get("changes", {})).get("send_identify")
                or entry.get("options", entry.get("changes", {})).get("send_track")):
            raise Unimplemented("an account's identify and track calls go to its linked users, whose links live on "
                                "the users' shards: a cluster sends an account computation's group calls only",
                                reason="CLUSTER_SYNC_ACCOUNT_USERS_UNIMPLEMENTED")
        try:
            self._append(encode({"t": "sync"} | entry))
        except Unavailable:
            key = entry["key"] if entry["op"].endswith("_destination") else entry["destination"]
            self._unsettled.add((int(entry["space"]), str(key)))
            log.warning("destination_unsettled", key=key, op=entry["op"])
            raise

    @property
    def unsettled(self) -> set[tuple[int, str]]:
        """The destinations whose last control entry the log may or may not hold, not converged yet."""
        return self._unsettled.pending

    def _settle(self, conn: apsw.Connection, destination: tuple[int, str]) -> None:
        """Appends a `converge_destination` entry with the destination and its connections as the
        front's file holds them now."""
        space_id, key = destination
        row = sync_store.destination(conn, space_id, key)
        state = None
        if row is not None:
            connections = []
            for connection in sync_store.connections_of(conn, row.destination_id):
                comp = evaluation_store.computation_by_id(conn, connection.computation_id)
                assert comp is not None, "a connection's computation is removed with it"
                connections.append({"ref": [comp.kind, comp.collection, comp.key], "options": connection.options,
                                    "identity": [connection.connection_id, connection.created_ms]})
            state = {"name": row.name, "enabled": row.enabled, "kind": row.kind, "config": row.config,
                     "policy": row.policy, "public_id": row.public_id, "connections": connections}
        self._append(encode({"t": "sync", "op": "converge_destination", "space": space_id, "key": key,
                             "state": state}))
        log.info("destination_settled", key=key, held=row is not None)


def make_front(engine: Engine, log: Log, loop: asyncio.AbstractEventLoop, shards: ShardReads) -> Appender:
    """Turns a server's engine into a cluster's front: tracking calls, definitions and clock moves
    go to the log, definitions' status and profile reads come from the shards' read endpoints
    (cluster/reads.py), change feeds and dead letters from the shards too (cluster/feeds.py), and
    what a front cannot serve is refused (`gate`). Returns the appender
    of control entries (its `last` position is the last tick's number after a `SetClock`)."""
    append = Appender(log, loop)
    engine.profile_router = shards.profile
    engine.profile_reads = ShardProfileReads(shards, engine.page_tokens)
    engine.cluster_rows = shards.combine
    engine.ingest.elsewhere = LogBridge(log, loop, engine.clock)
    engine.computations = FrontComputations(engine, append)
    engine.on_clock_set = lambda at: append(encode({"t": "clock", "at": at}))
    engine.sync.control = SyncControl(append, engine.writer)
    engine.sync.deliver = False  # the shards deliver their own profiles' changes
    engine.sync.delivery_status = shards.connections
    engine.cluster_sync = ClusterSync(engine, shards)
    engine.method_gate = gate
    return append
