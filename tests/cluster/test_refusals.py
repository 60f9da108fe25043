"""What the roles refuse or pass over: entries that are not entries, definitions not built yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from audiences_server.cluster.entries import decode
from audiences_server.cluster.front import Front
from audiences_server.cluster.log import CALLS, LocalLog, partition_subject
from audiences_server.engine.clock import ManualClock
from audiences_server.engine.computations import Spec
from audiences_server.errors import InvalidArgument, Unimplemented
from tests.cluster.harness import Cluster
from tests.cluster.streams import T0


def test_unreadable_entries_are_logged_and_skipped(tmp_path: Path) -> None:
    """Garbage on `aud.calls` and on a partition is passed over by the identity stage and the
    shard, the calls after it are stored, and the shard still knows the last identity serial it
    applied: a call entry published again after the garbage is not stored twice."""
    log = LocalLog()

    async def connect() -> LocalLog:
        return log

    cluster = Cluster(tmp_path, connect, shards=1, start_ms=T0)
    try:
        cluster.loop_run(log.append(CALLS, b"\xff not json"))
        cluster.send([{"type": "track", "userId": "u1", "event": "After", "messageId": "after"}])
        cluster.tick(T0 + 1)
        call = next(e for e in log.entries(partition_subject(0)) if decode(e.data)["t"] == "call")
        cluster.loop_run(log.append(partition_subject(0), b"\xff not json"))
        cluster.loop_run(log.append(partition_subject(0), call.data))  # as if the identity stage published it again
        cluster.tick(T0 + 2)
        assert [message for _, message, _ in cluster.stored().events] == ["after"]
    finally:
        cluster.close()


def test_account_definitions_are_refused_as_unimplemented(tmp_path: Path) -> None:
    """A front refuses an account definition with UNIMPLEMENTED (shards do not combine their
    users' results yet) and a definition that does not check with INVALID_ARGUMENT, appending
    neither, while a user definition goes to the log."""

    async def scenario() -> None:
        log = LocalLog()
        front = Front(log, ManualClock(T0))
        with pytest.raises(Unimplemented) as refused:
            await front.define(1, Spec("audience", "accounts", "big", definition="trait('size') > 10"))
        assert refused.value.reason == "CLUSTER_ACCOUNTS_UNIMPLEMENTED"
        with pytest.raises(InvalidArgument):
            await front.define(1, Spec("audience", "users", "bad", definition="event('x').count( >= 1"))
        await front.define(1, Spec("audience", "users", "good", definition="trait('plan') = 'pro'"))
        assert [decode(e.data)["spec"]["key"] for e in log.entries(CALLS)] == ["good"]

    asyncio.run(scenario())
