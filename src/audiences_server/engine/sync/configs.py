"""Destination settings as stored: defaults, limits and validation.

The API hands the engine plain dicts (durations in milliseconds); these functions fill in the
contract's defaults and refuse what the contract forbids, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from audiences_server.errors import FieldViolation, InvalidArgument

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
KINDS = ("webhook", "segment", "grpc_feed", "csv")
SECRETS = {"webhook": "hmac_secret", "segment": "write_key"}
DEFAULT_POLICY = {"max_attempts": 8, "initial_backoff_ms": 1000, "max_backoff_ms": 600_000,
                  "request_timeout_ms": 10_000}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "", "headers": {}, "hmac_secret": "", "payload_style": "event", "batch_size": 100,
                "batch_interval_ms": 1000},
    "segment": {"base_url": "", "write_key": "", "batch_size": 100, "batch_interval_ms": 1000},
    "grpc_feed": {"retention_ms": 7 * 86_400_000},
    "csv": {"directory": "", "external_id_types": [], "include_traits": [], "interval_ms": 60_000},
}
_MAX_BATCH = {"webhook": 1000, "segment": 500}


def invalid(field: str, message: str, reason: str = "DESTINATION_INVALID") -> InvalidArgument:
    """An INVALID_ARGUMENT naming one field."""
    return InvalidArgument(message, reason=reason, violations=[FieldViolation(field, message)])


def check_key(key: str, field: str = "key") -> None:
    """Refuses a key that is not snake_case."""
    if not KEY_PATTERN.match(key):
        raise invalid(field, f"key {key!r} must be snake_case: a-z, 0-9 and _, starting with a letter", "KEY_INVALID")


def _url(value: str, field: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise invalid(field, f"`{field}` must be an http or https URL")


def config(kind: str, given: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A kind's settings: the given values over the previous ones (or the defaults), checked.

    An empty secret keeps the previous one, since secrets are never read back and a client that
    writes back what it read would otherwise erase them.
    """
    merged = {**_DEFAULTS[kind], **(previous or {})}
    merged.update({k: v for k, v in given.items() if not (k == SECRETS.get(kind) and not v)})
    for name in ("batch_size", "batch_interval_ms", "retention_ms", "interval_ms"):
        if name in merged and not merged[name]:
            merged[name] = _DEFAULTS[kind][name]
    _check(kind, merged)
    return merged


def _check(kind: str, settings: Mapping[str, Any]) -> None:
    if kind == "webhook":
        _url(settings["url"], "webhook.url")
    if kind == "segment":
        _url(settings["base_url"], "segment.base_url")
        if not settings["write_key"]:
            raise invalid("segment.write_key", "`segment.write_key` is required")
    if kind in _MAX_BATCH and not 0 < settings["batch_size"] <= _MAX_BATCH[kind]:
        raise invalid(f"{kind}.batch_size", f"`{kind}.batch_size` must be 1 to {_MAX_BATCH[kind]}")
    if kind == "csv" and not settings["directory"]:
        raise invalid("csv.directory", "`csv.directory` is required")
    for name, value in settings.items():
        if name.endswith("_ms") and value < 0:
            raise invalid(f"{kind}.{name}", f"`{kind}.{name.removesuffix('_ms')}` must not be negative")


def policy(given: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A delivery policy: the given values (zero means the default) over the previous ones."""
    merged = {**DEFAULT_POLICY, **(previous or {})}
    merged.update({k: v for k, v in given.items() if v})
    if merged["max_attempts"] < 5:
        raise invalid("delivery_policy.max_attempts", "`delivery_policy.max_attempts` must be at least 5")
    for name in ("initial_backoff_ms", "max_backoff_ms", "request_timeout_ms"):
        if merged[name] <= 0:
            raise invalid(f"delivery_policy.{name}", f"`delivery_policy.{name.removesuffix('_ms')}` must be positive")
    return merged


def public_config(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the API shows them: secrets blanked, with whether one is set."""
    shown = dict(settings)
    secret = SECRETS.get(kind)
    if secret:
        shown[secret + "_set"] = bool(shown.get(secret))
        shown[secret] = ""
    return shown


CONNECTION_FIELDS = ("send_identify", "send_track", "send_group", "identifier_selection", "external_id_types")


def connection_options(kind: str, collection: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """What a connection sends, checked against the destination's kind and the collection."""
    sends = [options.get(f, False) for f in ("send_identify", "send_track", "send_group")]
    if kind in ("webhook", "segment") and not any(sends):
        raise invalid("connection.send_identify", "set at least one of send_identify, send_track, send_group",
                      "CONNECTION_INVALID")
    if kind not in ("webhook", "segment") and any(sends):
        raise invalid("connection.send_identify", f"a {kind} destination takes no send_* option",
                      "CONNECTION_INVALID")
    if options.get("send_group") and collection != "accounts":
        raise invalid("connection.send_group", "send_group is for account computations only", "CONNECTION_INVALID")
    return {
        "send_identify": bool(options.get("send_identify")),
        "send_track": bool(options.get("send_track")),
        "send_group": bool(options.get("send_group")),
        "identifier_selection": options.get("identifier_selection") or "all",
        "external_id_types": list(options.get("external_id_types", [])),
    }
