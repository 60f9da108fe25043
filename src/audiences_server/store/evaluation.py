"""What the evaluator reads and writes: touches, due times, events, traits, computed values."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import apsw
import orjson

from audiences_server.core.identity import visible_traits
from audiences_server.core.identity.traits import TraitValue
from audiences_server.core.ql import Event
from audiences_server.store.db import keep_id_floor, next_id_sql, scalar


@dataclass(frozen=True)
class ComputationRow:
    """A stored audience or computed trait."""

    computation_id: int
    space_id: int
    kind: str
    collection: str
    key: str
    public_id: str
    name: str
    description: str
    definition: str
    enabled: bool
    options: dict[str, Any]
    status: str
    error: str
    size: int
    progress_done: int
    progress_total: int
    created_ms: int
    updated_ms: int
    last_computed_ms: int | None
    backfill_cursor: int
    version: int


_COMPUTATION_COLUMNS = (
    "computation_id, space_id, kind, collection, key, public_id, name, description, definition, enabled,"
    " options, status, error, size, progress_done, progress_total, created_ms, updated_ms, last_computed_ms,"
    " backfill_cursor, version"
)


def _computation(row: Sequence[Any]) -> ComputationRow:
    values = list(row)
    values[9] = bool(values[9])
    values[10] = json.loads(values[10])
    return ComputationRow(*values)


def computations(conn: apsw.Connection, space_id: int | None = None) -> list[ComputationRow]:
    """Every computation (of one space, or of all), by id."""
    if space_id is None:
        cursor = conn.execute(f"SELECT {_COMPUTATION_COLUMNS} FROM computations ORDER BY computation_id")
    else:
        cursor = conn.execute(
            f"SELECT {_COMPUTATION_COLUMNS} FROM computations WHERE space_id = ? ORDER BY computation_id", (space_id,)
        )
    return [_computation(row) for row in cursor]


def computation(conn: apsw.Connection, space_id: int, collection: str, key: str) -> ComputationRow | None:
    """One computation by its key."""
    row = conn.execute(
        f"SELECT {_COMPUTATION_COLUMNS} FROM computations WHERE space_id = ? AND collection = ? AND key = ?",
        (space_id, collection, key),
    ).fetchone()
    return _computation(row) if row else None


def computation_by_id(conn: apsw.Connection, computation_id: int) -> ComputationRow | None:
    """One computation by its id."""
    row = conn.execute(
        f"SELECT {_COMPUTATION_COLUMNS} FROM computations WHERE computation_id = ?", (computation_id,)
    ).fetchone()
    return _computation(row) if row else None


def insert_computation(
    conn: apsw.Connection, space_id: int, kind: str, collection: str, key: str, public_id: str, name: str,
    description: str, definition: str, enabled: bool, options: dict[str, Any], now_ms: int,
) -> int:
    """Adds a definition (BACKFILLING when enabled, else DISABLED); returns its computation id,
    past every id a definition ever had (`id_floors`), so that nothing kept by id (the
    evaluator's compiled definitions, versions, history) ever takes it for a deleted one."""
    conn.execute(
        "INSERT INTO computations (computation_id, space_id, kind, collection, key, public_id, name, description,"
        " definition, enabled, options, status, created_ms, updated_ms)"
        f" SELECT {next_id_sql('computations', 'computation_id')}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?",
        (space_id, kind, collection, key, public_id, name, description, definition, int(enabled),
         json.dumps(options), "BACKFILLING" if enabled else "DISABLED", now_ms, now_ms),
    )
    return int(conn.last_insert_rowid())


def update_computation(
    conn: apsw.Connection, computation_id: int, name: str, description: str, definition: str, enabled: bool,
    options: dict[str, Any], now_ms: int, edited: bool, status: str,
) -> None:
    """Saves a definition's editable fields and status; `edited` (its text or options changed)
    makes it a new version."""
    conn.execute(
        "UPDATE computations SET name = ?, description = ?, definition = ?, enabled = ?, options = ?,"
        " updated_ms = ?, version = version + ?, status = ? WHERE computation_id = ?",
        (name, description, definition, int(enabled), json.dumps(options), now_ms, int(edited), status,
         computation_id),
    )


def delete_computation(conn: apsw.Connection, computation_id: int) -> None:
    """Removes a definition with its values, next change times, users' results and change records."""
    keep_id_floor(conn, "computations", computation_id)
    for table in ("computed_values", "member_results", "changes", "computations"):
        conn.execute(f"DELETE FROM {table} WHERE computation_id = ?", (computation_id,))
    clear_due(conn, [computation_id])


def state_version(conn: apsw.Connection) -> str:
    """Changes whenever a computation is added, removed, edited, enabled, disabled or changes status."""
    return str(scalar(conn, "SELECT group_concat(computation_id || ':' || version || ':' || enabled || ':' || status,"
                            " ',') FROM (SELECT * FROM computations ORDER BY computation_id)") or "")


def backfilling(conn: apsw.Connection) -> dict[int, int]:
    """The computations being backfilled, with their cursors."""
    return {
        int(c): int(k)
        for c, k in conn.execute(
            "SELECT computation_id, backfill_cursor FROM computations WHERE status = 'BACKFILLING' AND enabled = 1"
        )
    }


def take_touches(conn: apsw.Connection, limit: int, after: int = 0) -> dict[int, set[tuple[str, str]]]:
    """Removes and returns the touches of up to `limit` profiles: those with ids above `after`
    first, in id order, then from the lowest id (a cursor that walks the waiting profiles round
    and round, so under a backlog no profile waits more than one lap)."""
    ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT profile_id FROM touches WHERE profile_id > ? ORDER BY profile_id LIMIT ?", (after, limit)
    )]
    if len(ids) < limit and after > 0:
        ids += [r[0] for r in conn.execute(
            "SELECT DISTINCT profile_id FROM touches WHERE profile_id <= ? ORDER BY profile_id LIMIT ?",
            (after, limit - len(ids)),
        )]
    found = take_touches_of(conn, ids)
    return {int(pid): found[int(pid)] for pid in ids}  # in the order taken


def take_touches_of(conn: apsw.Connection, profile_ids: Sequence[int]) -> dict[int, set[tuple[str, str]]]:
    """Removes and returns the touches waiting for these profiles (those that have any)."""
    if not profile_ids:
        return {}
    chosen = json.dumps(list(profile_ids))
    found: dict[int, set[tuple[str, str]]] = {}
    for profile_id, kind, name in conn.execute(
        "SELECT profile_id, kind, name FROM touches WHERE profile_id IN (SELECT value FROM json_each(?))", (chosen,)
    ):
        found.setdefault(int(profile_id), set()).add((kind, name))
    if found:
        conn.execute("DELETE FROM touches WHERE profile_id IN (SELECT value FROM json_each(?))",
                     (json.dumps(list(found)),))
    return found


def waiting_near(conn: apsw.Connection, profile_ids: Sequence[int], now_ms: int) -> list[int]:
    """Of the profiles' accounts (of those that are users), those accounts' users, and the users
    of those that are accounts, the ones with work waiting: a touch, or a time at or before now
    as stored (a profile an evaluation took holds its times in memory until its end)."""
    return [int(r[0]) for r in conn.execute(
        "WITH given(id) AS (SELECT value FROM json_each(?1)),"
        " accounts(id) AS (SELECT account_id FROM links WHERE user_id IN given UNION SELECT id FROM given),"
        " near(id) AS (SELECT id FROM accounts UNION SELECT user_id FROM links WHERE account_id IN accounts)"
        " SELECT id FROM near WHERE id NOT IN given AND (EXISTS (SELECT 1 FROM touches WHERE profile_id = near.id)"
        " OR EXISTS (SELECT 1 FROM due WHERE profile_id = near.id AND due_ms <= ?2))",
        (json.dumps(list(profile_ids)), now_ms))]


def has_touches(conn: apsw.Connection) -> bool:
    """Whether any profile is waiting for the evaluator."""
    return conn.execute("SELECT 1 FROM touches LIMIT 1").fetchone() is not None


def next_due(conn: apsw.Connection) -> int | None:
    """The earliest stored due time."""
    row = conn.execute("SELECT min(due_ms) FROM due").fetchone()
    return None if row is None or row[0] is None else int(row[0])


# Up to this many computations, `DueTimes.of_each` asks `of` for each: it parses only the rows
# holding the computation's key (a backfill's few new definitions find none).
_OF_ONE_BY_ONE = 4


class DueTimes:
    """The next change times an evaluation reads and writes, held per profile and written once.

    `due` holds one row per profile: the earliest of its times (`due_ms`, indexed) and its time
    under each computation that has one (`times`, a JSON object by computation id). A tick job
    evaluates each profile it takes under dozens of definitions; with a row per (definition,
    profile) that was dozens of upserts per profile, each moving an entry of the time index.
    Here a profile's times are read once, changed in memory as each definition is evaluated,
    and written back as one row at the end (`flush`, at the end of the evaluation's work).
    Everything an evaluation reads of `due` goes through its `DueTimes`, so it sees its own
    changes before they are written. A row is parsed only when one of its times is asked for
    or changed (a new definition's backfill finds none in the rows it reads).

    A time set for a profile whose row was not read is kept as a patch instead, written at the
    end by SQLite (`json_patch` into the stored row) without reading or parsing the row here: a
    backfill sets times for thousands of profiles whose rows hold dozens of other definitions'
    times. A read of the profile merges its patch first.
    """

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._texts: dict[int, str | None] = {}  # per profile read: its row's times as stored (None: no row)
        self._times: dict[int, dict[str, int]] = {}  # per profile parsed: its times by computation id (text)
        self._dirty: set[int] = set()
        # Per profile neither read nor parsed: the times set for it (by computation id, text).
        self._patches: dict[int, dict[str, int]] = {}

    def load(self, profile_ids: Iterable[int]) -> None:
        """Reads the rows of the profiles not read yet."""
        asked = [pid for pid in profile_ids if pid not in self._texts]
        if not asked:
            return
        self._texts.update(dict.fromkeys(asked))
        self._texts.update(self.conn.execute(
            "SELECT profile_id, times FROM due WHERE profile_id IN (SELECT value FROM json_each(?))",
            (json.dumps(asked),)))

    def _held(self, pid: int) -> dict[str, int]:
        """A profile's times, parsed from its row (read already) with its patch merged."""
        times = self._times.get(pid)
        if times is None:
            text = self._texts.get(pid)
            times = self._times[pid] = orjson.loads(text) if text else {}
            patch = self._patches.pop(pid, None)
            if patch:
                times.update(patch)
                self._dirty.add(pid)
        return times

    def of(self, computation_id: int, profile_ids: Iterable[int]) -> dict[int, int]:
        """The computation's next change time of each of the profiles that has one."""
        wanted = list(profile_ids)
        self.load(wanted)
        cid = str(computation_id)
        key = f'"{cid}":'  # in a row's text only as this computation's key: the values are numbers
        found = {}
        for pid in wanted:
            times = self._times.get(pid)
            if times is None:
                text = self._texts[pid]
                if (text is None or key not in text) and pid not in self._patches:
                    continue
                times = self._held(pid)
            due_ms = times.get(cid)
            if due_ms is not None:
                found[pid] = due_ms
        return found

    def of_each(self, computation_ids: Sequence[int], profile_ids: Sequence[int]) -> dict[int, dict[int, int]]:
        """`of` for each of several computations over the same profiles. For more than a few, each
        profile's times are read once and handed to the computations they hold: asked one
        computation at a time, a job reading 200 definitions' state looked each profile up 200
        times (a million lookups in a 200-definition tick)."""
        if len(computation_ids) <= _OF_ONE_BY_ONE:
            return {cid: self.of(cid, profile_ids) for cid in computation_ids}
        self.load(profile_ids)
        found: dict[int, dict[int, int]] = {cid: {} for cid in computation_ids}
        into = {str(cid): found[cid] for cid in computation_ids}
        for pid in profile_ids:
            times = self._times.get(pid)
            if times is None:
                if not self._texts[pid] and pid not in self._patches:
                    continue
                times = self._held(pid)
            for key, due_ms in times.items():
                held = into.get(key)
                if held is not None:
                    held[pid] = due_ms
        return found

    def set(self, computation_id: int, due: dict[int, int | None]) -> None:
        """Stores or clears (None) each profile's next change time under one computation."""
        cid = str(computation_id)
        texts, times_of, patches = self._texts, self._times, self._patches
        rest: dict[int, int | None] = {}
        for pid, due_ms in due.items():
            if due_ms is not None and pid not in times_of and pid not in texts:
                patch = patches.get(pid)
                if patch is None:
                    patches[pid] = {cid: due_ms}
                else:
                    patch[cid] = due_ms
            else:
                rest[pid] = due_ms
        if not rest:
            return
        self.load(rest)
        key = f'"{cid}":'
        for pid, due_ms in rest.items():
            times = self._times.get(pid)
            if times is None:
                if due_ms is None and key not in (self._texts[pid] or "") and pid not in self._patches:
                    continue  # none to clear: the row is not parsed (as in `of`)
                times = self._held(pid)
            if due_ms is None:
                if times.pop(cid, None) is not None:
                    self._dirty.add(pid)
            elif times.get(cid) != due_ms:
                times[cid] = due_ms
                self._dirty.add(pid)

    def take(self, now_ms: int, limit: int) -> list[tuple[int, int]]:
        """Removes and returns the (computation, profile) pairs due at or before now of up to
        `limit` profiles, the longest overdue first."""
        self._write_patches()  # the time index then holds them
        # The table's earliest, and the profiles this evaluation changed, as it holds them.
        found = {int(r[0]) for r in self.conn.execute(
            "SELECT profile_id FROM due INDEXED BY due_by_time WHERE due_ms <= ? ORDER BY due_ms LIMIT ?",
            (now_ms, limit + len(self._dirty)))}
        found.update(self._dirty)
        self.load(found)
        waiting = sorted((min(times.values()), pid) for pid in found if (times := self._held(pid)))
        taken: list[tuple[int, int]] = []
        for earliest, pid in waiting[:limit]:
            if earliest > now_ms:
                break
            taken += self._take(pid, now_ms)
        return taken

    def _take(self, pid: int, now_ms: int) -> list[tuple[int, int]]:
        """Removes and returns the profile's (computation, profile) pairs due at or before now."""
        times = self._held(pid)
        taken = [(int(cid), pid) for cid, due_ms in times.items() if due_ms <= now_ms]
        for cid, _ in taken:
            del times[str(cid)]
        if taken:
            self._dirty.add(pid)
        return taken

    def waiting(self, now_ms: int) -> bool:
        """Whether a profile not taken by this evaluation has a time at or before now."""
        self._write_patches()
        for (pid,) in self.conn.execute(
                "SELECT profile_id FROM due INDEXED BY due_by_time WHERE due_ms <= ? ORDER BY due_ms", (now_ms,)):
            if int(pid) not in self._dirty or any(due_ms <= now_ms for due_ms in self._held(int(pid)).values()):
                return True
        return False

    def take_of(self, profile_ids: Sequence[int], now_ms: int) -> list[tuple[int, int]]:
        """Removes and returns the (computation, profile) pairs due at or before now of these
        profiles, as `take` does for the longest overdue."""
        if not profile_ids:
            return []
        self._write_patches()
        found = {int(r[0]) for r in self.conn.execute(
            "SELECT profile_id FROM due WHERE due_ms <= ? AND profile_id IN (SELECT value FROM json_each(?))",
            (now_ms, json.dumps(list(profile_ids))))}
        found.update(self._dirty.intersection(profile_ids))  # as this evaluation holds them
        self.load(found)
        return [pair for pid in sorted(found) for pair in self._take(pid, now_ms)]

    def come(self, computation_id: int, now_ms: int) -> list[int]:
        """The profiles whose next change time under the computation has come."""
        found = {int(r[0]) for r in self.conn.execute(
            "SELECT profile_id FROM due INDEXED BY due_by_time WHERE due_ms <= ?1 AND times ->> ?2 <= ?1",
            (now_ms, f'$."{computation_id}"'))}
        found.update(self._dirty)  # as this evaluation holds them, changed or taken since they were written
        cid = str(computation_id)
        found.update(pid for pid, patch in self._patches.items() if patch.get(cid, now_ms + 1) <= now_ms)
        return sorted(pid for pid, due_ms in self.of(computation_id, found).items() if due_ms <= now_ms)

    def forget(self, profile_id: int) -> None:
        """Drops a profile's times at once (merged away)."""
        self.conn.execute("DELETE FROM due WHERE profile_id = ?", (profile_id,))
        self._texts[profile_id] = None
        self._times[profile_id] = {}
        self._dirty.discard(profile_id)
        self._patches.pop(profile_id, None)

    def _write_patches(self) -> None:
        """Merges the patches into the stored rows (SQLite parses each row, not Python). The row's
        earliest time is the patch's when that is no later; it stays the row's when a one-time
        patch adds a key (a backfill's usual case); else it is taken again over the merged times
        (a patch may move the earliest later)."""
        if self._patches:
            rows = []
            for pid, patch in self._patches.items():
                only = f'$."{next(iter(patch))}"' if len(patch) == 1 else None
                rows.append((pid, min(patch.values()), orjson.dumps(patch).decode(), only))
            self.conn.executemany(
                "INSERT INTO due (profile_id, due_ms, times) VALUES (?1, ?2, ?3) ON CONFLICT (profile_id) DO UPDATE"
                " SET times = json_patch(due.times, excluded.times),"
                " due_ms = CASE WHEN excluded.due_ms <= due.due_ms THEN excluded.due_ms"
                " WHEN ?4 IS NOT NULL AND json_type(due.times, ?4) IS NULL THEN due.due_ms"
                " ELSE (SELECT min(t.value) FROM json_each(json_patch(due.times, excluded.times)) AS t) END",
                rows)
            self._patches.clear()

    def flush(self) -> None:
        """Writes the times of the profiles changed since the last flush: a row each, or none."""
        self._write_patches()
        if not self._dirty:
            return
        dirty = sorted(self._dirty)
        gone = [pid for pid in dirty if not self._times[pid]]
        if gone:
            self.conn.execute("DELETE FROM due WHERE profile_id IN (SELECT value FROM json_each(?))",
                              (json.dumps(gone),))
        written = [(pid, min(times.values()), orjson.dumps(times).decode())
                   for pid in dirty if (times := self._times[pid])]
        self.conn.executemany(
            "INSERT INTO due (profile_id, due_ms, times) VALUES (?, ?, ?)"
            " ON CONFLICT (profile_id) DO UPDATE SET due_ms = excluded.due_ms, times = excluded.times", written)
        self._dirty.clear()


def profile_facts(conn: apsw.Connection, profile_ids: Iterable[int]) -> dict[int, tuple[int, str, int | None]]:
    """Per profile: space, collection, and the survivor it was merged into (None if alive)."""
    ids = list(profile_ids)
    return {
        int(r[0]): (int(r[1]), r[2], r[3])
        for r in conn.execute(
            "SELECT profile_id, space_id, collection, merged_into FROM profiles"
            " WHERE profile_id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
    }


def profiles_after(conn: apsw.Connection, space_id: int, collection: str, after: int, limit: int) -> list[int]:
    """Live profiles of a collection with ids above `after`, in id order (for backfills)."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT profile_id FROM profiles WHERE space_id = ? AND collection = ? AND merged_into IS NULL"
            " AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (space_id, collection, after, limit),
        )
    ]


def count_profiles(conn: apsw.Connection, space_id: int, collection: str) -> int:
    """How many live profiles a collection has."""
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM profiles WHERE space_id = ? AND collection = ? AND merged_into IS NULL",
            (space_id, collection),
        )
    )


def events_of(
    conn: apsw.Connection, profile_ids: Sequence[int], names: Iterable[str] | None, since_ms: int | None
) -> dict[int, list[Event]]:
    """The events of the profiles, only those named (None: all) and stamped at or after `since_ms`."""
    sql = (
        "SELECT profile_id, event, ts, seq, body, context, source_id FROM events"
        " WHERE profile_id IN (SELECT value FROM json_each(?)) AND event IS NOT NULL"
    )
    params: list[Any] = [json.dumps(list(profile_ids))]
    if names is not None:
        sql += " AND event IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(names)))
    if since_ms is not None:
        sql += " AND ts >= ?"
        params.append(since_ms)
    found: dict[int, list[Event]] = defaultdict(list)
    for pid, name, ts, seq, body, context, source in conn.execute(sql, params):
        found[pid].append(Event(name, ts, json.loads(body), json.loads(context), source, seq))
    return found


def custom_traits(
    conn: apsw.Connection, profile_ids: Sequence[int], keys: Iterable[str] | None = None
) -> dict[int, dict[str, Any]]:
    """The visible custom traits of the profiles (only the given top-level keys, if any)."""
    sql = "SELECT profile_id, key, value, ts_ms, seq FROM traits WHERE profile_id IN (SELECT value FROM json_each(?))"
    params: list[Any] = [json.dumps(list(profile_ids))]
    if keys is not None:
        sql += " AND key IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(keys)))
    raw: dict[int, dict[str, TraitValue]] = defaultdict(dict)
    for pid, key, value, ts, seq in conn.execute(sql, params):
        raw[pid][key] = TraitValue(None if value is None else json.loads(value), ts, seq)
    return {pid: visible_traits(entries) for pid, entries in raw.items()}


def values_of(
    conn: apsw.Connection, computation_ids: Sequence[int], profile_ids: Sequence[int]
) -> dict[tuple[int, int], str]:
    """Stored values (JSON text) of the computations for the profiles."""
    return {
        (int(c), int(p)): v
        for c, p, v in conn.execute(
            "SELECT computation_id, profile_id, value FROM computed_values"
            " WHERE computation_id IN (SELECT value FROM json_each(?))"
            " AND profile_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(computation_ids)), json.dumps(list(profile_ids))),
        )
    }


Stored = dict[int, tuple[str | None, int | None]]
"""Per profile holding either, a computation's stored value (JSON text) and next change time
(None where there is none): what an evaluation compares its results with."""


def stored_of(conn: apsw.Connection, computation_id: int, profile_ids: Sequence[int], due: DueTimes) -> Stored:
    """One computation's stored state for the profiles (those holding nothing are left out)."""
    return stored_together(conn, [computation_id], profile_ids, due)[computation_id]


def stored_together(conn: apsw.Connection, computation_ids: Sequence[int], profile_ids: Sequence[int],
                    due: DueTimes) -> dict[int, Stored]:
    """Several computations' stored state over the same profiles, values looked up pair by pair."""
    pairs = "computation_id IN (SELECT value FROM json_each(?1)) AND profile_id IN (SELECT value FROM json_each(?2))"
    return _stored(conn, computation_ids, profile_ids, pairs,
                   (json.dumps(list(computation_ids)), json.dumps(list(profile_ids))), due)


def stored_of_profiles(conn: apsw.Connection, computation_ids: Sequence[int], profile_ids: Sequence[int],
                       due: DueTimes) -> dict[int, Stored]:
    """Several computations' stored state over the same profiles, read profile by profile: the
    values are keyed by profile first, so each profile's are one range (a tick job's read: a
    lookup per pair instead cost a page per definition and profile)."""
    pairs = "profile_id IN (SELECT value FROM json_each(?2)) AND +computation_id IN (SELECT value FROM json_each(?1))"
    return _stored(conn, computation_ids, profile_ids, pairs,
                   (json.dumps(list(computation_ids)), json.dumps(list(profile_ids))), due)


def stored_of_chunk(conn: apsw.Connection, computation_ids: Sequence[int], profile_ids: Sequence[int],
                    due: DueTimes) -> dict[int, Stored]:
    """Several computations' stored state for a backfill chunk's profiles (ascending ids, up to
    20,000; the definitions backfilling it together). Their values are read through the index
    by computation over the chunk's range of ids, each computation reading its own rows only."""
    return _stored(conn, computation_ids, profile_ids,
                   "computation_id IN (SELECT value FROM json_each(?1)) AND profile_id BETWEEN ?2 AND ?3",
                   (json.dumps(list(computation_ids)), min(profile_ids), max(profile_ids)), due)


def _stored(conn: apsw.Connection, computation_ids: Sequence[int], profile_ids: Sequence[int], where: str,
            params: tuple[Any, ...], due: DueTimes) -> dict[int, Stored]:
    """The stored values of the rows `where` selects, with the profiles' next change times (as
    `due` holds them) merged in."""
    found: dict[int, Stored] = {cid: {} for cid in computation_ids}
    # One row holding them all: a row at a time, the writer would give the GIL up and wait to
    # take it back once per row (a tick job reads tens of thousands). A column each, in the same
    # order (the aggregates of one group see its rows in one order): an array of `json_array`s
    # made and parsed a JSON text per row, a third of the read at 40,000 rows.
    row = conn.execute(
        "SELECT json_group_array(computation_id), json_group_array(profile_id), json_group_array(value)"
        f" FROM computed_values WHERE {where}", params).fetchone()
    assert row is not None  # an aggregate without GROUP BY gives one row
    cids, pids, values = row
    for cid, pid, value in zip(orjson.loads(cids), orjson.loads(pids), orjson.loads(values), strict=True):
        found[cid][pid] = (value, None)
    for cid, times in due.of_each(computation_ids, profile_ids).items():
        held = found[cid]
        for pid, due_ms in times.items():
            before = held.get(pid)
            held[pid] = (None if before is None else before[0], due_ms)
    return found


def values_of_profile(conn: apsw.Connection, profile_id: int) -> dict[int, str]:
    """Every stored value of one profile, by computation."""
    return {
        int(c): v
        for c, v in conn.execute(
            "SELECT computation_id, value FROM computed_values WHERE profile_id = ?", (profile_id,)
        )
    }


def known_profiles(conn: apsw.Connection, profile_ids: Sequence[int]) -> set[int]:
    """The profiles holding an identifier other than `anonymous_id`."""
    return {
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT profile_id FROM identifiers WHERE profile_id IN (SELECT value FROM json_each(?))"
            " AND id_type != 'anonymous_id'",
            (json.dumps(list(profile_ids)),),
        )
    }


def accounts_of(conn: apsw.Connection, user_ids: Sequence[int]) -> dict[int, list[int]]:
    """Per user, the accounts it is linked to."""
    found: dict[int, list[int]] = defaultdict(list)
    for user, account in conn.execute(
        "SELECT user_id, account_id FROM links WHERE user_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(user_ids)),),
    ):
        found[user].append(account)
    return found


def users_of(conn: apsw.Connection, account_ids: Sequence[int]) -> dict[int, list[int]]:
    """Per account, its linked users."""
    found: dict[int, list[int]] = defaultdict(list)
    for account, user in conn.execute(
        "SELECT account_id, user_id FROM links WHERE account_id IN (SELECT value FROM json_each(?))"
        " ORDER BY account_id, user_id",
        (json.dumps(list(account_ids)),),
    ):
        found[account].append(user)
    return found


def member_results(conn: apsw.Connection, computation_id: int, user_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """An account audience's stored results of its users, by (operand, user): 1 if held."""
    return {
        (int(operand), int(user)): int(held)
        for operand, user, held in conn.execute(
            "SELECT operand, user_id, held FROM member_results WHERE computation_id = ?"
            " AND user_id IN (SELECT value FROM json_each(?))",
            (computation_id, json.dumps(list(user_ids))),
        )
    }


def write_member_results(conn: apsw.Connection, computation_id: int, rows: Iterable[tuple[int, int, int]]) -> None:
    """Stores (operand, user, held) results of an account audience."""
    conn.executemany(
        "INSERT OR REPLACE INTO member_results (computation_id, operand, user_id, held) VALUES (?, ?, ?, ?)",
        [(computation_id, operand, user, held) for operand, user, held in rows],
    )


def missing_members(conn: apsw.Connection, computation_id: int, account_ids: Sequence[int]) -> list[int]:
    """Linked users of the accounts that have no stored results yet (to compute first)."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT l.user_id FROM links AS l WHERE l.account_id IN (SELECT value FROM json_each(?))"
            " AND NOT EXISTS (SELECT 1 FROM member_results AS r WHERE r.user_id = l.user_id"
            " AND r.computation_id = ?)",
            (json.dumps(list(account_ids)), computation_id),
        )
    ]


def unresolved_members(conn: apsw.Connection, computation_id: int) -> list[int]:
    """Every live linked user that has no stored results yet (a cluster's shard counts them all)."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT l.user_id FROM links AS l JOIN profiles AS p ON p.profile_id = l.user_id"
            " WHERE p.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM member_results AS r"
            " WHERE r.user_id = l.user_id AND r.computation_id = ?) ORDER BY l.user_id",
            (computation_id,),
        )
    ]


def members_with_touches(conn: apsw.Connection, account_ids: Sequence[int]) -> list[int]:
    """Linked users of the accounts with touches not taken yet (a later job of the tick)."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT l.user_id FROM links AS l WHERE l.account_id IN (SELECT value FROM json_each(?))"
            " AND EXISTS (SELECT 1 FROM touches AS t WHERE t.profile_id = l.user_id)",
            (json.dumps(list(account_ids)),),
        )
    ]


def member_flags(
    conn: apsw.Connection, computation_id: int, account_ids: Sequence[int], operands: int
) -> dict[tuple[int, int], tuple[bool, bool]]:
    """Per (account, operand): whether some linked user satisfies it, and whether some does not.

    Each is an EXISTS over the account's links that stops at the first user found, which
    decides `ANY`, `ALL` and `ALL NOT` alike (every linked user has stored results).
    """
    exists = (
        "EXISTS (SELECT 1 FROM links AS l CROSS JOIN member_results AS r ON r.user_id = l.user_id"
        " AND r.computation_id = :cid AND r.operand = q.value WHERE l.account_id = a.value AND r.held = {})"
    )
    return {
        (int(account), int(operand)): (bool(held), bool(unheld))
        for account, operand, held, unheld in conn.execute(
            f"SELECT a.value, q.value, {exists.format(1)}, {exists.format(0)}"
            " FROM json_each(:accounts) AS a, json_each(:operands) AS q",
            {"cid": computation_id, "accounts": json.dumps(list(account_ids)),
             "operands": json.dumps(list(range(operands)))},
        )
    }


# A value stored: an upsert, not `INSERT OR REPLACE`, which deletes the row it replaces and
# inserts it again, rewriting its entry in `computed_values_by_computation` although the key did not
# change. Most values a job writes replace one (a count, a sum, a membership moving), and their
# index entries were the most pages a tick job wrote (bench: 551 of 1,321 for 250 touched users).
_STORE_VALUE = (
    "INSERT INTO computed_values (computation_id, profile_id, value, updated_ms) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (profile_id, computation_id) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms"
)


def write_value(conn: apsw.Connection, computation_id: int, profile_id: int, value: str | None, now_ms: int) -> None:
    """Stores (or, with None, removes) one computed value."""
    if value is None:
        conn.execute(
            "DELETE FROM computed_values WHERE computation_id = ? AND profile_id = ?", (computation_id, profile_id)
        )
    else:
        conn.execute(_STORE_VALUE, (computation_id, profile_id, value, now_ms))


def write_values(
    conn: apsw.Connection, computation_id: int, values: Sequence[tuple[int, str | None]], now_ms: int
) -> None:
    """Stores the (profile, value) pairs of one computation, a None value removed: one statement
    for the values stored and one for those removed."""
    stored = [(computation_id, pid, value, now_ms) for pid, value in values if value is not None]
    if stored:
        conn.executemany(_STORE_VALUE, stored)
    removed = [pid for pid, value in values if value is None]
    if removed:
        conn.execute(
            "DELETE FROM computed_values WHERE computation_id = ? AND profile_id IN (SELECT value FROM json_each(?))",
            (computation_id, json.dumps(removed)),
        )


class ChangeRecord(NamedTuple):
    """One change of a profile's value, as `record_changes` appends it."""

    space_id: int
    computation_id: int
    profile_id: int
    change: str
    old: str | None
    new: str | None


def record_changes(conn: apsw.Connection, records: Sequence[ChangeRecord], at_ms: int) -> None:
    """Appends change records, of any computations, in order, in one statement: an `INSERT …
    SELECT` from a JSON array of the records (integers, the kinds and the values' ASCII JSON
    texts), which costs 10–30% less per record than `executemany` binding seven parameters a
    row, and one statement a job rather than one per computation. The values' and due times'
    upserts, whose B-tree work outweighs the binding, cost the same either way and stay
    `executemany` (bench/levers.py, `levers.writes.*`).

    The array is walked by `jsonb_each`, whose records come as SQLite's binary JSON: each of the
    six fields is then read without parsing the record's text again, as `json_each`'s records
    were (a quarter less time for 20,000 records, before the indexes' work)."""
    if records:
        conn.execute(
            "INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
            " SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, ?"
            " FROM jsonb_each(?) ORDER BY key",
            (at_ms, orjson.dumps(records, default=tuple)),
        )


def record_change(
    conn: apsw.Connection,
    space_id: int,
    computation_id: int,
    profile_id: int,
    change: str,
    old: str | None,
    new: str | None,
    at_ms: int,
) -> None:
    """Appends a change record (the outbox that sync reads)."""
    conn.execute(
        "INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (space_id, computation_id, profile_id, change, old, new, at_ms),
    )


def record_link_change(conn: apsw.Connection, account_id: int, user_id: int, change: str, at_ms: int) -> None:
    """Appends, for each account computation with a value for the account (a member, for an
    audience), a record that a user joined (`user_linked`) or left (`user_unlinked`) it, so
    that per-user calls reach that user; the value itself did not change."""
    conn.execute(
        "INSERT INTO changes (space_id, computation_id, profile_id, change, old_value, new_value, at_ms, user_id)"
        " SELECT c.space_id, c.computation_id, v.profile_id, ?, v.value, v.value, ?, ? FROM computed_values v"
        " JOIN computations c USING (computation_id) WHERE v.profile_id = ? AND c.collection = 'accounts'"
        " AND v.value IS NOT NULL AND v.value != 'false'",
        (change, at_ms, user_id, account_id),
    )


def drop_profile_state(conn: apsw.Connection, profile_id: int) -> None:
    """Forgets the users' results of a profile that no longer exists on its own (merged away);
    its next change times go through the evaluation's `DueTimes.forget`."""
    conn.execute("DELETE FROM member_results WHERE user_id = ?", (profile_id,))


def add_sizes(conn: apsw.Connection, deltas: Mapping[int, int], now_ms: int) -> None:
    """Adjusts computations' sizes (members, or profiles with a value) by these deltas and stamps
    them computed."""
    if deltas:
        conn.execute(
            "UPDATE computations SET size = size + d.value ->> 1, last_computed_ms = ?1"
            " FROM json_each(?2) AS d WHERE computation_id = d.value ->> 0",
            (now_ms, orjson.dumps(list(deltas.items())).decode()),
        )


def advance_backfill(conn: apsw.Connection, computation_id: int, cursor: int, done: int) -> None:
    """Records backfill progress; the total grows with profiles made since the backfill started
    that it reaches (done never passes total)."""
    conn.execute(
        "UPDATE computations SET backfill_cursor = ?, progress_done = progress_done + ?,"
        " progress_total = max(progress_total, progress_done + ?) WHERE computation_id = ?",
        (cursor, done, done, computation_id),
    )


def finish_backfill(conn: apsw.Connection, computation_id: int, now_ms: int) -> None:
    """Switches a backfilled computation live."""
    conn.execute(
        "UPDATE computations SET status = 'LIVE', progress_total = max(progress_total, progress_done),"
        " last_computed_ms = ? WHERE computation_id = ?",
        (now_ms, computation_id),
    )


def start_backfill(conn: apsw.Connection, computation_id: int, total: int, new: bool = False) -> None:
    """Puts a computation back to the start of a backfill (after a create, an edit or an enable).
    Its next change times are not cleared here: see `clear_due`, which a new computation does
    not need; nor its users' results (`new`): the delete walks every user's results, keyed by
    user, ~20 ms per definition created in a space with 1.5 million of them."""
    conn.execute(
        "UPDATE computations SET status = 'BACKFILLING', backfill_cursor = 0, progress_done = 0,"
        " progress_total = ? WHERE computation_id = ?",
        (total, computation_id),
    )
    if not new:
        conn.execute("DELETE FROM member_results WHERE computation_id = ?", (computation_id,))


def clear_due(conn: apsw.Connection, computation_ids: Sequence[int]) -> None:
    """Drops the next change times of computations (going back to a backfill, or deleted): per
    computation, one pass over `due` that rewrites the rows holding one of its times (found by
    their text, parsed only then), and the rows left with none are deleted."""
    for cid in computation_ids:
        conn.execute(
            "UPDATE due SET times = json_remove(times, ?2), due_ms = coalesce("
            "(SELECT min(t.value) FROM json_each(json_remove(due.times, ?2)) AS t), due_ms)"
            " WHERE instr(times, ?1) > 0", (f'"{cid}":', f'$."{cid}"'))
    if computation_ids:
        conn.execute("DELETE FROM due WHERE times = '{}'")


def profile_refs(
    conn: apsw.Connection, profile_ids: Sequence[int]
) -> dict[int, tuple[str, str, list[tuple[str, str]]]]:
    """Per profile: its public id, its collection and its identifiers (oldest first)."""
    found: dict[int, tuple[str, str, list[tuple[str, str]]]] = {}
    for pid, public, collection in conn.execute(
        "SELECT profile_id, public_id, collection FROM profiles WHERE profile_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(profile_ids)),),
    ):
        found[int(pid)] = (public, collection, [])
    for pid, id_type, value in conn.execute(
        "SELECT profile_id, id_type, id_value FROM identifiers WHERE profile_id IN (SELECT value FROM json_each(?))"
        " ORDER BY profile_id, seq, id_type",
        (json.dumps(list(profile_ids)),),
    ):
        found[int(pid)][2].append((id_type, value))
    return found


def pending_profiles(conn: apsw.Connection, space_id: int | None = None) -> int:
    """How many profiles wait for the evaluator (of one space, when given)."""
    if space_id is None:
        return int(scalar(conn, "SELECT count(DISTINCT profile_id) FROM touches"))
    return int(scalar(conn, "SELECT count(DISTINCT t.profile_id) FROM touches AS t JOIN profiles AS p"
                            " ON p.profile_id = t.profile_id WHERE p.space_id = ?", (space_id,)))


def backfilling_count(conn: apsw.Connection, space_id: int) -> int:
    """How many of a space's computations are being backfilled."""
    return int(scalar(conn, "SELECT count(*) FROM computations WHERE status = 'BACKFILLING' AND enabled = 1"
                            " AND space_id = ?", (space_id,)))


def fail(conn: apsw.Connection, computation_id: int, error: str, now_ms: int) -> None:
    """Marks a computation FAILED with the error; it is not evaluated until edited or re-enabled."""
    conn.execute(
        "UPDATE computations SET status = 'FAILED', error = ?, updated_ms = ? WHERE computation_id = ?",
        (error, now_ms, computation_id),
    )


def members(
    conn: apsw.Connection, computation_id: int, after: int, limit: int
) -> list[tuple[int, int]]:
    """An audience's members after a profile id, in id order, with the time each entered."""
    return [
        (int(p), int(t))
        for p, t in conn.execute(
            "SELECT profile_id, updated_ms FROM computed_values WHERE computation_id = ? AND value = 'true'"
            " AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (computation_id, after, limit),
        )
    ]
