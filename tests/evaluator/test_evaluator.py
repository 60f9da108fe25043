"""The incremental evaluator through the real server: windows, cascades, edits, and the work a tick does."""

from __future__ import annotations

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, profiles_pb2
from google.protobuf import field_mask_pb2

from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import DAY, HOUR, Space


def changes(space: Space, key: str) -> list[tuple[str, str]]:
    """The change records of one definition, as (identifier, change), oldest first."""
    rows = space.running.query(
        "SELECT (SELECT group_concat(id_value) FROM identifiers i WHERE i.profile_id = ch.profile_id"
        "        AND i.id_type = 'user_id'), ch.change"
        " FROM changes ch JOIN computations c USING (computation_id) WHERE c.space_id = ? AND c.key = ?"
        " ORDER BY ch.change_id",
        (space.space_id, key),
    )
    return [(r[0], r[1]) for r in rows]


def test_window_exit_with_no_new_event(space: Space) -> None:
    """A member leaves exactly when its event passes the window's edge, with nothing new sent."""
    now = space.now()
    space.send({"type": "track", "userId": "u1", "event": "Login", "at": now - 2 * HOUR})
    space.define("recent", "event('Login').within(3 hours).count() >= 1")
    space.tick()
    assert space.member_ids("recent") == {"user_id:u1"}
    space.tick(at=now + HOUR)  # the event is exactly 3 hours old: still inside (inclusive edge)
    assert space.member_ids("recent") == {"user_id:u1"}
    space.tick(at=now + HOUR + 1)
    assert space.member_ids("recent") == set()
    assert changes(space, "recent") == [("u1", "entered"), ("u1", "exited")]


def test_between_window_enters_with_no_new_event(space: Space) -> None:
    """`between(2 hours, 4 hours)` admits an event once it is two hours old, to the millisecond."""
    now = space.now()
    space.send({"type": "track", "userId": "u1", "event": "Cart", "at": now - HOUR})
    space.define("cart_aged", "event('Cart').between(2 hours, 4 hours).count() >= 1")
    space.tick()
    assert space.member_ids("cart_aged") == set()
    space.tick(at=now + HOUR - 1)
    assert space.member_ids("cart_aged") == set()
    space.tick(at=now + HOUR)
    assert space.member_ids("cart_aged") == {"user_id:u1"}
    space.tick(at=now + 3 * HOUR + 1)
    assert space.member_ids("cart_aged") == set()


def test_at_most_audience_entered_when_old_events_age_out(space: Space) -> None:
    """`count() <= 1` over a window is entered when older events leave the window."""
    now = space.now()
    space.send(*[{"type": "track", "userId": "u1", "event": "Error", "at": now - h * HOUR} for h in (1, 5, 9)])
    space.define("few_errors", "event('Error').within(10 hours).count() <= 1")
    space.tick()
    assert space.member_ids("few_errors") == set()
    space.tick(at=now + 5 * HOUR + 1)  # the 5 h and 9 h old events have left the window
    assert space.member_ids("few_errors") == {"user_id:u1"}


def test_profile_without_events_matches_not(space: Space) -> None:
    """A profile with no events has count() = 0, so a NOT audience admits it."""
    space.send(
        {"type": "identify", "userId": "quiet", "traits": {"plan": "free"}},
        {"type": "track", "userId": "buyer", "event": "Order Completed"},
    )
    space.define("never_bought", "NOT (event('Order Completed').count() >= 1)")
    space.tick()
    assert space.member_ids("never_bought") == {"user_id:quiet"}


def test_audience_of_audiences_cascades_in_one_tick(space: Space) -> None:
    """A change flows through an audience that reads another within the same tick."""
    space.define("pro", "trait('plan') = 'pro'")
    space.define("active", "event('Login').within(1 days).count() >= 1")
    space.define("active_pro", "trait('pro') = true AND trait('active') = true")
    space.tick()
    space.send(
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "Login", "at": space.now()},
    )
    tick = space.tick()
    assert space.member_ids("active_pro") == {"user_id:u1"}
    assert tick.values_changed == 3
    space.tick(at=space.now() + DAY + 1)
    assert space.member_ids("active_pro") == set()


def test_a_candidate_gained_mid_job_is_diffed_against_what_it_stores(space: Space) -> None:
    """A definition that gets a profile from a dependency's change in the same job compares its
    result with the profile's stored value: a member that stays in records nothing new.

    `either` reads `View` events and the audience `buyer`. In the second job `u1` is touched by
    a `Buy` only (so `either`'s own candidates are `u2`, touched by a `View`) and becomes a
    buyer, which makes `u1` a candidate of `either` during the job; `u1` was already a member.
    """
    now = space.now()
    space.define("buyer", "event('Buy').count() >= 1")
    space.define("either", "trait('buyer') = true OR event('View').within(7 days).count() >= 1")
    space.send({"type": "track", "userId": "u1", "event": "View", "at": now - HOUR})
    space.tick()
    assert space.member_ids("either") == {"user_id:u1"}
    space.send({"type": "track", "userId": "u1", "event": "Buy", "at": now},
               {"type": "track", "userId": "u2", "event": "View", "at": now})
    space.tick()
    assert space.member_ids("buyer") == {"user_id:u1"}
    assert space.member_ids("either") == {"user_id:u1", "user_id:u2"}
    assert changes(space, "either") == [("u1", "entered"), ("u2", "entered")]
    space.tick(at=now + 8 * DAY)  # the views have left the window: u1 stays as a buyer
    assert space.member_ids("either") == {"user_id:u1"}
    assert changes(space, "either") == [("u1", "entered"), ("u2", "entered"), ("u2", "exited")]


def test_edit_that_shrinks_leaves_no_stale_members(space: Space) -> None:
    """After an edit and its backfill, membership equals the new definition; the leavers exit."""
    space.send(
        *[{"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"total": i * 10}} for i in range(1, 6)]
    )
    space.define("spenders", "event('Order').where(property('total') >= 20).count() >= 1")
    space.tick()
    assert space.member_ids("spenders") == {f"user_id:u{i}" for i in range(2, 6)}
    edited = admin_pb2.Audience(
        collection=common_pb2.COLLECTION_USERS,
        key="spenders",
        definition="event('Order').where(property('total') >= 40).count() >= 1",
    )
    space.running.admin.UpdateAudience(
        admin_pb2.UpdateAudienceRequest(audience=edited, update_mask=field_mask_pb2.FieldMask(paths=["definition"])),
        metadata=bearer(space.tokens["admin"]),
    )
    space.tick()
    assert space.member_ids("spenders") == {"user_id:u4", "user_id:u5"}
    assert ("u2", "exited") in changes(space, "spenders")
    got = space.running.admin.GetAudience(
        admin_pb2.GetAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="spenders"),
        metadata=bearer(space.tokens["admin"]),
    ).audience
    assert (got.status, got.size) == (admin_pb2.COMPUTATION_STATUS_LIVE, 2)


def test_edit_to_other_events_clears_what_the_old_text_stored(space: Space) -> None:
    """An edit to a definition reading other events: the profiles that held a value under the
    old text and have none of the new events lose it (members exit, values and next change
    times go), though the backfill evaluates only the profiles with something to find."""
    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "at": now - i * HOUR,
                  "properties": {"total": i}} for i in range(1, 5)],
               {"type": "track", "userId": "u4", "event": "Refund", "at": now - HOUR, "properties": {"total": 7}},
               {"type": "track", "userId": "u9", "event": "Refund", "at": now - HOUR, "properties": {"total": 9}})
    space.define("buyers", "event('Order').within(3 hours).count() >= 1")
    space.define("last_total", "event('Order').within(3 hours).last('total')", kind="computed_trait")
    space.tick()
    assert space.member_ids("buyers") == {"user_id:u1", "user_id:u2", "user_id:u3"}
    meta = bearer(space.tokens["admin"])
    mask = field_mask_pb2.FieldMask(paths=["definition"])
    space.running.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=common_pb2.COLLECTION_USERS, key="buyers",
                                    definition="event('Refund').within(2 hours).count() >= 1"),
        update_mask=mask), metadata=meta)
    space.running.admin.UpdateComputedTrait(admin_pb2.UpdateComputedTraitRequest(
        computed_trait=admin_pb2.ComputedTrait(collection=common_pb2.COLLECTION_USERS, key="last_total",
                                               definition="event('Refund').within(2 hours).last('total')"),
        update_mask=mask), metadata=meta)
    space.tick()
    assert space.member_ids("buyers") == {"user_id:u4", "user_id:u9"}
    assert [c for c in changes(space, "buyers") if c[1] == "exited"] == [("u1", "exited"), ("u2", "exited"),
                                                                         ("u3", "exited")]
    assert space.stored() == space.expected()
    space.tick(at=now + HOUR + 1)  # the refunds leave the window: the next change times were kept
    assert space.member_ids("buyers") == set()
    assert space.stored() == space.expected()


def test_delete_refused_while_referenced(space: Space) -> None:
    """A definition another one reads cannot be deleted; the refusal names the reader."""
    space.define("base", "trait('plan') = 'pro'")
    space.define("derived", "trait('base') = true")
    with pytest.raises(grpc.RpcError) as caught:
        space.running.admin.DeleteAudience(
            admin_pb2.DeleteAudienceRequest(collection=common_pb2.COLLECTION_USERS, key="base"),
            metadata=bearer(space.tokens["admin"]),
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "IN_USE"
    assert "derived" in (caught.value.details() or "")


def test_cycle_refused_naming_its_keys(space: Space) -> None:
    """An edit that would make definitions read each other in a circle is refused with the keys."""
    space.define("a", "trait('plan') = 'pro'")
    space.define("b", "trait('a') = true")
    edited = admin_pb2.Audience(collection=common_pb2.COLLECTION_USERS, key="a", definition="trait('b') = true")
    with pytest.raises(grpc.RpcError) as caught:
        space.running.admin.UpdateAudience(
            admin_pb2.UpdateAudienceRequest(
                audience=edited, update_mask=field_mask_pb2.FieldMask(paths=["definition"])
            ),
            metadata=bearer(space.tokens["admin"]),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "DEPENDENCY_CYCLE"
    assert "a -> b -> a" in (caught.value.details() or "") or "b -> a -> b" in (caught.value.details() or "")


def test_tick_work_follows_the_touched_profiles(space: Space) -> None:
    """After touching k profiles (with no due times), a tick evaluates those k and no others."""
    space.send(*[{"type": "identify", "userId": f"u{i}", "traits": {"plan": "free"}} for i in range(60)])
    space.define("pro", "trait('plan') = 'pro'")
    space.define("clicked", "event('Click').count() >= 1")
    space.tick()
    space.send(*[{"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}} for i in range(5)])
    tick = space.tick()
    assert (tick.profiles_evaluated, tick.definitions_evaluated) == (5, 1)
    space.send({"type": "track", "userId": "u7", "event": "Click"})
    tick = space.tick()
    assert (tick.profiles_evaluated, tick.definitions_evaluated) == (1, 1)


def test_anonymous_profiles_only_with_the_option(space: Space) -> None:
    """Profiles known only by an anonymous id join an audience only if it includes anonymous users."""
    space.send(
        {"type": "track", "anonymousId": "anon", "event": "Visit"},
        {"type": "track", "userId": "known", "event": "Visit"},
    )
    space.define("visitors", "event('Visit').count() >= 1")
    space.define("all_visitors", "event('Visit').count() >= 1", include_anonymous_users=True)
    space.tick()
    assert space.member_ids("visitors") == {"user_id:known"}
    assert space.member_ids("all_visitors") == {"user_id:known", "anonymous_id:anon"}
    space.send({"type": "identify", "anonymousId": "anon", "userId": "later"})
    space.tick()
    assert space.member_ids("visitors") == {"user_id:known", "user_id:later", "anonymous_id:anon"}


def test_merge_moves_membership_to_the_survivor(space: Space) -> None:
    """When two members merge, the merged-away profile exits and the survivor stays a member."""
    space.send(
        {"type": "track", "userId": "u1", "event": "Visit"}, {"type": "track", "anonymousId": "dev", "event": "Visit"}
    )
    space.define("visitors", "event('Visit').count() >= 2", include_anonymous_users=True)
    space.tick()
    assert space.member_ids("visitors") == set()
    space.send({"type": "identify", "userId": "u1", "anonymousId": "dev"})
    space.tick()
    assert space.member_ids("visitors") == {"user_id:u1", "anonymous_id:dev"}
    assert space.stored() == space.expected()


def test_computed_trait_values_and_changes(space: Space) -> None:
    """A computed trait stores each profile's value and a change record whenever it changes."""
    now = space.now()
    space.send(
        {"type": "track", "userId": "u1", "event": "Order", "properties": {"total": 30}, "at": now - HOUR},
        {"type": "track", "userId": "u1", "event": "Order", "properties": {"total": 12.5}, "at": now},
    )
    space.define("spent_day", "event('Order').within(1 days).sum('total')", kind="computed_trait")
    space.tick()
    assert set(space.stored().values()) == {42.5}
    space.tick(at=now + DAY - HOUR + 1)
    assert set(space.stored().values()) == {12.5}
    space.tick(at=now + DAY + 1)
    assert set(space.stored().values()) == {None}
    assert [c for _, c in changes(space, "spent_day")] == ["changed"] * 3


def test_without_historical_data_only_new_events_count(space: Space) -> None:
    """With include_historical_data off, events stamped before the definition was created do not count."""
    now = space.now()
    space.send(
        {"type": "track", "userId": "old", "event": "Buy", "at": now - HOUR},
        {"type": "track", "userId": "new", "event": "Buy", "at": now - HOUR},
    )
    space.define("fresh_buyers", "event('Buy').count() >= 2", include_historical_data=False)
    space.define("all_buyers", "event('Buy').count() >= 2")
    space.send(
        {"type": "track", "userId": "new", "event": "Buy", "at": now},
        {"type": "track", "userId": "new", "event": "Buy", "at": now},
        {"type": "track", "userId": "old", "event": "Buy", "at": now},
    )
    space.tick()
    assert space.member_ids("fresh_buyers") == {"user_id:new"}
    assert space.member_ids("all_buyers") == {"user_id:new", "user_id:old"}


def test_sources_are_the_write_tokens_labels(space: Space) -> None:
    """`sources(exclude: …)` leaves out events sent with a write token of that label."""
    auth = space.running.server.engine.auth
    name = space.running.query("SELECT name FROM spaces WHERE space_id = ?", (space.space_id,))[0][0]
    importer = auth.create_token(name, "write", 0, label="csv-import").token
    space.send({"type": "track", "userId": "live", "event": "Buy"})
    space.tokens = {**space.tokens, "write": importer}
    space.send({"type": "track", "userId": "imported", "event": "Buy"})
    space.define("live_buyers", "event('Buy').sources(exclude: 'csv-import').count() >= 1")
    space.tick()
    assert space.member_ids("live_buyers") == {"user_id:live"}
    assert space.stored() == space.expected()


def test_an_empty_unique_trait_reads_as_an_empty_list(space: Space) -> None:
    """A `unique()` trait over no events is `[]`, not unset: in the profile's traits, in a preview's
    samples, and to a definition testing it with `exists()`."""
    space.send({"type": "identify", "userId": "u1", "traits": {"empty": {}}})
    space.define("skus", "event('Order').unique(property('sku'))", kind="computed_trait")
    space.define("has_skus", "trait('skus').exists()")
    space.tick()
    reply = space.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
        profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id="user_id:u1"), page_size=200),
        metadata=bearer(space.tokens["read"]))
    values = {t.key: t.value for t in reply.traits}
    assert values["skus"].WhichOneof("kind") == "list_value"
    assert not values["skus"].list_value.values
    assert values["empty"].WhichOneof("kind") == "struct_value"
    assert space.member_ids("has_skus") == {"user_id:u1"}
    preview = space.running.admin.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
        definition="event('Order').unique(property('sku'))", kind=common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT,
        collection=common_pb2.COLLECTION_USERS), metadata=bearer(space.tokens["admin"]))
    assert [s.value.WhichOneof("kind") for s in preview.samples] == ["list_value"]


def test_definitions_created_together_backfill_in_shared_jobs(space: Space) -> None:
    """Twenty-four definitions created together, some reading others, backfill a chunk of
    profiles each in a few shared jobs (not a job each), in dependency order, and every value
    equals a from-scratch evaluation."""
    from audiences_server.engine.evaluator import TickReport

    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "at": now - (i % 5) * HOUR,
                  "properties": {"total": i}} for i in range(30)])
    space.tick()
    for n in range(1, 21):
        space.define(f"orders_{n}", f"event('Order').where(property('total') >= {n}).within({n} hours).count() >= 1")
    space.define("both", "trait('orders_1') = true AND trait('orders_20') = true")
    space.define("either", "trait('orders_3') = true OR NOT (trait('both') = true)")
    space.define("total", "event('Order').sum('total')", kind="computed_trait")
    space.define("last_total", "event('Order').within(3 hours).last('total')", kind="computed_trait")
    reports: list[TickReport] = []
    space.running.server.engine.evaluator.on_tick.append(reports.append)
    space.tick()
    # The 24 share each job (with at most 20 a job, twenty took jobs of their own and four others).
    assert sum(r.jobs for r in reports) <= 3
    assert space.stored() == space.expected()


def test_a_definition_reads_a_computation_over_a_custom_trait_of_its_name(space: Space) -> None:
    """A computation's value stands in for a custom trait of the same name (its `false` too);
    with the computation disabled, its readers read the custom trait again."""
    space.send({"type": "identify", "userId": "pro", "traits": {"plan": "pro", "vip": False, "score": 5}},
               {"type": "identify", "userId": "free", "traits": {"plan": "free", "vip": True, "score": 1}},
               {"type": "track", "userId": "pro", "event": "Order", "properties": {"total": 1}})
    space.define("vip", "trait('plan') = 'pro'")
    # No value for `free` (no orders): it reads as missing, not as the custom 1.
    space.define("score", "event('Order').sum('total')", kind="computed_trait")
    space.define("reads_vip", "trait('vip') = true")
    space.define("reads_score", "trait('score') = 1")
    space.tick()
    assert (space.member_ids("reads_vip"), space.member_ids("reads_score")) == ({"user_id:pro"}, {"user_id:pro"})
    assert space.stored() == space.expected()
    mask = field_mask_pb2.FieldMask(paths=["enabled"])
    space.running.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=common_pb2.COLLECTION_USERS, key="vip", enabled=False),
        update_mask=mask), metadata=bearer(space.tokens["admin"]))
    space.tick()
    assert space.member_ids("reads_vip") == {"user_id:free"}
    assert space.stored() == space.expected()


def test_a_backfill_touches_only_for_readers_that_would_not_see_it(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Definitions created together fill their values in dependency order within each job, so
    their changes queue no touches (each pair is evaluated once); a definition created after a
    reader of its key starts the reader's backfill again beside its own (what the reader sees
    changes for every profile); and a reader left live while a definition it reads is backfilled
    again (an edit), which only a touch tells, gets its changes and follows."""
    from audiences_server.engine import evaluator

    touched: list[tuple[int, str, str]] = []
    original = evaluator.touch

    def counting(conn: object, touches: list[tuple[int, str, str]]) -> None:
        touched.extend(t for t in touches if t[1] == "computed")
        original(conn, touches)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluator, "touch", counting)
    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "at": now - i * HOUR} for i in range(12)])
    space.tick()
    space.define("recent", "event('Order').within(6 hours).count() >= 1")
    space.define("recent_too", "trait('recent') = true")
    space.define("orders", "event('Order').count()", kind="computed_trait")
    tick = space.tick()
    assert touched == []
    assert tick.values_changed == 7 + 7 + 12  # orders 0 to 6 hours old (the edge is inside), and a count each
    assert space.member_ids("recent_too") == space.member_ids("recent")

    space.define("early_reader", "trait('early') = true")
    space.tick()
    assert space.member_ids("early_reader") == set()
    space.define("early", "event('Order').within(3 hours).count() >= 1")
    space.tick()
    assert touched == []  # the reader was backfilled again beside it
    assert space.member_ids("early_reader") == space.member_ids("early") != set()
    space.update("early", definition="event('Order').within(5 hours).count() >= 1")
    space.tick()
    assert {key for _, _, key in touched} == {"early"}
    assert space.member_ids("early_reader") == space.member_ids("early") != set()
    assert space.stored() == space.expected()


@pytest.mark.parametrize("collection", ["users", "accounts"])
def test_a_definition_failing_mid_job_is_undone_and_marked_failed(space: Space, monkeypatch: pytest.MonkeyPatch,
                                                                   collection: str) -> None:
    """A definition that raises after writing part of its results (values and change records, or
    an account audience's users' results) leaves nothing of that job behind and is marked FAILED
    with its error; the job is done again without it, so the other definitions and the touches
    taken are as if it had never been there."""
    from audiences_server.engine.evaluator import Evaluation

    now = space.now()
    space.send(*[{"type": "group", "userId": user, "groupId": "acme"} for user in ("u1", "u2")])
    broken_text = ("ANY (event('Login').count() >= 1)" if collection == "accounts"
                   else "event('Login').count() >= 1")
    space.define("fine", "event('Login').count() >= 1")
    space.define("broken", broken_text, collection=collection)
    space.tick()
    before = space.running.query(
        "SELECT (SELECT count(*) FROM computed_values WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM changes WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM member_results WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM due, json_each(due.times) AS t WHERE t.key = CAST(c.computation_id AS TEXT))"
        " FROM computations c WHERE c.space_id = ? AND c.key = 'broken'", (space.space_id,))
    evaluate = Evaluation.evaluate

    def failing(self: Evaluation, comp, profile_ids):  # type: ignore[no-untyped-def]
        changed = evaluate(self, comp, profile_ids)  # its writes are done; then it fails
        if comp.key == "broken":
            raise ValueError("a broken definition")
        return changed

    monkeypatch.setattr(Evaluation, "evaluate", failing)
    space.send({"type": "track", "userId": "u1", "event": "Login", "at": now})
    tick = space.tick()
    assert space.member_ids("fine") == {"user_id:u1"}
    rows = space.running.query("SELECT status, error FROM computations WHERE space_id = ? AND key = 'broken'",
                               (space.space_id,))
    assert rows == [("FAILED", "ValueError: a broken definition")]
    after = space.running.query(
        "SELECT (SELECT count(*) FROM computed_values WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM changes WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM member_results WHERE computation_id = c.computation_id),"
        " (SELECT count(*) FROM due, json_each(due.times) AS t WHERE t.key = CAST(c.computation_id AS TEXT))"
        " FROM computations c WHERE c.space_id = ? AND c.key = 'broken'", (space.space_id,))
    assert after == before
    assert tick.values_changed >= 1
    assert space.running.query("SELECT count(*) FROM touches") == [(0,)]
    assert space.tick().profiles_evaluated == 0  # nothing left behind, nothing evaluated again


def test_a_definition_failing_in_its_backfill_leaves_the_others_backfilling(space: Space,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Definitions created together backfill in the same jobs: one raising is marked FAILED with
    nothing of it stored, and the others backfill as if it had never been created."""
    from audiences_server.engine.evaluator import Evaluation

    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Login", "at": now - i} for i in range(5)])
    space.tick()
    evaluate = Evaluation.evaluate

    def failing(self: Evaluation, comp, profile_ids):  # type: ignore[no-untyped-def]
        changed = evaluate(self, comp, profile_ids)
        if comp.key == "broken":
            raise ValueError("a broken definition")
        return changed

    monkeypatch.setattr(Evaluation, "evaluate", failing)
    space.define("first", "event('Login').count() >= 1")
    space.define("broken", "event('Login').count() >= 1")
    space.define("last", "trait('first') = true")
    space.tick()
    assert space.member_ids("first") == space.member_ids("last") == {f"user_id:u{i}" for i in range(5)}
    rows = space.running.query(
        "SELECT key, status, (SELECT count(*) FROM computed_values v WHERE v.computation_id = c.computation_id)"
        " FROM computations c WHERE space_id = ? ORDER BY key", (space.space_id,))
    assert rows == [("broken", "FAILED", 0), ("first", "LIVE", 5), ("last", "LIVE", 5)]


def test_definitions_failing_in_a_shared_backfill_cost_one_retry_each(space: Space,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A job done again after a definition failed in its backfill takes only the definitions
    before it (those after take the next job), so every failure costs at most one more
    evaluation of the others' chunk, not one more of all those before it."""
    from collections import Counter

    from audiences_server.engine.evaluator import Evaluation

    now = space.now()
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Login", "at": now - i} for i in range(5)])
    space.tick()
    evaluate = Evaluation.evaluate
    evaluated: Counter[str] = Counter()

    def failing(self: Evaluation, comp, profile_ids):  # type: ignore[no-untyped-def]
        evaluated[comp.key] += 1
        changed = evaluate(self, comp, profile_ids)
        if comp.key.startswith("broken"):
            raise ValueError("a broken definition")
        return changed

    monkeypatch.setattr(Evaluation, "evaluate", failing)
    for n in range(6):
        space.define(f"ok_{n}", f"event('Login').count() >= {n % 3}")
        space.define(f"broken_{n}", "event('Login').count() >= 1")
    space.tick()
    # Each once, and once again in the job redone after the failure that follows it.
    assert {key: n for key, n in evaluated.items() if key.startswith("ok")} == {f"ok_{n}": 2 for n in range(6)}
    everyone = {f"user_id:u{i}" for i in range(5)}  # one login each
    assert [space.member_ids(f"ok_{n}") for n in range(6)] == [everyone, everyone, set()] * 2
    rows = space.running.query("SELECT status, count(*) FROM computations WHERE space_id = ? GROUP BY status",
                               (space.space_id,))
    assert sorted(rows) == [("FAILED", 6), ("LIVE", 6)]


def test_custom_traits_read_once_a_job_are_what_a_fresh_read_gives(space: Space) -> None:
    """An evaluation reads each profile's custom trait once and hands it to every definition
    after: asked again for overlapping profiles and other keys, it gives what the store gives
    (absent traits, nulls and removed traits included)."""
    from audiences_server.engine.evaluator import Evaluation
    from audiences_server.engine.registry import Registry
    from audiences_server.store import evaluation as store

    space.send({"type": "identify", "userId": "a", "traits": {"plan": "pro", "address": {"city": "Oslo"}}},
               {"type": "identify", "userId": "b", "traits": {"plan": None, "seats": 3}},
               {"type": "identify", "userId": "c", "traits": {"seats": 0}},
               {"type": "identify", "userId": "d", "traits": {"nickname": "d"}})
    space.send({"type": "identify", "userId": "c", "traits": {"seats": None}})
    space.tick()
    conn = space._conn()
    pids = [int(pid) for (pid,) in conn.execute(
        "SELECT profile_id FROM profiles WHERE space_id = ? AND collection = 'users' ORDER BY profile_id",
        (space.space_id,))]
    assert len(pids) == 4
    evaluation = Evaluation(conn, Registry(store.computations(conn, space.space_id)), space.now())
    asks = [(pids[:2], {"plan"}), (pids, {"plan", "address.city"}), (pids[1:], {"seats"}),
            (pids[::2], {"seats", "plan", "nickname"}), (pids, {"plan"}), ([pids[3]], {"address"})]
    for ids, keys in asks:
        fresh = store.custom_traits(conn, ids, {key.split(".", 1)[0] for key in keys})
        assert evaluation._traits(space.space_id, "users", ids, keys) == {
            pid: own for pid, own in fresh.items() if own}


def test_a_session_window_ends_on_its_own_to_the_millisecond(space: Space) -> None:
    """`expires_after` keeps the current session: a computed trait over it counts the session's
    events, and falls to 0 the millisecond after the timeout passes the last one, with nothing
    new sent; an audience on it leaves then, and a new event starts a new session."""
    minute = 60_000
    now = space.now()
    for ago in (90, 50, 20, 5):  # 90 is a session of its own; 50, 20 and 5 are one
        space.send({"type": "track", "userId": "s1", "event": "Page Viewed", "at": now - ago * minute})
    space.define("session_views", "event('Page Viewed').expires_after(30 minutes).count()", kind="computed_trait")
    space.define("browsing", "event('Page Viewed').expires_after(30 minutes).count() >= 2")

    def state() -> tuple[int | None, bool]:
        stored = space.stored()
        assert stored == space.expected()
        (views,) = [v for (_, key, _), v in stored.items() if key == "session_views"]
        (member,) = [v for (_, key, _), v in stored.items() if key == "browsing"]
        return views, member

    space.tick()
    assert state() == (3, True)
    space.tick(at=now + 25 * minute)  # the last view is exactly 30 minutes old: still the session
    assert state() == (3, True)
    space.tick(at=now + 25 * minute + 1)
    assert state() == (0, False)
    assert changes(space, "browsing") == [("s1", "entered"), ("s1", "exited")]
    space.send({"type": "track", "userId": "s1", "event": "Page Viewed", "at": now + 26 * minute})
    space.tick(at=now + 26 * minute)
    assert state() == (1, False)
