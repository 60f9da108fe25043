"""Comparisons across kinds of value through the real server: a score sent as `"47"` and one sent
as `47` give the same answers, in the interpreter and in the SQL plans alike."""

from __future__ import annotations

from tests.evaluator.conftest import Space

DEFINITIONS = {
    # A `where` reading a trait: the interpreter evaluates it.
    "above_text": "event('X').where(property('p') >= trait('s')).count() >= 1",
    "below_text": "event('X').where(property('p') < trait('s')).count() >= 1",
    "above_number": "event('Y').where(property('p') >= trait('s')).count() >= 1",
    # Field against literal text, and a trait against literal text: the SQL plans.
    "differs_text": "event('X').where(property('q') != 'abc').count() >= 1",
    "after_text": "event('X').where(property('q') > 'a').count() >= 1",
    "trait_differs": "trait('s') != 'abc'",
    "trait_equals": "trait('s') = 47.0",
}


def test_a_numeric_string_and_its_number_give_the_same_answers(space: Space) -> None:
    """Against non-numeric text every comparison is false (`!=` included) whether the number came
    as text or as a number; against numbers both compare numerically; stored values equal a
    from-scratch evaluation."""
    for user, score in (("text", "47"), ("number", 47)):
        space.send(
            {"type": "identify", "userId": user, "traits": {"s": score}},
            {"type": "track", "userId": user, "event": "X", "properties": {"p": "abc", "q": score}},
            {"type": "track", "userId": user, "event": "Y", "properties": {"p": "50"}},
        )
    for key, definition in DEFINITIONS.items():
        space.define(key, definition)
    space.tick()
    members = {key: space.member_ids(key) for key in DEFINITIONS}
    assert members == {
        "above_text": set(), "below_text": set(), "differs_text": set(), "after_text": set(),
        "trait_differs": set(),
        "above_number": {"user_id:text", "user_id:number"},
        "trait_equals": {"user_id:text", "user_id:number"},
    }
    assert space.stored() == space.expected()
