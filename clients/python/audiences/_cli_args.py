"""Argument types the CLI's commands share: numbers that cannot stand for what they name (NaN,
an infinity, zero or a negative where only a positive makes sense, more than a protobuf or gRPC
can hold) are usage errors (exit 2), said before anything is sent."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive(unit: str, most: float, most_text: str, *, zero: bool = False) -> Callable[[str], float]:
    """A type for a positive (or, with `zero`, not negative), finite number of `unit` up to `most`
    (described as `most_text`)."""
    least = "at least 0" if zero else "above 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not (math.isfinite(value) and (value >= 0 if zero else value > 0) and value <= most):
            raise argparse.ArgumentTypeError(f"must be a number of {unit} {least} and at most {most_text}, not {text}")
        return value

    return parse


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
