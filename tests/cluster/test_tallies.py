"""A shard's counts for a tick that another shard published before the tick reached it: kept in
the file with the position, so a restart still combines them; of two copies, the first is taken.
On the system clock, counts for a definition that reach a shard before the definition does are
kept for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from audiences_server.cluster.entries import decode, encode, partition_of
from audiences_server.cluster.front import Front
from audiences_server.cluster.identity import IdentityStage
from audiences_server.cluster.log import CALLS, LocalLog, partition_subject
from audiences_server.cluster.shard import Shard, _pieces, packed, unpacked
from audiences_server.engine.clock import Clock, ManualClock
from audiences_server.engine.computations import Spec
from audiences_server.engine.engine import Engine
from audiences_server.store import cluster as cluster_store
from tests.cluster.harness import SPACE, LoopThread, _event, engine_at
from tests.cluster.streams import T0


def _until(done: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _account_on_partition_0(loop: LoopThread, front: Front, log: LocalLog, identity_engine: Engine) -> int:
    """Sends group calls until one names an account that partition 0 (of two) owns; its id."""
    for n in range(20):
        call = {"type": "group", "userId": f"u{n}", "groupId": f"g{n}", "messageId": f"m{n}"}
        loop.run(front.submit(SPACE, [call]))
        sent = log.entries(CALLS)[-1].seq
        _until(lambda sent=sent: identity_engine.writer.run(
            lambda conn: cluster_store.position(conn, "identity"))[0] >= sent, "the identity stage routed the call")
        found = identity_engine.readers.get().execute(
            "SELECT profile_id FROM profiles WHERE collection = 'accounts' ORDER BY profile_id DESC").fetchone()
        if partition_of(int(found[0]), 2) == 0:
            return int(found[0])
    raise AssertionError("no account on partition 0")


def _member(engine: Engine, key: str, account: int) -> tuple[str, ...] | None:
    return engine.readers.get().execute(
        "SELECT v.value FROM computed_values v JOIN computations c USING (computation_id)"
        " WHERE c.key = ? AND v.profile_id = ?", (key, account)).fetchone()


def test_counts_read_before_their_tick_survive_a_restart(tmp_path: Path) -> None:
    """Two partitions, only partition 0's shard running; the test plays partition 1's shard by
    appending its `tallies` for the tick to partition 0 before the tick's `clock` entry (one
    of its linked users satisfies `ANY`), then a second copy saying none does. The shard keeps
    the first in its file as it passes it, is stopped and started again on its file, and
    combines the account from it when the tick comes: the account enters, at the tick's time."""
    loop = LoopThread()
    log = LocalLog()
    identity_engine = engine_at(tmp_path / "identity.db", T0)
    engine = engine_at(tmp_path / "shard-0.db", T0)
    stop = loop.run(_event())
    identity = IdentityStage(identity_engine.writer, log, partitions=2)
    tasks = [loop.start(identity.run(stop))]
    front = Front(log, ManualClock(T0))
    try:
        shard = Shard(engine, log, 0)
        shard_stop = loop.run(_event())
        running = loop.start(shard.run(shard_stop))
        loop.run(front.define(SPACE, Spec("audience", "accounts", "vip", definition="ANY trait('plan') = 'pro'")))
        account = _account_on_partition_0(loop, front, log, identity_engine)
        at = T0 + 60_000
        tick = log.entries(CALLS)[-1].seq + 1  # the position the clock entry will have
        for held in (1, 0):  # the first copy is the one taken
            body = {"t": "tallies", "from": 1, "tick": tick, "at": at, "rows": [["vip", account, 0, held, 1]],
                    "reached": []}
            loop.run(log.append(partition_subject(0), encode(body)))
        last = log.entries(partition_subject(0))[-1].seq
        _until(lambda: shard.position()[0] >= last, "the shard passed the counts")
        assert set(engine.writer.run(lambda conn: cluster_store.inbox(conn, tick))) == {1}
        loop.loop.call_soon_threadsafe(shard_stop.set)
        running.result(30)

        again = Shard(engine, log, 0)  # nothing read ahead: only the file has the counts
        running = loop.start(again.run(stop))
        tasks.append(running)
        assert loop.run(front.set_clock(at)) == tick
        _until(lambda: again.tick >= tick, "the shard combined the tick")
        assert _member(engine, "vip", account) == ("true",)
        conn = engine.readers.get()
        changes = conn.execute("SELECT h.change, h.at_ms FROM changes h JOIN computations c USING (computation_id)"
                               " WHERE c.key = 'vip' AND h.profile_id = ?", (account,)).fetchall()
        assert changes == [("entered", at)]
        assert engine.writer.run(lambda conn: cluster_store.inbox(conn, tick)) == {}
    finally:
        loop.loop.call_soon_threadsafe(stop.set)
        for task in tasks:
            task.result(30)
        loop.run(log.close())
        loop.close()
        identity_engine.close()
        engine.close()


def test_system_clock_counts_read_before_their_definition_are_kept_for_it(tmp_path: Path) -> None:
    """On the system clock, two partitions, only partition 0's shard running: the test plays
    partition 1's shard by appending its counts for an account audience (one linked user
    satisfies `ANY`) to partition 0 before the audience's `define` entry (its shard defined and
    counted first). The shard passes them while it does not hold the audience, keeps them, and
    once the definition comes and its backfill reaches the account, the account enters."""
    loop = LoopThread()
    log = LocalLog()
    identity_engine = engine_at(tmp_path / "identity.db", T0)
    engine = engine_at(tmp_path / "shard-0.db", T0, manual=False)
    stop = loop.run(_event())
    identity = IdentityStage(identity_engine.writer, log, partitions=2)
    tasks = [loop.start(identity.run(stop))]
    front = Front(log, Clock())
    try:
        shard = Shard(engine, log, 0)
        engine.start()
        tasks.append(loop.start(shard.run(stop)))
        account = _account_on_partition_0(loop, front, log, identity_engine)
        body = {"t": "tallies", "from": 1, "sequence": 1, "at": T0, "rows": [["vip", account, 0, 1, 1]], "reached": []}
        loop.run(log.append(partition_subject(0), encode(body)))
        _until(lambda: shard.position()[0] >= log.entries(partition_subject(0))[-1].seq, "the shard passed the counts")
        assert _member(engine, "vip", account) is None
        loop.run(front.define(SPACE, Spec("audience", "accounts", "vip", definition="ANY trait('plan') = 'pro'")))
        _until(lambda: _member(engine, "vip", account) == ("true",), "the account entered")
        kept = engine.readers.get().execute("SELECT count(*) FROM cluster_tallies_early").fetchone()
        assert kept == (0,)
    finally:
        loop.loop.call_soon_threadsafe(stop.set)
        for task in tasks:
            task.result(30)
        loop.run(log.close())
        loop.close()
        identity_engine.close()
        engine.close()


def test_a_large_count_goes_in_entries_the_log_can_hold() -> None:
    """A `tallies` entry over the log's largest message is stored compressed, and reads back the
    same; on the system clock the rows go in pieces, each standing alone. (A tick that moved the
    counts of thousands of accounts went over NATS's 1 MB and stopped the shard at the append.)"""
    rows = [["all_pro", 1_000_000 + n, 0, n % 7, 7] for n in range(20_000)]
    entry = {"t": "tallies", "from": 2, "tick": 9, "at": 5, "rows": rows, "reached": [["all_pro", 1_000_001, 3]]}
    stored = packed(entry, 100_000)
    assert len(stored) <= 100_000
    assert "packed" in decode(stored)
    assert unpacked(decode(stored)) | {"packed": None} == entry | {"packed": None}
    small = {**entry, "rows": rows[:3]}
    assert decode(packed(small, 100_000)) == small  # as it is when it fits
    pieces = _pieces(rows, 50_000)
    assert [row for piece in pieces for row in piece] == rows
    assert len(pieces) > 1
    assert all(len(encode({"rows": piece})) <= 50_100 for piece in pieces)
