"""What the client and the CLI refuse, or report, without a traceback: files and tokens they
cannot use, numbers that cannot stand for what they name, strings protobuf cannot encode, a
server that does not answer or speaks TLS, and batches over the server's limits. Each library
failure is an `audiences.AudiencesError` (client-side ones an `InvalidArgument`); each CLI one is
a line `audiences: …` with the documented exit status (2 usage, 3 no answer)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pickle
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import audiences
import grpc
import pytest
import trustme
from audiences import cli
from audiences._cli_computations import parse_duration
from audiences.config import resolve
from audiences.v1 import admin_pb2

from tests.client.conftest import Result
from tests.conftest import Running, start

Run = Callable[..., Result]


@pytest.fixture
def silent() -> Iterator[str]:
    """The address of a server that takes connections and never answers (like one suspended
    with SIGSTOP): the kernel completes the handshake, nothing reads."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def _usage(run_cli: Run, *args: str) -> int:
    """The exit status of a command argparse refuses."""
    with pytest.raises(SystemExit) as refused:
        run_cli(*args)
    return int(refused.value.code or 0)


# -- 1: TLS files --------------------------------------------------------------------------------


def test_an_unreadable_tls_file_is_invalid_argument(tmp_path: Path) -> None:
    """A TLS file that is missing, a directory, or not PEM fails in the constructor with
    InvalidArgument TLS_FILE_UNREADABLE naming it, not a bare OSError from deep inside."""
    (tmp_path / "not.pem").write_text("hello")
    for path, said in ((tmp_path / "missing.pem", "No such file"), (tmp_path, "Is a directory"),
                       (tmp_path / "not.pem", "is not PEM")):
        with pytest.raises(audiences.InvalidArgument) as caught:
            audiences.Client("127.0.0.1:1", "token", tls_ca_file=path)
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TLS_FILE_UNREADABLE")
        assert caught.value.metadata == {"file": str(path), "option": "tls_ca_file"}
        assert str(path) in caught.value.message
        assert said in caught.value.message
        assert isinstance(caught.value, ValueError)
    again = pickle.loads(pickle.dumps(caught.value))
    assert (type(again), again.reason, again.metadata) == (audiences.InvalidArgument, "TLS_FILE_UNREADABLE",
                                                           caught.value.metadata)


def test_the_cli_says_an_unreadable_tls_file_in_one_line(run_cli: Run, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """`--tls-ca-file /missing` or AUDIENCES_TLS_CA_FILE naming a directory: one line, exit 2."""
    missing = tmp_path / "missing.pem"
    result = run_cli("--tls-ca-file", str(missing), "tick")
    assert (result.code, result.err) == (
        2, f"audiences: cannot read the TLS CA file {missing}: No such file or directory "
        "(--tls-ca-file or AUDIENCES_TLS_CA_FILE)\n")
    monkeypatch.setenv("AUDIENCES_TLS_CA_FILE", str(tmp_path))
    result = run_cli("tick")
    assert result.code == 2
    assert result.err.startswith(f"audiences: cannot read the TLS CA file {tmp_path}: Is a directory")
    monkeypatch.delenv("AUDIENCES_TLS_CA_FILE")
    result = run_cli("--tls-cert-file", str(missing), "--tls-key-file", str(missing), "tick")
    assert (result.code, result.err.count("\n")) == (2, 1)
    assert "TLS key file" in result.err


# -- 2, 3: day counts and durations ------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("spaces", "create", "s4", "--event-retention-days", "99999999999"),
    ("spaces", "create", "s4", "--event-retention-days", "nan"),
    ("spaces", "retention", "s4", "-1"),
    ("tokens", "create", "read", "--ttl-days", "1e10"),
    ("tokens", "create", "read", "--ttl-days", "inf"),
    ("tokens", "create", "read", "--ttl-days", "0"),
    ("deletions", "create", "user_id:x", "--delivery-timeout", "1e300"),
    ("deletions", "create", "user_id:x", "--delivery-timeout", "-5"),
    ("deletions", "create", "user_id:x", "--delivery-timeout", "2592001"),
])
def test_day_counts_that_cannot_be_durations_are_usage_errors(run_cli: Run, args: tuple[str, ...],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """NaN, infinities, negatives, zero (where it means nothing) and spans past what a protobuf
    Duration holds are refused by argparse (exit 2), not an OverflowError traceback."""
    assert _usage(run_cli, *args) == 2
    assert "must be a number of" in capsys.readouterr().err


def test_the_library_refuses_durations_a_protobuf_cannot_hold(client: audiences.Client) -> None:
    """`create_space`, `create_token`, … with an infinite, NaN or too long span raise
    InvalidArgument DURATION_INVALID instead of OverflowError."""
    for span in (float("inf"), float("nan"), dt.timedelta(days=999_999_999), 10**400):
        with pytest.raises(audiences.InvalidArgument) as caught:
            client.create_token("read", ttl=span)
        assert caught.value.reason == "DURATION_INVALID"


def test_clock_advance_past_what_a_duration_holds_is_a_usage_error(run_cli: Run) -> None:
    """`clock --advance 99999999999d` says the duration is too long (exit 2), no traceback."""
    result = run_cli("clock", "--advance", "99999999999d")
    assert (result.code, result.err) == (
        2, "audiences: too long a duration: '99999999999d' (at most 10,000 years)\n")
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9" * 400 + "d")
    assert parse_duration("3650000d") == dt.timedelta(days=3_650_000)


# -- 4, 5: timeouts and servers that do not answer ------------------------------------------------


class _RecordingAdmin:
    """An admin stub that records the timeout of each RunTick."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def RunTick(self, request: Any, *, metadata: Any, timeout: float | None,
                wait_for_ready: bool) -> admin_pb2.RunTickResponse:
        self.timeouts.append(timeout)
        return admin_pb2.RunTickResponse()


@pytest.mark.parametrize(("options", "expected"), [
    ({}, 600), ({"timeout": 3}, 3), ({"timeout": 900}, 900), ({"timeout": None}, None),
])
def test_run_tick_takes_a_timeout_the_caller_chose(options: dict[str, Any], expected: float | None) -> None:
    """RunTick may take 600 s under the default timeout (a tick until idle can be long); a
    timeout the caller gave the client applies as it is, None meaning no limit."""
    client = audiences.Client("127.0.0.1:1", "token", **options)
    recorder = _RecordingAdmin()
    client.admin_stub = recorder  # type: ignore[assignment]
    client.run_tick(until_idle=True)
    assert recorder.timeouts == [expected]
    client.close()


def test_a_tick_gives_up_after_the_timeout_given(silent: str) -> None:
    """Against a server that never answers, `Client(timeout=1).run_tick()` fails after about a
    second with DEADLINE_EXCEEDED, its metadata naming the timeout (it used to wait 600 s)."""
    client = audiences.Client(silent, "token", timeout=1)
    began = time.monotonic()
    with pytest.raises(audiences.AudiencesError) as caught:
        client.run_tick(until_idle=True)
    assert time.monotonic() - began < 10
    assert (caught.value.code, caught.value.metadata) == (grpc.StatusCode.DEADLINE_EXCEEDED, {"timeout": "1"})
    client.close()


@pytest.mark.parametrize("command", [("tick",), ("audiences", "list")])
def test_no_answer_within_the_timeout_exits_3(run_cli: Run, silent: str, command: tuple[str, ...]) -> None:
    """An unanswered call is "cannot be reached" (exit 3), naming the address and the timeout;
    `tick` keeps to --timeout too."""
    began = time.monotonic()
    result = run_cli("--address", silent, "--token", "token", "--timeout", "1", *command)
    assert time.monotonic() - began < 10
    assert result.code == 3
    assert result.err.startswith(f"audiences: no answer from the Audiences server at {silent} within 1 s")


@pytest.mark.parametrize("timeout", ["nan", "1e309", "0", "-1", "inf", "ten"])
def test_timeouts_that_are_no_seconds_are_usage_errors(run_cli: Run, timeout: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout nan, 1e309, 0, … is a usage error, not an instant DEADLINE_EXCEEDED."""
    assert _usage(run_cli, "--timeout", timeout, "tick") == 2
    assert "argument --timeout" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1, 1e12])
def test_the_library_refuses_such_timeouts_too(timeout: float) -> None:
    """`Client(timeout=…)` refuses what gRPC would turn into an instant DEADLINE_EXCEEDED."""
    with pytest.raises(audiences.InvalidArgument) as caught:
        audiences.Client("127.0.0.1:1", "token", timeout=timeout)
    assert caught.value.reason == "TIMEOUT_INVALID"


# -- 6: malformed tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["ü", "a\nb", "two words", "tab\t"])
def test_a_malformed_token_is_refused_before_calling(run_cli: Run, token: str) -> None:
    """A token gRPC cannot put in a header (non-ASCII, a newline) or the server could never
    accept (a space) is a usage error naming the flags; the token itself is not printed."""
    result = run_cli("--token", token, "tick")
    assert result.code == 2
    assert result.err.startswith("audiences: the `admin` token is malformed: a token is printable ASCII")
    assert "--admin-token / --token" in result.err
    assert "Invalid metadata" not in result.err


def test_the_library_refuses_a_malformed_token_with_invalid_argument(server: Running) -> None:
    """A method whose token is malformed raises InvalidArgument TOKEN_MALFORMED naming the scope
    and the character, before calling; a queued call reports it to on_error."""
    seen: list[audiences.Undelivered] = []
    client = audiences.Client(f"127.0.0.1:{server.port}", "s3cr\u00e9t", on_error=seen.append)
    with pytest.raises(audiences.InvalidArgument) as caught:
        client.get_evaluator_status()
    assert (caught.value.reason, caught.value.metadata) == (
        "TOKEN_MALFORMED", {"scope": "admin", "position": "4", "character": "'é'"})
    assert "s3cr" not in caught.value.message
    client.track(user_id="u", event="E")
    client.flush(timeout=10)
    assert [u.reason for u in seen] == ["TOKEN_MALFORMED"]
    client.close()


# -- 7: strings protobuf cannot encode -----------------------------------------------------------


def test_a_lone_surrogate_is_invalid_argument_not_unicode_encode_error(client: audiences.Client) -> None:
    """Requests are built in each method; whichever builds it, a lone surrogate raises
    InvalidArgument STRING_NOT_ENCODABLE naming the string and the position."""
    with pytest.raises(audiences.InvalidArgument) as caught:
        client.get_traits("user_id:\ud800")
    assert caught.value.reason == "STRING_NOT_ENCODABLE"
    assert caught.value.metadata == {"position": "8"}
    assert "'user_id:\\ud800'" in caught.value.message
    with pytest.raises(audiences.InvalidArgument, match="cannot be encoded as UTF-8"):
        client.create_audience("sur", "trait('\ud800') = 1")
    with pytest.raises(audiences.InvalidArgument):  # built lazily, in the pager's lambda
        next(iter(client.iter_tokens(space="\udcff")))
    with pytest.raises(audiences.InvalidArgument):
        list(client.export_audience("\ud800"))


def test_the_async_client_raises_the_same(server: Running) -> None:
    """AsyncClient's methods, its own coroutines and async iterators too."""

    async def body() -> None:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens) as async_client:
            client: Any = async_client  # Client's methods, typed as Client's, are coroutines here
            with pytest.raises(audiences.InvalidArgument):
                await client.get_traits("user_id:\ud800")
            with pytest.raises(audiences.InvalidArgument):
                await client.get_audience("\ud800")
            with pytest.raises(audiences.InvalidArgument):
                [chunk async for chunk in client.export_audience("\ud800")]
            with pytest.raises(audiences.InvalidArgument):
                [space async for space in client.iter_tokens(space="\ud800")]

    asyncio.run(body())


def test_the_cli_says_an_unencodable_argument_as_usage(run_cli: Run) -> None:
    """An argument that was not valid UTF-8 on the command line (a surrogate escape) is exit 2."""
    result = run_cli("profile", "traits", "user_id:\udcff")
    assert result.code == 2
    assert result.err.startswith("audiences: cannot send 'user_id:\\udcff' to the server")


# -- 8: import batches ---------------------------------------------------------------------------


def test_import_batch_size_over_the_server_limit_is_a_usage_error(run_cli: Run, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """--batch-size over the server's 2,500 calls (or under 1) is refused before sending."""
    path = tmp_path / "calls.ndjson"
    path.write_text("")
    assert _usage(run_cli, "import", str(path), "--batch-size", "100000") == 2
    assert "must be 1 to 2,500 calls" in capsys.readouterr().err
    assert _usage(run_cli, "import", str(path), "--batch-size", "0") == 2


def test_import_keeps_batches_under_the_byte_limit(run_cli: Run, tmp_path: Path,
                                                   unique: Callable[[str], str]) -> None:
    """Batches are cut by the bytes sent (non-ASCII is escaped, six bytes a character), not the
    lines' lengths; a line that alone is over the batch limit is rejected without sending it
    instead of getting the whole batch refused (BATCH_TOO_LARGE)."""
    user = unique("bytes")
    lines = [json.dumps({"type": "track", "userId": user, "event": "Noted", "messageId": f"{user}-{i}",
                         "properties": {"note": "ü" * 5000}}, ensure_ascii=False) for i in range(60)]
    lines.insert(7, json.dumps({"type": "track", "userId": user, "event": "Huge", "properties": {"x": "y" * 600_000}}))
    path = tmp_path / "calls.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = json.loads(run_cli("--json", "import", str(path), "--batch-size", "2500").out)
    assert (result["accepted"], result["rejected"]) == (60, 1)
    assert [(r["line"], r["reason"]) for r in result["rejected_lines"]] == [(8, "message_too_large")]


def _nested(levels: int) -> str:
    """A JSON object holding arrays `levels` deep under "a"."""
    return '{"a": ' + "[" * levels + "]" * levels + "}"


@pytest.mark.parametrize(
    "args",
    [
        ("track", "u", "E", "--properties", _nested(5000)),
        ("identify", "u", "--traits", _nested(5000)),
        ("group", "u", "g", "--traits", _nested(5000)),
        ("alias", "a", "u", "--context", _nested(5000)),
    ],
)
def test_json_arguments_nested_too_deep_to_read_are_usage_errors(run_cli: Run, args: tuple[str, ...],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """JSON nested past what Python's decoder reads (about a thousand levels) is refused by
    argparse like other bad JSON (exit 2), not a RecursionError traceback."""
    assert _usage(run_cli, *args) == 2
    err = capsys.readouterr().err
    assert ": not JSON that can be read: nested too deeply" in err
    assert "Traceback" not in err


def test_import_rejects_lines_nested_too_deep_and_sends_the_rest(run_cli: Run, tmp_path: Path,
                                                                 unique: Callable[[str], str]) -> None:
    """A line nested past what Python's decoder reads, or past 500 levels (near which the server
    could not read the batch it is in), is rejected by number without sending it; every other
    line is still sent, and the summary printed. A call nested past the server's 32 levels but
    not that far is sent, and the server rejects it alone."""
    user = unique("deep")
    lines = [json.dumps({"type": "track", "userId": user, "event": "E", "messageId": f"{user}-{i}"}) for i in range(4)]
    for line, levels in ((1, 5000), (3, 600), (5, 40)):
        lines.insert(line, f'{{"type": "track", "userId": "{user}", "event": "E", "properties": {_nested(levels)}}}')
    path = tmp_path / "calls.ndjson"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("--json", "import", str(path), "--batch-size", "2")
    assert result.code == 1
    found = json.loads(result.out)
    assert (found["accepted"], found["rejected"]) == (4, 3)
    assert [(r["line"], r["reason"]) for r in found["rejected_lines"]] == [
        (2, "nesting_too_deep"), (4, "nesting_too_deep"), (6, "nesting_too_deep")]
    details = [r["detail"] for r in found["rejected_lines"]]
    assert details[0] == details[1] == "the call nests objects and arrays more than 500 levels deep (not sent)"
    assert details[2].startswith("`properties` nests objects and arrays more than 32 levels deep")
    again = run_cli("import", str(path))
    assert "7 calls: 0 accepted, 4 duplicate, 3 rejected" in again.out
    assert "Traceback" not in again.err


# -- 9: TLS on one side only ------------------------------------------------------------------------


def test_a_server_that_went_away_mid_command_is_not_blamed_on_tls(server: Running) -> None:
    """A connection closed after the server had answered the command (it was killed or
    restarted midway) is said to be that, not a plain-text client of a TLS server."""
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens)
    assert not client.reached
    client.get_space()
    assert client.reached
    client.close()
    closed = audiences.AudiencesError(grpc.StatusCode.UNAVAILABLE, "Stream removed (Socket closed)")
    went_away, status = cli.explain(closed, "127.0.0.1:1", reached=True)
    assert status == 3
    assert "stopped or restarted meanwhile" in went_away
    assert "TLS" not in went_away
    assert "is it serving TLS?" in cli.explain(closed, "127.0.0.1:1")[0]


def test_a_plain_text_client_of_a_tls_server_is_told_to_pass_the_ca(run_cli: Run, tmp_path: Path) -> None:
    """The server closes a plain-text connection at once: the CLI asks whether it serves TLS and
    names --tls-ca-file; with TLS to a plain-text server it says the server does not answer in TLS."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = start(tmp_path / "tls.db", tls_cert=str(tmp_path / "server.pem"), tls_key=str(tmp_path / "server.key"))
    try:
        plain = run_cli("--address", f"127.0.0.1:{tls.port}", "--token", tls.tokens["admin"], "tick")
        assert plain.code == 3
        assert "is it serving TLS? Then pass --tls-ca-file" in plain.err
        served = run_cli("--address", f"127.0.0.1:{tls.port}", "--token", tls.tokens["admin"],
                         "--tls-ca-file", str(tmp_path / "ca.pem"), "tick")
        assert served.code == 0, served.err
    finally:
        tls.channel.close()
        tls.server.stop(grace=1)
    wrong_way = run_cli("--tls-ca-file", str(tmp_path / "ca.pem"), "tick")
    assert wrong_way.code == 3
    assert "is it serving plain text? Then leave out --tls-ca-file" in wrong_way.err


# -- 10: a credentials file named explicitly ------------------------------------------------------


def test_a_named_credentials_file_that_cannot_be_read_is_a_usage_error(run_cli: Run, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--credentials-file (or AUDIENCES_CREDENTIALS_FILE) missing, not JSON, or not holding
    tokens, when the command's token was to come from it: exit 2 naming the file and why,
    instead of "no `admin` token"."""
    missing, garbage, shapeless = tmp_path / "missing.json", tmp_path / "garbage.json", tmp_path / "list.json"
    garbage.write_text("not json")
    shapeless.write_text("[1, 2]")
    result = run_cli("--credentials-file", str(missing), "tick")
    assert (result.code, result.err) == (
        2, f"audiences: cannot read the credentials file {missing}: No such file or directory "
        "(--credentials-file or AUDIENCES_CREDENTIALS_FILE); it was to give the `admin` token this command needs\n")
    result = run_cli("--credentials-file", str(garbage), "profile", "ids", "user_id:x")
    assert result.code == 2
    assert result.err.startswith(f"audiences: the credentials file {garbage} is not JSON")
    assert "the `read` token" in result.err
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(shapeless))
    result = run_cli("tick")
    assert result.code == 2
    assert result.err.startswith(f'audiences: the credentials file {shapeless} holds no "tokens" object')
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(tmp_path))
    assert run_cli("tick").code == 2


def test_a_credentials_file_not_needed_or_by_default_is_not_refused(run_cli: Run, server: Running, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the command's token given otherwise the file does not matter; the default file may
    be absent (then a missing token is the plain "no token", exit 2: refused before calling)."""
    assert run_cli("--credentials-file", str(tmp_path / "missing.json"), "--admin-token", server.tokens["admin"],
                   "tick").code == 0
    monkeypatch.delenv("AUDIENCES_CREDENTIALS_FILE")
    monkeypatch.chdir(tmp_path)  # no var/credentials.json here
    assert run_cli("--token", server.tokens["admin"], "tick").code == 0
    result = run_cli("tick")
    assert result.code == 2
    assert result.err.startswith("audiences: no `admin` token: pass --admin-token")


def test_the_library_says_why_a_named_file_gave_no_token(tmp_path: Path) -> None:
    """The library keeps going without a named file it cannot read (a caller may name
    /nonexistent to read none), but the TOKEN_MISSING it then raises says why."""
    missing = tmp_path / "missing.json"
    client = audiences.Client("127.0.0.1:1", {"write": "w"}, credentials_file=missing)
    assert client.credentials_problem == f"cannot read the credentials file {missing}: No such file or directory"
    with pytest.raises(audiences.AudiencesError) as caught:
        client.get_metadata("user_id:x")
    assert (caught.value.reason, caught.value.metadata) == ("TOKEN_MISSING", {"required_scope": "read"})
    assert f"(cannot read the credentials file {missing}: No such file" in caught.value.message
    client.close()
    assert resolve(credentials_file=missing, environ={}).credentials_problem
    assert not resolve(credentials_file=missing, token="t", environ={}).credentials_problem  # not read
    assert not resolve(environ={"AUDIENCES_DB": str(tmp_path / "x.db")}).credentials_problem  # a default


def test_a_corrupt_default_credentials_file_is_named(run_cli: Run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The default file may be absent, but one that is there and cannot be used is the reason a
    token is missing, and is said to be (it used to be passed over in silence)."""
    (tmp_path / "credentials.json").write_text('{"tokens": ')
    environ = {"AUDIENCES_DB": str(tmp_path / "audiences.db")}
    assert resolve(environ=environ).credentials_problem.startswith(
        f"the credentials file {tmp_path / 'credentials.json'} is not JSON")
    assert not resolve(token="t", environ=environ).credentials_problem  # not read
    monkeypatch.delenv("AUDIENCES_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("AUDIENCES_DB", environ["AUDIENCES_DB"])
    result = run_cli("tick")
    assert result.code == 2
    assert result.err.startswith(f"audiences: the credentials file {tmp_path / 'credentials.json'} is not JSON")


def test_an_integer_longer_than_python_reads_is_said_plainly(run_cli: Run, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An integer of 5,000 digits in a JSON argument is a usage error saying so (not Python's
    advice about `sys.set_int_max_str_digits`), and an import line holding one is rejected by
    number with the same words."""
    assert _usage(run_cli, "track", "u", "E", "--properties", '{"n": ' + "9" * 5000 + "}") == 2
    err = capsys.readouterr().err
    assert "holds an integer of more than 4,300 digits (send it as a string)" in err
    assert "set_int_max_str_digits" not in err
    path = tmp_path / "calls.ndjson"
    path.write_text('{"type": "track", "userId": "u", "event": "E", "properties": {"n": ' + "9" * 5000 + "}}\n")
    found = json.loads(run_cli("--json", "import", str(path)).out)
    assert [(r["line"], r["reason"]) for r in found["rejected_lines"]] == [(1, "bad_request")]
    assert "more than 4,300 digits" in found["rejected_lines"][0]["detail"]
