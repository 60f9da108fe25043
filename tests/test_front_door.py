"""The front door: one event loop for gRPC and HTTP, idle streams, TLS, one server per database."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import audiences
import grpc
import pytest
import trustme
from audiences.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc, sync_pb2, tracking_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.settings import Settings
from audiences_server.testing import ServerProcess
from tests.conftest import Running, bearer, error_reason, start

IDLE_STREAMS = 1000  # of each kind


def _health(channel: grpc.Channel, timeout: float = 5) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout).status)


def _idle_calls(channel: grpc.Channel, running: Running) -> list[grpc.Future]:
    """IDLE_STREAMS watching a quiet feed, and as many StreamCalls that send nothing."""
    running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="quiet", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=running.auth("admin"))
    watch = sync_pb2.WatchChangesRequest(destination_key="quiet")
    watch.heartbeat_interval.FromSeconds(300)
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    never = threading.Event()

    def silent() -> Iterator[ingest_pb2.StreamCallsRequest]:
        never.wait()
        yield from ()

    watching = [running.sync.WatchChanges(watch, metadata=running.auth("admin")) for _ in range(IDLE_STREAMS)]
    sending = [stub.StreamCalls.future(silent(), metadata=running.auth("write")) for _ in range(IDLE_STREAMS)]
    return [*watching, *sending]


def test_idle_streams_do_not_delay_health_or_calls(running: Running) -> None:
    """2,000 open streams (1,000 watching a quiet feed, 1,000 StreamCalls that never send) hold no
    thread: a health check and a tracking call still answer at once."""
    calls = _idle_calls(running.channel, running)
    try:
        time.sleep(1.0)
        started = time.perf_counter()
        assert _health(running.channel, timeout=2) == health_pb2.HealthCheckResponse.SERVING
        reply = running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u1", event="E")),
                                     metadata=running.auth("write"), timeout=5)
        assert reply.status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
        assert time.perf_counter() - started < 5
    finally:
        for call in calls:
            call.cancel()


def test_reflection_answers_v1_and_v1alpha(running: Running) -> None:
    """Server reflection lists the services under both grpc.reflection.v1 and v1alpha."""
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    for name in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"):
        method = running.channel.stream_stream(
            f"/{name}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        replies = list(method(iter([request]), timeout=5))
        services = {s.name for s in replies[0].list_services_response.service}
        assert "audiences.v1.IngestService" in services, name
        assert name in services
    assert reflection_pb2_grpc.ServerReflectionStub  # the generated stub the tooling uses exists


@pytest.mark.parametrize("header", [
    "bearer {token}", "Bearer  {token}", "Bearer {token} ", "Token {token}", "Bearer", "{token}",
])
def test_authorization_must_be_exactly_bearer_token(running: Running, header: str) -> None:
    """Only `Bearer <token>`, exactly, authenticates: other spellings are refused as malformed."""
    metadata = (("authorization", header.format(token=running.tokens["write"])),)
    with pytest.raises(grpc.RpcError) as refused:
        running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u", event="E")),
                             metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) in {"TOKEN_MALFORMED", "TOKEN_INVALID", "TOKEN_UNKNOWN"}


def test_two_authorization_headers_are_refused(running: Running) -> None:
    """A bogus header followed by a valid one is refused: exactly one `authorization` header."""
    metadata = (("authorization", "Bearer bogus"), *bearer(running.tokens["write"]))
    with pytest.raises(grpc.RpcError) as refused:
        running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u", event="E")),
                             metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "TOKEN_MALFORMED"


@pytest.mark.parametrize("payload", [
    b"\xff\xfe garbage \x00\x01",
    b"\x0a\x05\x12\x03\xff\xfe\xfd",  # track { user_id: <invalid UTF-8> }
])
def test_undecodable_requests_are_invalid_argument(running: Running, payload: bytes) -> None:
    """Bytes the framework cannot decode answer INVALID_ARGUMENT, not INTERNAL."""
    method = running.channel.unary_unary("/audiences.v1.IngestService/Track",
                                         request_serializer=lambda raw: raw,
                                         response_deserializer=ingest_pb2.TrackResponse.FromString)
    with pytest.raises(grpc.RpcError) as refused:
        method(payload, metadata=running.auth("write"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "MESSAGE_UNDECODABLE"


def test_a_struct_nested_past_protobufs_limit_is_invalid_argument(running: Running) -> None:
    """A Struct nested 200 levels (past protobuf's recursion limit) answers INVALID_ARGUMENT."""
    inner = b""
    for _ in range(200):  # Struct{fields{"a": Value{struct_value: inner}}}
        value = b"\x2a" + _varint(len(inner)) + inner
        entry = b"\x0a\x01a\x12" + _varint(len(value)) + value
        inner = b"\x0a" + _varint(len(entry)) + entry
    track = b"\x0a\x01u\x12\x01E\x1a" + _varint(len(inner)) + inner  # user_id, event, properties
    payload = b"\x0a" + _varint(len(track)) + track
    method = running.channel.unary_unary("/audiences.v1.IngestService/Track",
                                         request_serializer=lambda raw: raw,
                                         response_deserializer=ingest_pb2.TrackResponse.FromString)
    with pytest.raises(grpc.RpcError) as refused:
        method(payload, metadata=running.auth("write"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_long_invalid_definitions_get_a_bounded_definition_error(running: Running) -> None:
    """A 10 KB invalid definition and 5,000 nested parentheses come back as INVALID_ARGUMENT with
    a DefinitionError detail, never RESOURCE_EXHAUSTED from oversized metadata."""
    from audiences.v1 import admin_pb2
    from grpc_status import rpc_status

    for text in ("event('x').count() >= " + "1 + " * 2500, "(" * 5000 + "event('x').count() >= 1" + ")" * 4999):
        with pytest.raises(grpc.RpcError) as refused:
            running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
                key="long_one", name="Long", definition=text, collection=common_pb2.COLLECTION_USERS)),
                metadata=running.auth("admin"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(refused.value)
        assert status is not None
        found = [d for d in status.details if d.Is(admin_pb2.DefinitionError.DESCRIPTOR)]
        assert found, "a DefinitionError detail"
        detail = admin_pb2.DefinitionError()
        found[0].Unpack(detail)
        assert detail.reason
        assert detail.line >= 1
        assert len(status.SerializeToString()) < 8 * 1024


def test_a_second_server_on_the_same_database_refuses(tmp_path: Path) -> None:
    """Only one server runs on a database: the second exits with a clear message, whether it names
    the file by its path or through a symlink or a hard link to it; so does a restore into it."""
    first = ServerProcess(tmp_path / "var" / "audiences.db")
    (tmp_path / "symlink.db").symlink_to(first.db)
    os.link(first.db, tmp_path / "hardlink.db")
    try:
        for db in (first.db, tmp_path / "symlink.db", tmp_path / "hardlink.db"):
            second = subprocess.run(
                [sys.executable, "-m", "audiences_server.cli", "serve", "--db", str(db), "--listen", "127.0.0.1:0",
                 "--http-listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60, check=False)
            assert second.returncode == 1, db
            assert "another server is already running on" in second.stderr
        backup = tmp_path / "backup.db"
        made = subprocess.run([sys.executable, "-m", "audiences_server.cli", "backup", str(backup), "--db",
                               str(first.db)], capture_output=True, text=True, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        restored = subprocess.run([sys.executable, "-m", "audiences_server.cli", "restore", str(backup), "--db",
                                   str(tmp_path / "symlink.db")], capture_output=True, text=True, timeout=60,
                                  check=False)
        assert restored.returncode != 0
        assert "stop it before restoring" in restored.stderr
    finally:
        first.stop()


def test_a_port_in_use_is_not_shared(running: Running, tmp_path: Path) -> None:
    """A second server cannot bind a gRPC port another holds (no SO_REUSEPORT)."""
    with pytest.raises(OSError, match="could not listen"):
        start(tmp_path / "other.db", listen=f"127.0.0.1:{running.port}")


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "192.0.2.1:0"])
def test_plaintext_beyond_loopback_needs_insecure(tmp_path: Path, listen: str) -> None:
    """A non-loopback address without TLS is refused unless `--insecure` is said."""
    proc = subprocess.run(
        [sys.executable, "-m", "audiences_server.cli", "serve", "--db", str(tmp_path / "a.db"), "--listen", listen],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "--insecure" in proc.stderr


def test_insecure_is_a_bare_flag(tmp_path: Path) -> None:
    """`--insecure` with no value allows plaintext on every address."""
    server = ServerProcess(tmp_path / "var" / "audiences.db", "--insecure")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """A certificate authority made for these tests."""
    return trustme.CA()


def _tls_settings(tmp_path: Path, authority: trustme.CA, *, mutual: bool) -> dict[str, str]:
    cert = authority.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    authority.cert_pem.write_to_path(str(ca_path))
    settings = {"tls_cert": str(cert_path), "tls_key": str(key_path)}
    if mutual:
        settings["tls_client_ca"] = str(ca_path)
    return settings


def test_tls_on_both_listeners(tmp_path: Path, authority: trustme.CA) -> None:
    """With a certificate, gRPC and HTTP speak TLS only; the client takes the CA."""
    running = start(tmp_path / "audiences.db", **_tls_settings(tmp_path, authority, mutual=False))
    try:
        client = audiences.Client(f"127.0.0.1:{running.port}", running.tokens, tls_ca_file=tmp_path / "ca.pem")
        assert client.get_identity_rules().rules
        client.close()
        plain = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        with pytest.raises(grpc.RpcError):
            _health(plain, timeout=2)
        plain.close()
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with urllib.request.urlopen(f"https://127.0.0.1:{running.server.http_port}/healthz", context=context) as r:
            assert r.status == 200
    finally:
        running.channel.close()
        running.server.stop(grace=1)


@pytest.mark.parametrize("wrong", ["tls_key", "tls_client_ca"])
def test_tls_files_that_do_not_fit_are_named_not_a_bind_failure(tmp_path: Path, authority: trustme.CA,
                                                                 wrong: str) -> None:
    """A key that is not the certificate's, or a client CA that is no certificate, is refused at
    start as unusable TLS files (status 2), not as a port that could not be bound."""
    settings = _tls_settings(tmp_path, authority, mutual=True)
    other = authority.issue_cert("other.example")
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    settings[wrong] = str(tmp_path / "other.key")
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]
    served = subprocess.run(
        [sys.executable, "-m", "audiences_server.cli", "serve", "--db", str(tmp_path / "a.db"), "--listen",
         "127.0.0.1:0", "--http-listen", "", *flags], capture_output=True, text=True, timeout=60, check=False)
    assert served.returncode == 2
    assert "cannot load" in served.stderr
    assert str(tmp_path / "other.key") in served.stderr
    assert "could not listen" not in served.stderr
    assert not (tmp_path / "a.db").exists()  # refused before the database is made


def test_mutual_tls_needs_a_client_certificate(tmp_path: Path, authority: trustme.CA) -> None:
    """With a client CA, a client without a certificate it signed is refused; one with is served."""
    running = start(tmp_path / "audiences.db", **_tls_settings(tmp_path, authority, mutual=True))
    try:
        anonymous = audiences.Client(f"127.0.0.1:{running.port}", running.tokens, tls_ca_file=tmp_path / "ca.pem",
                                     timeout=3)
        with pytest.raises(audiences.AudiencesError):
            anonymous.get_identity_rules()
        anonymous.close()
        client_cert = authority.issue_cert("client@example.com")
        client_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
        client_cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        known = audiences.Client(f"127.0.0.1:{running.port}", running.tokens, tls_ca_file=tmp_path / "ca.pem",
                                 tls_cert_file=tmp_path / "client.pem", tls_key_file=tmp_path / "client.key")
        assert known.get_identity_rules().rules
        known.close()
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def test_health_and_readiness_over_http(running: Running) -> None:
    """`/healthz` says alive and `/readyz` ready while the server runs."""
    for path, body in (("/healthz", b"alive"), ("/readyz", b"ready")):
        with urllib.request.urlopen(running.http_url + path) as reply:
            assert reply.status == 200
            assert body in reply.read()


def test_settings_have_an_http_listener_by_default() -> None:
    """The HTTP listener is on 127.0.0.1:8080 unless said otherwise."""
    assert Settings().http_listen == "127.0.0.1:8080"


def test_a_service_without_a_token_scope_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project service missing from the scope table would be served unauthenticated: the server
    refuses to start instead, and leaves the database free for the next one."""
    from audiences_server import server as server_module

    scopes = dict(server_module.SERVICES)
    scopes.pop("audiences.v1.SyncService")
    monkeypatch.setattr(server_module, "SERVICES", scopes)
    with pytest.raises(RuntimeError, match=r"audiences\.v1\.SyncService has no token scope"):
        start(tmp_path / "audiences.db")
    monkeypatch.undo()
    running = start(tmp_path / "audiences.db")
    running.channel.close()
    running.server.stop(grace=1)


# What gRPC lets a client put in a header value: printable ASCII.
_HEADER_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(
    st.text(_HEADER_TEXT, max_size=80),
    st.builds(lambda kind, token: f"{kind} {token}", st.sampled_from(["Bearer", "bearer", "Basic", ""]),
              st.text(_HEADER_TEXT, max_size=60)),
))
def test_fuzzed_authorization_headers_never_fail_internally(running: Running, header: str) -> None:
    """Any `authorization` value is either refused as UNAUTHENTICATED or, being a valid token,
    served: never INTERNAL, never a hang."""
    with pytest.raises(grpc.RpcError) as refused:
        running.ingest.Track(ingest_pb2.TrackRequest(), metadata=(("authorization", header),), timeout=5)
    assert refused.value.code() in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT}
