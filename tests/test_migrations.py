"""Migrations: names are unique, and each migration that rebuilds a table keeps its rows when a
database of the version before it is upgraded by the real server."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest

from audiences_server.store.db import connect
from audiences_server.store.migrations import MIGRATIONS, applied, migrate, migration
from tests.conftest import start


def test_two_migrations_with_one_name_are_refused() -> None:
    """Declaring a migration under a name already taken fails at once and registers nothing."""
    before = list(MIGRATIONS)
    with pytest.raises(ValueError, match="two migrations are named '0001_spaces_and_tokens'"):
        migration("0001_spaces_and_tokens")
    assert list(MIGRATIONS) == before
    assert len({name for name, _ in MIGRATIONS}) == len(MIGRATIONS)


def _before(path: Path, name: str) -> apsw.Connection:
    """A database file at the version just before migration `name`."""
    conn = connect(path)
    applied(conn)
    for declared, fn in MIGRATIONS:
        if declared == name:
            return conn
        with conn:
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES (?, 0)", (declared,))
    raise AssertionError(f"no migration {name}")


def _unlinks_fixture(conn: apsw.Connection) -> None:
    conn.executemany(
        "INSERT INTO changes (change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
        " VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
        [(1, 7, 10, "entered", None, "true", 1_000), (2, 7, 10, "exited", "true", "false", 2_000),
         (5, 8, 11, "changed", '"a"', '["x", 1]', 3_000)],
    )
    conn.execute("INSERT INTO links (user_id, account_id, linked_ms) VALUES (10, 20, 1500)")


def _unlinks_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT change_id, computation_id, profile_id, change, old_value, new_value, at_ms, user_id"
                 " FROM changes ORDER BY change_id") == [
        (1, 7, 10, "entered", None, "true", 1_000, None), (2, 7, 10, "exited", "true", "false", 2_000, None),
        (5, 8, 11, "changed", '"a"', '["x", 1]', 3_000, None)]
    assert query("SELECT user_id, account_id, linked_ms, last_linked_ms FROM links") == [(10, 20, 1500, 1500)]
    indexes = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'changes'")}
    assert "changes_by_computation" in indexes


def _tokens_fixture(conn: apsw.Connection) -> None:
    # A database that has a space was bootstrapped before: its credentials file is beside it.
    (Path(conn.filename).parent / "credentials.json").write_text('{"space": "shop", "tokens": {}}')
    conn.execute("INSERT INTO spaces (space_id, name, created_ms) VALUES (1, 'shop', 100)")
    conn.executemany(
        "INSERT INTO tokens (token_id, space_id, scope, token_hash, label, created_ms) VALUES (?, 1, ?, ?, ?, ?)",
        [(1, "write", "h1", "checkout", 100), (2, "admin", "h2", "", 200)],
    )


def _tokens_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT token_id, space_id, scope, token_hash, label, created_ms, expires_ms, revoked_ms,"
                 " last_used_ms FROM tokens WHERE space_id = 1 ORDER BY token_id") == [
        (1, 1, "write", "h1", "checkout", 100, None, None, None), (2, 1, "admin", "h2", "", 200, None, None, None)]
    public = [str(r[0]) for r in query("SELECT public_id FROM tokens WHERE space_id = 1")]
    assert len(set(public)) == 2
    assert all(p.startswith("tok_") for p in public)
    assert query("SELECT event_retention_ms FROM spaces WHERE space_id = 1") == [(None,)]


def _kinds_fixture(conn: apsw.Connection) -> None:
    conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                 " policy, feed_acked, created_ms, updated_ms) VALUES (3, 1, 'hook', 'dst_1', 'Hook', 'webhook', 1,"
                 " '{\"url\": \"http://h/\"}', '{}', 0, 100, 200)")
    conn.execute("INSERT INTO connections (connection_id, destination_id, computation_id, options, phase, cursor,"
                 " snapshot_after, delivered_count, last_error, created_ms, updated_ms)"
                 " VALUES (4, 3, 9, '{}', 'LIVE', 12, 40, 7, 'HTTP 500', 100, 300)")
    conn.execute("INSERT INTO deliveries (connection_id, destination_id, profile_id, message_id, record, state,"
                 " next_ms, created_ms) VALUES (4, 3, 40, 'syn_1', '{}', 'pending', 0, 400)")


def _kinds_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT destination_id, key, public_id, kind, config, updated_ms FROM destinations") == [
        (3, "hook", "dst_1", "webhook", '{"url": "http://h/"}', 200)]
    assert query("SELECT connection_id, destination_id, computation_id, phase, cursor, snapshot_after,"
                 " delivered_count, last_error FROM connections") == [(4, 3, 9, "LIVE", 12, 40, 7, "HTTP 500")]
    assert query("SELECT connection_id, message_id FROM deliveries") == [(4, "syn_1")]
    schema = str(query("SELECT sql FROM sqlite_master WHERE name = 'destinations'")[0][0])
    assert "CHECK" not in schema
    references = query("SELECT \"table\" FROM pragma_foreign_key_list('connections')")
    assert references == [("destinations",)]
    assert query("SELECT name FROM sqlite_master WHERE name = 'connections_by_computation'")


# Next change times far ahead, so that the server's first tick leaves them be.
_LATER = 4_000_000_000_000


def _by_profile_fixture(conn: apsw.Connection) -> None:
    conn.executemany("INSERT INTO computed_values (computation_id, profile_id, value, updated_ms) VALUES (?, ?, ?, ?)",
                     [(7, 11, "true", 100), (7, 10, "false", 200), (8, 10, '["x", 1]', 300)])
    conn.executemany("INSERT INTO due (computation_id, profile_id, due_ms) VALUES (?, ?, ?)",
                     [(7, 11, _LATER + 5), (8, 10, _LATER + 4), (8, 12, _LATER + 6)])


def _by_profile_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT computation_id, profile_id, value, updated_ms FROM computed_values"
                 " ORDER BY computation_id, profile_id") == [
        (7, 10, "false", 200), (7, 11, "true", 100), (8, 10, '["x", 1]', 300)]
    assert _due_pairs(query) == [(8, 10, _LATER + 4), (7, 11, _LATER + 5), (8, 12, _LATER + 6)]
    # Keyed by profile first, with the index that reads by computation go through.
    keyed = query("SELECT name FROM pragma_index_xinfo('sqlite_autoindex_computed_values_1') WHERE key = 1"
                  " ORDER BY seqno")
    assert keyed[:2] == [("profile_id",), ("computation_id",)]
    indexes = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert {"computed_values_by_computation", "due_by_time"} <= indexes
    assert "computed_values_by_profile" not in indexes


def _due_pairs(query: Callable[..., list[tuple[object, ...]]]) -> list[tuple[object, ...]]:
    """The next change times as (computation, profile, time), earliest first."""
    return query("SELECT CAST(t.key AS INTEGER), due.profile_id, t.value FROM due, json_each(due.times) AS t"
                 " ORDER BY t.value")


def _due_fixture(conn: apsw.Connection) -> None:
    conn.executemany("INSERT INTO due (computation_id, profile_id, due_ms) VALUES (?, ?, ?)",
                     [(7, 11, _LATER + 5), (8, 10, _LATER + 4), (8, 11, _LATER + 3), (9, 11, _LATER + 9)])


def _due_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    # One row per profile: its earliest time, and its time under each computation.
    assert query("SELECT profile_id, due_ms, times FROM due ORDER BY profile_id") == [
        (10, _LATER + 4, f'{{"8":{_LATER + 4}}}'),
        (11, _LATER + 3, f'{{"7":{_LATER + 5},"8":{_LATER + 3},"9":{_LATER + 9}}}')]
    assert _due_pairs(query) == [(8, 11, _LATER + 3), (8, 10, _LATER + 4), (7, 11, _LATER + 5), (9, 11, _LATER + 9)]
    assert query("SELECT name FROM pragma_index_info('due_by_time')") == [("due_ms",)]


def _history_fixture(conn: apsw.Connection) -> None:
    # A connection whose cursor is past the greatest id left (the newest records were deleted).
    conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                 " policy, feed_acked, created_ms, updated_ms) VALUES (3, 1, 'hook', 'dst_1', 'Hook', 'webhook', 1,"
                 " '{\"url\": \"http://h/\"}', '{}', 0, 100, 200)")
    conn.execute("INSERT INTO connections (connection_id, destination_id, computation_id, options, phase, cursor,"
                 " created_ms, updated_ms) VALUES (4, 3, 7, '{}', 'LIVE', 9, 100, 300)")
    rows = [(1, 7, 10, "entered", None, "true", _LATER, None), (2, 7, 11, "user_linked", "true", "true", _LATER, 12),
            (3, 8, 10, "changed", '"a"', '"b"', _LATER + 1, None)]
    conn.executemany("INSERT INTO changes (change_id, space_id, computation_id, profile_id, change, old_value,"
                     " new_value, at_ms, user_id) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO membership_history (history_id, space_id, computation_id, profile_id, change,"
                     " old_value, new_value, at_ms) VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
                     [row[:7] for row in rows if row[3] != "user_linked"])


def _history_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT change_id, computation_id, profile_id, change, old_value, new_value, at_ms, user_id"
                 " FROM changes ORDER BY change_id") == [
        (1, 7, 10, "entered", None, "true", _LATER, None), (2, 7, 11, "user_linked", "true", "true", _LATER, 12),
        (3, 8, 10, "changed", '"a"', '"b"', _LATER + 1, None)]
    assert not query("SELECT name FROM sqlite_master WHERE name LIKE 'membership_history%'")
    keyed = query("SELECT name FROM pragma_index_info('changes_by_profile') ORDER BY seqno")
    assert keyed == [("profile_id",), ("computation_id",), ("change_id",)]
    # Ids from AUTOINCREMENT, starting past every id and cursor: a new record is past the cursor.
    assert "AUTOINCREMENT" in str(query("SELECT sql FROM sqlite_master WHERE name = 'changes'")[0][0])
    assert query("SELECT seq FROM sqlite_sequence WHERE name = 'changes'") == [(9,)]
    assert {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'changes'")} == {
        "changes_by_computation", "changes_by_profile", "changes_by_user"}


_FEED_RECORD = ("INSERT INTO feed_records (record_id, connection_id, destination_id, profile_id, message_id, record,"
                " created_ms) VALUES (?, ?, ?, 10, ?, '{}', ?)")
_DELIVERY = ("INSERT INTO deliveries (delivery_id, connection_id, destination_id, profile_id, message_id, record,"
             " state, attempts, next_ms, last_error, dead_ms, created_ms)"
             " VALUES (?, 6, 5, 10, ?, '{}', 'dead', 8, 0, 'HTTP 400', 500, 400)")


def _ids_fixture(conn: apsw.Connection) -> None:
    # A feed whose oldest record retention removed (1) and whose newest two a profile's deletion
    # removed once read (5, 6); a webhook (disabled) whose newest delivery was sent (3).
    conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                 " policy, feed_acked, created_ms, updated_ms) VALUES (3, 1, 'feed', 'dst_1', 'Feed', 'grpc_feed', 1,"
                 " '{\"retention_ms\": 604800000}', '{}', 6, 100, 200)")
    conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                 " policy, feed_acked, created_ms, updated_ms) VALUES (5, 1, 'hook', 'dst_2', 'Hook', 'webhook', 0,"
                 " '{\"url\": \"http://h/\"}', '{}', 0, 100, 200)")
    conn.executemany("INSERT INTO connections (connection_id, destination_id, computation_id, options, phase, cursor,"
                     " created_ms, updated_ms) VALUES (?, ?, 7, '{}', 'LIVE', 0, 100, 300)", [(4, 3), (6, 5)])
    conn.executemany(_FEED_RECORD, [(i, 4, 3, f"m{i}", _LATER + i) for i in range(1, 7)])
    conn.execute("DELETE FROM feed_records WHERE record_id IN (1, 5, 6)")
    conn.execute("INSERT INTO feed_pruned (destination_id, through_record) VALUES (3, 1)")
    conn.executemany(_DELIVERY, [(i, f"d{i}") for i in range(1, 4)])
    conn.execute("DELETE FROM deliveries WHERE delivery_id = 3")


def _ids_check(query: Callable[..., list[tuple[object, ...]]]) -> None:
    assert query("SELECT record_id, connection_id, destination_id, profile_id, message_id, record, created_ms"
                 " FROM feed_records ORDER BY record_id") == [
        (i, 4, 3, 10, f"m{i}", "{}", _LATER + i) for i in (2, 3, 4)]
    assert query("SELECT delivery_id, connection_id, destination_id, profile_id, message_id, record, state,"
                 " attempts, next_ms, first_attempt_ms, last_error, dead_ms, created_ms FROM deliveries"
                 " ORDER BY delivery_id") == [
        (i, 6, 5, 10, f"d{i}", "{}", "dead", 8, 0, None, "HTTP 400", 500, 400) for i in (1, 2)]
    for table in ("feed_records", "deliveries"):
        assert "AUTOINCREMENT" in str(query("SELECT sql FROM sqlite_master WHERE name = ?", (table,))[0][0])
    # The feed's next id is past the newest it issued (read, then deleted); the deliveries' past the greatest left.
    assert query("SELECT name, seq FROM sqlite_sequence WHERE name IN ('feed_records', 'deliveries')"
                 " ORDER BY name") == [("deliveries", 2), ("feed_records", 6)]
    indexes = query("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                    " AND tbl_name IN ('feed_records', 'deliveries') ORDER BY name")
    assert indexes == [("deliveries", "deliveries_by_destination"), ("deliveries", "deliveries_by_profile"),
                       ("deliveries", "deliveries_due"), ("feed_records", "feed_records_by_destination"),
                       ("feed_records", "feed_records_by_profile")]
    assert query("SELECT name FROM pragma_index_info('deliveries_by_profile') ORDER BY seqno") == [
        ("connection_id",), ("profile_id",), ("delivery_id",)]


# Each migration that rebuilds a table: the rows written at the version before it, and what must hold after.
REBUILDS: dict[str, tuple[Callable[[apsw.Connection], None], Callable[..., None]]] = {
    "0010_unlinks": (_unlinks_fixture, _unlinks_check),
    "0015_operator_and_lifecycle": (_tokens_fixture, _tokens_check),
    "0016_destination_kinds": (_kinds_fixture, _kinds_check),
    "0018_state_by_profile": (_by_profile_fixture, _by_profile_check),
    "0019_history_in_changes": (_history_fixture, _history_check),
    "0020_due_by_profile": (_due_fixture, _due_check),
    "0021_ids_never_reused": (_ids_fixture, _ids_check),
}


def test_every_rebuilding_migration_has_an_upgrade_test() -> None:
    """A migration that drops or renames a table (a rebuild) is listed in REBUILDS."""
    rebuilding = {name for name, fn in MIGRATIONS
                  if any(word in inspect.getsource(fn).upper() for word in ("DROP TABLE", "RENAME TO"))}
    assert rebuilding == set(REBUILDS)


@pytest.mark.parametrize("name", sorted(REBUILDS))
def test_rows_survive_the_rebuild(tmp_path: Path, name: str) -> None:
    """A database at the version before the migration, holding rows, is upgraded by the real
    server at start; the rows are all there afterwards, in the new shape."""
    fixture, check = REBUILDS[name]
    db = tmp_path / "audiences.db"
    conn = _before(db, name)
    with conn:
        fixture(conn)
    conn.close()
    running = start(db)
    try:
        assert name in {r[0] for r in running.query("SELECT name FROM _migrations")}
        check(running.query)
    finally:
        running.channel.close()
        running.server.stop(grace=1)


@pytest.mark.parametrize(("kept", "pruned", "acked", "issued"), [
    ((2, 3, 9), 1, 4, 9),  # the newest kept
    ((2, 3), 7, 0, 7),  # every record removed by retention past the ones kept (another feed's, emptied)
    ((2, 3), 1, 8, 8),  # the newest read, since removed by a profile's deletion
    ((), 0, 0, 0),
])
def test_no_feed_record_id_issued_before_the_rebuild_comes_back(tmp_path: Path, kept: tuple[int, ...], pruned: int,
                                                                 acked: int, issued: int) -> None:
    """A database of the version before 0021 whose newest feed records and delivery were deleted:
    after the upgrade, a new record's id is past every id the feed issued (kept, pruned or read),
    and a new delivery's past the greatest left."""
    conn = _before(tmp_path / "audiences.db", "0021_ids_never_reused")
    with conn:
        conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                     " policy, feed_acked, created_ms, updated_ms) VALUES (3, 1, 'feed', 'dst_1', 'Feed', 'grpc_feed',"
                     " 1, '{}', '{}', ?, 100, 200)", (acked,))
        conn.executemany(_FEED_RECORD, [(i, 4, 3, f"m{i}", 0) for i in range(1, 11)])
        conn.execute("DELETE FROM feed_records WHERE record_id NOT IN (SELECT value FROM json_each(?))",
                     (json.dumps(kept),))
        conn.execute("INSERT INTO feed_pruned (destination_id, through_record) VALUES (9, ?)", (pruned,))
        conn.executemany(_DELIVERY, [(i, f"d{i}") for i in range(1, 4)])
        conn.execute("DELETE FROM deliveries WHERE delivery_id >= 2")
    migrate(conn, 0)

    def append(message_id: str) -> None:
        conn.execute("INSERT INTO feed_records (connection_id, destination_id, profile_id, message_id, record,"
                     " created_ms) VALUES (4, 3, 10, ?, '{}', 0)", (message_id,))
        conn.execute("INSERT INTO deliveries (connection_id, destination_id, profile_id, message_id, record, state,"
                     " next_ms, created_ms) VALUES (6, 5, 10, ?, '{}', 'pending', 0, 0)", (message_id,))

    with conn:
        append("new")
    assert conn.execute("SELECT record_id FROM feed_records WHERE message_id = 'new'").fetchall() == [(issued + 1,)]
    assert conn.execute("SELECT delivery_id FROM deliveries WHERE message_id = 'new'").fetchall() == [(2,)]
    # Removing the newest again does not bring its id back either.
    with conn:
        conn.execute("DELETE FROM feed_records")
        conn.execute("DELETE FROM deliveries")
        append("next")
    assert conn.execute("SELECT record_id FROM feed_records").fetchall() == [(issued + 2,)]
    assert conn.execute("SELECT delivery_id FROM deliveries").fetchall() == [(3,)]
    conn.close()


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A database recording a migration this version does not declare is refused, naming it, and
    nothing is applied to it: not even the migrations it lacks."""
    conn = _before(tmp_path / "audiences.db", "0021_ids_never_reused")
    with conn:
        conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES ('0099_from_the_future', 0)")
    with pytest.raises(ValueError, match=r"audiences.db was written by a newer version of Audiences \(migration"
                       r" 0099_from_the_future is unknown to this one\); run that version or newer$"):
        migrate(conn, 0)
    assert "0021_ids_never_reused" not in applied(conn)
    conn.close()


def test_completed_deletions_forget_the_identifier_they_were_asked_with(tmp_path: Path) -> None:
    """0023: a completed deletion's record names its profile by the `prf_…` id, no longer by the
    identifier the request named (the person's e-mail); a pending one keeps it until it completes."""
    db = tmp_path / "audiences.db"
    conn = _before(db, "0023_deletions_forget_addresses")
    with conn:
        conn.executemany(
            "INSERT INTO profile_deletions (public_id, space_id, collection, address, profile_id, profile_public_id,"
            " suppress, state, stage, timeout_ms, deadline_ms, requested_by, created_ms) VALUES"
            " (?, 1, 'users', ?, ?, ?, 0, ?, ?, 0, 0, 'ops', 0)",
            [("del_1", "email:jane@example.com", 10, "prf_10", "COMPLETE", "done"),
             ("del_2", "email:joe@example.com", 11, "prf_11", "PENDING", "exits")])
    conn.close()
    running = start(db)
    try:
        assert running.query("SELECT public_id, address FROM profile_deletions ORDER BY public_id") == [
            ("del_1", "prf_10"), ("del_2", "email:joe@example.com")]
    finally:
        running.channel.close()
        running.server.stop(grace=1)
