"""What each reducer returns for the values of its field over a stream, oldest first."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from audiences_server.core.ql.nodes import AggregateFunction, ValueType
from audiences_server.core.ql.values import Number, as_number, number_text, whole_as_int

F = AggregateFunction


def reduce_values(
    function: AggregateFunction,
    values: Sequence[Any],
    value_type: ValueType | None,
    min_frequency: int,
) -> Any:
    """Reduce the field values of a stream's events (``None`` where a value is absent).

    Args:
        function: The reducer (not ``COUNT``, which counts events, not values).
        values: One value per event, in order of timestamp then arrival.
        value_type: The ``as`` type for ``MIN``/``MAX``/``MODE``.
        min_frequency: ``MODE``'s minimum number of occurrences.

    Returns:
        The reduced value; ``None`` (absent) where there is nothing to reduce, except that
        ``UNIQUE`` gives ``[]`` and ``UNIQUE_COUNT`` gives ``0``.
    """
    if function in (F.SUM, F.AVG):
        return _sum_or_avg(function, _numbers(values))
    if function in (F.MIN, F.MAX):
        return _extreme(function, values, value_type)
    if function is F.MODE:
        return _mode(values, value_type or "string", min_frequency)
    if function in (F.FIRST, F.LAST):
        present = [v for v in values if v is not None]
        return (present[0] if function is F.FIRST else present[-1]) if present else None
    found = unique(values)
    return len(found) if function is F.UNIQUE_COUNT else found


def _numbers(values: Sequence[Any]) -> list[Number]:
    found: list[Number] = []
    for value in values:
        kind = type(value)
        # The usual cases, as `as_number` reads them, without its tests.
        if kind is int or (kind is float and math.isfinite(value)):
            found.append(value)
        elif kind is not float and (number := as_number(value)) is not None:
            found.append(number)
    return found


def _sum_or_avg(function: AggregateFunction, numbers: list[Number]) -> Number | None:
    if not numbers:
        return None
    try:
        # Integers sum exactly; floats through fsum, so the result does not depend on their order.
        total: Number = math.fsum(numbers) if float in set(map(type, numbers)) else sum(numbers)
        return total if function is F.SUM else total / len(numbers)
    except OverflowError:
        return _beyond_doubles(function, numbers)


def _beyond_doubles(function: AggregateFunction, numbers: list[Number]) -> Number | None:
    """A sum or average that left the range of a double on the way (fsum's partial sums, an
    integer too large to read as a float among floats, an integer average): worked out exactly,
    as a fraction, then rounded once (integers alone always sum exactly, with no rounding); a
    result no double holds (beyond ±1.8e308) has no value, as JSON has no number for it."""
    exact = sum(map(Fraction, numbers), Fraction(0))
    try:
        return float(exact if function is F.SUM else exact / len(numbers))
    except OverflowError:
        return None


def _extreme(function: AggregateFunction, values: Sequence[Any], value_type: ValueType | None
             ) -> Any:
    strings = value_type == "string"
    candidates: list[Any] = [v for v in values if isinstance(v, str)] if strings else _numbers(values)
    if not candidates:
        return None
    return min(candidates) if function is F.MIN else max(candidates)


def _mode(values: Sequence[Any], value_type: ValueType, min_frequency: int) -> Any:
    keyed: list[tuple[Any, Any]] = []  # (grouping key, value returned for the group)
    for value in values:
        if value_type == "array":
            if isinstance(value, list):
                keyed.append((_json(value), value))
            continue
        # Without 'as array', each element of an array value counts on its own.
        for item in value if isinstance(value, list) else [value]:
            key = _mode_key(item, value_type)
            if key is not None:
                keyed.append((key, key))
    counts = Counter(key for key, _ in keyed)
    eligible = [key for key, count in counts.items() if count >= min_frequency]
    if not eligible:
        return None
    # Most frequent first; among equals the alphabetically (numerically) first.
    best = min(eligible, key=lambda key: (-counts[key], key))
    return next(result for key, result in keyed if key == best)


def _mode_key(item: Any, value_type: ValueType) -> Any:
    if value_type == "number":
        number = as_number(item)
        return None if number is None else whole_as_int(number)
    if isinstance(item, str):
        return item
    number = as_number(item)
    return None if number is None else number_text(number)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def unique(values: Sequence[Any]) -> list[Any]:
    """The distinct strings, numbers and booleans among ``values``, sorted: numbers by value,
    then strings by code point, then ``false``, ``true``. ``5.0`` is listed as ``5``."""
    seen: dict[tuple[int, Any], Any] = {}
    for value in values:
        if isinstance(value, bool):
            seen[(2, value)] = value
        elif isinstance(value, str):
            seen[(1, value)] = value
        elif isinstance(value, int | float) and as_number(value) is not None:
            number = whole_as_int(value)
            seen[(0, number)] = number
    return [seen[key] for key in sorted(seen)]
