"""Retries, dead letters and redrive: failures never lose a change nor reorder a profile's changes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import apsw
import pytest
from audiences.v1 import sync_pb2
from google.protobuf import field_mask_pb2

from audiences_server.engine.destinations.http import Poster
from audiences_server.engine.destinations.http1 import LoopPoster
from audiences_server.store import sync as store
from tests.evaluator.conftest import Space
from tests.sync.conftest import Receiver, admin, connect, ms, ref, wait_for, webhook


def _flip(space: Space, users: list[str], rounds: int) -> None:
    """Moves every user in and out of `pro` `rounds` times, one tick per move."""
    for n in range(rounds):
        plan = "pro" if n % 2 == 0 else "free"
        space.send(*({"type": "identify", "userId": u, "traits": {"plan": plan}} for u in users))
        space.tick()


def _per_profile(calls: list[dict[str, Any]]) -> dict[str, list[tuple[str, bool]]]:
    """Each user's (messageId, value) in arrival order, duplicates of a messageId dropped."""
    seen: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for call in calls:
        entry = (call["messageId"], call["traits"]["pro"])
        if entry not in seen[call["userId"]]:
            seen[call["userId"]].append(entry)
    return seen


def test_failures_then_recovery_lose_nothing(space: Space, receiver: Receiver) -> None:
    """A receiver that answers 500, times out, answers 429 with Retry-After and refuses connections
    for a while gets every change once it recovers, in per-profile order; a repeat only ever
    has the messageId of a call already received."""
    space.define("pro", "trait('plan') = 'pro'")
    users = [f"u{i}" for i in range(5)]
    # Attempts enough to outlast the outage below (about a second), so nothing is parked.
    patient = sync_pb2.DeliveryPolicy(max_attempts=30, initial_backoff=ms(20), max_backoff=ms(200),
                                      request_timeout=ms(400))
    webhook(space, "hook", receiver.url, policy=patient)
    connect(space, "hook", "pro", send_identify=True)
    receiver.failures = [500, 500, ("sleep", 0.6), 429, 503]
    _flip(space, users, 4)
    receiver.stop()
    _flip(space, users, 2)
    time.sleep(0.4)  # refused connections meanwhile
    receiver.start()
    expected = 6 * len(users)
    calls = wait_for(lambda: sum(len(v) for v in _per_profile(receiver.calls()).values()) >= expected and
                     receiver.calls(), timeout=20, what="every change")
    for user, entries in _per_profile(calls).items():
        assert [value for _, value in entries] == [True, False, True, False, True, False], user
    ids_by_value = defaultdict(set)
    for call in calls:
        ids_by_value[call["messageId"]].add((call["userId"], call["traits"]["pro"]))
    assert all(len(v) == 1 for v in ids_by_value.values())
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))

    def delivery() -> Any:
        return space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery

    # The receiver can hold the last call before the server has recorded its answer.
    status = wait_for(lambda: (found := delivery()).delivered_count >= expected and found, timeout=10,
                      what="the deliveries recorded")
    assert status.last_error


def test_dead_letter_holds_the_profile_and_redrive_resends(space: Space, receiver: Receiver) -> None:
    """A change that fails every attempt is parked and listed; the profile's later changes wait
    behind it while other profiles keep flowing; a redrive sends the parked change with its
    original messageId, then the held ones, in order."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    space.tick()
    broken = threading.Event()
    broken.set()
    receiver.fail_when = lambda body: 500 if broken.is_set() and body["userId"] == "bad" else None
    _flip(space, ["bad", "good"], 1)
    meta = admin(space)
    listed = wait_for(lambda: space.running.sync.ListDeadLetters(
        sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=meta).dead_letters, what="a dead letter")
    space.send({"type": "identify", "userId": "bad", "traits": {"plan": "free"}},
               {"type": "identify", "userId": "good", "traits": {"plan": "free"}})
    space.tick()
    wait_for(lambda: [c for c in receiver.calls() if c["userId"] == "good" and c["traits"]["pro"] is False],
             what="the healthy profile's exit")
    parked = listed[0]
    assert parked.attempt_count == 6
    assert "HTTP 500" in parked.last_error
    assert parked.payload["userId"] == "bad"
    assert parked.message_id.startswith("syn_")
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    # The healthy exit's delivery is recorded just after the receiver holds it.
    status = wait_for(lambda: (found := space.running.sync.GetConnection(request, metadata=meta).connection.delivery)
                      .pending_count == 1 and found, what="only the held change pending")
    assert status.dead_letter_count == 1
    assert not [c for c in receiver.calls() if c["userId"] == "bad"]
    broken.clear()
    redriven = space.running.sync.RedriveDeadLetters(
        sync_pb2.RedriveDeadLettersRequest(destination_key="hook", dead_letter_ids=[parked.id]), metadata=meta)
    assert redriven.redriven_count == 1
    bad = wait_for(lambda: len([c for c in receiver.calls() if c["userId"] == "bad"]) == 2 and
                   [c for c in receiver.calls() if c["userId"] == "bad"], what="redriven changes")
    assert [c["traits"]["pro"] for c in bad] == [True, False]
    assert bad[0]["messageId"] == parked.message_id + "-identify"
    assert not space.running.sync.ListDeadLetters(sync_pb2.ListDeadLettersRequest(destination_key="hook"),
                                                  metadata=meta).dead_letters


def test_one_profile_failing_worth_retrying_holds_no_other(space: Space, receiver: Receiver) -> None:
    """A receiver answering 503 to one profile's change only: the other profiles' changes go while
    that one is still being retried, far from parked. The destination probed one write at a time
    after the failure, and each probe was the oldest change due, the failing one, so nothing else
    went until it was parked (minutes with the default policy)."""
    space.define("pro", "trait('plan') = 'pro'")
    patient = sync_pb2.DeliveryPolicy(max_attempts=100, initial_backoff=ms(200), max_backoff=ms(1000),
                                      request_timeout=ms(2000))
    webhook(space, "hook", receiver.url, policy=patient)
    connect(space, "hook", "pro", send_identify=True)
    receiver.fail_when = lambda body: 503 if body["userId"] == "bad" else None
    space.send({"type": "identify", "userId": "bad", "traits": {"plan": "pro"}})
    space.tick()
    wait_for(lambda: receiver.attempts, what="the first refusal")
    others = [f"u{i}" for i in range(20)]
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in others))
    space.tick()
    delivered = wait_for(lambda: {c["userId"] for c in receiver.calls()} >= set(others) and receiver.calls(),
                         timeout=15, what="every other profile's entry")
    assert "bad" not in {c["userId"] for c in delivered}
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    status = space.running.sync.GetConnection(request, metadata=admin(space)).connection.delivery
    assert (status.dead_letter_count, status.retrying_count) == (0, 1)


def test_a_change_held_behind_a_dead_letter_lets_the_worker_sleep(space: Space, receiver: Receiver) -> None:
    """While a dead letter holds its profile's next change, the destination has nothing due: its
    worker's wake-up time is none (it was 0, the held change's, and the worker read the queue
    every 5 ms for as long as the letter stayed parked). A redrive wakes it: the parked change
    goes, then the held one."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    broken = threading.Event()
    broken.set()
    receiver.fail_when = lambda body: 400 if broken.is_set() else None
    _flip(space, ["bad"], 2)  # an entry, parked at once, then an exit held behind it
    meta = admin(space)
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    wait_for(lambda: (found := space.running.sync.GetConnection(request, metadata=meta).connection.delivery)
             .dead_letter_count == 1 and found.pending_count == 1, what="the exit held behind the dead letter")
    destination_id = space.running.server.engine.sync.destination(space.space_id, "hook").destination_id
    conn = apsw.Connection(str(space.running.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert store.next_due_ms(conn, destination_id) is None
    finally:
        conn.close()
    broken.clear()
    space.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="hook"), metadata=meta)
    calls = wait_for(lambda: len(receiver.calls()) == 2 and receiver.calls(), what="both changes")
    assert [c["traits"]["pro"] for c in calls] == [True, False]


def test_a_change_in_flight_lets_the_worker_sleep_until_its_answer(space: Space, receiver: Receiver) -> None:
    """While a request is in flight (its receiver slow to answer), its delivery is not due again:
    the wake-up time leaves it out (it counted it, due now, and the worker read the queue every
    5 ms until the answer came). The answer wakes the worker, and the change is delivered."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    answering = threading.Event()
    receiver.fail_when = lambda body: None if answering.wait(30) else 503
    _flip(space, ["slow"], 1)
    destination_id = space.running.server.engine.sync.destination(space.space_id, "hook").destination_id
    conn = apsw.Connection(str(space.running.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        flying = wait_for(lambda: [int(r) for (r,) in conn.execute(
            "SELECT delivery_id FROM deliveries WHERE destination_id = ?", (destination_id,))], what="the delivery")
        assert store.next_due_ms(conn, destination_id) is not None  # due, were it not in flight
        assert store.next_due_ms(conn, destination_id, flying) is None
    finally:
        conn.close()
    answering.set()
    calls = wait_for(receiver.calls, what="the change")
    assert [c["userId"] for c in calls] == ["slow"]


def test_client_errors_park_at_once(space: Space, receiver: Receiver) -> None:
    """A 4xx other than 408/429 is not worth retrying: the delivery is parked after one attempt."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    receiver.failures = [400]
    _flip(space, ["u1"], 1)
    parked = wait_for(lambda: space.running.sync.ListDeadLetters(
        sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=admin(space)).dead_letters,
        what="a dead letter")
    assert parked[0].attempt_count == 1
    assert parked[0].last_error.startswith("HTTP 400")


def test_redrive_counts_every_letter_it_puts_back(space: Space, receiver: Receiver) -> None:
    """Redriving four parked deliveries reports four, and all four are then delivered."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    receiver.failures = [400] * 4
    users = [f"r{i}" for i in range(4)]
    _flip(space, users, 1)
    meta = admin(space)
    request = sync_pb2.ListDeadLettersRequest(destination_key="hook")
    wait_for(lambda: len(space.running.sync.ListDeadLetters(request, metadata=meta).dead_letters) == 4,
             what="four dead letters")
    redriven = space.running.sync.RedriveDeadLetters(
        sync_pb2.RedriveDeadLettersRequest(destination_key="hook"), metadata=meta)
    assert redriven.redriven_count == 4
    wait_for(lambda: {c["userId"] for c in receiver.calls()} == set(users), what="the redriven deliveries")
    assert not space.running.sync.ListDeadLetters(request, metadata=meta).dead_letters


def test_a_merge_keeps_the_persons_changes_in_order(space: Space, receiver: Receiver) -> None:
    """A user's parked change still holds the person's later changes after their profile is
    merged into an older one (an anonymous visitor's): the merged profile's queued deliveries
    become the survivor's, and so do its later ones (its exit, when the merge retires it), so
    they wait behind the parked entry."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    space.send({"type": "track", "anonymousId": "anon-1", "event": "Page Viewed"})  # the older profile
    space.tick()
    broken = threading.Event()
    broken.set()
    receiver.fail_when = lambda body: 500 if broken.is_set() and body["traits"]["pro"] is True else None
    space.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}})
    space.tick()
    meta = admin(space)
    parked = wait_for(lambda: space.running.sync.ListDeadLetters(
        sync_pb2.ListDeadLettersRequest(destination_key="hook"), metadata=meta).dead_letters, what="a dead letter")[0]
    # Ada signs in where she browsed anonymously: her profile merges into the visitor's (retired,
    # it leaves `pro`), and the merged profile is not `pro` either.
    space.send({"type": "identify", "userId": "ada", "anonymousId": "anon-1", "traits": {"plan": "free"}})
    space.tick()
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    wait_for(lambda: space.running.sync.GetConnection(request, metadata=meta).connection.delivery.pending_count == 1,
             what="the exit held behind the parked entry")
    assert not receiver.calls()
    broken.clear()
    space.running.sync.RedriveDeadLetters(
        sync_pb2.RedriveDeadLettersRequest(destination_key="hook", dead_letter_ids=[parked.id]), metadata=meta)
    calls = wait_for(lambda: len(receiver.calls()) == 2 and receiver.calls(), what="both changes")
    assert [c["traits"]["pro"] for c in calls] == [True, False]
    assert calls[0]["userId"] == "ada"


@pytest.mark.parametrize("style", [sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST])
def test_a_write_that_raises_is_a_failure_worth_retrying(space: Space, receiver: Receiver, style: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A write failing in a way no sink expected (here its client raising) is an outcome like
    any other: retried, its error the connection's last error; its deliveries are never left in
    flight, so they go once the cause is gone, and a change of settings is not held up."""
    space.define("pro", "trait('plan') = 'pro'")
    raising = threading.Event()
    raising.set()

    def broken(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            if raising.is_set():
                raise RuntimeError("boom")
            return original(*args, **kwargs)
        return write

    monkeypatch.setattr(LoopPoster, "request", broken(LoopPoster.request))
    monkeypatch.setattr(Poster, "post", broken(Poster.post))
    webhook(space, "hook", receiver.url, style=style, batch_interval=ms(50))
    connect(space, "hook", "pro", send_identify=True)
    _flip(space, ["u1"], 1)
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    failed = wait_for(lambda: (found := space.running.sync.GetConnection(request, metadata=admin(space))
                               .connection.delivery).last_error and found, what="the error")
    assert failed.last_error == "unexpected error: RuntimeError: boom"
    raising.clear()
    space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="hook", name="renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=admin(space))
    assert [c["userId"] for c in wait_for(receiver.calls, what="the call")] == ["u1"]


@pytest.mark.parametrize("style", [sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST])
@pytest.mark.parametrize("value", ["Infinity", "inf", "1e300", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_past_the_maximum_backoff_waits_the_maximum(space: Space, receiver: Receiver, style: int,
                                                                   value: str) -> None:
    """A receiver asking to wait for ever, or longer than any number the database stores, is
    retried after the policy's `max_backoff` (200 ms here): its deliveries are neither stuck
    nor refused a commit."""
    space.define("pro", "trait('plan') = 'pro'")
    receiver.retry_after = value
    receiver.failures = [429, 429]
    webhook(space, "hook", receiver.url, style=style, batch_interval=ms(50))
    connect(space, "hook", "pro", send_identify=True)
    _flip(space, ["u1"], 1)
    assert [c["userId"] for c in wait_for(receiver.calls, what="the call")] == ["u1"]
    assert receiver.attempts == 3
    request = sync_pb2.GetConnectionRequest(destination_key="hook", computation=ref("pro"))
    status = wait_for(lambda: (found := space.running.sync.GetConnection(request, metadata=admin(space))
                               .connection.delivery).delivered_count == 1 and found, what="the delivery recorded")
    assert status.last_error == "HTTP 429:"  # the answer (empty), not a failure to read it
