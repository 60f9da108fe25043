"""PreviewDefinition against a saved key: the entering, exiting and staying profiles are the
difference of the two member sets computed from scratch, and nothing changes."""

from __future__ import annotations

import json
import os
from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Running, bearer, error_reason
from tests.evaluator.conftest import COLLECTION, Space, new_space
from tests.evaluator.oracle_profiles import evaluate_text, scratch
from tests.evaluator.test_exactness import (
    ACCOUNT_TEMPLATES,
    EVENTS,
    USER_TEMPLATES,
    USER_TRAIT_TEMPLATES,
    USERS,
    calls,
    definitions,
)

KINDS = {"audience": common_pb2.COMPUTATION_KIND_AUDIENCE, "computed_trait": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT}
SAMPLES = 2


def preview_diff(space: Space, key: str, text: str, kind: str, collection: str) -> admin_pb2.DefinitionDiff:
    """PreviewDefinition of `text` compared with the saved `key`."""
    reply = space.running.admin.PreviewDefinition(
        admin_pb2.PreviewDefinitionRequest(definition=text, kind=KINDS[kind], collection=COLLECTION[collection],
                                           sample_size=SAMPLES, compare_key=key),
        metadata=bearer(space.tokens["admin"]))
    assert reply.HasField("diff")
    return reply.diff


def _held(kind: str, value: Any) -> bool:
    return value is True if kind == "audience" else value is not None


@st.composite
def new_texts(draw: st.DrawFn, kind: str, collection: str) -> str:
    """Another definition of the same kind and collection (reading no other definition)."""
    templates = USER_TEMPLATES if kind == "audience" else USER_TRAIT_TEMPLATES
    if collection == "accounts":
        templates = ACCOUNT_TEMPLATES
    return draw(st.sampled_from(templates)).format(e=draw(st.sampled_from(EVENTS)), n=draw(st.integers(1, 6)))


@settings(
    max_examples=int(os.environ.get("DIFF_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(defs=definitions(), history=st.lists(calls(), min_size=2, max_size=10), data=st.data())
def test_diff_counts_are_the_difference_of_the_member_sets(
    shared_server: Running, defs: list[tuple[str, str, str, str]], history: list[dict[str, Any]], data: st.DataObject
) -> None:
    """For a random saved definition and a random new text, the counts and samples are those of the
    two sets evaluated from scratch, and the stored values are untouched."""
    space = new_space(shared_server)
    for key, kind, collection, text in defs:
        space.define(key, text, kind=kind, collection=collection)
    prelude = [{"type": "group", "userId": u, "groupId": g, "traits": {}} for u, g in zip(USERS, ("g1", "g2", "g1"),
                                                                                           strict=True)]
    now = space.now()
    space.send(*prelude, *[{**{k: v for k, v in c.items() if k != "offset"}, "at": now + c["offset"]}
                           for c in history])
    space.tick()
    key, kind, collection, _ = data.draw(st.sampled_from(defs))
    text = data.draw(new_texts(kind, collection))
    before = space.stored()
    found = preview_diff(space, key, text, kind, collection)
    assert space.stored() == before
    oracle = scratch(space._conn(), space.space_id, space.now())
    new = evaluate_text(oracle, text, kind, collection, space.now())
    old = {pid: oracle.values[(collection, key, pid)] for pid in new}
    entering = {p for p in new if _held(kind, new[p]) and not _held(kind, old[p])}
    exiting = {p for p in new if _held(kind, old[p]) and not _held(kind, new[p])}
    staying = {p for p in new if _held(kind, old[p]) and _held(kind, new[p])}
    changed = {p for p in staying if json.dumps(old[p]) != json.dumps(new[p])}
    assert (found.entering_count, found.exiting_count, found.staying_count, found.changed_count) == (
        len(entering), len(exiting), len(staying), len(changed))
    ids = dict(space._conn().execute("SELECT public_id, profile_id FROM profiles"))
    for samples, wanted in ((found.entering_samples, entering), (found.exiting_samples, exiting),
                            (found.staying_samples, staying)):
        assert len(samples) == min(SAMPLES, len(wanted))
        assert {ids[s.profile.profile_id] for s in samples} <= wanted
        for s in samples:  # the values as JSON text are the oracle's, integers kept as integers
            pid = ids[s.profile.profile_id]
            assert json.loads(s.old_value_json) == old[pid]
            assert json.loads(s.new_value_json) == new[pid]
            assert type(json.loads(s.new_value_json)) is type(new[pid])


def test_a_diff_with_a_cycle_or_another_kind_is_refused(space: Space) -> None:
    """A new text that would read the saved key is a cycle; a key of another kind is NOT_FOUND."""
    space.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}})
    space.define("pros", "trait('plan') = 'pro'")
    space.tick()
    with pytest.raises(grpc.RpcError) as cycle:
        preview_diff(space, "pros", "trait('pros') = true", "audience", "users")
    assert error_reason(cycle.value) == "DEPENDENCY_CYCLE"
    with pytest.raises(grpc.RpcError) as other_kind:
        preview_diff(space, "pros", "trait('plan')", "computed_trait", "users")
    assert other_kind.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_diff_with_compare_options_uses_them(space: Space) -> None:
    """Editing an audience's options alone (anonymous users in): without `compare_options` the
    diff uses the saved ones and nothing moves; with them the anonymous buyer would enter, as the
    preview of the same options counts; bad options are refused as an update's are."""
    space.send({"type": "track", "userId": "ada", "event": "Order"},
               {"type": "track", "anonymousId": "anon-1", "event": "Order"})
    space.define("buyers", "event('Order').count() >= 1")
    space.tick()
    text = "event('Order').count() >= 1"
    meta = bearer(space.tokens["admin"])

    def diff(**extra: Any) -> admin_pb2.PreviewDefinitionResponse:
        return space.running.admin.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
            definition=text, kind=KINDS["audience"], collection=COLLECTION["users"], compare_key="buyers",
            **extra), metadata=meta)

    saved = diff().diff
    assert (saved.entering_count, saved.exiting_count, saved.staying_count) == (0, 0, 1)
    edited = diff(include_anonymous_users=True,
                  compare_options=admin_pb2.ComputationOptions(include_anonymous_users=True))
    assert (edited.diff.entering_count, edited.diff.exiting_count, edited.diff.staying_count) == (1, 0, 1)
    assert edited.count == 2
    assert [e.type for e in edited.diff.entering_samples[0].profile.external_ids] == ["anonymous_id"]
    with pytest.raises(grpc.RpcError) as bad:
        diff(compare_options=admin_pb2.ComputationOptions(backfill_days=-1))
    assert (bad.value.code(), error_reason(bad.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "OPTIONS_INVALID")
