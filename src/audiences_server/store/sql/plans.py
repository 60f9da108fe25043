"""Definitions compiled to SQLite plans: one query per chunk of profiles evaluates the common ones.

The reference interpreter (`core.ql`) loads each profile's events into Python and walks the tree
per profile. Most definitions are simple: comparisons between literals, traits and reducers over
a few event streams, each an event name with windows relative to now, `sources(exclude: …)` and
`where` filters comparing event fields with literals or other fields, or counting a nested
stream (funnels). `compile_definition` turns such a user definition into a `Plan`, and an account
audience whose `ANY`/`ALL` operands are such conditions into an `AccountPlan` (a user plan per
operand, run over the accounts' users); anything else gets `None` and stays with the interpreter.

How the work is split, and why the results are the interpreter's exactly:

* SQLite scans the candidates' events once (index `events_by_profile`), decides per event which
  streams it belongs to, and aggregates per profile. `where` comparisons are SQL that follows the
  language's typing rules (`values.equal` / `values.order`) for the usual kinds of value; the
  values SQL cannot type exactly (text compared with a number, text that may be numeric
  ordered against other text, integers beyond 64 bits, text holding NUL, lists and objects) go
  through `ql_compare`, which calls the interpreter's own `compare`. `count()` is SQLite's; for
  the other reducers SQLite collects, per profile, each event's (timestamp, arrival, field JSON)
  into one JSON array (`json_group_array`, no Python call per row), and Python hands the field's
  values, oldest first, to the interpreter's `reduce_values` (so `fsum`, integer exactness and
  tie-breaking are the interpreter's own).
* Python then evaluates the few comparisons at the top of the definition with `compare`, reading
  traits as the interpreter does (the evaluator passes them in: custom traits overlaid with the
  values of other definitions).
* A funnel's nested stream is a correlated `count(*)` over the profile's events (index
  `events_by_profile` again), its parent windows relative to the event tested; a comparison
  between two fields goes through `ql_compare_fields`, the interpreter's `compare` again, but
  for the equality or difference of two texts that cannot be numeric and hold no NUL (SQL's `=`).
* The next change time is, over every stream, the earliest of an event in the stream leaving its
  window (timestamp + far edge + 1) and an event that passes the stream's other filters entering
  it (timestamp + near edge; a future-stamped event enters at the earliest when its time comes);
  for a nested stream, any event of its name entering or leaving its now-relative window.
  Nothing the result depends on moves between two such instants, and each is after now.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import orjson

from audiences_server.core.ql.checker import CheckedDefinition
from audiences_server.core.ql.comparators import compare
from audiences_server.core.ql.nodes import (
    Aggregate,
    AggregateFunction,
    And,
    Between,
    Comparison,
    Condition,
    ContextRef,
    Filter,
    Literal,
    LiteralValue,
    Not,
    Operator,
    Or,
    PropertyRef,
    Quantified,
    Scalar,
    Session,
    Sources,
    Stream,
    TraitRef,
    Where,
    Within,
    is_condition,
)
from audiences_server.core.ql.reducers import reduce_values
from audiences_server.core.ql.values import as_number, path_parts, resolve

Row = tuple[int, Any, int | None]
"""A profile id, its value and its next change time."""
# A scan's result: per profile with events of interest, its reducers' values and next change.
Scanned = dict[int, tuple[tuple[Any, ...], int | None]]
# A scan made together with other plans' (`scan_together`): the profiles it covered, and what it
# found for those with events of interest.
Shared = tuple[Collection[int], Scanned]
# What a value failing to decode raises (a reducer's arithmetic, a value of an unexpected shape),
# as opposed to the database's errors, which are the job's.
DECODE_FAILURES = (ArithmeticError, LookupError, TypeError, ValueError, RecursionError)
# Scans made in one writer job, by query, parameters and decoding.
Scans = dict[tuple[Any, ...], Scanned]
_SCANS_KEPT = 32

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Path labels are always quoted in the SQLite JSON paths built here; a quote, a backslash or a
# control character would need escapes, so paths holding one are left to the interpreter.
_PLAIN_PATH = re.compile(r'[^"\\\x00-\x1f]+')

_EQUALITY = {Operator.EQUALS: "=", Operator.ONE_OF: "=", Operator.DIFFERS: "!=", Operator.NONE_OF: "!="}
_ORDER = {Operator.GREATER_THAN: ">", Operator.AT_LEAST: ">=", Operator.LESS_THAN: "<", Operator.AT_MOST: "<="}
_DATES = frozenset({Operator.BEFORE_DATE, Operator.AFTER_DATE})
# The code points a numeric string can start with (`values.as_number`): + - . and the digits.
_NUMBER_STARTS = "(" + ", ".join(str(ord(c)) for c in "+-.0123456789") + ")"


class _Unsupported(Exception):
    """The definition has a shape no SQL plan covers."""


def compile_definition(checked: CheckedDefinition, floor_ms: int | None) -> Plan | AccountPlan | None:
    """The SQL plan of a checked definition whose events count from `floor_ms` on (None:
    all of them; see `Compiled.event_floor_ms`), or None when the interpreter must evaluate it.

    Compiled: user audiences and computed traits made of AND/OR/NOT, comparisons (not the
    relative date ones) between literals, traits and reducers (any reducer, over a property or
    context field) of streams whose filters are now-relative windows, source exclusions and
    `where` conditions. A `where` may compare an event field with literals or with another field
    (of the event or, in a nested stream, of its parent), and may compare the `count()` of a
    nested stream (a funnel: parent windows, parent properties, to any depth) with numbers.
    Account audiences are compiled when their top compares account traits with literals and
    each `ANY`/`ALL` operand compiles as a user condition. Not compiled: account-level streams,
    `where` conditions reading traits, nested reducers other than `count()`, relative date
    comparators, paths needing escapes.
    """
    root = checked.definition.root
    lookback = checked.summary.lookback_ms
    try:
        if checked.collection == "users":
            return _compile_user(root, floor_ms, lookback)
        return _compile_account(root, floor_ms, lookback)
    except _Unsupported:
        return None


def _compile_user(root: Condition | Scalar, floor_ms: int | None, lookback_ms: int | None) -> Plan:
    builder = _Builder()
    builder.top(root)
    return builder.plan(root, floor_ms, lookback_ms)


def _compile_account(root: Condition | Scalar, floor_ms: int | None, lookback_ms: int | None) -> AccountPlan:
    """An account audience: each quantified operand becomes a user plan (with the definition's
    floor and lookback, so the users' events read are the interpreter's); the top reads only
    account traits, literals and the quantifiers' results."""
    slots: dict[Aggregate | Quantified, int] = {}
    quantified: list[tuple[str, Plan]] = []

    def walk(node: Condition) -> None:
        if isinstance(node, And | Or):
            for item in node.items:
                walk(item)
        elif isinstance(node, Not):
            walk(node.operand)
        elif isinstance(node, Quantified):
            if node not in slots:
                slots[node] = len(quantified)
                quantified.append((node.quantifier, _compile_user(node.operand, floor_ms, lookback_ms)))
        elif isinstance(node, Comparison) and node.duration is None:
            if not all(isinstance(part, Literal | TraitRef) for part in (node.subject, *node.operands)):
                raise _Unsupported
        else:
            raise _Unsupported

    if not is_condition(root):
        raise _Unsupported
    walk(root)  # type: ignore[arg-type]
    return AccountPlan(_tester(root, slots), tuple(quantified))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class _Window:
    """A stream's window as distances before now of its near and far edges (both inclusive;
    `high` None when unbounded): the stream holds the events with now − high ≤ ts ≤ now − low."""

    low: int
    high: int | None

    @property
    def empty(self) -> bool:
        """Whether intersecting windows left nothing (such a stream never changes)."""
        return self.high is not None and self.low > self.high


# Values that come back from JSON text as they went in (floats too: their text round-trips).
_JSON_SCALARS = frozenset({int, float, str, bool, type(None)})


_NUMBER_FIRST = frozenset("-0123456789")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _parsed(text: str) -> Any:
    """A field's JSON text (as SQLite's `->` gives it) as `json.loads` reads it, without its
    per-call cost for the usual scalars: a number is `int` of its text unless it has a fraction
    or an exponent, then `float` of it (what the stdlib decoder does, so integers of any size
    stay exact); text through orjson, which refuses what it would read differently (lone
    surrogates); anything else, or anything refused, through the stdlib."""
    first = text[:1]
    try:
        if first in _NUMBER_FIRST:
            return float(text) if "." in text or "e" in text or "E" in text else int(text)
        if first == '"':
            return orjson.loads(text)
        if text in _LITERALS:
            return _LITERALS[text]
    except (ValueError, orjson.JSONDecodeError):
        pass
    return json.loads(text)


# An event's place in its profile's order: timestamp, then arrival.
_BY_TIME = operator.itemgetter(0, 1)


# The longest column text `_fields` keeps parsed: a profile with many events makes columns of
# megabytes, each new event a new one, and a cache of those held copies by the gigabyte.
_FIELDS_KEPT_CHARS = 65_536


def _fields(raw: str) -> tuple[Any, ...]:
    """A reducer column's field values, oldest first, from its JSON array of `[ts, seq, field
    JSON]`. Definitions reducing the same field of the same stream read one column, so the same
    text comes several times in a row: one of up to 64 KB is parsed once (`_kept_fields`), a
    longer one each time. (The values are shared: reducers do not change them, and a value that
    is not a scalar is copied through JSON before it is kept.)"""
    return _kept_fields(raw) if len(raw) <= _FIELDS_KEPT_CHARS else _parsed_fields(raw)


@functools.lru_cache(maxsize=128)
def _kept_fields(raw: str) -> tuple[Any, ...]:
    return _parsed_fields(raw)


def _parsed_fields(raw: str) -> tuple[Any, ...]:
    # The array holds integers and strings only (each field's JSON as text), which orjson reads
    # as the stdlib does (anything it refuses goes to the stdlib); the fields go through `_parsed`.
    try:
        rows = orjson.loads(raw)
    except orjson.JSONDecodeError:
        rows = json.loads(raw)
    if len(rows) > 1:
        rows.sort(key=_BY_TIME)
    return tuple(None if field is None else _parsed(field) for _, _, field in rows)


@dataclass(frozen=True)
class _Output:
    """One reducer's column: which stream it reads and its value over no events."""

    aggregate: Aggregate
    stream: int
    empty: Any

    def decode(self, raw: Any) -> Any:
        """The value from its column: a count, or the JSON array of `[ts, seq, field JSON]`
        the reducer reads (empty: no event)."""
        aggregate = self.aggregate
        if aggregate.function is AggregateFunction.COUNT:
            return raw
        if raw == "[]":
            return self.empty
        value = reduce_values(aggregate.function, _fields(raw), aggregate.value_type, aggregate.min_frequency)
        if type(value) in _JSON_SCALARS:
            return value
        if type(value) is list and all(type(item) in _JSON_SCALARS for item in value):
            return list(value)  # what JSON gives back for a list of scalars (`unique`'s, say), copied
        # Through JSON, as a stored value is: the same types whichever path computed it.
        return json.loads(json.dumps(value))


@dataclass(frozen=True)
class Plan:
    """A compiled user definition: the SQL that aggregates the streams, and the top of the tree.

    The SQL is fixed; what depends on the clock and the candidates (`:ids`, `:lo`, `:now`,
    `:floor`, and per stream `:a<k>`/`:b<k>`, per nested stream `:na<j>`/`:nb<j>`, the windows as
    timestamps) is bound at each run.
    """

    result: _Result
    sql: str | None
    # The same query in pieces, so that plans reading the same event names share one (`scan_together`).
    query: _Query | None
    params: Mapping[str, Any]
    windows: tuple[_Window, ...]
    # The now-relative windows of streams nested in a `where` (for their next change only).
    nested: tuple[_Window, ...]
    outputs: tuple[_Output, ...]
    # Per next-change column: what to add to the smallest timestamp it finds.
    edges: tuple[int, ...]
    floor_ms: int | None
    # The definition's lookback (`ql.Summary.lookback_ms`): no stream reads an event older.
    lookback_ms: int | None

    def run(
        self,
        conn: apsw.Connection,
        profile_ids: Sequence[int],
        now_ms: int,
        traits: Mapping[int, Mapping[str, Any]],
        scans: Scans | None = None,
        shared: Shared | None = None,
        results: Mapping[int, Any] | None = None,
    ) -> list[Row]:
        """Each profile's value and next change time at `now_ms`, in the order given.

        Args:
            conn: A connection to the database (the plans' SQL functions are added to it).
            profile_ids: Distinct live user profiles.
            now_ms: The evaluation time.
            traits: Per profile, the traits the definition reads, as the interpreter sees them.
            scans: Scans already made while the events stay as they are (one writer job), by
                query and parameters: definitions reading the same streams of the same profiles
                (an audience and an account audience's operand, say) share one.
            shared: This plan's part of a scan made together with other plans (`scan_together`)
                while the events stay as they are: the profiles it covered, and what it found for
                them (a covered profile it holds nothing for has no events of interest);
                profiles it did not cover are scanned here.
            results: Values already worked out from `shared`'s parts, by profile, for a plan that
                reads no trait (a scan made ahead, engine/scan_ahead.py: a compiled top reads
                the reducers' values and traits only, never the clock).
        """
        scanned = self.found(conn, profile_ids, now_ms, scans, shared)
        empty = tuple(out.empty for out in self.outputs)
        # Most candidates of a big tick have no events of interest and no trait read: they all
        # get the same result, computed once.
        bare: list[Any] = []
        rows = []
        for pid in profile_ids:
            found = scanned.get(pid)
            if found is not None:
                if results is not None and pid in results:
                    rows.append((pid, results[pid], found[1]))
                else:
                    rows.append((pid, self.result(found[0], traits.get(pid, {}), now_ms), found[1]))
            elif pid in traits:
                rows.append((pid, self.result(empty, traits[pid], now_ms), None))
            else:
                if not bare:
                    bare.append(self.result(empty, {}, now_ms))
                rows.append((pid, bare[0], None))
        return rows

    def found(self, conn: apsw.Connection, profile_ids: Sequence[int], now_ms: int, scans: Scans | None = None,
              shared: Shared | None = None) -> Scanned:
        """What the scan finds for the profiles (see `run`): from `shared` where it covers them,
        the others scanned now."""
        if self.sql is None:
            return {}
        if shared is None:
            return self.scan(conn, profile_ids, now_ms, scans)
        covered, scanned = shared
        missing = [pid for pid in profile_ids if pid not in covered]
        return {**scanned, **self.scan(conn, missing, now_ms, scans)} if missing else scanned

    def scan(
        self, conn: apsw.Connection, profile_ids: Sequence[int], now_ms: int, scans: Scans | None
    ) -> Scanned:
        """One query: per profile with events of interest, the reducers' values and the next change."""
        assert self.sql is not None
        _register(conn)
        params = dict(self.bound(now_ms), ids=json.dumps(list(profile_ids)))
        key = (self.sql, repr(sorted(params.items())), repr(self.outputs), self.edges)
        if scans is not None and key in scans:
            return scans[key]
        decoded = self.decoder
        found = {int(row[0]): decoded(row[1:]) for row in conn.execute(self.sql, params)}
        if scans is not None:
            if len(scans) >= _SCANS_KEPT:  # a long-lived caller (a preview over every profile) keeps a few
                scans.clear()
            scans[key] = found
        return found

    def bound(self, now_ms: int) -> dict[str, Any]:
        """The query's parameters at `now_ms`, but for the profiles (`:ids`)."""
        return {name: _worth(symbol, now_ms) for name, symbol in self.symbols}

    @functools.cached_property
    def symbols(self) -> tuple[tuple[str, Symbol], ...]:
        """The query's parameters (but `:ids`) as what they are worth at any time (`_worth`):
        its constants, its lower bound, now, the floor, and each window's edges."""
        floor = _INT64_MIN if self.floor_ms is None else self.floor_ms
        found: dict[str, Symbol] = {name: ("v", type(value), value) for name, value in self.params.items()}
        found.update(lo=("lo", floor, self.lookback_ms), now=("at", 0), floor=("v", int, floor))
        for prefix, windows in (("", self.windows), ("n", self.nested)):
            for k, window in enumerate(windows):
                found[f"{prefix}a{k}"] = ("v", int, _INT64_MIN) if window.high is None else ("at", window.high)
                found[f"{prefix}b{k}"] = ("at", window.low)
        return tuple(found.items())

    @functools.cached_property
    def nothing(self) -> tuple[Any, ...]:
        """This plan's columns for a profile none of whose events it reads: counts of 0, empty
        arrays, no next change."""
        return (*(0 if out.aggregate.function is AggregateFunction.COUNT else "[]" for out in self.outputs),
                *(None for _ in self.edges))

    @functools.cached_property
    def decoder(self) -> Callable[[Sequence[Any]], tuple[tuple[Any, ...], int | None]]:
        """The reducers' values and the next change from this plan's columns (reducers, then
        next-change times), made once per plan: it runs for every (plan, profile) pair of a scan,
        and most plans hold only counts, whose columns are their values as they come."""
        width = len(self.outputs)
        adds = self.edges
        decoders = [out.decode for out in self.outputs]
        counts = all(out.aggregate.function is AggregateFunction.COUNT for out in self.outputs)
        if counts and len(adds) <= 1:
            # The most common plans: counts (their columns are their values) and at most one
            # next-change column. The columns always come as a tuple.
            if not adds:
                return lambda columns: (columns, None)  # type: ignore[return-value]
            (add,) = adds

            def counted(columns: Sequence[Any]) -> tuple[tuple[Any, ...], int | None]:
                ts = columns[width]
                return tuple(columns[:width]), None if ts is None else ts + add

            return counted

        if width == 1 and len(adds) == 2:
            # Most of the rest: one aggregate, with its window's expiry and an event's arrival
            # as next changes (every count and reducer over a window), made without loops.
            decode = self.outputs[0].decode
            first, second = adds

            def single(columns: Sequence[Any]) -> tuple[tuple[Any, ...], int | None]:
                raw, a, b = columns
                due = None if a is None else a + first
                if b is not None and (due is None or b + second < due):
                    due = b + second
                return (raw if counts else decode(raw),), due

            return single

        def decoded(columns: Sequence[Any]) -> tuple[tuple[Any, ...], int | None]:
            if counts:
                values = tuple(columns[:width])
            else:
                values = tuple([decode(raw) for decode, raw in zip(decoders, columns[:width], strict=True)])
            due = None
            for ts, add in zip(columns[width:], adds, strict=True):
                if ts is not None and (due is None or ts + add < due):
                    due = ts + add
            return values, due

        return decoded


@dataclass(frozen=True)
class _Query:
    """A plan's query in pieces: the event names it reads, the inner query's columns after
    `pid, ts, seq` (`m<k>` stream flags, `n<j>` nested-stream flags, `f<j>` fields), and the
    outer query's columns after `pid` (reducers, then next-change times, each `FILTER (WHERE …)`)."""

    names: tuple[str, ...]
    inner: tuple[str, ...]
    outer: tuple[str, ...]


# Plans' query pieces put in one query with others: each parameter is replaced by one named after
# its value (`:v3`), so that pieces meaning the same are the same text, and column aliases are the
# query's own (`c7`). Every literal is a bound parameter, so the SQL text holds no value these could
# match inside.
_PARAMETER = re.compile(r":(p\d+|n?[ab]\d+|now|floor|lo)\b")
_ALIAS = re.compile(r"\b([mnf]\d+)\b")
# At most this many plans' outer columns in one query: a query of a few hundred aggregates is
# still quick to prepare, and SQLite allows 2,000 columns.
_TOGETHER_COLUMNS = 400


def _scan_sql(outer: Sequence[str], inner: Sequence[str], names: Sequence[str], lowest: str) -> str:
    """Per profile among `:ids` with events of the names (bound parameters) from `lowest` on, the
    `outer` aggregates over the `inner` columns of each event (after `pid, ts, seq`). `LIMIT -1`
    keeps SQLite from flattening the inner query into the outer one, which would evaluate the
    `where` SQL again for every aggregate using it."""
    return (
        f"SELECT {', '.join(['pid', *outer])} FROM (SELECT"
        f" {', '.join(['e.profile_id AS pid', 'e.ts AS ts', 'e.seq AS seq', *inner])} FROM events AS e"
        " WHERE e.profile_id IN (SELECT value FROM json_each(:ids))"
        f" AND e.event IN ({', '.join(names)}) AND e.ts >= {lowest} LIMIT -1)"
        " GROUP BY pid"
    )


def _picker(places: Sequence[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """The columns of a row at these places, as a tuple."""
    if len(places) > 1:
        return operator.itemgetter(*places)
    at = places[0]
    return lambda row: (row[at],)


def _renamed(pattern: re.Pattern[str], text: str, names: Mapping[str, str]) -> str:
    """`text` with each match of `pattern` replaced by what `names` gives its first group."""
    return pattern.sub(lambda found: names[found.group(1)], text)


def scan_together(
    conn: apsw.Connection, plans: Sequence[Plan], candidates: Sequence[Collection[int]], now_ms: int
) -> list[tuple[frozenset[int], Scanned]]:
    """What `Plan.scan` gives each plan over its candidates, by one query per set of event
    names: per plan, the profiles its query covered and what it found for them (a `Shared`).

    Dozens of definitions read the same event (a shop's `Order Completed`): scanned one by one,
    each reads the profiles' events again, parses their bodies again, tests them again and
    sorts them again. Plans reading the same event names instead share one query: the inner
    query holds the flags and fields of them all (SQLite parses a body once for all of them),
    the outer one their aggregates, each also filtered by its plan's own lower bound (`ts >=
    :lo`, the plan's floor and lookback), so each plan's columns are what its own query gives.
    A flag, field or aggregate that several plans compute alike (the same stream counted in the
    same window with different thresholds, say) is one column they all read. A profile whose
    columns for a plan are those of no events (`Plan.nothing`) is left out of that plan's part,
    as a profile without events of interest is: the plan gives it the result over no events
    without decoding anything. Plans reading different names do not share: every aggregate is
    tested on every row read. Plans reading the same names scan the union of their candidates
    (and each covers that union); each set of names scans only its own plans' candidates, not
    every profile of the job: a job's profiles were touched by different events, and a profile
    touched by none a plan reads is not its candidate (in a 200-definition tick, the scans over
    every profile read 2.2 times the profiles the plans' own candidates make).
    """
    _register(conn)
    found: list[Scanned] = [{} for _ in plans]
    covered: list[frozenset[int]] = [frozenset() for _ in plans]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, plan in enumerate(plans):
        if plan.query is not None:
            groups.setdefault(plan.query.names, []).append(i)
    for names, members in groups.items():
        union = frozenset().union(*(candidates[i] for i in members))
        for i in members:
            covered[i] = union
        profile_ids = sorted(union)
        ids = json.dumps(profile_ids)
        chunks: list[list[int]] = [[]]
        columns = 0
        for i in members:
            width = len(plans[i].query.outer)  # type: ignore[union-attr]
            if chunks[-1] and columns + width > _TOGETHER_COLUMNS:
                chunks.append([])
                columns = 0
            chunks[-1].append(i)
            columns += width
        for chunk in chunks:
            if len(chunk) == 1:
                try:
                    found[chunk[0]] = plans[chunk[0]].scan(conn, profile_ids, now_ms, None)
                except DECODE_FAILURES:  # the plan's own run meets it again, as its own failure
                    covered[chunk[0]] = frozenset()
            else:
                failed = _scan_chunk(conn, [(found[k], plans[k]) for k in chunk], names, ids, now_ms)
                for k in (chunk[i] for i in failed):
                    covered[k], found[k] = frozenset(), {}
    return list(zip(covered, found, strict=True))


def _scan_chunk(conn: apsw.Connection, chunk: Sequence[tuple[Scanned, Plan]], names: tuple[str, ...], ids: str,
                now_ms: int) -> set[int]:
    """One query for plans reading the same event names, into each plan's `Scanned` (see
    `scan_together`). Returns the positions of the plans whose values failed to decode: those
    cover nothing, so each scans again on its own when it runs, where its failure is its own
    (the evaluator marks that definition FAILED) and not the job's."""
    plans = tuple(plan for _, plan in chunk)
    key = (names, tuple(map(id, plans)))
    composed = _COMPOSED.get(key)
    if composed is None:
        composed = _compose(plans, names)
        if len(_COMPOSED) >= _COMPOSED_KEPT:
            _COMPOSED.clear()
        _COMPOSED[key] = composed
    params: dict[str, Any] = {"ids": ids}
    for name, symbol in composed.symbols:
        params[name] = _worth(symbol, now_ms)
    readers = [(into, plan.decoder, pick, plan.nothing)
               for (into, plan), pick in zip(chunk, composed.pickers, strict=True)]
    failed: set[int] = set()
    for row in conn.execute(composed.sql, params):
        pid = int(row[0])
        try:
            for into, decoded, pick, nothing in readers:
                columns = pick(row)
                if columns != nothing:  # else as a profile without events of interest
                    into[pid] = decoded(columns)
        except DECODE_FAILURES:  # the row again, plan by plan, leaving out those that fail
            for position, (into, decoded, pick, nothing) in enumerate(readers):
                if position in failed or (columns := pick(row)) == nothing:
                    continue
                try:
                    into[pid] = decoded(columns)
                except DECODE_FAILURES:
                    failed.add(position)
    return failed


# What a parameter is worth at any time: ("v", type, value) a constant, ("at", k) now − k, ("lo",
# floor, lookback) a plan's lower bound (the floor, or now − lookback if later), ("lowest", (lower
# bounds…)) the earliest of several.
Symbol = tuple[Any, ...]


def _worth(symbol: Symbol, now_ms: int) -> Any:
    """A parameter's value at `now_ms` (see `Symbol`)."""
    kind = symbol[0]
    if kind == "v":
        return symbol[2]
    if kind == "at":
        return now_ms - symbol[1]
    if kind == "lo":
        floor, lookback = symbol[1], symbol[2]
        return floor if lookback is None else max(floor, now_ms - lookback)
    return min(_worth(bound, now_ms) for bound in symbol[1])


@dataclass(frozen=True)
class _Composed:
    """A chunk's query: the plans it was composed for (held, so that their ids in its key in
    `_COMPOSED` are theirs for as long as it is kept), its text, each plan's picker of its columns
    in a row, and its parameters (but `:ids`) as `Symbol`s, to be given their values at each run."""

    plans: tuple[Plan, ...]
    sql: str
    pickers: tuple[Callable[[Sequence[Any]], Sequence[Any]], ...]
    symbols: tuple[tuple[str, Symbol], ...]


# The queries of the chunks run lately, by their event names and plans (which the entries keep,
# so that an id is never another plan's): a job runs the same plans as the last, mostly, and
# composing a query (renaming every piece of ~200 plans) took about a quarter of a small job.
# A query's text depends on the plans only, not on the time: its parameters are bound to what
# they stand for (`Symbol`), each distinct one once. A few hundred chunks at most are kept.
_COMPOSED: dict[tuple[tuple[str, ...], tuple[int, ...]], _Composed] = {}
_COMPOSED_KEPT = 512


def _compose(plans: Sequence[Plan], names: Sequence[str]) -> _Composed:
    """The query of a chunk's plans reading these event names."""
    symbols: dict[Symbol, str] = {}

    def bind(symbol: Symbol) -> str:
        if symbol not in symbols:
            symbols[symbol] = f"v{len(symbols)}"
        return ":" + symbols[symbol]

    inner: dict[str, str] = {}  # expression: alias
    outer: dict[str, int] = {}  # expression: its place in a row
    pickers = []
    for plan in plans:
        assert plan.query is not None
        local = {name: bind(symbol) for name, symbol in plan.symbols}
        aliases = {}
        for piece in plan.query.inner:
            expression, _, alias = piece.rpartition(" AS ")
            aliases[alias] = inner.setdefault(_renamed(_PARAMETER, expression, local), f"c{len(inner)}")
        places = []
        for piece in plan.query.outer:
            bounded = piece.replace("FILTER (WHERE ", "FILTER (WHERE ts >= :lo AND ", 1)
            expression = _renamed(_ALIAS, _renamed(_PARAMETER, bounded, local), aliases)
            places.append(outer.setdefault(expression, len(outer) + 1))
        pickers.append(_picker(places))
    marks = [bind(("v", str, name)) for name in names]
    lowest = bind(("lowest", tuple(dict.fromkeys(dict(plan.symbols)["lo"] for plan in plans))))
    sql = _scan_sql(list(outer), [f"{expression} AS {alias}" for expression, alias in inner.items()], marks, lowest)
    return _Composed(tuple(plans), sql, tuple(pickers), tuple((name, symbol) for symbol, name in symbols.items()))


@dataclass(frozen=True)
class AccountPlan:
    """A compiled account audience: a user plan per `ANY`/`ALL` operand, run once over every
    linked user of the candidates, and the top of the tree over the quantifiers' results."""

    result: _Result
    quantified: tuple[tuple[str, Plan], ...]

    def run(
        self,
        conn: apsw.Connection,
        account_ids: Sequence[int],
        now_ms: int,
        traits: Mapping[int, Mapping[str, Any]],
        members: Mapping[int, Sequence[int]],
        user_traits: Mapping[int, Mapping[str, Any]],
    ) -> list[Row]:
        """Each account's value and next change time at `now_ms`, in the order given.

        The next change is the earliest of its users' (an account's value moves only when one
        of its users' operands does; account traits and links are new data).

        Args:
            conn: A connection to the database.
            account_ids: Distinct live account profiles.
            now_ms: The evaluation time.
            traits: Per account, the account traits the top reads.
            members: Per account, its linked users.
            user_traits: Per linked user, the traits the operands read.
        """
        users = sorted({user for account in account_ids for user in members.get(account, ())})
        results = self.operands(conn, users, now_ms, user_traits)
        rows = []
        for account in account_ids:
            linked = members.get(account, ())
            flags = [(any(found[user][0] for user in linked), not all(found[user][0] for user in linked))
                     for found in results]
            dues = [due for found in results for due in (found[user][1] for user in linked) if due is not None]
            rows.append((account, self.combine(flags, traits.get(account, {}), now_ms), min(dues, default=None)))
        return rows

    def operands(
        self, conn: apsw.Connection, user_ids: Sequence[int], now_ms: int, traits: Mapping[int, Mapping[str, Any]],
        scans: Scans | None = None, shared: Sequence[Shared | None] = (),
    ) -> list[dict[int, tuple[int, int | None]]]:
        """Per operand, per user: 1 if the user satisfies it (else 0), and its next change time.
        `shared`: per operand, its part of a scan made together with other plans, if any (see
        `Plan.run`)."""
        parts = list(shared) or [None] * len(self.quantified)
        return [
            {pid: (int(bool(value)), due) for pid, value, due in plan.run(conn, user_ids, now_ms, traits, scans, part)}
            for (_, plan), part in zip(self.quantified, parts, strict=True)
        ]

    def combine(self, flags: Sequence[tuple[bool, bool]], traits: Mapping[str, Any], now_ms: int) -> Any:
        """An account's value from, per operand, whether some linked user satisfies it and
        whether some does not (`ALL` needs a user, and none failing)."""
        values = []
        for (quantifier, _), (some_hold, some_fail) in zip(self.quantified, flags, strict=True):
            if quantifier == "any":
                values.append(some_hold)
            elif quantifier == "all":
                values.append(some_hold and not some_fail)
            else:
                values.append(not some_hold)
        return self.result(values, traits, now_ms)


# The top of a definition, compiled to closures once (walking the tree per profile would cost
# more than the query): given the reducers' values, the traits and now, the result.
_Values = Sequence[Any]
_Read = Callable[[_Values, Mapping[str, Any]], Any]
_Result = Callable[[_Values, Mapping[str, Any], int], Any]


def _result(root: Condition | Scalar, slots: Mapping[Aggregate | Quantified, int]) -> _Result:
    if isinstance(root, Literal | TraitRef | PropertyRef | ContextRef | Aggregate):
        read = _reader(root, slots)
        return lambda values, traits, now_ms: read(values, traits)
    return _tester(root, slots)


def _tester(node: Condition, slots: Mapping[Aggregate | Quantified, int]) -> _Result:
    """As the interpreter's `holds`, with the same comparators (a quantifier's result is a value)."""
    if isinstance(node, And | Or):
        items = [_tester(item, slots) for item in node.items]
        combine = all if isinstance(node, And) else any
        return lambda values, traits, now_ms: combine(item(values, traits, now_ms) for item in items)
    if isinstance(node, Not):
        operand = _tester(node.operand, slots)
        return lambda values, traits, now_ms: not operand(values, traits, now_ms)
    if isinstance(node, Quantified):
        slot = slots[node]
        return lambda values, traits, now_ms: values[slot]
    assert isinstance(node, Comparison)
    counted = _count_test(node, slots)
    if counted is not None:
        return counted
    subject = _reader(node.subject, slots)
    operands = [_reader(operand, slots) for operand in node.operands]
    operator, duration = node.operator, node.duration
    return lambda values, traits, now_ms: compare(
        operator, subject(values, traits), [read(values, traits) for read in operands], duration, now_ms
    )


_NUMERIC_TESTS: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQUALS: operator.eq, Operator.ONE_OF: operator.eq, Operator.DIFFERS: operator.ne,
    Operator.NONE_OF: operator.ne, Operator.GREATER_THAN: operator.gt, Operator.AT_LEAST: operator.ge,
    Operator.LESS_THAN: operator.lt, Operator.AT_MOST: operator.le,
}


def _count_test(node: Comparison, slots: Mapping[Aggregate | Quantified, int]) -> _Result | None:
    """`….count() <op> numbers` as Python's own comparison, which is `compare`'s for an integer
    against numbers (the most common top of a definition, tested for every candidate)."""
    test = _NUMERIC_TESTS.get(node.operator)
    subject = node.subject
    if test is None or not isinstance(subject, Aggregate) or subject.function is not AggregateFunction.COUNT:
        return None
    numbers = [as_number(o.value) if isinstance(o, Literal) else None for o in node.operands]
    if None in numbers:
        return None
    slot = slots[subject]
    combine = all if node.operator in (Operator.OMITS, Operator.NONE_OF) else any
    if len(numbers) == 1:
        (number,) = numbers
        return lambda values, traits, now_ms: test(values[slot], number)
    return lambda values, traits, now_ms: combine(test(values[slot], number) for number in numbers)


def _reader(node: Scalar, slots: Mapping[Aggregate | Quantified, int]) -> _Read:
    """As the interpreter's `value_of`: a literal, a trait by the same path rules, or a reducer's value."""
    if isinstance(node, Literal):
        constant = node.value
        return lambda values, traits: constant
    if isinstance(node, TraitRef):
        key = node.key
        return lambda values, traits: resolve(traits, key)
    assert isinstance(node, Aggregate)
    slot = slots[node]
    return lambda values, traits: values[slot]


# ------------------------------------------------------------------ compiling


@dataclass(frozen=True)
class _Field:
    """SQL for an event field: its JSON type (NULL when missing), its SQL value and its JSON text."""

    type: str
    value: str
    raw: str


@dataclass(frozen=True)
class _On:
    """The events a `where` reads: the SQL alias of the event tested, and that of its parent (the
    event whose `where` holds the stream) in a nested stream."""

    alias: str
    parent: str | None = None


_TOP = _On("e")


class _Builder:
    """Walks a definition, raising `_Unsupported` at the first shape it cannot compile, and
    collects the SQL pieces and bound parameters of what it can."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.streams: dict[Stream, int] = {}
        self.matches: list[str] = []
        self.windows: list[_Window] = []
        self.outputs: list[_Output] = []
        self.raws: list[str] = []
        self.slots: dict[Aggregate | Quantified, int] = {}
        # Streams nested in a `where`: event name and now-relative window, for the next change.
        self.nested: list[tuple[str, _Window]] = []

    def bind(self, value: Any) -> str:
        """A named parameter holding `value` (values never enter the SQL text)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    # -- the top of the definition, evaluated in Python

    def condition(self, node: Condition) -> None:
        if isinstance(node, And | Or):
            for item in node.items:
                self.condition(item)
        elif isinstance(node, Not):
            self.condition(node.operand)
        elif isinstance(node, Comparison) and node.duration is None:
            for part in (node.subject, *node.operands):
                self.scalar(part)
        else:
            raise _Unsupported

    def top(self, root: Condition | Scalar) -> None:
        if isinstance(root, Literal | TraitRef | PropertyRef | ContextRef | Aggregate):
            self.scalar(root)
        else:
            self.condition(root)

    def scalar(self, node: Scalar) -> None:
        if isinstance(node, Aggregate):
            self.aggregate(node)
        elif not isinstance(node, Literal | TraitRef):
            raise _Unsupported

    def aggregate(self, node: Aggregate) -> None:
        if node in self.slots:
            return
        stream = self.stream(node.stream)
        empty: Any = 0
        if node.function is not AggregateFunction.COUNT:
            assert node.field is not None
            self.raws.append(self.field(node.field, _TOP).raw)
            empty = reduce_values(node.function, [], node.value_type, node.min_frequency)
        else:
            self.raws.append("NULL")
        self.slots[node] = len(self.outputs)
        self.outputs.append(_Output(node, stream, empty))

    # -- streams, evaluated in SQL

    def stream(self, node: Stream) -> int:
        """The index of a stream's `m<k>` column: whether an event passes the filters other than windows."""
        if node in self.streams:
            return self.streams[node]
        if any(isinstance(found, Session) or (isinstance(found, Within | Between) and found.parent)
               for found in node.filters):
            raise _Unsupported  # a session (events read together) and a funnel's window: the interpreter's
        conditions = self.filters(node, _TOP)
        self.streams[node] = len(self.matches)
        self.matches.append(f"CASE WHEN e.event = {self.bind(node.event)} THEN {conditions} ELSE 0 END")
        self.windows.append(_window(node.filters))
        return self.streams[node]

    def filters(self, node: Stream, on: _On) -> str:
        """SQL for a stream's source exclusions and `where` filters on the event `on.alias`, the
        cheap tests first (SQLite stops an AND at the first false operand)."""
        conditions = ["1"]
        for found in node.filters:
            if isinstance(found, Sources):
                excluded = self.bind(json.dumps(list(found.exclude)))
                conditions.append(f"{on.alias}.source_id NOT IN (SELECT value FROM json_each({excluded}))")
        conditions += [self.where(found.condition, on) for found in node.filters if isinstance(found, Where)]
        return "(" + " AND ".join(conditions) + ")"

    def where(self, node: Condition, on: _On) -> str:
        """SQL that is 1 for the event `on.alias` exactly when the interpreter's `holds` is true, else 0."""
        if isinstance(node, And | Or):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.where(item, on) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.where(node.operand, on)})"
        if not isinstance(node, Comparison) or node.duration is not None:
            raise _Unsupported
        if isinstance(node.subject, Aggregate):
            return self.nested_count(node, on)
        if not isinstance(node.subject, PropertyRef | ContextRef):
            raise _Unsupported
        subject = self.field(node.subject, on)
        if node.operator is Operator.ABSENT:
            return f"({subject.type} IS NULL OR {subject.type} = 'null')"
        if node.operator is Operator.EXISTS:
            return f"({subject.type} IS NOT NULL AND {subject.type} != 'null')"
        tests = []
        for operand in node.operands:
            if isinstance(operand, Literal) and _bindable(operand.value):
                tests.append(self.test(node.operator, subject, operand.value))
            elif isinstance(operand, PropertyRef | ContextRef):
                tests.append(self.fields_test(node.operator, subject, self.field(operand, on)))
            else:
                raise _Unsupported
        # `compare` needs any operand to pass, or all of them for omits/none_of.
        joiner = " AND " if node.operator in (Operator.OMITS, Operator.NONE_OF) else " OR "
        return "(" + joiner.join(tests) + ")"

    def fields_test(self, operator: Operator, subject: _Field, other: _Field) -> str:
        """SQL for a comparison between two event fields: the interpreter's `compare` through
        `ql_compare_fields`, but for an equality or difference between two texts neither of which
        may be numeric (starting like a number) nor holds NUL, which `values.equal` compares by
        code point as SQL's `=` does (a funnel's `property('currency') = property(parent:
        'currency')`, tested for each pair of events, with no Python call)."""
        interpreted = f"ql_compare_fields({self.bind(operator.value)}, {subject.raw}, {other.raw})"
        sign = _EQUALITY.get(operator)
        if sign is None:
            return interpreted
        plain = " AND ".join(
            f"{field.type} = 'text' AND unicode({field.value}) NOT IN {_NUMBER_STARTS}"
            f" AND instr({field.value}, char(0)) = 0"
            for field in (subject, other)
        )
        return f"(CASE WHEN {plain} THEN {subject.value} {sign} {other.value} ELSE {interpreted} END)"

    def nested_count(self, node: Comparison, on: _On) -> str:
        """`event(…)….count() <op> numbers` inside a `where`: a correlated count of the profile's
        events, with parent windows relative to the event tested (`on.alias`), the others to now.

        A count is an integer, so against a number (or numeric text) `compare` is SQL's numeric
        comparison; other operands or reducers are left to the interpreter.
        """
        assert isinstance(node.subject, Aggregate)
        sign = _EQUALITY.get(node.operator) or _ORDER.get(node.operator)
        numbers = [as_number(o.value) if isinstance(o, Literal) and _bindable(o.value) else None for o in node.operands]
        if node.subject.function is not AggregateFunction.COUNT or sign is None or None in numbers:
            raise _Unsupported
        stream = node.subject.stream
        if any(isinstance(found, Session) for found in stream.filters):
            raise _Unsupported
        alias = f"n{len(self.nested)}"
        self.nested.append((stream.event, _window(stream.filters)))
        inner = _On(alias, on.alias)
        conditions = [
            f"{alias}.profile_id = e.profile_id",
            f"{alias}.event = {self.bind(stream.event)}",
            f"{alias}.ts <= :now",
            f"{alias}.ts >= :floor",
        ]
        for found in stream.filters:
            if isinstance(found, Within | Between):
                low, high = _distances(found)
                if found.parent:
                    conditions.append(f"{alias}.ts BETWEEN {on.alias}.ts + {self.bind(low)}"
                                      f" AND {on.alias}.ts + {self.bind(high)}")
                else:
                    conditions.append(f"{alias}.ts BETWEEN :now - {self.bind(high)} AND :now - {self.bind(low)}")
        conditions.append(self.filters(stream, inner))
        count = f"(SELECT count(*) FROM events AS {alias} WHERE {' AND '.join(conditions)})"
        joiner = " AND " if node.operator is Operator.NONE_OF else " OR "
        return "(" + joiner.join(f"{count} {sign} {self.bind(number)}" for number in numbers) + ")"

    def test(self, operator: Operator, subject: _Field, literal: LiteralValue) -> str:
        """One comparator against one literal, by the kind of the event's value.

        Numbers compare natively (SQLite compares integers with reals exactly); text compares
        by code point (BINARY collation on UTF-8); booleans only with booleans. The cases where
        SQL cannot say what `values.equal`/`order` would (text against a number, or text that
        may be numeric against other text, except for equality: is the text numeric?; integers
        past 64 bits; text with NUL; dates) call `ql_compare`. An absent value makes every
        comparator but `absent` false, a list or object every one.
        """
        exact = f"ql_compare({self.bind(operator.value)}, {subject.raw}, {self.bind(json.dumps([literal]))})"
        number = as_number(literal)
        value = subject.value
        as_number_sql = as_text_sql = as_bool_sql = "0"
        if operator in _EQUALITY or operator in _ORDER:
            sign = _EQUALITY.get(operator) or _ORDER[operator]
            if number is not None:
                as_number_sql = f"{value} {sign} {self.bind(number)}"
                as_text_sql = exact
            elif isinstance(literal, str):
                as_text_sql = f"{value} {sign} {self.bind(literal)}"
                if operator not in (Operator.EQUALS, Operator.ONE_OF):
                    # Numeric text against non-numeric text is mismatched, false for every
                    # comparator (an equality is false anyway): text that may be numeric (it starts
                    # like a number) goes to the interpreter's comparator.
                    as_text_sql = f"CASE WHEN unicode({value}) IN {_NUMBER_STARTS} THEN {exact} ELSE {as_text_sql} END"
            elif operator in _EQUALITY:  # a boolean literal
                as_bool_sql = f"({subject.type} = 'true') {sign} {self.bind(int(literal))}"
        elif operator in _DATES:
            as_text_sql = exact
        elif isinstance(literal, str):
            as_text_sql = _text_test(operator, value, self.bind(literal))
        kind = subject.type
        return (
            f"CASE WHEN {kind} IS NULL OR {kind} = 'null' THEN 0"
            f" WHEN ({kind} = 'integer' AND typeof({value}) = 'integer')"
            f" OR ({kind} = 'real' AND abs({value}) <= 1.7976931348623157e308) THEN {as_number_sql}"
            f" WHEN {kind} = 'text' AND instr({value}, char(0)) = 0 THEN {as_text_sql}"
            f" WHEN {kind} IN ('true', 'false') THEN {as_bool_sql}"
            f" ELSE {exact} END"
        )

    def field(self, ref: Scalar, on: _On) -> _Field:
        """The SQL of `property('path')`, `property(parent: 'path')` or `context('path')`.

        Like `values.resolve`, a key spelt with the dots wins over the walk into nested objects.
        """
        if isinstance(ref, PropertyRef):
            alias = on.parent if ref.parent else on.alias
            if alias is None:
                raise _Unsupported
            column = f"{alias}.body"
        elif isinstance(ref, ContextRef):
            column = f"{on.alias}.context"
        else:
            raise _Unsupported
        parts, whole_first = path_parts(ref.path)
        if not all(_PLAIN_PATH.fullmatch(part) for part in parts):
            raise _Unsupported
        path = walk = self.bind("$." + ".".join(f'"{part}"' for part in parts))
        if whole_first:
            whole = self.bind(f'$."{ref.path}"')
            path = f"(CASE WHEN json_type({column}, {whole}) IS NULL THEN {walk} ELSE {whole} END)"
        return _Field(f"json_type({column}, {path})", f"json_extract({column}, {path})", f"({column} -> {path})")

    # -- the query

    def plan(self, root: Condition | Scalar, floor_ms: int | None, lookback_ms: int | None) -> Plan:
        query = self.query() if self.streams else None
        return Plan(
            result=_result(root, self.slots),
            sql=None if query is None else self.sql(query),
            query=query,
            params=self.params,
            windows=tuple(self.windows),
            nested=tuple(window for _, window in self.nested),
            outputs=tuple(self.outputs),
            edges=tuple(self.edges()),
            floor_ms=floor_ms,
            lookback_ms=lookback_ms,
        )

    def edges(self) -> list[int]:
        """Per next-change column (see `sql`), the distance from the timestamp it finds."""
        found = []
        for window in [*self.windows, *(window for _, window in self.nested)]:
            if window.empty:
                continue
            if window.high is not None:
                found.append(window.high + 1)
            found.append(window.low)
        return found

    def query(self) -> _Query:
        """The query's pieces (`_scan_sql` frames them): per profile with events read, each
        reducer's value, then the next-change columns. The inner query reads each event once and
        computes its `m<k>` flags (one per stream) and the reducers' field texts.

        A nested stream's result for an event moves when one of the nested stream's events
        enters or leaves its now-relative window (parent windows do not move), so its `n<j>` flag
        (the event name only, as the interpreter's `next_change_time` does) gives those instants
        too; an outer event whose flag moves with them is re-evaluated then.
        """
        names = sorted({stream.event for stream in self.streams} | {name for name, _ in self.nested})
        inner = [
            *(f"({match}) AS m{k}" for k, match in enumerate(self.matches)),
            *(f"(e.event = {self.bind(name)}) AS n{j}" for j, (name, _) in enumerate(self.nested)),
            *(f"{raw} AS f{j}" for j, raw in enumerate(self.raws)),
        ]
        outer = []
        for j, out in enumerate(self.outputs):
            inside = f"m{out.stream} AND ts BETWEEN :a{out.stream} AND :b{out.stream}"
            aggregate = out.aggregate
            if aggregate.function is AggregateFunction.COUNT:
                outer.append(f"count(*) FILTER (WHERE {inside})")
            else:
                # `|| ''` keeps the field's JSON as text: the array holds it as a string, as read.
                outer.append(f"json_group_array(json_array(ts, seq, f{j} || '')) FILTER (WHERE {inside})")
        flags = [(f"m{k}", f"a{k}", f"b{k}", window) for k, window in enumerate(self.windows)]
        flags += [(f"n{j}", f"na{j}", f"nb{j}", window) for j, (_, window) in enumerate(self.nested)]
        for flag, a, b, window in flags:
            if window.empty:
                continue
            if window.high is not None:  # the first event of the stream to leave it
                outer.append(f"min(ts) FILTER (WHERE {flag} AND ts BETWEEN :{a} AND :{b})")
            outer.append(f"min(ts) FILTER (WHERE {flag} AND ts > :{b})")  # the first to enter it
        return _Query(tuple(names), tuple(inner), tuple(outer))

    def sql(self, query: _Query) -> str:
        """The plan's own query: its pieces over the candidates' events of its names."""
        return _scan_sql(query.outer, query.inner, [self.bind(name) for name in query.names], ":lo")


def _window(filters: Sequence[Filter]) -> _Window:
    """The intersection of a stream's now-relative windows, and of `ts <= now`."""
    low, high = 0, None
    for found in filters:
        if isinstance(found, Within | Between) and not found.parent:
            near, far = _distances(found)
            low = max(low, near)
            high = far if high is None else min(high, far)
    return _Window(low, high)


def _distances(window: Within | Between) -> tuple[int, int]:
    """A window's near and far edge as distances from its anchor (now, or the parent event)."""
    if isinstance(window, Within):
        return 0, window.duration.ms
    return window.start.ms, window.end.ms


def _text_test(operator: Operator, value: str, literal: str) -> str:
    """`contains`, `omits`, `starts_with`, `ends_with` on a text value (lengths in characters)."""
    if operator is Operator.CONTAINS:
        return f"instr({value}, {literal}) > 0"
    if operator is Operator.OMITS:
        return f"instr({value}, {literal}) = 0"
    if operator is Operator.STARTS_WITH:
        return f"substr({value}, 1, length({literal})) = {literal}"
    assert operator is Operator.ENDS_WITH
    tail = f"substr({value}, length({value}) - length({literal}) + 1)"
    return f"(length({value}) >= length({literal}) AND {tail} = {literal})"


def _bindable(value: LiteralValue) -> bool:
    """Whether SQLite holds the literal (and its numeric reading) exactly."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate, from a \\u escape
            return False
    number = as_number(value)
    if isinstance(number, int):
        return _INT64_MIN <= number <= _INT64_MAX
    return number is None or math.isfinite(number)


# ------------------------------------------------------------------ SQL functions


def _compare(*args: apsw.SQLiteValue) -> int:
    """`ql_compare(operator, value JSON, [literal] JSON)`: the interpreter's comparator, for the
    values the compiled SQL does not decide itself."""
    operator, raw, operands = args
    subject = None if raw is None else json.loads(str(raw))
    return int(compare(Operator(str(operator)), subject, json.loads(str(operands)), None, 0))


def _compare_fields(*args: apsw.SQLiteValue) -> int:
    """`ql_compare_fields(operator, value JSON, operand JSON)`: the interpreter's comparator
    between two event fields (either may be missing: SQL NULL)."""
    operator, raw, other = args
    subject = None if raw is None else json.loads(str(raw))
    operand = None if other is None else json.loads(str(other))
    return int(compare(Operator(str(operator)), subject, [operand], None, 0))


_REGISTERED: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()


def _register(conn: apsw.Connection) -> None:
    """Adds the plans' SQL functions to a connection, once."""
    if conn in _REGISTERED:
        return
    conn.create_scalar_function("ql_compare", _compare, 3, deterministic=True)
    conn.create_scalar_function("ql_compare_fields", _compare_fields, 3, deterministic=True)
    _REGISTERED.add(conn)
