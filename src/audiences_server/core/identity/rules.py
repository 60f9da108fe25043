"""A space's identity resolution rules: blocked values, limits, priorities and hard caps.

Defaults are those of docs/identity.md, which are Segment's documented defaults
(`src/unify/identity-resolution/identity-resolution-onboarding.md`): block `^[0-]*$`, `-1`,
`null`, `anonymous` (and the empty value); `user_id` 1 ever and every other type 5 ever;
priority `user_id`, `email`, then the other types alphabetically; 100 merges and 1,000
identifiers per profile (`src/unify/product-limits.md`).

Rules serialise to plain dicts (`to_dict` / `from_dict`) for storage as JSON and for the admin
API; every constructor validates and raises `InvalidIdentityRules` naming the bad field.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import re2

_DAY_MS = 24 * 60 * 60 * 1000
# RE2 reports a pattern it refuses on stderr unless told not to; the refusal is an exception here.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# Set while rules saved in the database are read (see `_compile`).
STORED_PATTERNS: contextvars.ContextVar[bool] = contextvars.ContextVar("stored_patterns", default=False)
USER_ID = "user_id"
DEFAULT_BLOCKED_PATTERNS = (r"^[0-]*$",)
DEFAULT_BLOCKED_VALUES = ("-1", "null", "anonymous", "")
# The types Segment promotes by default; listed so that the admin API shows them all.
DEFAULT_TYPES = (
    "user_id", "email", "android.id", "android.idfa", "android.push_token", "anonymous_id",
    "ga_client_id", "group_id", "ios.id", "ios.idfa", "ios.push_token",
)
# Where a rule may read its type from besides `context.externalIds`: a key of these objects.
SOURCE_PREFIXES = ("properties.", "context.traits.")
MAX_SOURCES, MAX_SOURCE_CHARS = 10, 200
# Types whose value comes from a field of their own (or that name an account), never from a key.
_FIXED_TYPES = frozenset({USER_ID, "anonymous_id", "group_id"})


class InvalidIdentityRules(ValueError):
    """A rule set that cannot be used; `field` is a dotted path to the bad part."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}" if field_path else reason)
        self.field = field_path
        self.reason = reason

    def within(self, prefix: str) -> InvalidIdentityRules:
        """The same error with its field path placed under `prefix`."""
        return InvalidIdentityRules(".".join(p for p in (prefix, self.field) if p), self.reason)


class Period(StrEnum):
    """How far back a limit looks. Days are 24 hours, weeks 7 days, months 30 and years 365."""

    EVER = "ever"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ANNUALLY = "annually"

    @property
    def window_ms(self) -> int | None:
        """Length of the sliding window in milliseconds; None for `ever`."""
        return _WINDOW_MS[self]


_WINDOW_MS: dict[Period, int | None] = {
    Period.EVER: None,
    Period.DAILY: _DAY_MS,
    Period.WEEKLY: 7 * _DAY_MS,
    Period.MONTHLY: 30 * _DAY_MS,
    Period.ANNUALLY: 365 * _DAY_MS,
}


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` distinct values of a type on one profile, counting only values added
    to the profile within the sliding window of `period` that ends now (edge inclusive).

    This is Segment's "limit to how many identifier type values can be added in a period of
    time" (`src/unify/insights.md`): with `5 weekly` a profile may hold any number of
    anonymous ids, but at most 5 added in the last 7 days.
    """

    count: int
    period: Period = Period.EVER

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise InvalidIdentityRules("count", f"must be a positive integer, got {self.count!r}")
        if not isinstance(self.period, Period):
            raise InvalidIdentityRules("period", _period_reason(self.period))

    def __str__(self) -> str:
        return f"{self.count} {self.period.value}"

    def counts(self, added_ms: int, now_ms: int) -> bool:
        """Whether a value added at `added_ms` counts against this limit at `now_ms`."""
        window = self.period.window_ms
        return window is None or added_ms >= now_ms - window


@dataclass(frozen=True, slots=True)
class BlockedValues:
    """Values never used as identifiers (they stay on the event).

    A value is blocked when it equals one of `values` exactly (case-sensitive, as Segment's
    "Exact Match") or when one of `patterns` is found in it (a search), so a pattern matches the
    whole value only when it is anchored, as the default `^[0-]*$` is.

    Patterns are RE2's syntax, matched in time linear in the value: the writer tests every
    identifier of every call against them, and a backtracking engine lets a pattern such as
    `(a+)+$` take seconds over a value of thirty characters, holding up all ingestion. RE2 has
    no backreferences or lookaround; such a pattern is refused (`_compile`).
    """

    patterns: tuple[str, ...] = DEFAULT_BLOCKED_PATTERNS
    values: tuple[str, ...] = DEFAULT_BLOCKED_VALUES
    _compiled: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patterns", _strings(self.patterns, "patterns"))
        object.__setattr__(self, "values", _strings(self.values, "values"))
        object.__setattr__(self, "_compiled", tuple(_compile(p) for p in self.patterns))

    def blocks(self, value: str) -> bool:
        """Whether `value` is blocked."""
        return value in self.values or any(p.search(value) for p in self._compiled)

    def reason(self, value: str) -> str:
        """Which rule blocks `value`, for the violation's detail ('' when none does)."""
        if value in self.values:
            return f"exact value {value!r}"
        return next((f"pattern {p.pattern!r}" for p in self._compiled if p.search(value)), "")


@dataclass(frozen=True, slots=True)
class IdTypeRule:
    """The rules of one id type.

    Attributes:
        limit: how many values of the type a profile may hold (see `Limit`).
        blocked: values of the type never used as identifiers.
        priority: explicit rank, 1 is highest; None ranks after every explicit rank,
            alphabetically by type (Segment's "then the other types alphabetically").
        sources: keys of a call the type is also read from, each `properties.<key>` or
            `context.traits.<key>` (the rest of the text is one key, dots included), as
            Segment picks a custom identifier up from a configured property or trait.
    """

    limit: Limit = field(default_factory=lambda: Limit(5))
    blocked: BlockedValues = field(default_factory=BlockedValues)
    priority: int | None = None
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.limit, Limit):
            raise InvalidIdentityRules("limit", "must be a Limit")
        if not isinstance(self.blocked, BlockedValues):
            raise InvalidIdentityRules("blocked", "must be BlockedValues")
        bad = isinstance(self.priority, bool) or not isinstance(self.priority, int | None)
        if bad or (self.priority is not None and self.priority < 1):
            raise InvalidIdentityRules(
                "priority", f"must be a positive integer or null, got {self.priority!r}"
            )
        object.__setattr__(self, "sources", _sources(self.sources))

    def to_dict(self) -> dict[str, Any]:
        """This rule as plain JSON-ready data."""
        blocked = self.blocked
        return {
            "limit": {"count": self.limit.count, "period": self.limit.period.value},
            "blocked": {"patterns": list(blocked.patterns), "values": list(blocked.values)},
            "priority": self.priority,
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, data: object) -> IdTypeRule:
        """Read a rule written by `to_dict`; missing parts take the defaults (rules stored
        before `sources` existed have none).

        Raises:
            InvalidIdentityRules: naming the bad field.
        """
        raw = _object(data, "", {"limit", "blocked", "priority", "sources"})
        return cls(
            limit=_limit(raw["limit"]) if "limit" in raw else Limit(5),
            blocked=_blocked(raw["blocked"]) if "blocked" in raw else BlockedValues(),
            priority=raw.get("priority"),
            sources=raw.get("sources", ()),
        )


@dataclass(frozen=True, slots=True)
class IdentityRules:
    """All identity rules of one space.

    Attributes:
        types: the rule of each configured id type (lower case). `user_id` must be present with
            the limit `1 ever`: the merge protection of docs/identity.md (two different user_ids never share a
            profile) is this limit, so it cannot be loosened.
        default: the rule of every type not in `types` (custom types seen for the first time);
            it has no explicit priority.
        max_merges: hard cap on the merges folded into one profile (Segment: 100).
        max_identifiers: hard cap on the identifiers of one profile (Segment: 1,000).
    """

    types: Mapping[str, IdTypeRule]
    default: IdTypeRule = field(default_factory=IdTypeRule)
    max_merges: int = 100
    max_identifiers: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", MappingProxyType(dict(self.types)))
        for name, rule in self.types.items():
            _check_type_rule(name, rule)
        if not isinstance(self.default, IdTypeRule) or self.default.priority is not None:
            raise InvalidIdentityRules("default.priority", "the default rule has no priority")
        if self.default.sources:
            raise InvalidIdentityRules("default.sources", "the default rule names no type to read")
        _check_user_id(self.types)
        _check_unique_priorities(self.types)
        for name in ("max_merges", "max_identifiers"):
            _check_positive(name, getattr(self, name))

    @classmethod
    def defaults(cls) -> IdentityRules:
        """The default rules of docs/identity.md (Segment's out-of-the-box rules)."""
        types = {name: IdTypeRule() for name in DEFAULT_TYPES}
        types[USER_ID] = IdTypeRule(limit=Limit(1), priority=1)
        types["email"] = IdTypeRule(priority=2)
        return cls(types=types)

    def rule_for(self, id_type: str) -> IdTypeRule:
        """The rule of `id_type`: its own, else the default rule."""
        return self.types.get(id_type, self.default)

    @property
    def sources(self) -> dict[str, tuple[str, ...]]:
        """Each type that is also read from keys of the call, with those keys."""
        return {name: rule.sources for name, rule in self.types.items() if rule.sources}

    def rank(self, id_type: str) -> tuple[int, int, str]:
        """Sort key of `id_type` by priority: smaller is higher priority."""
        priority = self.rule_for(id_type).priority
        return (0, priority, id_type) if priority is not None else (1, 0, id_type)

    def to_dict(self) -> dict[str, Any]:
        """These rules as plain JSON-ready data (the shape `from_dict` reads)."""
        return {
            "types": {name: self.types[name].to_dict() for name in sorted(self.types)},
            "default": self.default.to_dict(),
            "max_merges": self.max_merges,
            "max_identifiers": self.max_identifiers,
        }

    @classmethod
    def from_dict(cls, data: object) -> IdentityRules:
        """Read rules written by `to_dict`.

        A missing `types` means the default types; a missing `default`, `max_merges` or
        `max_identifiers` takes its default. Unknown keys are errors, so typos do not pass
        silently.

        Raises:
            InvalidIdentityRules: naming the bad field, e.g. `types.email.limit.period`.
        """
        raw = _object(data, "", {"types", "default", "max_merges", "max_identifiers"})
        base = cls.defaults()
        types = _types(raw["types"]) if "types" in raw else dict(base.types)
        default = _nested(IdTypeRule.from_dict, raw, "default") if "default" in raw else None
        return cls(
            types=types,
            default=default or base.default,
            max_merges=raw.get("max_merges", base.max_merges),
            max_identifiers=raw.get("max_identifiers", base.max_identifiers),
        )


def _check_type_rule(name: object, rule: object) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip().lower():
        raise InvalidIdentityRules("types", f"id types are non-empty lower case, got {name!r}")
    if not isinstance(rule, IdTypeRule):
        raise InvalidIdentityRules(f"types.{name}", "must be an IdTypeRule")
    if rule.sources and name in _FIXED_TYPES:
        raise InvalidIdentityRules(f"types.{name}.sources", f"{name} is read from its own field only")


def _sources(raw: object) -> tuple[str, ...]:
    items = _strings(raw, "sources")
    if len(items) > MAX_SOURCES:
        raise InvalidIdentityRules("sources", f"at most {MAX_SOURCES} keys, got {len(items)}")
    for item in items:
        prefix = next((p for p in SOURCE_PREFIXES if item.startswith(p)), None)
        if prefix is None or len(item) == len(prefix) or len(item) > MAX_SOURCE_CHARS:
            raise InvalidIdentityRules(
                "sources", f"each is `properties.<key>` or `context.traits.<key>`, at most {MAX_SOURCE_CHARS} "
                           f"characters, got {item!r}")
    if len(set(items)) != len(items):
        raise InvalidIdentityRules("sources", "a key is named twice")
    return items


def _check_user_id(types: Mapping[str, IdTypeRule]) -> None:
    rule = types.get(USER_ID)
    if rule is None:
        raise InvalidIdentityRules(f"types.{USER_ID}", "is required (merge protection)")
    if rule.limit != Limit(1, Period.EVER):
        raise InvalidIdentityRules(
            f"types.{USER_ID}.limit",
            f"must be 1 ever: two different user_ids never share a profile, got {rule.limit}",
        )


def _check_unique_priorities(types: Mapping[str, IdTypeRule]) -> None:
    holders: dict[int, str] = {}
    for name in sorted(types):
        priority = types[name].priority
        if priority is None:
            continue
        if priority in holders:
            reason = f"{priority} is already the priority of {holders[priority]}"
            raise InvalidIdentityRules(f"types.{name}.priority", reason)
        holders[priority] = name


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidIdentityRules(name, f"must be a positive integer, got {value!r}")


def _period_reason(raw: object) -> str:
    names = ", ".join(p.value for p in Period)
    return f"unknown period {raw!r} (expected one of {names})"


def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as err:
        problem = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
    if STORED_PATTERNS.get():
        # Saved before patterns were RE2's (Python's `re` then): read as it was saved, so that
        # ingestion goes on; an update of the space's rules refuses it until it is rewritten.
        try:
            return re.compile(pattern)
        except re.error:
            pass
    reason = f"bad regular expression {pattern!r} (RE2 syntax: no backreferences or lookaround): {problem}"
    raise InvalidIdentityRules("patterns", reason) from None


def _strings(raw: object, name: str) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise InvalidIdentityRules(name, f"must be a list of strings, got {raw!r}")
    items = tuple(raw)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise InvalidIdentityRules(name, f"must be a list of strings, got {bad[0]!r}")
    return items


def _object(data: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidIdentityRules(path, f"must be an object, got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise InvalidIdentityRules(path, f"unknown field {unknown[0]!r}")
    return data


def _limit(data: object) -> Limit:
    raw = _object(data, "limit", {"count", "period"})
    if "count" not in raw:
        raise InvalidIdentityRules("limit.count", "is required")
    period = raw.get("period", Period.EVER.value)
    if period not in {p.value for p in Period}:
        raise InvalidIdentityRules("limit.period", _period_reason(period))
    try:
        return Limit(count=raw["count"], period=Period(period))
    except InvalidIdentityRules as err:
        raise err.within("limit") from None


def _blocked(data: object) -> BlockedValues:
    raw = _object(data, "blocked", {"patterns", "values"})
    try:
        return BlockedValues(
            patterns=raw.get("patterns", DEFAULT_BLOCKED_PATTERNS),
            values=raw.get("values", DEFAULT_BLOCKED_VALUES),
        )
    except InvalidIdentityRules as err:
        raise err.within("blocked") from None


def _types(data: object) -> dict[str, IdTypeRule]:
    raw = _object(data, "types", set(data) if isinstance(data, Mapping) else set())
    for name in raw:
        _check_type_rule(name, IdTypeRule())
    return {name: _nested(IdTypeRule.from_dict, raw, name, "types") for name in raw}


def _nested(
    read: Callable[[object], IdTypeRule], raw: Mapping[str, Any], key: str, prefix: str = ""
) -> IdTypeRule:
    path = ".".join(p for p in (prefix, key) if p)
    try:
        return read(raw[key])
    except InvalidIdentityRules as err:
        raise err.within(path) from None
