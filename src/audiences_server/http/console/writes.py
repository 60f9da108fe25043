"""The console's changes (admin tokens only): the engine methods behind Create/Update/DeleteAudience
(and their computed-trait twins), a rollback (a version's text and options saved as an update, as
the client's `rollback_definition` does) and RedriveDeadLetters; each leaves an audit entry with
the token's label, as the gRPC RPCs do."""

from __future__ import annotations

from typing import Any

from audiences_server.core.numbers import dead_letter_number
from audiences_server.engine.computations import Spec, etag_of
from audiences_server.engine.engine import Engine
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.http.console import views
from audiences_server.http.console.reads import collection_of
from audiences_server.store.spaces import Grant

OPTION_TYPES: dict[str, type] = {"include_anonymous_users": bool, "include_historical_data": bool,
                                 "backfill_days": int}
# The gRPC API's version numbers are int32s: a rollback asks for one of those.
INT32_MAX = 2**31 - 1


def checked_options(given: dict[str, Any]) -> dict[str, Any]:
    """The options given, each checked to be one the API has, of its type (no defaults added)."""
    for name, value in given.items():
        kind = OPTION_TYPES.get(name)
        if kind is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidArgument(f"option `{name}` is unknown or of the wrong type", reason="OPTIONS_INVALID",
                                  violations=[FieldViolation(f"options.{name}", "unknown or wrong type")])
    # Their ranges are the engine's to check, as for the gRPC API (`computations.check_fields`).
    return dict(given)


def options(given: dict[str, Any]) -> dict[str, Any]:
    """A definition's options as stored, each checked (the defaults of the gRPC API for the rest)."""
    return {"include_anonymous_users": False, "include_historical_data": True, "backfill_days": 0,
            **checked_options(given)}


def _kind(engine: Engine, space_id: int, collection: str, key: str) -> str:
    """The kind of the saved definition `key` (NotFound when there is none)."""
    for kind in ("audience", "computed_trait"):
        if any(r.key == key for r in engine.computations.of_kind(space_id, kind, collection)):
            return kind
    engine.computations.get(space_id, "audience", collection, key)  # raises NotFound
    return "audience"


def create(engine: Engine, grant: Grant, spec: Spec) -> dict[str, Any]:
    """Saves a new definition; its audit entry names its version, as `CreateAudience`'s does."""
    collection_of(spec.collection)
    row = engine.computations.create(grant.space_id, spec, grant.label)
    engine.versions.record(grant.space_id, grant.label, "create", row.kind, row.key, {"version": row.version})
    return {"computation": views.computation(row)}


def update(engine: Engine, grant: Grant, collection: str, key: str, changes: dict[str, Any],
           etag: str | None = None) -> dict[str, Any]:
    """Changes a definition: its text, name, description, options, or the switch alone (enable,
    disable). With `etag` (the one its GET answered), refused with EDIT_CONFLICT when it was saved
    meanwhile. The audit entry names the fields whose values changed; a change of nothing leaves none."""
    collection = collection_of(collection)
    kind = _kind(engine, grant.space_id, collection, key)
    before = engine.computations.get(grant.space_id, kind, collection, key)
    row = engine.computations.update(grant.space_id, kind, collection, key, changes, grant.label, etag)
    changed = sorted(name for name in changes if getattr(row, name) != getattr(before, name))
    if changed:
        action = ("enable" if row.enabled else "disable") if changed == ["enabled"] else "update"
        engine.versions.record(grant.space_id, grant.label, action, kind, key,
                               {"fields": changed, "version": row.version})
    return {"computation": views.computation(row), "etag": etag_of(row), "changed": changed}


def delete(engine: Engine, grant: Grant, collection: str, key: str) -> dict[str, Any]:
    """Deletes a definition no other reads (refused with the readers' keys otherwise)."""
    collection = collection_of(collection)
    kind = _kind(engine, grant.space_id, collection, key)
    engine.computations.delete(grant.space_id, kind, collection, key)
    engine.versions.record(grant.space_id, grant.label, "delete", kind, key, {})
    return {"deleted": {"kind": kind, "collection": collection, "key": key}}


def rollback(engine: Engine, grant: Grant, collection: str, key: str, number: int) -> dict[str, Any]:
    """Saves version `number`'s text and options as the definition's newest version; a version
    with the current text and options changes nothing (no version, no backfill, no audit entry),
    and the answer's `changed` is then empty."""
    collection = collection_of(collection)
    row, found = engine.versions.version(grant.space_id, collection, key, number)
    if found.definition == row.definition and options(found.options) == options(row.options):
        return {"computation": views.computation(row), "etag": etag_of(row), "changed": []}
    return update(engine, grant, collection, key, {"definition": found.definition, "options": options(found.options)})


def redrive(engine: Engine, grant: Grant, destination_key: str, ids: list[Any]) -> dict[str, Any]:
    """Puts dead letters (all of the destination's when `ids` is empty) back in their queue."""
    numbers = []
    for text in ids:
        number = dead_letter_number(text) if isinstance(text, str) else None
        if number is None:
            raise InvalidArgument(f"{text!r} is not a dead letter id", reason="DEAD_LETTER_ID_INVALID",
                                  violations=[FieldViolation("ids", "not a dead letter id")])
        numbers.append(number)
    count = engine.sync.redrive(grant.space_id, destination_key, None, numbers)
    engine.versions.record(grant.space_id, grant.label, "redrive", "dead_letters", destination_key,
                           {"count": count})
    return {"redriven": count}

