"""The dependency summary: events, properties, traits and the look-back window."""

from __future__ import annotations

import pytest

from audiences_server.core.ql import parse, summarize

DAY = 86_400_000
HOUR = 3_600_000


def test_reads_of_a_funnel() -> None:
    """Events, per-event properties (including parent references) and traits are reported."""
    summary = summarize(parse(
        "event('Bought').where(property('price') >= trait('avg_spend') AND "
        "event('Returned').within(parent: 5 days).where(property('sku') = "
        "property(parent: 'sku')).count() >= 1).within(30 days).sum('total') > 0"
    ))
    assert summary.events == {"Bought", "Returned"}
    assert summary.properties == {"Bought": {"price", "sku", "total"}, "Returned": {"sku"}}
    assert summary.traits == {"avg_spend"}
    assert summary.user_traits == frozenset()
    assert summary.reads_events
    assert summary.lookback_ms == 30 * DAY


def test_context_paths() -> None:
    """context() reads are reported per event, apart from properties."""
    summary = summarize(parse(
        "event('Page Viewed').where(context('page.url').contains('x')).first(context('ip'))"
    ))
    assert summary.context_paths == {"Page Viewed": {"page.url", "ip"}}
    assert summary.properties == {}


def test_traits_only() -> None:
    """A definition of traits alone reads no events and looks back nowhere."""
    summary = summarize(parse("trait('vip') = true AND trait('ltv') > 100"))
    assert summary.traits == {"vip", "ltv"}
    assert not summary.reads_events
    assert summary.lookback_ms == 0
    assert not summary.time_dependent


def test_account_user_traits() -> None:
    """Traits read inside ANY/ALL are the linked users'; outside, the account's own."""
    summary = summarize(parse(
        "trait('industry') = 'x' AND ANY (trait('power_user') = true) AND "
        "ALL NOT (trait('churned') = true)"
    ))
    assert summary.traits == {"industry"}
    assert summary.user_traits == {"power_user", "churned"}


@pytest.mark.parametrize(
    ("text", "lookback"),
    [
        ("event('A').within(7 days).count() > 0", 7 * DAY),
        ("event('A').within(2 hours).count() > 0", 2 * HOUR),
        ("event('A').between(7 days, 10 days).count() > 0", 10 * DAY),
        ("event('A').within(7 days).within(3 days).count() > 0", 3 * DAY),
        ("event('A').within(7 days).between(1 day, 2 days).count() > 0", 2 * DAY),
        ("event('A').within(7 days).count() > 0 OR event('B').within(9 days).count() > 0",
         9 * DAY),
        ("event('A').count() > 0", None),
        ("event('A').within(7 days).count() > 0 OR event('B').count() > 0", None),
        ("event('A').within(7 days).where(event('B').within(parent: 1 day).count() > 0)"
         ".count() > 0", 7 * DAY),
        ("event('A').within(7 days).where(event('B').within(30 days).count() > 0)"
         ".count() > 0", 30 * DAY),
        ("event('A').within(7 days).where(event('B').count() > 0).count() > 0", None),
        ("event('A').where(event('B').within(parent: 1 day).count() > 0).count() > 0", None),
        ("trait('d').within_last(7 days)", 0),
    ],
)
def test_lookback(text: str, lookback: int | None) -> None:
    """The look-back is the widest window over all streams; None if any is unbounded."""
    assert summarize(parse(text)).lookback_ms == lookback


def test_relative_dates_make_it_time_dependent() -> None:
    """A relative date comparator makes a trait-only definition depend on the clock."""
    summary = summarize(parse("trait('renewal').within_next(7 days)"))
    assert summary.relative_dates
    assert summary.time_dependent
    assert not summarize(parse("trait('d').before_date('2023-01-01')")).time_dependent
