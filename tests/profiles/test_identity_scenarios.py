"""Identity resolution end to end: messages in through IngestService, profiles out through ProfilesService."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2, profiles_pb2
from google.protobuf import field_mask_pb2

from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import DAY, Space

USERS = common_pb2.COLLECTION_USERS


def ids_of(space: Space, address: str, collection: int = USERS) -> set[str]:
    """The identifiers of the profile an address names."""
    reply = space.running.profiles.ListExternalIds(
        profiles_pb2.ListExternalIdsRequest(
            profile=common_pb2.ProfileRef(collection=collection, id=address), page_size=200
        ),
        metadata=bearer(space.tokens["read"]),
    )
    return {f"{i.type}:{i.value}" for i in reply.external_ids}


def device(kind: str, **fields: Any) -> dict[str, Any]:
    return {"device": {"type": kind, **fields}}


SCENARIOS: list[tuple[str, list[dict[str, Any]], list[set[str]]]] = [
    (
        "anonymous browsing then login",
        [{"type": "page", "anonymousId": "a1"}, {"type": "identify", "userId": "u1", "anonymousId": "a1"}],
        [{"user_id:u1", "anonymous_id:a1"}],
    ),
    (
        "two devices of one user",
        [
            {"type": "track", "userId": "u1", "anonymousId": "d1", "event": "E"},
            {"type": "track", "userId": "u1", "anonymousId": "d2", "event": "E"},
        ],
        [{"user_id:u1", "anonymous_id:d1", "anonymous_id:d2"}],
    ),
    (
        "two anonymous profiles merge at login",
        [
            {"type": "track", "anonymousId": "d1", "event": "E"},
            {"type": "track", "anonymousId": "d2", "event": "E"},
            {"type": "identify", "userId": "u1", "anonymousId": "d1"},
            {"type": "identify", "userId": "u1", "anonymousId": "d2"},
        ],
        [{"user_id:u1", "anonymous_id:d1", "anonymous_id:d2"}],
    ),
    (
        "a shared anonymous id never merges two user ids",
        [
            {"type": "identify", "userId": "u1", "anonymousId": "kiosk"},
            {"type": "identify", "userId": "u2", "anonymousId": "kiosk"},
        ],
        [{"user_id:u1", "anonymous_id:kiosk"}, {"user_id:u2"}],
    ),
    (
        "an email moving to another user stays with the first",
        [
            {"type": "identify", "userId": "u1", "traits": {"email": "a@x.io"}},
            {"type": "identify", "userId": "u2", "traits": {"email": "a@x.io"}},
        ],
        [{"user_id:u1", "email:a@x.io"}, {"user_id:u2"}],
    ),
    (
        "blocked user id 0 is kept off the profile",
        [{"type": "track", "userId": "0", "anonymousId": "a1", "event": "E"}],
        [{"anonymous_id:a1"}],
    ),
    (
        "blocked values null, anonymous and -1",
        [
            {"type": "track", "userId": "null", "anonymousId": "a2", "event": "E"},
            {"type": "track", "userId": "anonymous", "anonymousId": "a2", "event": "E"},
            {"type": "track", "userId": "-1", "anonymousId": "a2", "event": "E"},
        ],
        [{"anonymous_id:a2"}],
    ),
    (
        "alias links the previous id",
        [{"type": "track", "anonymousId": "old", "event": "E"}, {"type": "alias", "previousId": "old", "userId": "u9"}],
        [{"user_id:u9", "anonymous_id:old"}],
    ),
    (
        "idfa only with ad tracking on",
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "E",
                "context": device("ios", id="I1", advertisingId="AD1", adTrackingEnabled=False),
            },
            {
                "type": "track",
                "userId": "u2",
                "event": "E",
                "context": device("ios", id="I2", advertisingId="AD2", adTrackingEnabled=True),
            },
        ],
        [{"user_id:u1", "ios.id:I1"}, {"user_id:u2", "ios.id:I2", "ios.idfa:AD2"}],
    ),
    (
        "android device id and push token",
        [{"type": "track", "userId": "u1", "event": "E", "context": device("android", id="D1", token="T1")}],
        [{"user_id:u1", "android.id:D1", "android.push_token:T1"}],
    ),
    (
        "email from context traits on a track call",
        [{"type": "track", "userId": "u1", "event": "E", "context": {"traits": {"email": "c@x.io"}}}],
        [{"user_id:u1", "email:c@x.io"}],
    ),
    ("numeric user ids are text", [{"type": "track", "userId": 42, "event": "E"}], [{"user_id:42"}]),
    (
        "custom external ids are lower-cased by type",
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "E",
                "context": {
                    "externalIds": [{"id": "C-7", "type": "CRM_ID", "collection": "users", "encoding": "none"}]
                },
            }
        ],
        [{"user_id:u1", "crm_id:C-7"}],
    ),
    (
        "a device seen with two users stays with the first",
        [
            {"type": "track", "userId": "u1", "event": "E", "context": device("ios", id="shared")},
            {"type": "track", "userId": "u2", "event": "E", "context": device("ios", id="shared")},
        ],
        [{"user_id:u1", "ios.id:shared"}, {"user_id:u2"}],
    ),
    (
        "an anonymous id joins the user once, then stays",
        [{"type": "identify", "userId": "u1", "anonymousId": "a"}, {"type": "track", "anonymousId": "a", "event": "E"}],
        [{"user_id:u1", "anonymous_id:a"}],
    ),
    (
        "email links an anonymous visitor to a known user",
        [
            {"type": "identify", "userId": "u1", "traits": {"email": "k@x.io"}},
            {"type": "identify", "anonymousId": "v1", "traits": {"email": "k@x.io"}},
        ],
        [{"user_id:u1", "email:k@x.io", "anonymous_id:v1"}],
    ),
    (
        "a second email is kept (5 ever)",
        [
            {"type": "identify", "userId": "u1", "traits": {"email": "1@x.io"}},
            {"type": "identify", "userId": "u1", "traits": {"email": "2@x.io"}},
        ],
        [{"user_id:u1", "email:1@x.io", "email:2@x.io"}],
    ),
    (
        "alias from an old user id keeps both users apart",
        [
            {"type": "identify", "userId": "old", "traits": {}},
            {"type": "alias", "previousId": "old", "userId": "new"},
        ],
        [{"user_id:old"}, {"user_id:new", "anonymous_id:old"}],
    ),
    (
        "an all-zero email is blocked by the default pattern",
        [{"type": "identify", "userId": "u1", "traits": {"email": "000"}}],
        [{"user_id:u1"}],
    ),
    (
        "emails differing in case are two identifiers",
        [
            {"type": "identify", "userId": "u1", "traits": {"email": "Ann@x.io"}},
            {"type": "identify", "userId": "u1", "traits": {"email": "ann@x.io"}},
        ],
        [{"user_id:u1", "email:Ann@x.io", "email:ann@x.io"}],
    ),
    (
        "the email in a group call's traits is the account's, not the user's",
        [{"type": "group", "userId": "u1", "groupId": "g1", "traits": {"email": "billing@g1.io"}}],
        [{"user_id:u1"}],
    ),
    (
        "an external id in another encoding is not used",
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "E",
                "context": {"externalIds": [{"id": "aGk=", "type": "crm_id", "collection": "users",
                                             "encoding": "base64"}]},
            }
        ],
        [{"user_id:u1"}],
    ),
    (
        "android advertising id with ad tracking on",
        [
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "E",
                "context": device("android", advertisingId="AD9", adTrackingEnabled=True),
            }
        ],
        [{"anonymous_id:a1", "android.idfa:AD9"}],
    ),
    (
        "a sixth anonymous id is dropped (5 ever)",
        [{"type": "track", "userId": "u1", "anonymousId": f"d{i}", "event": "E"} for i in range(6)],
        [{"user_id:u1", *(f"anonymous_id:d{i}" for i in range(5))}],
    ),
    (
        "an empty anonymous id is no id",
        [{"type": "track", "userId": "u1", "anonymousId": "", "event": "E"}],
        [{"user_id:u1"}],
    ),
]


@pytest.mark.parametrize(("messages", "profiles"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_identity_scenario(space: Space, messages: list[dict[str, Any]], profiles: list[set[str]]) -> None:
    """Each message sequence resolves to exactly the expected profiles and identifiers."""
    for message in messages:
        space.send(message)
    for expected in profiles:
        for address in expected:
            assert ids_of(space, address) == expected, address
    total = space.running.query(
        "SELECT count(*) FROM profiles WHERE space_id = ? AND collection = 'users' AND merged_into IS NULL",
        (space.space_id,),
    )[0][0]
    assert total == len(profiles)


def test_merge_chain_resolves_by_every_id(space: Space) -> None:
    """A←B←C: after two merges every identifier and every old profile id names the survivor."""
    space.send({"type": "identify", "userId": "u", "traits": {}})
    space.send({"type": "track", "anonymousId": "b", "event": "E"})
    space.send(
        {
            "type": "track",
            "anonymousId": "c",
            "event": "E",
            "context": {"externalIds": [{"id": "k", "type": "cookie", "collection": "users"}]},
        }
    )
    old = {
        a: space.running.profiles.GetMetadata(
            profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(collection=USERS, id=a)),
            metadata=bearer(space.tokens["read"]),
        ).metadata
        for a in ("user_id:u", "anonymous_id:b", "anonymous_id:c")
    }
    space.send(
        {
            "type": "track",
            "anonymousId": "b",
            "event": "E",
            "context": {"externalIds": [{"id": "k", "type": "cookie", "collection": "users"}]},
        }
    )
    space.send({"type": "identify", "userId": "u", "anonymousId": "b"})
    everything = {"user_id:u", "anonymous_id:b", "anonymous_id:c", "cookie:k"}
    for address in [*everything, *(m.profile_id for m in old.values())]:
        assert ids_of(space, address) == everything
    meta = space.running.profiles.GetMetadata(
        profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(collection=USERS, id="anonymous_id:c")),
        metadata=bearer(space.tokens["read"]),
    )
    assert meta.metadata.profile_id == old["user_id:u"].profile_id
    assert set(meta.metadata.merged_profile_ids) == {old["anonymous_id:b"].profile_id, old["anonymous_id:c"].profile_id}


def traits_of(space: Space, address: str, collection: int = USERS) -> dict[str, Any]:
    """The custom traits of the profile an address names, as plain values."""
    from google.protobuf import json_format

    reply = space.running.profiles.ListTraits(
        profiles_pb2.ListTraitsRequest(
            profile=common_pb2.ProfileRef(collection=collection, id=address),
            page_size=200,
            trait_class=profiles_pb2.TRAIT_CLASS_CUSTOM,
        ),
        metadata=bearer(space.tokens["read"]),
    )
    return {t.key: json_format.MessageToDict(t.value) for t in reply.traits}


def test_out_of_order_identify_calls_keep_the_latest(space: Space) -> None:
    """Traits are last-write-wins by event time: an older identify arriving later changes nothing."""
    now = space.now()
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "seats": 5}, "at": now})
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free", "city": "Oslo"}, "at": now - DAY})
    assert traits_of(space, "user_id:u1") == {"plan": "pro", "seats": 5, "city": "Oslo"}


def test_null_removes_a_trait_for_good(space: Space) -> None:
    """A null removes a trait; a value stamped before the removal does not bring it back."""
    now = space.now()
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "coupon": "X"}, "at": now - DAY})
    space.send({"type": "identify", "userId": "u1", "traits": {"coupon": None}, "at": now})
    space.send({"type": "identify", "userId": "u1", "traits": {"coupon": "OLD"}, "at": now - 1})
    assert traits_of(space, "user_id:u1") == {"plan": "pro"}


def test_group_calls_link_a_user_to_two_accounts(space: Space) -> None:
    """Group calls link the user to each account, both ways, and set each account's traits."""
    space.send(
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"tier": "gold"}},
        {"type": "group", "userId": "u1", "groupId": "globex", "traits": {"tier": "free"}},
    )
    links = space.running.profiles.ListLinks(
        profiles_pb2.ListLinksRequest(profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u1")),
        metadata=bearer(space.tokens["read"]),
    )
    assert {i.value for link in links.links for i in link.profile.external_ids} == {"acme", "globex"}
    for account, tier in (("acme", "gold"), ("globex", "free")):
        assert ids_of(space, f"group_id:{account}", common_pb2.COLLECTION_ACCOUNTS) == {f"group_id:{account}"}
        assert traits_of(space, f"group_id:{account}", common_pb2.COLLECTION_ACCOUNTS) == {"tier": tier}


def limit_email_weekly(space: Space) -> None:
    """Email: at most one value added per rolling week, through the admin API."""
    space.running.admin.UpdateIdentityRule(
        admin_pb2.UpdateIdentityRuleRequest(
            rule=admin_pb2.IdentityRule(id_type="email", limit=1, limit_period=admin_pb2.IDENTITY_LIMIT_PERIOD_WEEKLY),
            update_mask=field_mask_pb2.FieldMask(paths=["limit", "limit_period"]),
        ),
        metadata=bearer(space.tokens["admin"]),
    )


def test_weekly_limit(space: Space) -> None:
    """With email limited to 1 a week, a second email is dropped, and a third one 8 days later is kept."""
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "0@x.io"}})
    limit_email_weekly(space)
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "1@x.io"}})
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "2@x.io"}, "messageId": "w2"})
    assert ids_of(space, "user_id:u1") == {"user_id:u1", "email:0@x.io"}
    space.running.server.engine.clock.set(space.now() + 8 * DAY)
    space.send({"type": "identify", "userId": "u1", "traits": {"email": "3@x.io"}})
    assert ids_of(space, "user_id:u1") == {"user_id:u1", "email:0@x.io", "email:3@x.io"}
    listed = space.running.admin.ListIdentityRuleViolations(
        admin_pb2.ListIdentityRuleViolationsRequest(), metadata=bearer(space.tokens["admin"])
    )
    assert [(v.rule_name, v.id_type, v.count, v.sample_message_ids[0]) for v in listed.violations] == [
        ("Identifier value time limit exceeded", "email", 2, "w2")
    ]


def metadata_of(space: Space, address: str, collection: int = USERS) -> profiles_pb2.ProfileMetadata:
    return space.running.profiles.GetMetadata(
        profiles_pb2.GetMetadataRequest(profile=common_pb2.ProfileRef(collection=collection, id=address)),
        metadata=bearer(space.tokens["read"]),
    ).metadata


def test_a_merge_moves_events_traits_links_and_message_times(space: Space) -> None:
    """After an anonymous visitor logs in, the user's profile has both histories, traits, links and times."""
    now = space.now()
    space.send(
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "k1", "at": now - DAY},
        {"type": "group", "userId": "u1", "groupId": "acme", "at": now - DAY},
    )
    space.send(
        {"type": "track", "anonymousId": "v", "event": "Early", "messageId": "v1", "at": now - 3 * DAY},
        {"type": "identify", "anonymousId": "v", "traits": {"city": "Oslo"}, "at": now - 2 * DAY},
        {"type": "group", "anonymousId": "v", "groupId": "acme", "at": now - 2 * DAY},
        {"type": "group", "anonymousId": "v", "groupId": "globex", "at": now - 2 * DAY},
    )
    space.send({"type": "identify", "userId": "u1", "anonymousId": "v", "messageId": "login", "at": now})
    events = space.running.profiles.ListEvents(
        profiles_pb2.ListEventsRequest(profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u1")),
        metadata=bearer(space.tokens["read"]),
    ).events
    assert [e.message_id for e in events] == ["v1"]
    assert traits_of(space, "anonymous_id:v") == {"plan": "pro", "city": "Oslo"}
    meta = metadata_of(space, "anonymous_id:v")
    assert (meta.first_message_time.ToMilliseconds(), meta.last_message_time.ToMilliseconds()) == (now - 3 * DAY, now)
    assert len(meta.merged_profile_ids) == 1
    links = space.running.profiles.ListLinks(
        profiles_pb2.ListLinksRequest(profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u1")),
        metadata=bearer(space.tokens["read"]),
    ).links
    assert [(link.profile.external_ids[0].value, link.create_time.ToMilliseconds()) for link in links] == [
        ("acme", now - 2 * DAY),
        ("globex", now - 2 * DAY),
    ]
    users = space.running.profiles.ListLinks(
        profiles_pb2.ListLinksRequest(profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_ACCOUNTS,
                                                                    id="group_id:acme")),
        metadata=bearer(space.tokens["read"]),
    ).links
    assert [link.profile.profile_id for link in users] == [meta.profile_id]


@pytest.mark.parametrize("split", [False, True], ids=["one-profile", "two-merged"])
def test_a_removal_ends_the_other_profiles_older_link_in_a_merge(space: Space, split: bool) -> None:
    """A link at day 3, its removal at day 15, then a late group call dated day 10: on one profile
    they leave no link (the removal is the latest); split over two profiles that then merge, the
    same, seen from the user and from the account."""
    first, late = ("c", "d") if split else ("c", "c")
    space.send({"type": "identify", "anonymousId": late, "traits": {"plan": "pro"}, "at": space.now() - 30 * DAY},
               {"type": "group", "anonymousId": first, "groupId": "acme", "at": space.now() - 27 * DAY},
               {"type": "group", "anonymousId": first, "groupId": "acme", "context": {"unlink": True},
                "at": space.now() - 15 * DAY},
               {"type": "group", "anonymousId": late, "groupId": "acme", "at": space.now() - 20 * DAY})
    if split:
        space.send({"type": "identify", "anonymousId": "c", "context": {"externalIds": [
            {"id": "d", "type": "anonymous_id", "collection": "users", "encoding": "none"}]}})
    space.tick()
    links = space.running.profiles.ListLinks(
        profiles_pb2.ListLinksRequest(profile=common_pb2.ProfileRef(collection=USERS, id="anonymous_id:c")),
        metadata=bearer(space.tokens["read"]),
    ).links
    assert list(links) == []
    users = space.running.profiles.ListLinks(
        profiles_pb2.ListLinksRequest(profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_ACCOUNTS,
                                                                    id="group_id:acme")),
        metadata=bearer(space.tokens["read"]),
    ).links
    assert list(users) == []


def test_one_batch_with_a_merge_keeps_the_earliest_message(space: Space) -> None:
    """Within one batch, a survivor's own earlier message is not forgotten when another profile merges in."""
    now = space.now()
    space.send(
        {"type": "track", "userId": "u1", "event": "E", "at": now - 5 * DAY},
        {"type": "track", "anonymousId": "b", "event": "E", "at": now - DAY},
        {"type": "identify", "userId": "u1", "anonymousId": "b", "at": now},
    )
    meta = metadata_of(space, "anonymous_id:b")
    assert (meta.first_message_time.ToMilliseconds(), meta.last_message_time.ToMilliseconds()) == (now - 5 * DAY, now)


def test_a_merge_of_linked_users_ends_the_accounts_links_tokens(space: Space) -> None:
    """An account's users paged while two of them merge: the survivor takes the earlier link time,
    which can put it before the page already read, so the token is refused (start again) rather
    than the survivor silently never listed; a merge of users not linked to it leaves it valid."""
    now = space.now()
    space.send({"type": "identify", "userId": "a", "at": now - 9 * DAY},
               {"type": "identify", "anonymousId": "b", "at": now - 9 * DAY},
               {"type": "identify", "userId": "c", "at": now - 9 * DAY},
               {"type": "identify", "userId": "x", "at": now - 9 * DAY},
               {"type": "identify", "anonymousId": "y", "at": now - 9 * DAY})
    space.send({"type": "group", "anonymousId": "b", "groupId": "acme", "at": now - 8 * DAY},
               {"type": "group", "userId": "c", "groupId": "acme", "at": now - 7 * DAY},
               {"type": "group", "userId": "a", "groupId": "acme", "at": now - 6 * DAY})
    acme = common_pb2.ProfileRef(collection=common_pb2.COLLECTION_ACCOUNTS, id="group_id:acme")

    def page(token: str = "") -> profiles_pb2.ListLinksResponse:
        return space.running.profiles.ListLinks(profiles_pb2.ListLinksRequest(profile=acme, page_size=1,
                                                                              page_token=token),
                                                metadata=bearer(space.tokens["read"]))

    first = page()
    space.send({"type": "identify", "userId": "x", "anonymousId": "y", "at": now - DAY})  # not acme's users
    second = page(first.next_page_token)
    assert second.links
    space.send({"type": "identify", "userId": "a", "anonymousId": "b", "at": now - DAY})
    with pytest.raises(grpc.RpcError) as ended:
        page(second.next_page_token)
    assert (ended.value.code(), error_reason(ended.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID")
    again, token = [], ""
    while True:
        reply = page(token)
        again += [link.profile.external_ids[0].value for link in reply.links]
        token = reply.next_page_token
        if not token:
            break
    assert sorted(again) == ["a", "c"]


@pytest.mark.parametrize(("unlinked", "relinked", "again"), [
    (2 * DAY, DAY, ["a2", "a3", "a4", "a1"]),  # made anew after the other links
    (15 * DAY // 2, 13 * DAY // 2, ["a2", "a3", "a1", "a4"]),  # by calls with earlier times: among them
])
def test_a_link_made_anew_while_paged_is_not_listed_twice(space: Space, unlinked: int, relinked: int,
                                                          again: list[str]) -> None:
    """An account's users paged while one already listed is unlinked and linked again (its link
    made anew at the new time, after the others' or among them): later pages list no link made
    after the first page was read, whatever its time, so it is not listed a second time; the next
    listing has it."""
    now = space.now()
    for n, user in enumerate(("a1", "a2", "a3", "a4")):
        space.send({"type": "group", "userId": user, "groupId": "acme", "at": now - (9 - n) * DAY})
    acme = common_pb2.ProfileRef(collection=common_pb2.COLLECTION_ACCOUNTS, id="group_id:acme")

    def listing(first: profiles_pb2.ListLinksResponse | None = None) -> list[str]:
        listed, reply = [], first
        while True:
            if reply is None or reply.next_page_token:
                reply = space.running.profiles.ListLinks(profiles_pb2.ListLinksRequest(
                    profile=acme, page_size=2, page_token=reply.next_page_token if reply else ""),
                    metadata=bearer(space.tokens["read"]))
                listed += [link.profile.external_ids[0].value for link in reply.links]
            if not reply.next_page_token:
                return listed

    first = space.running.profiles.ListLinks(profiles_pb2.ListLinksRequest(profile=acme, page_size=2),
                                             metadata=bearer(space.tokens["read"]))
    assert [link.profile.external_ids[0].value for link in first.links] == ["a1", "a2"]
    space.send({"type": "group", "userId": "a1", "groupId": "acme", "context": {"unlink": True},
                "at": now - unlinked})
    space.send({"type": "group", "userId": "a1", "groupId": "acme", "at": now - relinked})
    assert listing(first) == ["a3", "a4"]
    assert listing() == again
