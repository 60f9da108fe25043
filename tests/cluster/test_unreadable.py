"""An entry that is not one (bytes no role wrote) is skipped, never a partition stopped."""

from __future__ import annotations

from pathlib import Path

from audiences_server.cluster.entries import decode
from audiences_server.cluster.log import CALLS, LocalLog, partition_subject
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
