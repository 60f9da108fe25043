"""ExplainMembership on random data, definitions and clock moves, through the server: after every
tick, for every definition and profile, the explanation's value is the stored value and the
from-scratch one, each part's value is the reference interpreter's, each stream's events are the
ones the interpreter counts (all of them under the bound), and the announced next check time is
the interpreter's next change time."""

from __future__ import annotations

import json
import os
from typing import Any

from audiences.v1 import admin_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences_server.core.ql.interpreter import Scope, holds, root_of, stream_events, value_of
from audiences_server.core.ql.nodes import Aggregate, And, Comparison, Not, Or, Quantified, is_condition
from audiences_server.core.ql.timing import next_change_time
from tests.conftest import Running, bearer
from tests.evaluator.conftest import COLLECTION, Space, new_space
from tests.evaluator.oracle_profiles import Scratch, scratch
from tests.evaluator.test_exactness import USERS, calls, definitions

LIMIT = 2
steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.lists(calls(), min_size=1, max_size=3)),
        st.tuples(st.just("advance"), st.sampled_from((1, 60_000, 3_600_000 - 1, 3_600_000 + 1, 3 * 3_600_000))),
    ),
    min_size=1,
    max_size=5,
)


def _parts(tree: Any) -> tuple[Any, ...]:
    if isinstance(tree, And | Or):
        return tree.items
    if isinstance(tree, Not):
        return (tree.operand,)
    if isinstance(tree, Comparison):
        return (tree.subject, *tree.operands)
    return ()


class Checker:
    """Compares explanations with the interpreter on the oracle's profiles."""

    def __init__(self, space: Space) -> None:
        self.space = space
        conn = space._conn()
        self.found: Scratch = scratch(conn, space.space_id, space.now())
        self.messages = dict(conn.execute("SELECT seq, message_id FROM events WHERE space_id = ?", (space.space_id,)))
        self.public = {public: pid for pid, public in conn.execute(
            "SELECT profile_id, public_id FROM profiles WHERE space_id = ?", (space.space_id,))}
        self.stored = space.stored()

    def check_all(self) -> None:
        for (collection, key), (checked, _) in self.found.definitions.items():
            for (profile_collection, pid), profile in self.found.profiles.items():
                if profile_collection == collection:
                    self.check(collection, key, checked, pid, profile)

    def check(self, collection: str, key: str, checked: Any, pid: int, profile: Any) -> None:
        public = next(p for p, i in self.public.items() if i == pid)
        reply = self.space.running.admin.ExplainMembership(
            admin_pb2.ExplainMembershipRequest(collection=COLLECTION[collection], key=key, profile_id=public,
                                               max_evidence=LIMIT),
            metadata=bearer(self.space.tokens["admin"]))
        wanted = json.dumps(self.found.values[(collection, key, pid)])
        assert reply.value_json == wanted == json.dumps(self.stored[(collection, key, pid)]), (key, public)
        assert not reply.evaluation_pending
        now = self.space.now()
        self.node(reply.root, Scope(profile, now), root_of(checked))
        due = next_change_time(checked, profile, now)
        assert (reply.next_change.check_time.ToMilliseconds() if reply.next_change.HasField("check_time")
                else None) == due

    def node(self, node: admin_pb2.ExplainNode, scope: Scope, tree: Any) -> None:
        """The node's value is the interpreter's; a stream's events are the ones it reduces."""
        wanted = holds(tree, scope) if is_condition(tree) else value_of(tree, scope)
        assert node.value_json == json.dumps(wanted, sort_keys=True, separators=(",", ":")), node.text
        if isinstance(tree, Aggregate):
            events = stream_events(tree.stream, scope)
            assert node.stream.event_count == len(events)
            assert len(node.stream.events) == min(LIMIT, len(events))
            if len(events) <= LIMIT:
                assert sorted(e.message_id for e in node.stream.events) == sorted(self.messages[e.seq] for e in events)
        if isinstance(tree, Quantified):
            assert node.users_count == len(scope.profile.users)
            for user in node.users:
                user_profile = self.found.profiles[("users", self.public[user.profile.profile_id])]
                assert user.satisfied is holds(tree.operand, Scope(user_profile, scope.now_ms))
                self.node(user.node, Scope(user_profile, scope.now_ms), tree.operand)
            return
        parts = _parts(tree)
        assert len(node.children) == len(parts)
        for child, part in zip(node.children, parts, strict=True):
            self.node(child, scope, part)


@settings(
    max_examples=int(os.environ.get("EXPLAIN_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(defs=definitions(), history=st.lists(calls(), min_size=2, max_size=8), script=steps)
def test_explanations_match_the_stored_values_and_the_interpreter(
    shared_server: Running,
    defs: list[tuple[str, str, str, str]],
    history: list[dict[str, Any]],
    script: list[tuple[str, Any]],
) -> None:
    """Whatever the data, definitions and clock moves, every explanation after a tick agrees with
    the stored value, the from-scratch value and the interpreter, part by part."""
    space = new_space(shared_server)
    for key, kind, collection, text in defs:
        space.define(key, text, kind=kind, collection=collection)
    prelude = [{"type": "group", "userId": u, "groupId": g, "traits": {}, "offset": 0}
               for u, g in zip(USERS, ("g1", "g2", "g1"), strict=True)]
    for action, arg in [("send", prelude + history), *script]:
        if action == "send":
            now = space.now()
            space.send(*[{**{k: v for k, v in c.items() if k != "offset"}, "at": now + c["offset"]} for c in arg])
            space.tick()
        else:
            space.tick(at=space.now() + arg)
        Checker(space).check_all()
