"""Deleting a profile: its exits reach destinations and feeds first, then nothing of it is left
to read, export or follow; with suppression, later calls carrying its identifiers are refused
and counted."""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, ingest_pb2, operator_pb2, profiles_pb2, sync_pb2, tracking_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from tests.conftest import error_reason
from tests.http.conftest import basic, send
from tests.lifecycle.conftest import Site
from tests.sync.conftest import Receiver, connect, ref, wait_for, webhook
from tests.test_metrics import scrape, value

USERS = common_pb2.COLLECTION_USERS


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver standing for a webhook destination."""
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _delete(site: Site, address: str, **options: object) -> operator_pb2.ProfileDeletion:
    request = operator_pb2.DeleteProfileRequest(profile=common_pb2.ProfileRef(collection=USERS, id=address),
                                                **options)
    return site.operator.DeleteProfile(request, metadata=site.as_("operator")).deletion


def _finished(site: Site, deletion_id: str) -> operator_pb2.ProfileDeletion:
    def complete() -> operator_pb2.ProfileDeletion | None:
        found = site.operator.GetProfileDeletion(operator_pb2.GetProfileDeletionRequest(deletion_id=deletion_id),
                                                 metadata=site.as_("operator")).deletion
        return found if found.state == operator_pb2.DELETION_STATE_COMPLETE else None

    return wait_for(complete, timeout=20, what="the deletion to complete")


def _changes(site: Site, cursor: str) -> list[sync_pb2.ChangeRecord]:
    return list(site.running.sync.ListChanges(sync_pb2.ListChangesRequest(
        destination_key="feed", start_cursor=cursor, page_size=500), metadata=site.as_("admin")).changes)


def _exits(receiver: Receiver) -> list[dict[str, object]]:
    return [c for c in receiver.calls() if c.get("event") == "Audience Exited"]


def _http_status(site: Site, address: str) -> int:
    url = f"{site.running.http_url}/v1/spaces/{site.name}/collections/users/profiles/{address}/traits"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=basic(site.tokens["read"])), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _setup(site: Site, receiver: Receiver) -> str:
    """ada and bob in audience `pro`, sent to a webhook and a feed; returns the feed's cursor
    after both entries, as a consumer that read them holds it."""
    site.send({"type": "identify", "userId": "ada", "traits": {"email": "ada@x.io", "plan": "pro"}},
              {"type": "identify", "userId": "bob", "traits": {"plan": "pro"}},
              {"type": "track", "userId": "ada", "event": "Order Completed"})
    site.define("pro", "trait('plan') = 'pro'")
    site.define("orders", "event('Order Completed').count()", kind="computed_trait")
    site.tick()
    webhook(site, "hook", receiver.url)
    connect(site, "hook", "pro", send_track=True)
    site.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=site.as_("admin"))
    connect(site, "feed", "pro")
    wait_for(lambda: len(receiver.calls()) == 2, what="both entries delivered")
    entries = wait_for(lambda: len(_changes(site, "")) == 2 and _changes(site, ""), what="both entries in the feed")
    return str(entries[-1].cursor)


def test_delete_and_suppress(site: Site, receiver: Receiver) -> None:
    """The profile's exit reaches the webhook and the feed's consumer before its data goes; once
    COMPLETE no read (gRPC or HTTP), export or feed shows it; a later call with one of its
    identifiers is refused as `suppressed` and counted; other profiles are untouched."""
    cursor = _setup(site, receiver)
    ada = site.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
        profile=common_pb2.ProfileRef(collection=USERS, id="user_id:ada")), metadata=site.as_("read")).profile_id
    deletion = _delete(site, "email:ada@x.io", suppress=True)
    assert (deletion.state, deletion.profile_id, deletion.requested_by) == (
        operator_pb2.DELETION_STATE_PENDING, ada, "operator-label")
    exit_call = wait_for(lambda: _exits(receiver), what="the exit delivered")[0]
    assert exit_call["userId"] == "ada"
    assert {(i["type"], i["id"]) for i in exit_call["context"]["externalIds"]} == {  # type: ignore[index]
        ("user_id", "ada"), ("email", "ada@x.io")}
    exit_record = wait_for(lambda: _changes(site, cursor), what="the exit in the feed")[0]
    assert (exit_record.profile_id, exit_record.change_type) == (ada, sync_pb2.CHANGE_TYPE_EXITED)
    _changes(site, exit_record.cursor)  # the consumer reads on, acknowledging the exit
    done = _finished(site, deletion.deletion_id)
    assert (done.exits_recorded, done.exits_undelivered, done.events_deleted, done.identifiers_suppressed) == (
        2, 0, 2, 2)

    for address in ("user_id:ada", "email:ada@x.io", ada):
        with pytest.raises(grpc.RpcError) as gone:
            site.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
                profile=common_pb2.ProfileRef(collection=USERS, id=address)), metadata=site.as_("read"))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        assert _http_status(site, address) == 404
    assert _http_status(site, "user_id:bob") == 200
    export = b"".join(c.csv_data for c in site.running.sync.ExportAudience(
        sync_pb2.ExportAudienceRequest(collection=USERS, key="pro"), metadata=site.as_("admin")))
    rows = list(csv.DictReader(io.StringIO(export.decode())))
    # By column: a profile id is random hex, which may hold the letters "ada".
    assert [r["user_id"] for r in rows] == ["bob"]
    assert "ada@x.io" not in {r["email"] for r in rows}
    assert ada not in {r["profile_id"] for r in rows}
    assert ada not in {r.profile_id for r in _changes(site, "")}
    assert site.running.query("SELECT count(*) FROM events WHERE space_id = ? AND user_id = 'ada'",
                              (site.space_id,)) == [(0,)]

    before = scrape(site.running)
    reply = site.running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=(
        b'{"batch": [{"type": "identify", "anonymousId": "a1", "traits": {"email": "ada@x.io"}},'
        b' {"type": "track", "userId": "bob", "event": "Signed In"}]}')), metadata=site.as_("write"))
    assert [(r.status, r.reason) for r in reply.results] == [
        (ingest_pb2.MESSAGE_STATUS_REJECTED, "suppressed"), (ingest_pb2.MESSAGE_STATUS_ACCEPTED, "")]
    with pytest.raises(grpc.RpcError) as refused:
        site.running.ingest.Track(ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="ada", event="X")),
                                  metadata=site.as_("write"))
    assert error_reason(refused.value) == "SUPPRESSED"
    over_http = send(f"{site.running.http_url}/v1/track", b'{"userId": "ada", "event": "X"}',
                     basic(site.tokens["write"]))
    assert (over_http.status, over_http.body["code"]) == (400, "SUPPRESSED")
    after = scrape(site.running)
    counted = ("audiences_messages_total", {"outcome": "rejected", "reason": "suppressed"})
    assert value(after, counted[0], **counted[1]) - before.get((counted[0], tuple(sorted(counted[1].items()))), 0) == 3
    assert site.running.query("SELECT count(*) FROM identifiers WHERE space_id = ? AND id_value IN ('ada', 'ada@x.io')",
                              (site.space_id,)) == [(0,)]
    audit = site.running.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(target_type="profile"),
                                                metadata=site.as_("admin")).entries
    assert [(e.actor, e.action, e.target, e.details["deletion_id"]) for e in audit] == [
        ("operator-label", "delete", ada, deletion.deletion_id)]


def test_delete_without_suppression_lets_the_person_come_back(site: Site) -> None:
    """Without `suppress`, a later call with the same user id makes a new, empty profile."""
    site.send({"type": "identify", "userId": "cy", "traits": {"plan": "pro"}})
    first = _delete(site, "user_id:cy", delivery_timeout=duration_pb2.Duration(seconds=0))
    assert first.profile.id == "user_id:cy"  # as asked, while it runs
    done = _finished(site, first.deletion_id)
    assert done.profile.id == first.profile_id  # then its prf_ id: the record keeps nothing of the person
    assert site.running.query("SELECT count(*) FROM profile_deletions WHERE address LIKE '%cy%'") == [(0,)]
    site.send({"type": "track", "userId": "cy", "event": "Signed In"})
    reply = site.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
        profile=common_pb2.ProfileRef(collection=USERS, id="user_id:cy")), metadata=site.as_("read"))
    assert reply.profile_id != first.profile_id
    assert not reply.traits
    listed = site.operator.ListProfileDeletions(operator_pb2.ListProfileDeletionsRequest(),
                                                metadata=site.as_("operator")).deletions
    assert [d.deletion_id for d in listed] == [first.deletion_id]


def test_timeout_deletes_even_when_a_destination_is_down(site: Site, receiver: Receiver) -> None:
    """With the webhook failing, the deletion waits for its timeout (asking again meanwhile
    returns the same deletion), then completes, counting the exit it could not deliver; the
    queued delivery goes with the profile."""
    _setup(site, receiver)
    receiver.fail_when = lambda body: 503
    deletion = _delete(site, "user_id:ada", delivery_timeout=duration_pb2.Duration(seconds=3600))
    wait_for(lambda: receiver.attempts > 2, what="a failed attempt")
    assert _delete(site, "user_id:ada").deletion_id == deletion.deletion_id
    site.tick(site.now() + 3_600_000)
    done = _finished(site, deletion.deletion_id)
    assert done.exits_undelivered >= 1
    assert site.running.query("SELECT count(*) FROM deliveries d JOIN connections c USING (connection_id)"
                              " JOIN computations k USING (computation_id) WHERE k.space_id = ?",
                              (site.space_id,)) == [(0,)]


@pytest.mark.parametrize("other_first", [True, False], ids=["other-older", "other-newer"])
def test_a_profile_being_deleted_merges_with_no_other(site: Site, receiver: Receiver, other_first: bool) -> None:
    """p1, deleted without suppression, waits for an exit a failing webhook holds when a call
    carrying p1's user id and another profile's anonymous id arrives (that profile older than p1,
    which made p1 the merged side, or newer, which made p1 the survivor). They do not merge: the
    call is p1's and goes with it, the exit is waited for and counted undelivered, nothing of p1
    is left, and the other profile keeps only its own data."""
    early = {"type": "track", "anonymousId": "a2", "event": "Early"}
    p1 = {"type": "identify", "userId": "p1", "traits": {"plan": "pro", "email": "p1@example.com"}}
    for call in (early, p1) if other_first else (p1, early):
        site.send(call)
    site.define("pros", "trait('plan') = 'pro'")
    site.tick()
    receiver.fail_when = lambda body: 503
    webhook(site, "hook", receiver.url)
    connect(site, "hook", "pros", send_identify=True)
    wait_for(lambda: receiver.attempts > 0, what="a failed attempt")
    deletion = _delete(site, "user_id:p1", delivery_timeout=duration_pb2.Duration(seconds=600))
    [(p1_row,)] = site.running.query("SELECT profile_id FROM profiles WHERE public_id = ?", (deletion.profile_id,))
    site.send({"type": "track", "userId": "p1", "anonymousId": "a2", "event": "Later"})
    site.tick()
    site.running.server.engine.lifecycle.wake()
    time.sleep(0.5)
    asked = operator_pb2.GetProfileDeletionRequest(deletion_id=deletion.deletion_id)
    assert site.operator.GetProfileDeletion(asked, metadata=site.as_("operator")).deletion.state == (
        operator_pb2.DELETION_STATE_PENDING)

    site.tick(site.now() + 600_000)
    done = _finished(site, deletion.deletion_id)
    assert done.exits_recorded >= 1
    assert done.exits_undelivered >= 1  # the exit the failing webhook held
    assert done.events_deleted == 2  # the identify and the call that came meanwhile
    with pytest.raises(grpc.RpcError) as gone:
        site.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
            profile=common_pb2.ProfileRef(collection=USERS, id="user_id:p1")), metadata=site.as_("read"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    space = (site.space_id,)
    assert site.running.query("SELECT id_type, id_value FROM identifiers WHERE space_id = ?", space) == [
        ("anonymous_id", "a2")]
    assert site.running.query("SELECT event, user_id FROM events WHERE space_id = ?", space) == [("Early", None)]
    assert site.running.query("SELECT count(*) FROM traits JOIN profiles USING (profile_id) WHERE space_id = ?",
                              space) == [(0,)]
    assert site.running.query("SELECT count(*) FROM computed_values v JOIN computations c USING (computation_id)"
                              " WHERE c.space_id = ?", space) == [(0,)]
    assert site.running.query("SELECT count(*) FROM profiles WHERE profile_id = ? OR merged_into = ?",
                              (p1_row, p1_row)) == [(0,)]
    other = site.running.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
        profile=common_pb2.ProfileRef(collection=USERS, id="anonymous_id:a2")), metadata=site.as_("read"))
    assert not other.traits


def test_an_account_being_deleted_merges_with_no_other(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for an account (accounts merge through `context.externalIds` of collection
    `accounts`): a group call naming the account being deleted and an identifier of another
    account is the deleted account's; the other account keeps its own identifiers and traits."""
    from audiences_server.engine.deletion import Deletions

    crm = {"externalIds": [{"id": "c1", "type": "crm_id", "collection": "accounts", "encoding": "none"}]}
    site.send({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}},
              {"type": "group", "userId": "u2", "groupId": "globex", "traits": {"plan": "free"}, "context": crm})
    stepping = Deletions.step
    monkeypatch.setattr(Deletions, "step", lambda self: False)  # the deletion waits at its exits
    request = operator_pb2.DeleteProfileRequest(profile=common_pb2.ProfileRef(
        collection=common_pb2.COLLECTION_ACCOUNTS, id="group_id:acme"), delivery_timeout=duration_pb2.Duration())
    deletion = site.operator.DeleteProfile(request, metadata=site.as_("operator")).deletion
    site.send({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"seats": 5}, "context": crm})
    monkeypatch.setattr(Deletions, "step", stepping)
    site.running.server.engine.lifecycle.wake()
    _finished(site, deletion.deletion_id)
    assert site.running.query("SELECT id_type, id_value FROM identifiers WHERE space_id = ? AND collection = ?"
                              " ORDER BY id_type", (site.space_id, "accounts")) == [
        ("crm_id", "c1"), ("group_id", "globex")]
    assert site.running.query("SELECT key, value FROM traits JOIN profiles USING (profile_id)"
                              " WHERE space_id = ? AND collection = ?", (site.space_id, "accounts")) == [
        ("plan", '"free"')]


def test_suppression_is_listed_and_can_be_lifted(site: Site) -> None:
    """A suppressed identifier is listed with its deletion; once lifted, calls with it are stored."""
    site.send({"type": "identify", "userId": "dee"})
    deletion = _delete(site, "user_id:dee", suppress=True, delivery_timeout=duration_pb2.Duration(seconds=0))
    listed = site.operator.ListSuppressions(operator_pb2.ListSuppressionsRequest(),
                                            metadata=site.as_("operator")).suppressions
    assert [(s.external_id.type, s.external_id.value, s.deletion_id) for s in listed] == [
        ("user_id", "dee", deletion.deletion_id)]
    site.operator.DeleteSuppression(operator_pb2.DeleteSuppressionRequest(
        external_id=common_pb2.ExternalId(type="user_id", value="dee", collection=USERS)),
        metadata=site.as_("operator"))
    site.send({"type": "identify", "userId": "dee"})
    with pytest.raises(grpc.RpcError) as missing:
        site.operator.DeleteSuppression(operator_pb2.DeleteSuppressionRequest(
            external_id=common_pb2.ExternalId(type="user_id", value="dee", collection=USERS)),
            metadata=site.as_("operator"))
    assert error_reason(missing.value) == "SUPPRESSION_NOT_FOUND"


def test_deleting_users_and_accounts_moves_account_audiences(site: Site) -> None:
    """A deleted user no longer counts for its account's audience (the account exits at the next
    tick); a deleted account leaves its users, whose links to it are gone."""
    site.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
              {"type": "group", "userId": "u1", "groupId": "acme"},
              {"type": "group", "userId": "u2", "groupId": "acme"},
              {"type": "group", "userId": "u2", "groupId": "globex"})
    site.define("pro", "trait('plan') = 'pro'")
    site.define("pro_accounts", "ANY trait('pro') = true", collection="accounts")
    site.tick()
    assert site.member_ids("pro_accounts", "accounts") == {"group_id:acme"}
    _finished(site, _delete(site, "user_id:u1", delivery_timeout=duration_pb2.Duration()).deletion_id)
    site.tick()
    assert site.member_ids("pro_accounts", "accounts") == set()
    request = operator_pb2.DeleteProfileRequest(profile=common_pb2.ProfileRef(
        collection=common_pb2.COLLECTION_ACCOUNTS, id="group_id:acme"), delivery_timeout=duration_pb2.Duration())
    deletion = site.operator.DeleteProfile(request, metadata=site.as_("operator")).deletion
    _finished(site, deletion.deletion_id)
    links = site.running.profiles.ListLinks(profiles_pb2.ListLinksRequest(
        profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u2")), metadata=site.as_("read")).links
    assert [link.profile.external_ids[0].value for link in links] == ["globex"]


def test_values_of_a_disabled_definition_do_not_hold_a_deletion(site: Site) -> None:
    """A profile with a value in a disabled audience (which sends nothing) is deleted at once,
    with no exit recorded for it."""
    site.send({"type": "identify", "userId": "eve", "traits": {"plan": "pro"}})
    site.define("pro", "trait('plan') = 'pro'")
    site.tick()
    site.running.admin.UpdateAudience(admin_pb2.UpdateAudienceRequest(
        audience=admin_pb2.Audience(key="pro", collection=USERS, enabled=False),
        update_mask=field_mask_pb2.FieldMask(paths=["enabled"])), metadata=site.as_("admin"))
    values = "SELECT count(*) FROM computed_values v JOIN computations c USING (computation_id) WHERE c.space_id = ?"
    assert site.running.query(values, (site.space_id,)) == [(1,)]
    done = _finished(site, _delete(site, "user_id:eve").deletion_id)
    assert done.exits_recorded == 0
    assert site.running.query(values, (site.space_id,)) == [(0,)]


def test_a_profile_deleted_during_a_backfill_leaves_the_sizes_exact(site: Site, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    """A profile deleted at once (no wait for deliveries) while an audience's backfill runs: when
    the backfill reaches it before the deletion removes it, its exit is recorded too, so the
    audience's size, its members and its size series agree (the size stayed one too high)."""
    from audiences_server.engine.deletion import Deletions

    admin = site.as_("admin")
    site.send(*({"type": "identify", "userId": f"b{i}", "traits": {"k": "b"}} for i in range(30)))
    site.tick()
    stepping = Deletions.step
    monkeypatch.setattr(Deletions, "step", lambda self: False)  # the deletion waits at its exits
    site.define("bees", "trait('k') = 'b'")
    deletions = [_delete(site, f"user_id:b{i}", delivery_timeout=duration_pb2.Duration()).deletion_id
                 for i in range(3)]
    site.tick()  # the backfill: it reaches the three, still there
    monkeypatch.setattr(Deletions, "step", stepping)
    for deletion_id in deletions:
        _finished(site, deletion_id)
    site.tick()
    got = site.running.admin.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="bees"),
                                         metadata=admin).audience
    members = site.running.admin.ListAudienceMembers(admin_pb2.ListAudienceMembersRequest(
        collection=USERS, key="bees", page_size=100), metadata=admin).members
    assert (got.size, len(members)) == (27, 27)
    assert site.member_ids("bees") == {f"user_id:b{i}" for i in range(3, 30)}
    sizes = site.running.admin.GetSizeHistory(admin_pb2.GetSizeHistoryRequest(
        collection=USERS, key="bees", interval=admin_pb2.SIZE_INTERVAL_HOURLY), metadata=admin)
    assert sizes.current_size == 27


def _solo_in_a_feed(site: Site) -> list[sync_pb2.ChangeRecord]:
    """The feed's only profile, `solo`, in audience `pro`; its entry as the consumer read it."""
    site.send({"type": "identify", "userId": "solo", "traits": {"plan": "pro"}})
    site.define("pro", "trait('plan') = 'pro'")
    site.tick()
    site.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="feed", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=site.as_("admin"))
    connect(site, "feed", "pro")
    return wait_for(lambda: _changes(site, ""), what="the entry in the feed")


def test_a_feed_emptied_by_a_deletion_never_issues_a_cursor_again(site: Site) -> None:
    """A feed's only profile is deleted once its consumer read the exit: the deletion removes
    every record of the feed. The next record's cursor is past every cursor issued before, and
    the consumer resuming after its last one gets it (an id handed out again would sit at or
    before that cursor, skipped without an error)."""
    entry = _solo_in_a_feed(site)
    deletion = _delete(site, "user_id:solo")
    exit_record = wait_for(lambda: _changes(site, entry[-1].cursor), what="the exit in the feed")
    last = exit_record[-1].cursor
    assert _changes(site, last) == []  # the consumer read on, acknowledging the exit
    _finished(site, deletion.deletion_id)
    assert _changes(site, "") == []
    site.send({"type": "identify", "userId": "next", "traits": {"plan": "pro"}})
    site.tick()
    resumed = wait_for(lambda: _changes(site, last), what="the new record after the consumer's cursor")
    assert [r.external_ids[0].value for r in resumed] == ["next"]
    assert int(resumed[0].cursor) > max(int(r.cursor) for r in [*entry, *exit_record])


def test_an_exit_streamed_to_a_watcher_that_stops_before_processing_it_is_not_lost(site: Site) -> None:
    """A WatchChanges consumer receives a deleted profile's exit and stops before processing it:
    the stream sent it, but nothing says it was processed, so the deletion still waits, and the
    consumer resuming after its last processed cursor gets the exit. Acknowledged with
    AckChanges, the deletion completes. (The stream used to acknowledge what it sent, and the
    deletion then removed the exit the consumer never processed.)"""
    entry = _solo_in_a_feed(site)
    processed = entry[-1].cursor
    deletion = _delete(site, "user_id:solo", delivery_timeout=duration_pb2.Duration(seconds=3600))
    stream = site.running.sync.WatchChanges(sync_pb2.WatchChangesRequest(
        destination_key="feed", start_cursor=processed), metadata=site.as_("admin"))
    streamed = next(item for item in stream if item.HasField("change")).change
    assert streamed.change_type == sync_pb2.CHANGE_TYPE_EXITED
    stream.cancel()  # the consumer stops before processing it
    for _ in range(10):  # a deletion whose exits are acknowledged completes within a tick or two
        site.tick()
        time.sleep(0.2)
        waiting = site.operator.GetProfileDeletion(operator_pb2.GetProfileDeletionRequest(
            deletion_id=deletion.deletion_id), metadata=site.as_("operator")).deletion
        assert waiting.state != operator_pb2.DELETION_STATE_COMPLETE
    resumed = _changes(site, processed)
    assert [(r.cursor, r.change_type) for r in resumed] == [(streamed.cursor, sync_pb2.CHANGE_TYPE_EXITED)]
    site.running.sync.AckChanges(sync_pb2.AckChangesRequest(destination_key="feed", cursor=streamed.cursor),
                                 metadata=site.as_("admin"))
    assert _finished(site, deletion.deletion_id).exits_undelivered == 0


def test_a_user_s_own_exit_from_an_account_is_waited_for_and_goes_with_it(site: Site, receiver: Receiver) -> None:
    """A deleted user linked to a member account: the account sends that user's own exit, queued
    under the account. The deletion waits for it (it used to complete at once, the exit then sent
    after the user was gone, with the user's identifiers), and a deletion that times out takes it
    with the profile rather than leave it queued or in the dead letters."""
    site.send({"type": "identify", "userId": "leaver", "traits": {"email": "leaver@x.io"}},
              {"type": "identify", "userId": "stayer"},
              {"type": "group", "userId": "leaver", "groupId": "acme", "traits": {"tier": "gold"}},
              {"type": "group", "userId": "stayer", "groupId": "acme"})
    site.define("gold", "trait('tier') = 'gold'", collection="accounts")
    site.tick()
    webhook(site, "crm", receiver.url)
    connect(site, "crm", "gold", collection="accounts", send_track=True)
    wait_for(lambda: len(receiver.calls()) >= 2, what="the first sync of both users")
    receiver.fail_when = lambda body: 503  # the receiver is down from here on
    deletion = _delete(site, "user_id:leaver", delivery_timeout=duration_pb2.Duration(seconds=3600))
    for _ in range(10):
        site.tick()
        time.sleep(0.2)
        waiting = site.operator.GetProfileDeletion(operator_pb2.GetProfileDeletionRequest(
            deletion_id=deletion.deletion_id), metadata=site.as_("operator")).deletion
        assert waiting.state != operator_pb2.DELETION_STATE_COMPLETE
    receiver.fail_when = None  # back: the exit, parked meanwhile, is redriven
    site.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="crm"),
                                         metadata=site.as_("admin"))
    wait_for(lambda: _exits(receiver), what="the user's exit")
    assert [e["userId"] for e in _exits(receiver)] == ["leaver"]
    assert _finished(site, deletion.deletion_id).exits_undelivered == 0
    # Timed out: what is still queued of the user goes with it, its own exits on accounts too.
    site.send({"type": "identify", "userId": "second"}, {"type": "group", "userId": "second", "groupId": "acme"})
    site.tick()
    wait_for(lambda: any(c.get("userId") == "second" for c in receiver.calls()), what="the new user's entry")
    receiver.fail_when = lambda body: 503
    gone = _finished(site, _delete(site, "user_id:second", delivery_timeout=duration_pb2.Duration()).deletion_id)
    assert gone.exits_undelivered >= 1
    assert site.running.query("SELECT count(*) FROM deliveries WHERE record LIKE '%second%'") == [(0,)]


@pytest.mark.parametrize("left", [False, True], ids=["member", "left"])
def test_an_account_s_parked_change_no_longer_names_a_deleted_user(site: Site, receiver: Receiver,
                                                                    left: bool) -> None:
    """An account's own change (its entry) lists its users with their identifiers; parked, it
    outlives a deletion of one of them. Once the deletion is complete, that user is no longer in
    it: neither the dead letter nor its redrive carries the deleted user's identifiers, and the
    other user's still go. Also when the account had left the audience before the deletion (its
    exit held behind the dead letter): no change then named the user, and the purge, which found
    the account through such a change or the user's links, gone by then, left the user in it."""
    site.send({"type": "identify", "userId": "leaver", "traits": {"email": "leaver@x.io"}},
              {"type": "identify", "userId": "stayer"},
              {"type": "group", "userId": "stayer", "groupId": "acme"},
              {"type": "group", "userId": "leaver", "groupId": "acme", "traits": {"tier": "gold"}})
    site.define("gold", "trait('tier') = 'gold'", collection="accounts")
    site.tick()
    receiver.fail_when = lambda body: 400  # the account's entry is parked
    webhook(site, "crm", receiver.url)
    connect(site, "crm", "gold", collection="accounts", send_identify=True)
    listed = sync_pb2.ListDeadLettersRequest(destination_key="crm")
    parked = wait_for(lambda: site.running.sync.ListDeadLetters(listed, metadata=site.as_("admin")).dead_letters,
                      what="the account's entry parked")
    assert "leaver" in str(parked[0].payload)
    if left:
        site.send({"type": "group", "userId": "stayer", "groupId": "acme", "traits": {"tier": "silver"}})
        site.tick()
    _finished(site, _delete(site, "user_id:leaver", delivery_timeout=duration_pb2.Duration()).deletion_id)
    letters = site.running.sync.ListDeadLetters(listed, metadata=site.as_("admin")).dead_letters
    assert "leaver" not in " ".join(str(letter.payload) for letter in letters)
    assert any("stayer" in str(letter.payload) for letter in letters)
    receiver.fail_when = None
    site.running.sync.RedriveDeadLetters(sync_pb2.RedriveDeadLettersRequest(destination_key="crm"),
                                         metadata=site.as_("admin"))
    calls = wait_for(lambda: any(c.get("userId") == "stayer" for c in receiver.calls()) and receiver.calls(),
                     what="the redriven entry")
    assert not [c for c in calls if "leaver" in repr(c)]


def test_a_feed_s_delivered_count_never_goes_down(site: Site) -> None:
    """A feed's delivered count is since connected: records its consumer acknowledged and a
    deletion then removed still count (it counted only the records kept, and went down)."""
    _solo_in_a_feed(site)
    site.send({"type": "identify", "userId": "other", "traits": {"plan": "pro"}})
    site.tick()
    records = wait_for(lambda: len(_changes(site, "")) == 2 and _changes(site, ""), what="both entries")
    _changes(site, records[-1].cursor)  # read on: both acknowledged
    request = sync_pb2.GetConnectionRequest(destination_key="feed", computation=ref("pro"))

    def delivered() -> int:
        return site.running.sync.GetConnection(request, metadata=site.as_("admin")).connection.delivery.delivered_count

    assert delivered() == 2
    deletion = _delete(site, "user_id:solo")
    exit_record = wait_for(lambda: _changes(site, records[-1].cursor), what="the exit")
    _changes(site, exit_record[-1].cursor)
    _finished(site, deletion.deletion_id)
    assert delivered() == 3  # solo's entry and exit, other's entry: solo's records are gone


def _at_events_stage(site: Site, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Holds every deletion at its last stage (its row gone, its events not yet deleted) until the
    returned function lets it go on."""
    from audiences_server.engine.deletion import Deletions

    deleting = Deletions._delete_events
    monkeypatch.setattr(Deletions, "_delete_events", lambda self, conn, row: time.sleep(0.005))

    def go_on() -> None:
        monkeypatch.setattr(Deletions, "_delete_events", deleting)
        site.running.server.engine.lifecycle.wake()

    return go_on


def test_a_profile_made_while_another_is_deleted_keeps_its_own_id(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest profile is deleted: its row goes, then its events, in later jobs. Profiles made
    meanwhile get ids past the deleted one's (SQLite would hand it out again): they merge as usual,
    and the deletion removes the deleted profile's events only."""
    site.send({"type": "identify", "userId": "leaver", "traits": {"plan": "pro"}},
              {"type": "track", "userId": "leaver", "event": "Clicked"})
    [(leaver_id,)] = site.running.query("SELECT profile_id FROM identifiers WHERE space_id = ? AND id_value = 'leaver'",
                                        (site.space_id,))
    go_on = _at_events_stage(site, monkeypatch)
    deletion = _delete(site, "user_id:leaver", delivery_timeout=duration_pb2.Duration())
    wait_for(lambda: site.running.query("SELECT stage FROM profile_deletions WHERE space_id = ?",
                                        (site.space_id,)) == [("events",)],
             what="the deletion at its last stage")
    viewed = [{"type": "track", "anonymousId": "newcomer", "event": "Viewed", "messageId": f"v{n}"} for n in range(3)]
    site.send(*viewed, {"type": "identify", "userId": "joiner"},
              {"type": "identify", "userId": "joiner", "anonymousId": "newcomer"},
              {"type": "track", "anonymousId": "newcomer", "event": "Viewed", "messageId": "v3"})
    holders = dict(site.running.query("SELECT id_value, profile_id FROM identifiers WHERE space_id = ?"
                                      " AND id_value IN ('newcomer', 'joiner')", (site.space_id,)))
    assert holders["newcomer"] == holders["joiner"] > leaver_id
    go_on()
    done = _finished(site, deletion.deletion_id)
    assert done.events_deleted == 2
    assert site.running.query("SELECT count(*) FROM events WHERE profile_id = ?", (holders["joiner"],)) == [(6,)]


def test_a_cursor_whose_record_a_deletion_removed_still_reads(site: Site) -> None:
    """A consumer read the entry of a profile that is then deleted at once (no wait): the deletion
    removes the entry and the exit, the feed's newest records. Resuming after the entry's cursor
    reads on (nothing yet, then the next record), rather than refusing a cursor the feed issued."""
    entry = _solo_in_a_feed(site)
    _finished(site, _delete(site, "user_id:solo", delivery_timeout=duration_pb2.Duration()).deletion_id)
    assert _changes(site, entry[-1].cursor) == []
    site.send({"type": "identify", "userId": "next", "traits": {"plan": "pro"}})
    site.tick()
    resumed = wait_for(lambda: _changes(site, entry[-1].cursor), what="the next record after the cursor")
    assert [r.external_ids[0].value for r in resumed] == ["next"]
