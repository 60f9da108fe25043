"""Turning the `changes` outbox into each connection's queue, inside one writer job.

A connection starts in INITIAL_SYNC with its cursor at the newest change record at connect time.
Each job first reads the records after the cursor, then snapshots the next chunk of current
values (members, or profiles with a value) in profile order, in the same transaction. During the
initial sync, a record is queued only for a profile the snapshot has already passed: the
snapshot of a profile not yet passed will read its value after that record, so it would be sent
twice. When the snapshot runs out, the connection is LIVE and queues every record.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from audiences_server.engine.destinations.base import Destination, Queue
from audiences_server.engine.sync.payloads import message_id
from audiences_server.store import sync as store
from audiences_server.store.evaluation import ComputationRow, computation_by_id, profile_refs, users_of
from audiences_server.store.sync import ConnectionRow, DestinationRow

# Records and snapshot rows per job: bounds how long one job holds the writer.
CHUNK = 500


def _item(
    comp: ComputationRow, change_id: int, pid: int, change: str, old: str | None, new: str | None, at: int,
    user: int | None,
) -> tuple[Any, ...]:
    """A change record as a queue item; a user joining a member account is sent as that user's
    entry (the account's value, from nothing), one leaving as that user's exit."""
    if change == "user_linked":
        change, old = ("entered" if comp.kind == "audience" else "changed"), None
    elif change == "user_unlinked":
        audience = comp.kind == "audience"
        change, new = ("exited", "false") if audience else ("changed", None)
    return pid, change, old, new, at, str(change_id), user


class Queueing:
    """Queues one connection's next chunk of records: a function of a writer connection."""

    def __init__(self, destination: DestinationRow, kind: Destination, connection: ConnectionRow, now_ms: int,
                 scope: str = "") -> None:
        self.destination = destination
        self.scope = scope  # see `payloads.message_id`
        self.kind = kind
        self.connection = connection
        self.now = now_ms

    def __call__(self, conn: apsw.Connection) -> tuple[bool, int]:
        """Runs the job; returns whether more work is waiting and how many records it queued."""
        current = store.connection_by_id(conn, self.connection.connection_id)
        comp = computation_by_id(conn, self.connection.computation_id)
        if current is None or comp is None:
            return False, 0
        self.connection = current
        upto = store.latest_change(conn)
        records = store.changes_after(conn, comp.computation_id, current.cursor, upto, CHUNK)
        full = len(records) == CHUNK
        cursor = records[-1][0] if full else upto
        snapshotting = current.phase == "INITIAL_SYNC"
        if snapshotting:
            records = [r for r in records if r[1] <= current.snapshot_after]
        if not self.kind.sends_link_changes:
            # A user joining or leaving a member account is not a change of the account's value.
            records = [r for r in records if r[6] is None]
        items = [_item(comp, *record) for record in records]
        snapshot_after, live = current.snapshot_after, not snapshotting
        if snapshotting and not full:
            rows = store.current_values(conn, comp.computation_id, comp.kind == "audience", snapshot_after, CHUNK)
            entered = "entered" if comp.kind == "audience" else "changed"
            items += [(pid, entered, None, value, at, f"snapshot:{pid}", None) for pid, value, at in rows]
            snapshot_after = rows[-1][0] if rows else snapshot_after
            live = len(rows) < CHUNK
        self._queue(conn, comp, items)
        store.advance_connection(conn, current.connection_id, cursor, snapshot_after, live)
        return full or (snapshotting and not live), len(items)

    def _queue(self, conn: apsw.Connection, comp: ComputationRow, items: list[tuple[Any, ...]]) -> None:
        if self.kind.queue is Queue.NONE or not items:
            return
        profiles = {i[0] for i in items}
        users = users_of(conn, sorted(profiles)) if comp.collection == "accounts" else {}
        named = {i[6] for i in items if i[6] is not None}
        refs = profile_refs(conn, sorted(profiles | named | {u for linked in users.values() for u in linked}))
        ids = {pid: (public, own) for pid, (public, _, own) in refs.items()}
        space = store.space_name(conn, comp.space_id)
        queued = []
        for pid, change, old, new, at, change_key, user in items:
            mid = message_id(self.destination.public_id, self.connection.connection_id, change_key, self.scope)
            public, own = ids.get(pid, ("", []))
            record = {
                "kind": comp.kind, "key": comp.key, "computation_id": comp.public_id, "collection": comp.collection,
                "space": space, "change": change, "at_ms": at, "profile": public, "ids": own, "message_id": mid,
                "old": None if old is None else json.loads(old), "new": None if new is None else json.loads(new),
            }
            if comp.collection == "accounts":
                linked = users.get(pid, []) if user is None else [user]
                record["users"] = [{"profile": ids[u][0], "ids": ids[u][1]} for u in linked if u in ids]
                record["users_only"] = user is not None
            queued.append((pid, mid, record))
        store.insert_items(conn, self.kind.queue.value, self.connection, queued, self.now)
