"""Argument types the CLI's commands share: numbers that cannot stand for what they name (NaN,
an infinity, zero or a negative where only a positive makes sense, more than a protobuf or gRPC
can hold) are usage errors (exit 2), said before anything is sent."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

# The largest value of a protobuf int32 field (page sizes, sample sizes, versions, …).
INT32_MAX = 2**31 - 1


def positive(
    unit: str, most: float, most_text: str, *, zero: bool = False, least: float | None = None, least_text: str = ""
) -> Callable[[str], float]:
    """A type for a positive (or, with `zero`, not negative; with `least`, at least that),
    finite number of `unit` up to `most` (described as `most_text`)."""
    floor = f"at least {least_text or f'{least:g}'}" if least is not None else "at least 0" if zero else "above 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        low_enough = value >= least if least is not None else value >= 0 if zero else value > 0
        if not (math.isfinite(value) and low_enough and value <= most):
            raise argparse.ArgumentTypeError(f"must be a number of {unit} {floor} and at most {most_text}, not {text}")
        return value

    return parse


def whole(noun: str, least: int = 0, most: int | None = INT32_MAX) -> Callable[[str], int]:
    """A type for a whole number of `noun` from `least` to `most` (None: no upper limit; the
    default is what a protobuf int32 field holds), so that a negative count or one a protobuf
    cannot hold is refused naming its option, not by the protobuf library naming nothing."""
    bounds = f"from {least:,} to {most:,}" if most is not None else f"of {least:,} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of {noun}: {text!r}") from None
        if value < least or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"must be a whole number of {noun} {bounds}, not {text}")
        return value

    return parse


def moment(text: str) -> dt.datetime:
    """A type for an ISO-8601 time (`2027-01-15T08:00:00Z`; without a zone it is UTC)."""
    try:
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (like 2027-01-15T08:00:00Z or 2027-01-15)") from None


def count(noun: str, most: int, why: str) -> Callable[[str], int]:
    """A type for a whole number of `noun` from 1 to `most` (`why` says where the limit comes from)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of {noun}: {text!r}") from None
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be 1 to {most:,} {noun} ({why}), not {text}")
        return value

    return parse


def unreadable_json(error: ValueError) -> str:
    """Why a JSON text could not be read, said for people: Python refuses an integer of more than
    4,300 digits (with advice about its own settings), which the server refuses too."""
    if "integer string conversion" in str(error):
        return "not JSON that can be read: it holds an integer of more than 4,300 digits (send it as a string)"
    return f"not JSON: {error}"


def json_object(expected: str) -> Callable[[str], dict[str, Any]]:
    """A type for a JSON object (`expected` says what one, with an example, when it is not)."""

    def parse(text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except ValueError as bad:
            raise argparse.ArgumentTypeError(unreadable_json(bad)) from None
        except RecursionError:
            # Valid JSON, but Python's decoder recurses once a level and stops at its recursion limit.
            raise argparse.ArgumentTypeError(
                "not JSON that can be read: nested too deeply (objects and arrays about a thousand levels "
                "inside one another)") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected {expected}")
        return value

    return parse
