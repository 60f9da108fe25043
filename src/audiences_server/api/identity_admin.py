"""AudienceAdminService RPCs for identity resolution rules and their violations."""

from __future__ import annotations

from typing import Any

import grpc
from audiences.v1 import admin_pb2

from audiences_server.api.audit import audited, identity_rule_update
from audiences_server.api.computations import time_ms, timestamp
from audiences_server.api.context import space_id
from audiences_server.core.identity import IdentityRules, IdTypeRule, ViolationKind
from audiences_server.engine.engine import Engine

PERIODS: dict[str, Any] = {
    "ever": admin_pb2.IDENTITY_LIMIT_PERIOD_EVER,
    "daily": admin_pb2.IDENTITY_LIMIT_PERIOD_DAILY,
    "weekly": admin_pb2.IDENTITY_LIMIT_PERIOD_WEEKLY,
    "monthly": admin_pb2.IDENTITY_LIMIT_PERIOD_MONTHLY,
    "annually": admin_pb2.IDENTITY_LIMIT_PERIOD_ANNUALLY,
}
PERIOD_NAMES = {v: k for k, v in PERIODS.items()}
_V = ViolationKind
_R = admin_pb2
REASONS: dict[str, Any] = {
    _V.ID_VALUE_BLOCKED.value: _R.IDENTITY_VIOLATION_REASON_ID_VALUE_BLOCKED,
    _V.IDENTIFIER_VALUE_LIMIT_EXCEEDED.value: _R.IDENTITY_VIOLATION_REASON_IDENTIFIER_VALUE_LIMIT_EXCEEDED,
    _V.IDENTIFIER_VALUE_TIME_LIMIT_EXCEEDED.value: _R.IDENTITY_VIOLATION_REASON_IDENTIFIER_VALUE_LIMIT_EXCEEDED,
    _V.PROFILE_MERGE_LIMIT_EXCEEDED.value: _R.IDENTITY_VIOLATION_REASON_PROFILE_MERGE_LIMIT_EXCEEDED,
    _V.IDENTIFIER_MAPPING_LIMIT_EXCEEDED.value: _R.IDENTITY_VIOLATION_REASON_PROFILE_IDENTIFIER_LIMIT_EXCEEDED,
}


def rule_message(
    id_type: str, rule: IdTypeRule, rules: IdentityRules, changed_ms: int | None
) -> admin_pb2.IdentityRule:
    """One identifier type's rule as the API shows it, with its effective rank (1 is highest)."""
    ranked = sorted(rules.types, key=rules.rank)
    return admin_pb2.IdentityRule(
        id_type=id_type,
        blocked_patterns=list(rule.blocked.patterns),
        blocked_values=list(rule.blocked.values),
        limit=rule.limit.count,
        limit_period=PERIODS[rule.limit.period.value],
        priority=ranked.index(id_type) + 1 if id_type in ranked else 0,
        update_time=timestamp(changed_ms),
        source_keys=list(rule.sources),
    )


def _changes(rule: admin_pb2.IdentityRule, paths: list[str]) -> dict[str, Any]:
    if not paths:
        paths = [f.name for f, _ in rule.ListFields() if f.name not in {"id_type", "update_time"}]
    if "*" in paths:
        paths = ["blocked_patterns", "blocked_values", "limit", "limit_period", "priority", "source_keys"]
    changes: dict[str, Any] = {}
    for path in paths:
        if path == "limit_period":
            changes[path] = PERIOD_NAMES.get(rule.limit_period, "unspecified")
        elif path in {"blocked_patterns", "blocked_values", "source_keys"}:
            changes[path] = list(getattr(rule, path))
        else:
            changes[path] = getattr(rule, path, None)
    return changes


class IdentityRuleAdmin:
    """The identity-rule RPCs of AudienceAdminService; mixed into its servicer."""

    engine: Engine

    def GetIdentityRules(
        self, request: admin_pb2.GetIdentityRulesRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetIdentityRulesResponse:
        rules, changed = self.engine.identity_admin.rules(space_id())
        return admin_pb2.GetIdentityRulesResponse(
            identity_rules=admin_pb2.IdentityRules(
                rules=[
                    rule_message(t, rules.types[t], rules, changed.get(t)) for t in sorted(rules.types, key=rules.rank)
                ],
                default_rule=rule_message("", rules.default, rules, None),
                max_merges_per_profile=rules.max_merges,
                max_identifiers_per_profile=rules.max_identifiers,
            )
        )

    @audited(identity_rule_update)
    def UpdateIdentityRule(
        self, request: admin_pb2.UpdateIdentityRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateIdentityRuleResponse:
        id_type = request.rule.id_type.strip().lower()
        rule, changed = self.engine.identity_admin.update(
            space_id(), id_type, _changes(request.rule, list(request.update_mask.paths))
        )
        rules, _ = self.engine.identity_admin.rules(space_id())
        return admin_pb2.UpdateIdentityRuleResponse(rule=rule_message(id_type, rule, rules, changed))

    def ListIdentityRuleViolations(
        self, request: admin_pb2.ListIdentityRuleViolationsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListIdentityRuleViolationsResponse:
        page, token = self.engine.identity_admin.violations(
            space_id(),
            time_ms(request, "start_time"),
            request.id_type.strip().lower(),
            request.page_size,
            request.page_token,
        )
        return admin_pb2.ListIdentityRuleViolationsResponse(
            violations=[
                admin_pb2.IdentityRuleViolation(
                    reason=REASONS.get(v["kind"], 0),
                    rule_name=v["kind"],
                    id_type=v["id_type"],
                    count=v["count"],
                    sample_message_ids=v["samples"],
                    first_seen_time=timestamp(v["first_ms"]),
                    last_seen_time=timestamp(v["last_ms"]),
                )
                for v in page
            ],
            next_page_token=token,
        )
