"""Destination settings as stored: defaults, limits and validation.

The API hands the engine plain dicts (durations in milliseconds); these functions fill in the
kind's defaults (engine.destinations) and refuse what the contract forbids, naming the field.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from audiences_server.engine.computations import MAX_NAME_CHARS
from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import check_id_types, invalid

__all__ = ["backoff_ms", "check_key", "check_name", "config", "connection_options", "invalid", "policy",
           "public_config", "with_defaults"]

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
DEFAULT_POLICY = {"max_attempts": 8, "initial_backoff_ms": 1000, "max_backoff_ms": 600_000,
                  "request_timeout_ms": 10_000}
# The longest each duration of a delivery policy may be: a day for backoffs, an hour for a request.
POLICY_MAX_MS = {"initial_backoff_ms": 86_400_000, "max_backoff_ms": 86_400_000, "request_timeout_ms": 3_600_000}


def check_key(key: str, field: str = "key") -> None:
    """Refuses a key that is not snake_case."""
    if not KEY_PATTERN.match(key):
        raise invalid(field, f"key {key!r} must be snake_case: a-z, 0-9 and _, starting with a letter", "KEY_INVALID")


def check_name(name: str) -> None:
    """Refuses a display name past the limit definitions have: every destination is in
    ListDestinations' replies, which a default gRPC client takes up to 4 MiB of."""
    if len(name) > MAX_NAME_CHARS:
        raise invalid("name", f"`name` is {len(name):,} characters long; at most {MAX_NAME_CHARS:,} are kept",
                      "FIELD_TOO_LONG")


def config(kind: str, given: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A kind's settings: the given values over the previous ones (or the defaults), checked.

    A value left empty (zero, empty text or list) means the default. An empty secret keeps the
    previous one, since secrets are never read back and a client that writes back what it read
    would otherwise erase them. Settings the kind does not have are ignored.
    """
    destination = registry.get(kind)
    defaults = destination.defaults
    merged = {**defaults, **(previous or {})}
    for name, value in given.items():
        if name not in defaults:
            continue
        if name in destination.secrets:
            merged[name] = value or merged[name]
        else:
            merged[name] = value if value or isinstance(value, bool) else defaults[name]
    for name, value in merged.items():
        if name.endswith("_ms") and value < 0:
            field = f"{kind}.{name.removesuffix('_ms')}"  # the contract's name of the setting
            raise invalid(field, f"`{field}` must not be negative")
    destination.check(merged)
    return merged


def with_defaults(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Stored settings with the defaults of settings added since they were stored."""
    return {**registry.get(kind).defaults, **settings}


def policy(given: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A delivery policy: the given values (zero means the default) over the previous ones.

    Bounded so that every value can be used: a socket refuses a timeout of thousands of years
    (OverflowError, every request of the destination failing before it is sent), and a retry
    timed past what the database stores would fail the outcome's commit."""
    merged = {**DEFAULT_POLICY, **(previous or {})}
    merged.update({k: v for k, v in given.items() if v})
    if merged["max_attempts"] < 5:
        raise invalid("delivery_policy.max_attempts", "`delivery_policy.max_attempts` must be at least 5")
    for name, most in POLICY_MAX_MS.items():
        field = f"delivery_policy.{name.removesuffix('_ms')}"
        if merged[name] <= 0:
            raise invalid(field, f"`{field}` must be positive")
        if merged[name] > most:
            raise invalid(field, f"`{field}` must be at most {most // 1000:,} seconds")
    if merged["initial_backoff_ms"] > merged["max_backoff_ms"]:
        raise invalid("delivery_policy.initial_backoff", "`delivery_policy.initial_backoff` must not be longer than "
                      f"`delivery_policy.max_backoff` ({merged['max_backoff_ms']:,} ms)")
    return merged


def backoff_ms(attempts: int, rules: Mapping[str, int], retry_after_ms: int | None) -> int:
    """The wait before the next attempt: doubling from the initial backoff, capped, with jitter
    (half to all of it, so that many failed deliveries do not come back at the same moment),
    and never shorter than the receiver asked for, up to the maximum backoff: a receiver cannot
    hold deliveries longer than the policy lets any wait be (`Retry-After: Infinity`)."""
    ceiling = min(rules["max_backoff_ms"], rules["initial_backoff_ms"] * 2 ** max(0, attempts - 1))
    wait = int(ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
    return max(wait, min(retry_after_ms or 0, rules["max_backoff_ms"]))


def public_config(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the API shows them: secrets blanked, with whether one is set."""
    shown = with_defaults(kind, settings)
    for secret in registry.get(kind).secrets:
        shown[secret + "_set"] = bool(shown.get(secret))
        shown[secret] = ""
    return shown


CONNECTION_FIELDS = ("send_identify", "send_track", "send_group", "identifier_selection", "external_id_types")


def connection_options(kind: str, collection: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """What a connection sends, checked against the destination's kind and the collection."""
    sends = [options.get(f, False) for f in ("send_identify", "send_track", "send_group")]
    takes_calls = registry.get(kind).sends_calls
    if takes_calls and not any(sends):
        raise invalid("connection.send_identify", "set at least one of send_identify, send_track, send_group",
                      "CONNECTION_INVALID")
    if not takes_calls and any(sends):
        raise invalid("connection.send_identify", f"a {kind} destination takes no send_* option",
                      "CONNECTION_INVALID")
    if options.get("send_group") and collection != "accounts":
        raise invalid("connection.send_group", "send_group is for account computations only", "CONNECTION_INVALID")
    check_id_types(list(options.get("external_id_types", [])), "connection.external_id_types", "CONNECTION_INVALID")
    return {
        "send_identify": bool(options.get("send_identify")),
        "send_track": bool(options.get("send_track")),
        "send_group": bool(options.get("send_group")),
        "identifier_selection": options.get("identifier_selection") or "all",
        "external_id_types": list(options.get("external_id_types", [])),
    }

