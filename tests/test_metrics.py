"""`/metrics`, `/healthz` and `/readyz` of a real server, read over HTTP after known traffic."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, ingest_pb2, profiles_pb2, sync_pb2, tracking_pb2
from google.protobuf import timestamp_pb2
from prometheus_client.parser import text_string_to_metric_families

from audiences_server.core.tracking import format_time
from tests.conftest import Running, start
from tests.evaluator.conftest import HOUR, T0
from tests.sync.conftest import Receiver, ms, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

INGEST = "/audiences.v1.IngestService/"
LIST_TRAITS = "/audiences.v1.ProfilesService/ListTraits"


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[Running]:
    """A server of its own on a manual clock: nothing ticks or writes unless the test asks."""
    running = start(tmp_path / "audiences.db", manual_clock=True)
    running.server.engine.clock.set(T0)
    yield running
    running.channel.close()
    running.server.stop(grace=1)


def scrape(running: Running) -> Samples:
    """GET /metrics and every sample in it, by name and labels."""
    with urllib.request.urlopen(f"{running.http_url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(samples: Samples, name: str, **fixed: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one name whose labels include `fixed`, by their other labels."""
    return {
        tuple((k, v) for k, v in labels if k not in fixed): value
        for (found, labels), value in samples.items()
        if found == name and all((k, v) in labels for k, v in fixed.items())
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value."""
    return samples[(name, tuple(sorted(labels.items())))]


def get(running: Running, path: str) -> int:
    """The status of a GET over HTTP."""
    try:
        with urllib.request.urlopen(f"{running.http_url}{path}", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def batch_json(running: Running, *calls: dict[str, Any]) -> ingest_pb2.BatchJsonResponse:
    body = json.dumps({"batch": list(calls)}).encode()
    return running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=running.auth("write"))


def list_traits(running: Running, user_id: str, metadata: Any) -> profiles_pb2.ListTraitsResponse:
    ref = common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id=f"user_id:{user_id}")
    return running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(profile=ref), metadata=metadata)


def create_audience(running: Running, key: str, definition: str) -> None:
    audience = admin_pb2.Audience(key=key, collection=common_pb2.COLLECTION_USERS, definition=definition)
    running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=audience), metadata=running.auth("admin"))


def run_tick(running: Running) -> admin_pb2.Tick:
    request = admin_pb2.RunTickRequest(until_idle=True)
    return running.admin.RunTick(request, metadata=running.auth("admin")).ticks[0]


def set_clock(running: Running, at_ms: int) -> None:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(at_ms)
    running.admin.SetClock(admin_pb2.SetClockRequest(clock_time=stamp), metadata=running.auth("admin"))


# -- calls and tracking messages ------------------------------------------------------------------


def _stream(*bodies: dict[str, Any]) -> Iterator[ingest_pb2.StreamCallsRequest]:
    for body in bodies:
        yield ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(json=json.dumps(body).encode()))


def test_calls_and_tracking_messages_are_counted_exactly(manual: Running) -> None:
    """Every gRPC and HTTP call is counted once by method and code, with its latency; every
    tracking call once by outcome (accepted, duplicate, rejected by reason), whichever path
    (batch, unary call, stream) it came by."""
    reply = batch_json(
        manual,
        {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u2", "messageId": "m2", "event": "Order Completed"},
        {"type": "identify", "userId": "u3", "messageId": "m3"},
        {"type": "track", "messageId": "m4", "event": "Order Completed"},
        {"type": "bogus", "userId": "u4"},
    )
    assert (reply.accepted_count, reply.rejected_count) == (3, 2)
    assert batch_json(manual, {"type": "identify", "userId": "u1", "messageId": "m1"}).duplicate_count == 1
    with pytest.raises(grpc.RpcError) as refused:
        manual.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(event="Signed In")),
                            metadata=manual.auth("write"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    streamed = manual.ingest.StreamCalls(_stream({"type": "track", "userId": "u5", "event": "Signed In"},
                                                 {"type": "track", "event": "Signed In"}),
                                         metadata=manual.auth("write"))
    assert (streamed.accepted_count, streamed.rejected_count) == (1, 1)
    for _ in range(2):
        assert list_traits(manual, "u1", manual.auth("read")).traits
    for user, metadata, code in (("nobody", manual.auth("read"), grpc.StatusCode.NOT_FOUND),
                                 ("u1", (), grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as failed:
            list_traits(manual, user, metadata)
        assert failed.value.code() == code
    assert [get(manual, "/healthz") for _ in range(2)] == [200, 200]
    assert get(manual, "/no-such-page") == 404

    scrape(manual)  # a scrape is counted once answered: the next one shows it
    samples = scrape(manual)

    assert series(samples, "audiences_messages_total") == {
        (("outcome", "accepted"), ("reason", "")): 4,
        (("outcome", "duplicate"), ("reason", "")): 1,
        (("outcome", "rejected"), ("reason", "no_user_anon_id")): 3,
        (("outcome", "rejected"), ("reason", "type_not_valid")): 1,
    }
    assert series(samples, "audiences_calls_total", transport="grpc") == {
        (("code", "OK"), ("method", INGEST + "BatchJson")): 2,
        (("code", "INVALID_ARGUMENT"), ("method", INGEST + "Track")): 1,
        (("code", "OK"), ("method", INGEST + "StreamCalls")): 1,
        (("code", "OK"), ("method", LIST_TRAITS)): 2,
        (("code", "NOT_FOUND"), ("method", LIST_TRAITS)): 1,
        (("code", "UNAUTHENTICATED"), ("method", LIST_TRAITS)): 1,
    }
    assert series(samples, "audiences_calls_total", transport="http") == {
        (("code", "200"), ("method", "GET /healthz")): 2,
        (("code", "404"), ("method", "GET unmatched")): 1,
        (("code", "200"), ("method", "GET /metrics")): 1,
    }
    latency = series(samples, "audiences_call_duration_seconds_count", transport="grpc")
    assert latency[(("method", LIST_TRAITS),)] == 4
    assert latency[(("method", INGEST + "BatchJson"),)] == 2
    fastest = value(samples, "audiences_call_duration_seconds_bucket", transport="grpc", method=LIST_TRAITS,
                    le="+Inf")
    assert fastest == 4
    assert value(samples, "audiences_call_duration_seconds_sum", transport="grpc", method=LIST_TRAITS) > 0


# -- the evaluator ----------------------------------------------------------------------------


def test_ticks_and_the_evaluation_backlog(manual: Running) -> None:
    """Each tick is observed once (duration, profiles evaluated, values changed), and the
    backlog shows touched profiles, backfills and due (definition, profile) pairs until a tick
    takes them."""
    batch_json(
        manual,
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u2", "event": "Order Completed", "timestamp": format_time(T0 - 60_000)},
        {"type": "identify", "userId": "u3", "traits": {"plan": "free"}},
    )
    create_audience(manual, "pro", "trait('plan') = 'pro'")
    create_audience(manual, "recent", "event('Order Completed').within(1 hours).count() >= 1")
    before = scrape(manual)
    assert value(before, "audiences_evaluator_touched_profiles") == 3
    assert value(before, "audiences_evaluator_backfilling_definitions") == 2
    assert value(before, "audiences_tick_duration_seconds_count") == 0

    first = run_tick(manual)
    after = scrape(manual)
    assert value(after, "audiences_evaluator_touched_profiles") == 0
    assert value(after, "audiences_evaluator_backfilling_definitions") == 0
    assert value(after, "audiences_evaluator_due_waiting") == 0
    assert first.values_changed == 2  # u1 enters pro, u2 enters recent

    set_clock(manual, T0 + 2 * HOUR)  # u2's order leaves the window
    assert value(scrape(manual), "audiences_evaluator_due_waiting") == 1
    second = run_tick(manual)
    assert second.values_changed == 1
    samples = scrape(manual)
    assert value(samples, "audiences_evaluator_due_waiting") == 0
    assert value(samples, "audiences_tick_duration_seconds_count") == 2
    assert value(samples, "audiences_tick_duration_seconds_sum") == pytest.approx(
        first.duration.ToNanoseconds() / 1e9 + second.duration.ToNanoseconds() / 1e9, abs=1e-3)
    assert value(samples, "audiences_tick_profiles_count") == 2
    assert value(samples, "audiences_tick_profiles_sum") == first.profiles_evaluated + second.profiles_evaluated
    assert value(samples, "audiences_values_changed_total") == 3


# -- delivery -----------------------------------------------------------------------------------


def _webhook(running: Running, key: str, url: str, policy: sync_pb2.DeliveryPolicy) -> None:
    destination = sync_pb2.Destination(key=key, webhook=sync_pb2.WebhookConfig(url=url), delivery_policy=policy)
    running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=destination),
                                   metadata=running.auth("admin"))
    computation = common_pb2.ComputationRef(kind=common_pb2.COMPUTATION_KIND_AUDIENCE,
                                            collection=common_pb2.COLLECTION_USERS, key="pro")
    connection = sync_pb2.Connection(destination_key=key, computation=computation, send_identify=True)
    running.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=connection),
                                    metadata=running.auth("admin"))


def test_delivery_lag_and_dead_letters_per_destination(manual: Running) -> None:
    """A destination whose receiver refuses a change (400) shows one dead letter and no lag; one
    whose receiver fails (500) and waits to retry shows the change pending, with a lag that
    grows while it waits."""
    batch_json(manual, {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    create_audience(manual, "pro", "trait('plan') = 'pro'")
    run_tick(manual)
    refusing, failing = Receiver(fail_when=lambda body: 400), Receiver(fail_when=lambda body: 500)
    refusing.start()
    failing.start()
    try:
        queued_after = time.time()
        _webhook(manual, "refusing", refusing.url, sync_pb2.DeliveryPolicy())
        _webhook(manual, "failing", failing.url,
                 sync_pb2.DeliveryPolicy(initial_backoff=ms(60_000), max_backoff=ms(60_000)))
        wait_for(lambda: failing.attempts >= 1, what="the failing receiver's first attempt")
        labels = {"space": "default", "kind": "webhook"}
        samples = wait_for(lambda: (found := scrape(manual)) and
                           value(found, "audiences_delivery_dead_letters", destination="refusing", **labels) == 1
                           and found, what="the dead letter")
        assert value(samples, "audiences_delivery_pending", destination="refusing", **labels) == 0
        assert value(samples, "audiences_delivery_lag_seconds", destination="refusing", **labels) == 0
        assert value(samples, "audiences_delivery_dead_letters", destination="failing", **labels) == 0
        assert value(samples, "audiences_delivery_pending", destination="failing", **labels) == 1
        lag = value(samples, "audiences_delivery_lag_seconds", destination="failing", **labels)
        assert 0 <= lag <= time.time() - queued_after + 0.01
        time.sleep(0.3)
        later = value(scrape(manual), "audiences_delivery_lag_seconds", destination="failing", **labels)
        assert later >= lag + 0.29
    finally:
        refusing.stop()
        failing.stop()


# -- queues in memory and files -----------------------------------------------------------------


def test_writer_queue_and_ingest_backlog_while_the_writer_is_busy(manual: Running) -> None:
    """While the writer is held, the tracking calls waiting for it and the one writer job they
    share show at the next scrape; once it is free both are back to zero and the group sizes
    count every job committed."""
    writer = manual.server.engine.writer
    held, release = threading.Event(), threading.Event()
    writer.submit(lambda conn: (held.set(), release.wait(10)))
    assert held.wait(10)
    senders = [
        threading.Thread(target=batch_json, args=(manual, *({"type": "track", "userId": f"u{i}", "event": "E"}
                                                            for i in range(3)))),
        threading.Thread(target=manual.ingest.Identify, args=(ingest_pb2.IdentifyRequest(
            identify=tracking_pb2.Identify(user_id="u9")),), kwargs={"metadata": manual.auth("write")}),
    ]
    try:
        groups_before = value(scrape(manual), "audiences_writer_group_size_count")
        for sender in senders:
            sender.start()
        busy = wait_for(lambda: (found := scrape(manual)) and value(found, "audiences_ingest_waiting_calls") == 4
                        and found, what="four calls waiting")
        assert value(busy, "audiences_writer_queue_depth") == 1
    finally:
        release.set()
    for sender in senders:
        sender.join(10)
    idle = scrape(manual)
    assert value(idle, "audiences_ingest_waiting_calls") == 0
    assert value(idle, "audiences_writer_queue_depth") == 0
    assert value(idle, "audiences_messages_total", outcome="accepted", reason="") == 4
    # The held job's group, then the ingest job's.
    assert value(idle, "audiences_writer_group_size_count") == groups_before + 2
    assert value(idle, "audiences_writer_group_size_bucket", le="+Inf") == groups_before + 2
    assert value(idle, "audiences_writer_group_duration_seconds_count") == groups_before + 2
    assert value(idle, "audiences_writer_group_duration_seconds_sum") >= 0


def test_database_size_is_the_file_and_its_wal(manual: Running) -> None:
    """The database's size is read at each scrape from its file and its write-ahead log."""
    batch_json(manual, *({"type": "identify", "userId": f"u{i}", "traits": {"n": i}} for i in range(200)))
    samples = scrape(manual)
    assert value(samples, "audiences_database_bytes", file="main") == os.path.getsize(manual.db)
    assert value(samples, "audiences_database_bytes", file="wal") == os.path.getsize(f"{manual.db}-wal") > 0


def _on_every_pool_thread(running: Running, statement: str) -> None:
    """Runs a statement on the read connection of each thread of the server's pool."""
    engine, pool = running.server.engine, running.server.pool
    everyone = threading.Barrier(engine.settings.workers)

    def run() -> None:
        everyone.wait(10)  # each task holds its thread until all have one: every thread runs one
        engine.readers.get().execute(statement)

    for task in [pool.submit(run) for _ in range(engine.settings.workers)]:
        task.result(10)


def test_a_scrape_works_while_its_thread_reads_inside_a_snapshot(manual: Running) -> None:
    """A response stream (ExportAudience) keeps a read snapshot open on a pool thread's connection
    between its chunks; a scrape landing on that thread still answers, with its values."""
    batch_json(manual, {"type": "identify", "userId": "u1"})
    _on_every_pool_thread(manual, "BEGIN")
    try:
        assert value(scrape(manual), "audiences_evaluator_touched_profiles") == 1
    finally:
        _on_every_pool_thread(manual, "COMMIT")


# -- health -------------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_while_running_and_readyz_refuses_once_stopping(tmp_path: Path) -> None:
    """Both answer 200 while the server runs; once shutdown starts, `/readyz` answers 503 while
    in-flight calls finish (a call waiting on the held writer keeps the server stopping)."""
    running = start(tmp_path / "audiences.db", manual_clock=True)
    held, release = threading.Event(), threading.Event()
    in_flight = threading.Thread(target=batch_json, args=(running, {"type": "identify", "userId": "u1"}))
    stopping = threading.Thread(target=running.server.stop, kwargs={"grace": 10})
    try:
        assert (get(running, "/healthz"), get(running, "/readyz")) == (200, 200)
        running.server.engine.writer.submit(lambda conn: (held.set(), release.wait(10)))
        assert held.wait(10)
        in_flight.start()
        wait_for(lambda: running.server.engine.ingest.waiting == 1, what="the call in flight")
        stopping.start()
        wait_for(lambda: get(running, "/readyz") == 503, what="/readyz refusing")
        assert get(running, "/healthz") == 200
    finally:
        release.set()
        if stopping.ident is None:  # failed before shutdown started
            running.server.stop(grace=1)
        else:
            stopping.join(15)
        running.channel.close()
    in_flight.join(10)
    assert not stopping.is_alive()
