"""Evaluating sets of definitions from scratch in dependency order (the oracle's entry point)."""

from __future__ import annotations

import pytest

from audiences_server.core.ql import (
    CheckedDefinition,
    Collection,
    CycleError,
    Event,
    Kind,
    Profile,
    dependency_order,
    evaluate_all,
    parse_and_check,
)

NOW = 1_700_000_000_000
DAY = 86_400_000


def d(text: str, kind: Kind = "audience", collection: Collection = "users") -> CheckedDefinition:
    """A checked definition."""
    return parse_and_check(text, kind=kind, collection=collection)


def test_audience_of_audience_of_computed_trait() -> None:
    """A chain trait -> audience -> audience is evaluated in order, each seeing the last."""
    definitions = {
        "vip": d("trait('orders') >= 3 AND trait('ltv') > 100"),
        "ltv": d("event('Order').sum('total')", "computed_trait"),
        "orders": d("event('Order').count()", "computed_trait"),
        "vip_not_recent": d("trait('vip') = true AND event('Order').within(1 day).count() = 0"),
    }
    orders = [Event("Order", NOW - i * 2 * DAY, {"total": 50}) for i in range(1, 4)]
    users = {"u1": Profile(orders), "u2": Profile(orders[:1]), "u3": Profile()}
    results = evaluate_all(definitions, users=users, now_ms=NOW)
    assert results.users["u1"] == {"orders": 3, "ltv": 150, "vip": True, "vip_not_recent": True}
    assert results.users["u2"] == {"orders": 1, "ltv": 50, "vip": False,
                                   "vip_not_recent": False}
    assert results.users["u3"] == {"orders": 0, "ltv": None, "vip": False,
                                   "vip_not_recent": False}


def test_account_audience_reads_user_audiences() -> None:
    """ANY/ALL/ALL NOT over linked users read the user audiences computed just before."""
    definitions = {
        "buyer": d("event('Buy').count() >= 1"),
        "any_buyer": d("ANY trait('buyer') = true", collection="accounts"),
        "all_buyers": d("ALL trait('buyer') = true", collection="accounts"),
        "no_buyers": d("ALL NOT trait('buyer') = true", collection="accounts"),
        "team_buys": d("event('Buy').count()", "computed_trait", "accounts"),
        "big_team": d("trait('team_buys') >= 2", collection="accounts"),
    }
    users = {"b1": Profile([Event("Buy", NOW)]), "b2": Profile([Event("Buy", NOW)]),
             "n1": Profile()}
    accounts = {"mixed": Profile(), "all": Profile(), "none": Profile(), "empty": Profile()}
    links = {"mixed": ["b1", "n1"], "all": ["b1", "b2"], "none": ["n1"]}
    results = evaluate_all(definitions, users=users, accounts=accounts, links=links, now_ms=NOW)
    table = {aid: (r["any_buyer"], r["all_buyers"], r["no_buyers"], r["team_buys"],
                   r["big_team"]) for aid, r in results.accounts.items()}
    assert table == {
        "mixed": (True, False, False, 1, False),
        "all": (True, True, False, 2, True),
        "none": (False, False, True, 0, False),
        "empty": (False, False, True, 0, False),
    }
    assert results.users["n1"] == {"buyer": False}


def test_dependency_order_puts_readers_last() -> None:
    """Every definition comes after the definitions it reads, users before accounts."""
    definitions = {
        "a": d("trait('b') = true"),
        "b": d("trait('c') > 1"),
        "c": d("event('X').count()", "computed_trait"),
        "acct": d("ANY trait('a') = true", collection="accounts"),
    }
    order = dependency_order(definitions)
    assert order.index("c") < order.index("b") < order.index("a") < order.index("acct")


def test_custom_trait_with_unknown_key_is_not_a_dependency() -> None:
    """A trait key that names no definition is a custom trait, read as it is."""
    definitions = {"a": d("trait('plan') = 'pro'")}
    assert dependency_order(definitions) == ["a"]
    results = evaluate_all(definitions, users={"u": Profile([], {"plan": "pro"})}, now_ms=NOW)
    assert results.users["u"]["a"] is True


def test_cycle_is_refused_with_its_keys() -> None:
    """Definitions that read each other in a circle raise CycleError naming the circle."""
    definitions = {"a": d("trait('b') = true"), "b": d("trait('c') = true"),
                   "c": d("trait('a') = true")}
    with pytest.raises(CycleError) as caught:
        dependency_order(definitions)
    assert set(caught.value.keys) == {"a", "b", "c"}
    assert caught.value.keys[0] == caught.value.keys[-1]
