"""core.tracking: validation and normalisation of single calls, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiences_server.core import json_text, tracking

RECEIVED = 1_800_000_000_000  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-01-01T00:00:00Z", 1767225600000),
        ("2026-01-01T00:00:00.001Z", 1767225600001),
        ("2026-01-01T01:00:00+01:00", 1767225600000),
        ("2026-01-01T00:00:00", 1767225600000),
        ("2026-01-01T00:00:00.999999Z", 1767225600999),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2026-01-01 00:00:00.001z", 1767225600001),
        ("20260101T000000Z", 1767225600000),
        ("2026-1-1t0:00:00Z", 1767225600000),
        ("2026-W01-4T00:00:00Z", 1767225600000),
        ("2026W014T000000Z", 1767225600000),
    ],
)
def test_parse_time_to_the_millisecond(text: str, ms: int) -> None:
    """ISO-8601 times become exact integer milliseconds (naive times are UTC, microseconds cut)."""
    assert tracking.parse_time(text, "timestamp") == ms


@pytest.mark.parametrize("text", ["2027-01-02X10:00:00", "2027-01-02T10:00:00#Z", "2027-01-02T10:00:00\x00Z",
                                  "2027-01-02\u00e910:00:00", "2027-1-2T10:00:00?Z"])
def test_what_is_not_iso_8601_is_refused(text: str) -> None:
    """Python's `fromisoformat` takes any character between date and time and a stray one before
    the zone; the tracking API does not."""
    with pytest.raises(tracking._Reject, match="not an ISO-8601 time"):
        tracking.parse_time(text, "timestamp")


@pytest.mark.parametrize("ms", [0, 1, 999, 1767225600001, 1800000000123])
def test_format_time_round_trips(ms: int) -> None:
    """Stored times print as ISO-8601 UTC with milliseconds and parse back to the same value."""
    assert tracking.parse_time(tracking.format_time(ms), "t") == ms


def test_numeric_ids_become_strings() -> None:
    """Whole-number ids are taken as their decimal text, as many backends send them."""
    call = tracking.normalize({"type": "track", "userId": 42, "event": "E"}, RECEIVED)
    assert isinstance(call, tracking.Call)
    assert call.user_id == "42"


@pytest.mark.parametrize(("field", "value", "text"), [("groupId", 7.0, "7"), ("previousId", 55.0, "55"),
                                                      ("userId", 1e20, "100000000000000000000")])
def test_a_whole_float_id_is_its_integer(field: str, value: float, text: str) -> None:
    """analytics-python sends a number id as it is, and a whole one from a float column is `7.0`:
    it is the whole number's text, as the identifiers read from the call are; a fraction is not
    an id (`id_not_string`)."""
    kind = {"groupId": "group", "previousId": "alias", "userId": "track"}[field]
    raw: dict[str, Any] = {"type": kind, "userId": "u", "event": "E", field: value}
    call = tracking.normalize(raw, RECEIVED)
    assert isinstance(call, tracking.Call)
    assert {"groupId": call.group_id, "userId": call.user_id}.get(field, text) == text
    refused = tracking.normalize({**raw, field: 55.5}, RECEIVED)
    assert isinstance(refused, tracking.Rejection)
    assert refused.reason == "id_not_string"


def test_call_keeps_everything_it_was_given() -> None:
    """Fields without a column of their own (integrations, sentAt, custom keys) are kept in `extra`."""
    raw: dict[str, Any] = {"type": "track", "userId": "u", "event": "E", "integrations": {"All": False},
                           "sentAt": "2027-01-15T08:00:00Z", "custom": 1}
    call = tracking.normalize(raw, RECEIVED)
    assert isinstance(call, tracking.Call)
    assert '"integrations":{"All":false}' in call.extra_json
    assert '"custom":1' in call.extra_json
    assert call.received_ms == RECEIVED


def test_batch_defaults_do_not_override_the_call() -> None:
    """A batch's context is merged under each call's own; the call's keys win."""
    defaults = tracking.BatchDefaults(context={"ip": "1", "locale": "fr"}, sent_at="2027-01-15T08:00:00Z")
    call = tracking.normalize({"type": "identify", "userId": "u", "context": {"ip": "2"}}, RECEIVED, defaults)
    assert isinstance(call, tracking.Call)
    assert call.context_json == '{"ip":"2","locale":"fr"}'


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "track", "event": "E"}, "userId"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "identify", "userId": "u", "traits": 1}, "traits"),
    ],
)
def test_rejection_names_its_field(raw: dict[str, Any], field: str) -> None:
    """Every rejection names the field at fault, for BadRequest field violations."""
    rejection = tracking.normalize(raw, RECEIVED)
    assert isinstance(rejection, tracking.Rejection)
    assert rejection.field == field


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_values_json_cannot_hold_are_rejected(number: float) -> None:
    """A NaN or infinite property (`1e400` is read as infinite) cannot be stored as JSON:
    bad_request saying so, never a crash, with the call's messageId for the sender to match."""
    rejection = tracking.normalize({"type": "track", "userId": "u", "event": "E", "messageId": "m-1",
                                    "properties": {"x": number}}, RECEIVED)
    assert isinstance(rejection, tracking.Rejection)
    assert rejection.reason == "bad_request"
    assert rejection.message_id == "m-1"
    assert "NaN, Infinity or a decimal beyond a double" in rejection.detail


# JSON values as the tracking API's decoder makes them, plus the cases where orjson's text or
# refusals differ from the stdlib's: tiny and huge floats, NaN, integers past 64 bits, lone
# surrogates, control characters, and strings that look like those numbers.
_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.floats(min_value=-1e-3, max_value=1e-3) | st.sampled_from([1e16, 1e-5, -0.0, 1e300])
    | st.text() | st.sampled_from(["\ud800", "\x00\x1f\x7f\u2028", ":null", "1e-7", "0.00001"])
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _outcome(encode: Any, value: Any) -> tuple[str, Any]:
    try:
        return "text", encode(value)
    except (ValueError, TypeError) as refused:
        return type(refused).__name__, str(refused)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _JSON_VALUES, max_size=5))
def test_stored_json_is_the_stdlib_text(value: dict[str, Any]) -> None:
    """Stored JSON is exactly the stdlib's compact text (or its refusal) whichever encoder made it."""
    assert _outcome(tracking._dump, value) == _outcome(tracking._stdlib_dump, value)


@pytest.mark.parametrize(
    "value",
    [{"x": 2**64}, {"x": 1e-5}, {"x": [1.5e-7]}, {"x": float("inf")}, {"x": "\ud800"}, {1: "non-string key"},
     {"x": tracking.BatchDefaults()}],
)
def test_stored_json_edge_cases(value: dict[Any, Any]) -> None:
    """Values orjson writes differently or refuses get the stdlib's text or error."""
    assert _outcome(tracking._dump, value) == _outcome(tracking._stdlib_dump, value)


def _typed(value: Any) -> Any:
    """A decoded value with each number's type kept (`1` and `1.0` compare equal otherwise) and
    floats by their bits (NaN included)."""
    if isinstance(value, dict):
        return [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float):
        return "float", value.hex()
    return type(value).__name__, value


def _decoded(body: bytes) -> tuple[str, Any]:
    try:
        return "value", _typed(json_text.loads(body))
    except (ValueError, RecursionError) as refused:
        return "refused", type(refused).__name__


def _stdlib_decoded(body: bytes) -> tuple[str, Any]:
    try:
        return "value", _typed(json.loads(body))
    except (ValueError, RecursionError) as refused:
        return "refused", type(refused).__name__


# Number literals as senders write them: digit runs up to and past 64 bits, fractions and
# exponents near a double's limits and its rounding boundaries.
_LITERALS = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]), st.from_regex(r"0|[1-9][0-9]{0,24}", fullmatch=True),
    st.sampled_from(["", ".0", ".5"]) | st.from_regex(r"\.[0-9]{1,22}", fullmatch=True),
    st.sampled_from(["", "e5", "E-5", "e308", "e309", "e-324", "e-400", "e+22", "e23"])
    | st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True),
)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _JSON_VALUES, max_size=5), st.lists(_LITERALS, max_size=4),
       st.sampled_from([b"", b"\xef\xbb\xbf", b" \n"]))
def test_bodies_decode_as_the_stdlib_decodes_them(value: dict[str, Any], literals: list[str], prefix: bytes) -> None:
    """A request body decodes to exactly what `json.loads` makes of it, or is refused as it is:
    integers of any size stay integers, each float is the same double, lone surrogates, NaN and a
    byte-order mark read as the stdlib reads them, whichever decoder did the work."""
    try:
        text = json.dumps(value, ensure_ascii=bool(literals and literals[0].startswith("-")))
    except ValueError:
        return
    text = text[:-1] + (", " if value else "") + f'"n": [{", ".join(literals)}]}}'
    body = prefix + text.encode("utf-8", "surrogatepass")
    assert _decoded(body) == _stdlib_decoded(body)


@pytest.mark.parametrize("body", [b'{"n": 9223372036854775807}', b'{"n": 9223372036854775808}',
                                  b'{"n": -9223372036854775809}', b'{"n": 18446744073709551616}',
                                  b'{"n": 1.7976931348623157e309}', b'{"n": NaN}', b'{"n": "\\ud800"}',
                                  b'[' * 1030 + b']' * 1030, b'{"a": 1, "a": 2.5}'])
def test_body_decoding_edge_cases(body: bytes) -> None:
    """Integers past 64 bits (which orjson would read as floats) and what orjson refuses decode
    as the stdlib decodes them."""
    assert _decoded(body) == _stdlib_decoded(body)
