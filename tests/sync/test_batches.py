"""LIST-style webhooks and Segment: every request within `batch_size` calls and 500 KB, a change
with more calls than that sent in several, and a batch that failed sent again as it was."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc

from audiences_server.engine.destinations import batching
from audiences_server.engine.destinations.webhook import batch_id
from audiences_server.testing import ServerProcess
from tests.conftest import bearer
from tests.evaluator.conftest import Space
from tests.sync.conftest import SECRET, Receiver, admin, connect, ms, ref, wait_for, webhook

# Attempts enough that a batch failing on purpose for a while is retried, not parked.
PATIENT = sync_pb2.DeliveryPolicy(max_attempts=50, initial_backoff=ms(20), max_backoff=ms(200),
                                  request_timeout=ms(2000))


def _destination(space: Space, kind: str, url: str, batch_size: int) -> None:
    """A Segment destination, or a signed LIST-style webhook, sending batches of `batch_size`."""
    if kind == "segment":
        config = sync_pb2.SegmentConfig(base_url=url, write_key="wk", batch_size=batch_size, batch_interval=ms(50))
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="out", segment=config, delivery_policy=PATIENT)), metadata=admin(space))
    else:
        webhook(space, "out", url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_size=batch_size,
                batch_interval=ms(50), policy=PATIENT)


def _account(space: Space, users: list[str]) -> None:
    """An account `acme` in the account audience `gold`, its users linked to it."""
    space.send({"type": "group", "userId": users[0], "groupId": "acme", "traits": {"tier": "gold"}},
               *({"type": "group", "userId": u, "groupId": "acme"} for u in users[1:]))
    space.define("gold", "trait('tier') = 'gold'", collection="accounts")
    space.tick()


def _delivered(space: Space) -> int:
    request = sync_pb2.GetConnectionRequest(destination_key="out", computation=ref("gold", collection="accounts"))
    return space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery.delivered_count


@pytest.mark.parametrize(("kind", "batch_size"), [("segment", 100), ("segment", 500), ("list", 100), ("list", 1000)])
def test_a_change_with_more_calls_than_a_batch_holds_goes_in_several(space: Space, receiver: Receiver, kind: str,
                                                                     batch_size: int) -> None:
    """An account's entry is a group call and, per linked user, an identify and a track: with
    150 users whose 500-character ids are CJK (three bytes each), 301 calls of about 1 MB. They
    go in requests of at most `batch_size` calls and 500,000 bytes (by count at 100, by bytes
    at 500 or 1,000), in order, each call once; the change is delivered once all have arrived."""
    users = [f"{n:03d}" + "漢" * 497 for n in range(150)]
    _account(space, users)
    _destination(space, kind, receiver.url, batch_size)
    connect(space, "out", "gold", collection="accounts", send_group=True, send_identify=True, send_track=True)
    calls = wait_for(lambda: len(receiver.calls()) >= 301 and receiver.calls(), what="every call")
    assert len(receiver.accepted) > 1
    assert max(len(r.body["batch"]) for r in receiver.accepted) <= batch_size
    assert max(len(r.raw) for r in receiver.accepted) <= 500_000
    assert len({c["messageId"] for c in calls}) == len(calls) == 301
    assert calls[0]["type"] == "group"
    assert [(c["type"], c["userId"]) for c in calls[1:]] == [(t, u) for u in users for t in ("identify", "track")]
    assert wait_for(lambda: _delivered(space) == 1, what="the change recorded as delivered")


def test_a_change_sent_in_several_requests_is_retried_whole_under_the_same_ids(space: Space,
                                                                               receiver: Receiver) -> None:
    """When the second of three requests of one change fails, the change is retried whole: the
    first request goes again with the same calls and webhook-id, so a receiver that dedups on
    it (the docs' example) processes every call once."""
    receiver.verifying = True
    receiver.failures = [None, 503]  # the first request accepted, the second refused once
    _account(space, [f"u{n:02d}" for n in range(25)])
    _destination(space, "list", receiver.url, 10)
    connect(space, "out", "gold", collection="accounts", send_group=True, send_identify=True)
    calls = wait_for(lambda: len(receiver.calls()) >= 26 and receiver.calls(), what="every call")
    assert [len(r.body["batch"]) for r in receiver.accepted] == [10, 10, 6]
    assert [r.headers["webhook-id"] for r in receiver.refused] == [receiver.accepted[0].headers["webhook-id"]]
    assert len({c["messageId"] for c in calls}) == len(calls) == 26
    assert wait_for(lambda: _delivered(space) == 1, what="the change recorded as delivered")


@pytest.mark.parametrize("kind", ["segment", "list"])
def test_a_call_larger_than_a_request_holds_is_parked_unsent(space: Space, receiver: Receiver, kind: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A call no request can hold (here, with the limit lowered to 1,200 bytes, a user whose id is
    500 characters long) is never sent: its change is parked at once, saying why, and the other
    changes go on."""
    monkeypatch.setattr(batching, "MAX_BATCH_BYTES", 1_200)
    space.send({"type": "identify", "userId": "x" * 500, "traits": {"plan": "pro"}},
               {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    _destination(space, kind, receiver.url, 100)
    connect(space, "out", "pro", send_identify=True)
    listing = sync_pb2.ListDeadLettersRequest(destination_key="out")
    parked = wait_for(lambda: space.running.sync.ListDeadLetters(listing, metadata=admin(space)).dead_letters,
                      what="a dead letter")
    wait_for(receiver.calls, what="the other change")
    assert [c["userId"] for c in receiver.calls()] == ["u1"]
    assert max(len(r.raw) for r in receiver.accepted) <= 1_200
    assert parked[0].attempt_count == 1
    assert parked[0].payload["userId"] == "x" * 500
    assert parked[0].last_error.startswith(f"call {parked[0].message_id}-identify is 1,")
    assert parked[0].last_error.endswith(" bytes of JSON, more than a request holds (1,200 bytes): not sent")


def _refusing(receiver: Receiver) -> tuple[list[list[str]], threading.Event]:
    """The receiver answers 503 while the event is set, noting each batch's message ids."""
    attempts: list[list[str]] = []
    failing = threading.Event()
    failing.set()

    def refuse(body: Any) -> int | None:
        if not failing.is_set():
            return None
        attempts.append([c["messageId"] for c in body["batch"]])
        return 503

    receiver.fail_when = refuse
    return attempts, failing


def test_a_failed_batch_is_sent_again_as_it_was(space: Space, receiver: Receiver) -> None:
    """A batch answered 503 is retried with exactly its calls, though another change was queued
    while it waited: its webhook-id stays the same (the docs' receiver dedups on it), and the
    new change goes in a batch of its own (probing first, as a change that has not failed)."""
    receiver.verifying = True
    attempts, failing = _refusing(receiver)
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in ("u0", "u1", "u2")))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_interval=ms(50),
            policy=PATIENT)
    connect(space, "hook", "pro", send_identify=True)
    wait_for(lambda: attempts, what="a failed attempt")
    space.send({"type": "identify", "userId": "u9", "traits": {"plan": "pro"}})
    space.tick()
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    wait_for(lambda: space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery
             .pending_count == 1, what="the new change queued")
    seen = len(attempts)
    wait_for(lambda: len(attempts) >= seen + 2, what="attempts taken after the new change was queued")
    failing.clear()
    calls = wait_for(lambda: len(receiver.calls()) >= 4 and receiver.calls(), what="every call")
    first = attempts[0]
    retried = [a for a in attempts if set(a) & set(first)]
    assert len(retried) > 1
    assert all(a == first for a in retried)
    assert all(len(a) == 1 for a in attempts if a not in retried)  # the new change, alone
    accepted = [r for r in receiver.accepted if [c["messageId"] for c in r.body["batch"]] == first]
    assert len(accepted) == 1
    assert accepted[0].headers["webhook-id"] == batch_id([{"messageId": m} for m in first])
    assert sorted(c["userId"] for c in calls) == ["u0", "u1", "u2", "u9"]
    assert not receiver.refused


def test_a_failed_batch_is_sent_again_whole_though_an_older_change_came_due(space: Space,
                                                                            receiver: Receiver) -> None:
    """A full batch waiting for its retry is sent again whole though a dead letter older than it
    was redriven meanwhile, which comes first in the queue: the retry reads every delivery of
    the batch, not only those within a batch's worth of the queue. (The redriven change, which
    has not failed since, probes first, is refused again and parked; redriven once the receiver
    takes it, it goes.)"""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_size=3,
            batch_interval=ms(50), policy=PATIENT)
    connect(space, "hook", "pro", send_identify=True)
    attempts: list[list[str]] = []
    failing = threading.Event()
    failing.set()

    def refuse(body: Any) -> int | None:
        users = [c["userId"] for c in body["batch"]]
        if not failing.is_set():
            return None
        if users == ["bad"]:
            return 400
        attempts.append(users)
        return 503

    receiver.fail_when = refuse
    space.send({"type": "identify", "userId": "bad", "traits": {"plan": "pro"}})
    space.tick()
    meta = admin(space)
    listing = sync_pb2.ListDeadLettersRequest(destination_key="hook")
    wait_for(lambda: space.running.sync.ListDeadLetters(listing, metadata=meta).dead_letters, what="a dead letter")
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in ("u0", "u1", "u2")))
    space.tick()
    wait_for(lambda: attempts, what="a failed attempt")
    space.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="hook"), metadata=meta)
    seen = len(attempts)
    wait_for(lambda: len(attempts) >= seen + 2, what="attempts after the redrive")
    assert space.running.sync.ListDeadLetters(listing, metadata=meta).dead_letters
    failing.clear()
    calls = wait_for(lambda: len(receiver.calls()) >= 3 and receiver.calls(), what="the batch")
    assert all(a == ["u0", "u1", "u2"] for a in attempts)
    assert [c["userId"] for c in calls] == ["u0", "u1", "u2"]
    space.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="hook"), metadata=meta)
    calls = wait_for(lambda: len(receiver.calls()) >= 4 and receiver.calls(), what="every call")
    assert [c["userId"] for c in calls] == ["u0", "u1", "u2", "bad"]


def test_a_failed_batch_keeps_its_id_after_a_kill_9(tmp_path: Path, receiver: Receiver) -> None:
    """A batch whose failure was recorded is sent again as it was after the server is killed
    (kill -9) and started again, though another change was queued meanwhile: same calls, same
    webhook-id."""
    attempts, failing = _refusing(receiver)
    server = ServerProcess(tmp_path / "audiences.db")
    channel = grpc.insecure_channel(server.address)
    try:
        meta, write = bearer(server.tokens["admin"]), bearer(server.tokens["write"])
        admin_pb2_grpc.AudienceAdminServiceStub(channel).CreateAudience(admin_pb2.CreateAudienceRequest(
            audience=admin_pb2.Audience(key="pro", collection=1, definition="trait('plan') = 'pro'")), metadata=meta)
        sync = sync_pb2_grpc.SyncServiceStub(channel)
        sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="hook", webhook=sync_pb2.WebhookConfig(url=receiver.url, signing_secret=SECRET, batch_interval=ms(50),
                                                       payload_style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST),
            delivery_policy=PATIENT)), metadata=meta)
        sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
            destination_key="hook", computation=ref("pro"), send_identify=True)), metadata=meta)
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)

        def members(*users: str) -> None:
            body = json.dumps({"batch": [{"type": "identify", "userId": u, "traits": {"plan": "pro"}}
                                         for u in users]}).encode()
            ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=write)

        members("u0", "u1", "u2")
        wait_for(lambda: attempts, what="a failed attempt")
        members("u9")
        request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
        wait_for(lambda: (status := sync.GetConnection(request, metadata=meta).connection.delivery).pending_count == 1
                 and status.retrying_count == 3, what="the new change queued, the batch's failure recorded")
        server.kill()
    finally:
        channel.close()
    failing.clear()
    restarted = ServerProcess(tmp_path / "audiences.db")
    try:
        wait_for(lambda: len(receiver.calls()) >= 4, timeout=30, what="every call")
    finally:
        restarted.stop()
    first = attempts[0]
    assert all(a == first for a in attempts)
    assert [c["messageId"] for c in receiver.accepted[0].body["batch"]] == first
    assert receiver.accepted[0].headers["webhook-id"] == batch_id([{"messageId": m} for m in first])
    assert [c["userId"] for c in receiver.calls()[3:]] == ["u9"]
