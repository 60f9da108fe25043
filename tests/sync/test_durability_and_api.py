"""Delivery survives a kill -9; destinations and connections through the API; Segment and CSV kinds."""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, admin_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc
from google.protobuf import field_mask_pb2
from structlog.testing import capture_logs

from audiences_server.engine.destinations import csv as csv_kind
from audiences_server.testing import ServerProcess
from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import Space, new_space
from tests.sync.conftest import FAST, Receiver, admin, connect, ms, ref, wait_for, webhook


def _deliver_until_killed(tmp_path: Path, receiver: Receiver, users: int, max_in_flight: int = 0) -> None:
    """A server sending `users` entries one request each to a slow receiver (`max_in_flight` at
    once, 0 for the default), killed (kill -9) once 20 have arrived."""
    server = ServerProcess(tmp_path / "audiences.db")
    channel = grpc.insecure_channel(server.address)
    admin_meta, write = bearer(server.tokens["admin"]), bearer(server.tokens["write"])
    admin_pb2_grpc.AudienceAdminServiceStub(channel).CreateAudience(admin_pb2.CreateAudienceRequest(
        audience=admin_pb2.Audience(key="pro", collection=1, definition="trait('plan') = 'pro'")), metadata=admin_meta)
    sync = sync_pb2_grpc.SyncServiceStub(channel)
    sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="hook", webhook=sync_pb2.WebhookConfig(url=receiver.url, max_in_flight=max_in_flight),
        delivery_policy=FAST)), metadata=admin_meta)
    sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
        destination_key="hook", computation=ref("pro"), send_identify=True)), metadata=admin_meta)
    receiver.fail_when = lambda body: None
    receiver.failures = [("sleep", 0.05)] * 10_000  # slow receiver: the kill lands mid-delivery
    body = json.dumps({"batch": [{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}}
                                 for i in range(users)]}).encode()
    ingest_pb2_grpc.IngestServiceStub(channel).BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=write)
    wait_for(lambda: len(receiver.calls()) >= 20, what="delivery under way")
    server.kill()
    channel.close()
    receiver.failures = []
    assert len(receiver.calls()) < users


def _restart_until_delivered(tmp_path: Path, receiver: Receiver, users: int) -> dict[str, list[str]]:
    """Restarts the server until every user's entry arrived; the users of each messageId received."""
    restarted = ServerProcess(tmp_path / "audiences.db")
    try:
        wait_for(lambda: len({c["userId"] for c in receiver.calls()}) == users, timeout=30, what="the rest")
    finally:
        restarted.stop()
    by_message = defaultdict(list)
    for call in receiver.calls():
        by_message[call["messageId"]].append(call["userId"])
    return by_message


def test_kill_9_mid_delivery_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """After a kill -9 in the middle of delivering, a restart delivers every change that was
    committed: each user's calls arrive in order, and a repeat carries the same messageId."""
    _deliver_until_killed(tmp_path, receiver, 200)
    by_message = _restart_until_delivered(tmp_path, receiver, 200)
    assert len(by_message) == 200
    assert all(len(set(u)) == 1 for u in by_message.values())


def test_kill_9_resends_only_the_deliveries_in_flight(tmp_path: Path, receiver: Receiver) -> None:
    """Each delivery is acknowledged (committed) as soon as its request is answered, so after a
    kill -9 the restart sends again at most the requests in flight (`max_in_flight`) and those
    answered whose commit was under way (at most as many again)."""
    _deliver_until_killed(tmp_path, receiver, 200, max_in_flight=4)
    by_message = _restart_until_delivered(tmp_path, receiver, 200)
    repeated = [m for m, received in by_message.items() if len(received) > 1]
    assert len(repeated) <= 8, f"{len(repeated)} deliveries were sent again"


def test_segment_destination_posts_batches_with_basic_auth(space: Space, receiver: Receiver) -> None:
    """A Segment destination POSTs `<base_url>/batch` with the write key as the basic-auth user."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    message = sync_pb2.Destination(key="seg", segment=sync_pb2.SegmentConfig(base_url=receiver.url + "/v1",
                                                                              write_key="wk"))
    created = space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message),
                                                   metadata=admin(space)).destination
    assert created.segment.write_key == ""
    assert created.id.startswith("dst_")
    connect(space, "seg", "pro", send_track=True)
    request = wait_for(lambda: receiver.accepted, timeout=5, what="a batch")[0]
    assert request.path == "/v1/batch"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"wk:").decode()
    assert request.body["batch"][0]["event"] == "Audience Entered"
    assert "sentAt" in request.body


@pytest.mark.parametrize("kind", ["segment", "list"])
def test_a_batch_holds_at_most_500_kb_of_json(space: Space, receiver: Receiver, kind: str) -> None:
    """Batches are weighed by the bytes of their JSON as sent: 150 users whose 500-character ids
    are CJK (three bytes each in UTF-8) take more than one request of at most 500 KB (a
    Segment source refuses a larger one), though their calls are under 500,000 characters."""
    users = [f"{n:03d}" + "漢" * 497 for n in range(150)]
    space.send(*({"type": "identify", "userId": u, "traits": {"plan": "pro"}} for u in users))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    if kind == "segment":
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="out", segment=sync_pb2.SegmentConfig(base_url=receiver.url, write_key="wk", batch_size=500))),
            metadata=admin(space))
    else:
        webhook(space, "out", receiver.url, style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, batch_size=1000)
    connect(space, "out", "pro", send_identify=True)
    wait_for(lambda: len(receiver.calls()) >= len(users), what="every call")
    assert sorted(c["userId"] for c in receiver.calls()) == users
    assert len(receiver.accepted) > 1
    assert max(len(r.raw) for r in receiver.accepted) <= 500_000


def test_csv_destination_writes_a_file(space: Space, tmp_path: Path) -> None:
    """A CSV destination writes `<collection>_<key>.csv` with the members, replaced on change."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    config = sync_pb2.CsvConfig(directory=str(tmp_path), external_id_types=["user_id"], include_traits=["plan"])
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
        destination=sync_pb2.Destination(key="files", csv=config)), metadata=admin(space))
    connect(space, "files", "pro")
    path = tmp_path / "users_pro.csv"
    wait_for(path.exists, what="the file")
    lines = path.read_text().splitlines()
    assert lines[0] == "profile_id,user_id,plan"
    assert lines[1].endswith(",u1,pro")


def test_two_csv_destinations_never_write_one_file(space: Space, tmp_path: Path) -> None:
    """A connection's file is named by its destination's directory and the audience's collection
    and key: a second destination's connection writing the same file (its directory written
    another way, or reached through a symbolic link; from this space or another), or a directory
    that would move one there, is FAILED_PRECONDITION DESTINATION_PLACE_TAKEN, as for PostgreSQL
    (each would replace the other's file). With a directory of its own it keeps a file of its own."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "email": "u1@x.io"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    (tmp_path / "link").symlink_to(tmp_path)

    def create(target: Space, key: str, directory: str, **config: Any) -> None:
        target.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key=key, csv=sync_pb2.CsvConfig(directory=directory, interval=ms(100), **config))), metadata=admin(target))

    def refused(call: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(caught.value) == "DESTINATION_PLACE_TAKEN"
        return caught.value

    create(space, "files", str(tmp_path), include_traits=["plan"])
    connect(space, "files", "pro")
    for n, directory in enumerate([str(tmp_path), f"{tmp_path}/", f"{tmp_path}/./", str(tmp_path / "link")]):
        create(space, f"copy{n}", directory, external_id_types=["email"])
        failure = refused(lambda key=f"copy{n}": connect(space, key, "pro"))
    assert failure.details() == (f"a connection of another destination already writes {tmp_path}/users_pro.csv there;"
                                 " give destination 'copy3' settings of its own (another directory)")
    elsewhere = new_space(space.running)
    elsewhere.define("pro", "trait('plan') = 'pro'")
    create(elsewhere, "files", str(tmp_path))
    refused(lambda: connect(elsewhere, "files", "pro"))

    update = sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="copy0", csv=sync_pb2.CsvConfig(directory=str(tmp_path / "copy"))),
        update_mask=field_mask_pb2.FieldMask(paths=["csv.directory"]))
    space.running.sync.UpdateDestination(update, metadata=admin(space))
    connect(space, "copy0", "pro")
    update.destination.csv.directory = str(tmp_path)
    refused(lambda: space.running.sync.UpdateDestination(update, metadata=admin(space)))
    wait_for(lambda: (tmp_path / "copy" / "users_pro.csv").exists() and (tmp_path / "users_pro.csv").exists(),
             what="both files")
    assert (tmp_path / "users_pro.csv").read_text().splitlines()[0] == "profile_id,user_id,email,plan"
    assert (tmp_path / "copy" / "users_pro.csv").read_text().splitlines()[0] == "profile_id,email"


@pytest.mark.parametrize(("directory", "why"), [
    ("/etc/passwd", "`csv.directory`: '/etc/passwd' exists and is not a directory"),
    ("/etc/passwd/exports", "`csv.directory`: '/etc/passwd' exists and is not a directory"),
    ("exports", "`csv.directory` must be an absolute path, not 'exports'"),
    ("/tmp/a\0b", "`csv.directory` must not contain a NUL character"),
])
def test_a_csv_directory_that_can_never_be_written_is_refused(space: Space, directory: str, why: str) -> None:
    """A file, a path under a file, a relative path or one with a NUL: INVALID_ARGUMENT naming
    `csv.directory`, instead of a destination failing on every round."""
    with pytest.raises(grpc.RpcError) as caught:
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="files", csv=sync_pb2.CsvConfig(directory=directory))), metadata=admin(space))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error_reason(caught.value), caught.value.details()) == ("DESTINATION_INVALID", why)


def test_a_csv_file_that_cannot_be_written_is_the_connections_error(space: Space, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory that stopped being one (or was stored before it was refused) leaves the file
    unwritten: the connection's last error says why, the worker logs it once (not a traceback
    each round), and the file is written once the directory is fixed."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    with capture_logs() as logged:
        with monkeypatch.context() as patched:
            patched.setattr(csv_kind.Csv, "check", lambda self, settings: None)  # as before the check
            space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
                key="files", csv=sync_pb2.CsvConfig(directory=str(blocked), interval=ms(200)))),
                metadata=admin(space))
        connect(space, "files", "pro")
        request = sync_pb2.GetConnectionRequest(destination_key="files", computation=ref("pro"))
        status = wait_for(lambda: (found := space.running.sync.GetConnection(request, metadata=admin(space))
                                   .connection.delivery).last_error and found, what="the error")
        assert status.last_error == f"cannot write {blocked}/users_pro.csv: [Errno 17] File exists: {str(blocked)!r}"
        assert status.HasField("last_error_time")
        time.sleep(1.5)  # several intervals, each trying again
    events = [e["event"] for e in logged if e["event"].startswith("sync_")]
    assert events == ["sync_sink_failed"]
    blocked.unlink()
    wait_for((blocked / "users_pro.csv").exists, what="the file")


def test_destination_and_connection_lifecycle(space: Space) -> None:
    """Create, get, list, update by mask, connect, update a connection, disconnect, delete;
    secrets are never read back; errors name their reason."""
    meta, sync = admin(space), space.running.sync
    space.define("pro", "trait('plan') = 'pro'")
    created = webhook(space, "hook", "http://127.0.0.1:9/x")
    assert created.webhook.signing_secret == ""
    assert created.webhook.signing_secret_set
    assert created.enabled
    assert created.delivery_policy.max_attempts == 6
    with pytest.raises(grpc.RpcError) as exists:
        webhook(space, "hook", "http://127.0.0.1:9/x")
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    update = sync_pb2.Destination(key="hook", name="Hook", webhook=sync_pb2.WebhookConfig(url="https://h.example/in"))
    updated = sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=update, update_mask=field_mask_pb2.FieldMask(paths=["name", "webhook.url"])),
        metadata=meta).destination
    assert (updated.name, updated.webhook.url, updated.webhook.signing_secret_set) == (
        "Hook", "https://h.example/in", True)
    with pytest.raises(grpc.RpcError) as other_kind:
        sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
            destination=update, update_mask=field_mask_pb2.FieldMask(paths=["segment.base_url"])), metadata=meta)
    assert other_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [d.key for d in sync.ListDestinations(sync_pb2.ListDestinationsRequest(), metadata=meta).destinations] == [
        "hook"]
    with pytest.raises(grpc.RpcError) as no_send:
        connect(space, "hook", "pro")
    assert error_reason(no_send.value) == "CONNECTION_INVALID"
    made = connect(space, "hook", "pro", send_identify=True)
    assert made.phase in (sync_pb2.CONNECTION_PHASE_INITIAL_SYNC, sync_pb2.CONNECTION_PHASE_LIVE)
    changed = sync.UpdateConnection(sync_pb2.UpdateConnectionRequest(
        connection=sync_pb2.Connection(destination_key="hook", computation=ref("pro"), send_track=True),
        update_mask=field_mask_pb2.FieldMask(paths=["send_track"])), metadata=meta).connection
    assert changed.send_track
    assert changed.send_identify
    listed = sync.ListConnections(sync_pb2.ListConnectionsRequest(destination_key="hook"), metadata=meta)
    assert [c.computation.key for c in listed.connections] == ["pro"]
    with pytest.raises(grpc.RpcError) as in_use:
        sync.DeleteDestination(sync_pb2.DeleteDestinationRequest(key="hook"), metadata=meta)
    assert in_use.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    sync.DeleteDestination(sync_pb2.DeleteDestinationRequest(key="hook", force=True), metadata=meta)
    with pytest.raises(grpc.RpcError) as gone:
        sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"), metadata=meta)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        (sync_pb2.Destination(key="x", webhook=sync_pb2.WebhookConfig(url="ftp://h/")), "DESTINATION_INVALID"),
        (sync_pb2.Destination(key="x", segment=sync_pb2.SegmentConfig(base_url="https://h")), "DESTINATION_INVALID"),
        (sync_pb2.Destination(key="x", webhook=sync_pb2.WebhookConfig(
            url="https://h/", headers={"X-A": "1\r\nX-B: 2"})), "DESTINATION_INVALID"),
        (sync_pb2.Destination(key="x", webhook=sync_pb2.WebhookConfig(
            url="https://h/", headers={"content-length": "1"})), "DESTINATION_INVALID"),
        (sync_pb2.Destination(key="Bad Key", grpc_feed=sync_pb2.GrpcFeedConfig()), "KEY_INVALID"),
        (sync_pb2.Destination(key="feed\n", grpc_feed=sync_pb2.GrpcFeedConfig()), "KEY_INVALID"),
        (sync_pb2.Destination(key="x"), "DESTINATION_CONFIG_REQUIRED"),
        (sync_pb2.Destination(key="x", grpc_feed=sync_pb2.GrpcFeedConfig(),
                              delivery_policy=sync_pb2.DeliveryPolicy(max_attempts=3)), "DESTINATION_INVALID"),
    ],
)
def test_bad_destinations_are_refused(space: Space, destination: sync_pb2.Destination, reason: str) -> None:
    """A destination with a bad URL, no write key, a header that would break the request (a line
    break, a framing header), a bad key, no kind or too few attempts is INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=destination),
                                             metadata=admin(space))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == reason


def test_sync_needs_an_admin_token(space: Space) -> None:
    """SyncService refuses a write token."""
    with pytest.raises(grpc.RpcError) as caught:
        space.running.sync.ListDestinations(sync_pb2.ListDestinationsRequest(), metadata=bearer(space.tokens["write"]))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED



@pytest.mark.parametrize("kind", ["audience", "computed_trait"])
def test_deleting_a_connected_definition_needs_force(space: Space, receiver: Receiver, kind: str) -> None:
    """A connected definition is refused (FAILED_PRECONDITION, reason CONNECTED, the destinations
    named); with force its connections go with it, the destinations stay, and what was queued
    for them is not sent again."""
    meta, sync, admin_stub = admin(space), space.running.sync, space.running.admin
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    if kind == "audience":
        space.define("pro", "trait('plan') = 'pro'")
        request: Any = admin_pb2.DeleteAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="pro")
        call = admin_stub.DeleteAudience
    else:
        space.define("pro", "trait('plan')", kind="computed_trait")
        request = admin_pb2.DeleteComputedTraitRequest(collection=common_pb2.COLLECTION_USERS, key="pro")
        call = admin_stub.DeleteComputedTrait
    space.tick()
    receiver.failures = [500] * 1000  # the first sync's deliveries stay queued, retried
    for key in ("hook", "other"):
        webhook(space, key, receiver.url)
        connect(space, key, "pro", kind=kind, send_identify=True)
    wait_for(lambda: receiver.attempts >= 2)
    with pytest.raises(grpc.RpcError) as connected:
        call(request, metadata=meta)
    assert connected.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(connected.value) == "CONNECTED"
    assert "'pro' is connected to hook, other" in (connected.value.details() or "")
    request.force = True
    call(request, metadata=meta)
    for key in ("hook", "other"):
        listed = sync.ListConnections(sync_pb2.ListConnectionsRequest(destination_key=key), metadata=meta)
        assert list(listed.connections) == []
        assert sync.GetDestination(sync_pb2.GetDestinationRequest(key=key), metadata=meta).destination.key == key
    time.sleep(0.5)  # what was in flight at the deletion settles
    settled = receiver.attempts
    time.sleep(1.0)  # retries come every 20-200 ms while a delivery is queued
    assert receiver.attempts == settled
    assert receiver.accepted == []
