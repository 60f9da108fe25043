"""The history retention prunes change records (the history and the outbox are one table): one
batch at a time, oldest first, never a record some connection of its definition has not taken
from the outbox, and records held that way never stop the pruning behind them. Ids never go
back, whatever was deleted."""

from __future__ import annotations

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.store import history
from audiences_server.store.migrations import migrate

BATCH = 4
BEFORE = 1_000

# (computation, at_ms) per record, in id order.
change_records = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2 * BEFORE)), min_size=1, max_size=25)
# Per connection: computation, CSV or not, and its cursor (a CSV connection's written cursor) as a
# place among the records' ids (-1: none written yet).
connections = st.lists(st.tuples(st.integers(1, 3), st.booleans(), st.integers(-1, 26)), max_size=4)


def database(records: list[tuple[int, int]], links: list[tuple[int, bool, int]]) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    conn.executemany(
        "INSERT INTO changes (change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
        " VALUES (?, 1, ?, ?, 'entered', NULL, 'true', ?)",
        [(index + 1, cid, 100 + index, at) for index, (cid, at) in enumerate(records)])
    for number, (cid, csv, cursor) in enumerate(links, start=1):
        conn.execute("INSERT INTO destinations (destination_id, space_id, key, public_id, name, kind, enabled, config,"
                     " policy, feed_acked, created_ms, updated_ms) VALUES (?, 1, ?, ?, 'D', ?, 1, '{}', '{}', 0, 0, 0)",
                     (number, f"d{number}", f"dst_{number}", "csv" if csv else "webhook"))
        conn.execute("INSERT INTO connections (connection_id, destination_id, computation_id, options, phase, cursor,"
                     " written_cursor, created_ms, updated_ms) VALUES (?, ?, ?, '{}', 'LIVE', ?, ?, 0, 0)",
                     (number, number, cid, 10**6 if csv else cursor, cursor if csv else -1))
    return conn


def reference_prune(records: dict[int, tuple[int, int]], links: list[tuple[int, bool, int]],
                    after: int) -> tuple[set[int], int]:
    """The reference for one call: the records left, and where the next call starts. Of the BATCH
    oldest records after `after`, those older than BEFORE whose definition's connections have all
    taken them (a cursor at or past the record) go. Records are written in time order (a clock
    moved back aside), so when the first record after `after` is not older than BEFORE none is
    looked at. A full window of old records moves the start past it; otherwise it goes back to 0."""
    ids = sorted(i for i in records if i > after)
    if not ids or records[ids[0]][1] >= BEFORE:
        return set(records), 0
    window = ids[:BATCH]
    gone = {i for i in window
            if records[i][1] < BEFORE and all(cursor >= i for cid, _, cursor in links if cid == records[i][0])}
    full_and_old = len(window) == BATCH and max(records[i][1] for i in window) < BEFORE
    return set(records) - gone, window[-1] if full_and_old else 0


@settings(max_examples=300, deadline=None)
@given(change_records, connections)
def test_pruning_removes_the_oldest_taken_records_and_gets_past_held_ones(
    records: list[tuple[int, int]], links: list[tuple[int, bool, int]]
) -> None:
    conn = database(records, links)
    held = {index + 1: record for index, record in enumerate(records)}
    saved, history.PRUNE_BATCH = history.PRUNE_BATCH, BATCH
    start, removed_in_pass = 0, 0
    try:
        for _ in range(10 * len(records) + 10):
            expected, expected_start = reference_prune(held, links, start)
            removed, start = history.prune(conn, BEFORE, start)
            left = {int(r[0]) for r in conn.execute("SELECT change_id FROM changes")}
            assert left == expected
            assert start == expected_start
            assert removed == len(held) - len(left)
            held = {i: held[i] for i in left}
            removed_in_pass += removed
            if start == 0:  # a pass over the records ended
                if not removed_in_pass:
                    break
                removed_in_pass = 0
        else:
            raise AssertionError("pruning did not settle")
    finally:
        history.PRUNE_BATCH = saved
    # Once it settles, what is left of records written in time order is young or held by a
    # connection that has not taken it.
    if [at for _, at in records] == sorted(at for _, at in records):
        for i, (cid, at) in held.items():
            assert at >= BEFORE or any(cursor < i for c, _, cursor in links if c == cid)


def test_ids_never_go_back_after_the_newest_records_are_deleted() -> None:
    """With every record pruned, or the newest deleted with its profile, the next record gets the
    next id, so a connection's cursor still sees it."""
    conn = database([(1, 0), (1, 0), (1, 0)], [(1, False, 3)])
    assert history.prune(conn, BEFORE)[0] == 3
    assert conn.execute("SELECT count(*) FROM changes").fetchone() == (0,)
    conn.execute("INSERT INTO changes (space_id, computation_id, profile_id, change, at_ms)"
                 " VALUES (1, 1, 5, 'exited', 9)")
    assert conn.execute("SELECT max(change_id) FROM changes").fetchone() == (4,)
    conn.execute("DELETE FROM changes WHERE profile_id = 5")
    conn.execute("INSERT INTO changes (space_id, computation_id, profile_id, change, at_ms)"
                 " VALUES (1, 1, 6, 'entered', 9)")
    assert conn.execute("SELECT max(change_id) FROM changes").fetchone() == (5,)


@pytest.mark.parametrize("cursor", [-1, 1])
def test_a_csv_connection_holds_records_its_file_does_not_have_yet(cursor: int) -> None:
    """A CSV connection has taken a record once its file was written past it (`written_cursor`),
    whatever its read cursor."""
    conn = database([(2, 0), (2, 0), (2, 0)], [(2, True, cursor)])
    history.prune(conn, BEFORE)
    left = [r[0] for r in conn.execute("SELECT change_id FROM changes ORDER BY change_id")]
    assert left == ([1, 2, 3] if cursor == -1 else [2, 3])
