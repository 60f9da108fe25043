"""Membership history and size series: reading what the evaluator kept (see store/history.py).

Records are read oldest first, by profile (with the profiles merged into it) or by definition or
both, within the retention time (`--history-retention-days`), with signed page tokens. A size
series has one point per hour or day: the entries, exits and value changes in it and the size at
its end, carried over hours without changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from audiences_server.engine.clock import Clock
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.engine.profile_reads import _find
from audiences_server.errors import FieldViolation, InvalidArgument, NotFound
from audiences_server.store import evaluation as store
from audiences_server.store import history as history_store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
MAX_POINTS = 2000
DEFAULT_POINTS = {HOUR_MS: 48, DAY_MS: 30}


@dataclass(frozen=True)
class Record:
    """One entry, exit or value change: `old` and `new` are values (None is absent)."""

    history_id: int
    key: str
    kind: str
    collection: str
    profile_id: int
    change: str
    old: Any
    new: Any
    at_ms: int


@dataclass(frozen=True)
class Point:
    """One interval of a size series: when it starts, what happened in it, the size at its end."""

    start_ms: int
    entered: int
    exited: int
    changed: int
    size: int


@dataclass(frozen=True)
class HistoryQuery:
    """What to list: a profile (collection and address), a definition (collection and key), or both;
    a time range (None: from the retention's start, until now); a page."""

    collection: str
    address: str = ""
    key: str = ""
    start_ms: int | None = None
    end_ms: int | None = None
    size: int = 0
    token: str = ""


class History:
    """Reads of the membership history and of size series."""

    def __init__(self, readers: Readers, clock: Clock, tokens: PageTokens, retention_ms: int) -> None:
        self._readers = readers
        self._clock = clock
        self._tokens = tokens
        self.retention_ms = retention_ms

    def records(self, space_id: int, query: HistoryQuery) -> tuple[list[Record], str]:
        """One page of records, oldest first, and the next page's token."""
        check_time_range(query.start_ms, query.end_ms)
        if not query.address and not query.key:
            raise InvalidArgument("name a profile, a definition, or both", reason="HISTORY_FILTER_MISSING",
                                  violations=[FieldViolation("profile_id", "required without key")])
        limit = page_size(query.size, 100, 1000)
        since = max(query.start_ms or 0, self._clock.now_ms() - self.retention_ms)
        with self._readers.snapshot() as conn:
            pids = _profiles(conn, space_id, query)
            cid = _definition(conn, space_id, query.collection, query.key).computation_id if query.key else None
            scope = {"space": space_id, "list": "history", "profiles": pids, "computation": cid,
                     "start": query.start_ms, "end": query.end_ms}
            after = self._tokens.decode(query.token, scope) or 0
            rows = history_store.records(conn, space_id=space_id, profile_ids=pids, computation_id=cid,
                                         since_ms=since, until_ms=query.end_ms, after=after, limit=limit + 1)
        page = [_record(r) for r in rows[:limit]]
        token = self._tokens.encode(page[-1].history_id, scope) if len(rows) > limit else ""
        return page, token

    def sizes(self, space_id: int, collection: str, key: str, interval_ms: int, start_ms: int | None,
              end_ms: int | None) -> tuple[ComputationRow, list[Point]]:
        """A definition's size per hour or day over [start, end) (default: the last 48 hours or 30
        days), clipped to the retention time; the last point is the interval holding now."""
        check_time_range(start_ms, end_ms)
        now = self._clock.now_ms()
        end = _floor(min(end_ms, now + 1) - 1 if end_ms is not None else now, interval_ms) + interval_ms
        default_start = end - DEFAULT_POINTS[interval_ms] * interval_ms
        start = _floor(start_ms, interval_ms) if start_ms is not None else default_start
        start = max(start, _floor(now - self.retention_ms, interval_ms) + interval_ms)
        if (end - start) // interval_ms > MAX_POINTS:
            raise InvalidArgument(f"the range holds more than {MAX_POINTS} points; narrow it",
                                  reason="RANGE_TOO_LARGE", violations=[FieldViolation("start_time", "too early")])
        with self._readers.snapshot() as conn:
            comp = _definition(conn, space_id, collection, key)
            start = max(start, _floor(comp.created_ms, interval_ms))
            found = history_store.buckets(conn, comp.computation_id, start, end)
            before = history_store.size_before(conn, comp.computation_id, start)
        return comp, _points(found, comp.size if before is None else before, start, end, interval_ms)


def check_time_range(start_ms: int | None, end_ms: int | None) -> None:
    """Refuses an `end_time` before its `start_time`: a caller who swapped them would otherwise be
    told that nothing happened.

    Raises:
        InvalidArgument: TIME_RANGE_INVALID.
    """
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise InvalidArgument("`end_time` is before `start_time`", reason="TIME_RANGE_INVALID",
                              violations=[FieldViolation("end_time", "before start_time")])


def _points(found: list[history_store.Bucket], size: int, start: int, end: int, interval_ms: int) -> list[Point]:
    """Hour buckets summed into intervals; an interval without changes keeps the size before it."""
    points = []
    index = 0
    for at in range(start, end, interval_ms):
        entered = exited = changed = 0
        while index < len(found) and found[index][0] < at + interval_ms:
            _, e, x, c, size = found[index]
            entered, exited, changed = entered + e, exited + x, changed + c
            index += 1
        points.append(Point(at, entered, exited, changed, size))
    return points


def _profiles(conn: Any, space_id: int, query: HistoryQuery) -> list[int] | None:
    """The profile asked for and those merged into it (their records before the merge are its past)."""
    if not query.address:
        return None
    return history_store.merged_into(conn, _find(conn, space_id, query.collection, query.address)[0])


def _floor(ms: int, interval_ms: int) -> int:
    return ms - ms % interval_ms


def _definition(conn: Any, space_id: int, collection: str, key: str) -> ComputationRow:
    row = store.computation(conn, space_id, collection, key)
    if row is None:
        raise NotFound(f"definition {key!r} not found in {collection}", reason="NOT_FOUND")
    return row


def _record(row: dict[str, Any]) -> Record:
    def value(raw: str | None) -> Any:
        if row["kind"] == "audience":
            return raw == "true"
        return None if raw is None else json.loads(raw)

    return Record(row["history_id"], row["key"], row["kind"], row["collection"], row["profile_id"], row["change"],
                  value(row["old_value"]), value(row["new_value"]), row["at_ms"])
