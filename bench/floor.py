"""SQLite's floor for a tick: the count-in-window shape evaluated, diffed and written in SQL alone.

`Floor.run(user_ids)` does, on the server's own database file, what a tick does for `orders_3_in_30d`
(shape a of bench/evaluator.py, `event('Order Completed').within(30 days).count() >= 3`) and the
touched users, once per definition of the five-definition tick, with no Python per profile:
the touched set in a temporary table; per definition, each profile's count and next change time
into a temporary table (one statement), the values that changed written with their change records
(`INSERT … SELECT`), the due times set and cleared in the profiles' rows, the size adjusted. Everything is rolled
back at the end, so the server's state is untouched and each definition sees the same state:
the figure is the cost of a set-based tick of that shape, not a different result.

It runs in the benchmark's process on its own connection, between the server's ticks (the
server's clock is manual, so nothing else writes then); the time is the wall time of the
statements, as the server's tick durations are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import apsw

_TOUCHED = (
    "INSERT INTO temp.floor_touched (profile_id) SELECT DISTINCT i.profile_id FROM identifiers AS i"
    " WHERE i.collection = 'users' AND i.id_type = 'user_id' AND i.id_value IN (SELECT value FROM json_each(?))"
)
# Per touched profile: the count in the window, the next change (an event leaving the window at
# ts + 30 days + 1, or a future-stamped event entering it).
_RESULTS = """
INSERT INTO temp.floor_results (profile_id, value, due_ms)
SELECT t.profile_id,
       CASE WHEN (SELECT count(*) FROM events AS e WHERE e.profile_id = t.profile_id AND e.event = :name
                  AND e.ts BETWEEN :now - :window AND :now) >= :least THEN 'true' ELSE 'false' END,
       (SELECT min(CASE WHEN e.ts > :now THEN e.ts ELSE e.ts + :window + 1 END) FROM events AS e
        WHERE e.profile_id = t.profile_id AND e.event = :name AND e.ts >= :now - :window)
FROM temp.floor_touched AS t
"""
_CHANGES = """
INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)
SELECT :space, :cid, r.profile_id, CASE r.value WHEN 'true' THEN 'entered' ELSE 'exited' END, v.value, r.value, :now
FROM temp.floor_results AS r LEFT JOIN computed_values AS v ON v.computation_id = :cid AND v.profile_id = r.profile_id
WHERE (r.value = 'true') != (coalesce(v.value, 'false') = 'true')
"""
_VALUES = """
INSERT INTO computed_values (computation_id, profile_id, value, updated_ms)
SELECT :cid, r.profile_id, r.value, :now FROM temp.floor_results AS r
LEFT JOIN computed_values AS v ON v.computation_id = :cid AND v.profile_id = r.profile_id
WHERE (r.value = 'true') != (coalesce(v.value, 'false') = 'true')
ON CONFLICT (profile_id, computation_id) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms
"""
_SIZE = (
    "UPDATE computations SET size = size + (SELECT coalesce(sum(CASE WHEN new_value = 'true' THEN 1 ELSE -1 END), 0)"
    " FROM changes WHERE change_id > :mark AND computation_id = :cid), last_computed_ms = :now"
    " WHERE computation_id = :cid"
)
# Next change times are a row per profile (its earliest, and a JSON object of its times by
# computation id): this definition's time set or removed in each touched profile's row.
_DUE_CLEARED = """
UPDATE due SET times = json_remove(times, :path),
       due_ms = coalesce((SELECT min(t.value) FROM json_each(json_remove(due.times, :path)) AS t), due_ms)
WHERE profile_id IN (SELECT profile_id FROM temp.floor_results WHERE due_ms IS NULL) AND times ->> :path IS NOT NULL
"""
_DUE_EMPTIED = (
    "DELETE FROM due WHERE times = '{}'"
    " AND profile_id IN (SELECT profile_id FROM temp.floor_results WHERE due_ms IS NULL)"
)
_DUE_SET = """
INSERT INTO due (profile_id, due_ms, times)
SELECT profile_id, due_ms, json_object(:key, due_ms) FROM temp.floor_results WHERE due_ms IS NOT NULL
ON CONFLICT (profile_id) DO UPDATE SET times = json_set(due.times, :path, excluded.due_ms),
       due_ms = (SELECT min(t.value) FROM json_each(json_set(due.times, :path, excluded.due_ms)) AS t)
WHERE due.times ->> :path IS NOT excluded.due_ms
"""


class Floor:
    """A connection to a server's database that times the set-based tick of one shape."""

    def __init__(self, db: Path, computation_key: str, definitions: int) -> None:
        self.conn = apsw.Connection(str(db))
        self.conn.set_busy_timeout(60_000)
        self.definitions = definitions
        row = self.conn.execute(
            "SELECT computation_id, space_id FROM computations WHERE key = ? AND collection = 'users'",
            (computation_key,),
        ).fetchone()
        if row is None:
            raise LookupError(f"no computation {computation_key!r}")
        self.cid, self.space = int(row[0]), int(row[1])
        self.conn.execute("CREATE TEMP TABLE floor_touched (profile_id INTEGER PRIMARY KEY)")
        self.conn.execute(
            "CREATE TEMP TABLE floor_results (profile_id INTEGER PRIMARY KEY, value TEXT NOT NULL, due_ms INTEGER)"
        )

    def close(self) -> None:
        self.conn.close()

    def run(self, user_ids: Sequence[str], now_ms: int, window_ms: int = 30 * 86_400_000,
            name: str = "Order Completed", least: int = 3) -> tuple[float, float]:
        """Milliseconds for the touched users' set-based tick of `definitions` definitions of the
        shape (each on the same state: a savepoint rolled back after each), by the wall clock
        and in CPU time (this thread's: SQLite runs in it)."""
        conn = self.conn
        params = {"cid": self.cid, "space": self.space, "now": now_ms, "window": window_ms, "name": name,
                  "least": least, "key": str(self.cid), "path": f'$."{self.cid}"'}
        started, started_cpu = time.perf_counter(), time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_TOUCHED, (json.dumps(list(user_ids)),))
            for _ in range(self.definitions):
                conn.execute("SAVEPOINT floor_definition")
                mark = conn.execute("SELECT coalesce(max(change_id), 0) FROM changes").fetchone()[0]
                conn.execute(_RESULTS, params)
                conn.execute(_CHANGES, params)
                conn.execute(_VALUES, params)
                conn.execute(_SIZE, {**params, "mark": mark})
                conn.execute(_DUE_CLEARED, params)
                conn.execute(_DUE_EMPTIED, params)
                conn.execute(_DUE_SET, params)
                conn.execute("DELETE FROM temp.floor_results")
                conn.execute("ROLLBACK TO floor_definition")
                conn.execute("RELEASE floor_definition")
            elapsed = (time.perf_counter() - started) * 1000, (time.thread_time() - started_cpu) * 1000
        finally:
            conn.execute("ROLLBACK")
        return elapsed
