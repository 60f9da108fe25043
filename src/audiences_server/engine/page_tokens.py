"""Opaque, tamper-evident page tokens for every listing.

A token carries the cursor (the last item's sort key) and a fingerprint of what was asked (the
space, the listing and its filters), signed with HMAC-SHA256 under a key the database keeps.
A token that was altered, forged, garbled, or made for another space or other filters is
refused with INVALID_ARGUMENT `PAGE_TOKEN_INVALID`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from audiences_server.errors import FieldViolation, InvalidArgument


def page_size(requested: int, default: int, maximum: int) -> int:
    """The page size to use: the default for 0, cut to the maximum, never negative."""
    if requested < 0:
        raise InvalidArgument("`page_size` must not be negative", reason="PAGE_SIZE_INVALID",
                              violations=[FieldViolation("page_size", "negative")])
    return min(requested or default, maximum)


def _invalid() -> InvalidArgument:
    return InvalidArgument("the page token is not valid for this request", reason="PAGE_TOKEN_INVALID",
                           violations=[FieldViolation("page_token", "not a token this server issued for this request")])


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class PageTokens:
    """Makes and reads page tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _fingerprint(self, scope: Mapping[str, Any]) -> str:
        text = json.dumps(scope, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, cursor: Any, scope: Mapping[str, Any]) -> str:
        """A token for the page after `cursor`, valid only for the same scope."""
        payload = json.dumps({"c": cursor, "f": self._fingerprint(scope)}, separators=(",", ":")).encode()
        return _text(payload + self._sign(payload))

    def decode(self, token: str, scope: Mapping[str, Any]) -> Any:
        """The cursor a token carries; an empty token means the first page (None)."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _invalid() from None
        # The decoder skips characters outside the alphabet; only the exact text we made counts.
        if _text(raw) != token:
            raise _invalid()
        payload, signature = raw[:-16], raw[-16:]
        if len(raw) <= 16 or not hmac.compare_digest(signature, self._sign(payload)):
            raise _invalid()
        decoded = json.loads(payload)
        if decoded.get("f") != self._fingerprint(scope):
            raise _invalid()
        return decoded["c"]
