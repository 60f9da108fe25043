"""Audiences and computed traits: define, validate, preview, edit, delete (docs/evaluator.md)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import apsw

from audiences_server.core import ql
from audiences_server.engine.clock import Clock
from audiences_server.engine.diff import Diff, diff
from audiences_server.engine.evaluator import Evaluation, Evaluator
from audiences_server.engine.registry import (
    Compiled,
    Definition,
    Registry,
    definition,
    dependencies,
    find_cycle,
    reads_itself,
)
from audiences_server.engine.retention import refuse_past_retention
from audiences_server.errors import (
    Aborted,
    AlreadyExists,
    DefinitionProblem,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from audiences_server.store import evaluation as store
from audiences_server.store import history as history_store
from audiences_server.store import sync as sync_store
from audiences_server.store import versions as versions_store
from audiences_server.store.db import Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.writer import Writer

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
MAX_KEY_CHARS = 64
KINDS = ("audience", "computed_trait")
COLLECTIONS = ("users", "accounts")
_PREFIX = {"audience": "aud_", "computed_trait": "trt_"}
EDITABLE = frozenset({"name", "description", "definition", "enabled", "options"})
# Fixed once created; every other field a caller may name (status, size, …) is the server's output.
IMMUTABLE = frozenset({"key", "kind", "collection"})
# Limits of the texts beside a definition: a list of definitions answers in one message (gRPC's
# 4 MiB by default), so a description of megabytes would make the list unreadable.
MAX_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 4_096
# The API's field is an int32; the console's JSON takes any integer, and a number of days past
# this would move a definition's event floor beyond what SQLite's integers hold.
MAX_BACKFILL_DAYS = 2**31 - 1
# Profiles a preview or diff returns per outcome, as the API's contract says (the count is whole).
MAX_SAMPLE_SIZE = 100


@dataclass
class Spec:
    """A definition as a caller gives it."""

    kind: str
    collection: str
    key: str
    name: str = ""
    description: str = ""
    definition: str = ""
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def etag_of(row: ComputationRow) -> str:
    """A content hash of a definition's editable fields, for an edit to say which state it was made
    on: two editors who loaded the same state send the same etag, and the second save finds it
    stale. A hash of the content rather than the version number, because a rename or a switch
    changes no version yet is what a stale form would silently undo."""
    fields = {name: getattr(row, name) for name in sorted(EDITABLE)}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def definition_reason(error: ql.QueryError) -> str:
    """The contract's reason for a definition error: where it failed, and the common type errors."""
    if error.kind == "syntax":
        return "SYNTAX_ERROR"
    if error.kind == "limit":
        return "DEFINITION_TOO_LARGE"
    text = error.message.lower()
    if "primary expressions" in text:
        return "TOO_MANY_EXPRESSIONS"
    if "account" in text and ("any" in text or "all" in text):
        return "COLLECTION_MISMATCH"
    return "TYPE_ERROR"


def definition_problem(error: ql.QueryError) -> DefinitionProblem:
    """Where and why a definition is wrong, as the `DefinitionError` detail reports it."""
    return DefinitionProblem(
        reason=definition_reason(error), message=error.message, line=error.line, column=error.column,
        offending_text=error.text, expected=tuple(error.expected),
        caret_display="\n".join(error.caret().splitlines()[1:]),
    )


def definition_error(error: ql.QueryError) -> InvalidArgument:
    """The API error for a definition that does not parse or type-check."""
    return InvalidArgument(
        error.caret(),
        reason="INVALID_DEFINITION",
        definition=definition_problem(error),
        violations=[FieldViolation("definition", error.caret())],
        metadata={
            "line": str(error.line),
            "column": str(error.column),
            "offending_text": error.text,
            "expected": ", ".join(error.expected),
            "kind": error.kind,
            "message": error.message,
        },
    )


def check(text: str, kind: str, collection: str) -> ql.CheckedDefinition:
    """Parses and checks a definition, as an API error when it is wrong."""
    if kind not in KINDS:
        raise InvalidArgument(
            f"kind must be one of {', '.join(KINDS)}",
            reason="KIND_INVALID",
            violations=[FieldViolation("kind", "unknown kind")],
        )
    if collection not in COLLECTIONS:
        raise InvalidArgument(
            "collection must be users or accounts",
            reason="COLLECTION_INVALID",
            violations=[FieldViolation("collection", "unknown collection")],
        )
    try:
        return ql.parse_and_check(text, kind=kind, collection=collection)  # type: ignore[arg-type]
    except ql.QueryError as error:
        raise definition_error(error) from None


def check_fields(fields: Mapping[str, Any]) -> None:
    """Refuses a name, description or option beyond its limit (`fields`: those of a `Spec`, all
    or some)."""
    for field_name, limit in (("name", MAX_NAME_CHARS), ("description", MAX_DESCRIPTION_CHARS)):
        text = fields.get(field_name)
        if text is not None and len(text) > limit:
            raise InvalidArgument(
                f"`{field_name}` is {len(text):,} characters long; at most {limit:,} are kept",
                reason="FIELD_TOO_LONG",
                violations=[FieldViolation(field_name, f"longer than {limit:,} characters")],
            )
    days = (fields.get("options") or {}).get("backfill_days", 0)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_BACKFILL_DAYS:
        raise InvalidArgument(
            f"`options.backfill_days` must be a whole number of days from 0 to {MAX_BACKFILL_DAYS:,}",
            reason="OPTIONS_INVALID",
            violations=[FieldViolation("options.backfill_days", "out of range")],
        )


def unsaved(spec: Spec, space_id: int = 0) -> Compiled:
    """A definition not saved yet as the evaluator would see it (to find what it would read),
    checked as an API error when it is wrong. Its options are left out: what a definition
    reads does not depend on them."""
    check(spec.definition, spec.kind, spec.collection)
    return Compiled(-1, space_id, spec.key, definition(spec.definition, spec.kind, spec.collection))


def cycle_through(rows: list[ComputationRow], candidate: Spec) -> list[str] | None:
    """The keys on a dependency cycle that saving `candidate` would close, if any: starting and
    ending with the same key, so a definition reading its own key is `[key, key]`."""
    comps = [Compiled.of_row(r) for r in rows if not (r.collection == candidate.collection and r.key == candidate.key)]
    compiled = unsaved(candidate, rows[0].space_id if rows else 0)
    if reads_itself(compiled):
        return [candidate.key, candidate.key]
    return find_cycle([*comps, compiled])


class Computations:
    """The admin use cases for audiences and computed traits."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock, evaluator: Evaluator) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._evaluator = evaluator

    def create(self, space_id: int, spec: Spec, actor: str = "") -> ComputationRow:
        """Saves a new definition (its version 1, made by `actor`) and starts its backfill."""
        if len(spec.key) > MAX_KEY_CHARS:
            raise InvalidArgument(
                f"key is {len(spec.key)} characters long; at most {MAX_KEY_CHARS} are allowed",
                reason="KEY_INVALID",
                violations=[FieldViolation("key", f"longer than {MAX_KEY_CHARS} characters")],
            )
        if not KEY_PATTERN.match(spec.key):
            raise InvalidArgument(
                f"key {spec.key!r} must be snake_case: a-z, 0-9 and _, starting with a letter",
                reason="KEY_INVALID",
                violations=[FieldViolation("key", "not snake_case")],
            )
        check_fields(vars(spec))
        check(spec.definition, spec.kind, spec.collection)
        row = self._writer.run(lambda conn: self._insert(conn, space_id, spec, actor), keeps_events=True)
        self._evaluator.wake()
        return row

    def _insert(self, conn: apsw.Connection, space_id: int, spec: Spec, actor: str) -> ComputationRow:
        existing = store.computation(conn, space_id, spec.collection, spec.key)
        if existing is not None:
            raise AlreadyExists(
                f"{spec.collection} already have {_article(existing.kind)} with key {spec.key!r}",
                reason="KEY_EXISTS",
            )
        self._refuse_cycle(conn, space_id, spec)
        if spec.enabled:
            refuse_past_retention(conn, space_id, spec.kind, spec.collection, spec.definition)
        now = self._clock.now_ms()
        cid = store.insert_computation(
            conn, space_id, spec.kind, spec.collection, spec.key, _PREFIX[spec.kind] + secrets.token_hex(10),
            spec.name or spec.key, spec.description, spec.definition, spec.enabled, spec.options, now,
        )
        versions_store.add_version(conn, cid, spec.definition, spec.options, now, actor)
        if spec.enabled:
            store.start_backfill(conn, cid, store.count_profiles(conn, space_id, spec.collection), new=True)
        row = self._row(conn, space_id, spec.collection, spec.key)
        if spec.enabled:
            # The definitions already reading its key read the custom trait of that name until
            # now: what they see changes for every profile, members or not (a non-member's
            # `false`, no value where the custom trait had one), which the new values' touches
            # alone would not tell them.
            store.clear_due(conn, _restart_readers(conn, row))
        return row

    def _refuse_cycle(self, conn: apsw.Connection, space_id: int, spec: Spec) -> None:
        cycle = cycle_through(store.computations(conn, space_id), spec)
        if cycle:
            raise InvalidArgument(
                "definitions would read each other in a cycle: " + " -> ".join(cycle),
                reason="DEPENDENCY_CYCLE",
                metadata={"cycle_keys": ",".join(cycle)},
                definition=DefinitionProblem("DEPENDENCY_CYCLE", "definitions would read each other in a cycle: "
                                             + " -> ".join(cycle), cycle_keys=tuple(cycle)),
                violations=[FieldViolation("definition", "closes a dependency cycle")],
            )

    def get(self, space_id: int, kind: str, collection: str, key: str) -> ComputationRow:
        """One definition by key."""
        return self._row(self._readers.get(), space_id, collection, key, kind)

    def _row(
        self, conn: apsw.Connection, space_id: int, collection: str, key: str, kind: str | None = None
    ) -> ComputationRow:
        row = store.computation(conn, space_id, collection, key)
        if row is None or (kind is not None and row.kind != kind):
            noun = (kind or "definition").replace("_", " ")
            raise NotFound(f"{noun} {key!r} not found in {collection}", reason="NOT_FOUND")
        return row

    def of_kind(self, space_id: int, kind: str, collection: str | None) -> list[ComputationRow]:
        """The space's definitions of one kind, oldest first."""
        return [
            r
            for r in store.computations(self._readers.get(), space_id)
            if r.kind == kind and (collection is None or r.collection == collection)
        ]

    def update(self, space_id: int, kind: str, collection: str, key: str, changes: Mapping[str, Any],
               actor: str = "", expected: str | None = None) -> ComputationRow:
        """Applies the given changes; a new definition or an enable restarts the backfill. A new
        definition text or new options make a new version, made by `actor`.

        With `expected` (the `etag_of` the definition as the caller loaded it), the update is
        refused (`Aborted`, EDIT_CONFLICT) when the stored definition has changed since, so an
        editor working from a stale copy does not silently undo another's save.
        """
        unknown = set(changes) - EDITABLE
        if unknown:
            fixed, output = sorted(unknown & IMMUTABLE), sorted(unknown - IMMUTABLE)
            told = ([f"{', '.join(fixed)} {'is' if len(fixed) == 1 else 'are'} immutable (set on create)"]
                    if fixed else []) + ([f"{', '.join(output)} {'is' if len(output) == 1 else 'are'} output only"
                                          " (set by the server)"] if output else [])
            raise InvalidArgument(
                f"cannot update {', '.join(sorted(unknown))}: {'; '.join(told)}; only"
                f" {', '.join(sorted(EDITABLE))} can be updated",
                reason="FIELD_IMMUTABLE",
                violations=[FieldViolation(f, "immutable" if f in IMMUTABLE else "output only")
                            for f in sorted(unknown)],
            )
        current = self.get(space_id, kind, collection, key)
        # A name or description stored before its limit existed may come back unchanged (a form
        # or a client sending every field): only what changes is held to the limits.
        check_fields({name: value for name, value in changes.items()
                      if name not in ("name", "description") or value != getattr(current, name)})
        if "definition" in changes:
            check(changes["definition"], kind, collection)
        row = self._writer.run(lambda conn: self._apply_update(conn, self._unchanged(conn, current, expected),
                                                               changes, actor), keeps_events=True)
        self._evaluator.wake()
        return row

    def _unchanged(self, conn: apsw.Connection, current: ComputationRow, expected: str | None) -> ComputationRow:
        """The definition as the update's transaction reads it, refused when `expected` is not its
        etag: read in the transaction, so a save landing after the caller's read is caught too."""
        if expected is None:
            return current
        stored = self._row(conn, current.space_id, current.collection, current.key)
        if etag_of(stored) != expected:
            raise Aborted(
                f"{current.key!r} was changed since it was loaded (another save came first); load it again and"
                " make the edit on what is stored now",
                reason="EDIT_CONFLICT",
                metadata={"etag": etag_of(stored)},
            )
        return stored

    def _apply_update(
        self, conn: apsw.Connection, current: ComputationRow, changes: Mapping[str, Any], actor: str = ""
    ) -> ComputationRow:
        merged = {name: changes.get(name, getattr(current, name)) for name in EDITABLE}
        # Options named alone (`options.backfill_days`) keep the others' stored values.
        merged["options"] = {**current.options, **merged["options"]}
        spec = Spec(current.kind, current.collection, current.key, **merged)
        if "definition" in changes:
            self._refuse_cycle(conn, current.space_id, spec)
        if spec.enabled:
            refuse_past_retention(conn, current.space_id, spec.kind, spec.collection, spec.definition)
        redo = (spec.definition != current.definition and spec.enabled) or (spec.enabled and not current.enabled)
        now = self._clock.now_ms()
        edited = spec.definition != current.definition or spec.options != current.options
        store.update_computation(
            conn, current.computation_id, spec.name, spec.description, spec.definition, spec.enabled, spec.options,
            now, edited, current.status if spec.enabled else "DISABLED",
        )
        if edited:
            versions_store.add_version(conn, current.computation_id, spec.definition, spec.options, now, actor)
        restarted = []
        if redo or (spec.enabled and spec.options != current.options):
            total = store.count_profiles(conn, current.space_id, current.collection)
            store.start_backfill(conn, current.computation_id, total)
            restarted.append(current.computation_id)
        if spec.enabled != current.enabled:
            # What the definitions reading it see changes (its values, or the custom trait of the
            # same name): they are computed again.
            restarted += _restart_readers(conn, current)
        store.clear_due(conn, restarted)
        return self._row(conn, current.space_id, current.collection, current.key)

    def delete(self, space_id: int, kind: str, collection: str, key: str, force: bool = False) -> bool:
        """Deletes a definition that no other reads, with its values (no exits are sent).

        One still connected to destinations is refused unless `force`, which removes its
        connections with their queues. Returns whether connections were removed (the sync
        service then reloads them).
        """
        current = self.get(space_id, kind, collection, key)
        removed = bool(self._writer.run(lambda conn: self._delete(conn, current, force), keeps_events=True))
        self._evaluator.wake()
        return removed

    def _delete(self, conn: apsw.Connection, current: ComputationRow, force: bool) -> int:
        readers = [
            r.key
            for r in store.computations(conn, current.space_id)
            if r.computation_id != current.computation_id and _reads(r, current)
        ]
        if readers:
            raise FailedPrecondition(
                f"{current.key!r} is read by {', '.join(sorted(readers))}; delete or edit those first",
                reason="IN_USE",
                metadata={"used_by": ",".join(sorted(readers))},
            )
        connected = sync_store.connections_of_computation(conn, current.computation_id)
        if connected and not force:
            keys = ", ".join(key for _, key in connected)
            raise FailedPrecondition(
                f"{current.key!r} is connected to {keys}; disconnect it first, or delete it with force"
                " (which removes those connections and their queues, sending no exits)",
                reason="CONNECTED",
                metadata={"destinations": ",".join(key for _, key in connected)},
            )
        for connection_id, _ in connected:
            sync_store.delete_connection(conn, connection_id)
        store.delete_computation(conn, current.computation_id)
        history_store.forget(conn, current.computation_id)
        versions_store.forget_versions(conn, current.computation_id)
        return len(connected)

    def members(
        self, space_id: int, collection: str, key: str, after: int, limit: int
    ) -> tuple[list[tuple[int, int]], int]:
        """An audience's members after a profile id, with their entry times, and its size."""
        audience = self.get(space_id, "audience", collection, key)
        return store.members(self._readers.get(), audience.computation_id, after, limit), audience.size

    def cycle_for(self, space_id: int, kind: str, collection: str, key: str, definition: str) -> list[str] | None:
        """The cycle saving `definition` under `key` would close (None without a key: nothing reads it yet)."""
        if not key:
            return None
        return cycle_through(
            store.computations(self._readers.get(), space_id), Spec(kind, collection, key, definition=definition)
        )

    def diff(self, space_id: int, text: str, kind: str, collection: str, key: str, sample_size: int,
             options: Mapping[str, Any] | None = None) -> Diff:
        """Evaluates `text` now as the new definition of the saved `key` over every profile, against
        what is stored for it; changes nothing (see engine/diff.py). `options` are the edited
        options, those named replacing the stored ones, as an update would save them."""
        checked = check(text, kind, collection)
        check_fields({"options": options or {}})
        saved = self.get(space_id, kind, collection, key)
        now = self._clock.now_ms()
        with self._readers.snapshot() as conn:
            self._refuse_cycle(conn, space_id, Spec(kind, collection, key, definition=text))
            return diff(conn, saved, checked, sample_size, now, options)

    def preview(
        self, space_id: int, text: str, kind: str, collection: str, include_anonymous: bool, sample_size: int,
        options: Mapping[str, Any] | None = None, like: str = "",
    ) -> tuple[int, list[tuple[int, Any]], int]:
        """Evaluates an unsaved definition now over every profile, changing nothing: over all
        history, or, with `options`, as a definition with them would be evaluated (created now,
        or, with `like`, the saved definition of that key, its stored options under these, as
        `diff` evaluates an edit).

        Returns:
            How many profiles match (audiences) or have a value (computed traits), a sample of
            (profile id, value), and the evaluation time.
        """
        checked = check(text, kind, collection)
        now = self._clock.now_ms()
        if options is None:
            made = Definition(checked, include_anonymous=include_anonymous)
        else:
            check_fields({"options": options})
            saved = self.get(space_id, kind, collection, like) if like else None
            made = definition(text, kind, collection, {**(saved.options if saved else {}), **options},
                              saved.created_ms if saved else now)
        with self._readers.snapshot() as conn:
            return (*_preview(conn, space_id, made, sample_size, now), now)


def _restart_readers(conn: apsw.Connection, target: ComputationRow) -> list[int]:
    """Starts again the backfill of the enabled definitions reading `target`, whose appearance or
    switch changes what they see; returns their ids."""
    restarted = []
    for reader in store.computations(conn, target.space_id):
        if reader.enabled and reader.computation_id != target.computation_id and _reads(reader, target):
            store.start_backfill(conn, reader.computation_id, store.count_profiles(conn, reader.space_id,
                                                                                    reader.collection))
            restarted.append(reader.computation_id)
    return restarted


def _article(kind: str) -> str:
    """A kind as a noun with its article: `an audience`, `a computed trait`."""
    noun = kind.replace("_", " ")
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _reads(reader: ComputationRow, target: ComputationRow) -> bool:
    comps = [Compiled.of_row(reader), Compiled.of_row(target)]
    find_cycle(comps)  # fills in the dependencies
    return target.computation_id in comps[0].deps


def _preview(
    conn: apsw.Connection,
    space_id: int,
    made: Definition,
    sample_size: int,
    now: int,
) -> tuple[int, list[tuple[int, Any]]]:
    registry = Registry(store.computations(conn, space_id))
    comp = Compiled(0, space_id, "", made)
    dependencies([*registry.by_id.values(), comp])  # account audiences a user definition reads, say
    count, after = 0, 0
    samples: list[tuple[int, Any]] = []
    while True:
        pids = store.profiles_after(conn, space_id, made.checked.collection, after, 1000)
        if not pids:
            return count, samples
        after = pids[-1]
        # An evaluation per chunk: what one holds (the custom traits it read, say) stays a chunk's.
        for pid, value in Evaluation(conn, registry, now).values(comp, pids):
            if value is None or value is False:
                continue
            count += 1
            if len(samples) < sample_size:
                samples.append((pid, value))
