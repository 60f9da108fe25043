"""The evaluator's writes (change records set-based: one `INSERT … SELECT` from a JSON array;
values and users' results with `executemany`; next change times a row per profile, through
`DueTimes`) store exactly what one statement per row stores: the same rows, types and text,
change records in order, the same (computation, profile, time) triples."""

from __future__ import annotations

import json
from typing import Any

import apsw
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.engine.evaluator import canonical
from audiences_server.store import evaluation as store
from audiences_server.store.migrations import migrate

NOW = 1_700_000_000_000
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
profiles = st.integers(min_value=1, max_value=2**62)
values = st.dictionaries(profiles, st.none() | json_values.map(canonical), max_size=30)
dues = st.dictionaries(profiles, st.none() | st.integers(min_value=-(2**62), max_value=2**62), max_size=30)
records = st.lists(st.tuples(profiles, st.sampled_from(["entered", "exited", "changed"]),
                             st.none() | json_values.map(canonical), st.none() | json_values.map(canonical)),
                   max_size=30)
members = st.dictionaries(st.tuples(st.integers(0, 3), profiles), st.integers(0, 1), max_size=30)


def database() -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    return conn


def rows(conn: apsw.Connection, sql: str) -> list[tuple[Any, ...]]:
    """Rows with each value's SQL type, so that `5` and `'5'` differ."""
    return [tuple((type(v).__name__, v) for v in row) for row in conn.execute(sql)]


def one_by_one(conn: apsw.Connection, cid: int, written: dict[int, str | None], due: dict[int, int | None],
               changes: list[tuple[int, str, str | None, str | None]], results: dict[tuple[int, int], int]) -> None:
    """The reference: one statement per row."""
    for pid, value in written.items():
        if value is None:
            conn.execute("DELETE FROM computed_values WHERE computation_id = ? AND profile_id = ?", (cid, pid))
        else:
            conn.execute("INSERT OR REPLACE INTO computed_values VALUES (?, ?, ?, ?)", (cid, pid, value, NOW))
    for pid, ms in due.items():
        if ms is None:
            conn.execute("DELETE FROM due_pairs WHERE computation_id = ? AND profile_id = ?", (cid, pid))
        else:
            conn.execute("INSERT OR REPLACE INTO due_pairs VALUES (?, ?, ?)", (cid, pid, ms))
    for pid, change, old, new in changes:
        conn.execute("INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
                     " VALUES (1, ?, ?, ?, ?, ?, ?)", (cid, pid, change, old, new, NOW))
    for (operand, user), held in results.items():
        conn.execute("INSERT OR REPLACE INTO member_results VALUES (?, ?, ?, ?)", (cid, operand, user, held))


def the_store(conn: apsw.Connection, cid: int, written: dict[int, str | None], due: dict[int, int | None],
              changes: list[tuple[int, str, str | None, str | None]], results: dict[tuple[int, int], int]) -> None:
    store.write_values(conn, cid, list(written.items()), NOW)
    times = store.DueTimes(conn)
    times.set(cid, due)
    times.flush()
    store.record_changes(conn, [store.ChangeRecord(1, cid, *r) for r in changes], NOW)
    store.write_member_results(conn, cid, [(operand, user, held) for (operand, user), held in results.items()])


@settings(max_examples=150, deadline=None)
@given(before=values, after=values, due_before=dues, due_after=dues, changes=records, results=members)
def test_the_writes_store_what_one_statement_per_row_stores(
    before: dict[int, str | None], after: dict[int, str | None], due_before: dict[int, int | None],
    due_after: dict[int, int | None], changes: list[tuple[int, str, str | None, str | None]],
    results: dict[tuple[int, int], int],
) -> None:
    expected, actual = database(), database()
    expected.execute("CREATE TABLE due_pairs (computation_id, profile_id, due_ms,"
                     " PRIMARY KEY (computation_id, profile_id))")
    expected.execute("CREATE VIEW due_rows AS SELECT * FROM due_pairs")
    actual.execute("CREATE VIEW due_rows AS SELECT CAST(t.key AS INTEGER) AS computation_id, due.profile_id,"
                   " t.value AS due_ms FROM due, json_each(due.times) AS t")
    for conn, write in ((expected, one_by_one), (actual, the_store)):
        # A first round, then a second over it: replacing, clearing and keeping rows.
        write(conn, 7, before, due_before, changes[: len(changes) // 2], results)
        write(conn, 7, after, due_after, changes[len(changes) // 2:], {k: 1 - v for k, v in results.items()})
    for table, order in (("computed_values", "computation_id, profile_id"), ("due_rows", "computation_id, profile_id"),
                         ("changes", "change_id"), ("member_results", "computation_id, operand, user_id")):
        sql = f"SELECT * FROM {table} ORDER BY {order}"
        assert rows(actual, sql) == rows(expected, sql), table
    # A profile's row holds its earliest time, and no row holds none.
    for pid, due_ms, times in actual.execute("SELECT profile_id, due_ms, times FROM due"):
        assert json.loads(times), pid
        assert due_ms == min(json.loads(times).values()), pid


def test_stored_texts_come_back_as_written() -> None:
    conn = database()
    texts = [canonical(v) for v in ("é ☃ \U0001f600", "a\"b\\c", "\x00", 2**70, -0.0, 1e300, [1, {"k": None}], "null")]
    store.write_values(conn, 3, list(enumerate(texts, 1)), NOW)
    stored = dict(conn.execute("SELECT profile_id, value FROM computed_values WHERE computation_id = 3"))
    assert [stored[i] for i in range(1, len(texts) + 1)] == texts
    assert [json.loads(t) for t in texts][3] == 2**70


# Stored state: (computation, profile) -> (value or None, due time or None), over few ids so that
# reads meet rows of other computations and profiles.
small_ids = st.integers(min_value=1, max_value=12)
states = st.dictionaries(st.tuples(small_ids, small_ids),
                         st.tuples(st.none() | st.sampled_from(["true", "3", '"a"']),
                                   st.none() | st.integers(0, 10**13)).filter(lambda s: s != (None, None)),
                         max_size=60)


@given(state=states, cids=st.sets(small_ids, min_size=1), pids=st.sets(small_ids, min_size=1))
@settings(max_examples=150, deadline=None)
def test_each_read_of_stored_state_gives_each_computations_rows_for_the_profiles_asked(
    state: dict[tuple[int, int], tuple[str | None, int | None]], cids: set[int], pids: set[int]
) -> None:
    """The three reads of stored state a job or a backfill chunk makes (pairs, profile by
    profile, a chunk) give, per computation asked, exactly its value and next change time for
    each profile asked that holds either: the tables keyed by profile first, read in one
    statement per table whatever other rows sit beside them. A chunk's read may add profiles
    between its lowest and highest; none of the profiles asked is missing or wrong."""
    conn = database()
    conn.executemany("INSERT INTO computed_values VALUES (?, ?, ?, ?)",
                     [(c, p, v, NOW) for (c, p), (v, _) in state.items() if v is not None])
    by_profile: dict[int, dict[str, int]] = {}
    for (c, p), (_, d) in state.items():
        if d is not None:
            by_profile.setdefault(p, {})[str(c)] = d
    conn.executemany("INSERT INTO due VALUES (?, ?, ?)",
                     [(p, min(times.values()), json.dumps(times)) for p, times in by_profile.items()])
    wanted = {c: {p: s for (cc, p), s in state.items() if cc == c and p in pids} for c in cids}
    ordered_c, ordered_p = sorted(cids), sorted(pids)
    assert store.stored_together(conn, ordered_c, ordered_p, store.DueTimes(conn)) == wanted
    assert store.stored_of_profiles(conn, ordered_c, ordered_p, store.DueTimes(conn)) == wanted
    chunk = store.stored_of_chunk(conn, ordered_c, ordered_p, store.DueTimes(conn))
    assert {c: {p: s for p, s in held.items() if p in pids} for c, held in chunk.items()} == wanted
    # What else it gives: profiles in the range with a value, as stored (their times are not read).
    low, high = ordered_p[0], ordered_p[-1]
    for c, held in chunk.items():
        for p, (value, due) in held.items():
            if p not in pids:
                assert low <= p <= high
                assert value is not None
                assert value == state[(c, p)][0]
                assert due is None


@settings(max_examples=100, deadline=None)
@given(records=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 5), profiles,
                                  st.sampled_from(["entered", "exited", "changed"]),
                                  st.none() | json_values.map(canonical), st.none() | json_values.map(canonical)),
                        max_size=40),
       split=st.integers(0, 40))
def test_a_jobs_change_records_of_several_computations_keep_their_order(
    records: list[tuple[int, int, int, str, str | None, str | None]], split: int
) -> None:
    """A job appends every computation's change records in one statement, in the order they were
    made (interleaved across computations and spaces), as one statement per record would."""
    expected, actual = database(), database()
    for record in records:
        expected.execute("INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value,"
                         " at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)", (*record, NOW))
    for part in (records[:split], records[split:]):  # two jobs
        store.record_changes(actual, [store.ChangeRecord(*record) for record in part], NOW)
    sql = "SELECT * FROM changes ORDER BY change_id"
    assert rows(actual, sql) == rows(expected, sql)


def test_sizes_move_by_their_deltas_and_every_computation_evaluated_is_stamped() -> None:
    conn = database()
    conn.execute("INSERT INTO spaces (space_id, name, created_ms) VALUES (1, 's', 0)")
    for cid in (1, 2, 3):
        conn.execute("INSERT INTO computations (computation_id, space_id, kind, collection, key, public_id, name,"
                     " description, definition, enabled, options, status, size, created_ms, updated_ms)"
                     " VALUES (?, 1, 'audience', 'users', ?, ?, '', '', 'x', 1, '{}', 'LIVE', 10, 0, 0)",
                     (cid, f"k{cid}", f"aud_{cid}"))
    store.add_sizes(conn, {1: 3, 2: 0}, NOW)
    store.add_sizes(conn, {1: -5}, NOW + 1)
    assert list(conn.execute("SELECT computation_id, size, last_computed_ms FROM computations ORDER BY 1")) == [
        (1, 8, NOW + 1), (2, 10, NOW), (3, 10, None)]
