"""What each comparator means, as a function of plain values (``None`` is absent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from audiences_server.core.ql.nodes import Duration, Operator
from audiences_server.core.ql.values import as_date_ms, equal, order


def compare(
    operator: Operator,
    subject: object,
    operands: Sequence[object],
    duration: Duration | None,
    now_ms: int,
) -> bool:
    """Apply a comparator.

    An absent subject makes every comparator false except ``absent``; values that cannot be
    compared (mismatched kinds, absent operands) make the comparison false. Multi-valued
    comparators hold for any operand (``contains``, ``one_of``) or for every operand
    (``omits``, ``none_of``).

    Args:
        operator: The comparator.
        subject: The value tested.
        operands: The evaluated operand values.
        duration: For the relative date comparators.
        now_ms: The evaluation time, for the relative date comparators.

    Returns:
        Whether the comparison holds.
    """
    if operator is Operator.ABSENT:
        return subject is None
    if subject is None:
        return False
    if operator is Operator.EXISTS:
        return True
    if duration is not None:
        return _relative_date(operator, subject, duration.ms, now_ms)
    test = _BINARY[operator]
    if operator in (Operator.OMITS, Operator.NONE_OF):
        return all(test(subject, operand) for operand in operands)
    return any(test(subject, operand) for operand in operands)


def _relative_date(operator: Operator, subject: object, length_ms: int, now_ms: int) -> bool:
    date = as_date_ms(subject)
    if date is None:
        return False
    # Every edge is inclusive, to the millisecond.
    if operator is Operator.WITHIN_LAST:
        return now_ms - length_ms <= date <= now_ms
    if operator is Operator.WITHIN_NEXT:
        return now_ms <= date <= now_ms + length_ms
    if operator is Operator.BEFORE_LAST:
        return date <= now_ms - length_ms
    return date >= now_ms + length_ms


def _ordered(accept: Callable[[int], bool]) -> Callable[[object, object], bool]:
    def test(subject: object, operand: object) -> bool:
        sign = order(subject, operand)
        return sign is not None and accept(sign)

    return test


def _texts(accept: Callable[[str, str], bool]) -> Callable[[object, object], bool]:
    def test(subject: object, operand: object) -> bool:
        return isinstance(subject, str) and isinstance(operand, str) and accept(subject, operand)

    return test


def _dates(accept: Callable[[int, int], bool]) -> Callable[[object, object], bool]:
    def test(subject: object, operand: object) -> bool:
        left, right = as_date_ms(subject), as_date_ms(operand)
        return left is not None and right is not None and accept(left, right)

    return test


_BINARY: dict[Operator, Callable[[object, object], bool]] = {
    Operator.EQUALS: lambda s, o: equal(s, o) is True,
    Operator.DIFFERS: lambda s, o: equal(s, o) is False,
    Operator.ONE_OF: lambda s, o: equal(s, o) is True,
    Operator.NONE_OF: lambda s, o: equal(s, o) is False,
    Operator.GREATER_THAN: _ordered(lambda sign: sign > 0),
    Operator.AT_LEAST: _ordered(lambda sign: sign >= 0),
    Operator.LESS_THAN: _ordered(lambda sign: sign < 0),
    Operator.AT_MOST: _ordered(lambda sign: sign <= 0),
    Operator.CONTAINS: _texts(lambda s, o: o in s),
    Operator.OMITS: _texts(lambda s, o: o not in s),
    Operator.STARTS_WITH: _texts(str.startswith),
    Operator.ENDS_WITH: _texts(str.endswith),
    Operator.BEFORE_DATE: _dates(lambda s, o: s < o),
    Operator.AFTER_DATE: _dates(lambda s, o: s > o),
}
