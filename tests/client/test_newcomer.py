"""What a newcomer runs into first: the README's commands and outputs as the CLI has them,
`--json` anywhere, plain English, a quiet exit into `| head`, and flags named where they help."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from audiences import cli

from tests.client.conftest import Result
from tests.conftest import Running

Run = Callable[..., Result]
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _readme_commands() -> list[str]:
    """Every `audiences …` command the README names inline, alternatives (`a|b`) expanded."""
    commands = []
    for code in re.findall(r"`(audiences [^`]+)`", README):
        words = shlex.split(code)[1:]
        choices = [w.split("|") for w in words]
        for index in range(max(len(c) for c in choices)):
            commands.append(" ".join(c[min(index, len(c) - 1)] for c in choices))
    return commands


def _unknown_command(words: list[str]) -> str | None:
    """The first word that stands where the CLI expects a command and is none, else None."""
    parser = cli.build_parser()
    for word in words:
        commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if commands is None or word.startswith("-"):
            return None  # past the command, or a flag of the program's own
        if word not in commands.choices:
            return word
        parser = commands.choices[word]
    return None


def test_readme_commands_are_commands() -> None:
    """Each `audiences …` command in the README's prose names commands the CLI has
    (`audiences audiences list`, not `audiences list`)."""
    commands = _readme_commands()
    assert "audiences list" in commands
    for command in commands:
        unknown = _unknown_command(shlex.split(command))
        assert unknown is None, f"the README says `audiences {command}`; the CLI has no command {unknown!r} there"


def test_json_works_after_the_command(run_cli: Run, unique: Callable[[str], str]) -> None:
    """`--json` is accepted before or after the command, with the same output."""
    before = run_cli("--json", "traits", "list")
    after = run_cli("traits", "list", "--json")
    assert (before.code, after.code) == (0, 0)
    assert json.loads(after.out) == json.loads(before.out)
    user = unique("json_after")
    sent = run_cli("track", user, "Signed In", "--message-id", f"m-{user}", "--json")
    assert json.loads(sent.out)["status"] == "accepted"


def test_help_and_counts_read_as_english(run_cli: Run, unique: Callable[[str], str]) -> None:
    """Help says "an audience"; one member or profile is counted in the singular."""
    help_text = subprocess.run([sys.executable, "-m", "audiences.cli", "audiences", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "create an audience" in help_text
    assert "change an audience's" in help_text
    assert " a audience" not in help_text
    user, key = unique("single"), unique("single_aud")
    run_cli("identify", user, "--traits", json.dumps({"tag": user}), "--timestamp=2027-01-15T07:00:00Z")
    definition = f"trait('tag') = '{user}'"
    assert run_cli("audiences", "preview", "--definition", definition).out.startswith("1 profile at ")
    assert run_cli("audiences", "create", key, "--definition", definition).code == 0
    run_cli("tick", "--until-idle")
    assert run_cli("audiences", "members", key).out.rstrip().endswith("\n1 member")


def test_a_closed_pipe_ends_the_command_quietly(server: Running) -> None:
    """Output into a pipe whose reader has gone (`| head`) ends with status 0 and no error."""
    env = {**os.environ, "AUDIENCES_ADDRESS": f"127.0.0.1:{server.port}",
           "AUDIENCES_CREDENTIALS_FILE": str(server.db.parent / "credentials.json")}
    child = subprocess.Popen([sys.executable, "-m", "audiences.cli", "--json", "audiences", "list"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.close()  # the reader leaves before the command writes
    _, err = child.communicate(timeout=60)
    assert (child.returncode, err.decode()) == (0, "")


def test_a_missing_token_names_the_flag(run_cli: Run, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without any token, the CLI says which of its own flags passes one."""
    (tmp_path / "empty.json").write_text('{"space": "default", "tokens": {}}')
    monkeypatch.setenv("AUDIENCES_CREDENTIALS_FILE", str(tmp_path / "empty.json"))
    refused = run_cli("audiences", "list")
    assert refused.code == 2  # refused before calling
    assert "pass --admin-token (or --token)" in refused.err
    assert "admin_token=" not in refused.err


def test_server_help_lists_the_choices() -> None:
    """`audiences-server serve --help` shows the values of each setting that has a fixed set."""
    shown = subprocess.run([sys.executable, "-m", "audiences_server.cli", "serve", "--help"], capture_output=True,
                           text=True, check=True).stdout
    assert "--synchronous {FULL,NORMAL}" in shown
    assert "--log-format {auto,json,console}" in shown
    assert "--log-level {debug,info,warning,error}" in shown


def test_readme_stub_example_prints_the_status_name(server: Running) -> None:
    """The README's first generated-stub example, pointed at a test server, prints the message id
    and the status by name."""
    section = README.split("\n## First calls with the generated stubs\n", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet
    code = snippet.group(1).replace("var/credentials.json", str(server.db.parent / "credentials.json"))
    code = code.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert printed[1] == "MESSAGE_STATUS_ACCEPTED"
