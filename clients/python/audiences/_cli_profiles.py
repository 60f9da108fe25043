"""CLI commands that read profiles: `profile traits|events|ids|links|metadata|audiences TYPE:VALUE`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from audiences import _cli_insight
from audiences._cli_args import whole
from audiences._output import emit_json, fields, plural, table, time_text, to_data, value_text
from audiences._profiles import trait_value
from audiences.client import Client
from audiences.v1 import profiles_pb2

Sub = Any
# The most items ProfilesService returns in one page (larger page sizes are read as this).
PAGE_SIZE = 200
# The repeated field of each verb's reply.
_ITEMS = {"traits": "traits", "events": "events", "ids": "external_ids", "links": "links",
          "audiences": "memberships"}


def register(commands: Sub) -> None:
    """Adds `profile …`."""
    parser = commands.add_parser("profile", help="read a profile: traits, events, ids, links, metadata, audiences, "
                                 "history")
    parser.add_argument("what", choices=("traits", "events", "ids", "links", "metadata", "audiences", "history"))
    parser.add_argument("profile", type=_named,
                        help="TYPE:VALUE (user_id:ada, email:ada@example.com, group_id:acme) or prf_…")
    parser.add_argument(
        "--collection",
        "-c",
        default=None,
        choices=("users", "accounts"),
        help="default: accounts for group_id:…, else users",
    )
    parser.add_argument("--limit", type=whole("items", 1, None), default=50,
                        help=f"the most items to show (default 50), read {PAGE_SIZE} a page (the server's most); "
                             "a note says when there are more")
    parser.add_argument("--event", action="append", default=[], help="events: only this name (repeatable)")
    parser.add_argument("--verbose", "-v", action="store_true", help="traits: class, source and time")
    parser.set_defaults(handler=_profile)


def _named(text: str) -> str:
    """A profile argument that names one: an empty one is a usage error here, the same for every
    verb, rather than each RPC's own refusal (`history`'s would ask for a definition it cannot take)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("name a profile: TYPE:VALUE (user_id:ada) or prf_…, not an empty string")
    return text


def _trait_text(trait: profiles_pb2.Trait) -> str:
    """A trait's value for the table: a string bare, anything else compact JSON, integers kept."""
    data = trait_value(trait)
    return data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))


def _traits_data(reply: profiles_pb2.ListTraitsResponse) -> dict[str, Any]:
    """A ListTraits reply for `--json`: each trait's `value` read from `value_json`, integers kept."""
    data = to_data(reply)
    for trait, message in zip(data.get("traits", []), reply.traits, strict=True):
        trait.pop("value_json", None)
        trait["value"] = trait_value(message)
    return data


def _events_data(reply: profiles_pb2.ListEventsResponse) -> dict[str, Any]:
    """A ListEvents reply for `--json`: each event's `properties` and `context` read from their
    JSON text, integers kept (a Struct holds every number as a double)."""
    data = to_data(reply)
    for event, message in zip(data.get("events", []), reply.events, strict=True):
        for name in ("properties", "context"):
            text = getattr(message, f"{name}_json")
            event.pop(f"{name}_json", None)
            if text:
                event[name] = json.loads(text)
    return data


def _ids(profile: Any) -> str:
    return " ".join(f"{i.type}:{i.value}" for i in profile.external_ids)


def _profile(client: Client, args: argparse.Namespace) -> int:
    if args.what == "history":
        return _cli_insight.profile_history(client, args)
    collection = args.collection or ("accounts" if args.profile.startswith("group_id:") else "users")
    common: dict[str, Any] = {"collection": collection}
    if args.what == "metadata":
        return _metadata(client, args, common)
    fetch: dict[str, Any] = {
        "traits": lambda size, token: client.list_traits(args.profile, verbose=args.verbose, page_size=size,
                                                         page_token=token, **common),
        "events": lambda size, token: client.list_events(args.profile, include=args.event, page_size=size,
                                                         page_token=token, **common),
        "ids": lambda size, token: client.list_external_ids(args.profile, page_size=size, page_token=token,
                                                            **common),
        "links": lambda size, token: client.list_links(args.profile, page_size=size, page_token=token, **common),
        "audiences": lambda size, token: client.list_audience_memberships(args.profile, page_size=size,
                                                                          page_token=token, **common),
    }
    replies = _read(fetch[args.what], _ITEMS[args.what], args.limit)
    reply = replies[0]
    more = bool(replies[-1].next_page_token)
    if args.json:
        emit_json(_json_pages(args.what, replies))
        return 0
    if args.what == "traits":
        rows = [
            (
                t.key,
                _trait_text(t),
                *(
                    (
                        profiles_pb2.TraitClass.Name(t.trait_class).removeprefix("TRAIT_CLASS_").lower(),
                        t.source_id,
                        time_text(t.update_time),
                    )
                    if args.verbose
                    else ()
                ),
            )
            for t in _joined(replies, "traits")
        ]
        headers: tuple[str, ...] = ("key", "value", *(("class", "source", "updated") if args.verbose else ()))
    elif args.what == "events":
        rows = [(time_text(e.event_time), e.event, e.properties_json or value_text_of(e.properties))
                for e in _joined(replies, "events")]
        headers = ("time", "event", "properties")
    elif args.what == "ids":
        rows = [(i.type, i.value, time_text(i.create_time)) for i in _joined(replies, "external_ids")]
        headers = ("type", "value", "added")
    elif args.what == "links":
        rows = [(link.profile.profile_id, _ids(link.profile), time_text(link.create_time))
                for link in _joined(replies, "links")]
        headers = ("profile", "identifiers", "linked")
    else:
        rows = [(m.audience_key, m.audience_name, time_text(m.enter_time)) for m in _joined(replies, "memberships")]
        headers = ("audience", "name", "entered")
    print(f"profile {reply.profile_id}")
    table(rows, headers)
    if more:
        print(f"(the first {plural(len(rows), 'item')}; there are more: raise --limit)")
    return 0


def _read(fetch: Any, field: str, limit: int) -> list[Any]:
    """The pages of up to `limit` items, each of at most PAGE_SIZE: the replies, the last one's
    `next_page_token` set when there are more."""
    replies = [fetch(min(limit, PAGE_SIZE), "")]
    count = len(getattr(replies[0], field))
    while replies[-1].next_page_token and count < limit:
        replies.append(fetch(min(limit - count, PAGE_SIZE), replies[-1].next_page_token))
        count += len(getattr(replies[-1], field))
    return replies


def _joined(replies: list[Any], field: str) -> list[Any]:
    """The items of every page, in order."""
    return [item for reply in replies for item in getattr(reply, field)]


def _json_pages(what: str, replies: list[Any]) -> dict[str, Any]:
    """The pages for `--json`: the first reply's fields, the items of every page, and the last
    one's `next_page_token` (non-empty when there are more than were read)."""
    convert = {"traits": _traits_data, "events": _events_data}.get(what, to_data)
    pages = [convert(reply) for reply in replies]
    data = pages[0]
    field = _ITEMS[what]
    data[field] = [item for page in pages for item in page.get(field, [])]
    data["next_page_token"] = replies[-1].next_page_token
    return data


def _metadata(client: Client, args: argparse.Namespace, common: dict[str, Any]) -> int:
    meta = client.get_metadata(args.profile, **common)
    if args.json:
        emit_json(to_data(meta))
    else:
        fields(
            [
                ("profile", meta.profile_id),
                ("created", time_text(meta.create_time)),
                ("updated", time_text(meta.update_time)),
                ("first message", time_text(meta.first_message_time)),
                ("last message", time_text(meta.last_message_time)),
                ("merged", ", ".join(meta.merged_profile_ids)),
            ]
        )
    return 0


def value_text_of(struct: Any) -> str:
    """A Struct as compact JSON."""
    from google.protobuf import struct_pb2

    value = struct_pb2.Value()
    value.struct_value.CopyFrom(struct)
    return value_text(value)
