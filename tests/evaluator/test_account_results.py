"""Account audiences' stored user results (`member_results`) against the reference interpreter."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from audiences_server.engine import evaluator
from tests.conftest import start
from tests.evaluator.conftest import T0, Space, new_space


def _acme_with_one_pro(space: Space) -> None:
    """Account acme with users u1 (pro) and u2 (free), and `has_pro` (ANY user is pro) holding it."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
               {"type": "identify", "userId": "u2", "traits": {"plan": "free"}},
               {"type": "group", "userId": "u1", "groupId": "acme"},
               {"type": "group", "userId": "u2", "groupId": "acme"})
    space.define("has_pro", "ANY (trait('plan') = 'pro')", collection="accounts")
    space.tick()
    assert space.member_ids("has_pro", "accounts") == {"group_id:acme"}


def test_a_database_upgraded_to_member_results_keeps_its_live_account_audiences_exact(tmp_path: Path) -> None:
    """A LIVE account audience of a database made before `member_results` existed has no stored
    user results: when one user's result moves, its account must still read every other user's."""
    db = tmp_path / "audiences.db"
    running = start(db, manual_clock=True)
    running.server.engine.clock.set(T0)
    space = new_space(running)
    _acme_with_one_pro(space)
    running.channel.close()
    running.server.stop(grace=1)
    # The database as the previous release left it: no member_results, migration 0011 not applied.
    conn = apsw.Connection(str(db))
    conn.execute("DROP TABLE member_results; DELETE FROM _migrations WHERE name = '0011_member_results'")
    conn.close()
    running = start(db, manual_clock=True)
    try:
        running.server.engine.clock.set(T0)
        space = Space(running, space.space_id, space.tokens)
        space.send({"type": "identify", "userId": "u2", "traits": {"plan": "basic"}})  # u2 still not pro
        space.tick()
        assert space.member_ids("has_pro", "accounts") == {"group_id:acme"}
        assert space.stored() == space.expected()
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def test_an_account_touched_after_a_user_audience_it_reads_is_disabled(space: Space) -> None:
    """Once a user audience read inside ANY is switched off, re-evaluating the account (here, a new
    user linked to it) reads its users as the interpreter does, not their results from before."""
    space.send({"type": "track", "userId": "u1", "event": "Login"},
               {"type": "group", "userId": "u1", "groupId": "acme"})
    space.define("active", "event('Login').count() >= 1")
    space.define("has_active", "ANY (trait('active') = true)", collection="accounts")
    space.tick()
    assert space.member_ids("has_active", "accounts") == {"group_id:acme"}
    space.update("active", enabled=False)
    space.tick()
    # The account is stale here whatever the release (a disabled audience touches no reader);
    # a change to the account itself must bring it back in line.
    space.send({"type": "group", "userId": "u2", "groupId": "acme"})
    space.tick()
    assert space.stored() == space.expected()


def test_users_changed_in_one_batch_but_evaluated_in_two_jobs_record_no_phantom_exit(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two users of an account trade places in one batch (the account stays in): when their
    touches are taken by different jobs of the tick, the account records no exit and re-entry."""
    _acme_with_one_pro(space)
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
               {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}})
    monkeypatch.setattr(evaluator, "JOB_PROFILES", 1)  # one touched profile per job
    space.tick()
    assert space.member_ids("has_pro", "accounts") == {"group_id:acme"}
    records = space.running.query(
        "SELECT change FROM changes JOIN computations USING (computation_id)"
        " WHERE computations.space_id = ? AND key = 'has_pro' ORDER BY change_id",
        (space.space_id,),
    )
    assert [r[0] for r in records] == ["entered"]
