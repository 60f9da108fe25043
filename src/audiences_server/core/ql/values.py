"""What the language's values are and how they compare: numbers, numeric strings, dates,
paths into nested objects. Pure functions; ``None`` always means *absent*."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

Number = int | float

_NUMERIC_STRING = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER_STRING = re.compile(r"[+-]?[0-9]+")
_MAX_INTEGER_TEXT = 4_300
_DATE = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?"
    r"(?P<z>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)


@functools.lru_cache(maxsize=4096)
def path_parts(path: str) -> tuple[tuple[str, ...], bool]:
    """The keys a path walks, and whether a key spelt with all its dots is read first.

    ``'address.city'`` walks ``address`` then ``city``, after a key literally named
    ``address.city``. A dot after a backslash is part of its key, as in the reference
    (``'utm\\.source'`` is written ``'utm\\\\.source'`` in a definition's quotes): a path with
    one reads exactly the keys it spells, ``'a\\.b.c'`` the key ``a.b`` then ``c``, and no
    literal whole key first (whoever escapes a dot has said which dots walk). Any other
    backslash is itself.
    """
    if "\\." not in path:
        return tuple(path.split(".")), "." in path
    parts = [""]
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and path[i + 1:i + 2] == ".":
            parts[-1] += "."
            i += 2
            continue
        if char == ".":
            parts.append("")
        else:
            parts[-1] += char
        i += 1
    return tuple(parts), False


def resolve(container: object, path: str) -> Any:
    """Read ``path`` from a JSON-like object; ``None`` if it is not there.

    A key that literally contains the dots wins; otherwise the dots walk into nested objects,
    so ``'address.city'`` reads ``{"address": {"city": …}}``; an escaped dot (``\\.``) is part
    of its key (`path_parts`).
    """
    if not isinstance(container, Mapping):
        return None
    if path in container and "\\." not in path:
        return container[path]
    parts, _ = path_parts(path)
    value: object = container
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def as_number(value: object) -> Number | None:
    """The value as a number if it is one: a finite int/float (not a bool) or a string that
    is a decimal number such as ``'42'``, ``'-1.5'`` or ``'2e3'``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _NUMERIC_STRING.fullmatch(value):
        # Python refuses to read an integer of more than 4,300 digits; so long a number is read
        # as a float, which overflows to infinity: not a number the language compares.
        if _INTEGER_STRING.fullmatch(value) and len(value) <= _MAX_INTEGER_TEXT:
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def as_date_ms(value: object) -> int | None:
    """The value as milliseconds since the epoch if it is an ISO-8601 date string.

    Accepted: ``YYYY-MM-DD`` (midnight UTC) and ``YYYY-MM-DDTHH:MM[:SS[.fff…]]`` followed by a
    zone (``Z``, ``±HH``, ``±HHMM`` or ``±HH:MM``). A time without a zone is not a date. Digits
    after the milliseconds are dropped.
    """
    if not isinstance(value, str):
        return None
    found = _DATE.fullmatch(value)
    if found is None or (found["h"] is not None and found["z"] is None):
        return None
    try:
        moment = datetime(
            int(found["y"]), int(found["mo"]), int(found["d"]),
            int(found["h"] or 0), int(found["mi"] or 0), int(found["s"] or 0),
            int((found["f"] or "0")[:3].ljust(3, "0")) * 1000,
            tzinfo=_zone(found["z"]),
        )
    except ValueError:  # a month 13, a 30 February, an hour 24 or a zone past ±24h
        return None
    return _epoch_ms(moment)


def _zone(text: str | None) -> timezone:
    if text is None or text in "Zz":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    if int(digits[2:4] or 0) >= 60:
        raise ValueError("zone minutes out of range")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def _epoch_ms(moment: datetime) -> int:
    # Exact integer arithmetic: timestamp() would round through a float.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def equal(left: object, right: object) -> bool | None:
    """Whether two values are equal, or ``None`` if they cannot be compared.

    Numbers and numeric strings compare as numbers; other strings compare as text; booleans
    compare with booleans. Absent values, lists, objects and mixed kinds cannot be compared; a
    number or numeric string against non-numeric text is a mixed kind, so ``'47'`` and ``47``
    behave alike against ``'abc'``.
    """
    left_number, right_number = as_number(left), as_number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    if left_number is not None or right_number is not None:
        return None
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, bool) and isinstance(right, bool):
        return left == right
    return None


def order(left: object, right: object) -> int | None:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right``; ``None`` if the two
    cannot be ordered. Numbers (and numeric strings) by value, other strings by code point; a
    number or numeric string is not ordered against non-numeric text."""
    left_number, right_number = as_number(left), as_number(right)
    if left_number is not None and right_number is not None:
        return _sign(left_number, right_number)
    if left_number is not None or right_number is not None:
        return None
    if isinstance(left, str) and isinstance(right, str):
        return _sign(left, right)
    return None


def _sign(left: Any, right: Any) -> int:
    return int(left > right) - int(left < right)


def whole_as_int(number: Number) -> Number:
    """A whole float as the integer it is exactly (`5.0` is `5`, `1e16` is `10000000000000000`)."""
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def number_text(value: Number) -> str:
    """The text of a number as ``mode`` groups it: ``5`` and ``5.0`` are both ``'5'``, and so
    ``1e16`` and ``10000000000000000`` (`whole_as_int`)."""
    return repr(whole_as_int(value))


def is_scalar(value: object) -> bool:
    """Whether the value is a present string, number or boolean (not a list or object)."""
    return isinstance(value, str | bool | int) or as_number(value) is not None
