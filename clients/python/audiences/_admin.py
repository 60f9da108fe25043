"""AudienceAdminService: audiences, computed traits, definitions, identity rules, the clock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from audiences._base import Base, CollectionArg, KindArg, choose, collection_value, duration, kind_value, timestamp
from audiences.errors import AudiencesError
from audiences.v1 import admin_pb2, common_pb2

_LIMIT_PERIODS = {
    "ever": admin_pb2.IDENTITY_LIMIT_PERIOD_EVER,
    "daily": admin_pb2.IDENTITY_LIMIT_PERIOD_DAILY,
    "weekly": admin_pb2.IDENTITY_LIMIT_PERIOD_WEEKLY,
    "monthly": admin_pb2.IDENTITY_LIMIT_PERIOD_MONTHLY,
    "annually": admin_pb2.IDENTITY_LIMIT_PERIOD_ANNUALLY,
}
Computation = admin_pb2.Audience | admin_pb2.ComputedTrait


def _options(
    include_anonymous_users: bool | None, include_historical_data: bool | None, backfill_days: int | None
) -> admin_pb2.ComputationOptions | None:
    if include_anonymous_users is None and include_historical_data is None and backfill_days is None:
        return None
    options = admin_pb2.ComputationOptions(
        include_anonymous_users=bool(include_anonymous_users), backfill_days=backfill_days or 0
    )
    if include_historical_data is not None:
        options.include_historical_data = include_historical_data
    return options


def _changes(
    message: Computation,
    name: str | None,
    description: str | None,
    definition: str | None,
    enabled: bool | None,
    options: admin_pb2.ComputationOptions | None,
) -> list[str]:
    """Sets the given fields on the message and returns the update mask's paths."""
    paths = []
    for path, value in (("name", name), ("description", description), ("definition", definition), ("enabled", enabled)):
        if value is not None:
            setattr(message, path, value)
            paths.append(path)
    if options is not None:
        message.options.CopyFrom(options)
        paths.append("options")
    return paths


class AdminMethods(Base):
    """Audiences, computed traits, definitions, identity rules and the evaluator (`admin` token)."""

    # -- audiences --------------------------------------------------------------------------

    def create_audience(
        self,
        key: str,
        definition: str,
        *,
        collection: CollectionArg = "users",
        name: str = "",
        description: str = "",
        enabled: bool = True,
        include_anonymous_users: bool | None = None,
        include_historical_data: bool | None = None,
        backfill_days: int | None = None,
    ) -> admin_pb2.Audience:
        """Creates an audience; it starts BACKFILLING, then turns LIVE."""
        audience = admin_pb2.Audience(
            key=key,
            definition=definition,
            collection=collection_value(collection),
            name=name,
            description=description,
            enabled=enabled,
        )
        options = _options(include_anonymous_users, include_historical_data, backfill_days)
        if options is not None:
            audience.options.CopyFrom(options)
        request = admin_pb2.CreateAudienceRequest(audience=audience)
        return self._call("admin", admin_pb2.CreateAudienceResponse, self.admin_stub.CreateAudience, request).audience

    def get_audience(self, key: str, *, collection: CollectionArg = "users") -> admin_pb2.Audience:
        """One audience with its status, size and backfill progress."""
        request = admin_pb2.GetAudienceRequest(key=key, collection=collection_value(collection))
        return self._call("admin", admin_pb2.GetAudienceResponse, self.admin_stub.GetAudience, request).audience

    def list_audiences(
        self, *, collection: CollectionArg = None, page_size: int = 0, page_token: str = ""
    ) -> admin_pb2.ListAudiencesResponse:
        """One page of audiences (both collections unless one is given)."""
        request = admin_pb2.ListAudiencesRequest(
            collection=collection_value(collection), page_size=page_size, page_token=page_token
        )
        return self._call("admin", admin_pb2.ListAudiencesResponse, self.admin_stub.ListAudiences, request)

    def iter_audiences(self, *, collection: CollectionArg = None) -> Iterator[admin_pb2.Audience]:
        """Every audience, following the pages."""
        return self._pages(
            lambda token: self.list_audiences(collection=collection, page_size=1000, page_token=token), "audiences"
        )

    def update_audience(
        self,
        key: str,
        *,
        collection: CollectionArg = "users",
        name: str | None = None,
        description: str | None = None,
        definition: str | None = None,
        enabled: bool | None = None,
        options: admin_pb2.ComputationOptions | None = None,
    ) -> admin_pb2.Audience:
        """Changes the given fields (only those); a new definition or options restarts the backfill."""
        audience = admin_pb2.Audience(key=key, collection=collection_value(collection))
        paths = _changes(audience, name, description, definition, enabled, options)
        request = admin_pb2.UpdateAudienceRequest(audience=audience, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return self._call("admin", admin_pb2.UpdateAudienceResponse, self.admin_stub.UpdateAudience, request).audience

    def delete_audience(self, key: str, *, collection: CollectionArg = "users", force: bool = False) -> None:
        """Deletes an audience (`force` also removes its connections to destinations)."""
        request = admin_pb2.DeleteAudienceRequest(key=key, collection=collection_value(collection), force=force)
        self._call("admin", admin_pb2.DeleteAudienceResponse, self.admin_stub.DeleteAudience, request)

    def list_audience_members(
        self,
        key: str,
        *,
        collection: CollectionArg = "users",
        include_traits: Sequence[str] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> admin_pb2.ListAudienceMembersResponse:
        """One page of an audience's members, in profile order, with `total_size`."""
        request = admin_pb2.ListAudienceMembersRequest(
            key=key,
            collection=collection_value(collection),
            include_traits=list(include_traits),
            page_size=page_size,
            page_token=page_token,
        )
        return self._call("admin", admin_pb2.ListAudienceMembersResponse, self.admin_stub.ListAudienceMembers, request)

    def iter_audience_members(
        self, key: str, *, collection: CollectionArg = "users", include_traits: Sequence[str] = ()
    ) -> Iterator[admin_pb2.AudienceMember]:
        """Every member of an audience, following the pages."""
        return self._pages(
            lambda token: self.list_audience_members(
                key, collection=collection, include_traits=include_traits, page_size=1000, page_token=token
            ),
            "members",
        )

    # -- computed traits --------------------------------------------------------------------

    def create_computed_trait(
        self,
        key: str,
        definition: str,
        *,
        collection: CollectionArg = "users",
        name: str = "",
        description: str = "",
        enabled: bool = True,
        include_anonymous_users: bool | None = None,
        include_historical_data: bool | None = None,
        backfill_days: int | None = None,
    ) -> admin_pb2.ComputedTrait:
        """Creates a computed trait; it starts BACKFILLING, then turns LIVE."""
        trait = admin_pb2.ComputedTrait(
            key=key,
            definition=definition,
            collection=collection_value(collection),
            name=name,
            description=description,
            enabled=enabled,
        )
        options = _options(include_anonymous_users, include_historical_data, backfill_days)
        if options is not None:
            trait.options.CopyFrom(options)
        request = admin_pb2.CreateComputedTraitRequest(computed_trait=trait)
        return self._call(
            "admin", admin_pb2.CreateComputedTraitResponse, self.admin_stub.CreateComputedTrait, request
        ).computed_trait

    def get_computed_trait(self, key: str, *, collection: CollectionArg = "users") -> admin_pb2.ComputedTrait:
        """One computed trait with its status, size and backfill progress."""
        request = admin_pb2.GetComputedTraitRequest(key=key, collection=collection_value(collection))
        return self._call(
            "admin", admin_pb2.GetComputedTraitResponse, self.admin_stub.GetComputedTrait, request
        ).computed_trait

    def list_computed_traits(
        self, *, collection: CollectionArg = None, page_size: int = 0, page_token: str = ""
    ) -> admin_pb2.ListComputedTraitsResponse:
        """One page of computed traits."""
        request = admin_pb2.ListComputedTraitsRequest(
            collection=collection_value(collection), page_size=page_size, page_token=page_token
        )
        return self._call("admin", admin_pb2.ListComputedTraitsResponse, self.admin_stub.ListComputedTraits, request)

    def iter_computed_traits(self, *, collection: CollectionArg = None) -> Iterator[admin_pb2.ComputedTrait]:
        """Every computed trait, following the pages."""
        return self._pages(
            lambda token: self.list_computed_traits(collection=collection, page_size=1000, page_token=token),
            "computed_traits",
        )

    def update_computed_trait(
        self,
        key: str,
        *,
        collection: CollectionArg = "users",
        name: str | None = None,
        description: str | None = None,
        definition: str | None = None,
        enabled: bool | None = None,
        options: admin_pb2.ComputationOptions | None = None,
    ) -> admin_pb2.ComputedTrait:
        """Changes the given fields (only those); a new definition or options restarts the backfill."""
        trait = admin_pb2.ComputedTrait(key=key, collection=collection_value(collection))
        paths = _changes(trait, name, description, definition, enabled, options)
        request = admin_pb2.UpdateComputedTraitRequest(
            computed_trait=trait, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return self._call(
            "admin", admin_pb2.UpdateComputedTraitResponse, self.admin_stub.UpdateComputedTrait, request
        ).computed_trait

    def delete_computed_trait(self, key: str, *, collection: CollectionArg = "users", force: bool = False) -> None:
        """Deletes a computed trait."""
        request = admin_pb2.DeleteComputedTraitRequest(key=key, collection=collection_value(collection), force=force)
        self._call("admin", admin_pb2.DeleteComputedTraitResponse, self.admin_stub.DeleteComputedTrait, request)

    # -- definitions ------------------------------------------------------------------------

    def validate_definition(
        self, definition: str, *, kind: KindArg = "audience", collection: CollectionArg = "users", key: str = ""
    ) -> admin_pb2.ValidateDefinitionResponse:
        """Checks a definition without saving it: `valid`, or `error` with line, column and caret."""
        request = admin_pb2.ValidateDefinitionRequest(
            definition=definition, kind=kind_value(kind), collection=collection_value(collection), key=key
        )
        return self._call("admin", admin_pb2.ValidateDefinitionResponse, self.admin_stub.ValidateDefinition, request)

    def preview_definition(
        self,
        definition: str,
        *,
        kind: KindArg = "audience",
        collection: CollectionArg = "users",
        include_anonymous_users: bool = False,
        sample_size: int = 0,
    ) -> admin_pb2.PreviewDefinitionResponse:
        """Evaluates an unsaved definition now: how many profiles it selects, and a sample."""
        request = admin_pb2.PreviewDefinitionRequest(
            definition=definition,
            kind=kind_value(kind),
            collection=collection_value(collection),
            include_anonymous_users=include_anonymous_users,
            sample_size=sample_size,
        )
        return self._call("admin", admin_pb2.PreviewDefinitionResponse, self.admin_stub.PreviewDefinition, request)

    # -- identity rules ---------------------------------------------------------------------

    def get_identity_rules(self) -> admin_pb2.IdentityRules:
        """The space's identity resolution rules."""
        return self._call(
            "admin",
            admin_pb2.GetIdentityRulesResponse,
            self.admin_stub.GetIdentityRules,
            admin_pb2.GetIdentityRulesRequest(),
        ).identity_rules

    def update_identity_rule(
        self,
        id_type: str,
        *,
        blocked_patterns: Iterable[str] | None = None,
        blocked_values: Iterable[str] | None = None,
        limit: int | None = None,
        limit_period: str | int | None = None,
        priority: int | None = None,
        source_keys: Iterable[str] | None = None,
    ) -> admin_pb2.IdentityRule:
        """Changes the given fields of one identifier type's rule (`limit_period`: ever, daily,
        weekly, …; `source_keys`: `properties.<key>` or `context.traits.<key>` the type is read from)."""
        rule = admin_pb2.IdentityRule(id_type=id_type)
        paths = []
        if source_keys is not None:
            rule.source_keys.extend(source_keys)
            paths.append("source_keys")
        if blocked_patterns is not None:
            rule.blocked_patterns.extend(blocked_patterns)
            paths.append("blocked_patterns")
        if blocked_values is not None:
            rule.blocked_values.extend(blocked_values)
            paths.append("blocked_values")
        for path, value in (("limit", limit), ("priority", priority)):
            if value is not None:
                setattr(rule, path, value)
                paths.append(path)
        if limit_period is not None:
            rule.limit_period = (
                choose(_LIMIT_PERIODS, limit_period, "limit_period", "LIMIT_PERIOD_INVALID")
                if isinstance(limit_period, str) else limit_period  # type: ignore[assignment]
            )
            paths.append("limit_period")
        request = admin_pb2.UpdateIdentityRuleRequest(rule=rule, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return self._call(
            "admin", admin_pb2.UpdateIdentityRuleResponse, self.admin_stub.UpdateIdentityRule, request
        ).rule

    def list_identity_rule_violations(
        self, *, start_time: dt.datetime | None = None, id_type: str = "", page_size: int = 0, page_token: str = ""
    ) -> admin_pb2.ListIdentityRuleViolationsResponse:
        """How often each rule held back identifiers of each type, the most frequent first."""
        request = admin_pb2.ListIdentityRuleViolationsRequest(
            start_time=timestamp(start_time), id_type=id_type, page_size=page_size, page_token=page_token
        )
        return self._call(
            "admin", admin_pb2.ListIdentityRuleViolationsResponse, self.admin_stub.ListIdentityRuleViolations, request
        )

    # -- the evaluator ----------------------------------------------------------------------

    def set_clock(
        self, clock_time: dt.datetime | None = None, *, advance: dt.timedelta | float | None = None
    ) -> admin_pb2.SetClockResponse:
        """Moves a manual-clock server's clock to `clock_time`, or forward by `advance`."""
        if (clock_time is None) == (advance is None):
            raise ValueError("give exactly one of clock_time and advance")
        request = admin_pb2.SetClockRequest(clock_time=timestamp(clock_time), advance=duration(advance))
        return self._call("admin", admin_pb2.SetClockResponse, self.admin_stub.SetClock, request)

    def run_tick(self, *, until_idle: bool = False) -> admin_pb2.RunTickResponse:
        """Runs a tick now (or ticks until no work waits) and returns what each did.

        Ticking until idle after a large backfill can take minutes, so with the client's default
        timeout the call may take 600 s; a `timeout` given to the client applies as it is (None:
        no limit), since the caller chose it.
        """
        request = admin_pb2.RunTickRequest(until_idle=until_idle)
        return self._call(
            "admin", admin_pb2.RunTickResponse, self.admin_stub.RunTick, request, timeout=self._long_timeout(600)
        )

    def get_evaluator_status(self) -> admin_pb2.GetEvaluatorStatusResponse:
        """The evaluator's clock, its last tick and the work waiting."""
        return self._call(
            "admin",
            admin_pb2.GetEvaluatorStatusResponse,
            self.admin_stub.GetEvaluatorStatus,
            admin_pb2.GetEvaluatorStatusRequest(),
        )

    def wait_until_live(self, *, timeout: float = 300, tick: bool = True) -> list[Computation]:
        """Waits until no audience or computed trait is BACKFILLING; returns them all.

        With `tick`, runs ticks until idle while waiting (needed on a manual-clock server; on a
        system clock it only hurries things along).

        Raises:
            AudiencesError: DEADLINE_EXCEEDED when some are still backfilling after `timeout`.
        """
        deadline = time.monotonic() + timeout
        while True:
            if tick:
                self.run_tick(until_idle=True)
            found: list[Computation] = [*self.iter_audiences(), *self.iter_computed_traits()]
            waiting = [c.key for c in found if c.status == admin_pb2.COMPUTATION_STATUS_BACKFILLING]
            if not waiting:
                return found
            if time.monotonic() > deadline:
                raise AudiencesError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"still backfilling after {timeout:g}s: {', '.join(waiting)}",
                    reason="BACKFILL_TIMEOUT",
                    metadata={"keys": ",".join(waiting)},
                )
            time.sleep(0.2)


def status_name(value: int) -> str:
    """`LIVE`, `BACKFILLING`, … for a ComputationStatus value."""
    return admin_pb2.ComputationStatus.Name(value).removeprefix("COMPUTATION_STATUS_")


def collection_name(value: int) -> str:
    """`users` or `accounts` for a Collection value."""
    return common_pb2.Collection.Name(value).removeprefix("COLLECTION_").lower()


def as_dict(message: Any) -> dict[str, Any]:
    """A message as JSON-ready data, with field names as in the proto."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)
