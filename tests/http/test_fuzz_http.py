"""Hostile input at the HTTP edge: no body, header or path answers 500, hangs, or breaks what follows."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http.conftest import Site, basic, send

PATHS = ["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch",
         "/v1/import", "/v1/t", "/v1/b"]
# What a client may answer a bad request with; never 5xx.
REFUSALS = {200, 400, 401, 403, 404, 405, 413, 415, 429}

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=20))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)
_call = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "bogus", ""])},
    optional={"userId": st.one_of(st.text(max_size=30), _scalars), "anonymousId": _scalars,
              "event": st.one_of(st.text(max_size=30), _scalars), "properties": _json, "traits": _json,
              "context": _json, "timestamp": st.one_of(st.text(max_size=30), _scalars), "groupId": _scalars,
              "previousId": _scalars, "messageId": _scalars, "writeKey": _scalars})


def _deep(depth: int) -> bytes:
    return b'{"batch":[{"type":"track","userId":"u","event":"E","properties":' + b"[" * depth + b"]" * depth + b"}]}"


_bodies = st.one_of(
    st.binary(max_size=300),
    _json.map(lambda value: json.dumps(value).encode()),
    _call.map(lambda call: json.dumps(call).encode()),
    st.lists(_call, max_size=5).map(lambda calls: json.dumps({"batch": calls}).encode()),
    st.integers(min_value=30, max_value=3000).map(_deep),
    st.sampled_from([b'{"batch":[{"type":"track","userId":"\\ud800","event":"x"}]}', b"\xff\xfe", b"null",
                     b'{"batch": 1}', b'{"batch": [], "context": 5}', b"[" * 5000]),
)
_encodings = st.sampled_from(["", "gzip", "deflate", "br", "zstd", "gzip, gzip", "identity"])


def _encoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), body=_bodies, encoding=_encodings,
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"]),
       auth=st.sampled_from(["basic", "none", "garbage", "body"]))
def test_fuzzed_tracking_requests_never_fail_inside(site: Site, path: str, body: bytes, encoding: str,
                                                    content_type: str, auth: str) -> None:
    """Random bodies, encodings, content types and credentials on every tracking path get an answer
    a client can act on (200 or 4xx, with a JSON body whatever the encoding), never a 5xx."""
    headers: dict[str, Any] = {}
    if auth == "basic":
        headers.update(basic(site.write_key))
    elif auth == "garbage":
        headers["Authorization"] = "Basic !!!not-base64"
    if auth == "body" and body.startswith(b"{"):
        body = b'{"writeKey": "' + site.write_key.encode() + b'", ' + body[1:]
    if encoding:
        headers["Content-Encoding"] = encoding
    if content_type:
        headers["Content-Type"] = content_type
    reply = send(f"{site.running.http_url}{path}", _encoded(body, encoding), headers)
    assert reply.status in REFUSALS, (reply.status, reply.raw[:300])
    assert isinstance(reply.body, dict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(min_size=1, max_size=40), query=st.text(max_size=60))
def test_fuzzed_profile_api_paths_never_fail_inside(site: Site, segment: str, query: str) -> None:
    """Random profile addresses and query strings on the Profile API answer 4xx or 200, never 5xx."""
    from urllib.parse import quote

    url = (f"{site.running.http_url}/v1/spaces/{site.name}/collections/users/profiles/"
           f"{quote(segment, safe=':')}/traits?{quote(query, safe='=&')}")
    reply = send(url, b"", basic(site.tokens["read"]), method="GET")
    assert reply.status in REFUSALS, (reply.status, reply.raw[:300])


def test_good_calls_still_work_after_the_fuzzing(site: Site) -> None:
    """After hostile traffic a plain call is stored and its profile reads back."""
    reply = site.post("/v1/track", {"userId": "after-fuzz", "event": "Still Here"})
    assert reply.status == 200
    assert "user_id:after-fuzz" in site.external_ids("user_id:after-fuzz")
