"""Page tokens: opaque, signed, bound to what was asked; page sizes defaulted and capped."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.errors import InvalidArgument

TOKENS = PageTokens(b"k" * 32)
SCOPE = {"space": 1, "rpc": "events", "profile": 7, "include": ["Bought"]}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _rejects(token: str, scope: dict[str, Any] = SCOPE) -> None:
    with pytest.raises(InvalidArgument) as caught:
        TOKENS.decode(token, scope)
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    assert [v.field for v in caught.value.violations] == ["page_token"]


cursors = st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c, max_size=4))


@given(cursor=cursors)
def test_a_token_gives_back_its_cursor(cursor: Any) -> None:
    """Whatever JSON cursor a token carries comes back unchanged for the same scope."""
    assert TOKENS.decode(TOKENS.encode(cursor, SCOPE), SCOPE) == cursor


def test_an_empty_token_is_the_first_page() -> None:
    """No token means no cursor."""
    assert TOKENS.decode("", SCOPE) is None


@pytest.mark.parametrize(
    "scope",
    [
        {**SCOPE, "space": 2},
        {**SCOPE, "rpc": "traits"},
        {**SCOPE, "profile": 8},
        {**SCOPE, "include": []},
        {k: v for k, v in SCOPE.items() if k != "include"},
    ],
    ids=["other space", "other listing", "other profile", "other filter", "filter left out"],
)
def test_a_token_is_refused_for_another_request(scope: dict[str, Any]) -> None:
    """A token made for one space, listing, profile or filter is refused for any other."""
    _rejects(TOKENS.encode([1, "m"], SCOPE), scope)


def _altered(token: str) -> str:
    raw = bytearray(_raw(token))
    raw[2] ^= 0x01
    return _b64(bytes(raw))


def _resigned_cursor(token: str) -> str:
    raw = _raw(token)
    payload = json.loads(raw[:-16])
    payload["c"] = [0, ""]
    return _b64(json.dumps(payload, separators=(",", ":")).encode() + raw[-16:])


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_altered, "a flipped bit"),
        (_resigned_cursor, "a cursor changed under the old signature"),
        (lambda t: PageTokens(b"x" * 32).encode([1, "m"], SCOPE), "signed with another key"),
        (lambda t: t[:-3], "cut short"),
        (lambda t: "%%%" + t, "not base64"),
        (lambda t: "ü", "not ASCII"),
        (lambda t: _b64(b"short"), "shorter than a signature"),
        (lambda t: _b64(b"{}" + b"\0" * 16), "a zero signature"),
    ],
)
def test_forged_and_garbled_tokens_are_refused(make: Any, what: str) -> None:
    """Any token the server did not make, byte for byte, is INVALID_ARGUMENT PAGE_TOKEN_INVALID."""
    _rejects(make(TOKENS.encode([1, "m"], SCOPE)))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(0, 10), (1, 1), (10, 10), (200, 200), (201, 200), (2**31 - 1, 200)],
)
def test_page_size_defaults_and_caps(requested: int, expected: int) -> None:
    """0 means the default; anything above the maximum is read as the maximum."""
    assert page_size(requested, 10, 200) == expected


def test_a_negative_page_size_is_refused() -> None:
    """A negative page size is INVALID_ARGUMENT naming `page_size`."""
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1, 10, 200)
    assert caught.value.violations[0].field == "page_size"
