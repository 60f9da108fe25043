"""Session windows (`expires_after`) and escaped-dot paths through the real server: every tick's
stored values equal the oracle's, at the instants a session expires (last + timeout and the
millisecond after) and around definitions edited between windows and sessions."""

from __future__ import annotations

from audiences_server.core import ql
from audiences_server.store.sql.plans import compile_definition
from tests.evaluator.conftest import Space

MINUTE = 60_000


def _agree(space: Space) -> dict[tuple[str, int], object]:
    """The stored values, checked against the oracle's, by key and profile in order of creation."""
    stored = space.stored()
    assert stored == space.expected()
    pids = sorted({pid for (_, _, pid) in stored})
    return {(key, pids.index(pid) + 1): value for (_, key, pid), value in stored.items()}


def test_sessions_with_windows_where_and_nesting_expire_to_the_millisecond(space: Space) -> None:
    now = space.now()
    for ago, event, v in ((100, "A", 1), (70, "A", 3), (45, "A", 1), (20, "B", 0), (10, "A", 5)):
        space.send({"type": "track", "userId": "u1", "event": event, "at": now - ago * MINUTE, "properties": {"v": v}})
    space.send({"type": "track", "userId": "u2", "event": "A", "at": now - 29 * MINUTE, "properties": {"v": 2}})
    defs = {
        "window_first": "event('A').within(1 hour).expires_after(30 minutes).count()",
        "session_first": "event('A').expires_after(30 minutes).within(1 hour).count()",
        "where_first": "event('A').where(property('v') > 2).expires_after(30 minutes).count()",
        "where_after": "event('A').expires_after(30 minutes).where(property('v') > 2).sum('v')",
        "nested": "event('B').where(event('A').expires_after(30 minutes).count() >= 1).count()",
        "funnel": "event('A').where(event('B').within(parent: 1 hour).expires_after(15 minutes).count() >= 1).count()",
    }
    for key, text in defs.items():
        space.define(key, text, kind="computed_trait")
    space.define("of_session", "trait('window_first') >= 2")
    space.tick()
    _agree(space)
    for at in (now + 20 * MINUTE - 1, now + 20 * MINUTE, now + 20 * MINUTE + 1, now + 30 * MINUTE,
               now + 31 * MINUTE, now + 31 * MINUTE + 1, now + 60 * MINUTE):
        space.tick(at=at)
        _agree(space)


def test_a_definition_edited_between_a_window_and_a_session_and_back(space: Space) -> None:
    now = space.now()
    for ago in (50, 25, 5):
        space.send({"type": "track", "userId": "e1", "event": "A", "at": now - ago * MINUTE})
    space.define("active", "event('A').within(1 hour).count() >= 3")
    space.tick()
    assert _agree(space)[("active", 1)] is True
    space.update("active", definition="event('A').expires_after(20 minutes).count() >= 3")
    space.tick()
    assert _agree(space)[("active", 1)] is False
    space.update("active", definition="event('A').expires_after(25 minutes).count() >= 3")
    space.tick()
    assert _agree(space)[("active", 1)] is True
    space.tick(at=now + 20 * MINUTE)
    assert _agree(space)[("active", 1)] is True
    space.tick(at=now + 20 * MINUTE + 1)
    assert _agree(space)[("active", 1)] is False
    space.update("active", definition="event('A').within(2 hours).count() >= 3")
    space.tick()
    assert _agree(space)[("active", 1)] is True


def test_escaped_dots_read_only_the_key_they_spell(space: Space) -> None:
    space.send(
        {"type": "identify", "userId": "d1", "traits": {"utm.source": "ads", "utm": {"source": "mail"}}},
        {"type": "identify", "userId": "d2", "traits": {"utm": {"source": "ads"}}},
        {"type": "track", "userId": "d1", "event": "V", "properties": {"a.b": {"c": 2}, "a": {"b": {"c": 1}}}},
        {"type": "track", "userId": "d2", "event": "V", "properties": {"a": {"b": {"c": 1}}}},
    )
    space.define("escaped", "trait('utm\\\\.source') = 'ads'")
    space.define("dotted", "trait('utm.source') = 'ads'")
    space.define("prop", "event('V').sum('a\\\\.b.c')", kind="computed_trait")
    space.tick()
    values = _agree(space)
    assert (values[("escaped", 1)], values[("escaped", 2)]) == (True, False)
    assert (values[("dotted", 1)], values[("dotted", 2)]) == (True, True)
    assert values[("prop", 1)] == 2
    space.send({"type": "identify", "userId": "d2", "traits": {"utm.source": "ads"}})
    space.tick()
    assert _agree(space)[("escaped", 2)] is True
    space.send({"type": "identify", "userId": "d1", "traits": {"utm.source": "web"}})
    space.tick()
    assert _agree(space)[("escaped", 1)] is False


def test_account_audiences_over_sessions(space: Space) -> None:
    """An account's own stream is the union of its users' events, so its session runs across
    users; `ANY` takes each user's own session."""
    now = space.now()
    space.send({"type": "group", "userId": "a", "groupId": "acme"}, {"type": "group", "userId": "b", "groupId": "acme"})
    space.send({"type": "track", "userId": "a", "event": "A", "at": now - 50 * MINUTE},
               {"type": "track", "userId": "b", "event": "A", "at": now - 20 * MINUTE},
               {"type": "track", "userId": "a", "event": "A", "at": now - 10 * MINUTE})
    space.define("any_session", "ANY (event('A').expires_after(30 minutes).count() >= 2)", collection="accounts")
    space.define("union_session", "event('A').expires_after(30 minutes).count() >= 3", collection="accounts")
    space.define("mixed", "ANY (event('A').expires_after(1 hour).count() >= 2)"
                 " AND event('A').expires_after(15 minutes).count() >= 2", collection="accounts")
    space.tick()
    values = _agree(space)
    assert {key: v for (key, _), v in values.items() if key in ("any_session", "union_session", "mixed")} == {
        "any_session": False, "union_session": True, "mixed": True}
    for minutes, past in ((10, 0), (10, 1), (20, 0), (20, 1), (50, 1)):
        at = now + minutes * MINUTE + past
        space.tick(at=at)
        _agree(space)


def test_escaped_paths_compile_and_sessions_do_not() -> None:
    """The SQL plans read a path with escaped dots themselves (test_sql_plans's escaped
    PROPERTY_PATHS are compared, not left to the interpreter); a session, even nested, is the
    interpreter's."""
    compiled = {
        "event('V').sum('a\\\\.b.c')": True,
        "event('V').where(property('n\\\\.x.b') = 1).count() >= 1": True,
        "event('V').where(context('\\\\.x') = 1).count() >= 1": True,
        "event('V').where(property('x\\\\y') = 1).count() >= 1": False,  # a backslash left as it is
        "event('V').expires_after(1 hour).count() >= 1": False,
        "event('V').where(event('W').expires_after(1 hour).count() >= 1).count() >= 1": False,
    }
    for text, expected in compiled.items():
        kind = "audience" if ">=" in text else "computed_trait"
        checked = ql.parse_and_check(text, kind=kind, collection="users")
        assert (compile_definition(checked, None) is not None) is expected, text
