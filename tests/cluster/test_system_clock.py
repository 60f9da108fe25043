"""Account audiences on the system clock: no barrier; each shard publishes its counts after its own
ticks and combines its accounts as it reads the others' counts, so once the calls stop the
cluster's values converge to one node's (docs/scaling.md, "Account audiences across shards")."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from audiences_server.cluster.entries import decode, partition_of
from audiences_server.cluster.log import JetStreamLog, LocalLog, Log, partition_subject
from audiences_server.engine.computations import Spec
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import Cluster, SingleNode, Stored
from tests.cluster.streams import T0, Stream

PARTITIONS = 3
# Windows of days: the wall time a test takes moves no value.
USERS = [
    Spec("audience", "users", "buyers", definition="event('Order Completed').within(7 days).count() >= 2"),
    Spec("audience", "users", "pro", definition="trait('plan') = 'pro'"),
]
ACCOUNTS = [
    Spec("audience", "accounts", "any_pro", definition="ANY trait('plan') = 'pro'"),
    Spec("audience", "accounts", "all_pro", definition="ALL trait('pro') = true"),
    Spec("audience", "accounts", "quiet", definition="ALL NOT event('Order Completed').within(7 days).count() >= 1"),
    Spec("audience", "accounts", "gold_buying", definition="trait('tier') = 'gold' AND ANY trait('buyers') = true"),
]
# Created mid-stream: every shard backfills its own users' results and accounts.
LATE = Spec("audience", "accounts", "reading",
            definition="ANY event('Page Viewed').within(7 days).count() >= 1 OR trait('tier') = 'iron'")
ACCOUNT_KEYS = {spec.key for spec in [*ACCOUNTS, LATE]}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _state(stored: Stored) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """The memberships (every definition here is an audience), and the account audiences'
    members by their change records (an account whose last record is `entered`).

    Memberships, not stored values: on the system clock a profile may enter and leave between
    two calls on one side and never enter on the other, which stores no value for it."""
    entered: dict[tuple[str, int], bool] = {}
    for pid, changes in stored.changes.items():
        for key, change, _, _, _ in changes:
            if key in ACCOUNT_KEYS:
                entered[(key, pid)] = change == "entered"
    return {found for found, value in stored.values.items() if value == "true"}, \
        {found for found, member in entered.items() if member}


def _converged(cluster: Cluster, single: SingleNode, timeout_s: float = 90) -> None:
    """Polls until the cluster holds one node's memberships and accounts' final change records,
    twice a second apart (both sides still tick on their own)."""
    deadline = time.monotonic() + timeout_s
    agreed = 0
    while agreed < 2:
        ours, theirs = _state(cluster.stored()), _state(single.stored())
        if ours == theirs:
            agreed += 1
        else:
            agreed = 0
            if time.monotonic() > deadline:
                assert ours[0] == theirs[0], "the memberships did not converge"
                assert ours[1] == theirs[1], "the accounts' change records did not converge"
        time.sleep(0.5 if ours == theirs else 0.1)


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int,
         after: Callable[[Cluster], None] | None = None, move: tuple[int, int] | None = None) -> None:
    """The stream to both; with `move` (partition, to process), the partitions run in two
    processes' directories and that partition is moved mid-stream (stopped, its file copied,
    started again from it)."""
    single = SingleNode(tmp_path, T0, manual=False)
    cluster = Cluster(tmp_path, connect, shards=PARTITIONS, start_ms=T0, manual=False,
                      processes=2 if move else None)
    stream = Stream(seed, people=16)
    try:
        for spec in USERS + ACCOUNTS:
            single.define(spec)
            cluster.define(spec)
        for batch in range(16):
            if batch == 8:
                single.define(LATE)
                cluster.define(LATE)
            if move is not None and batch == 11:
                cluster.move(*move)
            calls = stream.calls(_now_ms(), 6)
            single.send(calls)
            cluster.send(calls)
            time.sleep(0.03)  # the shards tick and publish mid-stream
        _converged(cluster, single)
        members, entered = _state(single.stored())
        assert {key for key, _ in entered} == ACCOUNT_KEYS  # every account audience has members
        assert entered == {found for found in members if found[0] in ACCOUNT_KEYS}
        # Some account has linked users on another shard than its own.
        assert any(partition_of(int(account), PARTITIONS) != shard.partition for shard in cluster.shards
                   for (account,) in shard.engine.readers.get().execute("SELECT account_id FROM links"))
        if after is not None:
            after(cluster)
    finally:
        cluster.close()
        single.close()


def test_account_audiences_on_the_system_clock_converge_to_one_node(tmp_path: Path) -> None:
    """Over the in-process log, three shards and one node on the system clock (short tick
    intervals) given the same random stream (group calls linking and unlinking users across
    shards, merges, an account audience created mid-stream, a partition moved to another
    process's directory mid-stream and started again from its file): after the calls stop, every
    membership and each account's last change record per account audience on the cluster are
    one node's.
    Then every `tallies` entry published is appended again to its partition (duplicates, and
    older entries after newer ones): once the shards have read them, nothing has changed."""
    log = LocalLog()

    async def connect() -> Log:
        return log

    def replay(cluster: Cluster) -> None:
        before = cluster.stored()
        replayed = 0
        for p in range(PARTITIONS):
            for entry in log.entries(partition_subject(p)):
                body = decode(entry.data)
                if body["t"] == "tallies":
                    assert "tick" not in body  # no barrier on the system clock
                    assert "sequence" in body
                    cluster.loop_run(log.append(entry.subject, entry.data))
                    replayed += 1
        assert replayed > 0
        ends = {p: log.entries(partition_subject(p))[-1].seq for p in range(PARTITIONS)}
        deadline = time.monotonic() + 30
        while any(shard.position()[0] < ends[shard.partition] for shard in cluster.shards):
            assert time.monotonic() < deadline, "the shards did not read the copies"
            time.sleep(0.05)
        after = cluster.stored()
        assert after.values == before.values
        assert dict(after.changes) == dict(before.changes)

    _run(tmp_path, connect, seed=3, after=replay, move=(1, 0))


def test_jetstream_account_audiences_on_the_system_clock_converge(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream on 127.0.0.1."""
    _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=4)
