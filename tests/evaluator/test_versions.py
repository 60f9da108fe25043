"""Definition versions and the audit log through the server: numbered versions with the token's
label and the size after each backfill, kept across a restart; a rollback restores the earlier
members exactly; every admin action is audited with who did it."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, sync_pb2
from google.protobuf import field_mask_pb2

from tests.conftest import Running, bearer, start
from tests.evaluator.conftest import COLLECTION, Space

PRO, FREE = "trait('plan') = 'pro'", "trait('plan') = 'free'"


def _labelled_space(running: Running, *labels: str) -> tuple[Space, dict[str, tuple[tuple[str, str], ...]]]:
    """A fresh space with write/read/admin tokens, and one admin token per label."""
    auth = running.server.engine.auth
    name = f"v{uuid.uuid4().hex[:8]}"
    space = auth.create_space(name, 0)
    tokens = {scope: auth.create_token(name, scope, 0).token for scope in ("write", "read", "admin")}
    admins = {label: bearer(auth.create_token(name, "admin", 0, label).token) for label in labels}
    return Space(running, space.space_id, tokens), admins


def _update(space: Space, who: tuple[tuple[str, str], ...], key: str, **fields: object) -> None:
    audience = admin_pb2.Audience(key=key, collection=COLLECTION["users"], **fields)  # type: ignore[arg-type]
    mask = field_mask_pb2.FieldMask(paths=sorted(fields))
    space.running.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=audience, update_mask=mask),
                                       metadata=who)


def _versions(space: Space, key: str) -> list[admin_pb2.DefinitionVersion]:
    return list(space.running.admin.ListDefinitionVersions(
        admin_pb2.ListDefinitionVersionsRequest(collection=COLLECTION["users"], key=key),
        metadata=bearer(space.tokens["admin"])).versions)


def test_versions_survive_a_restart_and_a_rollback_restores_the_members(tmp_path: Path) -> None:
    """Create (alice) then edit (bob): two numbered versions with their labels and sizes; a rename
    makes none; after a restart both are still there, and updating to version 1's text brings
    back exactly its members, as version 3."""
    running = start(tmp_path / "audiences.db", manual_clock=True)
    try:
        space, admins = _labelled_space(running, "alice", "bob")
        plans = {f"u{i}": ("pro" if i % 3 == 0 else "free") for i in range(9)}
        space.send(*[{"type": "identify", "userId": u, "traits": {"plan": p}} for u, p in plans.items()])
        space.running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key="plan_fans", collection=COLLECTION["users"], definition=PRO)), metadata=admins["alice"])
        space.tick()
        first = space.member_ids("plan_fans")
        _update(space, admins["bob"], "plan_fans", definition=FREE)
        space.tick()
        _update(space, admins["bob"], "plan_fans", name="Plan fans")
        assert space.member_ids("plan_fans") != first
    finally:
        running.channel.close()
        running.server.stop(grace=1)
    running = start(tmp_path / "audiences.db", manual_clock=True)
    try:
        space = Space(running, space.space_id, space.tokens)
        versions = _versions(space, "plan_fans")
        assert [(v.version, v.actor, v.definition, v.size_after_backfill, v.current) for v in versions] == [
            (2, "bob", FREE, 6, True), (1, "alice", PRO, 3, False)]
        old = space.running.admin.GetDefinitionVersion(admin_pb2.GetDefinitionVersionRequest(
            collection=COLLECTION["users"], key="plan_fans", version=1), metadata=bearer(space.tokens["admin"])).version
        _update(space, bearer(space.tokens["admin"]), "plan_fans", definition=old.definition, options=old.options)
        space.tick()
        assert space.member_ids("plan_fans") == first
        latest = _versions(space, "plan_fans")[0]
        assert (latest.version, latest.definition, latest.size_after_backfill) == (3, PRO, 3)
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def test_every_admin_action_is_audited_with_who_did_it(shared_server: Running) -> None:
    """Create, update, disable, enable and delete a definition, change an identity rule, create a
    destination, connect, redrive, disconnect, disable and delete it: each is an entry with the
    token's label, newest first, paged and filtered; a refused call leaves none."""
    space, admins = _labelled_space(shared_server, "ops", "robot")
    admin, sync = space.running.admin, space.running.sync
    ops, robot = admins["ops"], admins["robot"]
    ref = common_pb2.ComputationRef(kind=common_pb2.COMPUTATION_KIND_AUDIENCE, collection=COLLECTION["users"],
                                    key="pros")
    admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
        key="pros", collection=COLLECTION["users"], definition=PRO)), metadata=ops)
    _update(space, ops, "pros", definition=FREE)
    _update(space, robot, "pros", enabled=False)
    _update(space, robot, "pros", enabled=True)
    admin.UpdateIdentityRule(admin_pb2.UpdateIdentityRuleRequest(
        rule=admin_pb2.IdentityRule(id_type="email", limit=3),
        update_mask=field_mask_pb2.FieldMask(paths=["limit"])), metadata=ops)
    sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=ops)
    sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
        destination_key="feed", computation=ref)), metadata=ops)
    sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="feed"), metadata=robot)
    sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(destination_key="feed", computation=ref),
                               metadata=ops)
    sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="feed", enabled=False),
        update_mask=field_mask_pb2.FieldMask(paths=["enabled"])), metadata=robot)
    sync.DeleteDestination(sync_pb2.DeleteDestinationRequest(key="feed"), metadata=robot)
    with pytest.raises(grpc.RpcError):
        admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key="pros", collection=COLLECTION["users"], definition=PRO)), metadata=ops)
    admin.DeleteAudience(admin_pb2.DeleteAudienceRequest(collection=COLLECTION["users"], key="pros"), metadata=robot)
    entries, token = [], ""
    while True:
        page = admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(page_size=4, page_token=token), metadata=ops)
        entries += page.entries
        token = page.next_page_token
        if not token:
            break
    assert [(e.actor, e.action, e.target_type, e.target) for e in reversed(entries)] == [
        ("ops", "create", "audience", "pros"),
        ("ops", "update", "audience", "pros"),
        ("robot", "disable", "audience", "pros"),
        ("robot", "enable", "audience", "pros"),
        ("ops", "update_identity_rule", "identity_rule", "email"),
        ("ops", "create", "destination", "feed"),
        ("ops", "connect", "connection", "feed/pros"),
        ("robot", "redrive", "dead_letters", "feed"),
        ("ops", "disconnect", "connection", "feed/pros"),
        ("robot", "disable", "destination", "feed"),
        ("robot", "delete", "destination", "feed"),
        ("robot", "delete", "audience", "pros"),
    ]
    assert dict(entries[-1].details) == {"version": 1}  # the version made
    assert dict(entries[-2].details) == {"fields": ["definition"], "version": 2}
    assert dict(entries[-3].details) == {"fields": ["enabled"], "version": 2}
    only = admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(action="disable", target_type="audience"),
                                  metadata=ops).entries
    assert [(e.actor, e.target) for e in only] == [("robot", "pros")]
    times = [e.action_time.ToMilliseconds() for e in entries]
    assert times == sorted(times, reverse=True)
