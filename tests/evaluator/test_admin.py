"""AudienceAdminService: definitions' lifecycle, validation, preview, listings and their page tokens."""

from __future__ import annotations

import apsw
import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer, error_reason, field_violations
from tests.evaluator.conftest import Space

USERS, ACCOUNTS = common_pb2.COLLECTION_USERS, common_pb2.COLLECTION_ACCOUNTS
AUDIENCE, TRAIT = common_pb2.COMPUTATION_KIND_AUDIENCE, common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT


def admin(space: Space) -> tuple[object, tuple[tuple[str, str], ...]]:
    return space.running.admin, bearer(space.tokens["admin"])


@pytest.mark.parametrize(
    ("key", "definition", "reason", "field"),
    [
        ("Bad-Key", "trait('a') = 1", "KEY_INVALID", "key"),
        ("", "trait('a') = 1", "KEY_INVALID", "key"),
        ("vip\n", "trait('a') = 1", "KEY_INVALID", "key"),  # `$` would let a final newline through
        ("ok_key", "event('A').count( >= 1", "INVALID_DEFINITION", "definition"),
        ("ok_key", "event('A').count()", "INVALID_DEFINITION", "definition"),
    ],
)
def test_create_refuses_bad_input(space: Space, key: str, definition: str, reason: str, field: str) -> None:
    """A bad key or definition is INVALID_ARGUMENT with a reason and the field at fault."""
    stub, meta = admin(space)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateAudience(admin_pb2.CreateAudienceRequest(
            audience=admin_pb2.Audience(key=key, collection=USERS, definition=definition)), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == reason
    assert field_violations(caught.value)[0][0] == field


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"name": "n" * 257}, "FIELD_TOO_LONG", "name"),
        ({"description": "d" * 4_097}, "FIELD_TOO_LONG", "description"),
        ({"options": admin_pb2.ComputationOptions(backfill_days=-1)}, "OPTIONS_INVALID", "options.backfill_days"),
    ],
)
def test_create_and_update_refuse_fields_past_their_limits(space: Space, fields: dict[str, object], reason: str,
                                                          field: str) -> None:
    """A name, description or option past its limit is refused on create and on update, and nothing
    is saved: a list of definitions stays one readable message."""
    stub, meta = admin(space)
    stub.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
        key="kept", collection=USERS, definition="trait('a') = 1", name="n" * 256, description="d" * 4_096)),
        metadata=meta)
    for call in (
        lambda: stub.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key="long", collection=USERS, definition="trait('a') = 1", **fields)), metadata=meta),
        lambda: stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
            audience=admin_pb2.Audience(collection=USERS, key="kept", **fields),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields))), metadata=meta),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert (caught.value.code(), error_reason(caught.value)) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
        assert field_violations(caught.value)[0][0] == field
    listed = stub.ListAudiences(admin_pb2.ListAudiencesRequest(collection=USERS), metadata=meta).audiences
    assert [(a.key, len(a.name), len(a.description)) for a in listed] == [("kept", 256, 4_096)]


def test_a_description_stored_before_the_limit_may_come_back_unchanged(space: Space) -> None:
    """A description longer than the limit, stored before the limit existed, does not stop an
    update that sends it back as it is (a form sends every field); a new one that long is refused."""
    stub, meta = admin(space)
    space.define("legacy", "trait('a') = 1")
    legacy = "d" * 5_000
    space.running.server.engine.writer.run(lambda conn: conn.execute(
        "UPDATE computations SET description = ? WHERE space_id = ? AND key = 'legacy'", (legacy, space.space_id)))
    updated = stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=USERS, key="legacy", definition="trait('a') = 2", description=legacy),
        update_mask=field_mask_pb2.FieldMask(paths=["definition", "description"])), metadata=meta)
    assert (updated.audience.definition, len(updated.audience.description)) == ("trait('a') = 2", 5_000)
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
            audience=admin_pb2.Audience(collection=USERS, key="legacy", description=legacy + "!"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=meta)
    assert error_reason(caught.value) == "FIELD_TOO_LONG"


def test_the_widest_backfill_runs(space: Space) -> None:
    """`backfill_days` at its largest (the int32's) reads every event and the definition goes live."""
    space.send({"type": "track", "userId": "old", "event": "A", "timestamp": "0001-01-01T00:00:00Z"})
    space.define("ever", "event('A').count() >= 1", backfill_days=2**31 - 1)
    space.tick()
    assert space.member_ids("ever") == {"user_id:old"}


def test_an_update_mask_names_fields_and_single_options(space: Space) -> None:
    """One option may be named alone, the others keeping their values; a path into a field that
    has none (`name.x`) or into options that do not exist is FIELD_UNKNOWN, and nothing changes."""
    stub, meta = admin(space)
    space.define("anon", "trait('a') = 1", include_anonymous_users=True)

    def update(paths: list[str], **fields: object) -> admin_pb2.Audience:
        return stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
            audience=admin_pb2.Audience(collection=USERS, key="anon", **fields),
            update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=meta).audience

    changed = update(["options.backfill_days"], options=admin_pb2.ComputationOptions(backfill_days=3))
    assert (changed.options.backfill_days, changed.options.include_anonymous_users) == (3, True)
    for path in ("options.no_such_field", "name.sub", "definition.x", "enabled.x", "nonexistent"):
        with pytest.raises(grpc.RpcError) as caught:
            update([path], name="changed", options=admin_pb2.ComputationOptions(backfill_days=9))
        assert (error_reason(caught.value), field_violations(caught.value)[0][0]) == ("FIELD_UNKNOWN", "update_mask")
    with pytest.raises(grpc.RpcError) as caught:
        update(["status"])
    assert error_reason(caught.value) == "FIELD_IMMUTABLE"
    assert caught.value.details() == ("cannot update status: status is output only (set by the server); only"
                                      " definition, description, enabled, name, options can be updated")
    assert field_violations(caught.value) == [("status", "output only")]
    got = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="anon"), metadata=meta).audience
    assert (got.name, got.options.backfill_days, got.options.include_anonymous_users) == ("anon", 3, True)


def test_definition_error_shows_line_column_and_caret(space: Space) -> None:
    """A parse error names the line and column and draws a caret under the fault."""
    stub, meta = admin(space)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key="x", collection=USERS, definition="event('A')\n  .count() >= )")), metadata=meta)
    details = caught.value.details() or ""
    assert details.startswith("line 2, column 15")
    assert details.splitlines()[-1].strip() == "^"


def test_keys_are_unique_across_kinds(space: Space) -> None:
    """An audience and a computed trait of one collection cannot share a key; another collection can."""
    space.define("vip", "trait('plan') = 'pro'")
    with pytest.raises(grpc.RpcError) as caught:
        space.define("vip", "event('A').count()", kind="computed_trait")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    space.define("vip", "trait('tier') = 'gold'", collection="accounts")


def test_an_update_sent_with_a_stale_etag_is_refused(space: Space) -> None:
    """Two callers read the same audience; the first saves a rename, the second, sending the etag it
    read, is refused with ABORTED EDIT_CONFLICT instead of undoing the rename; without an etag an
    update is not checked. A read message sent back whole with an empty mask keeps its etag out
    of the changes."""
    stub, meta = admin(space)
    space.define("vip", "trait('plan') = 'pro'")
    read = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="vip"), metadata=meta).audience
    assert len(read.etag) == 16

    def rename(name: str, etag: str) -> admin_pb2.Audience:
        return stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
            audience=admin_pb2.Audience(collection=USERS, key="vip", name=name, etag=etag),
            update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=meta).audience

    first = rename("First", read.etag)
    assert first.name == "First"
    assert first.etag != read.etag
    with pytest.raises(grpc.RpcError) as caught:
        rename("Second", read.etag)
    assert (caught.value.code(), error_reason(caught.value)) == (grpc.StatusCode.ABORTED, "EDIT_CONFLICT")
    assert stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="vip"), metadata=meta).audience.name \
        == "First"
    assert rename("Third", "").name == "Third"
    current = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="vip"), metadata=meta).audience
    whole = admin_pb2.Audience(collection=USERS, key="vip", name="Fourth", definition=current.definition,
                               etag=current.etag)
    assert stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=whole), metadata=meta).audience.name \
        == "Fourth"
    # Read, changed and sent back as read: the output-only fields (status, times, summary) are set
    # aside, as the mask's documentation says, not refused as FIELD_IMMUTABLE.
    read = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="vip"), metadata=meta).audience
    assert read.HasField("create_time")
    assert read.status
    read.name = "Fifth"
    fifth = stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(audience=read), metadata=meta).audience
    assert (fifth.name, fifth.definition, fifth.status) == ("Fifth", "trait('plan') = 'pro'", read.status)
    versions = stub.ListDefinitionVersions(admin_pb2.ListDefinitionVersionsRequest(
        collection=USERS, key="vip"), metadata=meta).versions
    assert len(versions) == 1  # the same definition sent back made no version
    space.define("score", "event('A').count()", kind="computed_trait")
    got = stub.GetComputedTrait(admin_pb2.GetComputedTraitRequest(collection=USERS, key="score"),
                                metadata=meta).computed_trait
    got.description = "how many A"
    assert stub.UpdateComputedTrait(admin_pb2.UpdateComputedTraitRequest(computed_trait=got),
                                    metadata=meta).computed_trait.description == "how many A"


def test_get_update_and_unknown(space: Space) -> None:
    """Get returns what was saved; updates change only the masked fields; keys are immutable."""
    stub, meta = admin(space)
    space.define("vip", "trait('plan') = 'pro'")
    got = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="vip"), metadata=meta).audience
    assert (got.key, got.definition, got.enabled, got.id[:4]) == ("vip", "trait('plan') = 'pro'", True, "aud_")
    renamed = stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=USERS, key="vip", name="Very important", definition="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=meta).audience
    assert (renamed.name, renamed.definition) == ("Very important", "trait('plan') = 'pro'")
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="nope"), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetComputedTrait(admin_pb2.GetComputedTraitRequest(collection=USERS, key="vip"), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_disable_keeps_values_and_enable_backfills(space: Space) -> None:
    """A disabled audience is not evaluated and keeps its members; enabling it backfills again."""
    stub, meta = admin(space)
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("vip", "trait('plan') = 'pro'")
    space.tick()
    mask = field_mask_pb2.FieldMask(paths=["enabled"])
    off = stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=USERS, key="vip", enabled=False), update_mask=mask), metadata=meta)
    assert off.audience.status == admin_pb2.COMPUTATION_STATUS_DISABLED
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}})
    space.tick()
    assert space.member_ids("vip") == {"user_id:u1"}
    stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(collection=USERS, key="vip", enabled=True), update_mask=mask), metadata=meta)
    space.tick()
    assert space.member_ids("vip") == set()


def test_validate_reports_errors_cycles_and_summaries(space: Space) -> None:
    """Validation answers OK with valid=false and the error's position, a cycle's keys, or the summary."""
    stub, meta = admin(space)
    space.define("a", "trait('b') = true OR trait('plan') = 'x'")
    bad = stub.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
        definition="event('A').within(3 parsecs).count() > 1", kind=AUDIENCE, collection=USERS), metadata=meta)
    assert (bad.valid, bad.error.line, bad.error.column > 1) == (False, 1, True)
    assert bad.error.reason == "SYNTAX_ERROR"
    assert len(bad.error.caret_display.splitlines()) == 2
    typed = stub.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
        definition="event('A').count()", kind=AUDIENCE, collection=USERS), metadata=meta)
    assert (typed.valid, typed.error.reason) == (False, "TYPE_ERROR")
    cycle = stub.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
        definition="trait('a') = true", kind=AUDIENCE, collection=USERS, key="b"), metadata=meta)
    assert (cycle.valid, cycle.error.reason) == (False, "DEPENDENCY_CYCLE")
    assert set(cycle.error.cycle_keys) == {"a", "b"}
    good = stub.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
        definition="event('Order').where(property('total') > 5).within(7 days).count() >= 2", kind=AUDIENCE,
        collection=USERS), metadata=meta)
    assert good.valid
    assert list(good.summary.event_names) == ["Order"]
    assert good.summary.longest_lookback.ToSeconds() == 7 * 86400
    assert good.summary.primary_expression_count == 2  # event('Order') and property('total')


def test_a_key_too_long_and_a_taken_key_say_so(space: Space) -> None:
    """A snake_case key of 65 characters is refused for its length, not its form; a taken key
    names the kind holding it with its article."""
    stub, meta = admin(space)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateAudience(admin_pb2.CreateAudienceRequest(
            audience=admin_pb2.Audience(key="k" * 65, collection=USERS, definition="trait('a') = 1")), metadata=meta)
    assert (error_reason(caught.value), caught.value.details()) == (
        "KEY_INVALID", "key is 65 characters long; at most 64 are allowed")
    assert stub.CreateAudience(admin_pb2.CreateAudienceRequest(
        audience=admin_pb2.Audience(key="k" * 64, collection=USERS, definition="trait('a') = 1")), metadata=meta)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateComputedTrait(admin_pb2.CreateComputedTraitRequest(
            computed_trait=admin_pb2.ComputedTrait(key="k" * 64, collection=USERS, definition="trait('a')")),
            metadata=meta)
    assert caught.value.details() == f"users already have an audience with key {'k' * 64!r}"


@pytest.mark.parametrize("size", [-1, 101, 1000])
def test_preview_refuses_a_sample_size_out_of_range(space: Space, size: int) -> None:
    """`sample_size` is 1 to 100 (0: the default, 10), as the console's preview takes it."""
    stub, meta = admin(space)
    with pytest.raises(grpc.RpcError) as caught:
        stub.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
            definition="trait('a') = 1", kind=AUDIENCE, collection=USERS, sample_size=size), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error_reason(caught.value), field_violations(caught.value)[0][0]) == ("SAMPLE_SIZE_INVALID", "sample_size")


def test_preview_counts_without_saving(space: Space) -> None:
    """Preview evaluates an unsaved definition now, returns the count and samples, and saves nothing."""
    stub, meta = admin(space)
    space.send(*[{"type": "track", "userId": f"u{i}", "event": "Order", "properties": {"total": i}} for i in range(10)])
    reply = stub.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
        definition="event('Order').where(property('total') >= 7).count() >= 1", kind=AUDIENCE, collection=USERS,
        sample_size=2), metadata=meta)
    assert reply.count == 3
    assert len(reply.samples) == 2
    assert {e.type for s in reply.samples for e in s.profile.external_ids} == {"user_id"}
    assert [s.value_json for s in reply.samples] == ["true", "true"]
    summed = stub.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
        definition="event('Order').sum(property('total'))", kind=TRAIT, collection=USERS, sample_size=10),
        metadata=meta)
    # The JSON text keeps an integer an integer; the Value beside it is a double.
    assert sorted(s.value_json for s in summed.samples) == sorted(str(i) for i in range(10))
    assert {s.value.number_value for s in summed.samples} == set(map(float, range(10)))
    assert not stub.ListAudiences(admin_pb2.ListAudiencesRequest(), metadata=meta).audiences


def test_preview_of_a_user_definition_reading_an_account_audience(space: Space) -> None:
    """A user definition reading an account audience (through the user's accounts) previews what
    it would hold once saved (it counted 0: the preview did not work out what it reads)."""
    stub, meta = admin(space)
    space.send(*[{"type": "group", "userId": f"u{i}", "groupId": "acme", "traits": {"plan": "pro"}} for i in range(3)],
               {"type": "group", "userId": "u9", "groupId": "initech", "traits": {"plan": "free"}})
    space.define("pro_accounts", "trait('plan') = 'pro'", collection="accounts")
    space.tick()
    text = "trait('pro_accounts') = true"
    reply = stub.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(definition=text, kind=AUDIENCE, collection=USERS),
                                   metadata=meta)
    space.define("in_pro_accounts", text)
    space.tick()
    assert reply.count == len(space.member_ids("in_pro_accounts")) == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.integers(1, 7))
def test_member_pages_yield_every_member_once(space: Space, page: int) -> None:
    """Paging through an audience's members with any page size yields each member exactly once, in order."""
    stub, meta = admin(space)
    if not space.member_ids("all_buyers"):
        space.send(*[{"type": "track", "userId": f"m{i}", "event": "Buy"} for i in range(23)])
        space.define("all_buyers", "event('Buy').count() >= 1")
        space.tick()
    seen, token = [], ""
    while True:
        reply = stub.ListAudienceMembers(admin_pb2.ListAudienceMembersRequest(
            collection=USERS, key="all_buyers", page_size=page, page_token=token), metadata=meta)
        assert len(reply.members) <= page
        assert reply.total_size == 23
        seen += [m.profile.profile_id for m in reply.members]
        token = reply.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 23


def test_page_tokens_are_tamper_evident(space: Space) -> None:
    """A page token from another listing, altered, or made up is INVALID_ARGUMENT PAGE_TOKEN_INVALID."""
    stub, meta = admin(space)
    for i in range(3):
        space.define(f"a{i}", "trait('plan') = 'pro'")
    token = stub.ListAudiences(admin_pb2.ListAudiencesRequest(page_size=1), metadata=meta).next_page_token
    assert token
    bad_tokens = [token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], "garbage!", token + "x"]
    for bad in bad_tokens:
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListAudiences(admin_pb2.ListAudiencesRequest(page_size=1, page_token=bad), metadata=meta)
        assert error_reason(caught.value) == "PAGE_TOKEN_INVALID"
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListComputedTraits(admin_pb2.ListComputedTraitsRequest(page_size=1, page_token=token), metadata=meta)
    assert error_reason(caught.value) == "PAGE_TOKEN_INVALID"
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListAudiences(admin_pb2.ListAudiencesRequest(collection=ACCOUNTS, page_token=token), metadata=meta)
    assert error_reason(caught.value) == "PAGE_TOKEN_INVALID"


def test_set_clock_refuses_times_a_timestamp_cannot_hold(space: Space) -> None:
    """A clock time past year 9999, set or reached by advancing, is INVALID_ARGUMENT; the clock stays."""
    stub, meta = admin(space)
    before = space.now()
    for request in (admin_pb2.SetClockRequest(clock_time=timestamp_pb2.Timestamp(seconds=10**13)),
                    admin_pb2.SetClockRequest(advance=duration_pb2.Duration(seconds=10**13))):
        with pytest.raises(grpc.RpcError) as caught:
            stub.SetClock(request, metadata=meta)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "TIMESTAMP_INVALID"
    assert space.now() == before


def test_backfill_progress_never_passes_its_total(space: Space) -> None:
    """Profiles made after a backfill started, which it reaches too, grow its total: the progress
    shown while it runs never reads more done than in all. The tick that switches it live leaves
    nothing waiting, and says so (`backlog` false)."""
    space.send(*({"type": "identify", "userId": f"early{i}", "traits": {"plan": "pro"}} for i in range(30)))
    space.define("pro", "trait('plan') = 'pro'")
    space.send(*({"type": "identify", "userId": f"late{i}", "traits": {"plan": "pro"}} for i in range(10)))
    stub, meta = admin(space)
    seen = []
    for _ in range(5):
        tick = stub.RunTick(admin_pb2.RunTickRequest(), metadata=meta).ticks[0]
        audience = stub.GetAudience(admin_pb2.GetAudienceRequest(key="pro", collection=USERS), metadata=meta).audience
        seen.append((audience.backfill.profiles_done, audience.backfill.profiles_total))
        if audience.status == admin_pb2.COMPUTATION_STATUS_LIVE:
            break
    assert all(done <= total for done, total in seen), seen
    assert seen[-1] == (40, 40)
    assert not tick.backlog


def test_a_list_of_an_unknown_collection_is_refused(space: Space) -> None:
    """Unset lists both collections; a value naming neither is COLLECTION_INVALID, as in every other
    admin call, not a list of both."""
    stub, meta = admin(space)
    space.define("vip", "trait('plan') = 'pro'")
    assert [a.key for a in stub.ListAudiences(admin_pb2.ListAudiencesRequest(), metadata=meta).audiences] == ["vip"]
    for call in (lambda: stub.ListAudiences(admin_pb2.ListAudiencesRequest(collection=99), metadata=meta),
                 lambda: stub.ListComputedTraits(admin_pb2.ListComputedTraitsRequest(collection=99), metadata=meta)):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert error_reason(refused.value) == "COLLECTION_INVALID"


def test_a_definition_deleted_and_created_again_is_evaluated_by_its_new_text(space: Space) -> None:
    """A definition deleted while it backfills and created again under its key with another text
    gets an id no definition had: the evaluator, which keeps its compiled definitions while the
    ids, versions, states and statuses stay the same, evaluates the new text."""
    space.send({"type": "track", "userId": "u1", "event": "A"}, {"type": "track", "userId": "u2", "event": "B"})
    space.tick()
    space.define("again", "event('A').count() >= 1")
    conn = apsw.Connection(str(space.running.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        space.running.server.engine.evaluator.registry(conn)  # the compiled definitions kept, as any job does
    finally:
        conn.close()
    space.running.admin.DeleteAudience(admin_pb2.DeleteAudienceRequest(
        collection=common_pb2.COLLECTION_USERS, key="again", force=True), metadata=bearer(space.tokens["admin"]))
    space.define("again", "event('B').count() >= 1")
    space.tick()
    assert space.member_ids("again") == {"user_id:u2"}
    assert space.stored() == space.expected()
