"""Identity rules per space: read them, change one id type's rule, see what the rules held back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apsw

from audiences_server.core.identity import IdentityRules, IdTypeRule, InvalidIdentityRules
from audiences_server.engine.clock import Clock
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store import identity as store
from audiences_server.store.db import Readers
from audiences_server.store.writer import Writer

RULE_FIELDS = frozenset({"blocked_patterns", "blocked_values", "limit", "limit_period", "priority"})


class IdentityAdmin:
    """The identity-rule use cases."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock

    def rules(self, space_id: int) -> tuple[IdentityRules, dict[str, int]]:
        """The space's rules and when each type's rule was last changed."""
        conn = self._readers.get()
        return store.rules(conn, space_id), store.rule_times(conn, space_id)

    def update(self, space_id: int, id_type: str, changes: Mapping[str, Any]) -> tuple[IdTypeRule, int]:
        """Changes the rule of one identifier type; later messages follow it."""
        unknown = set(changes) - RULE_FIELDS
        if not id_type or unknown:
            raise InvalidArgument(
                "name the rule by `id_type` and change only " + ", ".join(sorted(RULE_FIELDS)),
                reason="RULE_INVALID",
                violations=[
                    FieldViolation("rule.id_type" if not id_type else f, "invalid")
                    for f in (sorted(unknown) or ["rule.id_type"])
                ],
            )
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
        data["types"][id_type] = rule
        try:
            updated = IdentityRules.from_dict(data)
        except InvalidIdentityRules as bad:
            raise InvalidArgument(
                f"invalid rule: {bad}",
                reason="RULE_INVALID",
                violations=[FieldViolation(f"rule.{bad.field}", str(bad))],
            ) from None
        store.save_rules(conn, space_id, updated, now)
        store.note_rule_time(conn, space_id, id_type, now)
        return updated.types[id_type]

    def violations(self, space_id: int, since_ms: int | None, id_type: str) -> list[dict[str, Any]]:
        """What the rules held back, per rule and identifier type."""
        return store.violations(self._readers.get(), space_id, since_ms, id_type)
