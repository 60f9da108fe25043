"""The SQL fast path: common user definitions evaluated by one SQLite query per chunk of profiles.

The reference interpreter (`core.ql`) loads each profile's events into Python and walks the tree
per profile. Most definitions are simple: comparisons between literals, traits and reducers over
a few event streams, each an event name with windows relative to now, `sources(exclude: …)` and
`where` filters comparing event fields with literals. `compile_definition` turns such a user
definition into a `Plan`; anything else gets `None` and stays with the interpreter.

How the work is split, and why the results are the interpreter's exactly:

* SQLite scans the candidates' events once (index `events_by_profile`), decides per event which
  streams it belongs to, and aggregates per profile. `where` comparisons are SQL that follows the
  language's typing rules (`values.equal` / `values.order`) for the usual kinds of value; the
  values SQL cannot type exactly (text compared with a number, integers beyond 64 bits, text
  holding NUL, lists and objects) go through `ql_compare`, which calls the interpreter's own
  `compare`. `count()` is SQLite's; the other reducers go through `ql_reduce`, which hands the
  field's JSON values, oldest first, to the interpreter's `reduce_values` (so `fsum`, integer
  exactness and tie-breaking are the interpreter's own).
* Python then evaluates the few comparisons at the top of the definition with `compare`, reading
  traits as the interpreter does (the evaluator passes them in: custom traits overlaid with the
  values of other definitions).
* The next change time is, over every stream, the earliest of an event in the stream leaving its
  window (timestamp + far edge + 1) and an event that passes the stream's other filters entering
  it (timestamp + near edge; a future-stamped event enters at the earliest when its time comes).
  Nothing the result depends on moves between two such instants, and each is after now.
"""

from __future__ import annotations

import json
import math
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import apsw

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
    Scalar,
    Sources,
    Stream,
    TraitRef,
    Where,
    Within,
)
from audiences_server.core.ql.reducers import reduce_values
from audiences_server.core.ql.values import as_number, resolve

if TYPE_CHECKING:
    from audiences_server.engine.registry import Compiled

Row = tuple[int, Any, int | None]
"""A profile id, its value and its next change time."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Path labels are always quoted in the SQLite JSON paths built here; a quote, a backslash or a
# control character would need escapes, so paths holding one are left to the interpreter.
_PLAIN_PATH = re.compile(r'[^"\\\x00-\x1f]+')

_EQUALITY = {Operator.EQUALS: "=", Operator.ONE_OF: "=", Operator.DIFFERS: "!=", Operator.NONE_OF: "!="}
_ORDER = {Operator.GREATER_THAN: ">", Operator.AT_LEAST: ">=", Operator.LESS_THAN: "<", Operator.AT_MOST: "<="}
_DATES = frozenset({Operator.BEFORE_DATE, Operator.AFTER_DATE})


class _Unsupported(Exception):
    """The definition has a shape the fast path does not compile."""


def compile_definition(comp: Compiled) -> Plan | None:
    """The fast-path plan of a computation, or None when the interpreter must evaluate it.

    Compiled: user audiences and computed traits made of AND/OR/NOT, comparisons (not the
    relative date ones) between literals, traits and reducers (any reducer, over a property or
    context field) of streams whose filters are now-relative windows, source exclusions and
    `where` conditions comparing event fields with literals. Not compiled: account definitions,
    funnels (streams inside a `where`, parent windows and properties), `where` conditions reading
    traits or comparing two fields, relative date comparators, paths needing escapes.
    """
    if comp.collection != "users":
        return None
    root = comp.checked.definition.root
    builder = _Builder()
    try:
        builder.top(root)
    except _Unsupported:
        return None
    return builder.plan(root, comp.event_floor_ms)


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


@dataclass(frozen=True)
class _Output:
    """One reducer's column: which stream it reads and its value over no events."""

    aggregate: Aggregate
    stream: int
    empty: Any

    def decode(self, raw: Any) -> Any:
        """The value from its column: a count, or the JSON text `ql_reduce` made (NULL: no event)."""
        if self.aggregate.function is AggregateFunction.COUNT:
            return raw
        return self.empty if raw is None else json.loads(raw)


@dataclass(frozen=True)
class Plan:
    """A compiled definition: the SQL that aggregates the streams, and the top of the tree.

    The SQL is fixed; what depends on the clock and the candidates (`:ids`, `:lo`, and per
    stream `:a<k>`/`:b<k>`, the window as timestamps) is bound at each run.
    """

    result: _Result
    sql: str | None
    params: Mapping[str, Any]
    windows: tuple[_Window, ...]
    outputs: tuple[_Output, ...]
    # Per next-change column: what to add to the smallest timestamp it finds.
    edges: tuple[int, ...]
    floor_ms: int | None

    def run(
        self,
        conn: apsw.Connection,
        profile_ids: Sequence[int],
        now_ms: int,
        traits: Mapping[int, Mapping[str, Any]],
    ) -> list[Row]:
        """Each profile's value and next change time at `now_ms`, in the order given.

        Args:
            conn: A connection to the database (the fast path's SQL functions are added to it).
            profile_ids: Distinct live user profiles.
            now_ms: The evaluation time.
            traits: Per profile, the traits the definition reads, as the interpreter sees them.
        """
        scanned = self._scan(conn, profile_ids, now_ms) if self.sql is not None else {}
        nothing = (tuple(out.empty for out in self.outputs), None)
        rows = []
        for pid in profile_ids:
            values, due = scanned.get(pid, nothing)
            rows.append((pid, self.result(values, traits.get(pid, {}), now_ms), due))
        return rows

    def _scan(
        self, conn: apsw.Connection, profile_ids: Sequence[int], now_ms: int
    ) -> dict[int, tuple[tuple[Any, ...], int | None]]:
        """One query: per profile with events of interest, the reducers' values and the next change."""
        assert self.sql is not None
        _register(conn)
        params = dict(self.params, ids=json.dumps(list(profile_ids)), lo=self._lowest(now_ms))
        for k, window in enumerate(self.windows):
            params[f"a{k}"] = _INT64_MIN if window.high is None else now_ms - window.high
            params[f"b{k}"] = now_ms - window.low
        width = len(self.outputs)
        found = {}
        for row in conn.execute(self.sql, params):
            values = tuple(out.decode(raw) for out, raw in zip(self.outputs, row[1 : 1 + width], strict=True))
            edges = [ts + add for ts, add in zip(row[1 + width :], self.edges, strict=True) if ts is not None]
            found[int(row[0])] = (values, min(edges) if edges else None)
        return found

    def _lowest(self, now_ms: int) -> int:
        """The oldest timestamp any stream can read now or later (window and event floor)."""
        bounds = [_INT64_MIN if self.floor_ms is None else self.floor_ms]
        highs = [w.high for w in self.windows]
        if None not in highs:
            bounds.append(now_ms - max(h for h in highs if h is not None))
        return max(bounds)


# The top of a definition, compiled to closures once (walking the tree per profile would cost
# more than the query): given the reducers' values, the traits and now, the result.
_Values = Sequence[Any]
_Read = Callable[[_Values, Mapping[str, Any]], Any]
_Result = Callable[[_Values, Mapping[str, Any], int], Any]


def _result(root: Condition | Scalar, slots: Mapping[Aggregate, int]) -> _Result:
    if isinstance(root, Literal | TraitRef | PropertyRef | ContextRef | Aggregate):
        read = _reader(root, slots)
        return lambda values, traits, now_ms: read(values, traits)
    return _tester(root, slots)


def _tester(node: Condition, slots: Mapping[Aggregate, int]) -> _Result:
    """As the interpreter's `holds`, with the same comparators."""
    if isinstance(node, And | Or):
        items = [_tester(item, slots) for item in node.items]
        combine = all if isinstance(node, And) else any
        return lambda values, traits, now_ms: combine(item(values, traits, now_ms) for item in items)
    if isinstance(node, Not):
        operand = _tester(node.operand, slots)
        return lambda values, traits, now_ms: not operand(values, traits, now_ms)
    assert isinstance(node, Comparison)
    subject = _reader(node.subject, slots)
    operands = [_reader(operand, slots) for operand in node.operands]
    operator, duration = node.operator, node.duration
    return lambda values, traits, now_ms: compare(
        operator, subject(values, traits), [read(values, traits) for read in operands], duration, now_ms
    )


def _reader(node: Scalar, slots: Mapping[Aggregate, int]) -> _Read:
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
        self.slots: dict[Aggregate, int] = {}

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
            self.raws.append(self.field(node.field).raw)
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
        conditions = [f"e.event = {self.bind(node.event)}"]
        for found in node.filters:
            if isinstance(found, Where):
                conditions.append(self.where(found.condition))
            elif isinstance(found, Sources):
                excluded = self.bind(json.dumps(list(found.exclude)))
                conditions.append(f"e.source_id NOT IN (SELECT value FROM json_each({excluded}))")
            elif found.parent:
                raise _Unsupported
        self.streams[node] = len(self.matches)
        self.matches.append(" AND ".join(conditions))
        self.windows.append(_window(node.filters))
        return self.streams[node]

    def where(self, node: Condition) -> str:
        """SQL that is 1 for an event exactly when the interpreter's `holds` is true, else 0."""
        if isinstance(node, And | Or):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.where(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.where(node.operand)})"
        if not isinstance(node, Comparison) or node.duration is not None:
            raise _Unsupported
        if not isinstance(node.subject, PropertyRef | ContextRef):
            raise _Unsupported
        literals = [operand.value for operand in node.operands if isinstance(operand, Literal)]
        if len(literals) != len(node.operands) or not all(map(_bindable, literals)):
            raise _Unsupported
        subject = self.field(node.subject)
        if node.operator is Operator.ABSENT:
            return f"({subject.type} IS NULL OR {subject.type} = 'null')"
        if node.operator is Operator.EXISTS:
            return f"({subject.type} IS NOT NULL AND {subject.type} != 'null')"
        # `compare` needs any operand to pass, or all of them for omits/none_of.
        joiner = " AND " if node.operator in (Operator.OMITS, Operator.NONE_OF) else " OR "
        return "(" + joiner.join(self.test(node.operator, subject, literal) for literal in literals) + ")"

    def test(self, operator: Operator, subject: _Field, literal: LiteralValue) -> str:
        """One comparator against one literal, by the kind of the event's value.

        Numbers compare natively (SQLite compares integers with reals exactly); text compares
        by code point (BINARY collation on UTF-8); booleans only with booleans. The cases where
        SQL cannot say what `values.equal`/`order` would (text against a number: is the text
        numeric?; integers past 64 bits; text with NUL; dates) call `ql_compare`. An absent
        value makes every comparator but `absent` false, a list or object every one.
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

    def field(self, ref: Scalar) -> _Field:
        """The SQL of `property('path')` or `context('path')` on the event `e`.

        Like `values.resolve`, a key spelt with the dots wins over the walk into nested objects.
        """
        if not isinstance(ref, PropertyRef | ContextRef) or (isinstance(ref, PropertyRef) and ref.parent):
            raise _Unsupported
        column = "e.body" if isinstance(ref, PropertyRef) else "e.context"
        parts = ref.path.split(".")
        if not _PLAIN_PATH.fullmatch(ref.path) or "" in parts:
            raise _Unsupported
        whole = self.bind(f'$."{ref.path}"')
        path = whole
        if len(parts) > 1:
            walk = self.bind("$." + ".".join(f'"{part}"' for part in parts))
            path = f"(CASE WHEN json_type({column}, {whole}) IS NULL THEN {walk} ELSE {whole} END)"
        return _Field(f"json_type({column}, {path})", f"json_extract({column}, {path})", f"({column} -> {path})")

    # -- the query

    def plan(self, root: Condition | Scalar, floor_ms: int | None) -> Plan:
        return Plan(
            result=_result(root, self.slots),
            sql=self.sql() if self.streams else None,
            params=self.params,
            windows=tuple(self.windows),
            outputs=tuple(self.outputs),
            edges=tuple(self.edges()),
            floor_ms=floor_ms,
        )

    def edges(self) -> list[int]:
        """Per next-change column (see `sql`), the distance from the timestamp it finds."""
        found = []
        for window in self.windows:
            if window.empty:
                continue
            if window.high is not None:
                found.append(window.high + 1)
            found.append(window.low)
        return found

    def sql(self) -> str:
        """Per profile with events read: each reducer's value, then the next-change columns.

        The inner query reads each event once and computes its `m<k>` flags (one per stream)
        and the reducers' field texts; `LIMIT -1` keeps SQLite from flattening it into the
        outer query, which would evaluate the `where` SQL again for every aggregate using it.
        """
        names = sorted({stream.event for stream in self.streams})
        inner = [
            "e.profile_id AS pid",
            "e.ts AS ts",
            "e.seq AS seq",
            *(f"({match}) AS m{k}" for k, match in enumerate(self.matches)),
            *(f"{raw} AS f{j}" for j, raw in enumerate(self.raws)),
        ]
        outer = ["pid"]
        for j, out in enumerate(self.outputs):
            inside = f"m{out.stream} AND ts BETWEEN :a{out.stream} AND :b{out.stream}"
            aggregate = out.aggregate
            if aggregate.function is AggregateFunction.COUNT:
                outer.append(f"count(*) FILTER (WHERE {inside})")
            else:
                spec = ", ".join(
                    self.bind(v) for v in (aggregate.function.value, aggregate.value_type, aggregate.min_frequency)
                )
                outer.append(f"ql_reduce({spec}, ts, seq, f{j}) FILTER (WHERE {inside})")
        for k, window in enumerate(self.windows):
            if window.empty:
                continue
            if window.high is not None:  # the first event of the stream to leave it
                outer.append(f"min(ts) FILTER (WHERE m{k} AND ts BETWEEN :a{k} AND :b{k})")
            outer.append(f"min(ts) FILTER (WHERE m{k} AND ts > :b{k})")  # the first to enter it
        return (
            f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM events AS e"
            " WHERE e.profile_id IN (SELECT value FROM json_each(:ids))"
            f" AND e.event IN ({', '.join(self.bind(name) for name in names)}) AND e.ts >= :lo LIMIT -1)"
            " GROUP BY pid"
        )


def _window(filters: Sequence[Filter]) -> _Window:
    """The intersection of a stream's now-relative windows, and of `ts <= now`."""
    low, high = 0, None
    for found in filters:
        if isinstance(found, Within):
            high = found.duration.ms if high is None else min(high, found.duration.ms)
        elif isinstance(found, Between):
            low = max(low, found.start.ms)
            high = found.end.ms if high is None else min(high, found.end.ms)
    return _Window(low, high)


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


class _Reduce:
    """`ql_reduce(function, value_type, min_frequency, ts, seq, value JSON)`: the interpreter's
    reducer over the values, in timestamp then arrival order; its result as JSON text."""

    def __init__(self) -> None:
        self.spec: tuple[Any, ...] = ()
        self.rows: list[tuple[Any, ...]] = []

    def step(self, *values: apsw.SQLiteValue) -> None:
        self.spec = values[:3]
        self.rows.append(values[3:])

    def final(self) -> apsw.SQLiteValue:
        if not self.rows:
            return None
        function, value_type, min_frequency = self.spec
        self.rows.sort(key=lambda row: (row[0], row[1]))
        found = [None if raw is None else json.loads(raw) for _, _, raw in self.rows]
        return json.dumps(reduce_values(AggregateFunction(function), found, value_type, min_frequency))


_REGISTERED: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()


def _register(conn: apsw.Connection) -> None:
    """Adds the fast path's SQL functions to a connection, once."""
    if conn in _REGISTERED:
        return
    conn.create_scalar_function("ql_compare", _compare, 3, deterministic=True)
    conn.create_aggregate_function("ql_reduce", _Reduce, 6)
    _REGISTERED.add(conn)
