"""The README's walkthrough and client snippet, run verbatim against a real server, so they cannot drift."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audiences_server.testing import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block(heading: str, language: str) -> str:
    """The first fenced block of a language after a `## heading`."""
    section = README.split(f"\n## {heading}\n", 1)[1]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found, f"no ```{language} block after ## {heading}"
    return found.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real `audiences-server serve` (system clock) in a child process."""
    process = ServerProcess(Path(tmp_path_factory.mktemp("readme")) / "audiences.db")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def env(server: ServerProcess) -> dict[str, str]:
    """The environment a reader has after `. .venv/bin/activate`, pointed at the test's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIENCES_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AUDIENCES_ADDRESS"] = server.address
    env["AUDIENCES_CREDENTIALS_FILE"] = str(server.db.parent / "credentials.json")
    return env


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def test_walkthrough_runs_as_written(env: dict[str, str]) -> None:
    """Every command of the README's walkthrough runs and prints what the README says it does:
    accepted events, the caret under the bad definition, LIVE audiences with the sizes the text
    names, ada's computed traits, her explanation (the order's revenue, when she leaves) and the
    diff's counts."""
    commands = [line for line in _block("Walkthrough", "sh").splitlines() if line.strip()]
    outputs = {}
    for command in commands:
        result = _run(command, env)
        outputs[command] = result
        expected_code = 1 if " validate " in command else 0
        assert result.returncode == expected_code, (command, result.stdout, result.stderr)
        if command.startswith(("audiences track", "audiences identify", "audiences group")):
            assert result.stdout.startswith("accepted ")
        if "tick --until-idle" in command:
            time.sleep(0.5)  # the system clock's own ticks settle anything that arrived meanwhile
    validate = next(r for c, r in outputs.items() if " validate " in c)
    shown = _block("Walkthrough", "text")
    assert validate.stdout == shown
    listing = next(r for c, r in outputs.items() if c.endswith("audiences audiences list")).stdout
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert rows["big_buyers"][1:4] == ["users", "LIVE", "1"]
    assert rows["buying_accounts"][1:4] == ["accounts", "LIVE", "1"]
    members = next(r for c, r in outputs.items() if "members big_buyers" in c).stdout
    assert "user_id:ada" in members
    assert "grace" not in members
    traits = next(r for c, r in outputs.items() if "profile traits user_id:ada" in c).stdout
    assert re.search(r"big_buyers\s+true", traits)
    assert re.search(r"lifetime_revenue\s+120", traits)
    links = next(r for c, r in outputs.items() if "profile links" in c).stdout
    assert "group_id:acme" in links
    explained = next(r for c, r in outputs.items() if c.startswith("audiences explain")).stdout.splitlines()
    assert explained[0].endswith(": true")
    assert "property('revenue')=120" in explained[4]
    assert explained[-1].startswith("next: leaves at ")
    assert explained[-1].endswith("falls out of `within(30 days)`")
    diff = next(r for c, r in outputs.items() if " diff " in c).stdout
    assert diff.splitlines()[0] == "big_buyers: 1 would enter, 0 would exit, 1 would stay"


def test_client_in_ten_lines_runs_as_written(env: dict[str, str], server: ServerProcess) -> None:
    """The README's client snippet runs unchanged and prints the audience's size and lin's membership."""
    snippet = _block("The client in ten lines", "python")
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 10
    result = subprocess.run([sys.executable, "-c", snippet], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True"]
