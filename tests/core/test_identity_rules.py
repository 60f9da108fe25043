"""Identity rules: the defaults of docs/identity.md, limits over periods, and the dict form with validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audiences_server.core.identity import (
    DEFAULT_TYPES,
    BlockedValues,
    IdentityRules,
    IdTypeRule,
    InvalidIdentityRules,
    Limit,
    Period,
)

DAY = 24 * 60 * 60 * 1000


@pytest.mark.parametrize(
    ("value", "blocked"),
    [
        ("", True),
        ("0", True),
        ("000", True),
        ("-", True),
        ("0-0-0", True),
        ("00000000-0000-0000-0000-000000000000", True),
        ("-1", True),
        ("null", True),
        ("anonymous", True),
        ("NULL", False),
        ("Anonymous", False),
        ("1", False),
        ("-2", False),
        ("0a", False),
        ("u_123", False),
        ("nullable", False),
    ],
)
def test_default_blocked_values(value: str, blocked: bool) -> None:
    """The defaults block ^[0-]*$ and exactly -1, null, anonymous and the empty value."""
    rules = IdentityRules.defaults()
    for id_type in ("user_id", "email", "anonymous_id", "some_custom_type"):
        assert rules.rule_for(id_type).blocked.blocks(value) is blocked


@pytest.mark.parametrize(
    ("patterns", "values", "value", "blocked"),
    [
        ((r"^test", ), (), "test-user", True),
        ((r"^test", ), (), "a-test", False),
        ((r"test", ), (), "a-test", True),
        ((), ("void", "abc123"), "abc123", True),
        ((), ("void", "abc123"), "abc1234", False),
    ],
)
def test_custom_blocked_values(
    patterns: tuple[str, ...], values: tuple[str, ...], value: str, blocked: bool
) -> None:
    """Patterns are searched (anchor them to match whole values); values match exactly."""
    assert BlockedValues(patterns, values).blocks(value) is blocked


def test_default_limits_and_priorities() -> None:
    """user_id is 1 ever and ranks first, email second, every other type 5 ever, alphabetical."""
    rules = IdentityRules.defaults()
    assert rules.rule_for("user_id").limit == Limit(1, Period.EVER)
    for id_type in (*DEFAULT_TYPES[1:], "phone"):
        assert rules.rule_for(id_type).limit == Limit(5, Period.EVER)
    ranked = sorted(["phone", "anonymous_id", "email", "user_id", "android.id", "ga_client_id"],
                    key=rules.rank)
    assert ranked == ["user_id", "email", "android.id", "anonymous_id", "ga_client_id", "phone"]
    assert (rules.max_merges, rules.max_identifiers) == (100, 1000)


def test_explicit_priority_ranks_before_unranked_types() -> None:
    """An explicit priority outranks every type left to the alphabetical order."""
    rules = IdentityRules(types={
        "user_id": IdTypeRule(limit=Limit(1), priority=1),
        "zeta": IdTypeRule(priority=2),
        "alpha": IdTypeRule(),
    })
    assert sorted(["alpha", "zeta", "user_id", "beta"], key=rules.rank) == [
        "user_id", "zeta", "alpha", "beta",
    ]


@pytest.mark.parametrize(
    ("limit", "added_days_ago", "counts"),
    [
        (Limit(5, Period.EVER), 5000, True),
        (Limit(5, Period.DAILY), 1, True),
        (Limit(5, Period.DAILY), 2, False),
        (Limit(5, Period.WEEKLY), 6, True),
        (Limit(5, Period.WEEKLY), 7, True),
        (Limit(5, Period.WEEKLY), 8, False),
        (Limit(5, Period.MONTHLY), 30, True),
        (Limit(5, Period.MONTHLY), 31, False),
        (Limit(5, Period.ANNUALLY), 365, True),
        (Limit(5, Period.ANNUALLY), 366, False),
    ],
)
def test_period_window(limit: Limit, added_days_ago: int, counts: bool) -> None:
    """A value counts against a period limit when added within the window ending now (inclusive)."""
    now = 1000 * DAY
    assert limit.counts(now - added_days_ago * DAY, now) is counts


def test_round_trip_through_json() -> None:
    """to_dict gives JSON-ready data that from_dict reads back to equal rules."""
    rules = IdentityRules(
        types={
            "user_id": IdTypeRule(limit=Limit(1), priority=1),
            "anonymous_id": IdTypeRule(limit=Limit(5, Period.WEEKLY),
                                       blocked=BlockedValues((r"^x$",), ("void",)), priority=3),
        },
        default=IdTypeRule(limit=Limit(2, Period.ANNUALLY)),
        max_merges=7,
        max_identifiers=50,
    )
    data = json.loads(json.dumps(rules.to_dict()))
    assert IdentityRules.from_dict(data) == rules
    assert IdentityRules.from_dict(IdentityRules.defaults().to_dict()) == IdentityRules.defaults()


def test_from_dict_fills_defaults() -> None:
    """Missing parts take the defaults of docs/identity.md; a partial type rule keeps default blocking."""
    assert IdentityRules.from_dict({}) == IdentityRules.defaults()
    rules = IdentityRules.from_dict({"types": {
        "user_id": {"limit": {"count": 1}, "priority": 1},
        "email": {"limit": {"count": 1, "period": "annually"}},
    }})
    assert rules.rule_for("email") == IdTypeRule(limit=Limit(1, Period.ANNUALLY))
    assert rules.rule_for("email").blocked.blocks("null")
    assert rules.rule_for("phone") == IdTypeRule()


def user_id_ok(**extra: Any) -> dict[str, Any]:
    return {"user_id": {"limit": {"count": 1, "period": "ever"}, "priority": 1}, **extra}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        pytest.param([], "", "must be an object", id="not an object"),
        pytest.param({"typo": 1}, "", "unknown field 'typo'", id="unknown top-level field"),
        pytest.param(
            {"types": user_id_ok(email={"limit": {"count": 5, "period": "hourly"}})},
            "types.email.limit.period", "unknown period 'hourly'", id="unknown period",
        ),
        pytest.param(
            {"types": user_id_ok(email={"limit": {"count": 0}})},
            "types.email.limit.count", "positive integer", id="zero limit",
        ),
        pytest.param(
            {"types": user_id_ok(email={"limit": {"count": -3}})},
            "types.email.limit.count", "positive integer", id="negative limit",
        ),
        pytest.param(
            {"types": user_id_ok(email={"limit": {"count": True}})},
            "types.email.limit.count", "positive integer", id="boolean limit",
        ),
        pytest.param(
            {"types": user_id_ok(email={"limit": {"period": "ever"}})},
            "types.email.limit.count", "required", id="missing count",
        ),
        pytest.param(
            {"types": user_id_ok(email={"blocked": {"patterns": ["("]}})},
            "types.email.blocked.patterns", "bad regular expression", id="bad regex",
        ),
        pytest.param(
            {"types": user_id_ok(email={"blocked": {"values": "null"}})},
            "types.email.blocked.values", "list of strings", id="values not a list",
        ),
        pytest.param(
            {"types": user_id_ok(email={"blocked": {"values": [1]}})},
            "types.email.blocked.values", "list of strings", id="value not a string",
        ),
        pytest.param(
            {"types": user_id_ok(email={"priority": 0})},
            "types.email.priority", "positive integer", id="zero priority",
        ),
        pytest.param(
            {"types": user_id_ok(email={"priority": 1})},
            "types.user_id.priority", "already the priority of email", id="duplicate priority",
        ),
        pytest.param(
            {"types": user_id_ok(email={"colour": "red"})},
            "types.email", "unknown field 'colour'", id="unknown rule field",
        ),
        pytest.param(
            {"types": user_id_ok(Email={})}, "types", "lower case", id="upper-case type",
        ),
        pytest.param(
            {"types": {"email": {}}}, "types.user_id", "required", id="user_id missing",
        ),
        pytest.param(
            {"types": {"user_id": {"limit": {"count": 2}}}},
            "types.user_id.limit", "two different user_ids never share", id="user_id limit 2",
        ),
        pytest.param(
            {"types": {"user_id": {"limit": {"count": 1, "period": "weekly"}}}},
            "types.user_id.limit", "must be 1 ever", id="user_id limit weekly",
        ),
        pytest.param(
            {"default": {"priority": 4}}, "default.priority", "no priority",
            id="default with a priority",
        ),
        pytest.param({"max_merges": 0}, "max_merges", "positive", id="zero merge cap"),
        pytest.param(
            {"max_identifiers": "1000"}, "max_identifiers", "positive", id="string cap",
        ),
    ],
)
def test_from_dict_rejects_bad_rules(data: object, field: str, words: str) -> None:
    """Bad rules raise InvalidIdentityRules naming the field and saying what is wrong."""
    with pytest.raises(InvalidIdentityRules, match=words) as caught:
        IdentityRules.from_dict(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: " if field else words[:4])


def test_rules_are_immutable() -> None:
    """The types map of a rule set cannot be changed after validation."""
    rules = IdentityRules.defaults()
    with pytest.raises(TypeError):
        rules.types["user_id"] = IdTypeRule()  # type: ignore[index]


def test_patterns_saved_before_they_were_re2_are_still_read() -> None:
    """A rule saved when patterns were Python's `re` (lookaround, say) is read as it was, so
    ingestion goes on; given anew, the same pattern is refused."""
    import json

    from audiences_server.store.identity import _parsed_rules

    data = IdentityRules.defaults().to_dict()
    data["types"]["email"] = {**data["default"], "blocked": {"patterns": ["^(?!.*@)"], "values": []}}
    stored = _parsed_rules(json.dumps(data))
    assert stored.rule_for("email").blocked.blocks("no-at-sign")
    assert not stored.rule_for("email").blocked.blocks("ada@example.com")
    with pytest.raises(InvalidIdentityRules, match="RE2"):
        IdentityRules.from_dict(data)
