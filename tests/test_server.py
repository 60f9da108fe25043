"""The server's frame: auth, errors, health, reflection, logs, unimplemented calls, the CLI."""

from __future__ import annotations

import base64
import io
import json
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import structlog
from audiences.v1 import common_pb2, ingest_pb2, sync_pb2, tracking_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from audiences_server import cli, logs
from audiences_server.engine.engine import Engine
from audiences_server.settings import SETTINGS, Settings, resolve
from tests.conftest import Running, bearer, error_reason

TRACK = ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u1", event="Signed Up"))


@pytest.mark.parametrize(
    ("metadata", "code", "reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
        ((("authorization", "Basic abc"),), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MALFORMED"),
        (bearer("aud_write_not-a-real-token"), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_UNKNOWN"),
    ],
    ids=["missing", "malformed", "unknown"],
)
def test_auth_failures(running: Running, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode,
                       reason: str) -> None:
    """A call without a usable token is UNAUTHENTICATED with a reason saying what is wrong."""
    with pytest.raises(grpc.RpcError) as caught:
        running.ingest.Track(TRACK, metadata=metadata)
    assert caught.value.code() == code
    assert error_reason(caught.value) == reason


@pytest.mark.parametrize("scope", ["read", "admin"])
def test_wrong_scope_is_permission_denied(running: Running, scope: str) -> None:
    """A known token of another scope is PERMISSION_DENIED, naming the scope needed."""
    with pytest.raises(grpc.RpcError) as caught:
        running.ingest.Track(TRACK, metadata=running.auth(scope))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(caught.value) == "SCOPE_MISSING"
    assert "`write`" in (caught.value.details() or "")
    assert running.query("SELECT count(*) FROM events") == [(0,)]


def test_spaces_are_isolated(running: Running) -> None:
    """Another space's token writes to that space only; message ids are deduplicated per space."""
    running.server.engine.auth.create_space("other", 0)
    other = running.server.engine.auth.create_token("other", "write", 0).token
    request = ingest_pb2.TrackRequest(track=tracking_pb2.Track(message_id="same-id", user_id="u1", event="E"))
    mine = running.ingest.Track(request, metadata=running.auth("write"))
    theirs = running.ingest.Track(request, metadata=bearer(other))
    assert mine.status == theirs.status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
    rows = running.query("SELECT s.name FROM events e JOIN spaces s USING (space_id) ORDER BY s.name")
    assert rows == [("default",), ("other",)]


def test_tokens_are_stored_hashed(running: Running) -> None:
    """No token appears in the database in clear; the bootstrap file is private to its owner."""
    stored = {row[0] for row in running.query("SELECT token_hash FROM tokens")}
    assert len(stored) == 4  # write, read, admin, operator
    assert not stored & set(running.tokens.values())
    credentials = running.db.parent / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_health_and_reflection(running: Running) -> None:
    """Health checking answers SERVING without a token; reflection lists the five services."""
    health = health_pb2_grpc.HealthStub(running.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="audiences.v1.IngestService")).status == 1
    reflect = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"audiences.v1.IngestService", "audiences.v1.ProfilesService", "audiences.v1.AudienceAdminService",
            "audiences.v1.SyncService", "audiences.v1.OperatorService"} <= names


def test_one_log_line_per_rpc(running: Running) -> None:
    """Each RPC logs one `rpc` line with method, code, duration and the request id it was given."""
    with structlog.testing.capture_logs() as logs:
        running.ingest.Track(TRACK, metadata=(*running.auth("write"), ("x-request-id", "req-42")))
        with pytest.raises(grpc.RpcError):
            running.ingest.Track(TRACK, metadata=running.auth("read"))
    lines = [entry for entry in logs if entry["event"] == "rpc"]
    assert [(e["method"], e["code"]) for e in lines] == [
        ("/audiences.v1.IngestService/Track", "OK"), ("/audiences.v1.IngestService/Track", "PERMISSION_DENIED"),
    ]
    assert all(e["duration_ms"] >= 0 for e in lines)


@pytest.mark.parametrize("binary", [True, False])
def test_json_log_lines(monkeypatch: pytest.MonkeyPatch, binary: bool) -> None:
    """JSON logs are one object per line, on a binary stderr (orjson) or a text-only one, and
    values orjson refuses (integers beyond 64 bits) or cannot encode (objects) still make a line."""
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", write_through=True) if binary else io.StringIO()
    monkeypatch.setattr(sys, "stderr", text)
    try:
        logs.configure("json", "info")
        structlog.get_logger("test").info("hello", big=2**70, thing=object(), space="s1")
        structlog.get_logger("test").debug("hidden")
    finally:
        monkeypatch.undo()
        logs.configure("json", "info")
    written = raw.getvalue().decode() if binary else text.getvalue()
    [line] = written.splitlines()
    entry = json.loads(line)
    assert (entry["event"], entry["big"], entry["space"], entry["level"]) == ("hello", 2**70, "s1", "info")
    assert entry["thing"].startswith("<object object")


def test_request_id_is_returned(running: Running) -> None:
    """The server echoes the caller's request id (or a fresh one) in the trailing metadata of a
    call, whether it succeeds or fails; a response stream also has it in its initial metadata."""
    _, call = running.ingest.Track.with_call(TRACK, metadata=(*running.auth("write"), ("x-request-id", "abc")))
    assert dict(call.trailing_metadata())["x-request-id"] == "abc"
    assert "x-request-id" not in dict(call.initial_metadata())
    made = {dict(running.ingest.Track.with_call(TRACK, metadata=running.auth("write"))[1].trailing_metadata())
            ["x-request-id"] for _ in range(3)}
    assert len(made) == 3
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in made)


@pytest.mark.parametrize("given", ["a" * 129, "two words", "semi;colon", "<b>", ""])
def test_a_request_id_that_is_not_one_is_replaced(running: Running, given: str) -> None:
    """A caller's request id is kept only as up to 128 letters, digits and `._:-`: anything else
    (a kilobyte of text, spaces, markup, control characters) gets one of the server's, on
    gRPC and on HTTP alike, so the log's ids are what the server can vouch for."""
    _, call = running.ingest.Track.with_call(TRACK, metadata=(*running.auth("write"), ("x-request-id", given)))
    got = dict(call.trailing_metadata())["x-request-id"]
    assert got != given
    assert len(got) == 32
    if given:
        answer = httpx.get(f"{running.http_url}/healthz", headers={"x-request-id": given})
        assert answer.headers["x-request-id"] != given
        assert len(answer.headers["x-request-id"]) == 32
    kept = "0b1e8c5a-7f3d-4f2a-9c1e-3d5b7a9f1c2e:span.7_x"
    _, call = running.ingest.Track.with_call(TRACK, metadata=(*running.auth("write"), ("x-request-id", kept)))
    assert dict(call.trailing_metadata())["x-request-id"] == kept

    with pytest.raises(grpc.RpcError) as failed:
        running.ingest.Track(ingest_pb2.TrackRequest(), metadata=(*running.auth("write"), ("x-request-id", "bad-1")))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailing = dict(failed.value.trailing_metadata())
    assert trailing["x-request-id"] == "bad-1"
    assert error_reason(failed.value)  # the status details still travel beside the id

    stream = running.sync.ExportAudience(
        sync_pb2.ExportAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="nope"),
        metadata=(*running.auth("admin"), ("x-request-id", "exp-1")))
    assert dict(stream.initial_metadata())["x-request-id"] == "exp-1"
    with pytest.raises(grpc.RpcError) as missing:
        list(stream)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert dict(missing.value.trailing_metadata())["x-request-id"] == "exp-1"


def test_settings_defaults_match_declarations() -> None:
    """The Settings dataclass defaults are the declared defaults, so docs and code agree."""
    assert resolve({}, {}) == Settings()
    assert {s.name for s in SETTINGS} == set(Settings.__dataclass_fields__)


def test_settings_precedence_and_errors() -> None:
    """A flag beats the environment, which beats the default; a bad value names its setting."""
    env = {"AUDIENCES_LISTEN": "0.0.0.0:1", "AUDIENCES_WORKERS": "4"}
    settings = resolve({"listen": "127.0.0.1:2"}, env)
    assert (settings.listen, settings.workers) == ("127.0.0.1:2", 4)
    with pytest.raises(ValueError, match="--workers / AUDIENCES_WORKERS"):
        resolve({"workers": "-3"}, {})


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("tick_interval_ms", "99999999999999999999999", "whole number of milliseconds from 1 to 3,600,000"),
    ("tick_interval_ms", "0", "whole number of milliseconds from 1 to 3,600,000"),
    ("tick_budget_ms", "3600001", "whole number of milliseconds from 1 to 3,600,000"),
    ("workers", "abc", "whole number from 1 to 1,024"),
    ("tick_slice", "-1", "whole number from 0 to 1,000,000,000"),
    ("history_retention_days", "100001", "whole number of days from 1 to 100,000"),
])
def test_whole_number_settings_are_bounded(name: str, text: str, expected: str) -> None:
    """A whole-number setting past what the server can use (a tick interval past what a timer
    takes killed the evaluator's thread) is refused at start, naming the setting and its range."""
    with pytest.raises(ValueError, match=f"--{name.replace('_', '-')} / .*: expected a {expected}, not '{text}'"):
        resolve({name: text}, {})


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "-1", "3600.5", "1e9", "abc", ""])
def test_shutdown_grace_is_finite_seconds_within_an_hour(text: str) -> None:
    """`--shutdown-grace-s` takes seconds from 0 to 3600, by flag or environment; anything else (`inf`
    never stops, `nan`, negative, not a number) is refused with the setting and the range named."""
    assert resolve({"shutdown_grace_s": "0"}, {}).shutdown_grace_s == 0
    assert resolve({}, {"AUDIENCES_SHUTDOWN_GRACE_S": "3600"}).shutdown_grace_s == 3600
    assert resolve({"shutdown_grace_s": "2.5"}, {}).shutdown_grace_s == 2.5
    wrong = f"--shutdown-grace-s / AUDIENCES_SHUTDOWN_GRACE_S: expected seconds from 0 to 3600, not {text!r}"
    with pytest.raises(ValueError, match="expected seconds") as flag:
        resolve({"shutdown_grace_s": text}, {})
    with pytest.raises(ValueError, match="expected seconds") as env:
        resolve({}, {"AUDIENCES_SHUTDOWN_GRACE_S": text})
    assert str(flag.value) == str(env.value) == wrong


def test_cli_creates_spaces_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`spaces create`, `spaces list` and `tokens create` manage tenants in the database file
    (one that exists: they never create it)."""
    db = str(tmp_path / "a.db")
    Engine(Settings(db=Path(db))).close()
    assert cli.main(["spaces", "create", "shop", "--db", db]) == 0
    assert cli.main(["spaces", "create", "shop", "--db", db]) == 1
    assert cli.main(["tokens", "create", "--space", "shop", "--scope", "read", "--db", db]) == 0
    assert cli.main(["tokens", "create", "--space", "nope", "--scope", "read", "--db", db]) == 1
    assert cli.main(["spaces", "list", "--db", db]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "created space shop"
    assert lines[1].startswith("aud_read_")
    assert lines[2:] == ["shop"]
    assert "already exists" in err
    assert "not found" in err


def _bootstrap(db: Path, **changes: Any) -> tuple[Path | None, dict[str, str]]:
    """A first start's bootstrap on `db`: where it wrote its tokens, and the grants they name."""
    engine = Engine(Settings(db=db, **changes))
    try:
        path = engine.bootstrap()
        assert path is not None
        assert path == engine.credentials_written
        tokens = json.loads(path.read_text())["tokens"]
        assert all(engine.auth.grant(token).scope == scope for scope, token in tokens.items())
        return path, tokens
    finally:
        engine.close()


def test_bootstrap_never_overwrites_a_credentials_file(tmp_path: Path) -> None:
    """A database's first start never replaces a credentials file already there (another database's
    bootstrap tokens, their only copy in clear): its own go beside it, named after the database
    file, mode 0600, with a warning naming both; by default beside the database, and as well with a
    credentials file two databases share."""
    first, tokens = _bootstrap(tmp_path / "a.db")
    assert first == tmp_path / "credentials.json"
    with structlog.testing.capture_logs() as logged:
        second, _ = _bootstrap(tmp_path / "b.db")
    assert second == tmp_path / "credentials-b.json"
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
    assert json.loads(first.read_text())["tokens"] == tokens
    [warning] = [entry for entry in logged if entry["event"] == "credentials_file_exists"]
    assert (warning["log_level"], warning["path"], warning["written"]) == ("warning", str(first), str(second))
    (tmp_path / "b.db").unlink()  # a database made again: its old file stays too
    again, _ = _bootstrap(tmp_path / "b.db")
    assert again == tmp_path / "credentials-b-2.json"
    shared = tmp_path / "shared" / "tokens.json"
    assert _bootstrap(tmp_path / "one" / "main.db", credentials_file=str(shared))[0] == shared
    beside, _ = _bootstrap(tmp_path / "two" / "other.db", credentials_file=str(shared))
    assert beside == tmp_path / "shared" / "tokens-other.json"


def test_a_first_start_stopped_before_its_file_was_written_is_done_again(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The space and its tokens are one transaction, and the tokens' only copy in clear is the
    file: a first start that stops before writing it (killed, or failing here) left a space
    whose tokens nobody had, and no file, and later starts did nothing. The next start now
    revokes those tokens and issues new ones, in a file; once written, starts leave them alone."""
    from audiences_server.engine import engine as engine_module

    db = tmp_path / "a.db"
    interrupted = Engine(Settings(db=db))
    try:
        def stopped(path: Path, text: str) -> bool:
            raise OSError("stopped before the file was written")

        monkeypatch.setattr(engine_module, "create_private", stopped)
        with pytest.raises(OSError, match="stopped before"):
            interrupted.bootstrap()
        monkeypatch.undo()
        lost = [row.public_id for row in interrupted.auth.tokens("default", 0, 100)]
        assert len(lost) == 4
    finally:
        interrupted.close()
    assert not (tmp_path / "credentials.json").exists()
    path, tokens = _bootstrap(db)
    assert path == tmp_path / "credentials.json"
    engine = Engine(Settings(db=db))
    try:
        assert engine.bootstrap() is None  # done: left alone
        rows = {row.public_id: row for row in engine.auth.tokens("default", 0, 100)}
        assert all(rows[token_id].revoked_ms is not None for token_id in lost)
        assert sorted(row.label for row in rows.values() if row.revoked_ms is None) == ["bootstrap"] * 4
        assert all(engine.auth.grant(token).scope == scope for scope, token in tokens.items())
    finally:
        engine.close()


def test_bootstrap_only_on_empty_database(tmp_path: Path) -> None:
    """The first start writes credentials for space `default`; later starts leave them alone."""
    from tests.conftest import start

    first = start(tmp_path / "db.sqlite")
    tokens = dict(first.tokens)
    first.server.stop(grace=0)
    second = start(tmp_path / "db.sqlite")
    try:
        assert second.tokens == tokens
        assert json.loads((tmp_path / "credentials.json").read_text())["space"] == "default"
        reply = second.ingest.Track(TRACK, metadata=second.auth("write"))
        assert reply.status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
    finally:
        second.server.stop(grace=0)


def _wait_for(condition: Callable[[], bool], what: str, patience_s: float = 10.0) -> None:
    deadline = time.monotonic() + patience_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {patience_s} s for {what}"
        time.sleep(0.02)


def test_shutdown_refuses_new_http_calls_and_finishes_those_in_flight(tmp_path: Path) -> None:
    """Once shutdown starts, while an open gRPC stream holds it for its grace, a new tracking call
    over HTTP is refused (503 SHUTTING_DOWN, Retry-After) and not stored, the probes still answer
    (`/readyz` 503), and a request already in flight is answered and stored."""
    from tests.conftest import start

    running = start(tmp_path / "a.db")
    release = threading.Event()

    def quiet() -> Iterator[ingest_pb2.StreamCallsRequest]:
        release.wait(30)
        yield from ()

    health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest())  # connected
    stream = running.ingest.StreamCalls.future(quiet(), metadata=running.auth("write"))
    key = base64.b64encode(f"{running.tokens['write']}:".encode()).decode()
    body = json.dumps({"userId": "u1", "event": "Early", "messageId": "in-flight"}).encode()
    in_flight = socket.create_connection(("127.0.0.1", running.server.http_port), timeout=30)
    in_flight.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + key.encode()
                      + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
    http = running.server.http
    assert http is not None
    _wait_for(lambda: http._in_flight == 1, "the request in flight")
    stopping = threading.Thread(target=running.server.stop, kwargs={"grace": 20})
    stopping.start()
    try:
        _wait_for(lambda: httpx.get(f"{running.http_url}/readyz").status_code == 503, "/readyz to turn 503")
        late = httpx.post(f"{running.http_url}/v1/track", headers={"Authorization": f"Basic {key}"},
                          json={"userId": "u1", "event": "Late", "messageId": "late"})
        assert late.status_code == 503
        assert late.headers["Retry-After"] == "1"
        assert late.json() == {"success": False, "code": "SHUTTING_DOWN",
                               "message": "the server is shutting down; retry shortly",
                               "error": {"code": "UNAVAILABLE", "reason": "SHUTTING_DOWN",
                                         "message": "the server is shutting down; retry shortly"}}
        assert httpx.get(f"{running.http_url}/healthz").json() == {"status": "alive"}
        in_flight.sendall(body[5:])
        assert in_flight.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert stopping.is_alive(), "the open stream holds the shutdown for its grace"
    finally:
        in_flight.close()
        release.set()
        stopping.join(30)
        running.channel.close()
    assert stream.result(timeout=10).accepted_count == 0
    assert [row[0] for row in running.query("SELECT message_id FROM events")] == ["in-flight"]


_REFUSED_REQUESTS_KEPT = r'''
import gc, json, sys
from pathlib import Path
import grpc
from audiences.v1 import ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc
from audiences_server import server
from audiences_server.settings import Settings
folder = Path(sys.argv[1])
grpc_server, port = server.create_server(Settings(db=folder / "a.db", listen="127.0.0.1:0", http_listen="",
                                                  log_level="error"))
grpc_server.start()
server._settle_heap()
tokens = json.loads((folder / "credentials.json").read_text())["tokens"]
write = tokens["write"]
channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 16 << 20)])
stub = ingest_pb2_grpc.IngestServiceStub(channel)
big = b'{"batch":[{"type":"track","userId":"u","event":"E","properties":{"p":"' + b"x" * (1 << 20) + b'"}}]}'
gc.collect()
gc.set_debug(gc.DEBUG_SAVEALL)
codes = []
for metadata in ([], [("authorization", "Bearer " + write)], [("authorization", "Bearer " + write)]):
    try:
        stub.BatchJson(ingest_pb2.BatchJsonRequest(body=big if len(codes) < 2 else b"{not json"), metadata=metadata)
    except grpc.RpcError as refused:
        codes.append(refused.code().name)
sync = sync_pb2_grpc.SyncServiceStub(channel)
admin = [("authorization", "Bearer " + tokens["admin"])]
for call in (lambda: sync.WatchChanges(sync_pb2.WatchChangesRequest(destination_key="x" * (1 << 20))),
             # refused by the method, with a message that names the unknown key
             lambda: sync.ExportAudience(sync_pb2.ExportAudienceRequest(collection=1, key="x" * (1 << 20)),
                                         metadata=admin)):
    try:  # response streams
        next(iter(call()))
    except grpc.RpcError as refused:
        codes.append(refused.code().name)
gc.collect()
kept = sum(1 for o in gc.garbage if type(o).__name__.endswith("Request") and o.ByteSize() > 100_000
           or isinstance(o, BaseException) and len(str(o)) > 100_000)
print(json.dumps({"codes": codes, "kept": kept}))
grpc_server.stop(0)
'''


def test_a_refused_request_is_freed_at_once(tmp_path: Path) -> None:
    """Refused gRPC requests (no token; a body over the batch limit; a body that is not JSON; a
    response stream's request without a token; an export of an unknown key, whose error message
    quotes it) are
    freed when their call ends, not kept in reference cycles until the collector's next pass:
    gRPC keeps its abort exception, whose traceback held the frames holding the request, and
    with the collector run rarely a client without a token grew the server by gigabytes of
    8 MiB messages."""
    ran = subprocess.run([sys.executable, "-c", _REFUSED_REQUESTS_KEPT, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    found = json.loads(next(line for line in ran.stdout.splitlines() if line.startswith('{"codes"')))
    assert found == {"codes": ["UNAUTHENTICATED", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "UNAUTHENTICATED",
                               "NOT_FOUND"], "kept": 0}


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_refused_calls_quoting_a_huge_field_leave_the_memory_flat(tmp_path: Path) -> None:
    """Exports of unknown keys of 4 MiB, refused by the method with a message that quotes the key:
    the server's memory stays about flat (the error, kept as the context of gRPC's abort
    exception in a cycle the collector seldom walks, grew it by about the key's size per call)."""
    from audiences.v1 import sync_pb2, sync_pb2_grpc

    from audiences_server.testing import ServerProcess

    server = ServerProcess(tmp_path / "audiences.db")
    try:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 16 << 20)])
        sync = sync_pb2_grpc.SyncServiceStub(channel)
        admin = bearer(server.tokens["admin"])

        def refused(n: int) -> str:
            request = sync_pb2.ExportAudienceRequest(collection=1, key=f"{n}" + "x" * (4 << 20))
            with pytest.raises(grpc.RpcError) as error:
                next(iter(sync.ExportAudience(request, metadata=admin)))
            return error.value.code().name

        assert refused(0) == "NOT_FOUND"
        before = _rss_mib(server.proc.pid)
        assert {refused(n) for n in range(1, 61)} == {"NOT_FOUND"}
        grown = _rss_mib(server.proc.pid) - before
        channel.close()
    finally:
        server.stop()
    assert grown < 120, f"{grown:.0f} MiB more after 60 refused calls of 4 MiB"
