"""The history retention prunes change records (the history and the outbox are one table): one
batch at a time, oldest first, never a record some connection of its definition has not taken
from the outbox, never the newest record (new ids follow it, past every cursor)."""

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


def expected_after_prune(records: dict[int, tuple[int, int]], links: list[tuple[int, bool, int]]) -> set[int]:
    """The reference: of the oldest BATCH records but the newest, those older than BEFORE whose
    definition's connections have all taken them (a cursor at or past the record) stay out. Records
    are written in time order (a clock moved back aside), so when the oldest is not older than
    BEFORE, none is looked at."""
    newest, oldest = max(records), min(records)
    if records[oldest][1] >= BEFORE:
        return set(records)
    window = sorted(i for i in records if i < newest)[:BATCH]
    gone = {i for i in window
            if records[i][1] < BEFORE and all(cursor >= i for cid, _, cursor in links if cid == records[i][0])}
    return set(records) - gone


@settings(max_examples=300, deadline=None)
@given(change_records, connections)
def test_each_prune_removes_the_oldest_taken_records_older_than_the_retention(
    records: list[tuple[int, int]], links: list[tuple[int, bool, int]]
) -> None:
    conn = database(records, links)
    held = {index + 1: record for index, record in enumerate(records)}
    saved, history.PRUNE_BATCH = history.PRUNE_BATCH, BATCH
    try:
        while True:
            expected = expected_after_prune(held, links)
            removed = history.prune(conn, BEFORE)
            left = {int(r[0]) for r in conn.execute("SELECT change_id FROM changes")}
            assert left == expected
            assert removed == len(held) - len(left)
            held = {i: held[i] for i in left}
            if not removed:
                break
    finally:
        history.PRUNE_BATCH = saved
    assert max(held) == len(records)  # the newest record stays


def test_ids_keep_growing_after_everything_older_was_pruned() -> None:
    """With every record but the newest pruned, the next record written gets the next id, so a
    connection's cursor still sees it."""
    conn = database([(1, 0), (1, 0), (1, 0)], [(1, False, 3)])
    while history.prune(conn, BEFORE):
        pass
    assert [r[0] for r in conn.execute("SELECT change_id FROM changes")] == [3]
    conn.execute("INSERT INTO changes (space_id, computation_id, profile_id, change, at_ms)"
                 " VALUES (1, 1, 5, 'exited', 9)")
    assert conn.execute("SELECT max(change_id) FROM changes").fetchone() == (4,)


@pytest.mark.parametrize("cursor", [-1, 1])
def test_a_csv_connection_holds_records_its_file_does_not_have_yet(cursor: int) -> None:
    """A CSV connection has taken a record once its file was written past it (`written_cursor`),
    whatever its read cursor."""
    conn = database([(2, 0), (2, 0), (2, 0)], [(2, True, cursor)])
    history.prune(conn, BEFORE)
    left = [r[0] for r in conn.execute("SELECT change_id FROM changes ORDER BY change_id")]
    assert left == ([1, 2, 3] if cursor == -1 else [2, 3])
