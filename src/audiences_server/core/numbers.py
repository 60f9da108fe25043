"""Numbers read from a client's text."""

from __future__ import annotations

# The largest integer SQLite stores: ids (a dead letter's delivery id, say) are at most this.
MAX_ID = 2**63 - 1


def whole_number(text: str, high: int) -> int | None:
    """`text` as a whole number from 0 to `high` (ASCII digits only), or None when it is not one.

    The digits are counted before they are converted: Python refuses to convert a text of more
    than 4,300 digits (ValueError), and a client may send one. Leading zeros do not count.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)):
        return None
    number = int(digits)
    return number if number <= high else None


def dead_letter_number(text: str) -> int | None:
    """The delivery id of a dead letter id (`dlq_` and a number up to `MAX_ID`), or None."""
    return whole_number(text.removeprefix("dlq_"), MAX_ID) if text.startswith("dlq_") else None
