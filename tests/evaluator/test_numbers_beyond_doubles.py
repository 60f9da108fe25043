"""Numbers no double holds: sums that leave a double's range, integers beyond it. The evaluator
goes on, every definition with it, and every read serves them (a Struct as decimal text, the JSON
text beside it as the number)."""

from __future__ import annotations

import json
from typing import Any

from audiences.v1 import admin_pb2, common_pb2, profiles_pb2, sync_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.core.ql.nodes import AggregateFunction
from audiences_server.core.ql.reducers import reduce_values
from tests.conftest import bearer
from tests.evaluator.conftest import Space

HUGE = 10**400


def test_sums_that_leave_a_doubles_range() -> None:
    """Beyond ±1.8e308 a sum or average has no value; on the way there it is worked out exactly."""
    total, avg = AggregateFunction.SUM, AggregateFunction.AVG
    assert reduce_values(total, [1e308, 1e308], None, 1) is None
    assert reduce_values(total, [1e308, 1e308, -1e308], None, 1) == 1e308
    assert reduce_values(avg, [1e308, 1e308], None, 1) == 1e308
    assert reduce_values(total, [HUGE, 1], None, 1) == HUGE + 1  # integers alone: exact, unbounded
    assert reduce_values(total, [HUGE, 1.5], None, 1) is None
    assert reduce_values(total, [HUGE, -HUGE, 1.5], None, 1) == 1.5
    assert reduce_values(avg, [HUGE, HUGE], None, 1) is None
    assert reduce_values(avg, [HUGE, -HUGE, 3], None, 1) == 1.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 3), st.sampled_from((HUGE, -HUGE, 2**1024, 1e308, -1e308, 1.7e308)),
                          st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=8),
       st.sampled_from((AggregateFunction.SUM, AggregateFunction.AVG)))
def test_sums_are_the_exact_result_rounded_once(numbers: list[Any], function: AggregateFunction) -> None:
    """Whatever the numbers, a sum or average is the exact result rounded once to a double (or, for
    integers alone, the exact integer sum), or absent where no double holds it."""
    from fractions import Fraction

    exact = sum(map(Fraction, numbers), Fraction(0))
    if function is AggregateFunction.AVG:
        exact /= len(numbers)
    found = reduce_values(function, numbers, None, 1)
    if function is AggregateFunction.SUM and all(type(n) is int for n in numbers):
        assert found == exact
        return
    try:
        expected: float | None = float(exact)
    except OverflowError:
        expected = None
    if function is AggregateFunction.AVG and expected is not None and found is not None:
        # An average within range is the rounded sum divided (two roundings), as it always was.
        assert abs(found - expected) <= abs(expected) * 2**-50
    else:
        assert found == expected


def _traits(space: Space, user: str) -> dict[str, profiles_pb2.Trait]:
    reply = space.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
        profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id=f"user_id:{user}"), page_size=200),
        metadata=bearer(space.tokens["read"]))
    return {t.key: t for t in reply.traits}


def test_an_overflowing_sum_stops_no_definition(space: Space) -> None:
    """A sum past the doubles' range is null for that profile; the definition stays LIVE and the
    others, and definitions created after, go on."""
    space.define("bystander", "event('Z').count() >= 1")
    space.define("total", "event('O').sum(property('p'))", kind="computed_trait")
    space.define("mean", "event('O').avg(property('p'))", kind="computed_trait")
    space.tick()
    space.send({"type": "track", "userId": "o", "event": "O", "properties": {"p": 1e308}},
               {"type": "track", "userId": "o", "event": "O", "properties": {"p": 1e308}},
               {"type": "track", "userId": "z", "event": "Z"})
    space.tick()
    assert space.member_ids("bystander") == {"user_id:z"}
    assert space.stored() == space.expected()
    traits = _traits(space, "o")
    assert "total" not in traits
    assert json.loads(traits["mean"].value_json) == 1e308
    space.define("later", "event('O').count() >= 2")
    space.tick()
    assert space.member_ids("later") == {"user_id:o"}
    statuses = {c.key: c.status for c in space.running.admin.ListComputedTraits(
        admin_pb2.ListComputedTraitsRequest(collection=common_pb2.COLLECTION_USERS),
        metadata=bearer(space.tokens["admin"])).computed_traits}
    assert statuses == {"total": admin_pb2.COMPUTATION_STATUS_LIVE, "mean": admin_pb2.COMPUTATION_STATUS_LIVE}


def test_an_integer_no_double_holds_reads_back_everywhere(space: Space) -> None:
    """Such an integer, accepted by the JSON APIs, is served by every read: as decimal text in a
    Struct or Value, as itself in the JSON text beside it."""
    space.send({"type": "identify", "userId": "big", "traits": {"n": HUGE}},
               {"type": "track", "userId": "big", "event": "I", "properties": {"n": HUGE, "m": [HUGE]}})
    space.define("top", "event('I').max(property('n'))", kind="computed_trait")
    space.define("has_big", "trait('n') > 5")
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(
        destination=sync_pb2.Destination(key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())),
        metadata=bearer(space.tokens["admin"]))
    space.running.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
        destination_key="feed", computation=common_pb2.ComputationRef(
            kind=common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT, collection=common_pb2.COLLECTION_USERS, key="top"))),
        metadata=bearer(space.tokens["admin"]))
    space.tick()
    traits = _traits(space, "big")
    assert traits["n"].value.string_value == str(HUGE)
    assert json.loads(traits["n"].value_json) == HUGE
    assert json.loads(traits["top"].value_json) == HUGE
    assert space.member_ids("has_big") == {"user_id:big"}
    read, admin = bearer(space.tokens["read"]), bearer(space.tokens["admin"])
    ref = common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id="user_id:big")
    events = space.running.profiles.ListEvents(profiles_pb2.ListEventsRequest(profile=ref), metadata=read).events
    assert events[0].properties["n"] == str(HUGE)
    assert list(events[0].properties["m"]) == [str(HUGE)]
    assert json.loads(events[0].properties_json)["n"] == HUGE
    preview = space.running.admin.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
        definition="trait('n')", kind=common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT,
        collection=common_pb2.COLLECTION_USERS), metadata=admin)
    assert [s.value.string_value for s in preview.samples] == [str(HUGE)]
    members = space.running.admin.ListAudienceMembers(admin_pb2.ListAudienceMembersRequest(
        collection=common_pb2.COLLECTION_USERS, key="has_big", include_traits=["n"]), metadata=admin).members
    assert [m.traits["n"] for m in members] == [str(HUGE)]
    explained = space.running.admin.ExplainMembership(admin_pb2.ExplainMembershipRequest(
        collection=common_pb2.COLLECTION_USERS, key="top", profile_id="user_id:big"), metadata=admin)
    assert json.loads(explained.value_json) == HUGE
    changes = space.running.sync.ListChanges(sync_pb2.ListChangesRequest(destination_key="feed"), metadata=admin)
    assert [c.new_value.string_value for c in changes.changes] == [str(HUGE)]


def test_a_value_failing_to_decode_in_a_shared_scan_fails_its_definition_alone(
        space: Space, monkeypatch: Any) -> None:
    """Definitions reading the same events share one scan; a value one of them fails to decode
    there (any reducer error the language's numbers might still hold) fails that definition, as its
    own evaluation would, and not the tick: the others sharing the scan go on."""
    from audiences_server.store.sql import plans

    def fragile(function: AggregateFunction, values: Any, *rest: Any) -> Any:
        if function is AggregateFunction.MODE and 13 in values:
            raise ArithmeticError("a reducer failing")
        return reduce_values(function, values, *rest)

    monkeypatch.setattr(plans, "reduce_values", fragile)
    space.define("often", "event('O').mode(property('p'))", kind="computed_trait")
    space.define("spent", "event('O').sum(property('p'))", kind="computed_trait")
    space.define("buyers", "event('O').count() >= 1")
    space.tick()
    space.send({"type": "track", "userId": "a", "event": "O", "properties": {"p": 13}},
               {"type": "track", "userId": "b", "event": "O", "properties": {"p": 2}})
    space.tick()
    assert space.member_ids("buyers") == {"user_id:a", "user_id:b"}
    statuses = {c.key: c.status for c in space.running.admin.ListComputedTraits(
        admin_pb2.ListComputedTraitsRequest(collection=common_pb2.COLLECTION_USERS),
        metadata=bearer(space.tokens["admin"])).computed_traits}
    assert statuses == {"often": admin_pb2.COMPUTATION_STATUS_FAILED, "spent": admin_pb2.COMPUTATION_STATUS_LIVE}
    assert {k: v for k, v in _traits(space, "a").items() if k == "spent"}["spent"].value_json == "13"
