"""Webhook delivery: first sync then deltas, identify / track / list payloads, identifiers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from audiences.v1 import sync_pb2
from google.protobuf import field_mask_pb2

from audiences_server.engine.sync.queueing import Queueing
from tests.evaluator.conftest import Space
from tests.sync.conftest import Receiver, admin, connect, ref, verify_signature, wait_for, webhook


def _members(space: Space, *users: str, plan: str = "pro") -> None:
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": plan, "email": f"{u}@x.io"}} for u in users))


def test_first_sync_then_deltas_as_identify(space: Space, receiver: Receiver) -> None:
    """Connecting sends every current member once (identify `{key: true}`), then only changes;
    every request is signed, carries the configured header and `context.personas`."""
    _members(space, "u1", "u2")
    space.send({"type": "identify", "userId": "u3", "traits": {"plan": "free"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    first = wait_for(lambda: len(receiver.calls()) >= 2 and receiver.calls(), what="initial sync")
    assert {c["userId"]: c["traits"] for c in first} == {"u1": {"pro": True}, "u2": {"pro": True}}
    _members(space, "u3")
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}})
    space.tick()
    calls = wait_for(lambda: len(receiver.calls()) >= 4 and receiver.calls(), what="deltas")
    assert [(c["userId"], c["traits"]["pro"]) for c in calls[2:]] in (
        [("u3", True), ("u1", False)], [("u1", False), ("u3", True)])
    assert all(verify_signature(r) and r.headers["X-Team"] == "growth" for r in receiver.accepted)
    personas = calls[0]["context"]["personas"]
    assert personas["computation_key"] == "pro"
    assert personas["computation_class"] == "audience"
    assert personas["computation_id"].startswith("aud_")
    assert personas["space_id"]
    assert len({c["messageId"] for c in calls}) == 4


def test_track_entered_then_exited(space: Space, receiver: Receiver) -> None:
    """Track mode sends `Audience Entered` then `Audience Exited` with `{audience_key, <key>}`;
    the exit carries every identifier even when the connection sends only the last one."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_track=True, identifier_selection=sync_pb2.IDENTIFIER_SELECTION_LAST_ADDED)
    space.tick()
    _members(space, "u1")
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "second@x.io"}})
    space.tick()
    entered = wait_for(receiver.calls, what="entered")[0]
    assert entered["event"] == "Audience Entered"
    assert entered["properties"] == {"audience_key": "pro", "pro": True}
    emails = [e["id"] for e in entered["context"]["externalIds"] if e["type"] == "email"]
    assert emails == ["second@x.io"]
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}})
    space.tick()
    exited = wait_for(lambda: len(receiver.calls()) > 1 and receiver.calls()[1], what="exited")
    assert exited["event"] == "Audience Exited"
    assert exited["properties"] == {"audience_key": "pro", "pro": False}
    ids = {(e["type"], e["id"]) for e in exited["context"]["externalIds"]}
    assert {("email", "u1@x.io"), ("email", "second@x.io"), ("user_id", "u1")} <= ids


def test_identifier_fan_out(space: Space, receiver: Receiver) -> None:
    """With ALL, a payload carries every value of every chosen type; FIRST_ADDED keeps the oldest."""
    space.define("pro", "trait('plan') = 'pro'")
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "email": "a@x.io"}},
               {"type": "identify", "userId": "u1", "traits": {"email": "b@x.io"}})
    space.tick()
    other = Receiver()
    other.start()
    try:
        webhook(space, "all", receiver.url)
        webhook(space, "first", other.url)
        connect(space, "all", "pro", send_identify=True, external_id_types=["email"])
        connect(space, "first", "pro", send_identify=True,
                identifier_selection=sync_pb2.IDENTIFIER_SELECTION_FIRST_ADDED)
        every = wait_for(receiver.calls, what="all")[0]["context"]["externalIds"]
        first = wait_for(other.calls, what="first")[0]["context"]["externalIds"]
    finally:
        other.stop()
    assert [(e["type"], e["id"]) for e in every] == [("email", "a@x.io"), ("email", "b@x.io")]
    assert sorted((e["type"], e["id"]) for e in first) == [("email", "a@x.io"), ("user_id", "u1")]


def test_list_style_batches(space: Space, receiver: Receiver) -> None:
    """LIST style POSTs `{"batch": [...]}` of at most `batch_size` calls, and every call arrives."""
    _members(space, *(f"u{i}" for i in range(7)))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    webhook(space, "hook", receiver.url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_size=3)
    connect(space, "hook", "pro", send_identify=True, send_track=False)
    calls = wait_for(lambda: len(receiver.calls()) >= 7 and receiver.calls(), what="batches")
    assert sorted(c["userId"] for c in calls) == [f"u{i}" for i in range(7)]
    assert all(len(r.body["batch"]) <= 3 for r in receiver.accepted)
    assert len(receiver.accepted) >= 3


def test_computed_trait_as_track(space: Space, receiver: Receiver) -> None:
    """A computed trait sends `Trait Computed` with `{trait_key, <key>}` on every value change."""
    space.define("orders", "event('Order').count()", kind="computed_trait")
    space.send({"type": "track", "userId": "u1", "event": "Order"})
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "orders", kind="computed_trait", send_track=True, send_identify=True)
    wait_for(lambda: len(receiver.calls()) >= 2, what="snapshot")
    space.send({"type": "track", "userId": "u1", "event": "Order"})
    space.tick()
    calls = wait_for(lambda: len(receiver.calls()) >= 4 and receiver.calls(), what="change")
    tracks = [c for c in calls if c["type"] == "track"]
    assert [t["properties"] for t in tracks] == [{"trait_key": "orders", "orders": 1},
                                                 {"trait_key": "orders", "orders": 2}]
    assert [c["traits"] for c in calls if c["type"] == "identify"] == [{"orders": 1}, {"orders": 2}]


def _enterprise_hook(space: Space, receiver: Receiver, *calls: dict[str, Any]) -> Callable[[int], Any]:
    """After `calls`, the account audience `enterprise` connected to a webhook at the receiver with
    group and per-user calls; returns what reads the receiver's calls (`_enterprise_calls`)."""
    space.send(*calls)
    space.define("enterprise", "trait('tier') = 'enterprise'", collection="accounts")
    space.tick()
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "enterprise", collection="accounts", send_group=True, send_identify=True)
    return functools.partial(_enterprise_calls, receiver)


def _enterprise_calls(receiver: Receiver, n: int) -> list[tuple[str, str, bool]]:
    """The receiver's calls once there are `n`: type, the account's or the person's id, and the
    `enterprise` trait they carry."""
    calls = wait_for(lambda: len(receiver.calls()) >= n and receiver.calls(), what=f"{n} calls")
    assert len(calls) == n, calls
    return [(c["type"], c.get("groupId") or c.get("userId") or c["anonymousId"], c["traits"]["enterprise"])
            for c in calls]


def test_account_audience_as_group_and_per_user_calls(space: Space, receiver: Receiver) -> None:
    """An account audience sends a group call per account and an identify per linked user; a user
    joining a member account gets its own entry, one leaving its own exit, with no group call."""
    seen = _enterprise_hook(space, receiver, {"type": "group", "userId": "u1", "groupId": "acme",
                                              "traits": {"tier": "enterprise"}})
    assert seen(2) == [("group", "acme", True), ("identify", "u1", True)]
    space.send({"type": "group", "userId": "u2", "groupId": "acme"})
    space.tick()
    assert seen(3)[2:] == [("identify", "u2", True)]
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}})
    space.tick()
    assert seen(4)[3:] == [("identify", "u1", False)]
    space.send({"type": "group", "userId": "u2", "groupId": "acme", "traits": {"tier": "free"}})
    space.tick()
    assert seen(6)[4:] == [("group", "acme", False), ("identify", "u2", False)]
    assert len({c["messageId"] for c in receiver.calls()}) == 6


def test_a_user_linked_to_a_member_account_by_a_merge_gets_its_entry(space: Space, receiver: Receiver) -> None:
    """An anonymous profile linked to a member account merges into an older user that was not:
    the user takes over the link, and gets its own entry as a user joining the account would (so
    that its exit, when it leaves, follows an entry)."""
    space.send({"type": "identify", "userId": "u1", "at": space.now() - 1000})
    seen = _enterprise_hook(space, receiver, {"type": "group", "anonymousId": "a1", "groupId": "acme",
                                              "traits": {"tier": "enterprise"}})
    assert seen(2) == [("group", "acme", True), ("identify", "a1", True)]
    space.send({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    space.tick()
    assert ("identify", "u1", True) in seen(3)[2:]
    space.send({"type": "group", "userId": "u1", "groupId": "acme", "context": {"unlink": True}})
    space.tick()
    assert seen(4)[3:] == [("identify", "u1", False)]


def test_a_reconnection_sends_its_first_sync_under_new_message_ids(space: Space, receiver: Receiver) -> None:
    """Disconnected and connected again, an audience's first sync goes out under message ids the
    destination has not had (the new connection took the removed one's id, and with it the same
    ids, which a receiver deduplicating on them dropped: a member who came back stayed out)."""
    webhook(space, "hook", receiver.url)
    _members(space, "u1", "u2")
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    connect(space, "hook", "pro", send_identify=True)
    first = wait_for(lambda: len(receiver.calls()) == 2 and receiver.calls(), what="the first sync")
    space.running.sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(
        destination_key="hook", computation=ref("pro")), metadata=admin(space))
    connect(space, "hook", "pro", send_identify=True)
    again = wait_for(lambda: len(receiver.calls()) == 4 and receiver.calls()[2:], what="the second first sync")
    assert sorted(c["userId"] for c in again) == ["u1", "u2"]
    assert not {c["messageId"] for c in again} & {c["messageId"] for c in first}


def test_a_new_url_applies_to_what_is_sent_next(space: Space, receiver: Receiver) -> None:
    """Changing a webhook's URL builds its client again once what is in flight is settled: the
    changes after the update go to the new URL, none is lost or sent twice."""
    space.define("pro", "trait('plan') = 'pro'")
    webhook(space, "hook", receiver.url)
    connect(space, "hook", "pro", send_identify=True)
    _members(space, "u1")
    space.tick()
    wait_for(receiver.calls, what="the first change")
    other = Receiver()
    other.start()
    try:
        space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
            destination=sync_pb2.Destination(key="hook", webhook=sync_pb2.WebhookConfig(url=other.url)),
            update_mask=field_mask_pb2.FieldMask(paths=["webhook.url"])), metadata=admin(space))
        _members(space, "u2", "u3")
        space.tick()
        moved = wait_for(lambda: len(other.calls()) == 2 and other.calls(), what="the changes at the new URL")
    finally:
        other.stop()
    assert sorted(c["userId"] for c in moved) == ["u2", "u3"]
    assert [c["userId"] for c in receiver.calls()] == ["u1"]
    assert all(verify_signature(r) for r in other.accepted)


def test_a_connection_whose_audience_did_not_change_queues_nothing(space: Space, receiver: Receiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After a tick that changed one audience, only that audience's connections queue records:
    a connection of an audience that did not change submits no writer job (an empty transaction
    per connection after every evaluator job, before), and still gets its own next change."""
    space.define("pro", "trait('plan') = 'pro'")
    space.define("free", "trait('plan') = 'free'")
    other = Receiver()
    other.start()
    try:
        webhook(space, "pro_hook", receiver.url)
        webhook(space, "free_hook", other.url)
        connect(space, "pro_hook", "pro", send_track=True)
        connect(space, "free_hook", "free", send_track=True)
        space.tick()
        writer = space.running.server.engine.writer
        queued: list[str] = []
        submit = writer.submit

        def counting(job: Any, **options: Any) -> Any:
            if isinstance(job, Queueing):
                queued.append(job.destination.key)
            return submit(job, **options)

        wait_for(lambda: not _first_syncs_pending(space), what="first syncs")
        monkeypatch.setattr(writer, "submit", counting)
        _members(space, "u1")
        space.tick()
        wait_for(receiver.calls, what="pro entered")
        space.send({"type": "identify", "userId": "u2", "traits": {"plan": "free"}})
        space.tick()
        entered = wait_for(other.calls, what="free entered")
    finally:
        other.stop()
    assert [c["userId"] for c in entered] == ["u2"]
    assert queued.count("free_hook") == 1, queued
    assert queued.count("pro_hook") == 1, queued


def _first_syncs_pending(space: Space) -> bool:
    listed = space.running.sync.ListConnections(sync_pb2.ListConnectionsRequest(), metadata=admin(space))
    return any(c.phase != sync_pb2.CONNECTION_PHASE_LIVE for c in listed.connections)
