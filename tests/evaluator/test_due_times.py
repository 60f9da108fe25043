"""Next change times held a row per profile (`store.DueTimes`) against a plain model: a dict of
(computation, profile) -> time, changed by the same operations in the same order.

Each example runs several jobs, each with its own `DueTimes` over the same database, as the
evaluator's jobs do: within a job every read sees the job's own changes before they are
written, and once a job has flushed, the next one reads exactly what the model holds.
"""

from __future__ import annotations

import json
from typing import Any

import apsw
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.store import evaluation as store
from audiences_server.store.migrations import migrate

computations = st.integers(1, 5)
profiles = st.integers(1, 8)
times = st.integers(0, 20)
operations = st.one_of(
    st.tuples(st.just("set"), computations, st.dictionaries(profiles, st.none() | times, max_size=6)),
    st.tuples(st.just("take"), times, st.integers(1, 4)),
    st.tuples(st.just("come"), computations, times),
    st.tuples(st.just("of"), computations, st.lists(profiles, max_size=6)),
    # Few computations are asked one by one, more a profile at a time: both ways are drawn.
    st.tuples(st.just("of_each"), st.lists(computations, max_size=5, unique=True),
              st.lists(profiles, max_size=6, unique=True)),
    st.tuples(st.just("forget"), profiles),
    st.tuples(st.just("clear"), st.lists(computations, max_size=2)),
)
# A job is a list of operations; `clear` (an edit or a deletion of definitions) runs between jobs.
jobs = st.lists(st.lists(operations, max_size=8), max_size=5)


def stored_pairs(conn: apsw.Connection) -> dict[tuple[int, int], int]:
    """What the table holds, as the model's pairs; each row's earliest time checked on the way."""
    pairs = {}
    for pid, due_ms, text in conn.execute("SELECT profile_id, due_ms, times FROM due"):
        held = json.loads(text)
        assert held, pid
        assert due_ms == min(held.values()), (pid, due_ms, text)
        pairs.update(((int(cid), pid), ms) for cid, ms in held.items())
    return pairs


def earliest(model: dict[tuple[int, int], int], pid: int) -> int | None:
    return min((ms for (_, p), ms in model.items() if p == pid), default=None)


def step(due: store.DueTimes, model: dict[tuple[int, int], int], operation: tuple[Any, ...]
         ) -> dict[tuple[int, int], int]:
    """One operation of a job on `due`, checked against the model; the model after it."""
    kind = operation[0]
    if kind == "set":
        _, cid, changes = operation
        due.set(cid, changes)
        model = {pair: ms for pair, ms in model.items() if pair[0] != cid or pair[1] not in changes}
        model.update(((cid, pid), ms) for pid, ms in changes.items() if ms is not None)
    elif kind == "take":
        _, now, limit = operation
        taken = due.take(now, limit)
        waiting = {p for (_, p), ms in model.items() if ms <= now}
        chosen = {p for _, p in taken}
        # Up to `limit` profiles with a pair due, the most overdue: none left out was due earlier.
        assert len(chosen) == min(limit, len(waiting))
        left = waiting - chosen
        if left and chosen:
            assert min(earliest(model, p) for p in left) >= max(earliest(model, p) for p in chosen)
        # All their due pairs, and only those.
        assert sorted(taken) == sorted((c, p) for (c, p), ms in model.items() if p in chosen and ms <= now)
        model = {pair: ms for pair, ms in model.items() if pair not in set(taken)}
    elif kind == "come":
        _, cid, now = operation
        assert due.come(cid, now) == sorted(p for (c, p), ms in model.items() if c == cid and ms <= now)
    elif kind == "of":
        _, cid, pids = operation
        assert due.of(cid, pids) == {p: model[(cid, p)] for p in pids if (cid, p) in model}
    elif kind == "of_each":
        _, cids, pids = operation
        assert due.of_each(cids, pids) == {
            cid: {p: model[(cid, p)] for p in pids if (cid, p) in model} for cid in cids}
    elif kind == "forget":
        _, pid = operation
        due.forget(pid)
        model = {pair: ms for pair, ms in model.items() if pair[1] != pid}
    return model


@settings(max_examples=300, deadline=None)
@given(runs=jobs)
def test_due_times_do_what_a_pair_per_row_would(runs: list[list[tuple[Any, ...]]]) -> None:
    conn = apsw.Connection(":memory:")
    migrate(conn, 0)
    model: dict[tuple[int, int], int] = {}
    for job in runs:
        due = store.DueTimes(conn)
        for operation in job:
            if operation[0] != "clear":
                model = step(due, model, operation)
        due.flush()
        assert stored_pairs(conn) == model
        for operation in job:
            if operation[0] == "clear":
                store.clear_due(conn, operation[1])
                model = {pair: ms for pair, ms in model.items() if pair[0] not in operation[1]}
        assert stored_pairs(conn) == model
    assert store.next_due(conn) == min(model.values(), default=None)
