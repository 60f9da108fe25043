"""A shard: one partition's profiles, stored and evaluated by the engine on its own file (docs/scaling.md).

Each partition entry is applied in one writer job that also records the partition's position
and the last identity serial, so a restart resumes from the file with nothing applied twice.
An `expect` holds the partition until the merged profile's `adopt` has been read (the shard
reads ahead for it); a `hand_over` publishes the profile's rows before they are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import apsw
import structlog

from audiences_server.cluster.entries import call_from_json, encode, read
from audiences_server.cluster.log import Consumer, Entry, Log, partition_subject
from audiences_server.core.identity import ACCOUNTS, USERS, ExternalId
from audiences_server.core.tracking import Call
from audiences_server.engine.clock import ManualClock
from audiences_server.engine.computations import Spec
from audiences_server.engine.engine import Engine
from audiences_server.engine.resolution import Resolver, merge_profiles
from audiences_server.errors import AlreadyExists
from audiences_server.store import cluster as store
from audiences_server.store import events
from audiences_server.store import identity as identity_store

log = structlog.get_logger(__name__)

TICKED_AT = "ticked_at"


class StampedResolver(Resolver):
    """The resolver with each profile given by the identity stage instead of planned: traits,
    links, message times and touches are written by the single node's code."""

    def __init__(self, conn: apsw.Connection, space_id: int, now_ms: int, refs: dict[str, Any]) -> None:
        super().__init__(conn, space_id, now_ms)
        self._refs = {USERS: refs.get("user"), ACCOUNTS: refs.get("account")}
        self._foreign: set[int] = set()

    def _resolve(self, collection: str, ids: Any, call: Call, seq: int) -> int | None:
        ref = self._refs[collection]
        if ref is None:
            return None
        pid, owned = int(ref["id"]), bool(ref["owned"])
        created = store.ensure_profile(self._conn, pid, self._space, ref["collection"], ref["public_id"],
                                       int(ref["created_ms"]), elsewhere=not owned)
        if not owned:
            self._foreign.add(pid)
            return pid
        if created:
            self._touches.add((pid, "profile", "created"))
        if ref["added"]:
            added = [(ExternalId(t, v), int(ms)) for t, v, ms in ref["added"]]
            for external_id, added_ms in added:
                identity_store.add_identifiers(self._conn, self._space, collection, pid, [external_id], added_ms, seq)
            self._touches.add((pid, "identifier", ""))
        return pid

    def _unlink(self, user: int | None, ids: Any, call: Call) -> None:
        account = self._refs[ACCOUNTS]
        if user is None or account is None:
            return
        account_id = int(account["id"])
        store.ensure_profile(self._conn, account_id, self._space, ACCOUNTS, account["public_id"],
                             int(account["created_ms"]), elsewhere=not account["owned"])
        if identity_store.unlink(self._conn, user, account_id, call.timestamp_ms):
            self._linked(user, account_id, "user_unlinked")

    def _owns(self, profile_id: int) -> bool:
        return profile_id not in self._foreign


class Shard:
    """Applies one partition to an engine."""

    def __init__(self, engine: Engine, log: Log, partition: int, batch: int = 256) -> None:
        self.engine = engine
        self._log = log
        self.partition = partition
        self._subject = partition_subject(partition)
        self._reader = f"shard-{partition}"
        self._batch = batch
        self._buffer: deque[Entry] = deque()
        self._adopts: dict[str, dict[str, Any]] = {}
        self._consumer: Consumer | None = None
        engine.writer.run(store.prepare_cluster)
        self._serial = self.position()[1]  # the last identity serial applied
        # The clock time of the last tick entry applied: every entry before it is applied too.
        self.ticked_at = engine.writer.run(lambda conn: store.count(conn, TICKED_AT))

    def position(self) -> tuple[int, int]:
        """The partition's position and last identity serial applied, as the file says."""
        return self.engine.writer.run(lambda conn: store.position(conn, self._reader))

    async def run(self, stop: asyncio.Event) -> None:
        """Applies the partition's entries until `stop` is set."""
        after, _ = self.position()
        self._consumer = await self._log.consumer(self._subject, self._reader, after)
        try:
            while not stop.is_set():
                if not self._buffer and not await self._read(0.2):
                    continue
                calls = self._leading_calls()
                if calls:
                    await asyncio.to_thread(self.engine.writer.run, lambda conn, run=calls: self._calls(conn, run))
                    for entry in calls:
                        self._buffer.popleft()
                        await self._consumer.ack(entry)
                    continue
                entry = self._buffer[0]
                if not await self._apply(entry, stop):
                    continue
                self._buffer.popleft()
                await self._consumer.ack(entry)
        finally:
            await self._consumer.close()

    async def _read(self, timeout_s: float) -> bool:
        assert self._consumer is not None
        fetched = await self._consumer.fetch(self._batch, timeout_s)
        for entry in fetched:
            body = read(entry.data)
            if body["t"] == "adopt":
                self._adopts.setdefault(body["key"], body)
        self._buffer.extend(fetched)
        return bool(fetched)

    async def _apply(self, entry: Entry, stop: asyncio.Event) -> bool:
        """Applies the entry at the head; False if it must wait (an expect without its adopt yet)."""
        body = read(entry.data)
        kind = body["t"]
        serial = int(body.get("serial", 0))
        if (serial and serial <= self._serial) or kind == "adopt":
            await self._save(entry.seq, self._serial)  # published twice, or taken with its expect
            return True
        if kind == "expect" and body["key"] not in self._adopts:
            await self._read(0.2)
            return False
        serial = max(serial, self._serial)  # an entry without a serial keeps the last one
        await self._dispatch(kind, body, entry.seq, serial)
        self._serial = serial
        return True

    async def _dispatch(self, kind: str, body: dict[str, Any], seq: int, serial: int) -> None:
        writer = self.engine.writer
        if kind in ("merge", "expect"):
            adopted = self._adopts.pop(body["key"], None)
            await asyncio.to_thread(writer.run, lambda conn: self._merge(conn, body, adopted, seq, serial))
        elif kind == "hand_over":
            await self._hand_over(body, seq, serial)
        elif kind == "clock":
            at = int(body["at"])
            await asyncio.to_thread(self._tick, at)

            def ticked(conn: apsw.Connection) -> None:
                store.save_position(conn, self._reader, seq, serial)
                store.set_count(conn, TICKED_AT, at)

            await asyncio.to_thread(self.engine.writer.run, ticked)
            self.ticked_at = at
        elif kind == "define":
            await asyncio.to_thread(self._define, body)
            await self._save(seq, serial)
        else:
            log.warning("log_entry_unknown", type=kind, partition=self.partition)
            await self._save(seq, serial)

    async def _save(self, seq: int, serial: int) -> None:
        await asyncio.to_thread(self.engine.writer.run,
                                lambda conn: store.save_position(conn, self._reader, seq, serial))

    def _leading_calls(self) -> list[Entry]:
        """The `call` entries at the head of the buffer (at most a batch): one transaction stores them."""
        run: list[Entry] = []
        for entry in self._buffer:
            if len(run) == self._batch or read(entry.data)["t"] != "call":
                break
            run.append(entry)
        return run

    def _calls(self, conn: apsw.Connection, entries: list[Entry]) -> None:
        """Stores a run of calls, each once (a serial applied before is a message published twice)."""
        applied = self._serial
        for entry in entries:
            body = read(entry.data)
            serial = int(body["serial"])
            if serial > applied:
                resolver = StampedResolver(conn, int(body["space"]), int(body["at"]), body)
                call, call_seq = call_from_json(body["call"]), int(body["seq"])
                user = resolver.resolve(call, call_seq)
                if body["store_event"]:
                    events.insert_calls(conn, int(body["space"]), [call], [user], call_seq, body.get("source", ""))
                resolver.finish()
                applied = serial
        store.save_position(conn, self._reader, entries[-1].seq, applied)
        self._serial = applied  # read by the loop only after this job committed

    def _merge(self, conn: apsw.Connection, body: dict[str, Any], adopted: dict[str, Any] | None,
               seq: int, serial: int) -> None:
        space, survivor, merged = int(body["space"]), int(body["survivor"]["id"]), int(body["merged"])
        if adopted is not None and store.note_adopted(conn, body["key"]):
            store.import_profile(conn, merged, adopted["rows"])
        changed = merge_profiles(conn, space, survivor, merged, body["message_id"], int(body["at"]))
        identity_store.touch(conn, [(survivor, "trait", key) for key in changed]
                             + [(survivor, "merge", ""), (merged, "merge", "")])
        store.save_position(conn, self._reader, seq, serial)

    async def _hand_over(self, body: dict[str, Any], seq: int, serial: int) -> None:
        merged, survivor = int(body["merged"]), body["survivor"]
        rows = await asyncio.to_thread(self.engine.writer.run, lambda conn: store.export_profile(conn, merged))
        adopt = {"t": "adopt", "key": body["key"], "rows": rows}
        await self._log.append(partition_subject(int(body["to"])), encode(adopt), msg_id=f"adopt-{body['key']}")

        def retire(conn: apsw.Connection) -> None:
            store.ensure_profile(conn, int(survivor["id"]), int(body["space"]), survivor["collection"],
                                 survivor["public_id"], int(survivor["created_ms"]), elsewhere=True)
            store.remove_profile(conn, merged, int(survivor["id"]))
            identity_store.touch(conn, [(merged, "merge", "")])
            store.save_position(conn, self._reader, seq, serial)

        await asyncio.to_thread(self.engine.writer.run, retire)

    def _tick(self, at: int) -> None:
        clock = self.engine.clock
        if isinstance(clock, ManualClock):
            if at > clock.now_ms():
                clock.set(at)
            self.engine.evaluator.run_tick(until_idle=True)

    def _define(self, body: dict[str, Any]) -> None:
        # Created already if a restart came before its position was saved.
        with contextlib.suppress(AlreadyExists):
            self.engine.computations.create(int(body["space"]), Spec(**body["spec"]))
