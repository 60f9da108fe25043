"""Which touches ingest notes for the evaluator (docs/evaluator.md, "Touches"): only those that can
move a definition of the space. A space without definitions gets none; an event or a trait no
definition reads gets none; a definition created or edited after the evaluator last looked
misses nothing, because its backfill reads every profile."""

from __future__ import annotations

from tests.evaluator.conftest import HOUR, Space


def _touches(space: Space) -> set[tuple[str, str, str]]:
    """The space's waiting touches, as (the profile's first identifier value, kind, name)."""
    rows = space.running.query(
        "SELECT (SELECT min(i.id_value) FROM identifiers AS i WHERE i.profile_id = t.profile_id), t.kind, t.name"
        " FROM touches AS t JOIN profiles AS p USING (profile_id) WHERE p.space_id = ?",
        (space.space_id,),
    )
    return {(r[0], r[1], r[2]) for r in rows}


def test_a_space_without_definitions_notes_no_touches(space: Space) -> None:
    space.tick()  # the evaluator has looked at the definitions (of every space) since they last changed
    space.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
               {"type": "track", "userId": "ada", "event": "Order Completed"},
               {"type": "group", "userId": "ada", "groupId": "acme"})
    assert _touches(space) == set()
    # A definition created now is backfilled over every profile: nothing was missed.
    space.define("buyers", "event('Order Completed').count() >= 1")
    space.tick()
    assert space.member_ids("buyers") == {"user_id:ada"}
    assert space.stored() == space.expected()


def test_only_what_a_definition_reads_is_noted(space: Space) -> None:
    space.define("buyers", "event('Order Completed').count() >= 1 AND trait('plan') = 'pro'")
    space.tick()
    space.send({"type": "track", "userId": "ada", "event": "Order Completed"},
               {"type": "track", "userId": "ada", "event": "Page Viewed"},
               {"type": "identify", "userId": "ada", "traits": {"plan": "pro", "age": 36}})
    assert _touches(space) == {
        ("ada", "profile", "created"), ("ada", "identifier", ""),
        ("ada", "event", "Order Completed"), ("ada", "trait", "plan"),
    }
    space.tick()
    assert space.member_ids("buyers") == {"user_id:ada"}
    # A known user's event no definition reads leaves nothing for the evaluator.
    space.send({"type": "track", "userId": "ada", "event": "Page Viewed"})
    assert _touches(space) == set()


def test_a_definition_the_evaluator_has_not_seen_yet_misses_no_event(space: Space) -> None:
    space.define("viewers", "event('Page Viewed').count() >= 1")
    space.tick()
    space.send({"type": "track", "userId": "ada", "event": "Order Completed", "at": space.now() - HOUR})
    # Created, then events arrive before any tick: the registry ingest asks does not hold it yet.
    space.define("buyers", "event('Order Completed').count() >= 1")
    space.send({"type": "track", "userId": "bob", "event": "Order Completed"})
    space.tick()
    assert space.member_ids("buyers") == {"user_id:ada", "user_id:bob"}
    # Edited to read another event, which arrives before the evaluator has seen the edit.
    space.update("viewers", definition="event('Signed Up').count() >= 1")
    space.send({"type": "track", "userId": "cy", "event": "Signed Up"})
    space.tick()
    assert space.member_ids("viewers") == {"user_id:cy"}
    # Live: a new buyer's event is noted and evaluated.
    space.send({"type": "track", "userId": "dee", "event": "Order Completed"})
    assert ("dee", "event", "Order Completed") in _touches(space)
    space.tick()
    assert space.member_ids("buyers") == {"user_id:ada", "user_id:bob", "user_id:dee"}
    assert space.stored() == space.expected()
