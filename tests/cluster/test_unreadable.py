"""An entry that is not one (bytes no front wrote) is skipped, never a partition stopped."""

from __future__ import annotations

from pathlib import Path

from audiences_server.cluster.log import CALLS, LocalLog, Log, partition_subject
from tests.cluster.harness import Cluster
from tests.cluster.streams import T0


async def _local() -> Log:
    return LocalLog()


def test_unreadable_entries_are_logged_and_skipped(tmp_path: Path) -> None:
    """Garbage on `aud.calls` and on a partition is passed over by the identity stage and the
    shard, and the calls after it are stored."""
    cluster = Cluster(tmp_path, _local, shards=1, start_ms=T0)
    try:
        for subject in (CALLS, partition_subject(0)):
            cluster.loop_run(cluster.log.append(subject, b"\xff not json"))
        cluster.send([{"type": "track", "userId": "u1", "event": "After", "messageId": "after"}])
        cluster.tick(T0 + 1)
        assert [message for _, message, _ in cluster.stored().events] == ["after"]
    finally:
        cluster.close()
