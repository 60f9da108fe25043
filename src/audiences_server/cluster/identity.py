"""The identity stage: resolves calls to profile ids and routes them to partitions (docs/scaling.md).

It reads `aud.calls` in order. For each entry, in one transaction of its own SQLite file, it
finds duplicates, resolves identifiers with the single node's resolver (`engine/resolution.py`:
the same planner, the same profile ids in the same order), and writes what it must publish to
an outbox, with its position. Then it publishes the outbox in order; a message published twice
after a crash carries the same serial, which the shard applies once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw
import structlog

from audiences_server.cluster.entries import call_from_json, encode, merge_key, partition_of, read
from audiences_server.cluster.log import CALLS, Log, partition_subject
from audiences_server.core.identity import ACCOUNTS, USERS, extract_external_ids, with_configured_ids
from audiences_server.core.tracking import Call, unlinks
from audiences_server.engine.resolution import Resolver
from audiences_server.store import cluster as store
from audiences_server.store import identity as identity_store
from audiences_server.store.writer import Writer

log = structlog.get_logger(__name__)

READER = "identity"
PARTITIONS = "partitions"  # the P this stage's file routes to, set on its first run
_CALL_SEQ = "call_seq"
_SERIAL = "outbox_serial"


class IdentityResolver(Resolver):
    """The resolver on identifiers only: merges move identifiers, and are listed for the shards."""

    def __init__(self, conn: apsw.Connection, space_id: int, now_ms: int) -> None:
        super().__init__(conn, space_id, now_ms)
        self.merges: list[tuple[int, int, str]] = []

    def place(self, call: Call, seq: int) -> tuple[int | None, int | None]:
        """The user profile and the account profile a call belongs to (as the single node's
        `_resolve_call` finds them), creating and merging profiles as it does."""
        ids = extract_external_ids(call.message)
        if self._rules.sources:
            ids = with_configured_ids(ids, call.message, self._rules.sources)
        user = self._resolve(USERS, ids.users, call, seq)
        if call.type != "group":
            return user, None
        if unlinks(call):
            holders = set(self._held(ACCOUNTS, ids.accounts).values())
            return user, (holders.pop() if user is not None and len(holders) == 1 else None)
        return user, self._resolve(ACCOUNTS, ids.accounts, call, seq)

    def _merge(self, survivor: int, merged: int, message_id: str) -> None:
        identity_store.move_profile(self._conn, self._space, survivor, merged, message_id, self._now)
        self._merged_into[merged] = survivor
        for known in self._holders.values():
            known.update({i: survivor for i, holder in known.items() if holder == merged})
        self.merges.append((survivor, merged, message_id))

    def finish(self) -> None:
        """Nothing to write: messages and touches are the shards' business."""


@dataclass
class _Routed:
    """The partition entries one log entry makes, in the order they must be published."""

    partitions: int
    out: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, profile_id: int | None, entry: dict[str, Any]) -> None:
        self.out.append((0 if profile_id is None else partition_of(profile_id, self.partitions), entry))


def _ref(conn: apsw.Connection, profile_id: int, seq: int, owned: bool) -> dict[str, Any]:
    """What a shard needs to store a profile a call names: its row's facts, the identifiers this call added."""
    row = store.profile_row(conn, profile_id)
    added = [list(r) for r in conn.execute(
        "SELECT id_type, id_value, added_ms FROM identifiers WHERE profile_id = ? AND seq = ?", (profile_id, seq))]
    return {"id": profile_id, "collection": row["collection"], "public_id": row["public_id"],
            "created_ms": row["created_ms"], "owned": owned, "added": added}


class IdentityStage:
    """Reads calls, resolves them, routes them; one per cluster."""

    def __init__(self, writer: Writer, log: Log, partitions: int, batch: int = 256) -> None:
        self._writer = writer
        self._log = log
        self._partitions = partitions
        self._batch = batch
        self._writer.run(store.prepare_cluster)
        self._writer.run(lambda conn: keep_partitions(conn, partitions))

    async def run(self, stop: asyncio.Event) -> None:
        """Publishes what a previous run left in the outbox, then reads `aud.calls` until `stop` is set."""
        await self.flush()
        after, _ = self._writer.run(lambda conn: store.position(conn, READER))
        consumer = await self._log.consumer(CALLS, READER, after)
        try:
            while not stop.is_set():
                entries = await consumer.fetch(self._batch, 0.2)
                if not entries:
                    continue
                await asyncio.to_thread(self._writer.run, lambda conn, taken=entries: self._route_all(conn, taken))
                await self.flush()
                for entry in entries:
                    await consumer.ack(entry)
        finally:
            await consumer.close()

    async def flush(self) -> None:
        """Publishes the outbox in order, then drops it.

        The appends are pipelined: each is written to the one connection before the next starts
        (`JetStreamLog.append`), and both partitions' subjects are one stream, so the log stores
        them in the outbox's order; an `expect` is stored before its `hand_over`.
        """
        while True:
            waiting = await asyncio.to_thread(self._writer.run, lambda conn: store.outbox(conn, 512))
            if not waiting:
                return
            await asyncio.gather(*(self._log.append(subject, data, msg_id=f"identity-{serial}")
                                   for serial, subject, data in waiting))
            last = waiting[-1][0]
            await asyncio.to_thread(self._writer.run, lambda conn, through=last: store.drop_outbox(conn, through))

    def _route_all(self, conn: apsw.Connection, entries: Sequence[Any]) -> None:
        for entry in entries:
            routed = _Routed(self._partitions)
            self._route(conn, read(entry.data), routed, entry.seq)
            for partition, out in routed.out:
                serial = store.next_count(conn, _SERIAL)
                store.add_outbox(conn, serial, partition_subject(partition), encode({**out, "serial": serial}))
            store.save_position(conn, READER, entry.seq, 0)

    def _route(self, conn: apsw.Connection, entry: dict[str, Any], routed: _Routed, position: int) -> None:
        if entry["t"] in ("clock", "define", "update", "delete", "converge", "sync"):
            if entry["t"] == "clock":
                # The tick's number (its position in `aud.calls`, the same in every partition) and
                # the partition count: shards exchange their account counts per tick.
                entry = entry | {"tick": position, "partitions": self._partitions}
            elif entry["t"] == "define":
                # On the system clock, shards publish account counts without clock entries: the
                # definition tells them the partition count.
                entry = entry | {"partitions": self._partitions}
            routed.out += [(p, entry) for p in range(self._partitions)]
            return
        if entry["t"] != "calls":
            log.warning("log_entry_unknown", type=entry["t"])
            return
        space, at, source = int(entry["space"]), int(entry["at"]), str(entry.get("source", ""))
        resolver = IdentityResolver(conn, space, at)
        for fields in entry["calls"]:
            call = call_from_json(fields)
            if not store.first_sighting(conn, space, call.message_id):
                continue  # a duplicate, as the single node finds it at insert
            seq = store.next_count(conn, _CALL_SEQ)
            user, account = resolver.place(call, seq)
            base = {"space": space, "at": at}
            for survivor, merged, message_id in resolver.merges:
                self._route_merge(conn, routed, base | {"message_id": message_id}, survivor, merged)
            resolver.merges.clear()
            self._route_call(conn, routed, base | {"t": "call", "source": source, "seq": seq, "call": fields},
                             user, account)

    def _route_merge(self, conn: apsw.Connection, routed: _Routed, base: dict[str, Any],
                     survivor: int, merged: int) -> None:
        parts = self._partitions
        merge = base | {"survivor": _ref(conn, survivor, -1, True), "merged": merged,
                        "key": merge_key(survivor, merged)}
        if partition_of(survivor, parts) == partition_of(merged, parts):
            routed.add(survivor, merge | {"t": "merge"})
            return
        # The survivor's partition hears first: the hand-over is published only after the expect.
        routed.add(survivor, merge | {"t": "expect"})
        routed.add(merged, merge | {"t": "hand_over", "to": partition_of(survivor, parts)})

    def _route_call(self, conn: apsw.Connection, routed: _Routed, call: dict[str, Any],
                    user: int | None, account: int | None) -> None:
        seq, parts = call["seq"], self._partitions
        together = user is not None and account is not None and partition_of(user, parts) == partition_of(account,
                                                                                                          parts)
        if user is not None:
            refs = {"user": _ref(conn, user, seq, True)}
            if account is not None:
                refs["account"] = _ref(conn, account, seq, together)
            routed.add(user, call | refs | {"store_event": True})
        if account is not None and not together and not (user is not None and unlinks(call_from_json(call["call"]))):
            routed.add(account, call | {"account": _ref(conn, account, seq, True), "store_event": user is None})
        if user is None and account is None:
            routed.add(None, call | {"store_event": True})


def keep_partitions(conn: apsw.Connection, partitions: int, record: bool = True) -> None:
    """Records P on a new file (unless not `record`: only checks); refuses another P on one that
    routed with it (every profile's partition is a function of P: the calls of profiles already
    placed would go to partitions that do not hold them, or that no shard runs).

    Raises:
        ValueError: the file was made with another P.
    """
    store.prepare_cluster(conn)
    made_with = store.count(conn, PARTITIONS)
    if made_with and made_with != partitions:
        raise ValueError(f"this identity stage's file routes to {made_with} partitions, not {partitions}: P is fixed "
                         "when the cluster is made (docs/scaling.md)")
    if not made_with and record:
        store.set_count(conn, PARTITIONS, partitions)
