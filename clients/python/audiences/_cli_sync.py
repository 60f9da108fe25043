"""CLI commands for destinations, connections and the change feed (`watch`)."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from google.protobuf import json_format

from audiences._cli_args import json_object, whole
from audiences._output import emit_json, fields, table, time_text, to_data
from audiences._sync import KINDS, change_values, computation_ref
from audiences.client import Client
from audiences.v1 import sync_pb2

Sub = Any


def register(commands: Sub) -> None:
    """Adds `destinations …`, `connections …` and `watch`."""
    parser = commands.add_parser("destinations", help="manage destinations")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="create a destination of one kind")
    create.add_argument("key")
    kind = create.add_mutually_exclusive_group(required=True)
    kind.add_argument("--kind", choices=KINDS, help="the kind, with its settings in --config")
    kind.add_argument("--webhook", metavar="URL", help="shortcut: an HTTP webhook")
    kind.add_argument("--segment", metavar="BASE_URL", help="shortcut: a Segment-compatible endpoint (--write-key)")
    kind.add_argument("--grpc-feed", action="store_true", help="shortcut: a change feed read with `audiences watch`")
    kind.add_argument("--csv", metavar="DIRECTORY", help="shortcut: CSV files on the server's disk")
    create.add_argument("--config", metavar="JSON", type=_settings, default={},
                        help="the kind's settings in the API's JSON form, e.g. '{\"signingSecret\": \"whsec_…\"}'")
    create.add_argument("--write-key", help="the Segment source's write key")
    create.add_argument("--name", default="")
    create.set_defaults(handler=_create_destination)
    listing = verbs.add_parser("list", help="list destinations")
    listing.set_defaults(handler=_list_destinations)
    for verb, handler in (("show", _show_destination), ("delete", _delete_destination)):
        sub = verbs.add_parser(verb, help=f"{verb} a destination")
        sub.add_argument("key")
        if verb == "delete":
            sub.add_argument("--force", action="store_true", help="also remove its connections")
        sub.set_defaults(handler=handler)

    parser = commands.add_parser("connections", help="connect audiences and computed traits to destinations")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, handler, text in (
        ("create", _connect, "connect an audience or trait to a destination"),
        ("show", _show_connection, "one connection and its delivery status"),
        ("delete", _disconnect, "remove a connection"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("destination")
        sub.add_argument("key", help="the audience's or computed trait's key")
        sub.add_argument("--trait", action="store_true", help="the key names a computed trait")
        sub.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
        if verb == "create":
            for send in ("identify", "track", "group"):
                sub.add_argument(f"--{send}", action="store_true", help=f"send {send} calls")
        sub.set_defaults(handler=handler)
    listing = verbs.add_parser("list", help="list connections and their delivery status")
    listing.add_argument("--destination", default="")
    listing.set_defaults(handler=_list_connections)

    watch = commands.add_parser("watch", help="follow a grpc_feed destination's changes (Ctrl-C stops)")
    watch.add_argument("destination")
    watch.add_argument("--cursor", default="", help="start after this cursor (default: the oldest kept)")
    watch.add_argument("--limit", type=whole("changes", 0, None), default=0,
                       help="stop after this many changes (default 0: follow until Ctrl-C)")
    watch.add_argument("--ack", action="store_true",
                       help="acknowledge each change once printed (default: only --cursor is acknowledged, so"
                            " watching does not take changes from the feed's consumer)")
    watch.set_defaults(handler=_watch)


# `--config`: a JSON object (its fields are checked against the kind's settings later).
_settings = json_object("a JSON object of the kind's settings, like '{\"signingSecret\": \"whsec_…\"}'")


def _config_message(kind: str, settings: dict[str, Any]) -> Any:
    """The kind's settings message read from `settings`; a field it does not have, or a value of
    the wrong type or range, is a usage error naming --config (ValueError: exit 2)."""
    message = getattr(sync_pb2.Destination(), kind).__class__()
    try:
        return json_format.ParseDict(settings, message)
    except (json_format.ParseError, TypeError, ValueError) as bad:
        unknown = re.search(r'has no field named "([^"]*)"', str(bad))
        if unknown:
            known = ", ".join(field.json_name for field in message.DESCRIPTOR.fields)
            raise ValueError(f"--config: {kind} settings have no field {unknown[1]!r}; they are {known}") from None
        raise ValueError(f"--config: not {kind} settings: {' '.join(str(bad).split())}") from None


def _create_destination(client: Client, args: argparse.Namespace) -> int:
    settings: dict[str, Any] = dict(args.config)
    if args.webhook:
        kind, settings = "webhook", {"url": args.webhook, **settings}
    elif args.segment:
        kind, settings = "segment", {"baseUrl": args.segment, "writeKey": args.write_key or "", **settings}
    elif args.grpc_feed:
        kind = "grpc_feed"
    elif args.csv:
        kind, settings = "csv", {"directory": args.csv, **settings}
    else:
        kind = args.kind
    config: dict[str, Any] = {kind: _config_message(kind, settings)}
    destination = client.create_destination(args.key, name=args.name, **config)
    if args.json:
        emit_json(to_data(destination))
    else:
        print(f"created destination {destination.key} ({destination.WhichOneof('config')})")
    return 0


def _list_destinations(client: Client, args: argparse.Namespace) -> int:
    items = list(client.iter_destinations())
    if args.json:
        emit_json([to_data(d) for d in items])
    else:
        table(
            [(d.key, d.WhichOneof("config"), d.name, "yes" if d.enabled else "no") for d in items],
            ("key", "kind", "name", "enabled"),
        )
    return 0


def _show_destination(client: Client, args: argparse.Namespace) -> int:
    destination = client.get_destination(args.key)
    if args.json:
        emit_json(to_data(destination))
    else:
        fields(
            [
                ("key", destination.key),
                ("kind", destination.WhichOneof("config")),
                ("name", destination.name),
                ("enabled", destination.enabled),
                ("created", time_text(destination.create_time)),
            ]
        )
    return 0


def _delete_destination(client: Client, args: argparse.Namespace) -> int:
    client.delete_destination(args.key, force=args.force)
    if not args.json:
        print(f"deleted destination {args.key}")
    return 0


def _kind(args: argparse.Namespace) -> str:
    return "computed_trait" if args.trait else "audience"


def _connection_row(c: sync_pb2.Connection) -> tuple[Any, ...]:
    sends = [s for s in ("identify", "track", "group") if getattr(c, f"send_{s}")]
    phase = sync_pb2.ConnectionPhase.Name(c.phase).removeprefix("CONNECTION_PHASE_").lower()
    d = c.delivery
    return (
        c.destination_key,
        c.computation.key,
        ",".join(sends),
        phase,
        d.pending_count,
        d.delivered_count,
        d.dead_letter_count,
        d.last_error,
    )


_CONNECTION_HEADERS = ("destination", "key", "sends", "phase", "pending", "delivered", "dead", "last error")


def _connect(client: Client, args: argparse.Namespace) -> int:
    connection = client.connect_destination(
        args.destination,
        args.key,
        kind=_kind(args),
        collection=args.collection,
        send_identify=args.identify,
        send_track=args.track,
        send_group=args.group,
    )
    if args.json:
        emit_json(to_data(connection))
    else:
        print(f"connected {args.key} to {args.destination}")
    return 0


def _show_connection(client: Client, args: argparse.Namespace) -> int:
    connection = client.get_connection(args.destination, args.key, kind=_kind(args), collection=args.collection)
    if args.json:
        emit_json(to_data(connection))
    else:
        table([_connection_row(connection)], _CONNECTION_HEADERS)
    return 0


def _disconnect(client: Client, args: argparse.Namespace) -> int:
    client.disconnect_destination(args.destination, args.key, kind=_kind(args), collection=args.collection)
    if not args.json:
        print(f"disconnected {args.key} from {args.destination}")
    return 0


def _list_connections(client: Client, args: argparse.Namespace) -> int:
    items = list(
        client._pages(
            lambda token: client.list_connections(destination_key=args.destination, page_size=1000, page_token=token),
            "connections",
        )
    )
    if args.json:
        emit_json([to_data(c) for c in items])
    else:
        table([_connection_row(c) for c in items], _CONNECTION_HEADERS)
    return 0


def _watch(client: Client, args: argparse.Namespace) -> int:
    seen = 0
    for item in client.watch_changes(args.destination, start_cursor=args.cursor):
        if not item.HasField("change"):
            continue
        change = item.change
        if args.json:
            print(json.dumps(_change_data(change)), flush=True)
        else:
            kind = sync_pb2.ChangeType.Name(change.change_type).removeprefix("CHANGE_TYPE_").lower()
            ids = " ".join(f"{i.type}:{i.value}" for i in change.external_ids)
            print(
                f"{time_text(change.change_time)}  {kind:<13} {change.computation.key}  {change.profile_id}  "
                f"{ids}  {_value_shown(change_values(change)[1])}  cursor={change.cursor}",
                flush=True,
            )
        if args.ack:
            client.ack_changes(args.destination, change.cursor)
        seen += 1
        if args.limit and seen >= args.limit:
            break
    return 0


def _change_data(change: sync_pb2.ChangeRecord) -> dict[str, Any]:
    """A change record for `--json`: `old_value` and `new_value` read from their JSON text,
    integers kept (a `Value` holds every number as a double: 120 would be 120.0)."""
    data = to_data(change)
    data.pop("old_value_json", None)
    data.pop("new_value_json", None)
    for name, value in zip(("old_value", "new_value"), change_values(change), strict=True):
        if value is not None or name in data:
            data[name] = value
    return data


def _value_shown(value: Any) -> str:
    """A value for the table: a string bare, anything else compact JSON, integers kept; empty for none."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


__all__ = ["computation_ref", "register"]
