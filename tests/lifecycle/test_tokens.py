"""Tokens and spaces through OperatorService: issued, listed without secrets, revoked and
expired at once; spaces created, listed and read; the operator scope kept apart."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from audiences.v1 import admin_pb2, ingest_pb2, operator_pb2, sync_pb2, tracking_pb2
from google.protobuf import duration_pb2

from audiences_server import cli
from tests.conftest import Running, bearer, error_reason, field_violations
from tests.evaluator.conftest import HOUR
from tests.lifecycle.conftest import Site

TRACK = ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u1", event="Signed In"))


def _create(site: Site, scope: int, label: str = "", **expiry: object) -> operator_pb2.CreateTokenResponse:
    return site.operator.CreateToken(operator_pb2.CreateTokenRequest(space=site.name, scope=scope, label=label,
                                                                     **expiry), metadata=site.as_("operator"))


def _listed(site: Site) -> dict[str, operator_pb2.Token]:
    page = site.operator.ListTokens(operator_pb2.ListTokensRequest(space=site.name), metadata=site.as_("operator"))
    return {t.token_id: t for t in page.tokens}


def test_issued_token_is_listed_with_its_use_but_never_its_secret(site: Site) -> None:
    """A token made through the API works at once; the list shows its label, scope and last use,
    and nothing in the listing is its secret."""
    made = _create(site, operator_pb2.TOKEN_SCOPE_WRITE, "checkout")
    assert made.secret.startswith("aud_write_")
    assert made.token.token_id.startswith("tok_")
    assert site.running.ingest.Track(TRACK, metadata=bearer(made.secret)).status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
    listed = _listed(site)[made.token.token_id]
    assert (listed.space, listed.scope, listed.label, listed.state) == (
        site.name, operator_pb2.TOKEN_SCOPE_WRITE, "checkout", operator_pb2.TOKEN_STATE_ACTIVE)
    assert listed.last_used_time.ToMilliseconds() == site.now()
    page = site.operator.ListTokens(operator_pb2.ListTokensRequest(space=site.name), metadata=site.as_("operator"))
    assert made.secret.encode() not in page.SerializeToString()
    assert {t.label for t in page.tokens} >= {"write-label", "read-label", "admin-label", "operator-label"}


def test_revoked_token_is_refused_on_its_next_call(site: Site) -> None:
    """A token used a moment ago (so its grant is cached) is refused right after RevokeToken."""
    made = _create(site, operator_pb2.TOKEN_SCOPE_WRITE)
    site.running.ingest.Track(TRACK, metadata=bearer(made.secret))
    revoked = site.operator.RevokeToken(operator_pb2.RevokeTokenRequest(token_id=made.token.token_id),
                                        metadata=site.as_("operator")).token
    assert revoked.state == operator_pb2.TOKEN_STATE_REVOKED
    assert revoked.HasField("revoke_time")
    with pytest.raises(grpc.RpcError) as refused:
        site.running.ingest.Track(TRACK, metadata=bearer(made.secret))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "TOKEN_REVOKED"
    assert _listed(site)[made.token.token_id].state == operator_pb2.TOKEN_STATE_REVOKED
    audit = site.running.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(target=made.token.token_id),
                                                metadata=site.as_("admin")).entries
    assert [(e.actor, e.action, e.target_type) for e in audit] == [
        ("operator-label", "revoke", "token"), ("operator-label", "create", "token")]


def test_an_open_watch_ends_when_its_token_is_revoked(site: Site) -> None:
    """A WatchChanges stream opened with a token ends with TOKEN_REVOKED once the token is revoked,
    at its next heartbeat, instead of going on for as long as the client keeps it open."""
    site.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=site.as_("admin"))
    made = _create(site, operator_pb2.TOKEN_SCOPE_ADMIN)
    stream = site.running.sync.WatchChanges(sync_pb2.WatchChangesRequest(
        destination_key="feed", heartbeat_interval=duration_pb2.Duration(seconds=1)), metadata=bearer(made.secret),
        timeout=30)
    beats = iter(stream)
    assert next(beats).HasField("heartbeat")
    site.operator.RevokeToken(operator_pb2.RevokeTokenRequest(token_id=made.token.token_id),
                              metadata=site.as_("operator"))
    with pytest.raises(grpc.RpcError) as ended:
        list(itertools.islice(beats, 5))  # at most a heartbeat already on its way, then the end
    assert (ended.value.code(), error_reason(ended.value)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")


def test_an_open_call_stream_ends_when_its_token_is_revoked(site: Site) -> None:
    """A StreamCalls stream whose write token is revoked while it is open ends with TOKEN_REVOKED
    at its next message a second or more later, and the calls sent after the revocation are not
    stored (they were, for as long as the stream stayed open)."""
    made = _create(site, operator_pb2.TOKEN_SCOPE_WRITE)

    def calls() -> Iterator[ingest_pb2.StreamCallsRequest]:
        yield ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(
            json=b'{"type": "track", "userId": "u", "event": "E", "messageId": "before"}'))
        site.operator.RevokeToken(operator_pb2.RevokeTokenRequest(token_id=made.token.token_id),
                                  metadata=site.as_("operator"))
        time.sleep(1.3)
        for i in range(3):
            yield ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(
                json=f'{{"type": "track", "userId": "u", "event": "E", "messageId": "after-{i}"}}'.encode()))

    with pytest.raises(grpc.RpcError) as ended:
        site.running.ingest.StreamCalls(calls(), metadata=bearer(made.secret), timeout=30)
    assert (ended.value.code(), error_reason(ended.value)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    assert site.running.query("SELECT message_id FROM events WHERE message_id LIKE 'after-%'") == []


def test_token_expires_when_the_clock_passes_its_time(site: Site) -> None:
    """A token with a one-hour lifetime works until the clock passes it, then is refused."""
    made = _create(site, operator_pb2.TOKEN_SCOPE_WRITE, ttl=duration_pb2.Duration(seconds=3600))
    assert made.token.expire_time.ToMilliseconds() == site.now() + HOUR
    site.running.ingest.Track(TRACK, metadata=bearer(made.secret))
    site.tick(site.now() + HOUR)
    with pytest.raises(grpc.RpcError) as refused:
        site.running.ingest.Track(TRACK, metadata=bearer(made.secret))
    assert error_reason(refused.value) == "TOKEN_EXPIRED"
    assert _listed(site)[made.token.token_id].state == operator_pb2.TOKEN_STATE_EXPIRED
    with pytest.raises(grpc.RpcError) as past:
        _create(site, operator_pb2.TOKEN_SCOPE_READ, ttl=duration_pb2.Duration(seconds=0))
    assert error_reason(past.value) == "EXPIRY_INVALID"


def test_local_token_commands_keep_the_servers_manual_clock(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """`audiences-server tokens …` run on the database file of a server on a manual clock take
    the clock's saved time, as the server does, not the wall clock's: `list` shows a token
    expired when the server refuses it as expired, and `create` and `revoke` stamp that time."""
    db = str(site.running.db)
    made = _create(site, operator_pb2.TOKEN_SCOPE_WRITE, "soon", ttl=duration_pb2.Duration(seconds=3600))
    site.tick(site.now() + HOUR + 1)
    assert _listed(site)[made.token.token_id].state == operator_pb2.TOKEN_STATE_EXPIRED
    now = site.now()
    assert cli.main(["tokens", "create", "--space", site.name, "--scope", "read", "--label", "local", "--db", db]) == 0
    [local] = [t for t in _listed(site).values() if t.label == "local"]
    assert local.create_time.ToMilliseconds() == now
    assert cli.main(["tokens", "revoke", local.token_id, "--db", db]) == 0
    assert _listed(site)[local.token_id].revoke_time.ToMilliseconds() == now
    capsys.readouterr()
    assert cli.main(["tokens", "list", "--space", site.name, "--db", db]) == 0
    rows = {line.split("\t")[0]: line.split("\t") for line in capsys.readouterr().out.splitlines()}
    assert rows[made.token.token_id][-1] == "expired"
    assert rows[local.token_id][3] == f"created {datetime.fromtimestamp(now / 1000, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert site.now() == now, "a local command never moves the clock"


@pytest.mark.parametrize("label", ["a\nb\x00c", "tab\there", "bell\x07", "del\x7f", "c1\x85", "line\u2028sep"])
def test_a_label_with_a_control_character_is_refused(site: Site, label: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A token label holding a control character (or a line separator), which listings would
    print as it is, is INVALID_ARGUMENT naming `label`, through the API and the local command
    alike, and no token is made; other characters are kept."""
    with pytest.raises(grpc.RpcError) as refused:
        _create(site, operator_pb2.TOKEN_SCOPE_WRITE, label)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "LABEL_INVALID"
    assert field_violations(refused.value) == [("label", "contains a control character")]
    capsys.readouterr()
    db = str(site.running.db)
    assert cli.main(["tokens", "create", "--space", site.name, "--scope", "read", "--label", label, "--db", db]) == 1
    assert "`label` contains the control character" in capsys.readouterr().err
    assert {t.label for t in _listed(site).values()} == {"write-label", "read-label", "admin-label", "operator-label"}
    assert _create(site, operator_pb2.TOKEN_SCOPE_WRITE, "café · checkout").token.label == "café · checkout"


def test_an_empty_id_is_missing_not_unknown(site: Site) -> None:
    """GetProfileDeletion without a `deletion_id` is INVALID_ARGUMENT DELETION_ID_MISSING, as
    RevokeToken without a `token_id` is TOKEN_ID_MISSING; an unknown one stays NOT_FOUND."""
    calls = ((site.operator.GetProfileDeletion, operator_pb2.GetProfileDeletionRequest, "deletion_id", "DELETION"),
             (site.operator.RevokeToken, operator_pb2.RevokeTokenRequest, "token_id", "TOKEN"))
    for call, request, field, name in calls:
        with pytest.raises(grpc.RpcError) as missing:
            call(request(), metadata=site.as_("operator"))
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(missing.value) == f"{name}_ID_MISSING"
        assert field_violations(missing.value) == [(field, "required")]
        with pytest.raises(grpc.RpcError) as unknown:
            call(request(**{field: "nope"}), metadata=site.as_("operator"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("seconds", [315_576_000_000, 2**62])
def test_an_expiry_past_the_year_9999_is_refused_and_stores_nothing(site: Site, seconds: int) -> None:
    """A ttl reaching past what a Timestamp shows (the largest Duration, or beyond) is
    INVALID_ARGUMENT, and no token is stored: the list still reads."""
    before = set(_listed(site))
    with pytest.raises(grpc.RpcError) as far:
        _create(site, operator_pb2.TOKEN_SCOPE_READ, ttl=duration_pb2.Duration(seconds=seconds))
    assert (far.value.code(), error_reason(far.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "EXPIRY_INVALID")
    assert set(_listed(site)) == before


def test_operator_scope_is_its_own(site: Site) -> None:
    """OperatorService refuses an admin token; an operator token cannot send events."""
    with pytest.raises(grpc.RpcError) as denied:
        site.operator.ListSpaces(operator_pb2.ListSpacesRequest(), metadata=site.as_("admin"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as ingest:
        site.running.ingest.Track(TRACK, metadata=site.as_("operator"))
    assert error_reason(ingest.value) == "SCOPE_MISSING"


def test_spaces_are_created_listed_and_read(site: Site, lifecycle_server: Running) -> None:
    """CreateSpace makes a space tokens can be issued for; ListSpaces pages through every space;
    a taken or malformed name is refused."""
    meta = site.as_("operator")
    made = site.operator.CreateSpace(operator_pb2.CreateSpaceRequest(space=operator_pb2.Space(name="brand-new")),
                                     metadata=meta).space
    assert made.name == "brand-new"
    assert not made.HasField("event_retention")
    names, token = [], ""
    while True:
        page = site.operator.ListSpaces(operator_pb2.ListSpacesRequest(page_size=2, page_token=token), metadata=meta)
        names += [s.name for s in page.spaces]
        token = page.next_page_token
        if not token:
            break
    assert names == [s.name for s in lifecycle_server.server.engine.auth.list_spaces()]
    assert "brand-new" in names
    assert site.operator.GetSpace(operator_pb2.GetSpaceRequest(), metadata=meta).space.name == site.name
    issued = _create(site, operator_pb2.TOKEN_SCOPE_WRITE).token
    assert issued.space == site.name
    other = site.operator.CreateToken(operator_pb2.CreateTokenRequest(space="brand-new",
                                                                      scope=operator_pb2.TOKEN_SCOPE_READ),
                                      metadata=meta)
    assert other.token.space == "brand-new"
    for name, reason in (("brand-new", "SPACE_EXISTS"), ("Bad Name", "SPACE_NAME_INVALID"),
                         ("shop\n", "SPACE_NAME_INVALID")):
        with pytest.raises(grpc.RpcError) as refused:
            site.operator.CreateSpace(operator_pb2.CreateSpaceRequest(space=operator_pb2.Space(name=name)),
                                      metadata=meta)
        assert error_reason(refused.value) == reason
    with pytest.raises(grpc.RpcError) as missing:
        site.operator.GetSpace(operator_pb2.GetSpaceRequest(name="nowhere"), metadata=meta)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("days", [0, 100_001])
def test_a_space_refused_for_its_retention_is_not_created(site: Site, days: int) -> None:
    """CreateSpace with a retention out of range is RETENTION_INVALID and creates nothing: the name
    stays free, and the same request with a good retention then succeeds."""
    meta = site.as_("operator")
    name = f"kept-{days}"
    space = operator_pb2.Space(name=name, event_retention=duration_pb2.Duration(seconds=days * 86_400))
    with pytest.raises(grpc.RpcError) as refused:
        site.operator.CreateSpace(operator_pb2.CreateSpaceRequest(space=space), metadata=meta)
    assert error_reason(refused.value) == "RETENTION_INVALID"
    with pytest.raises(grpc.RpcError) as missing:
        site.operator.GetSpace(operator_pb2.GetSpaceRequest(name=name), metadata=meta)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    space.event_retention.seconds = 30 * 86_400
    made = site.operator.CreateSpace(operator_pb2.CreateSpaceRequest(space=space), metadata=meta).space
    assert made.event_retention.seconds == 30 * 86_400
