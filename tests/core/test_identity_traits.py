"""Custom traits: last write wins by event time, ties by arrival, null removes with a tombstone."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audiences_server.core.identity import (
    TraitUpdate,
    TraitValue,
    apply_traits,
    merge_traits_into,
    visible_traits,
)

Write = tuple[dict[str, Any], int, int]  # (traits, event ts, arrival seq)


def replay(writes: list[Write]) -> dict[str, TraitValue]:
    state: dict[str, TraitValue] = {}
    for traits, ts, seq in writes:
        apply_traits(state, traits, ts, seq)
    return state


@pytest.mark.parametrize(
    ("writes", "visible"),
    [
        pytest.param([({"plan": "pro"}, 10, 1)], {"plan": "pro"}, id="set"),
        pytest.param([({"plan": "free"}, 10, 1), ({"plan": "pro"}, 20, 2)], {"plan": "pro"},
                     id="newer event wins"),
        pytest.param([({"plan": "pro"}, 20, 1), ({"plan": "free"}, 10, 2)], {"plan": "pro"},
                     id="out of order: an older event arriving late loses"),
        pytest.param([({"plan": "free"}, 10, 1), ({"plan": "pro"}, 10, 2)], {"plan": "pro"},
                     id="same timestamp: later arrival wins"),
        pytest.param([({"plan": "pro"}, 10, 2), ({"plan": "free"}, 10, 1)], {"plan": "pro"},
                     id="same timestamp applied out of arrival order"),
        pytest.param([({"plan": "pro"}, 10, 1), ({"plan": None}, 20, 2)], {},
                     id="null removes"),
        pytest.param([({"plan": "pro"}, 10, 1), ({"plan": None}, 20, 2), ({"plan": "x"}, 30, 3)],
                     {"plan": "x"}, id="a later set re-adds after removal"),
        pytest.param([({"plan": None}, 20, 1), ({"plan": "old"}, 10, 2)], {},
                     id="tombstone: an older set after a newer removal does not resurrect"),
        pytest.param([({"plan": "pro"}, 30, 1), ({"plan": None}, 20, 2)], {"plan": "pro"},
                     id="an older removal does not remove a newer value"),
        pytest.param([({"a": 1, "b": 2}, 10, 1), ({"b": 3}, 20, 2)], {"a": 1, "b": 3},
                     id="keys are independent"),
        pytest.param([({"address": {"city": "Paris", "zip": "75001"}}, 10, 1),
                      ({"address": {"city": "Lyon"}}, 20, 2)],
                     {"address": {"city": "Lyon"}},
                     id="nested objects replace whole, top-level key is the unit"),
        pytest.param([({"tags": ["a"], "n": 0, "ok": False}, 10, 1)],
                     {"n": 0, "ok": False, "tags": ["a"]},
                     id="falsy values are values, not removals"),
    ],
)
def test_last_write_wins(writes: list[Write], visible: dict[str, Any]) -> None:
    """The visible traits are the last write per key by (timestamp, arrival)."""
    assert visible_traits(replay(writes)) == visible


@pytest.mark.parametrize(
    ("before", "traits", "update"),
    [
        pytest.param({}, {"a": 1}, TraitUpdate(("a",), ("a",)), id="new key"),
        pytest.param({"a": TraitValue(1, 5, 1)}, {"a": 1}, TraitUpdate(("a",), ()),
                     id="same value restamped: written, not changed"),
        pytest.param({"a": TraitValue(1, 5, 1)}, {"a": 1.0}, TraitUpdate(("a",), ("a",)),
                     id="1 and 1.0 are different values"),
        pytest.param({"a": TraitValue(1, 5, 1)}, {"a": True}, TraitUpdate(("a",), ("a",)),
                     id="1 and true are different values"),
        pytest.param({}, {"a": None}, TraitUpdate(("a",), ()),
                     id="removing an absent key writes a tombstone only"),
        pytest.param({"a": TraitValue(1, 50, 1)}, {"a": 2}, TraitUpdate(),
                     id="losing write changes nothing"),
        pytest.param({"a": TraitValue(1, 10, 7)}, {"a": 2}, TraitUpdate(),
                     id="re-applying the same stamp is idempotent"),
    ],
)
def test_update_reports_written_and_changed(
    before: dict[str, TraitValue], traits: dict[str, Any], update: TraitUpdate
) -> None:
    """apply_traits reports keys to persist and keys whose visible value changed."""
    assert apply_traits(dict(before), traits, 10, 7) == update


@pytest.mark.parametrize(
    ("survivor", "loser", "visible", "update"),
    [
        pytest.param({"a": TraitValue("s", 10, 1)}, {"a": TraitValue("l", 20, 2)},
                     {"a": "l"}, TraitUpdate(("a",), ("a",)), id="newer loser value wins"),
        pytest.param({"a": TraitValue("s", 20, 1)}, {"a": TraitValue("l", 10, 2)},
                     {"a": "s"}, TraitUpdate(), id="newer survivor value stays"),
        pytest.param({"a": TraitValue("s", 10, 1)}, {"b": TraitValue("l", 5, 2)},
                     {"a": "s", "b": "l"}, TraitUpdate(("b",), ("b",)), id="disjoint keys union"),
        pytest.param({"a": TraitValue("s", 10, 1)}, {"a": TraitValue(None, 20, 2)},
                     {}, TraitUpdate(("a",), ("a",)), id="newer removal on the loser removes"),
        pytest.param({"a": TraitValue(None, 20, 1)}, {"a": TraitValue("l", 10, 2)},
                     {}, TraitUpdate(), id="survivor tombstone blocks an older loser value"),
        pytest.param({"a": TraitValue("s", 10, 1)}, {"a": TraitValue("l", 10, 1)},
                     {"a": "s"}, TraitUpdate(), id="equal stamps keep the survivor's"),
    ],
)
def test_merge_trait_maps(
    survivor: dict[str, TraitValue],
    loser: dict[str, TraitValue],
    visible: dict[str, Any],
    update: TraitUpdate,
) -> None:
    """Merging two profiles keeps, per key, the entry with the greater stamp."""
    assert merge_traits_into(survivor, loser) == update
    assert visible_traits(survivor) == visible


writes_strategy = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from("abc"), st.one_of(st.none(), st.integers(0, 3)),
                        max_size=3),
        st.integers(0, 5),
    ),
    max_size=8,
).map(lambda items: [(traits, ts, seq) for seq, (traits, ts) in enumerate(items)])


@given(writes_strategy, st.randoms())
def test_order_of_application_does_not_matter(writes: list[Write], rnd: Any) -> None:
    """Applying the same writes in any order gives the same entries (a CRDT register per key)."""
    shuffled = list(writes)
    rnd.shuffle(shuffled)
    assert replay(shuffled) == replay(writes)


@given(writes_strategy, st.lists(st.booleans(), max_size=8))
def test_merge_equals_one_profile_receiving_everything(
    writes: list[Write], goes_to_loser: list[bool]
) -> None:
    """Splitting writes over two profiles and merging them equals one profile getting all."""
    to_loser = goes_to_loser + [False] * len(writes)
    survivor = replay([w for w, loses in zip(writes, to_loser, strict=False) if not loses])
    loser = replay([w for w, loses in zip(writes, to_loser, strict=False) if loses])
    merge_traits_into(survivor, loser)
    assert survivor == replay(writes)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, 2.5, float("nan"), float("inf")]),
    st.sampled_from(["", "a", "1", "true", "null"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "1"]), inner, max_size=3),
        st.dictionaries(st.just(1), inner, max_size=1),  # serialised with the key as "1"
    ),
    max_leaves=8,
)


@given(_VALUES, _VALUES)
def test_value_comparison_is_json_equality(a: Any, b: Any) -> None:
    """A trait value changes exactly when its JSON does: 1, 1.0 and True differ, as do 0.0 and
    -0.0; NaN equals NaN; a list and a tuple of the same items are the same array."""
    from audiences_server.core.identity.traits import _canonical, _same_json

    assert _same_json(a, b) == (_canonical(a) == _canonical(b))
    assert _same_json(a, a)
    assert _same_json([a, b], (a, b))
    assert _same_json({"k": a}, {"k": a})
