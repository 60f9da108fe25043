"""Identity rules per space: read them, change one id type's rule, see what the rules held back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apsw

from audiences_server.core.identity import IdentityRules, IdTypeRule, InvalidIdentityRules
from audiences_server.core.identity.ids import MAX_ID_TYPE_CHARS
from audiences_server.engine.clock import Clock
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store import identity as store
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

RULE_FIELDS = frozenset({"blocked_patterns", "blocked_values", "limit", "limit_period", "priority", "source_keys"})
MAX_LIMIT = 1000
# Where a part of the stored rules (`types.<id type>.limit.count`, …) is in the request's rule;
# id types may hold dots (`ios.id`), so the part is matched by its end.
_REQUEST_FIELDS = (
    ("limit.count", "limit"), ("limit.period", "limit_period"), ("blocked.patterns", "blocked_patterns"),
    ("blocked.values", "blocked_values"), ("priority", "priority"), ("limit", "limit"),
    ("sources", "source_keys"),
)
DEFAULT_VIOLATIONS_PAGE, MAX_VIOLATIONS_PAGE = 50, 1000


def _request_field(stored_field: str) -> str:
    return next((f"rule.{name}" for end, name in _REQUEST_FIELDS if stored_field.endswith(end)), "rule")


def _check_names(id_type: str, changes: Mapping[str, Any]) -> None:
    problems = [FieldViolation("rule.id_type", "required")] if not id_type else []
    if len(id_type) > MAX_ID_TYPE_CHARS:
        problems.append(FieldViolation("rule.id_type", f"at most {MAX_ID_TYPE_CHARS} characters"))
    if ":" in id_type:  # a profile is looked up as `type:value`
        problems.append(FieldViolation("rule.id_type", "must not contain `:`"))
    problems += [FieldViolation("update_mask.paths", f"`{name}` cannot be changed") for name in
                 sorted(set(changes) - RULE_FIELDS)]
    if problems:
        raise InvalidArgument(
            f"name the rule by `id_type` (at most {MAX_ID_TYPE_CHARS} characters, no `:`) and change only "
            + ", ".join(sorted(RULE_FIELDS)),
            reason="RULE_INVALID",
            violations=problems,
        )


def _check_limit(changes: Mapping[str, Any]) -> None:
    limit = changes.get("limit")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(
            f"`rule.limit` must be 1 to {MAX_LIMIT}, got {limit}",
            reason="RULE_INVALID",
            violations=[FieldViolation("rule.limit", f"must be 1 to {MAX_LIMIT}")],
        )


class IdentityAdmin:
    """The identity-rule use cases."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock, tokens: PageTokens) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._tokens = tokens

    def rules(self, space_id: int) -> tuple[IdentityRules, dict[str, int]]:
        """The space's rules and when each type's rule was last changed."""
        with self._readers.snapshot() as conn:
            return store.rules(conn, space_id), store.rule_times(conn, space_id)

    def update(self, space_id: int, id_type: str, changes: Mapping[str, Any]) -> tuple[IdTypeRule, int]:
        """Changes the rule of one identifier type; later messages follow it."""
        _check_names(id_type, changes)
        _check_limit(changes)
        now = self._clock.now_ms()
        rule = self._writer.run(lambda conn: self._apply(conn, space_id, id_type.strip().lower(), changes, now))
        return rule, now

    def _apply(
        self, conn: apsw.Connection, space_id: int, id_type: str, changes: Mapping[str, Any], now: int
    ) -> IdTypeRule:
        current = store.rules(conn, space_id)
        data = current.to_dict()
        rule = data["types"].get(id_type) or dict(data["default"])
        if "limit" in changes or "limit_period" in changes:
            rule["limit"] = {
                "count": changes.get("limit", rule["limit"]["count"]),
                "period": changes.get("limit_period", rule["limit"]["period"]),
            }
        if "blocked_patterns" in changes or "blocked_values" in changes:
            rule["blocked"] = {
                "patterns": list(changes.get("blocked_patterns", rule["blocked"]["patterns"])),
                "values": list(changes.get("blocked_values", rule["blocked"]["values"])),
            }
        if "priority" in changes:
            rule["priority"] = changes["priority"] or None
            holder = next((name for name, other in data["types"].items()
                           if name != id_type and rule["priority"] is not None
                           and other.get("priority") == rule["priority"]), None)
            if holder is not None:  # named here: the rules' own check names whichever type sorts first
                said = f"{rule['priority']} is already the priority of {holder}"
                raise InvalidArgument(f"invalid rule: {said}", reason="RULE_INVALID",
                                      violations=[FieldViolation("rule.priority", said)])
        if "source_keys" in changes:
            rule["sources"] = list(changes["source_keys"])
        data["types"][id_type] = rule
        try:
            updated = IdentityRules.from_dict(data)
        except InvalidIdentityRules as bad:
            raise InvalidArgument(
                f"invalid rule: {bad}",
                reason="RULE_INVALID",
                violations=[FieldViolation(_request_field(bad.field), bad.reason)],
            ) from None
        store.save_rules(conn, space_id, updated, now)
        store.note_rule_time(conn, space_id, id_type, now)
        return updated.types[id_type]

    def violations(
        self, space_id: int, since_ms: int | None, id_type: str, size: int, token: str
    ) -> tuple[list[dict[str, Any]], str]:
        """What the rules held back, per rule and identifier type, the most frequent first; and the next token."""
        limit = page_size(size, DEFAULT_VIOLATIONS_PAGE, MAX_VIOLATIONS_PAGE)
        scope = {"space": space_id, "list": "violations", "since": since_ms, "id_type": id_type}
        after = self._tokens.decode(token, scope)
        with self._readers.snapshot() as conn:
            found = store.violations(conn, space_id, since_ms, id_type, after, limit + 1)
        page = found[:limit]
        if len(found) <= limit:
            return page, ""
        last = page[-1]
        return page, self._tokens.encode([last["count"], last["kind"], last["id_type"]], scope)
