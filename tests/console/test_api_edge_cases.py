"""What fuzzing a running server found in the console's API, each kept as a plain test: numbers
beyond what the gRPC API carries, credentials UTF-8 cannot write, and bodies that fail to inflate."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from audiences.v1 import admin_pb2, common_pb2

from tests.conftest import bearer
from tests.console.conftest import Answer, call
from tests.evaluator.conftest import Space

BUYERS = "event('Order Completed').count() >= 1"
INT32_MAX = 2**31 - 1


def _reason(answer: Answer) -> tuple[int, str]:
    return answer.status, answer.body["error"]["reason"]


@pytest.mark.parametrize("days", [INT32_MAX + 1, 2**62, 2**64 - 1, -1])
def test_backfill_days_beyond_int32_are_refused(space: Space, days: int) -> None:
    """`options.backfill_days` outside 0 to 2,147,483,647 (the gRPC API's int32) is refused 400
    OPTIONS_INVALID on create and on update, and nothing is saved."""
    admin = space.tokens["admin"]
    raw = json.dumps({"key": "wide", "definition": BUYERS, "options": {"backfill_days": days}}).encode()
    created = call(space.running, "POST", "/computations", admin, raw=raw)
    assert _reason(created) == (400, "OPTIONS_INVALID")
    assert created.body["error"]["fields"] == [{"field": "options.backfill_days", "description": "out of range"}]
    assert call(space.running, "GET", "/computations", admin).body["computations"] == []
    space.define("buyers", BUYERS)
    updated = call(space.running, "PATCH", "/computations/users/buyers", admin,
                   raw=json.dumps({"options": {"backfill_days": days}}).encode())
    assert _reason(updated) == (400, "OPTIONS_INVALID")


def test_the_largest_int32_backfill_is_saved_and_read_by_grpc(space: Space) -> None:
    """2,147,483,647 days is accepted, and the gRPC API reads it back."""
    admin = space.tokens["admin"]
    created = call(space.running, "POST", "/computations", admin,
                   {"key": "wide", "definition": BUYERS, "options": {"backfill_days": INT32_MAX}})
    assert created.status == 200
    audience = space.running.admin.GetAudience(admin_pb2.GetAudienceRequest(
        collection=common_pb2.COLLECTION_USERS, key="wide"), metadata=bearer(admin)).audience
    assert audience.options.backfill_days == INT32_MAX


@pytest.mark.parametrize("version", [2**64 - 1, 2**63 - 1, INT32_MAX + 1])
def test_a_version_beyond_int32_is_400(space: Space, version: int) -> None:
    """A rollback to a version number beyond the gRPC API's int32 is 400 VERSION_INVALID."""
    space.define("buyers", BUYERS)
    answer = call(space.running, "POST", "/computations/users/buyers/rollback", space.tokens["admin"],
                  raw=json.dumps({"version": version}).encode())
    assert _reason(answer) == (400, "VERSION_INVALID")


@pytest.mark.parametrize("dead_letter", ["dlq_" + "9" * 5000, "dlq_" + "9" * 30, f"dlq_{2**63}", "dlq_", "dlq_-1"],
                         ids=["5000-digits", "30-digits", "2**63", "no-number", "negative"])
def test_a_dead_letter_id_beyond_64_bits_is_400(space: Space, dead_letter: str) -> None:
    """A dead letter id whose number is not a 64-bit one (even thousands of digits) is 400
    DEAD_LETTER_ID_INVALID."""
    answer = call(space.running, "POST", "/destinations/hook/redrive", space.tokens["admin"], {"ids": [dead_letter]})
    assert _reason(answer) == (400, "DEAD_LETTER_ID_INVALID")


@pytest.mark.parametrize("limit", ["9" * 5000, "1" + "0" * 4400], ids=["5000-nines", "10**4400"])
def test_a_limit_of_thousands_of_digits_is_400(space: Space, limit: str) -> None:
    """A profile read's `limit` longer than Python converts to an integer is 400 LIMIT_INVALID."""
    answer = call(space.running, "GET", f"/profiles/users/traits?address=user_id:ada&limit={limit}",
                  space.tokens["read"])
    assert _reason(answer) == (400, "LIMIT_INVALID")


@pytest.mark.parametrize("authorization", ["Bearer \u00c3\u00a9\u00ff", "Bearer \u00ff\u00fe"])
def test_a_token_utf8_cannot_write_is_unknown(space: Space, authorization: str) -> None:
    """A Bearer token of bytes that are not UTF-8 text is 401 TOKEN_UNKNOWN, not a failure inside."""
    assert _reason(call(space.running, "GET", "/session", authorization=authorization)) == (401, "TOKEN_UNKNOWN")


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", b'{"definition": "true"}'),
    ("gzip", gzip.compress(b'{"definition": "true"}')[:-4]),
    ("deflate", b"\x78\x9c not deflate"),
], ids=["not-gzip", "gzip-cut-short", "bad-deflate-data"])
def test_a_body_that_fails_to_inflate_is_400(space: Space, encoding: str, body: bytes) -> None:
    """A body said to be gzip or deflate that is not is 400 BODY_INVALID."""
    answer = _post_encoded(space, encoding, body)
    assert _reason(answer) == (400, "BODY_INVALID")


def test_compressed_bodies_are_still_read(space: Space) -> None:
    """A gzip or deflate body is inflated as before."""
    text = json.dumps({"definition": BUYERS}).encode()
    for encoding, body in (("gzip", gzip.compress(text)), ("deflate", zlib.compress(text))):
        answer = _post_encoded(space, encoding, body)
        assert (answer.status, answer.body["valid"]) == (200, True)


def test_a_compressed_body_inflating_past_the_limit_is_refused(space: Space) -> None:
    """A gzip body inflating past 256 KB is 400 BODY_TOO_LARGE, however small it is sent."""
    answer = _post_encoded(space, "gzip", gzip.compress(b'{"definition": "' + b" " * (1 << 20) + b'"}'))
    assert _reason(answer) == (400, "BODY_TOO_LARGE")


@pytest.mark.parametrize("size", [300 * 1024, 5 * 1024 * 1024], ids=["past-the-api", "past-the-listener"])
def test_a_body_too_large_is_refused_in_the_error_shape(space: Space, size: int) -> None:
    """A body past the API's 256 KB, or past the listener's 4 MiB (which aiohttp stops reading),
    is 400 BODY_TOO_LARGE in the documented shape, `{"error": {"code", "reason", "message"}}`."""
    answer = call(space.running, "POST", "/validate", space.tokens["admin"],
                  raw=b'{"definition": "' + b"a" * size + b'"}')
    assert answer.body == {"error": {"code": "INVALID_ARGUMENT", "reason": "BODY_TOO_LARGE",
                                     "message": "the body is larger than 262144 bytes"}}
    assert answer.status == 400


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_an_encoding_the_server_does_not_inflate_is_400(space: Space, encoding: str) -> None:
    """A Content-Encoding other than gzip, deflate or identity is the console's JSON 400
    CONTENT_ENCODING_UNSUPPORTED, not aiohttp's plain text."""
    answer = _post_encoded(space, encoding, b'{"definition": "true"}')
    assert _reason(answer) == (400, "CONTENT_ENCODING_UNSUPPORTED")


def _post_encoded(space: Space, encoding: str, body: bytes) -> Answer:
    """A validation whose body is sent with the Content-Encoding given."""
    return call(space.running, "POST", "/validate", space.tokens["admin"], raw=body,
                headers={"Content-Encoding": encoding})
