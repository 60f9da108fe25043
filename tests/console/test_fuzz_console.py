"""Hostile input to the console's API: no body, path or parameter answers 5xx; each refusal is JSON."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console.conftest import call
from tests.evaluator.conftest import Space

REFUSALS = {200, 400, 401, 403, 404, 409}
DEFINITIONS = ["event('Order Completed').count() >= 1", "trait('plan') = 'pro'", "event('A').cuont() > 1",
               "trait('buyers') = true", "ANY trait('plan') = 'pro'", "event('A').within(9999999 days).count() > 0",
               "'" * 300, "(" * 500]

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                     st.floats(allow_nan=False), st.text(max_size=20))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=10)
_body = st.fixed_dictionaries({}, optional={
    "kind": st.one_of(st.sampled_from(["audience", "computed_trait", "trait", ""]), _scalars),
    "collection": st.one_of(st.sampled_from(["users", "accounts", "groups"]), _scalars),
    "key": st.one_of(st.sampled_from(["buyers", "new_one", "Bad Key", ""]), _scalars),
    "definition": st.one_of(st.sampled_from(DEFINITIONS), st.text(max_size=60), _scalars),
    "sample_size": _scalars, "include_anonymous_users": _scalars, "compare_key": _scalars,
    "enabled": _scalars, "name": _scalars, "options": _json, "version": _scalars, "ids": _json,
})
_routes = st.sampled_from([
    ("POST", "/validate"), ("POST", "/preview"), ("POST", "/computations"), ("PATCH", "/computations/users/buyers"),
    ("POST", "/computations/users/buyers/rollback"), ("POST", "/destinations/hook/redrive"),
    ("DELETE", "/computations/users/nothing"),
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=_routes, body=st.one_of(_body, _json, st.binary(max_size=50)))
def test_bodies_never_answer_5xx(space: Space, route: tuple[str, str], body: Any) -> None:
    """Any body to any call that takes one is answered with a JSON body and a status below 500."""
    if not space.running.server.engine.computations.of_kind(space.space_id, "audience", "users"):
        space.define("buyers", "event('Order Completed').count() >= 1")
    method, path = route
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = call(space.running, method, path, space.tokens["admin"], raw=raw)
    assert answer.status in REFUSALS, (answer.status, answer.body)
    assert answer.status == 200 or set(answer.body["error"]) >= {"code", "reason", "message"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(["traits", "events", "identifiers", "links", "memberships", "history", "metadata",
                             "x"]),
       collection=st.sampled_from(["users", "accounts", "x"]),
       params=st.dictionaries(st.sampled_from(["address", "limit", "next", "class", "include", "exclude", "start",
                                               "end", "sort"]), st.text(max_size=30), max_size=5))
def test_profile_reads_never_answer_5xx(space: Space, part: str, collection: str, params: dict[str, str]) -> None:
    """Any address, page size, cursor, filter or time to a profile read is answered below 500."""
    if not space.running.query("SELECT 1 FROM profiles WHERE space_id = ?", (space.space_id,)):
        space.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
                   {"type": "track", "userId": "ada", "event": "Order Completed"})
    query = urllib.parse.urlencode({"address": "user_id:ada", **params})
    answer = call(space.running, "GET", f"/profiles/{collection}/{part}?{query}", space.tokens["read"])
    assert answer.status in REFUSALS, (answer.status, answer.body)
