"""Migration 0014_history_versions_audit on a database that already has change records and
definitions: the history, the size series and the versions are filled in from them."""

from __future__ import annotations

from pathlib import Path

from audiences_server.store import history as history_store
from tests.conftest import start
from tests.test_migrations import _before

HOUR = 3_600_000


def test_an_upgraded_database_has_its_past_as_history_sizes_and_versions(tmp_path: Path) -> None:
    """Entries and exits become history rows (link records do not), each hour's counts and running
    size a size bucket, and each definition as it stands its current version (sized when LIVE)."""
    db = tmp_path / "audiences.db"
    conn = _before(db, "0014_history_versions_audit")
    with conn:
        conn.executemany(
            "INSERT INTO computations (computation_id, space_id, kind, collection, key, public_id, name, description,"
            " definition, enabled, options, status, size, created_ms, updated_ms, last_computed_ms, version)"
            " VALUES (?, 1, ?, 'users', ?, ?, ?, '', ?, 1, '{}', ?, ?, 0, ?, ?, ?)",
            [(7, "audience", "pros", "aud_1", "pros", "trait('plan') = 'pro'", "LIVE", 1, 50, 2 * HOUR, 3),
             (8, "computed_trait", "spend", "trt_1", "spend", "event('A').count()", "BACKFILLING", 1, 60, None, 1)])
        conn.executemany(
            "INSERT INTO changes (change_id, space_id, computation_id, profile_id, change, old_value, new_value,"
            " at_ms, user_id) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
            [(1, 7, 10, "entered", None, "true", 10, None), (2, 7, 11, "entered", None, "true", 20, None),
             (3, 7, 10, "exited", "true", "false", HOUR + 5, None), (4, 7, 11, "user_linked", "true", "true",
                                                                       HOUR + 6, 12),
             (5, 8, 10, "changed", None, "3", HOUR + 7, None)])
    conn.close()
    # A long history retention: these records are from 1970, and the first tick would prune them.
    running = start(db, manual_clock=True, history_retention_days=100_000)
    try:
        # The history is the change records since 0019_history_in_changes: link records are not in it.
        with running.server.engine.readers.snapshot() as conn:
            found = history_store.records(conn, space_id=1, profile_ids=None, computation_id=None, since_ms=0,
                                          until_ms=None, after=0, limit=10)
        assert [(r["history_id"], r["computation_id"], r["change"]) for r in found] == [
            (1, 7, "entered"), (2, 7, "entered"), (3, 7, "exited"), (5, 8, "changed")]
        assert running.query("SELECT computation_id, hour_ms, entered, exited, changed, size FROM size_history"
                             " ORDER BY 1, 2") == [(7, 0, 2, 0, 0, 2), (7, HOUR, 0, 1, 0, 1), (8, HOUR, 1, 0, 0, 1)]
        versions = running.query("SELECT computation_id, version, actor, backfilled_ms, size_after_backfill"
                                 " FROM definition_versions ORDER BY 1")
        assert versions == [(7, 3, "", 2 * HOUR, 1), (8, 1, "", None, None)]
    finally:
        running.channel.close()
        running.server.stop(grace=1)
