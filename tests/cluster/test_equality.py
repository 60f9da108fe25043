"""The cluster's results equal one node's: the same random streams sent to both, compared after every tick."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from audiences_server.cluster.entries import decode, encode, partition_of
from audiences_server.cluster.log import CALLS, JetStreamLog, LocalLog, Log, partition_subject
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, Cluster, SingleNode, Stored
from tests.cluster.streams import ACCOUNTS, LATE_ACCOUNTS, T0, Stream

ACCOUNT_KEYS = {spec.key for spec in [*ACCOUNTS, LATE_ACCOUNTS]}


def _same(cluster: Stored, single: Stored, at: int) -> None:
    assert cluster.profiles == single.profiles, f"profiles differ at {at}"
    assert cluster.events == single.events, f"events differ at {at}"
    assert cluster.traits == single.traits, f"traits differ at {at}"
    assert cluster.values == single.values, f"values differ at {at}"
    assert dict(cluster.changes) == dict(single.changes), f"change records differ at {at}"


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int = 8,
         between: Callable[[Cluster, SingleNode, int], None] | None = None, partitions: int = 3,
         processes: int | None = None) -> int:
    single = SingleNode(tmp_path, T0)
    cluster = Cluster(tmp_path, connect, shards=partitions, start_ms=T0, processes=processes)
    crossing = accounts = 0
    try:
        for kind, value in Stream(seed).steps(ticks, calls_per_tick=30):
            if between is not None and kind == "tick":
                between(cluster, single, value)
            if kind == "define":
                single.define(value)
                cluster.define(value)
            elif kind == "calls":
                single.send(value)
                cluster.send(value)
            else:
                single.tick(value)
                cluster.tick(value)
                _same(cluster.stored(), single.stored(), value)
                accounts += sum(key[0] in ACCOUNT_KEYS for key in single.stored().values)
        assert accounts > 0  # account audiences were evaluated
        pairs = cluster.identity_engine.readers.get().execute("SELECT survivor_id, merged_id FROM merges")
        crossing = sum(partition_of(s, partitions) != partition_of(m, partitions) for s, m in pairs)
    finally:
        cluster.close()
        single.close()
    return crossing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_log_cluster_equals_one_node(tmp_path: Path, seed: int) -> None:
    """Over the in-process log, one identity stage and three shards store the same profiles,
    events and traits as one node, and hold the same values and per-profile change records
    after every tick, through merges that cross shards, links and unlinks, definitions created
    mid-stream, clock moves, and account audiences whose users live on other shards than
    their accounts."""
    assert _run(tmp_path, _local, seed) > 0  # the stream merged profiles across shards


def test_entries_split_to_fit_the_log_still_equal_one_node(tmp_path: Path) -> None:
    """Over a log whose entries hold at most 3 KB (NATS holds 1 MB unless configured): the front
    splits a request's calls over several `calls` entries, and a shard hands a merged profile
    over in compressed parts, which the adopting shard puts together; the cluster still equals
    one node after every tick. (One entry each went over the limit: a front answered a valid
    batch LOG_UNAVAILABLE for ever, and a shard stopped at the hand-over, at every restart.)
    Integers beyond 64 bits in calls and traits go through the log exactly (orjson refused to
    write them, and read them as floats)."""
    log = LocalLog(max_entry_bytes=3_000)

    async def connect() -> Log:
        return log

    sent = itertools.count()

    def big(cluster: Cluster, single: SingleNode, at: int) -> None:
        # Anonymous and known profiles with rich events, merged a tick later: hand-overs in parts.
        batch = next(sent)
        if batch == 0:
            calls = [{"type": "track", **ids, "event": "Viewed", "messageId": f"big-{k}-{n}-{kind}",
                      "timestamp": "2026-01-01T00:00:00Z", "properties": {"n": n, "blob": "".join(
                          hashlib.sha256(f"{k}-{n}-{i}".encode()).hexdigest() for i in range(6))}}
                     for k in range(8) for n in range(20)
                     for kind, ids in (("anon", {"anonymousId": f"big-anon-{k}"}),
                                       ("user", {"userId": f"big-user-{k}"}))]
            # Integers beyond 64 bits, which one node keeps exactly, in a call and in a trait.
            calls += [{"type": "track", "userId": "big-user-0", "event": "Huge", "messageId": "huge",
                       "properties": {"n": 2**70, "m": -(2**65) - 3}},
                      {"type": "identify", "userId": "big-user-1", "messageId": "huge-trait", "traits": {"n": 2**80}}]
        elif batch == 1:
            calls = [{"type": "identify", "userId": f"big-user-{k}", "anonymousId": f"big-anon-{k}",
                      "messageId": f"big-merge-{k}"} for k in range(8)]
        else:
            return
        single.send(calls)
        cluster.send(calls)

    assert _run(tmp_path, connect, seed=2, between=big) > 0
    split = [decode(e.data) for p in range(3) for e in log.entries(partition_subject(p))]
    assert any(entry["t"] == "adopt" and entry.get("parts", 0) > 1 for entry in split)
    assert max(len(decode(e.data).get("calls", [])) for e in log.entries(CALLS)) < 40  # a batch went in parts


def test_counts_published_twice_are_combined_once(tmp_path: Path) -> None:
    """Every `tallies` entry a shard published so far is appended again (with its tick's
    counts, as after a crash between publishing and recording), before each later tick and
    again after it: the shards take each tick's counts once, and still equal one node."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    def replay(cluster: Cluster, _single: SingleNode, at: int) -> None:
        for p in range(3):
            for entry in log.entries(partition_subject(p)):
                if decode(entry.data)["t"] == "tallies":
                    cluster.loop_run(log.append(entry.subject, entry.data))

    _run(tmp_path, connect, seed=2, between=replay)


def test_jetstream_cluster_equals_one_node(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream on 127.0.0.1."""
    assert _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=4) > 0


def _mover(moves: dict[int, tuple[int, int]]) -> Callable[[Cluster, SingleNode, int], None]:
    """Before the tick of each numbered step, moves a partition (`partition`, `to` process)."""
    seen = [0]

    def between(cluster: Cluster, _single: SingleNode, at: int) -> None:
        seen[0] += 1
        if seen[0] in moves:
            partition, to = moves[seen[0]]
            cluster.move(partition, to)
            assert cluster.path(partition).parent.name == f"process-{to}"

    return between


@pytest.mark.parametrize("seed", [1, 5])
def test_six_partitions_on_three_processes_equal_one_node(tmp_path: Path, seed: int) -> None:
    """Six partitions run two by two by three shard processes (each partition on its own file in
    its process's directory), and still equal one node after every tick, accounts and merges
    across partitions included."""
    assert _run(tmp_path, _local, seed, partitions=6, processes=3) > 0


def test_partitions_moved_mid_stream_equal_one_node(tmp_path: Path) -> None:
    """Six partitions on two processes; partitions are stopped in one process, their files
    copied to the other's directory and started there from the position they hold, between
    calls and ticks (while other partitions keep running): the cluster equals one node after
    every tick, nothing lost or applied twice (`Stored` refuses an event stored twice)."""
    moves = {2: (0, 1), 3: (3, 0), 5: (0, 0), 6: (1, 0)}
    assert _run(tmp_path, _local, seed=3, partitions=6, processes=2, between=_mover(moves)) > 0


def test_jetstream_partition_moved_equals_one_node(tmp_path: Path, nats: NatsServer) -> None:
    """Over NATS JetStream: six partitions on three processes, two moved mid-stream."""
    moves = {3: (2, 0), 5: (4, 2)}
    assert _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=6, partitions=6, processes=3,
                between=_mover(moves)) > 0


async def _local() -> Log:
    return LocalLog()


def test_an_account_audience_deleted_and_created_again_counts_afresh(tmp_path: Path) -> None:
    """An account audience deleted mid-stream and created again with the same key starts from
    nothing published: every shard publishes all its counts for the new definition (not only
    those that moved since the old one's), so the cluster still equals one node after every
    tick."""
    spec = next(spec for spec in ACCOUNTS if spec.key == "all_pro")
    steps: list[str] = []

    def again(cluster: Cluster, single: SingleNode, at: int) -> None:
        """Before a tick, once `all_pro` has members: deletes it and creates it again."""
        if not steps and any(k[0] == "all_pro" and v == "true" for k, v in single.stored().values.items()):
            single.engine.computations.delete(SPACE, "audience", "accounts", "all_pro", False)
            cluster.loop_run(cluster.log.append(CALLS, encode(
                {"t": "delete", "space": SPACE, "kind": "audience", "collection": "accounts", "key": "all_pro",
                 "force": False})))
            single.define(spec)
            cluster.define(spec)
            steps.extend(["deleted", "created"])

    _run(tmp_path, _local, seed=5, between=again)
    assert steps == ["deleted", "created"]
