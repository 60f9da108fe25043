"""Builders of tracking-spec calls in the tracking API's JSON shape (what `BatchJson` takes).

Each builder checks what the server would refuse outright (no `userId` nor `anonymousId`, a
track call without an event, …) so the caller hears of it at once rather than from a background
thread, and gives the call a `messageId` (so a retry is stored once) and, without a `timestamp`,
an `originalTimestamp` of now: the server corrects it for clock skew with the batch's `sentAt`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from audiences.errors import FieldViolation, InvalidArgument

__all__ = ["alias", "group", "identify", "iso_time", "now_iso", "page", "screen", "track"]

Json = Mapping[str, Any]
Time = dt.datetime | dt.date | str | None


def iso_time(value: dt.datetime | dt.date) -> str:
    """ISO-8601 text of a datetime (a naive one is taken as UTC) or a date."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()


def now_iso() -> str:
    """Now, as ISO-8601 UTC text with milliseconds."""
    return iso_time(dt.datetime.now(dt.UTC))


def _refuse(reason: str, field: str, message: str) -> InvalidArgument:
    """What the server would refuse, refused before queueing: an `InvalidArgument` (so also a
    `ValueError`) with the server's reason in upper case and its code in `metadata["code"]`."""
    error = InvalidArgument(message, reason.upper(), {"code": reason})
    error.violations.append(FieldViolation(field, message))
    return error


def identified(call: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a call with a `messageId`: one without (or with an empty one) gets a new id, the
    caller's dict left as it was (a dict sent several times is that many calls). Sent again, the
    copy keeps its id (the queue's retries), so a call the server stored is not stored twice."""
    return dict(call) if call.get("messageId") else {**call, "messageId": new_message_id()}


def new_message_id() -> str:
    """A new `messageId`, as every call the client makes gets one."""
    return f"py-{uuid.uuid4()}"


def _common(
    kind: str,
    user_id: str | None,
    anonymous_id: str | None,
    context: Json | None,
    timestamp: Time,
    integrations: Json | None,
    message_id: str | None,
    need_identity: bool = True,
) -> dict[str, Any]:
    if need_identity and not user_id and not anonymous_id:
        raise _refuse("no_user_anon_id", "user_id", "a call needs a user_id or an anonymous_id")
    call: dict[str, Any] = {"type": kind, "messageId": message_id or new_message_id()}
    if user_id:
        call["userId"] = str(user_id)
    if anonymous_id:
        call["anonymousId"] = str(anonymous_id)
    if timestamp is None:
        call["originalTimestamp"] = now_iso()
    else:
        call["timestamp"] = timestamp if isinstance(timestamp, str) else iso_time(timestamp)
    if context:
        call["context"] = dict(context)
    if integrations:
        call["integrations"] = dict(integrations)
    return call


def track(
    user_id: str | None = None,
    event: str | None = None,
    properties: Json | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    anonymous_id: str | None = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A track call: `event` done by the user, with its properties."""
    if not event:
        raise _refuse("event_not_defined", "event", "a track call needs an event name")
    call = _common("track", user_id, anonymous_id, context, timestamp, integrations, message_id)
    call["event"] = event
    call["properties"] = dict(properties or {})
    return call


def identify(
    user_id: str | None = None,
    traits: Json | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    anonymous_id: str | None = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An identify call: who the user is, and traits to set (`None` values remove a trait)."""
    call = _common("identify", user_id, anonymous_id, context, timestamp, integrations, message_id)
    call["traits"] = dict(traits or {})
    return call


def group(
    user_id: str | None = None,
    group_id: str | None = None,
    traits: Json | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    anonymous_id: str | None = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A group call: links the user to the account `group_id` and sets the account's traits."""
    if not group_id:
        raise _refuse("group_id_not_defined", "group_id", "a group call needs a group_id")
    call = _common("group", user_id, anonymous_id, context, timestamp, integrations, message_id)
    call["groupId"] = str(group_id)
    call["traits"] = dict(traits or {})
    return call


def alias(
    previous_id: str | None = None,
    user_id: str | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An alias call: `previous_id` (an anonymous or older id) and `user_id` are the same person."""
    if not previous_id:
        raise _refuse("previous_id_not_defined", "previous_id", "an alias call needs a previous_id")
    if not user_id:
        raise _refuse("user_id_not_defined", "user_id", "an alias call needs a user_id")
    call = _common("alias", user_id, None, context, timestamp, integrations, message_id)
    call["previousId"] = str(previous_id)
    return call


def _view(
    kind: str,
    user_id: str | None,
    category: str | None,
    name: str | None,
    properties: Json | None,
    context: Json | None,
    timestamp: Time,
    anonymous_id: str | None,
    integrations: Json | None,
    message_id: str | None,
) -> dict[str, Any]:
    call = _common(kind, user_id, anonymous_id, context, timestamp, integrations, message_id)
    if name:
        call["name"] = name
    if category:
        call["category"] = category
    call["properties"] = dict(properties or {})
    return call


def page(
    user_id: str | None = None,
    category: str | None = None,
    name: str | None = None,
    properties: Json | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    anonymous_id: str | None = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A page call, stored as the event `Page Viewed` (with `page_name`, `page_category`)."""
    return _view(
        "page", user_id, category, name, properties, context, timestamp, anonymous_id, integrations, message_id
    )


def screen(
    user_id: str | None = None,
    category: str | None = None,
    name: str | None = None,
    properties: Json | None = None,
    context: Json | None = None,
    timestamp: Time = None,
    anonymous_id: str | None = None,
    integrations: Json | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A screen call, stored as the event `Screen Viewed` (with `screen_name`, `page_category`)."""
    return _view(
        "screen", user_id, category, name, properties, context, timestamp, anonymous_id, integrations, message_id
    )
