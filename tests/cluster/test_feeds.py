"""Change feeds and dead letters through a cluster's front: each shard keeps its own profiles'
records and dead letters; the front merges them, with cursors that hold a position per partition."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import sync_pb2

from audiences_server.api.sync import change_message
from audiences_server.cluster.entries import partition_of
from audiences_server.cluster.feeds import ClusterSync
from audiences_server.cluster.log import JetStreamLog, LocalLog, Log
from audiences_server.cluster.reads import ShardReads
from tests.cluster.conftest import NatsServer, free_port
from tests.cluster.harness import SPACE, SingleNode
from tests.cluster.streams import DEFINITIONS, T0, Stream
from tests.cluster.test_front_admin import FrontDriven
from tests.cluster.test_sync import POLICY, _connection, _drive, _live, _profile_ids, _queued
from tests.conftest import error_reason
from tests.sync.conftest import Receiver, ms, ref, wait_for

FEED = sync_pb2.Destination(key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())


def _local() -> Callable[[], Awaitable[Log]]:
    log = LocalLog()

    async def connect() -> Log:
        return log

    return connect


def _read_all(driven: FrontDriven, cursor: str = "", size: int = 7, key: str = "feed"
              ) -> list[sync_pb2.ChangeRecord]:
    """Every record after `cursor` through the front's ListChanges, page after page."""
    records: list[sync_pb2.ChangeRecord] = []
    token = ""
    while True:
        page = driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(
            destination_key=key, start_cursor=cursor, page_size=size, page_token=token),
            metadata=driven.front.auth("admin"))
        records += page.changes
        token = page.next_page_token
        if not token:
            return records


def _one_node(single: SingleNode) -> list[sync_pb2.ChangeRecord]:
    """One node's feed, all of it, as its API shows it."""
    records, after = [], 0
    while True:
        page, more = single.engine.feed.page(SPACE, "feed", after, 1000)
        records += [change_message(r) for r in page]
        if not more:
            return records
        after = int(page[-1].cursor)


def _per_profile(records: list[sync_pb2.ChangeRecord], ids: dict[str, int]
                 ) -> dict[tuple[int, str], list[tuple[Any, ...]]]:
    """Records by profile (its number, the same on one node and on the cluster) and computation,
    in the order read; cursors and message ids left out (each file numbers its own)."""
    found: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for r in records:
        found[(ids[r.profile_id], r.computation.key)].append((
            r.change_type, r.old_value.SerializeToString(deterministic=True),
            r.new_value.SerializeToString(deterministic=True), r.change_time.ToMilliseconds(),
            sorted((e.type, e.value) for e in r.external_ids)))
    return dict(found)


def _partition(driven: FrontDriven, record: sync_pb2.ChangeRecord) -> int:
    return partition_of(_profile_ids(driven.cluster.identity_engine)[record.profile_id], len(driven.cluster.shards))


def _refused(call: Callable[[], Any], code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert refused.value.code() == code, refused.value
    assert error_reason(refused.value) == reason, refused.value


class Watcher:
    """A WatchChanges stream through the front, read on a thread of the test."""

    def __init__(self, driven: FrontDriven, cursor: str, key: str = "feed", heartbeat_ms: int | None = 1000) -> None:
        self.changes: list[sync_pb2.ChangeRecord] = []
        self.heartbeats: list[sync_pb2.Heartbeat] = []
        self.failure: grpc.RpcError | None = None
        request = sync_pb2.WatchChangesRequest(destination_key=key, start_cursor=cursor)
        if heartbeat_ms is not None:  # unset: the default interval, on the front and on each shard
            request.heartbeat_interval.CopyFrom(ms(heartbeat_ms))
        self._stream = driven.front.sync.WatchChanges(request, metadata=driven.front.auth("admin"))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._stream:
                if item.HasField("change"):
                    self.changes.append(item.change)
                else:
                    self.heartbeats.append(item.heartbeat)
        except grpc.RpcError as failure:
            self.failure = failure

    def stop(self) -> None:
        self._stream.cancel()
        self._thread.join(10)


def _later_tick(driven: FrontDriven, single: SingleNode, at: int) -> None:
    """Calls that put new users into `pro` (on every shard), then a tick."""
    calls = [{"type": "identify", "userId": f"late{i}", "traits": {"plan": "pro"}, "messageId": f"late{i}"}
             for i in range(24)]
    for start in range(0, len(calls), 6):
        single.send(calls[start:start + 6])
        driven.send(calls[start:start + 6])
    single.tick(at)
    driven.tick(at)
    _queued([single.engine, *(shard.engine for shard in driven.cluster.shards)])


def _run(tmp_path: Path, connect: Callable[[], Awaitable[Log]], seed: int, ticks: int) -> None:
    single = SingleNode(tmp_path, T0)
    single.engine.sync.start()
    driven = FrontDriven(tmp_path, connect)
    admin = driven.front.auth("admin")
    try:
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=FEED), metadata=admin)
        single.engine.sync.create_destination(SPACE, "feed", "", True, "grpc_feed", {}, POLICY)
        steps = Stream(seed).steps(ticks, calls_per_tick=30)
        _drive(driven, single, iter(steps), {"feed": {}})
        one = _one_node(single)
        ids_one, ids_many = _profile_ids(single.engine), _profile_ids(driven.cluster.identity_engine)

        # Every record once, per profile and computation in one node's order.
        records = _read_all(driven)
        assert len(one) > 20
        assert len(records) == len(one)
        assert len({r.message_id for r in records}) == len(records)
        assert _per_profile(records, ids_many) == _per_profile(one, ids_one)
        assert {_partition(driven, r) for r in records} == set(range(len(driven.cluster.shards)))
        # Merged by change time, then partition.
        order = [(r.change_time.ToMilliseconds(), _partition(driven, r)) for r in records]
        assert order == sorted(order)
        # A page's records are the same as one big page's; resuming after any record's cursor,
        # or with a page token taken mid-way, reads the rest once.
        assert [r.message_id for r in _read_all(driven, size=1000)] == [r.message_id for r in records]
        for middle in (0, len(records) // 3, len(records) - 1):
            rest = _read_all(driven, records[middle].cursor, size=5)
            assert [r.message_id for r in rest] == [r.message_id for r in records[middle + 1:]]
        page = driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(destination_key="feed", page_size=11),
                                             metadata=admin)
        rest = _read_all(driven, size=11)[11:]
        token = page.next_page_token
        resumed: list[sync_pb2.ChangeRecord] = []
        while token:
            page = driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(
                destination_key="feed", page_size=11, page_token=token), metadata=admin)
            resumed += page.changes
            token = page.next_page_token
        assert [r.message_id for r in resumed] == [r.message_id for r in rest]

        # Reading after a cursor acknowledges up to it on every shard: all delivered, as on one node.
        single.engine.feed.page(SPACE, "feed", int(one[-1].cursor), 1)
        _read_all(driven, records[-1].cursor)

        def delivered() -> bool:
            listed = driven.front.sync.ListConnections(sync_pb2.ListConnectionsRequest(destination_key="feed"),
                                                       metadata=admin).connections
            counts = []
            for connection in listed:
                kind = "audience" if connection.computation.kind == 1 else "computed_trait"
                view = single.engine.sync.connection(SPACE, "feed", (kind, "users", connection.computation.key))
                counts.append((connection.delivery.delivered_count, connection.delivery.pending_count) == (
                    view.status["delivered"], 0) and view.status["pending"] == 0)
            return len(counts) == 4 and all(counts)

        wait_for(delivered, timeout=10, what="every record acknowledged, on one node and through the front")

        # A watch from the end receives the changes of a later tick, from every shard, each once.
        watcher = Watcher(driven, records[-1].cursor)
        try:
            wait_for(lambda: watcher.heartbeats, timeout=10, what="a heartbeat on the quiet stream")
            assert watcher.heartbeats[0].latest_cursor
            assert _read_all(driven, watcher.heartbeats[0].latest_cursor) == []
            _later_tick(driven, single, steps[-1][1] + 3_600_000)
            later = _read_all(driven, records[-1].cursor)
            assert len(later) >= 24
            assert {_partition(driven, r) for r in later} == set(range(len(driven.cluster.shards)))
            wait_for(lambda: len(watcher.changes) >= len(later), timeout=30, what="the later tick watched")
            assert watcher.failure is None
            assert sorted(r.message_id for r in watcher.changes) == sorted(r.message_id for r in later)
            for p in range(len(driven.cluster.shards)):  # each partition's records in its own order
                assert [r.message_id for r in watcher.changes if _partition(driven, r) == p] == [
                    r.message_id for r in later if _partition(driven, r) == p]
            # Watched is not acknowledged; AckChanges with the front's cursor acknowledges every
            # partition's records up to it, on each shard.
            def pending() -> int:
                listed = driven.front.sync.ListConnections(sync_pb2.ListConnectionsRequest(destination_key="feed"),
                                                           metadata=admin).connections
                return sum(c.delivery.pending_count for c in listed)

            assert pending() > 0  # the last page read above, and what was watched
            driven.front.sync.AckChanges(sync_pb2.AckChangesRequest(
                destination_key="feed", cursor=watcher.changes[-1].cursor), metadata=admin)
            assert pending() == 0
            # Resuming after the last record watched reads nothing more.
            assert _read_all(driven, watcher.changes[-1].cursor) == []
        finally:
            watcher.stop()
        every = _read_all(driven)
        assert _per_profile(every, _profile_ids(driven.cluster.identity_engine)) == _per_profile(
            _one_node(single), _profile_ids(single.engine))
    finally:
        driven.close()
        single.close()


def test_change_feed_through_a_front(tmp_path: Path) -> None:
    """Over the in-process log: a feed destination made through the front; after the random
    equality stream, ListChanges through the front gives each profile's records in one node's
    order, each once, and resumes from any cursor or page token; WatchChanges stays live."""
    _run(tmp_path, _local(), seed=11, ticks=6)


def test_change_feed_through_a_front_over_jetstream(tmp_path: Path, nats: NatsServer) -> None:
    """The same over NATS JetStream."""
    _run(tmp_path, lambda: JetStreamLog.connect(nats.url), seed=12, ticks=4)


def test_bad_cursors_and_unavailable_shards(tmp_path: Path) -> None:
    """A front refuses a cursor it did not issue, one of another feed, and a bad page token, with
    their reasons; a shard that does not answer makes the feed UNAVAILABLE, SHARD_UNAVAILABLE,
    paged or watched, within the timeout."""
    driven = FrontDriven(tmp_path, _local())
    admin = driven.front.auth("admin")
    try:
        for key in ("feed", "other"):
            driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
                destination=sync_pb2.Destination(key=key, grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=admin)
        wait_for(lambda: all(len(s.engine.sync.destinations(SPACE, "", 10)) == 2 for s in driven.cluster.shards),
                 timeout=30, what="the feeds on every shard")
        watcher = Watcher(driven, "", key="other")
        try:
            wait_for(lambda: watcher.heartbeats, timeout=10, what="a heartbeat")
        finally:
            watcher.stop()
        other = watcher.heartbeats[0].latest_cursor
        assert _read_all(driven, other, key="other") == []
        for cursor, reason in (("12", "CURSOR_INVALID"), ("garbled!", "CURSOR_INVALID"),
                               (other[:-2] + ("AA" if other[-2:] != "AA" else "BB"), "CURSOR_INVALID"),
                               (other, "CURSOR_OTHER_FEED")):
            _refused(lambda c=cursor: driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(
                destination_key="feed", start_cursor=c), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT, reason)
            stream = driven.front.sync.WatchChanges(sync_pb2.WatchChangesRequest(
                destination_key="feed", start_cursor=cursor), metadata=admin)
            _refused(lambda s=stream: next(iter(s)), grpc.StatusCode.INVALID_ARGUMENT, reason)
        _refused(lambda: driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(
            destination_key="feed", page_token="nope"), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID")
        _refused(lambda: driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(destination_key="missing"),
                                                       metadata=admin), grpc.StatusCode.NOT_FOUND,
                 "DESTINATION_NOT_FOUND")

        # A front whose second partition's endpoint does not answer.
        engine = driven.front.server.engine
        kept = engine.cluster_sync
        dead = ShardReads([driven.reads.addresses[0], f"127.0.0.1:{free_port()}", driven.reads.addresses[2]])
        engine.cluster_sync = ClusterSync(engine, dead, timeout_s=1)
        try:
            _refused(lambda: driven.front.sync.ListChanges(sync_pb2.ListChangesRequest(destination_key="feed"),
                                                           metadata=admin), grpc.StatusCode.UNAVAILABLE,
                     "SHARD_UNAVAILABLE")
            stream = driven.front.sync.WatchChanges(sync_pb2.WatchChangesRequest(destination_key="feed"),
                                                    metadata=admin, timeout=20)
            _refused(lambda: next(iter(stream)), grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE")
            _refused(lambda: driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(), metadata=admin),
                     grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE")
        finally:
            engine.cluster_sync = kept
            dead.close()
    finally:
        driven.close()


def test_a_watch_ends_when_a_shard_stops_serving(tmp_path: Path) -> None:
    """A watch with the default heartbeat interval (unset, as `audiences watch` sends it) is
    served; a shard's stream that breaks ends it with SHARD_UNAVAILABLE (no hang)."""
    driven = FrontDriven(tmp_path, _local())
    admin = driven.front.auth("admin")
    try:
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=FEED), metadata=admin)
        wait_for(lambda: all(s.engine.sync.destinations(SPACE, "", 10) for s in driven.cluster.shards),
                 timeout=30, what="the feed on every shard")
        watcher = Watcher(driven, "", heartbeat_ms=None)
        time.sleep(1.0)
        assert watcher.failure is None  # each shard's stream was opened with the default interval
        server, _, _ = driven.endpoints[1]
        driven.cluster.loop_run(server.stop(0))
        wait_for(lambda: watcher.failure is not None, timeout=10, what="the watch ended")
        assert watcher.failure is not None
        assert watcher.failure.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(watcher.failure) == "SHARD_UNAVAILABLE"
        watcher.stop()
    finally:
        driven.close()


def test_dead_letters_through_a_front(tmp_path: Path) -> None:
    """A receiver that refuses everything makes dead letters on several shards: the front lists
    them all, paged, with ids naming their partition, and redrives some, then the rest, on the
    shards that hold them."""
    driven = FrontDriven(tmp_path, _local())
    admin = driven.front.auth("admin")
    receiver = Receiver()
    failing = [True]
    receiver.fail_when = lambda body: 400 if failing[0] else None
    receiver.start()
    shards = [s.engine for s in driven.cluster.shards]
    try:
        driven.define(next(spec for spec in DEFINITIONS if spec.key == "pro"))  # trait('plan') = 'pro'
        policy = sync_pb2.DeliveryPolicy(max_attempts=5, initial_backoff=ms(20), max_backoff=ms(100),
                                         request_timeout=ms(5000))
        driven.front.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="hook", webhook=sync_pb2.WebhookConfig(url=receiver.url), delivery_policy=policy)), metadata=admin)
        driven.front.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(
            connection=_connection("audience", "pro", send_identify=True)), metadata=admin)
        _live(shards, "audience", "pro", 1)
        people = 18
        driven.send([{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(people)])
        driven.tick(T0 + 60_000)

        def parked() -> list[int]:
            return [e.sync.connection(SPACE, "hook", ("audience", "users", "pro")).status["dead"] for e in shards]

        wait_for(lambda: sum(parked()) == people, timeout=30, what="every delivery parked")
        assert sum(1 for count in parked() if count) >= 2

        letters: list[sync_pb2.DeadLetter] = []
        token = ""
        while True:
            page = driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(
                destination_key="hook", computation=ref("pro"), page_size=4, page_token=token), metadata=admin)
            assert len(page.dead_letters) <= 4
            letters += page.dead_letters
            token = page.next_page_token
            if not token:
                break
        assert len(letters) == people
        ids = [letter.id for letter in letters]
        assert len(set(ids)) == people
        owners = _profile_ids(driven.cluster.identity_engine)
        for letter in letters:
            partition = int(letter.id.removeprefix("dlq_p").split("-")[0])
            assert partition_of(owners[letter.profile_id], len(shards)) == partition
            assert letter.payload["type"] == "identify"
            assert letter.attempt_count == 1
        assert {letter.payload["userId"] for letter in letters} == {f"u{i}" for i in range(people)}
        on_shards = {f"dlq_p{p}-{v.delivery_id}" for p, e in enumerate(shards)
                     for v in e.sync.dead_letters(SPACE, "hook", None, 0, 1000)}
        assert set(ids) == on_shards
        whole = driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(page_size=people), metadata=admin)
        assert [d.id for d in whole.dead_letters] == ids
        assert not whole.next_page_token  # a full last page says there is no more

        for bad, code, reason in (
                ("dlq_3", grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),
                (f"dlq_p{len(shards)}-1", grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),
                ("dlq_p\u0663-1", grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),  # an Arabic-Indic 3
                ("dlq_p0-\u0663", grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),
                (f"dlq_p0-{2**63}", grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),
                ("dlq_p0-" + "9" * 5_000, grpc.StatusCode.INVALID_ARGUMENT, "DEAD_LETTER_ID_INVALID"),
                ("dlq_p0-999999", grpc.StatusCode.NOT_FOUND, "DEAD_LETTER_NOT_FOUND")):
            _refused(lambda b=bad: driven.front.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(
                destination_key="hook", dead_letter_ids=[ids[0], b]), metadata=admin), code, reason)
        assert sum(parked()) == people  # a refused redrive put nothing back
        _refused(lambda: driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(
            destination_key="hook", page_token="x"), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID")
        _refused(lambda: driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(
            destination_key="nope"), metadata=admin), grpc.StatusCode.NOT_FOUND, "DESTINATION_NOT_FOUND")

        failing[0] = False
        first = {letter.id.removeprefix("dlq_p").split("-")[0]: letter for letter in letters}
        chosen = list(first.values())[:2]
        assert len({c.id.split("-")[0] for c in chosen}) == 2  # from two partitions
        answer = driven.front.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(
            destination_key="hook", dead_letter_ids=[c.id for c in chosen]), metadata=admin)
        assert answer.redriven_count == 2
        wait_for(lambda: len(receiver.calls()) == 2, timeout=30, what="the two redriven delivered")
        assert {c["userId"] for c in receiver.calls()} == {c.payload["userId"] for c in chosen}
        wait_for(lambda: sum(parked()) == people - 2, timeout=30, what="two fewer dead letters")
        rest = driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(destination_key="hook"),
                                                 metadata=admin).dead_letters
        assert sorted(d.id for d in rest) == sorted(set(ids) - {c.id for c in chosen})
        answer = driven.front.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="hook"),
                                                      metadata=admin)
        assert answer.redriven_count == people - 2
        wait_for(lambda: len(receiver.calls()) == people, timeout=30, what="every redriven delivery")
        assert sorted(c["userId"] for c in receiver.calls()) == sorted(f"u{i}" for i in range(people))
        wait_for(lambda: sum(parked()) == 0, timeout=30, what="no dead letter left")
        empty = driven.front.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(destination_key="hook"),
                                                  metadata=admin)
        assert (list(empty.dead_letters), empty.next_page_token) == ([], "")
    finally:
        driven.close()
        receiver.stop()

