"""External ids read from one tracking-spec message.

Where each id comes from follows docs/identity.md and Segment's table of default externalIDs
(`src/unify/identity-resolution/externalids.md` and `identity-resolution-onboarding.md` in
`segmentio/segment-docs`). Extraction knows nothing of the space's rules: blocked values are
still here and are dropped by the planner, which records them as violations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from audiences_server.core.tracking import encodable

USERS = "users"
ACCOUNTS = "accounts"
COLLECTIONS = (USERS, ACCOUNTS)

_DEVICE_TYPES = frozenset({"ios", "android"})
# Segment documents `none` as the only encoding; an id in any other encoding cannot be
# compared with the same id sent plainly, so it is not used at all.
_PLAIN_ENCODINGS = frozenset({"none", ""})
# Segment's Google Analytics destination carries the GA client id here, in the call's
# `integrations` or `context.integrations`.
_GA_INTEGRATION, _GA_CLIENT_ID = "Google Analytics", "clientId"
# Bounds that keep a profile's identifiers listable in one Profiles reply (1,000 of them):
# a longer value is held back by the planner as blocked; a longer custom type is not read.
MAX_ID_VALUE_CHARS = 500
MAX_ID_TYPE_CHARS = 100


class ExternalId(NamedTuple):
    """One identifier, `type:value`, e.g. `user_id:u_123` or `ios.idfa:6D92…`.

    A named tuple rather than a dataclass: ingest makes, hashes and compares a few per call, and
    a tuple does that in C. Ids order by (type, value).

    Attributes:
        type: the id type, lower case (`user_id`, `email`, a custom type…).
        value: the value exactly as sent, numbers in their decimal form.
    """

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> ExternalId:
        """Read the `type:value` form used by the Profiles API.

        The type ends at the first colon, so values may contain colons. The type is lower-cased
        because Segment's id types are lower case.

        Args:
            text: an identifier written `type:value`.

        Returns:
            The identifier.

        Raises:
            ValueError: when there is no colon or the type is empty.
        """
        id_type, colon, value = text.partition(":")
        id_type = id_type.strip().lower()
        if not colon or not id_type:
            raise ValueError(f"an external id is written type:value, got {text!r}")
        return cls(id_type, value)


@dataclass(frozen=True, slots=True)
class ExtractedIds:
    """The ids of one message, per collection, de-duplicated and sorted by (type, value).

    Attributes:
        users: ids of the person who sent the message (collection `users`).
        accounts: ids of accounts named by the message (`group_id` of a group call and
            `context.externalIds` items of collection `accounts`).
    """

    users: tuple[ExternalId, ...] = ()
    accounts: tuple[ExternalId, ...] = ()


def extract_external_ids(message: Mapping[str, Any]) -> ExtractedIds:
    """Read every external id a tracking-spec message carries.

    Sources: `userId` → `user_id`; `anonymousId` → `anonymous_id`; `traits.email`, else
    `context.traits.email` → `email` (a group call's `traits` describe the account, so there
    only `context.traits.email` counts); `context.device.{id, token, advertisingId}` →
    `<ios|android>.{id, push_token, idfa}` by `context.device.type`, the idfa only when
    `context.device.adTrackingEnabled` is `true`; each `context.externalIds[]` item; a group
    call's `groupId` → account `group_id`; an alias call's `previousId` → `anonymous_id`;
    `integrations['Google Analytics'].clientId` and `context.integrations['Google
    Analytics'].clientId` → `ga_client_id`. Keys named by a rule (`properties.phone`) are read
    by `with_configured_ids`, since they depend on the space's rules.

    Values may be strings or numbers (numbers become their decimal text); any other type is
    ignored. Nothing here raises: a malformed part of the message contributes no id.

    Args:
        message: one call in the Segment JSON shape.

    Returns:
        The user and account ids, de-duplicated and sorted by (type, value).
    """
    # Runs once per ingested call: the optional parts are looked at only when present.
    context = _mapping(message.get("context"))
    kind = message.get("type")
    users: list[ExternalId] = []
    _add(users, "user_id", message.get("userId"))
    _add(users, "anonymous_id", message.get("anonymousId"))
    if "traits" in message or "traits" in context:
        _add(users, "email", _email(message, context))
    if "device" in context:
        _add_device_ids(users, _mapping(context["device"]))
    for integrations in (message.get("integrations"), context.get("integrations")):
        if integrations is not None:
            _add(users, "ga_client_id", _mapping(_mapping(integrations).get(_GA_INTEGRATION)).get(_GA_CLIENT_ID))
    if kind == "alias":
        # Segment: previousId "might be an Anonymous ID … or a User ID". Reading it as an
        # anonymous_id gives the useful link (anonymous → known) and, when it really was an old
        # user_id, still never merges two user_ids: no profile holds anonymous_id:<old user id>.
        _add(users, "anonymous_id", message.get("previousId"))
    accounts: list[ExternalId] = []
    if kind == "group":
        _add(accounts, "group_id", message.get("groupId"))
    if "externalIds" in context:
        for collection, external_id in _custom_ids(context["externalIds"]):
            (users if collection == USERS else accounts).append(external_id)
    return ExtractedIds(users=_canonical(users), accounts=_canonical(accounts))


def with_configured_ids(ids: ExtractedIds, message: Mapping[str, Any],
                        sources: Mapping[str, Sequence[str]]) -> ExtractedIds:
    """The ids of a message plus those read from the keys a space's rules name.

    Args:
        ids: what `extract_external_ids` read from the message.
        message: the message.
        sources: per id type, the keys it is read from (`properties.<key>`,
            `context.traits.<key>`; see `IdTypeRule.sources`); always user ids.

    Returns:
        The ids with those found added, de-duplicated and sorted.
    """
    objects = {"properties.": _mapping(message.get("properties")),
               "context.traits.": _mapping(_mapping(message.get("context")).get("traits"))}
    found: list[ExternalId] = []
    for id_type, keys in sources.items():
        for key in keys:
            prefix = "properties." if key.startswith("properties.") else "context.traits."
            _add(found, id_type, objects[prefix].get(key[len(prefix):]))
    if not found:
        return ids
    return ExtractedIds(users=_canonical([*ids.users, *found]), accounts=ids.accounts)


def id_text(raw: object) -> str | None:
    """The text form of an id value, or None when the value cannot be an id.

    Strings are kept as they are, unless UTF-8 cannot write them (a lone surrogate, which a
    JSON `\\ud800` escape can make): those are not text, so not ids. Integers, and floats with
    an integral value, are written without a fraction so that `123` and `123.0` (both JSON for
    the same number) give `"123"`, as JavaScript's `String(n)` does.
    Booleans, NaN, infinities and containers are not ids.

    Args:
        raw: a value from a parsed JSON message.

    Returns:
        The id text, or None.
    """
    if isinstance(raw, str):
        return raw if raw.isascii() or encodable(raw) else None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    return None


def _add(found: list[ExternalId], id_type: str, raw: object) -> None:
    text = raw if type(raw) is str and raw.isascii() else id_text(raw)
    if text is not None:
        found.append(ExternalId(id_type, text))


def _email(message: Mapping[str, Any], context: Mapping[str, Any]) -> object:
    if message.get("type") != "group":
        top = _mapping(message.get("traits")).get("email")
        if id_text(top) is not None:
            return top
    return _mapping(context.get("traits")).get("email")


def _add_device_ids(found: list[ExternalId], device: Mapping[str, Any]) -> None:
    device_type = device.get("type")
    if not isinstance(device_type, str) or device_type.lower() not in _DEVICE_TYPES:
        return
    prefix = device_type.lower()
    _add(found, f"{prefix}.id", device.get("id"))
    _add(found, f"{prefix}.push_token", device.get("token"))
    # A user who opted out of ad tracking must not be identified by the advertising id.
    if device.get("adTrackingEnabled") is True:
        _add(found, f"{prefix}.idfa", device.get("advertisingId"))


def _custom_ids(raw: object) -> Iterable[tuple[str, ExternalId]]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        return
    for item in raw:
        found = _custom_id(_mapping(item))
        if found is not None:
            yield found


def _custom_id(item: Mapping[str, Any]) -> tuple[str, ExternalId] | None:
    id_type, value = item.get("type"), id_text(item.get("id"))
    collection = item.get("collection", USERS)
    encoding = item.get("encoding", "none")
    if not isinstance(id_type, str) or not id_type.strip() or value is None:
        return None
    if len(id_type.strip()) > MAX_ID_TYPE_CHARS or ":" in id_type:
        return None  # a profile is looked up as `type:value`: a type must not hold the colon
    if collection not in COLLECTIONS or not isinstance(encoding, str):
        return None
    if encoding.lower() not in _PLAIN_ENCODINGS:
        return None
    return collection, ExternalId(id_type.strip().lower(), value)


def _canonical(ids: list[ExternalId]) -> tuple[ExternalId, ...]:
    return tuple(ids) if len(ids) < 2 else tuple(sorted(set(ids)))


def _mapping(raw: object) -> Mapping[str, Any]:
    # The exact-type test first: an ABC isinstance check costs more than the rest of a lookup.
    return raw if type(raw) is dict or isinstance(raw, Mapping) else _NOTHING


_NOTHING: Mapping[str, Any] = MappingProxyType({})
