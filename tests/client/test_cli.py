"""The `audiences` CLI: every command, its output for people and scripts, and its errors."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from audiences import cli
from audiences._cli_computations import parse_duration

from tests.client.conftest import Result
from tests.conftest import Running

Run = Callable[..., Result]
AT = "--timestamp=2027-01-15T07:00:00Z"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("track", "{u}", "Order Completed", "-p", '{"revenue": 30}', AT), "accepted"),
        (("identify", "{u}", "--traits", '{"plan": "pro", "email": "{u}@example.com"}', AT), "accepted"),
        (("page", "{u}", "Pricing", "--category", "Docs", AT), "accepted"),
        (("screen", "{u}", "Home", AT), "accepted"),
        (("group", "{u}", "acct_{u}", "--traits", '{"name": "Acme"}', AT), "accepted"),
        (("alias", "anon_{u}", "{u}", AT), "accepted"),
        (("track", "{u}", "Signed In", "--message-id", "fixed-{u}", AT), "accepted"),
    ],
)
def test_event_commands_send_and_print_status(run_cli: Run, unique: Callable[[str], str], args: tuple[str, ...],
                                              status: str) -> None:
    """Each event command sends one call and prints its status and messageId."""
    user = unique("cli")
    result = run_cli(*[a.replace("{u}", user) for a in args])
    assert (result.code, result.out.split()[0]) == (0, status), result.err


def test_event_command_repeat_is_duplicate_and_json(run_cli: Run, unique: Callable[[str], str]) -> None:
    """A repeated messageId is reported `duplicate`; --json prints the result as JSON."""
    user = unique("dup")
    run_cli("track", user, "Signed In", "--message-id", f"m-{user}")
    result = run_cli("--json", "track", user, "Signed In", "--message-id", f"m-{user}")
    assert json.loads(result.out) == {"message_id": f"m-{user}", "status": "duplicate", "reason": "", "detail": ""}


def test_event_command_errors(run_cli: Run) -> None:
    """A call without ids fails with the reason and exit 1; bad JSON properties are a usage error."""
    result = run_cli("track", "", "Orphan")
    assert result.code == 1
    assert "NO_USER_ANON_ID" in result.err
    with pytest.raises(SystemExit) as usage:
        run_cli("track", "u", "E", "-p", "[1, 2]")
    assert usage.value.code == 2


def test_import_reports_progress_and_rejected_lines(run_cli: Run, tmp_path: Path, unique: Callable[[str], str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`import` sends every line, draws a progress bar, and lists rejected lines by number."""
    user = unique("imp")
    lines = [json.dumps({"type": "track", "userId": user, "event": f"E{i}", "messageId": f"{user}-{i}"})
             for i in range(1200)]
    lines[10] = "{not json"
    lines[500] = json.dumps({"type": "track", "event": "No One"})
    lines.insert(20, "")
    path = tmp_path / "calls.ndjson"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("import", str(path), "--progress")
    assert result.code == 1
    assert "1200 calls: 1198 accepted, 0 duplicate, 2 rejected" in result.out
    assert "11    bad_request" in result.out
    assert "502   no_user_anon_id" in result.out
    assert "importing [" in result.err
    assert "1201/1201" in result.err
    again = json.loads(run_cli("--json", "import", str(path)).out)
    assert (again["duplicate"], [r["line"] for r in again["rejected_lines"]]) == (1198, [11, 502])
    # Lines without a messageId are stored once too when the file is imported again (a first
    # import that failed midway is run again so): each line's id comes from the file up to it.
    bare = tmp_path / "bare.ndjson"
    bare.write_text("".join(json.dumps({"type": "track", "userId": user, "event": "Same"}) + "\n" for _ in range(3)))
    first = json.loads(run_cli("--json", "import", str(bare)).out)
    second = json.loads(run_cli("--json", "import", str(bare)).out)
    assert (first["accepted"], second["accepted"], second["duplicate"]) == (3, 0, 3)


def _define(run_cli: Run, group: str, key: str, definition: str, *extra: str) -> Result:
    result = run_cli(group, "create", key, "--definition", definition, *extra)
    assert result.code == 0, result.err
    return result


def test_audience_commands(run_cli: Run, unique: Callable[[str], str], tmp_path: Path) -> None:
    """create, list, show (status, size, progress), members (paged), preview, update and delete."""
    user, key = unique("member"), unique("seen")
    run_cli("track", user, "Thing Seen", AT)
    run_cli("identify", user, "--traits", f'{{"email": "{user}@example.com"}}', AT)
    definition = f"event('Thing Seen').count() >= 1 AND trait('email') = '{user}@example.com'"
    created = _define(run_cli, "audiences", key, definition)
    assert created.out.startswith(f"created {key} (users): BACKFILLING")
    run_cli("tick", "--until-idle")
    listing = run_cli("audiences", "list")
    assert any(line.split()[:4] == [key, "users", "LIVE", "1"] for line in listing.out.splitlines())
    shown = run_cli("audiences", "show", key)
    assert "status:" in shown.out
    assert "LIVE" in shown.out
    assert "backfill:" in shown.out
    assert "definition:" in shown.out
    members = run_cli("audiences", "members", key, "--page-size", "1", "--traits", "email")
    assert f"user_id:{user}" in members.out
    assert f"{user}@example.com" in members.out
    assert members.out.rstrip().endswith("\n1 member")
    assert json.loads(run_cli("--json", "audiences", "members", key).out)["total_size"] == 1
    preview = run_cli("audiences", "preview", "--definition", definition)
    assert preview.out.startswith("1 profile at 2027-01-15")
    definition_file = tmp_path / "def.ql"
    definition_file.write_text("event('Thing Seen').count() >= 2")
    assert run_cli("audiences", "update", key, "--file", str(definition_file), "--name", "Seen").code == 0
    assert json.loads(run_cli("--json", "audiences", "show", key).out)["name"] == "Seen"
    assert run_cli("audiences", "delete", key).out.strip() == f"deleted {key}"
    missing = run_cli("audiences", "show", key)
    assert missing.code == 1
    assert "NOT_FOUND" in missing.err


def test_bad_definition_shows_line_column_and_caret(run_cli: Run) -> None:
    """validate prints the line, column and a caret under the fault (exit 1); create refuses the
    same definition with the caret on stderr."""
    bad = "event('A')\n  .within(3 dayz).count() >= 1"
    result = run_cli("audiences", "validate", "--definition", bad)
    assert result.code == 1
    assert "at line 2, column 13" in result.out
    assert result.out.splitlines()[-2:] == ["  .within(3 dayz).count() >= 1", "            ^^^^"]
    ok = run_cli("audiences", "validate", "--definition", "event('A').count() >= 1")
    assert ok.code == 0
    assert ok.out.startswith("valid")
    assert "A" in ok.out
    refused = run_cli("audiences", "create", "bad_one", "--definition", bad)
    assert refused.code == 1
    assert "invalid definition" in refused.err
    assert "^^^^" in refused.err
    cycle = run_cli("audiences", "validate", "--key", "z_self", "--definition", "trait('z_self') = true")
    assert (cycle.code, cycle.out.splitlines()[0]) == (
        1, "invalid (DEPENDENCY_CYCLE): definitions would read each other in a cycle: z_self -> z_self")


def test_trait_commands(run_cli: Run, unique: Callable[[str], str]) -> None:
    """Computed traits: create, validate, preview, list, show, update, delete."""
    user, key = unique("spender"), unique("spend")
    run_cli("track", user, "Order Completed", "-p", '{"revenue": 12.5}', AT)
    definition = "event('Order Completed').sum(property('revenue'))"
    assert run_cli("traits", "validate", "--definition", definition).code == 0
    not_scalar = run_cli("traits", "validate", "--definition", "event('A').count() >= 1")
    assert not_scalar.code == 1
    assert "must end in a value" in not_scalar.out
    _define(run_cli, "traits", key, definition)
    run_cli("tick", "--until-idle")
    assert f"{key}  users       LIVE" in run_cli("traits", "list").out
    assert "LIVE" in run_cli("traits", "show", key).out
    assert "12.5" in run_cli("traits", "preview", "--definition", definition, "--sample", "100").out
    assert run_cli("traits", "update", key, "--no-enabled").out.startswith(f"updated {key}: DISABLED")
    assert run_cli("traits", "delete", key).code == 0


def test_account_audience_with_collection_flag(run_cli: Run, unique: Callable[[str], str]) -> None:
    """`--collection accounts` creates an account audience (ANY) that lists under accounts."""
    user, account, key = unique("worker"), unique("acct"), unique("acct_buyers")
    run_cli("group", user, account, AT)
    run_cli("track", user, "Order Completed", AT)
    _define(run_cli, "audiences", key, "ANY event('Order Completed').count() >= 1", "--collection", "accounts")
    run_cli("tick", "--until-idle")
    shown = json.loads(run_cli("--json", "audiences", "show", key, "--collection", "accounts").out)
    assert (shown["collection"], shown["status"], int(shown["size"])) == ("COLLECTION_ACCOUNTS",
                                                                          "COMPUTATION_STATUS_LIVE", 1)
    wrong = run_cli("audiences", "create", unique("x"), "--definition", "ANY event('A').count() >= 1")
    assert wrong.code == 1
    assert "ANY" in wrong.err


def test_profile_commands(run_cli: Run, unique: Callable[[str], str]) -> None:
    """profile traits|events|ids|links|metadata|audiences, for users and (group_id:) accounts."""
    user, account = unique("prof"), unique("org")
    run_cli("identify", user, "--traits", '{"plan": "pro", "seats": 120, "share": 0.5}', AT)
    run_cli("group", user, account, "--traits", '{"industry": "Retail"}', AT)
    run_cli("track", user, "Signed In", "-p", '{"method": "sso", "attempt": 3, "score": 4.0}', AT)
    ref = f"user_id:{user}"
    shown = run_cli("profile", "traits", ref).out
    assert "plan   pro" in shown
    # Integers stay integers in the table and in --json (the gRPC Value alone would say 120.0).
    assert "seats  120\n" in shown
    assert "share  0.5" in shown
    traits = json.loads(run_cli("--json", "profile", "traits", ref).out)["traits"]
    assert {t["key"]: t["value"] for t in traits} == {"plan": "pro", "seats": 120, "share": 0.5}
    assert isinstance(next(t["value"] for t in traits if t["key"] == "seats"), int)
    assert "custom" in run_cli("profile", "traits", ref, "--verbose").out
    events = run_cli("profile", "events", ref, "--event", "Signed In")
    assert "Signed In" in events.out
    # Numbers as sent, in the table and in --json (the Struct alone would say 3.0).
    assert '{"method":"sso","attempt":3,"score":4.0}' in events.out
    listed = json.loads(run_cli("--json", "profile", "events", ref, "--event", "Signed In").out)["events"][0]
    assert listed["properties"] == {"method": "sso", "attempt": 3, "score": 4.0}
    assert isinstance(listed["properties"]["attempt"], int)
    assert isinstance(listed["properties"]["score"], float)
    assert "properties_json" not in listed
    assert f"user_id  {user}" in run_cli("profile", "ids", ref).out
    assert f"group_id:{account}" in run_cli("profile", "links", ref).out
    assert "first message:" in run_cli("profile", "metadata", ref).out
    assert run_cli("profile", "audiences", ref).code == 0
    assert "industry  Retail" in run_cli("profile", "traits", f"group_id:{account}").out
    assert json.loads(run_cli("--json", "profile", "ids", ref).out)["external_ids"][0]["type"] == "user_id"
    missing = run_cli("profile", "traits", "user_id:nobody-at-all")
    assert missing.code == 1
    assert "profile not found" in missing.err


def test_tick_and_clock_on_a_manual_clock(run_cli: Run) -> None:
    """`clock` shows the manual clock; `--advance` and `--set` move it; `tick` prints the tick."""
    before = json.loads(run_cli("--json", "clock").out)
    assert before["clock_mode"] == "CLOCK_MODE_MANUAL"
    assert "clock:            manual" in run_cli("clock", "--advance", "1h30m").out
    after = json.loads(run_cli("--json", "clock").out)["clock_time"]
    assert after > before["clock_time"]
    assert "2030-01-01 00:00:00Z" in run_cli("clock", "--set", "2030-01-01T00:00:00Z").out
    tick = run_cli("tick")
    assert tick.code == 0
    assert tick.out.splitlines()[1].startswith("2030-01-01 00:00:00Z")
    backwards = run_cli("clock", "--set", "2029-01-01T00:00:00Z")
    assert backwards.code == 1
    assert "INVALID_ARGUMENT" in backwards.err


def test_clock_set_is_refused_on_a_system_clock(running: Running, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """On a system-clock server, `clock --set` fails with FAILED_PRECONDITION and exit 1."""
    monkeypatch.setenv("AUDIENCES_ADDRESS", f"127.0.0.1:{running.port}")
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(running.db.parent / "credentials.json"))
    assert cli.main(["clock", "--set", "2030-01-01T00:00:00Z"]) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err


def test_duration_parsing() -> None:
    """Durations are sums of number+unit; anything else is refused."""
    assert parse_duration("1d12h").total_seconds() == 129_600
    assert parse_duration("90s").total_seconds() == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("3 fortnights")


def test_sync_commands_work_or_say_unimplemented(run_cli: Run, unique: Callable[[str], str], tmp_path: Path) -> None:
    """destinations, connections, watch and export either work, or exit 1 saying the server does
    not implement them yet (while SyncService answers UNIMPLEMENTED)."""
    dest, key, user = unique("feed"), unique("watched"), unique("w")
    run_cli("identify", user, "--traits", '{"email": "w@example.com"}', AT)
    _define(run_cli, "audiences", key, "trait('email') = 'w@example.com'")
    run_cli("tick", "--until-idle")
    created = run_cli("destinations", "create", dest, "--grpc-feed")
    if created.code != 0:
        assert "does not implement this yet" in created.err
        for args in (("destinations", "list"), ("destinations", "show", dest), ("connections", "list"),
                     ("connections", "create", dest, key), ("watch", dest, "--limit", "1"),
                     ("audiences", "export", key)):
            result = run_cli(*args)
            assert result.code == 1, args
            assert "does not implement this yet" in result.err, args
        return
    assert dest in run_cli("destinations", "list").out
    assert run_cli("destinations", "show", dest).code == 0
    assert run_cli("connections", "create", dest, key).code == 0
    assert key in run_cli("connections", "list").out
    assert "entered" in run_cli("watch", dest, "--limit", "1").out
    shown = run_cli("connections", "show", dest, key, "--json")
    assert json.loads(shown.out)["delivery"]["pending_count"] == 1  # watching took nothing from the feed
    assert "entered" in run_cli("watch", dest, "--limit", "1", "--ack").out
    shown = run_cli("connections", "show", dest, key, "--json")
    assert json.loads(shown.out)["delivery"]["pending_count"] == 0  # a number, there when 0 too
    out = tmp_path / "members.csv"
    assert run_cli("audiences", "export", key, "--output", str(out)).code == 0
    assert out.read_text().startswith("profile_id")
    exported = out.read_text()
    assert run_cli("audiences", "export", unique("nope"), "--output", str(out)).code == 1
    assert out.read_text() == exported
    assert not list(tmp_path.glob("*.partial"))
    # Written again, a private export stays private (it became 0644, the new file's mode), and a
    # named pipe gets the CSV (it got nothing and became a regular file).
    out.chmod(0o600)
    assert run_cli("audiences", "export", key, "--output", str(out)).code == 0
    assert (out.stat().st_mode & 0o777, out.read_text()) == (0o600, exported)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_text()))
    reader.start()
    assert run_cli("audiences", "export", key, "--output", str(pipe)).code == 0
    reader.join(10)
    assert (read, stat.S_ISFIFO(pipe.stat().st_mode)) == ([exported], True)
    # Through a symbolic link, a failed export leaves the file it points to as it was.
    link = tmp_path / "latest.csv"
    link.symlink_to(out)
    assert run_cli("audiences", "export", unique("nope"), "--output", str(link)).code == 1
    assert (link.is_symlink(), out.read_text()) == (True, exported)
    assert run_cli("audiences", "export", key, "--output", str(link)).code == 0
    assert (link.is_symlink(), out.read_text(), out.stat().st_mode & 0o777) == (True, exported, 0o600)
    # A path naming an open file of the process (/dev/stdout under `>> log`) is written into it
    # as it was opened: appended, not the file replaced (what was in it lost).
    dangling = tmp_path / "next.csv"
    dangling.symlink_to(tmp_path / "not-yet.csv")
    assert run_cli("audiences", "export", unique("nope"), "--output", str(dangling)).code == 1
    assert not (tmp_path / "not-yet.csv").exists()  # a failed export made no empty file
    log = tmp_path / "log.csv"
    log.write_text("kept\n")
    with open(log, "a") as appending:
        assert run_cli("audiences", "export", key, "--output", f"/dev/fd/{appending.fileno()}").code == 0
        # However spelled: through a link, or a path that normalises to it.
        (tmp_path / "to-log").symlink_to(f"/dev/fd/{appending.fileno()}")
        assert run_cli("audiences", "export", key, "--output", str(tmp_path / "to-log")).code == 0
        assert run_cli("audiences", "export", key, "--output", f"/dev/fd/../fd/{appending.fileno()}").code == 0
        assert run_cli("audiences", "export", key, "--output", f"/proc/thread-self/fd/{appending.fileno()}").code == 0
        (tmp_path / "fds").symlink_to("/dev/fd")  # a path through a link to the folder
        through = tmp_path / "fds" / str(appending.fileno())
        assert run_cli("audiences", "export", key, "--output", str(through)).code == 0
    assert log.read_text() == "kept\n" + exported * 5
    closed = run_cli("audiences", "export", key, "--output", "/dev/fd/987")
    assert (closed.code, "/dev/fd/987: not an open file of this process" in closed.err) == (2, True)
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    looping = run_cli("audiences", "export", key, "--output", str(tmp_path / "loop-a"))
    assert (looping.code, looping.err.count("\n"), "loop" in looping.err) == (2, 1, True)
    assert run_cli("connections", "delete", dest, key).code == 0
    assert run_cli("destinations", "delete", dest).code == 0


def test_wrong_scope_token_names_the_scope(run_cli: Run, server: Running) -> None:
    """A token of the wrong scope: the CLI says which scope the command needs and how to pass it."""
    result = run_cli("--admin-token", server.tokens["read"], "audiences", "list")
    assert result.code == 1
    assert "needs an `admin` token, but the token given has scope `read`" in result.err
    assert "--admin-token" in result.err


def test_unknown_and_missing_tokens(run_cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An unknown token is refused by the server; no token at all is refused before calling."""
    unknown = run_cli("--token", "nope", "audiences", "list")
    assert unknown.code == 1
    assert "TOKEN_UNKNOWN" in unknown.err
    (tmp_path / "empty.json").write_text('{"space": "default", "tokens": {}}')
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(tmp_path / "empty.json"))
    missing = run_cli("profile", "ids", "user_id:x")
    assert missing.code == 2
    assert "no `read` token" in missing.err


def test_unreachable_server_exits_3(run_cli: Run) -> None:
    """An address where no server listens: the CLI says it cannot reach it, and exits 3."""
    result = run_cli("--address", "127.0.0.1:1", "--timeout", "5", "audiences", "list")
    assert result.code == 3
    assert "cannot reach the Audiences server at 127.0.0.1:1" in result.err
    assert "make run" in result.err


def test_default_credentials_file_needs_no_flags(server: Running, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Run from the folder holding `var/credentials.json`, the CLI needs only the address."""
    for name in ("AUDIENCES_CREDENTIALS_FILE", "AUDIENCES_TOKEN", "AUDIENCES_ADMIN_TOKEN", "AUDIENCES_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(server.db.parent.parent)
    monkeypatch.setenv("AUDIENCES_ADDRESS", f"127.0.0.1:{server.port}")
    assert cli.main(["clock"]) == 0
    assert "clock:" in capsys.readouterr().out
