"""The client and CLI for explain, diff, history, versions, rollback and the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable

import audiences
import pytest

from tests.client.conftest import Result
from tests.conftest import Running

Run = Callable[..., Result]
BIG = "event('{event}').where(property('revenue') >= 100).within(30 days).count() >= 1"


def _buyers(client: audiences.Client, run_cli: Run, unique: Callable[[str], str]) -> tuple[str, str, str]:
    """A big buyer (one order of 120) and a small one, and a live audience of big buyers, on an
    event name of their own (the server is shared)."""
    key, big, small = unique("buyers"), unique("ada"), unique("grace")
    clock = client.get_evaluator_status().clock_time.ToDatetime(tzinfo=dt.UTC)
    at = f"--timestamp={(clock - dt.timedelta(hours=1)).isoformat()}"  # other tests move the shared clock
    run_cli("track", big, f"Order {key}", "-p", '{"revenue": 120}', "--message-id", f"m-{big}", at)
    run_cli("track", small, f"Order {key}", "-p", '{"revenue": 15}', at)
    client.create_audience(key, BIG.format(event=f"Order {key}"))
    client.wait_until_live()
    return key, big, small


def test_explain_prints_the_tree_the_events_and_the_next_change(client: audiences.Client, run_cli: Run,
                                                                 unique: Callable[[str], str]) -> None:
    """`explain KEY TYPE:VALUE` shows the value, each part with its value, the order that decided it
    (message id and revenue), and when the member leaves; `--json` gives the reply."""
    key, big, _ = _buyers(client, run_cli, unique)
    result = run_cli("explain", key, f"user_id:{big}")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].endswith(": true")
    assert lines[1] == f"[true] {BIG.format(event=f'Order {key}')}"
    assert any(f"m-{big}" in line and "property('revenue')=120" in line for line in lines)
    assert lines[-1].startswith("next: leaves at ")
    assert "falls out of `within(30 days)`" in lines[-1]
    data = json.loads(run_cli("--json", "explain", key, f"user_id:{big}").out)
    assert data["value_json"] == "true"
    missing = run_cli("explain", key, "user_id:nobody-at-all")
    assert (missing.code, "PROFILE_NOT_FOUND" in missing.err) == (1, True)


def test_diff_counts_what_an_edit_would_change(client: audiences.Client, run_cli: Run,
                                               unique: Callable[[str], str]) -> None:
    """`audiences diff KEY --definition …` prints the counts and a sample of each outcome, and saves nothing."""
    key, _big, small = _buyers(client, run_cli, unique)
    result = run_cli("audiences", "diff", key, "--definition", f"event('Order {key}').count() >= 1")
    assert result.code == 0, result.err
    assert f"{key}: 1 would enter, 0 would exit, 1 would stay" == result.out.splitlines()[0]
    assert f"user_id:{small}" in result.out
    found = client.diff_definition(key, f"event('Order {key}').where(property('revenue') < 100).count() >= 1")
    assert (found.entering_count, found.exiting_count, found.staying_count) == (1, 1, 0)
    assert client.get_audience(key).definition == BIG.format(event=f"Order {key}")
    # An edit of an option alone, diffed with it: an anonymous big buyer would enter once
    # anonymous users count; the saved options are untouched.
    clock = client.get_evaluator_status().clock_time.ToDatetime(tzinfo=dt.UTC)
    sent = run_cli("track", "", f"Order {key}", "-p", '{"revenue": 500}', "--anonymous-id", unique("anon"),
                   f"--timestamp={(clock - dt.timedelta(hours=1)).isoformat()}")
    assert sent.code == 0, sent.err
    client.wait_until_live()
    text = BIG.format(event=f"Order {key}")
    assert client.diff_definition(key, text).entering_count == 0
    anonymous = client.diff_definition(key, text, include_anonymous_users=True)
    assert (anonymous.entering_count, anonymous.exiting_count, anonymous.staying_count) == (1, 0, 1)
    assert not client.get_audience(key).options.include_anonymous_users


def test_history_draws_sizes_and_lists_changes(client: audiences.Client, run_cli: Run,
                                               unique: Callable[[str], str]) -> None:
    """`audiences history KEY` draws the size per hour; `--changes` and `profile history` list the entry."""
    key, big, _ = _buyers(client, run_cli, unique)
    drawn = run_cli("audiences", "history", key, "--points", "3")
    assert drawn.code == 0, drawn.err
    assert drawn.out.splitlines()[0] == f"{key}: size now 1"
    assert "█" in drawn.out
    changes = run_cli("audiences", "history", key, "--changes")
    assert f"user_id:{big}" in changes.out
    assert "entered" in changes.out
    profile = run_cli("profile", "history", f"user_id:{big}")
    assert key in profile.out
    series = client.get_size_history(key, interval="daily")
    assert series.points[-1].size == series.current_size == 1
    with pytest.raises(audiences.InvalidArgument, match="hourly, daily"):  # an AudiencesError, a ValueError too
        client.get_size_history(key, interval="weekly")


def test_versions_rollback_and_audit(client: audiences.Client, run_cli: Run, unique: Callable[[str], str]) -> None:
    """Two versions listed newest first; `rollback KEY 1` makes version 3 with version 1's text;
    `audit --target KEY` lists the create and both updates with the token's label."""
    key, _, _ = _buyers(client, run_cli, unique)
    client.update_audience(key, definition=f"event('Order {key}').count() >= 2")
    client.wait_until_live()
    listed = run_cli("audiences", "versions", key)
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["*2", "1"]
    rolled = run_cli("audiences", "rollback", key, "1")
    assert rolled.code == 0, rolled.err
    client.wait_until_live()
    latest = next(client.iter_definition_versions(key))
    assert (latest.version, latest.definition, latest.current) == (3, BIG.format(event=f"Order {key}"), True)
    assert client.get_audience(key).size == 1
    audit = run_cli("audit", "--target", key)
    assert [line.split()[3] for line in audit.out.splitlines()[1:]] == ["update", "update", "create"]
    assert all(entry.actor == "bootstrap" for entry in client.iter_audit_entries(target=key))


def test_a_rollback_that_changes_nothing_says_so(client: audiences.Client, run_cli: Run,
                                                unique: Callable[[str], str]) -> None:
    """`rollback KEY 1` to the current text and options makes no version and no audit entry, and
    says nothing changed with the real status; a version below 1 is refused with the server's
    VERSION_INVALID wording (exit 2, nothing sent); `rollback` to an older text prints the new
    version and the status."""
    key, _, _ = _buyers(client, run_cli, unique)
    same = run_cli("audiences", "rollback", key, "1")
    assert same.code == 0, same.err
    assert same.out.strip() == (f"{key} already has version 1's text and options: nothing changed"
                                " (still version 1; LIVE)")
    assert [v.version for v in client.iter_definition_versions(key)] == [1]
    assert [e.action for e in client.iter_audit_entries(target=key)] == ["create"]
    for version in ("0", "-1"):
        refused = run_cli("audiences", "rollback", key, version)
        assert refused.code == 2
        assert "`version` must be from 1 to 2,147,483,647" in refused.err
    with pytest.raises(audiences.AudiencesError, match="must be from 1") as caught:
        client.rollback_definition(key, 0)
    assert caught.value.reason == "VERSION_INVALID"
    client.update_audience(key, definition=f"event('Order {key}').count() >= 2")
    client.wait_until_live()
    rolled = run_cli("audiences", "rollback", key, "1")
    assert rolled.out.strip().startswith(f"{key} rolled back to version 1's definition: saved as version 3; ")
    assert rolled.out.strip().rsplit("; ", 1)[1] in ("BACKFILLING", "LIVE")


@pytest.mark.parametrize("points", ["0", "-3", "2001"])
def test_history_refuses_a_number_of_points_it_cannot_draw(run_cli: Run, capsys: pytest.CaptureFixture[str],
                                                          points: str) -> None:
    """`--points` below 1 or past the server's 2,000 per series is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as refused:
        run_cli("audiences", "history", "anything", f"--points={points}")
    assert refused.value.code == 2
    assert "--points: must be 1 to 2,000 intervals" in capsys.readouterr().err


def test_the_async_client_explains_and_rolls_back(server: Running, unique: Callable[[str], str]) -> None:
    """AsyncClient: explain, diff and history are coroutines; its rollback reads the old version,
    then updates to it."""
    key = unique("async_trait")

    async def body() -> None:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens) as client:
            await client.create_computed_trait(key, f"event('E {key}').count()")
            await client.update_computed_trait(key, definition=f"event('E {key}').within(7 days).count()")
            await client.wait_until_live(timeout=30)
            rolled = await client.rollback_definition(key, 1)
            assert rolled.definition == f"event('E {key}').count()"
            versions = [v.version async for v in client.iter_definition_versions(key)]
            assert versions == [3, 2, 1]
            found = await client.diff_definition(key, f"event('E {key}').count()", kind="computed_trait")
            assert found.exiting_count == 0
            edited = await client.diff_definition(key, f"event('E {key}').count()", kind="computed_trait",
                                                  backfill_days=7)
            assert edited.exiting_count == 0

    asyncio.run(body())
