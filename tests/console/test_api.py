"""The console's JSON API: who may read and change what, its errors, and that it reads and
writes through the same engine calls as the gRPC API (what one does, the other sees)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, sync_pb2

from tests.conftest import Running, bearer
from tests.console.conftest import call
from tests.evaluator.conftest import Space

BUYERS = "event('Order Completed').count() >= 1"


def _audience(space: Space, key: str) -> admin_pb2.Audience:
    return space.running.admin.GetAudience(admin_pb2.GetAudienceRequest(
        collection=common_pb2.COLLECTION_USERS, key=key), metadata=bearer(space.tokens["admin"])).audience


READS = ["/session", "/computations", "/computations/users/buyers", "/computations/users/buyers/sizes",
         "/computations/users/buyers/versions", "/profiles/users/traits?address=user_id:ada",
         "/explain/users/buyers?profile=user_id:ada", "/destinations", "/destinations/hook/dead-letters"]


@pytest.mark.parametrize("path", READS)
def test_no_token_no_data(console_server: Running, path: str) -> None:
    """Every read of the API without a token is answered 401 with a JSON error and no data."""
    answer = call(console_server, "GET", path)
    assert answer.status == 401
    assert answer.body == {"error": {"code": "UNAUTHENTICATED", "reason": "TOKEN_MISSING",
                                     "message": answer.body["error"]["message"]}}
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("authorization", "reason"), [
    ("Basic dXNlcjo=", "TOKEN_MALFORMED"), ("Bearer", "TOKEN_MALFORMED"), ("Bearer  x", "TOKEN_MALFORMED"),
    ("Bearer aud_admin_not-a-token", "TOKEN_UNKNOWN"),
])
def test_bad_credentials_are_refused(console_server: Running, authorization: str, reason: str) -> None:
    """A header that is not `Bearer <token>`, or a token the server does not know, is answered 401."""
    answer = call(console_server, "GET", "/computations", authorization=authorization)
    assert answer.status == 401
    assert (answer.body["error"]["code"], answer.body["error"]["reason"]) == ("UNAUTHENTICATED", reason)


def test_a_write_token_is_not_a_console_token(space: Space) -> None:
    """The console takes admin and read tokens only: a write token is refused with 403."""
    answer = call(space.running, "GET", "/computations", space.tokens["write"])
    assert answer.status == 403
    assert answer.body["error"]["reason"] == "SCOPE_MISSING"


def test_session_names_the_space_and_what_the_token_may_do(space: Space) -> None:
    """Signing in tells the page its space and whether it may change anything."""
    admin = call(space.running, "GET", "/session", space.tokens["admin"]).body
    read = call(space.running, "GET", "/session", space.tokens["read"]).body
    assert (admin["scope"], admin["can_write"], read["scope"], read["can_write"]) == ("admin", True, "read", False)
    assert admin["space"] == read["space"]


def test_a_read_token_reads_but_changes_nothing(space: Space) -> None:
    """With a read token every change is refused 403 READ_ONLY_TOKEN and the server's data stays as it was."""
    space.define("buyers", BUYERS)
    read = space.tokens["read"]
    assert call(space.running, "GET", "/computations", read).body["computations"][0]["key"] == "buyers"
    changes = [
        ("POST", "/computations", {"key": "other", "definition": BUYERS}),
        ("PATCH", "/computations/users/buyers", {"definition": "trait('plan') = 'pro'"}),
        ("PATCH", "/computations/users/buyers", {"enabled": False}),
        ("DELETE", "/computations/users/buyers", None),
        ("POST", "/computations/users/buyers/rollback", {"version": 1}),
        ("POST", "/destinations/hook/redrive", {"ids": []}),
    ]
    for method, path, body in changes:
        answer = call(space.running, method, path, read, body)
        assert answer.status == 403, (method, path)
        assert answer.body["error"]["reason"] == "READ_ONLY_TOKEN"
    kept = _audience(space, "buyers")
    assert (kept.definition, kept.enabled) == (BUYERS, True)
    assert [c["key"] for c in call(space.running, "GET", "/computations", read).body["computations"]] == ["buyers"]


def test_spaces_do_not_see_each_other(console_server: Running, space: Space) -> None:
    """A token reads its own space only: another space's definition is not found."""
    from tests.evaluator.conftest import new_space

    space.define("buyers", BUYERS)
    other = new_space(console_server)
    assert call(console_server, "GET", "/computations", other.tokens["admin"]).body["computations"] == []
    answer = call(console_server, "GET", "/computations/users/buyers", other.tokens["admin"])
    assert answer.status == 404


def test_a_typo_is_answered_with_its_caret_and_hint(space: Space) -> None:
    """Validation and a save of a misspelt definition both say where it is wrong and what was meant."""
    text = "event('Order Completed').cuont() >= 1"
    checked = call(space.running, "POST", "/validate", space.tokens["admin"], {"definition": text}).body
    assert checked["valid"] is False
    problem = checked["error"]
    assert (problem["reason"], problem["line"], problem["column"]) == ("SYNTAX_ERROR", 1, 26)
    assert problem["hint"] == "did you mean 'count'?"
    assert problem["caret_display"] == f"{text}\n{' ' * 25}^^^^^"
    saved = call(space.running, "POST", "/computations", space.tokens["admin"], {"key": "buyers", "definition": text})
    assert saved.status == 400
    assert saved.body["error"]["reason"] == "INVALID_DEFINITION"
    assert saved.body["error"]["definition"] == problem


def test_validate_gives_the_dependency_summary(space: Space) -> None:
    """A valid definition comes back with what it reads and how far back."""
    text = ("event('Order Completed').where(property('total') > 10).within(7 days).count() >= 1"
            " and trait('plan') = 'pro'")
    body = call(space.running, "POST", "/validate", space.tokens["read"], {"definition": text}).body
    assert body["valid"] is True
    summary = body["summary"]
    assert (summary["events"], summary["properties"], summary["traits"]) == (
        ["Order Completed"], ["Order Completed.total"], ["plan"])
    assert summary["lookback_ms"] == 7 * 86_400_000


def test_a_cycle_is_refused_by_validation(space: Space) -> None:
    """Saving a text that would read itself through another definition is reported as a cycle."""
    space.define("a", "trait('b') = true")
    body = call(space.running, "POST", "/validate", space.tokens["admin"],
                {"key": "b", "definition": "trait('a') = true"}).body
    assert body["valid"] is False
    assert body["error"]["reason"] == "DEPENDENCY_CYCLE"
    assert body["error"]["cycle_keys"][0] == body["error"]["cycle_keys"][-1]


def test_delete_of_a_definition_others_read_is_refused(space: Space) -> None:
    """Deleting a definition another reads is answered 400 IN_USE naming the readers, and nothing is deleted."""
    space.define("buyers", BUYERS)
    space.define("vip", "trait('buyers') = true")
    answer = call(space.running, "DELETE", "/computations/users/buyers", space.tokens["admin"])
    assert answer.status == 400
    assert answer.body["error"]["reason"] == "IN_USE"
    assert answer.body["error"]["metadata"]["used_by"] == "vip"
    assert _audience(space, "buyers").key == "buyers"


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "BODY_INVALID"),
    (b"[1, 2]", 400, "BODY_INVALID"),
    (b'{"key": 3, "definition": "trait(\'a\') = 1"}', 400, "FIELD_INVALID"),
    (b'{"key": "x"}', 400, "FIELD_MISSING"),
    (b'{"key": "x", "definition": "trait(\'a\') = 1", "kind": "segment"}', 400, "KIND_INVALID"),
    (b'{"key": "x", "definition": "trait(\'a\') = 1", "collection": "groups"}', 400, "COLLECTION_INVALID"),
    (b'{"key": "x", "definition": "trait(\'a\') = 1", "options": {"backfill_days": -1}}', 400, "OPTIONS_INVALID"),
    (b'{"key": "X Y", "definition": "trait(\'a\') = 1"}', 400, "KEY_INVALID"),
    # A misspelt field (`enable`) was dropped, the audience saved enabled.
    (b'{"key": "x", "definition": "trait(\'a\') = 1", "enable": false}', 400, "FIELD_UNKNOWN"),
])
def test_bad_requests_get_a_precise_error(space: Space, body: bytes, status: int, reason: str) -> None:
    """A body that is not what a create takes is answered with its own status and reason, never 500."""
    answer = call(space.running, "POST", "/computations", space.tokens["admin"], raw=body)
    assert (answer.status, answer.body["error"]["reason"]) == (status, reason)


def test_console_changes_are_the_grpc_apis_changes(space: Space) -> None:
    """A create, an update, a disable and a rollback through the console are what the gRPC API
    then reads, with an audit entry each, and a new version for each new text."""
    admin = space.tokens["admin"]
    created = call(space.running, "POST", "/computations", admin, {"key": "buyers", "definition": BUYERS}).body
    assert created["computation"]["version"] == 1
    call(space.running, "PATCH", "/computations/users/buyers", admin, {"definition": "trait('plan') = 'pro'"})
    call(space.running, "PATCH", "/computations/users/buyers", admin, {"enabled": False})
    assert (_audience(space, "buyers").definition, _audience(space, "buyers").enabled) == ("trait('plan') = 'pro'",
                                                                                         False)
    rolled = call(space.running, "POST", "/computations/users/buyers/rollback", admin, {"version": 1}).body
    assert (rolled["computation"]["definition"], rolled["computation"]["version"]) == (BUYERS, 3)
    versions = call(space.running, "GET", "/computations/users/buyers/versions", admin).body["versions"]
    assert [(v["version"], v["current"]) for v in versions] == [(3, True), (2, False), (1, False)]
    entries = space.running.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(), metadata=bearer(admin)).entries
    assert [(e.action, e.target_type, e.target) for e in reversed(entries)] == [
        ("create", "audience", "buyers"), ("update", "audience", "buyers"), ("disable", "audience", "buyers"),
        ("update", "audience", "buyers")]
    # Each names the version it leaves current, as the gRPC calls' entries do.
    assert [e.details["version"] for e in reversed(entries)] == [1, 2, 2, 3]


def test_unknown_paths_and_versions_are_answered_as_json(space: Space) -> None:
    """An unknown API path is 404 once signed in, a known one asked with another method 405 with
    `Allow`; a version that does not exist is 404; a bad part is 400."""
    space.define("buyers", BUYERS)
    admin = space.tokens["admin"]
    assert call(space.running, "GET", "/nothing/here", admin).status == 404
    wrong = call(space.running, "PUT", "/computations/users/buyers", admin, {})
    assert (wrong.status, wrong.headers["Allow"]) == (405, "DELETE, GET, HEAD, PATCH")
    assert call(space.running, "PUT", "/computations/users/buyers", body={}).status == 401
    assert call(space.running, "POST", "/computations/users/buyers/rollback", admin, {"version": 9}).status == 404
    answer = call(space.running, "GET", "/profiles/users/secrets?address=user_id:ada", admin)
    assert (answer.status, answer.body["error"]["reason"]) == (400, "PART_INVALID")
    answer = call(space.running, "GET", "/profiles/users/traits?address=nobody", admin)
    assert (answer.status, answer.body["error"]["reason"]) == (400, "PROFILE_ID_INVALID")


def test_the_pages_are_served_with_a_strict_policy(console_server: Running) -> None:
    """/console and its assets are served without a token (they hold no data) and load only the
    server's own files; an unknown asset is 404."""
    with urllib.request.urlopen(f"{console_server.http_url}/console", timeout=10) as page:
        html = page.read().decode()
        policy = page.headers["Content-Security-Policy"]
    assert '<script type="module" src="/console/static/console.js">' in html
    assert "default-src 'self'" in policy
    assert "http" not in html.replace("http-equiv", "")  # no CDN
    with urllib.request.urlopen(f"{console_server.http_url}/console/static/console.js", timeout=10) as script:
        assert script.headers["Content-Type"].startswith("text/javascript")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{console_server.http_url}/console/static/nothing.js", timeout=10)
    assert missing.value.code == 404


def test_a_profiles_events_page_by_page_and_filtered(space: Space) -> None:
    """Events come a page at a time with a cursor to the next, newest first or oldest first, and
    filtered by name; a cursor given to another listing is refused."""
    start = int(time.time() * 1000) - 60_000
    space.send(*[{"type": "track", "userId": "ada", "event": f"Step {n}", "at": start + n * 1000} for n in range(5)])
    read = space.tokens["read"]
    seen, cursor = [], ""
    while True:
        page = call(space.running, "GET", f"/profiles/users/events?address=user_id:ada&limit=2&sort=asc&next={cursor}",
                    read).body
        seen += [e["event"] for e in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [f"Step {n}" for n in range(5)]
    newest = call(space.running, "GET", "/profiles/users/events?address=user_id:ada&limit=1", read).body
    assert [e["event"] for e in newest["items"]] == ["Step 4"]
    only = call(space.running, "GET", "/profiles/users/events?address=user_id:ada&include=Step%202,Step%203", read)
    assert [e["event"] for e in only.body["items"]] == ["Step 3", "Step 2"]
    refused = call(space.running, "GET", f"/profiles/users/traits?address=user_id:ada&next={newest['next']}", read)
    assert (refused.status, refused.body["error"]["reason"]) == (400, "PAGE_TOKEN_INVALID")


def test_destinations_show_status_but_never_a_secret(space: Space) -> None:
    """The destinations read lists each destination's settings with its signing secret blanked,
    its connections and their delivery status, to admin and read tokens alike."""
    from tests.sync.conftest import SECRET, connect, webhook

    space.define("buyers", BUYERS)
    webhook(space, "hook", "http://127.0.0.1:9/never")
    connect(space, "hook", "buyers", send_identify=True)
    for scope in ("admin", "read"):
        answer = call(space.running, "GET", "/destinations", space.tokens[scope])
        assert answer.status == 200
        assert SECRET not in json.dumps(answer.body)
        (hook,) = answer.body["destinations"]
        assert (hook["key"], hook["kind"], hook["config"]["url"]) == ("hook", "webhook", "http://127.0.0.1:9/never")
        (connection,) = hook["connections"]
        assert connection["computation"]["key"] == "buyers"
        assert {"pending", "delivered", "retrying", "dead", "lag_ms", "last_error"} <= set(connection)


def test_a_read_token_sees_no_credential_of_a_webhook(space: Space) -> None:
    """A webhook's header values and its URL's query values may be credentials: a read token
    (which the gRPC API shows no destination) gets them blanked, the header names and query names
    kept; an admin token gets the settings as GetDestination shows them to it."""
    from tests.sync.conftest import admin, webhook

    webhook(space, "hook", "http://127.0.0.1:9/x?api_key=SECRETQ&team=growth#SECRETF",
            headers={"Authorization": "Bearer SECRETH"})
    (read,) = call(space.running, "GET", "/destinations", space.tokens["read"]).body["destinations"]
    assert read["config"]["headers"] == {"Authorization": ""}
    assert read["config"]["url"] == "http://127.0.0.1:9/x?api_key=&team="
    assert "SECRET" not in json.dumps(read)
    with pytest.raises(grpc.RpcError) as refused:
        space.running.sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"),
                                          metadata=bearer(space.tokens["read"]))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    shown = space.running.sync.GetDestination(sync_pb2.GetDestinationRequest(key="hook"),
                                              metadata=admin(space)).destination.webhook
    (full,) = call(space.running, "GET", "/destinations", space.tokens["admin"]).body["destinations"]
    assert (full["config"]["url"], full["config"]["headers"]) == (shown.url, dict(shown.headers))
    assert full["config"]["headers"] == {"Authorization": "Bearer SECRETH"}


def test_why_for_an_account_names_its_users_and_their_evidence(space: Space) -> None:
    """Explaining an account audience gives each linked user's outcome with its own tree, and the
    account's links name the users."""
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
               {"type": "identify", "userId": "u2", "traits": {"plan": "free"}},
               {"type": "group", "userId": "u1", "groupId": "acme"},
               {"type": "group", "userId": "u2", "groupId": "acme"})
    space.define("has_pro", "ANY (trait('plan') = 'pro')", collection="accounts")
    space.tick()
    read = space.tokens["read"]
    why = call(space.running, "GET", "/explain/accounts/has_pro?profile=group_id:acme", read).body
    assert (why["value"], why["definition"]["collection"]) == (True, "accounts")
    root = why["root"]
    assert (root["kind"], root["users_satisfying"], root["users_total"]) == ("any", 1, 2)
    outcomes = {tuple(u["profile"]["identifiers"]): u["satisfied"] for u in root["users"]}
    assert outcomes == {("user_id:u1",): True, ("user_id:u2",): False}
    links = call(space.running, "GET", "/profiles/accounts/links?address=group_id:acme", read).body["items"]
    assert sorted(link["identifiers"][0] for link in links) == ["user_id:u1", "user_id:u2"]


def test_the_diff_of_an_edit_uses_the_edited_options(space: Space) -> None:
    """The builder's diff is evaluated with the options being edited, as its preview is: an
    anonymous buyer enters when `include_anonymous_users` is turned on, and the buyers whose
    orders came before the definition exit when `include_historical_data` is turned off; sent
    without options, the diff keeps the stored ones."""
    space.send({"type": "track", "userId": "ada", "event": "Order Completed"},
               {"type": "track", "anonymousId": "anon-1", "event": "Order Completed"})
    space.define("buyers", BUYERS)
    space.tick()
    admin = space.tokens["admin"]

    def preview(**options: object) -> dict[str, object]:
        return call(space.running, "POST", "/preview", admin, {"definition": BUYERS, "compare_key": "buyers",
                                                               "options": options}).body

    anonymous = preview(include_anonymous_users=True)
    assert anonymous["count"] == 2
    diff = anonymous["diff"]
    assert (diff["entering"], diff["exiting"], diff["staying"]) == (1, 0, 1)
    assert diff["samples"]["entering"][0]["profile"]["identifiers"] == ["anonymous_id:anon-1"]
    stored = preview()
    assert (stored["diff"]["entering"], stored["diff"]["exiting"], stored["diff"]["staying"]) == (0, 0, 1)
    assert stored["count"] == 1
    fresh = preview(include_historical_data=False)  # its count is the diff's after, as saving it would hold
    assert (fresh["diff"]["entering"], fresh["diff"]["exiting"], fresh["diff"]["staying"]) == (0, 1, 0)
    assert fresh["count"] == 0
    new = call(space.running, "POST", "/preview", admin, {"definition": BUYERS,
                                                          "options": {"include_historical_data": False}}).body
    assert new["count"] == 0  # a new definition without history counts events from now on
    refused = call(space.running, "POST", "/preview", admin, {"definition": BUYERS, "compare_key": "buyers",
                                                              "options": {"backfill_days": -1}})
    assert (refused.status, refused.body["error"]["reason"]) == (400, "OPTIONS_INVALID")


def test_an_edit_of_a_stale_copy_is_refused_with_409(space: Space) -> None:
    """An edit sends back the etag its GET answered: once another save changed the definition, the
    edit is refused (409 ABORTED EDIT_CONFLICT) and changes nothing; options named alone keep the
    others' stored values."""
    space.define("buyers", BUYERS, include_anonymous_users=True)
    admin, path = space.tokens["admin"], "/computations/users/buyers"
    loaded = call(space.running, "GET", path, admin).body["etag"]
    assert re.fullmatch("[0-9a-f]{16}", loaded)
    first = call(space.running, "PATCH", path, admin, {"name": "Buyers", "etag": loaded})
    assert first.status == 200
    assert first.body["etag"] == call(space.running, "GET", path, admin).body["etag"] != loaded
    stale = call(space.running, "PATCH", path, admin, {"definition": "trait('plan') = 'pro'", "etag": loaded})
    assert stale.status == 409
    assert (stale.body["error"]["code"], stale.body["error"]["reason"]) == ("ABORTED", "EDIT_CONFLICT")
    assert "changed since it was loaded" in stale.body["error"]["message"]
    kept = _audience(space, "buyers")
    assert (kept.name, kept.definition) == ("Buyers", BUYERS)
    fresh = call(space.running, "PATCH", path, admin, {"options": {"backfill_days": 3}, "etag": first.body["etag"]})
    assert fresh.status == 200
    assert fresh.body["computation"]["options"] == {"include_anonymous_users": True, "include_historical_data": True,
                                                    "backfill_days": 3}


def test_the_audit_entry_of_an_edit_names_only_what_changed(space: Space) -> None:
    """An edit sending every field records the fields whose values changed; one that changes
    nothing records nothing (and makes no version)."""
    space.define("buyers", BUYERS)
    admin, path = space.tokens["admin"], "/computations/users/buyers"
    options = {"include_anonymous_users": False, "include_historical_data": True, "backfill_days": 0}
    edited = call(space.running, "PATCH", path, admin, {"name": "buyers", "description": "Who bought",
                                                        "definition": BUYERS, "options": options})
    assert edited.body["changed"] == ["description"]
    same = call(space.running, "PATCH", path, admin, {"description": "Who bought", "enabled": True})
    assert (same.status, same.body["changed"], same.body["computation"]["version"]) == (200, [], 1)
    entries = space.running.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(target="buyers"),
                                                   metadata=bearer(admin)).entries
    assert [(e.action, list(e.details["fields"]) if "fields" in e.details else None) for e in entries] == [
        ("update", ["description"]), ("create", None)]


def test_a_rollback_to_the_current_text_and_options_changes_nothing(space: Space) -> None:
    """Rolling back to a version identical to the current one makes no version and no audit entry,
    and says so (`changed` empty); one to an older text saves a new version."""
    space.define("buyers", BUYERS)
    admin = space.tokens["admin"]
    same = call(space.running, "POST", "/computations/users/buyers/rollback", admin, {"version": 1}).body
    assert (same["changed"], same["computation"]["version"]) == ([], 1)
    call(space.running, "PATCH", "/computations/users/buyers", admin, {"definition": "trait('plan') = 'pro'"})
    call(space.running, "PATCH", "/computations/users/buyers", admin, {"definition": BUYERS})
    again = call(space.running, "POST", "/computations/users/buyers/rollback", admin, {"version": 1}).body
    assert (again["changed"], again["computation"]["version"]) == ([], 3)
    older = call(space.running, "POST", "/computations/users/buyers/rollback", admin, {"version": 2}).body
    assert (older["changed"], older["computation"]["version"]) == (["definition"], 4)
    entries = space.running.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(target="buyers"),
                                                   metadata=bearer(admin)).entries
    assert [e.action for e in entries] == ["update", "update", "update", "create"]


def test_every_dead_letter_is_counted_and_reachable_page_by_page(space: Space,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With more dead letters than the destinations read lists (3 here, 50 unpatched), it counts
    them all and lists the first with the cursor to the rest; `/dead-letters` pages through them;
    each names its change. A redrive of an id not parked names it as the API does (`dlq_…`)."""
    from audiences_server.http.console import reads
    from tests.sync.conftest import Receiver, connect, wait_for, webhook

    monkeypatch.setattr(reads, "DEAD_LETTERS_SHOWN", 3)
    receiver = Receiver()
    receiver.start()
    try:
        receiver.fail_when = lambda body: 400  # parked after one attempt
        space.define("pro", "trait('plan') = 'pro'")
        webhook(space, "hook", receiver.url)
        connect(space, "hook", "pro", send_identify=True)
        space.tick()
        space.send(*[{"type": "identify", "userId": f"u{n}", "traits": {"plan": "pro"}} for n in range(5)])
        space.tick()
        admin = space.tokens["admin"]
        hook = wait_for(lambda: (found := call(space.running, "GET", "/destinations", admin).body["destinations"][0])
                        ["dead_letters_total"] == 5 and found, what="5 dead letters")
    finally:
        receiver.stop()
    first = hook["dead_letters"]
    assert (len(first), hook["dead_letters_next"]) == (3, first[-1]["id"])
    assert [d["change"] for d in first] == [{"type": "entered", "old": None, "new": True}] * 3
    rest = call(space.running, "GET", f"/destinations/hook/dead-letters?after={first[-1]['id']}&limit=1", admin).body
    assert (len(rest["dead_letters"]), rest["next"]) == (1, rest["dead_letters"][0]["id"])
    last = call(space.running, "GET", f"/destinations/hook/dead-letters?after={rest['next']}", admin).body
    assert (len(last["dead_letters"]), last["next"]) == (1, "")
    assert len({d["id"] for d in first + rest["dead_letters"] + last["dead_letters"]}) == 5
    bad = call(space.running, "GET", "/destinations/hook/dead-letters?after=50", admin)
    assert (bad.status, bad.body["error"]["reason"]) == (400, "DEAD_LETTER_ID_INVALID")
    gone = call(space.running, "POST", "/destinations/hook/redrive", admin, {"ids": ["dlq_9223372036854775807"]})
    assert (gone.status, gone.body["error"]["reason"]) == (404, "DEAD_LETTER_NOT_FOUND")
    assert "'hook': dlq_9223372036854775807 " in gone.body["error"]["message"]
