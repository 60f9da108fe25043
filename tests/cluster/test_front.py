"""The server as a front: its ingest paths validate as on one node, then append to the log, and the
shards store what it accepted."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from audiences.v1 import ingest_pb2

from audiences_server.cluster.front import LogBridge
from audiences_server.cluster.log import JetStreamLog
from audiences_server.engine.ingest import Sender
from tests.cluster.conftest import NatsServer
from tests.cluster.harness import SPACE, Cluster, SingleNode
from tests.cluster.streams import T0
from tests.conftest import bearer, start

CALLS = [
    {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"plan": "pro"}},
    {"type": "track", "userId": "u2", "messageId": "m2", "event": "Signed Up"},
    {"type": "track", "userId": "u3", "messageId": "m3"},  # no event name: refused
]


def test_server_as_front_appends_what_it_accepts(tmp_path: Path, nats: NatsServer) -> None:
    """BatchJson and the HTTP tracking API answer as one node does (the call without an event is
    rejected with the same reason, the others accepted), and after a tick the shards hold exactly
    the accepted calls, each once, while the front's own file holds none."""
    cluster = Cluster(tmp_path, lambda: JetStreamLog.connect(nats.url), shards=2, start_ms=T0)
    front = start(tmp_path / "front.db", manual_clock=True, clock_start=T0)
    single = SingleNode(tmp_path, T0)
    try:
        front.server.engine.ingest.elsewhere = LogBridge(cluster.log, cluster.loop, front.server.engine.clock)
        reply = front.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": CALLS}).encode()),
                                       metadata=bearer(front.tokens["write"]))
        expected = single.engine.ingest.record(Sender(SPACE), CALLS)
        assert [(r.message_id, r.reason) for r in reply.results] == [(r.message_id, r.reason) for r in expected]
        assert (reply.accepted_count, reply.rejected_count) == (2, 1)
        http = httpx.post(f"{front.http_url}/v1/track", auth=(front.tokens["write"], ""),
                          json={"userId": "u4", "event": "Viewed", "messageId": "m4"})
        assert http.status_code == 200, http.text
        cluster.tick(T0 + 1)
        events = cluster.stored().events
        assert sorted(message for _, message, _ in events) == ["m1", "m2", "m4"]
        assert front.server.engine.readers.get().execute("SELECT count(*) FROM events").fetchone()[0] == 0
    finally:
        front.channel.close()
        front.server.stop(grace=1)
        cluster.close()
        single.close()
