"""A shard: one partition's profiles, stored and evaluated by the engine on its own file (docs/scaling.md).

Each partition entry is applied in one writer job that also records the partition's position
and the last identity serial, so a restart resumes from the file with nothing applied twice.
An `expect` holds the partition until the merged profile's `adopt` has been read (the shard
reads ahead for it); a `hand_over` publishes the profile's rows before they are deleted.

Account audiences (docs/scaling.md, "Account audiences across shards"): on the manual clock, at
every tick, once account definitions exist, each shard counts its users' results per account and
publishes the counts that changed, with a `tallies` entry to every partition; a shard combines its
accounts once it holds every partition's `tallies` for that tick. On the system clock there is no
barrier: a shard counts after each of its own evaluator ticks that did work, publishes the counts
that moved (each entry numbered in its source's order), and a shard combines the accounts whose
counts moved as it reads each entry, at its current time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import zlib
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import apsw
import structlog

from audiences_server.cluster.entries import call_from_json, encode, partition_of, read
from audiences_server.cluster.log import Consumer, Entry, Log, partition_subject
from audiences_server.core import json_text
from audiences_server.core.identity import ACCOUNTS, USERS, ExternalId
from audiences_server.core.tracking import Call
from audiences_server.engine.clock import ManualClock
from audiences_server.engine.computations import Spec, unsaved
from audiences_server.engine.engine import Engine
from audiences_server.engine.evaluator import Evaluation, TickReport
from audiences_server.engine.registry import Compiled, dependencies
from audiences_server.engine.resolution import Resolver, merge_profiles
from audiences_server.errors import AlreadyExists, AudiencesError, NotFound
from audiences_server.store import cluster as store
from audiences_server.store import evaluation as evaluation_store
from audiences_server.store import events
from audiences_server.store import identity as identity_store
from audiences_server.store import sync as sync_store
from audiences_server.store.sql.plans import AccountPlan

log = structlog.get_logger(__name__)

TICKED_AT = "ticked_at"
# The number of the last tick entry applied (its position in `aud.calls`, the same in every partition).
TICK = "clock_tick"
# The partition a shard's file holds, plus one (0: not recorded yet).
HELD_PARTITION = "partition_held"
# The number of the last tick whose counts were written to the outbox.
TALLIED = "tallied_tick"
_SERIAL = "outbox_serial"
# The partition count, from `define` entries (the system clock's counts have no clock entry to say it).
PARTITIONS = "partitions"
# The sequence of the last system-clock `tallies` entry taken from a source partition.
_TAKEN_FROM = "tallies_from_{}"
_FIRST_LIVE = 3  # the step of a tick's first job's live work (see Evaluation.step)


class Tallies:
    """Account audiences on a shard (`AccountsApart`): a tick notes the accounts it reached (for
    their shards, this one included), which are combined from every shard's counts."""

    def defer(self, conn: apsw.Connection, comp: Compiled, account_ids: Sequence[int], step: int) -> None:
        """Notes the accounts for the end of the tick, with the step of the tick that reached them."""
        store.defer_accounts(conn, comp.id, list(account_ids), step)

    def flags(self, conn: apsw.Connection, comp: Compiled, account_ids: Sequence[int],
              operands: int) -> dict[tuple[int, int], tuple[bool, bool]]:
        """Per (account, operand), from every shard's counts."""
        return store.tally_flags(conn, comp.id, list(account_ids))


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


def adopt_parts(adopt: dict[str, Any], most: int) -> list[bytes]:
    """A hand-over's entries: the `adopt` entry itself when it is at most `most` bytes, else its
    compressed text in parts of at most `most` bytes each (a profile with a few hundred rich
    events is over NATS's 1 MB: as one entry, its shard stopped at the append, and again at
    every restart)."""
    whole = encode(adopt)
    if len(whole) <= most:
        return [whole]
    text = _squeezed(whole)
    head = {"t": "adopt", "key": adopt["key"], "part": 0, "parts": 0, "data": ""}
    size = most - len(encode(head)) - 32  # room for the part's numbers
    if size <= 0:
        raise ValueError(f"the log's entries ({most} bytes) are too small to hold a hand-over's part")
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    return [encode({**head, "part": n, "parts": len(pieces), "data": piece}) for n, piece in enumerate(pieces)]


def packed(entry: dict[str, Any], most: int) -> bytes:
    """A `tallies` entry as the log stores it: as it is when it is at most `most` bytes, else its
    rows and reached accounts compressed (`unpacked` reads either). A tick that moved the counts
    of thousands of accounts went over NATS's 1 MB and stopped the shard at the append."""
    whole = encode(entry)
    if len(whole) <= most:
        return whole
    inner = encode({"rows": entry["rows"], "reached": entry["reached"]})
    rest = {key: value for key, value in entry.items() if key not in ("rows", "reached")}
    return encode({**rest, "packed": _squeezed(inner)})


def unpacked(body: dict[str, Any]) -> dict[str, Any]:
    """A `tallies` entry's body with its rows and reached accounts, compressed or not (`packed`)."""
    if "packed" not in body:
        return body
    inner = json_text.loads(_unsqueezed(body["packed"]))
    return {**body, "rows": inner["rows"], "reached": inner["reached"]}


def _pieces(rows: list[list[Any]], most: int) -> list[list[list[Any]]]:
    """Rows in pieces of at most about `most` bytes of JSON each."""
    pieces: list[list[list[Any]]] = [[]]
    size = 0
    for row in rows:
        length = len(json_text.dumps(row)) + 1
        if pieces[-1] and size + length > most:
            pieces.append([])
            size = 0
        pieces[-1].append(row)
        size += length
    return pieces


def adopted_from_parts(parts: dict[int, str]) -> dict[str, Any]:
    """The `adopt` entry whose parts these are (by number)."""
    return read(_unsqueezed("".join(parts[n] for n in range(len(parts)))))


def _squeezed(data: bytes) -> str:
    """An entry's text compressed, as text another entry can hold (`_unsqueezed` reads it back)."""
    return base64.b64encode(zlib.compress(data, 6)).decode()


def _unsqueezed(text: str) -> bytes:
    """What `_squeezed` compressed."""
    return zlib.decompress(base64.b64decode(text))


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
        # The parts read so far of hand-overs split in parts (`adopt_parts`), by key.
        self._parts: dict[str, dict[int, str]] = {}
        # `tallies` entries read ahead, by (source partition, tick number).
        self._tallies: dict[tuple[int, int], bytes] = {}
        self._consumer: Consumer | None = None
        engine.evaluator.apart = Tallies()
        # On the system clock the counts are published after the evaluator's own ticks: set from
        # its thread, read by the loop (and once at start, for what a previous run left).
        self._manual = engine.clock.manual
        self._counts_due = not self._manual
        if not self._manual:
            engine.evaluator.on_tick.append(self._ticked)
        # Every shard numbers its own changes and connections: message ids name the partition.
        engine.sync.message_scope = f"p{partition}"
        engine.writer.run(store.prepare_cluster)
        engine.writer.run(store.prepare_shard)
        engine.writer.run(self._hold_partition)
        self._serial = self.position()[1]  # the last identity serial applied
        # The clock time and the number of the last tick entry applied: every entry before it is applied too.
        self.ticked_at = engine.writer.run(lambda conn: store.count(conn, TICKED_AT))
        self.tick = engine.writer.run(lambda conn: store.count(conn, TICK))

    def _hold_partition(self, conn: apsw.Connection) -> None:
        """Records the partition the file holds at its first start; refuses another later (its
        --db and --partition swapped): read as another partition, the file would mix two, and
        the cluster count their profiles twice.

        Raises:
            ValueError: the file holds another partition.
        """
        held = store.count(conn, HELD_PARTITION) - 1
        if held < 0:  # files made before the partition was recorded: the reader whose position they keep
            readers = [r for (r,) in conn.execute("SELECT reader FROM cluster_positions WHERE reader LIKE 'shard-%'")]
            held = int(readers[0].removeprefix("shard-")) if len(readers) == 1 else self.partition
        if held != self.partition:
            raise ValueError(f"{self.engine.settings.db} holds partition {held}, not {self.partition}: start it with"
                             f" --partition {held}, or give partition {self.partition} its own file")
        store.set_count(conn, HELD_PARTITION, self.partition + 1)

    def position(self) -> tuple[int, int]:
        """The partition's position and last identity serial applied, as the file says."""
        return self.engine.writer.run(lambda conn: store.position(conn, self._reader))

    async def run(self, stop: asyncio.Event) -> None:
        """Applies the partition's entries until `stop` is set."""
        if not self.engine.sync.started:
            self.engine.sync.start()  # delivers this shard's change records to its destinations
        await self._flush()  # counts a previous run wrote but did not publish
        after, _ = self.position()
        self._consumer = await self._log.consumer(self._subject, self._reader, after)
        try:
            while not stop.is_set():
                if self._counts_due:
                    self._counts_due = False
                    await self._publish_counts()
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
            if body["t"] == "adopt" and "parts" in body:
                parts = self._parts.setdefault(body["key"], {})
                parts[int(body["part"])] = body["data"]
                if len(parts) == int(body["parts"]):
                    self._adopts.setdefault(body["key"], adopted_from_parts(self._parts.pop(body["key"])))
            elif body["t"] == "adopt":
                self._adopts.setdefault(body["key"], body)
            elif body["t"] == "tallies" and "tick" in body and int(body["tick"]) > self.tick:
                self._tallies.setdefault((int(body["from"]), int(body["tick"])), entry.data)
        self._buffer.extend(fetched)
        return bool(fetched)

    async def _apply(self, entry: Entry, stop: asyncio.Event) -> bool:
        """Applies the entry at the head; False if it must wait (an expect without its adopt yet,
        a tick stopped while it waited for every partition's counts)."""
        body = read(entry.data)
        kind = body["t"]
        if kind == "tallies":
            if "tick" in body:
                await self._keep_tallies(entry, body)
            else:
                await self._take_counts(entry, unpacked(body))
            return True
        serial = int(body.get("serial", 0))
        if (serial and serial <= self._serial) or kind == "adopt":
            await self._save(entry.seq, self._serial)  # published twice, or taken with its expect
            return True
        if kind == "expect" and body["key"] not in self._adopts:
            await self._read(0.2)
            return False
        serial = max(serial, self._serial)  # an entry without a serial keeps the last one
        if not await self._dispatch(kind, body, entry.seq, serial, stop):
            return False
        self._serial = serial
        return True

    async def _dispatch(self, kind: str, body: dict[str, Any], seq: int, serial: int, stop: asyncio.Event) -> bool:
        """Applies an entry; False if it must be applied again (stopped while a tick waited for counts)."""
        writer = self.engine.writer
        if kind in ("merge", "expect"):
            adopted = self._adopts.pop(body["key"], None)
            await asyncio.to_thread(writer.run, lambda conn: self._merge(conn, body, adopted, seq, serial))
        elif kind == "hand_over":
            await self._hand_over(body, seq, serial)
        elif kind == "clock":
            at, tick = int(body["at"]), int(body.get("tick", 0))
            await asyncio.to_thread(self._tick, at)
            if self._manual and await asyncio.to_thread(writer.run, store.accounts_defined):
                return await self._exchange(at, tick, int(body.get("partitions", 1)), seq, serial, stop)

            def ticked(conn: apsw.Connection) -> None:
                store.save_position(conn, self._reader, seq, serial)
                store.set_count(conn, TICKED_AT, at)
                store.set_count(conn, TICK, tick)

            await asyncio.to_thread(self.engine.writer.run, ticked)
            self.ticked_at, self.tick = at, tick
        elif kind == "define":
            await asyncio.to_thread(self._define, body)
            await self._save(seq, serial)
        elif kind in ("update", "delete"):
            await asyncio.to_thread(self._change, kind, body)
            await self._save(seq, serial)
        elif kind == "converge":
            await asyncio.to_thread(self._converge, body)
            await self._save(seq, serial)
        elif kind == "sync":
            await asyncio.to_thread(self._sync, body)
            await self._save(seq, serial)
        else:
            log.warning("log_entry_unknown", type=kind, partition=self.partition)
            await self._save(seq, serial)
        return True

    async def _exchange(self, at: int, tick: int, partitions: int, seq: int, serial: int, stop: asyncio.Event) -> bool:
        """The end of a tick when account definitions exist: counts this shard's users' results
        per account and publishes what changed to every partition (a `tallies` entry each, empty
        or not: it says this shard's tick is done), waits for every partition's `tallies` of the
        tick, then combines the accounts this shard owns and records the tick with its position.
        Ticks are told apart by their number, not their time (a clock entry may repeat a time).
        False if stopped while waiting."""
        writer = self.engine.writer
        await asyncio.to_thread(writer.run, lambda conn: self._tally(conn, at, tick, partitions))
        await self._flush()
        kept = await asyncio.to_thread(writer.run, lambda conn: store.inbox(conn, tick))
        while True:
            found = {source: data for (source, number), data in self._tallies.items() if number == tick} | kept
            if len(found) >= partitions:
                break
            if stop.is_set():
                return False
            await self._read(0.2)
        bodies = [unpacked(read(found[source])) for source in sorted(found)]
        combined = await asyncio.to_thread(writer.run, lambda conn: self._combine(conn, at, tick, bodies, seq, serial))
        self.ticked_at, self.tick = at, tick
        self.engine.evaluator.announce(combined)  # as after one node's tick
        self._tallies = {key: data for key, data in self._tallies.items() if key[1] > tick}
        return True

    def _tally(self, conn: apsw.Connection, at: int, tick: int, partitions: int) -> None:
        """Counts for the tick (`_count`): one `tallies` entry per partition, empty or not. Done
        once per tick (a restart finds it done and publishes what the outbox still holds)."""
        if store.count(conn, TALLIED) >= tick:
            return
        self._count(conn, at, tick, partitions)
        store.set_count(conn, TALLIED, tick)

    def _count(self, conn: apsw.Connection, at: int, tick: int | None, partitions: int) -> None:
        """Counts, per compiled account audience, account and operand, the users of this file
        that are linked and those that satisfy the operand (every linked user's results computed
        first), and puts the counts that moved since last published into the outbox, by the
        account's partition, with the accounts this file's ticks reached. Only the accounts whose
        links or linked users' results were written since the last count are counted (the file's
        triggers note them). For a manual-clock tick, one `tallies` entry per partition, empty or
        not; on the system clock (`tick` None), an entry only to the partitions it has something
        for, numbered by its outbox serial (`sequence`: a source's entries reach a partition in
        that order)."""
        evaluator = self.engine.evaluator
        registry = evaluator.registry(conn)
        evaluation = Evaluation(conn, registry, at, apart=evaluator.apart)
        out: dict[int, list[list[Any]]] = {q: [] for q in range(partitions)}
        reached: dict[int, list[list[Any]]] = {q: [] for q in range(partitions)}
        for cid, account, step in store.take_account_work(conn):
            if cid in registry.by_id:
                reached[partition_of(account, partitions)].append([registry.by_id[cid].key, account, step])
        compiled = [c for c in registry.order if isinstance(c.plan, AccountPlan)]
        for comp in compiled:
            evaluation.refresh_unresolved_members(comp)
        evaluation.flush()
        dirty = store.take_dirty_accounts(conn)  # links or linked users' results written since the last count
        for comp in compiled if dirty else ():
            counted = store.member_tallies(conn, comp.id, dirty)
            sent = store.sent_tallies(conn, comp.key, dirty)
            moved = [(account, operand, *counted.get((account, operand), (0, 0)))
                     for account, operand in sorted(counted.keys() | sent.keys())
                     if counted.get((account, operand), (0, 0)) != sent.get((account, operand), (0, 0))]
            for account, operand, held, linked in moved:
                out[partition_of(account, partitions)].append([comp.key, account, operand, held, linked])
            store.note_sent(conn, comp.key, moved)
        most = self._log.max_entry_bytes
        for q, rows in out.items():
            if tick is not None:
                entry = {"t": "tallies", "from": self.partition, "tick": tick, "at": at, "rows": rows,
                         "reached": sorted(reached[q])}
                store.add_outbox(conn, store.next_count(conn, _SERIAL), partition_subject(q), packed(entry, most))
                continue
            # On the system clock each entry's counts, and accounts reached, stand alone: many go
            # as several entries, each in the log's largest message.
            parts = ([{"rows": piece, "reached": []} for piece in _pieces(rows, most // 2) if piece]
                     + [{"rows": [], "reached": piece} for piece in _pieces(sorted(reached[q]), most // 2) if piece])
            for part in parts:
                serial = store.next_count(conn, _SERIAL)
                entry = {"t": "tallies", "from": self.partition, "sequence": serial, "at": at, **part}
                store.add_outbox(conn, serial, partition_subject(q), packed(entry, most))

    def _combine(self, conn: apsw.Connection, at: int, tick: int, bodies: list[dict[str, Any]], seq: int,
                 serial: int) -> TickReport:
        """Stores every partition's counts for the tick, then evaluates the owned accounts that
        some shard's tick reached or whose counts moved, and records the tick with the
        partition's position: one transaction.

        The accounts are evaluated step by step as one node's tick would have reached them (its
        jobs in order, each a backfill chunk before live work: the earliest step any shard
        reached the account at), so that an account's change records keep one node's order. An
        account whose counts moved but that no step reached (users' results computed only for
        the counts: a backfill's links) comes at its definition's backfill step, which walks
        every account, else with the first job's live work.
        """
        report = self._evaluate_counts(conn, at, bodies, keep_unknown=False)
        store.drop_inbox(conn, tick)
        store.save_position(conn, self._reader, seq, serial)
        store.set_count(conn, TICKED_AT, at)
        store.set_count(conn, TICK, tick)
        return report

    def _evaluate_counts(self, conn: apsw.Connection, at: int, bodies: list[dict[str, Any]],
                         keep_unknown: bool) -> TickReport:
        """Stores the entries' counts and evaluates, at `at`, the owned accounts they reached or
        whose counts moved, step by step (see `_combine`). With `keep_unknown`, counts of a
        definition this file does not hold yet (its `define` entry is still to come in this
        partition) are kept for it (`store.keep_early_tallies`)."""
        evaluator = self.engine.evaluator
        registry = evaluator.registry(conn)
        by_key = {c.key: c for c in registry.order if isinstance(c.plan, AccountPlan)}
        reached: dict[tuple[int, int], int] = {}
        backfilled: dict[int, int] = {}
        for body in bodies:
            for key, account, step in body.get("reached", ()):
                comp = by_key.get(key)
                if comp is not None:
                    found = (comp.id, int(account))
                    reached[found] = min(int(step), reached.get(found, int(step)))
                    if int(step) % 2 == 0:
                        backfilled[comp.id] = min(int(step), backfilled.get(comp.id, int(step)))
        moved: set[tuple[int, int]] = set()
        for body in bodies:
            for key, account, operand, held, linked in body["rows"]:
                comp = by_key.get(key)
                if comp is not None and store.put_tally(conn, comp.id, int(account), int(body["from"]),
                                                        int(operand), int(held), int(linked)):
                    moved.add((comp.id, int(account)))
                elif comp is None and keep_unknown:
                    store.keep_early_tallies(conn, str(key), int(account), int(body["from"]), int(operand),
                                             int(held), int(linked))
        for found in moved - reached.keys():
            reached[found] = backfilled.get(found[0], _FIRST_LIVE)
        steps: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        for (cid, account), step in reached.items():
            steps[step][cid].add(account)
        return evaluator.combine_accounts(conn, at, [steps[step] for step in sorted(steps)])

    async def _keep_tallies(self, entry: Entry, body: dict[str, Any]) -> None:
        """A `tallies` entry met in the partition's order: kept in the file if its tick is still
        to come (another shard ticked first), skipped if its tick was combined."""
        tick = int(body["tick"])

        def keep(conn: apsw.Connection) -> None:
            if tick > self.tick:
                store.keep_inbox(conn, tick, int(body["from"]), entry.data)
            store.save_position(conn, self._reader, entry.seq, self._serial)

        await asyncio.to_thread(self.engine.writer.run, keep)

    def _ticked(self, report: TickReport) -> None:
        """The evaluator finished a tick (system clock, on its thread): counts may have moved if
        it did any work."""
        if report.jobs > 1 or report.backlog or report.evaluated:
            self._counts_due = True

    async def _publish_counts(self) -> None:
        """System clock: counts what moved since last published (`_count`, in one writer job with
        the outbox), then publishes the outbox."""

        def count(conn: apsw.Connection) -> None:
            partitions = store.count(conn, PARTITIONS)
            if partitions and store.accounts_defined(conn):
                self._count(conn, self.engine.clock.now_ms(), None, partitions)

        await asyncio.to_thread(self.engine.writer.run, count)
        await self._flush()

    async def _take_counts(self, entry: Entry, body: dict[str, Any]) -> None:
        """A system-clock `tallies` entry met in the partition's order: its counts replace what
        its source published before, and the owned accounts whose counts moved or that the entry
        says a tick reached are evaluated at this shard's current time, with the partition's
        position, in one writer job; the change listeners are told as after a tick. An entry
        whose sequence is not past the last taken from its source (published twice, replayed) is
        passed over, as is one that does not say its source and sequence (logged)."""
        try:
            source, sequence = int(body["from"]), int(body["sequence"])
        except (KeyError, TypeError, ValueError):
            log.warning("log_entry_invalid", type="tallies", partition=self.partition)
            await self._save(entry.seq, self._serial)
            return

        def take(conn: apsw.Connection) -> TickReport | None:
            report = None
            if sequence > store.count(conn, _TAKEN_FROM.format(source)):
                store.set_count(conn, _TAKEN_FROM.format(source), sequence)
                report = self._evaluate_counts(conn, self.engine.clock.now_ms(), [body], keep_unknown=True)
            store.save_position(conn, self._reader, entry.seq, self._serial)
            return report

        report = await asyncio.to_thread(self.engine.writer.run, take)
        if report is not None:
            self.engine.evaluator.announce(report)

    async def _flush(self) -> None:
        """Publishes the outbox (counts) in order, then drops it; each message keeps its serial
        as its message id, so one published again after a restart is stored once."""
        while True:
            waiting = await asyncio.to_thread(self.engine.writer.run, lambda conn: store.outbox(conn, 512))
            if not waiting:
                return
            for number, subject, data in waiting:
                await self._log.append(subject, data, msg_id=f"shard-{self.partition}-{number}")
            last = waiting[-1][0]
            await asyncio.to_thread(self.engine.writer.run, lambda conn, through=last: store.drop_outbox(conn, through))

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
        parts = adopt_parts(adopt, self._log.max_entry_bytes)
        for number, part in enumerate(parts):
            msg_id = f"adopt-{body['key']}" + (f"-{number}" if len(parts) > 1 else "")
            await self._log.append(partition_subject(int(body["to"])), part, msg_id=msg_id)

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
        space, spec = int(body["space"]), Spec(**body["spec"])
        if body.get("partitions"):
            self.engine.writer.run(lambda conn: store.set_count(conn, PARTITIONS, int(body["partitions"])))
        readers = self.engine.writer.run(lambda conn: user_definitions_reading_accounts(conn, space, spec))
        if readers:
            # Every shard refuses it alike: they see the same definitions in the same order.
            log.warning("definition_refused", key=spec.key, collection=spec.collection, readers=readers,
                        reason="CLUSTER_USER_READS_ACCOUNT_UNIMPLEMENTED")
            return
        # Created already if a restart came before its position was saved.
        with contextlib.suppress(AlreadyExists):
            row = self.engine.computations.create(space, spec)
            if body.get("public_id"):  # the front's id for it, so that every shard names it alike
                self.engine.writer.run(lambda conn: store.set_public_id(conn, row.computation_id,
                                                                        str(body["public_id"])))
        if spec.collection == "accounts":
            # Counts another shard published for it before this entry came (system clock).
            self.engine.writer.run(lambda conn: store.take_early_tallies(conn, space, spec.key))


    def _change(self, kind: str, body: dict[str, Any]) -> None:
        """An update (fields, the definition, enabling) or a delete, as the front applied it to
        its own file, by the single node's code. A definition this shard does not hold (skipped
        when created, or deleted already by this entry before a restart) is logged and passed
        over, as is a change this shard refuses."""
        space, what, collection, key = int(body["space"]), body["kind"], body["collection"], body["key"]
        try:
            if kind == "update":
                self.engine.computations.update(space, what, collection, key, body["changes"])
            else:
                self.engine.computations.delete(space, what, collection, key, bool(body.get("force")))
        except NotFound:
            log.warning("definition_missing", change=kind, key=key, collection=collection)
        except AudiencesError as refused:
            # The front applied it to its own file with the same code, so this shard's definitions
            # differ from the front's; one bad entry must not stop the partition.
            log.error("definition_change_refused", change=kind, key=key, collection=collection,
                      reason=refused.reason, message=refused.message)
            return
        if kind == "delete" and collection == ACCOUNTS:  # also after a restart found it deleted already
            self.engine.writer.run(lambda conn: store.forget_definition(conn, key))


    def _converge(self, body: dict[str, Any]) -> None:
        """A definition made as the front holds it (`converge` entry: its fields and id, or
        none), after the front could not tell whether the log stored one of its entries
        (docs/scaling.md, "Control through a front server"): created, updated or deleted (with
        force) here as needed; nothing when this shard holds it as the front does."""
        space, what, collection, key = int(body["space"]), body["kind"], body["collection"], body["key"]
        computations = self.engine.computations
        held = self.engine.writer.run(lambda conn: evaluation_store.computation(conn, space, collection, key))
        fields: dict[str, Any] | None = body.get("fields")
        try:
            if held is not None and (fields is None or held.kind != what):
                computations.delete(space, held.kind, collection, key, force=True)
                if collection == ACCOUNTS:
                    self.engine.writer.run(lambda conn: store.forget_definition(conn, key))
                held = None
            if fields is None:
                return
            if held is None:
                self._define({"space": space, "spec": {"kind": what, "collection": collection, "key": key, **fields},
                              "public_id": body["public_id"]})
                return
            changes = {name: value for name, value in fields.items() if getattr(held, name) != value}
            if changes:
                computations.update(space, what, collection, key, changes)
            if held.public_id != body["public_id"]:
                self.engine.writer.run(lambda conn: store.set_public_id(conn, held.computation_id,
                                                                        str(body["public_id"])))
        except AudiencesError as refused:
            log.error("definition_converge_refused", key=key, collection=collection, reason=refused.reason,
                      message=refused.message)
            return
        log.info("definition_converged", key=key, collection=collection, held=fields is not None)

    def _sync(self, body: dict[str, Any]) -> None:
        """A destination or connection created, changed or removed through the front, applied by
        the single node's code (docs/scaling.md, "Destinations on a cluster"): this shard's
        workers then deliver the change records of its own profiles. An entry applied already
        (a restart before its position was saved) or naming what this shard does not hold is
        logged and passed over, as is one this shard refuses."""
        sync, op, space = self.engine.sync, body["op"], int(body["space"])
        try:
            if op == "create_destination":
                sync.create_destination(space, body["key"], body["name"], bool(body["enabled"]), body["kind"],
                                        body["config"], body["policy"], public_id=str(body["public_id"]))
            elif op == "update_destination":
                sync.update_destination(space, body["key"], body["changes"])
            elif op == "delete_destination":
                sync.delete_destination(space, body["key"], bool(body["force"]))
            elif op == "connect":
                identity = body.get("identity")
                sync.connect(space, body["destination"], _ref(body["ref"]), body["options"],
                             (int(identity[0]), int(identity[1])) if identity else None)
            elif op == "update_connection":
                sync.update_connection(space, body["destination"], _ref(body["ref"]), body["changes"])
            elif op == "disconnect":
                sync.disconnect(space, body["destination"], _ref(body["ref"]))
            elif op == "converge_destination":
                self._converge_destination(space, str(body["key"]), body["state"])
            else:
                log.warning("sync_entry_unknown", op=op, partition=self.partition)
        except AlreadyExists:
            log.info("sync_entry_applied_already", op=op, partition=self.partition)
        except NotFound as missing:
            log.warning("sync_target_missing", op=op, reason=missing.reason, partition=self.partition)
        except AudiencesError as refused:
            log.error("sync_entry_refused", op=op, reason=refused.reason, message=refused.message,
                      partition=self.partition)


    def _converge_destination(self, space: int, key: str, state: dict[str, Any] | None) -> None:
        """Makes this shard's copy of a destination, and of its connections, match the front's
        (`state`, None when the front holds none): after control entries the log may or may not
        have stored (cluster/control.py, `SyncControl`)."""
        sync = self.engine.sync
        conn = self.engine.readers.get()
        held = sync_store.destination(conn, space, key)
        if state is None or (held is not None and (held.kind, held.public_id) != (state["kind"], state["public_id"])):
            if held is not None:
                sync.delete_destination(space, key, force=True)
                held = None
            if state is None:
                log.info("destination_converged", key=key, held=False, partition=self.partition)
                return
        if held is None:
            sync.create_destination(space, key, state["name"], bool(state["enabled"]), state["kind"], state["config"],
                                    state["policy"], public_id=str(state["public_id"]))
        elif (held.name, held.enabled, held.config, held.policy) != (
                state["name"], state["enabled"], state["config"], state["policy"]):
            sync.update_destination(space, key, {"name": state["name"], "enabled": bool(state["enabled"]),
                                                 "config": state["config"], "policy": state["policy"]})
        destination = sync.destination(space, key)
        conn = self.engine.readers.get()
        wanted = {tuple(c["ref"]): c for c in state["connections"]}
        for row in sync_store.connections_of(conn, destination.destination_id):
            comp = evaluation_store.computation_by_id(conn, row.computation_id)
            assert comp is not None, "a connection's computation is removed with it"
            ref = (comp.kind, comp.collection, comp.key)
            front = wanted.get(ref)
            if front is None or list(front["identity"]) != [row.connection_id, row.created_ms]:
                sync.disconnect(space, key, ref)
            elif front["options"] != row.options:
                sync.update_connection(space, key, ref, front["options"])
                del wanted[ref]
            else:
                del wanted[ref]
        for ref, front in wanted.items():
            identity = front["identity"]
            sync.connect(space, key, _ref(ref), front["options"], (int(identity[0]), int(identity[1])))
        log.info("destination_converged", key=key, held=True, partition=self.partition)


def _ref(parts: Sequence[str]) -> tuple[str, str, str]:
    kind, collection, key = parts
    return str(kind), str(collection), str(key)


def user_definitions_reading_accounts(conn: apsw.Connection, space_id: int, spec: Spec) -> list[str]:
    """The user definitions that would read an account audience once `spec` is saved (a user's
    `trait('k')` names the account audience `k` when no user definition has that key): a shard
    would need the account's shard's value, which is not built (docs/scaling.md)."""
    comps = [Compiled.of_row(row) for row in evaluation_store.computations(conn, space_id)
             if not (row.collection == spec.collection and row.key == spec.key)]
    comps.append(unsaved(spec, space_id))
    dependencies(comps)
    return sorted(c.key for c in comps if c.collection == "users" and c.account_keys)
