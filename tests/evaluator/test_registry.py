"""The registry's definitions: made once per text and options, never from a fabricated row."""

from __future__ import annotations

import dataclasses

import pytest

from audiences_server.core import ql
from audiences_server.engine.computations import Spec, cycle_through, unsaved
from audiences_server.engine.registry import Compiled, Registry, definition
from audiences_server.errors import InvalidArgument
from audiences_server.store.evaluation import ComputationRow

DAY = 86_400_000
CREATED = 1_700_000_000_000


def row(computation_id: int, key: str, text: str, kind: str = "audience", collection: str = "users",
        status: str = "LIVE", **options: object) -> ComputationRow:
    return ComputationRow(
        computation_id=computation_id, space_id=1, kind=kind, collection=collection, key=key, public_id=f"aud_{key}",
        name=key, description="", definition=text, enabled=True, options=dict(options), status=status, error="",
        size=0, progress_done=0, progress_total=0, created_ms=CREATED, updated_ms=CREATED, last_computed_ms=None,
        backfill_cursor=0, version=1,
    )


def test_a_rebuilt_registry_reuses_each_definition_and_its_plan() -> None:
    rows = [row(1, "buyers", "event('Order Completed').count() >= 1"),
            row(2, "loyal", "trait('buyers') = true AND event('Order Completed').within(30 days).count() >= 3")]
    first = Registry(rows)
    plans = {cid: comp.plan for cid, comp in first.by_id.items()}
    # One definition going live changes the registry's version: it is rebuilt.
    second = Registry([dataclasses.replace(rows[0], status="BACKFILLING"), rows[1]])
    for cid, comp in second.by_id.items():
        assert comp.definition is first.by_id[cid].definition
        assert comp.plan is plans[cid] is not None
    assert second.by_id[1].status == "BACKFILLING"
    assert second.by_id[2].deps == [1]


def test_options_that_change_what_counts_make_a_different_definition() -> None:
    text = "event('Order Completed').count() >= 1"
    everything = definition(text, "audience", "users")
    assert everything.event_floor_ms is None
    assert not everything.include_anonymous
    from_creation = definition(text, "audience", "users", {"include_historical_data": False}, CREATED)
    assert from_creation.event_floor_ms == CREATED
    week = definition(text, "audience", "users", {"backfill_days": 7}, CREATED)
    assert week.event_floor_ms == CREATED - 7 * DAY
    anonymous = definition(text, "audience", "users", {"include_anonymous_users": True})
    assert anonymous.include_anonymous
    assert len({id(d) for d in (everything, from_creation, week, anonymous)}) == 4
    assert everything.checked is from_creation.checked  # parsed once
    assert definition(text, "audience", "users") is everything


def test_a_stored_row_and_its_compiled_entry_agree() -> None:
    stored = row(7, "big_spend", "event('Order Completed').sum('revenue')", kind="computed_trait",
                 backfill_days=30)
    comp = Compiled.of_row(stored)
    assert (comp.id, comp.space_id, comp.key, comp.kind, comp.collection) == (
        7, 1, "big_spend", "computed_trait", "users")
    assert comp.event_floor_ms == CREATED - 30 * DAY
    assert comp.summary.events == frozenset({"Order Completed"})


def test_a_definition_not_saved_yet_needs_no_row() -> None:
    rows = [row(1, "a", "trait('b') = true")]
    closing = Spec(kind="audience", collection="users", key="b", definition="trait('a') = true")
    assert cycle_through(rows, closing) == ["a", "b", "a"]
    candidate = unsaved(closing, space_id=1)
    assert (candidate.id, candidate.space_id, candidate.key) == (-1, 1, "b")
    with pytest.raises(InvalidArgument):
        unsaved(dataclasses.replace(closing, definition="trait('a') ="))


def test_a_text_that_does_not_check_raises_the_query_error() -> None:
    with pytest.raises(ql.QueryError):
        definition("event('A').count()", "audience", "users")  # an audience needs a condition
