"""AudienceAdminService RPCs for audiences, computed traits, validation, preview and the clock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import grpc
from audiences.v1 import admin_pb2, common_pb2
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from audiences_server.api.audit import audited, definition_change, definition_update
from audiences_server.api.context import caller_label, space_id
from audiences_server.core import ql
from audiences_server.engine.computations import EDITABLE, MAX_SAMPLE_SIZE, Spec, definition_reason, etag_of
from audiences_server.engine.engine import MAX_TIMESTAMP_MS, Engine
from audiences_server.engine.evaluator import TickReport
from audiences_server.engine.page_tokens import page_size
from audiences_server.errors import FieldViolation, InvalidArgument, Unavailable
from audiences_server.store.evaluation import ComputationRow

COLLECTIONS: dict[int, str] = {common_pb2.COLLECTION_USERS: "users", common_pb2.COLLECTION_ACCOUNTS: "accounts"}
COLLECTION_ENUM: dict[str, Any] = {v: k for k, v in COLLECTIONS.items()}
KINDS: dict[int, str] = {
    common_pb2.COMPUTATION_KIND_AUDIENCE: "audience",
    common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT: "computed_trait",
}
STATUS = {
    "BACKFILLING": admin_pb2.COMPUTATION_STATUS_BACKFILLING,
    "LIVE": admin_pb2.COMPUTATION_STATUS_LIVE,
    "DISABLED": admin_pb2.COMPUTATION_STATUS_DISABLED,
    "FAILED": admin_pb2.COMPUTATION_STATUS_FAILED,
}


def collection_of(value: int, field: str = "collection") -> str:
    """A required collection enum as its name."""
    if value not in COLLECTIONS:
        raise InvalidArgument(
            f"`{field}` must be COLLECTION_USERS or COLLECTION_ACCOUNTS",
            reason="COLLECTION_INVALID",
            violations=[FieldViolation(field, "required")],
        )
    return COLLECTIONS[value]


def kind_of(value: int) -> str:
    """A required computation kind enum as its name."""
    if value not in KINDS:
        raise InvalidArgument(
            "`kind` must be COMPUTATION_KIND_AUDIENCE or COMPUTATION_KIND_COMPUTED_TRAIT",
            reason="KIND_INVALID",
            violations=[FieldViolation("kind", "required")],
        )
    return KINDS[value]


def time_ms(message: Any, field: str) -> int | None:
    """A Timestamp field in milliseconds, None when unset.

    Raises:
        InvalidArgument: the timestamp is outside what a Timestamp may hold (years 1 to 9999).
    """
    if not message.HasField(field):
        return None
    try:
        return int(getattr(message, field).ToMilliseconds())
    except ValueError as bad:
        raise InvalidArgument(f"`{field}` is not a valid timestamp: {bad}", reason="TIMESTAMP_INVALID",
                              violations=[FieldViolation(field, "out of range")]) from None


def timestamp(ms: int | None) -> timestamp_pb2.Timestamp | None:
    """Milliseconds since the epoch as a Timestamp (None stays None)."""
    if ms is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromMilliseconds(ms)
    return out


def summary_of(definition: str, kind: str, collection: str) -> ql.Summary:
    """The dependency summary of a definition already known to be valid."""
    return ql.parse_and_check(definition, kind=cast(ql.Kind, kind), collection=cast(ql.Collection, collection)).summary


def summary_message(summary: ql.Summary) -> admin_pb2.DefinitionSummary:
    """A definition's dependency summary."""
    lookback = duration_pb2.Duration()
    lookback.FromMilliseconds(summary.lookback_ms or 0)
    return admin_pb2.DefinitionSummary(
        event_names=sorted(summary.events),
        properties=sorted(f"{e}.{p}" for e, props in summary.properties.items() for p in props),
        context_paths=sorted(f"{e}.{p}" for e, paths in summary.context_paths.items() for p in paths),
        traits=sorted(summary.traits | summary.user_traits),
        longest_lookback=lookback,
        lookback_unbounded=summary.reads_events and summary.lookback_ms is None,
        primary_expression_count=summary.primary_expressions,
    )


def options_message(options: dict[str, Any]) -> admin_pb2.ComputationOptions:
    """Stored options as the API shows them."""
    return admin_pb2.ComputationOptions(
        include_anonymous_users=bool(options.get("include_anonymous_users", False)),
        include_historical_data=bool(options.get("include_historical_data", True)),
        backfill_days=int(options.get("backfill_days", 0)),
    )


def _fields(row: ComputationRow) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "key": row.key,
        "collection": COLLECTION_ENUM[row.collection],
        "name": row.name,
        "description": row.description,
        "definition": row.definition,
        "enabled": row.enabled,
        "options": options_message(row.options),
        "status": STATUS[row.status],
        "size": row.size,
        "backfill": admin_pb2.BackfillProgress(profiles_done=row.progress_done, profiles_total=row.progress_total),
        "last_compute_time": timestamp(row.last_computed_ms),
        "create_time": timestamp(row.created_ms),
        "update_time": timestamp(row.updated_ms),
        "failure": admin_pb2.ComputationFailure(
            reason="EVALUATION_FAILED", message=row.error, fail_time=timestamp(row.updated_ms)
        )
        if row.status == "FAILED"
        else None,
        "summary": summary_message(summary_of(row.definition, row.kind, row.collection)),
        "etag": etag_of(row),
        "version": row.version,
    }


def audience_message(row: ComputationRow) -> admin_pb2.Audience:
    """A stored audience as the API shows it."""
    return admin_pb2.Audience(**_fields(row))


def trait_message(row: ComputationRow) -> admin_pb2.ComputedTrait:
    """A stored computed trait as the API shows it."""
    return admin_pb2.ComputedTrait(**_fields(row))


_OPTION_FIELDS = frozenset({"include_anonymous_users", "include_historical_data", "backfill_days"})


def options_dict(message: admin_pb2.ComputationOptions) -> dict[str, Any]:
    """Options as stored (their ranges are the engine's to check: `computations.check_fields`)."""
    return {
        "include_anonymous_users": message.include_anonymous_users,
        "include_historical_data": message.include_historical_data
        if message.HasField("include_historical_data")
        else True,
        "backfill_days": message.backfill_days,
    }


def spec_of(kind: str, message: admin_pb2.Audience | admin_pb2.ComputedTrait) -> Spec:
    """A create request's resource as a Spec."""
    return Spec(
        kind,
        collection_of(message.collection, "collection"),
        message.key,
        message.name,
        message.description,
        message.definition,
        message.enabled if message.HasField("enabled") else True,
        options_dict(message.options),
    )


def changes_of(message: admin_pb2.Audience | admin_pb2.ComputedTrait, paths: list[str]) -> dict[str, Any]:
    """The fields an update names (or, with an empty mask, every editable one that is set, so that
    a message read and sent back whole, output-only fields and all, changes what it edits). An
    option may be named alone (`options.backfill_days`): the others keep their stored values."""
    if not paths:
        paths = [f.name for f, _ in message.ListFields() if f.name in EDITABLE]
    if "*" in paths:
        paths = ["name", "description", "definition", "enabled", "options"]
    changes: dict[str, Any] = {}
    for path in paths:
        top, _, rest = path.partition(".")
        if top == "options" and (not rest or rest in _OPTION_FIELDS):
            given = options_dict(message.options)
            changes["options"] = {**changes.get("options", {}), **(given if not rest else {rest: given[rest]})}
        elif (found := message.DESCRIPTOR.fields_by_name.get(top)) is not None and top != "options" and (
                not rest or found.message_type is not None):
            # An output-only field (`status`, `backfill.profiles_done`) the engine refuses as immutable.
            changes[top] = getattr(message, top)
        else:
            raise InvalidArgument(
                f"unknown field {path!r} in update_mask",
                reason="FIELD_UNKNOWN",
                violations=[FieldViolation("update_mask", f"unknown field {path}")],
            )
    return changes


def tick_message(report: TickReport) -> admin_pb2.Tick:
    """A tick report."""
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(report.duration_ms * 1_000_000))
    return admin_pb2.Tick(
        tick_time=timestamp(report.tick_ms),
        profiles_evaluated=report.profiles_evaluated,
        definitions_evaluated=report.definitions_evaluated,
        values_changed=report.values_changed,
        duration=duration,
        backlog=report.backlog,
    )


def value_json(value: Any) -> str:
    """A value as JSON text, numbers as computed (`3`, not `3.0`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_value(value: Any) -> struct_pb2.Value:
    """A JSON-like value as a protobuf Value (see `doubles_only` for integers no double holds)."""
    out = struct_pb2.Value()
    try:
        _fill_value(out, value)
    except OverflowError:
        _fill_value(out, doubles_only(value))
    return out


def _fill_value(out: struct_pb2.Value, value: Any) -> None:
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        # Marked set first: extending by nothing would leave the value unset, read as null.
        out.list_value.Clear()
        out.list_value.SetInParent()
        out.list_value.extend(value)
    else:
        out.struct_value.Clear()
        out.struct_value.SetInParent()
        out.struct_value.update(value)


def fill_struct(out: struct_pb2.Struct, value: Mapping[str, Any]) -> None:
    """Sets a Struct from a JSON object (see `doubles_only` for integers no double holds)."""
    try:
        out.update(value)
    except OverflowError:
        out.Clear()
        out.update(doubles_only(value))


def doubles_only(value: Any) -> Any:
    """The value with every integer no double holds (beyond ±1.8e308) given as its decimal
    text: a Struct or Value holds numbers as doubles, and such an integer has no double. The
    JSON text beside it (`value_json`, `properties_json`, …) keeps it as the number it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return str(value)
        return value
    if isinstance(value, list):
        return [doubles_only(item) for item in value]
    if isinstance(value, dict):
        return {key: doubles_only(item) for key, item in value.items()}
    return value


class ComputationAdmin:
    """The computation RPCs of AudienceAdminService; mixed into its servicer."""

    engine: Engine

    @audited(definition_change("create", "audience", "audience"))
    def CreateAudience(
        self, request: admin_pb2.CreateAudienceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateAudienceResponse:
        row = self.engine.computations.create(space_id(), spec_of("audience", request.audience), caller_label())
        return admin_pb2.CreateAudienceResponse(audience=audience_message(self._written(row)))

    def GetAudience(
        self, request: admin_pb2.GetAudienceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetAudienceResponse:
        row = self.engine.computations.get(space_id(), "audience", collection_of(request.collection), request.key)
        return admin_pb2.GetAudienceResponse(audience=audience_message(self._shown([row])[0]))

    def ListAudiences(
        self, request: admin_pb2.ListAudiencesRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListAudiencesResponse:
        rows, token = self._page("audience", request)
        return admin_pb2.ListAudiencesResponse(audiences=[audience_message(r) for r in rows], next_page_token=token)

    @audited(definition_update("audience", "audience"))
    def UpdateAudience(
        self, request: admin_pb2.UpdateAudienceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateAudienceResponse:
        message = request.audience
        row = self.engine.computations.update(
            space_id(),
            "audience",
            collection_of(message.collection),
            message.key,
            changes_of(message, list(request.update_mask.paths)),
            caller_label(),
            expected=message.etag or None,
        )
        return admin_pb2.UpdateAudienceResponse(audience=audience_message(self._written(row)))

    @audited(definition_change("delete", "audience"))
    def DeleteAudience(
        self, request: admin_pb2.DeleteAudienceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteAudienceResponse:
        if self.engine.computations.delete(space_id(), "audience", collection_of(request.collection), request.key,
                                           request.force):
            self.engine.sync.wake()  # its connections are gone
        return admin_pb2.DeleteAudienceResponse()

    @audited(definition_change("create", "computed_trait", "computed_trait"))
    def CreateComputedTrait(
        self, request: admin_pb2.CreateComputedTraitRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateComputedTraitResponse:
        row = self.engine.computations.create(space_id(), spec_of("computed_trait", request.computed_trait),
                                              caller_label())
        return admin_pb2.CreateComputedTraitResponse(computed_trait=trait_message(self._written(row)))

    def GetComputedTrait(
        self, request: admin_pb2.GetComputedTraitRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetComputedTraitResponse:
        row = self.engine.computations.get(space_id(), "computed_trait", collection_of(request.collection), request.key)
        return admin_pb2.GetComputedTraitResponse(computed_trait=trait_message(self._shown([row])[0]))

    def ListComputedTraits(
        self, request: admin_pb2.ListComputedTraitsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListComputedTraitsResponse:
        rows, token = self._page("computed_trait", request)
        return admin_pb2.ListComputedTraitsResponse(
            computed_traits=[trait_message(r) for r in rows], next_page_token=token
        )

    @audited(definition_update("computed_trait", "computed_trait"))
    def UpdateComputedTrait(
        self, request: admin_pb2.UpdateComputedTraitRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateComputedTraitResponse:
        message = request.computed_trait
        row = self.engine.computations.update(
            space_id(),
            "computed_trait",
            collection_of(message.collection),
            message.key,
            changes_of(message, list(request.update_mask.paths)),
            caller_label(),
            expected=message.etag or None,
        )
        return admin_pb2.UpdateComputedTraitResponse(computed_trait=trait_message(self._written(row)))

    @audited(definition_change("delete", "computed_trait"))
    def DeleteComputedTrait(
        self, request: admin_pb2.DeleteComputedTraitRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteComputedTraitResponse:
        if self.engine.computations.delete(space_id(), "computed_trait", collection_of(request.collection), request.key,
                                           request.force):
            self.engine.sync.wake()  # its connections are gone
        return admin_pb2.DeleteComputedTraitResponse()

    def ValidateDefinition(
        self, request: admin_pb2.ValidateDefinitionRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ValidateDefinitionResponse:
        kind, collection = kind_of(request.kind), collection_of(request.collection)
        try:
            checked = ql.parse_and_check(
                request.definition, kind=cast(ql.Kind, kind), collection=cast(ql.Collection, collection)
            )
        except ql.QueryError as error:
            return admin_pb2.ValidateDefinitionResponse(
                valid=False,
                error=admin_pb2.DefinitionError(
                    reason=definition_reason(error),
                    message=error.message,
                    line=error.line,
                    column=error.column,
                    offending_text=error.text,
                    expected=list(error.expected),
                    caret_display="\n".join(error.caret().splitlines()[1:]),
                ),
            )
        cycle = self.engine.computations.cycle_for(space_id(), kind, collection, request.key, request.definition)
        if cycle:
            return admin_pb2.ValidateDefinitionResponse(
                valid=False,
                error=admin_pb2.DefinitionError(
                    reason="DEPENDENCY_CYCLE",
                    message="definitions would read each other in a cycle: " + " -> ".join(cycle),
                    cycle_keys=cycle,
                ),
                summary=summary_message(checked.summary),
            )
        return admin_pb2.ValidateDefinitionResponse(valid=True, summary=summary_message(checked.summary))

    def PreviewDefinition(
        self, request: admin_pb2.PreviewDefinitionRequest, context: grpc.ServicerContext
    ) -> admin_pb2.PreviewDefinitionResponse:
        kind, collection = kind_of(request.kind), collection_of(request.collection)
        if not 0 <= request.sample_size <= MAX_SAMPLE_SIZE:  # 0 (unset) is the default, 10
            raise InvalidArgument(f"`sample_size` must be 1 to {MAX_SAMPLE_SIZE} (0 or unset: 10)",
                                  reason="SAMPLE_SIZE_INVALID",
                                  violations=[FieldViolation("sample_size", "out of range")])
        sample = request.sample_size or 10
        count, samples, now = self.engine.computations.preview(
            space_id(), request.definition, kind, collection, request.include_anonymous_users, sample
        )
        summaries = profile_summaries(self.engine, [pid for pid, _ in samples])
        return admin_pb2.PreviewDefinitionResponse(
            count=count,
            evaluate_time=timestamp(now),
            samples=[admin_pb2.ProfileValue(profile=summaries[pid], value=json_value(value),
                                            value_json=value_json(value)) for pid, value in samples],
            summary=summary_message(summary_of(request.definition, kind, collection)),
            diff=self._diff(request, kind, collection, sample) if request.compare_key else None,
        )

    def _diff(self, request: admin_pb2.PreviewDefinitionRequest, kind: str, collection: str,
              sample: int) -> admin_pb2.DefinitionDiff:
        """What saving the previewed text as `compare_key`'s definition would change."""
        options = options_dict(request.compare_options) if request.HasField("compare_options") else None
        found = self.engine.computations.diff(space_id(), request.definition, kind, collection, request.compare_key,
                                              sample, options)
        summaries = profile_summaries(self.engine, [p for kept in found.samples.values() for p, _, _ in kept])

        def changes(outcome: str) -> list[admin_pb2.ProfileChange]:
            return [admin_pb2.ProfileChange(profile=summaries[p], old_value=json_value(old), new_value=json_value(new),
                                            old_value_json=value_json(old), new_value_json=value_json(new))
                    for p, old, new in found.samples[outcome]]

        return admin_pb2.DefinitionDiff(
            compare_key=request.compare_key, entering_count=found.entering, exiting_count=found.exiting,
            staying_count=found.staying, changed_count=found.changed, entering_samples=changes("entering"),
            exiting_samples=changes("exiting"), staying_samples=changes("staying"),
        )

    def SetClock(self, request: admin_pb2.SetClockRequest, context: grpc.ServicerContext) -> admin_pb2.SetClockResponse:
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument(
                "set `clock_time` or `advance`",
                reason="CLOCK_TARGET_MISSING",
                violations=[FieldViolation("target", "required")],
            )
        new = time_ms(request, "clock_time") if target == "clock_time" else None
        advance = request.advance.ToMilliseconds() if target == "advance" else None
        previous, now = self.engine.set_clock(new, advance)
        return admin_pb2.SetClockResponse(previous_clock_time=timestamp(previous), clock_time=timestamp(now))

    def RunTick(self, request: admin_pb2.RunTickRequest, context: grpc.ServicerContext) -> admin_pb2.RunTickResponse:
        evaluator = self.engine.evaluator
        reports = evaluator.run_ticks() if request.until_idle else [evaluator.run_tick(until_idle=False)]
        return admin_pb2.RunTickResponse(ticks=[tick_message(report) for report in reports])

    def GetEvaluatorStatus(
        self, request: admin_pb2.GetEvaluatorStatusRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetEvaluatorStatusResponse:
        status = self.engine.evaluator_status(space_id())
        interval = duration_pb2.Duration()
        interval.FromMilliseconds(self.engine.settings.tick_interval_ms)
        last = self.engine.evaluator.last_tick
        # A due time past the year 9999 (an event at 9999-12-31 leaving a `within(7 days)` window)
        # never comes: no clock moves past 9999-12-31T23:59:59.999Z, and no Timestamp shows a later
        # time. As with ExplainMembership's check_time, it is left unset: nothing will come due.
        next_due = status["next_due_ms"] if (status["next_due_ms"] or 0) <= MAX_TIMESTAMP_MS else None
        return admin_pb2.GetEvaluatorStatusResponse(
            clock_mode=admin_pb2.CLOCK_MODE_MANUAL if self.engine.clock.manual else admin_pb2.CLOCK_MODE_SYSTEM,
            clock_time=timestamp(self.engine.clock.now_ms()),
            tick_interval=interval,
            last_tick=tick_message(last) if last else None,
            pending_profiles=status["pending_profiles"],
            next_due_time=timestamp(next_due),
            backfilling_count=status["backfilling"],
            due_waiting=status["due_waiting"],
            due_lag=duration_pb2.Duration(seconds=status["due_lag_ms"] // 1000,
                                          nanos=status["due_lag_ms"] % 1000 * 1_000_000),
        )

    def _page(self, kind: str, request: Any) -> tuple[list[ComputationRow], str]:
        # Unset lists both collections; a value that names neither is refused, as everywhere else.
        collection = collection_of(request.collection) if request.collection else None
        scope = {"space": space_id(), "list": kind, "collection": collection}
        after = self.engine.page_tokens.decode(request.page_token, scope) or 0
        size = page_size(request.page_size, 50, 1000)
        rows = [r for r in self.engine.computations.of_kind(space_id(), kind, collection) if r.computation_id > after]
        page = rows[:size]
        token = self.engine.page_tokens.encode(page[-1].computation_id, scope) if len(rows) > size else ""
        return self._shown(page), token

    def _shown(self, rows: list[ComputationRow]) -> list[ComputationRow]:
        """The rows as shown: on a cluster's front, with their status and size over every shard."""
        combine = self.engine.cluster_rows
        return combine(rows) if combine is not None and rows else rows

    def _written(self, row: ComputationRow) -> ComputationRow:
        """A row just created or updated, as shown. On a front whose shards do not all answer,
        BACKFILLING (if enabled) with no size: the change is saved and on its way to them."""
        try:
            return self._shown([row])[0]
        except Unavailable:
            return replace(row, status="BACKFILLING" if row.enabled else "DISABLED", size=0, progress_done=0,
                           progress_total=0)

    def ListAudienceMembers(self, request: admin_pb2.ListAudienceMembersRequest,
                            context: grpc.ServicerContext) -> admin_pb2.ListAudienceMembersResponse:
        collection = collection_of(request.collection)
        scope = {"space": space_id(), "list": "members", "collection": collection, "key": request.key}
        after = self.engine.page_tokens.decode(request.page_token, scope) or 0
        size = page_size(request.page_size, 100, 1000)
        found, total = self.engine.computations.members(space_id(), collection, request.key, after, size + 1)
        page = found[:size]
        summaries = profile_summaries(self.engine, [pid for pid, _ in page])
        traits = self.engine.custom_traits([pid for pid, _ in page]) if request.include_traits else {}
        members = []
        for pid, entered in page:
            chosen = {k: v for k, v in traits.get(pid, {}).items() if k in request.include_traits}
            member = admin_pb2.AudienceMember(profile=summaries[pid], enter_time=timestamp(entered))
            fill_struct(member.traits, chosen)
            members.append(member)
        token = self.engine.page_tokens.encode(page[-1][0], scope) if len(found) > size else ""
        return admin_pb2.ListAudienceMembersResponse(members=members, next_page_token=token, total_size=total)


def profile_summaries(engine: Engine, profile_ids: list[int]) -> dict[int, common_pb2.ProfileSummary]:
    """Profiles as the API names them: public id, collection, identifiers."""
    return {
        pid: common_pb2.ProfileSummary(
            profile_id=public,
            collection=COLLECTION_ENUM[collection],
            external_ids=[
                common_pb2.ExternalId(type=t, value=v, collection=COLLECTION_ENUM[collection]) for t, v in ids
            ],
        )
        for pid, (public, collection, ids) in engine.profile_refs(profile_ids).items()
    }
