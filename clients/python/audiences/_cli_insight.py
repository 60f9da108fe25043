"""CLI commands: `explain`, `audit`, `profile history`, and `audiences|traits diff|history|versions|rollback`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from audiences._admin import status_name
from audiences._cli_args import count, moment, whole
from audiences._output import emit_json, table, time_text, to_data
from audiences.client import Client
from audiences.v1 import admin_pb2

Sub = Any
BAR_WIDTH = 40
# The most intervals the server returns in one size series.
MAX_POINTS = 2000
_CHANGE = {admin_pb2.MEMBERSHIP_CHANGE_TYPE_ENTERED: "entered", admin_pb2.MEMBERSHIP_CHANGE_TYPE_EXITED: "exited",
           admin_pb2.MEMBERSHIP_CHANGE_TYPE_CHANGED: "changed"}


def register(commands: Sub) -> None:
    """Adds `explain` and `audit`."""
    explain = commands.add_parser("explain", help="why a profile has its value for an audience or computed trait")
    explain.add_argument("key", help="the audience's or computed trait's key")
    explain.add_argument("profile", help="TYPE:VALUE (user_id:ada, group_id:acme) or prf_…")
    explain.add_argument("--collection", "-c", default=None, choices=("users", "accounts"),
                         help="default: accounts for group_id:…, else users")
    explain.add_argument("--at", type=moment, help="an earlier ISO-8601 time to explain (default: now)")
    explain.add_argument("--max-evidence", type=whole("events"), default=0,
                         help="events listed per stream (default 10)")
    explain.set_defaults(handler=_explain)
    audit = commands.add_parser("audit", help="the admin actions of the space, newest first")
    audit.add_argument("--action", default="", help="only this action (create, update, delete, enable, …)")
    audit.add_argument("--target-type", default="", help="only this kind of target (audience, destination, …)")
    audit.add_argument("--target", default="", help="only this target (a key, destination/key, an id type)")
    audit.add_argument("--limit", type=whole("entries", 1, None), default=50,
                       help="the most entries to show (default 50)")
    audit.set_defaults(handler=_audit)


def definition_commands(verbs: Sub, kind: str) -> None:
    """Adds `diff`, `history`, `versions` and `rollback` to `audiences` or `traits`."""
    from audiences._cli_computations import _definition_args

    diff = verbs.add_parser("diff", help="what saving a new definition under KEY would change: enter, exit, stay")
    diff.add_argument("key")
    _definition_args(diff)
    diff.add_argument("--sample", type=whole("profiles"), default=5, help="profiles to show per outcome (default 5)")
    diff.set_defaults(handler=_diff, kind=kind)
    history = verbs.add_parser("history", help="size over time, drawn in the terminal (or --changes)")
    history.add_argument("key")
    history.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    history.add_argument("--interval", choices=("hourly", "daily"), default="hourly")
    history.add_argument("--points", type=count("intervals", MAX_POINTS, "the server's limit per series"), default=24,
                         help=f"how many intervals, ending now (default 24, at most {MAX_POINTS:,})")
    history.add_argument("--changes", action="store_true", help="list the entries and exits instead")
    history.add_argument("--limit", type=whole("changes", 1, None), default=50,
                         help="with --changes: the most to show (default 50)")
    history.set_defaults(handler=_history, kind=kind)
    versions = verbs.add_parser("versions", help="the numbered versions of a definition, newest first")
    versions.add_argument("key")
    versions.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    versions.set_defaults(handler=_versions, kind=kind)
    rollback = verbs.add_parser("rollback", help="update a definition to an older version's text and options")
    rollback.add_argument("key")
    rollback.add_argument("version", type=int)  # 0, -1, past an int32: the client's VERSION_INVALID
    rollback.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    rollback.set_defaults(handler=_rollback, kind=kind)


def _collection(args: argparse.Namespace) -> str:
    return args.collection or ("accounts" if args.profile.startswith("group_id:") else "users")


def _ids(profile: Any) -> str:
    known = [f"{i.type}:{i.value}" for i in profile.external_ids if i.type != "anonymous_id"]
    return " ".join(known or [f"{i.type}:{i.value}" for i in profile.external_ids]) or profile.profile_id


# ------------------------------------------------------------------ explain


def _explain(client: Client, args: argparse.Namespace) -> int:
    reply = client.explain_membership(args.key, args.profile, collection=_collection(args), at=args.at,
                                      max_evidence=args.max_evidence)
    if args.json:
        emit_json(to_data(reply))
        return 0
    stored = "" if not reply.evaluation_pending else f" (stored: {_stored(reply)}; the next tick updates it)"
    print(f"{reply.computation.key} for {_ids(reply.profile)} at {time_text(reply.explain_time)}: "
          f"{reply.value_json}{stored}")
    if reply.anonymous_excluded:
        print("not a member: the audience admits only profiles with an identifier other than anonymous_id")
    for line in node_lines(reply.root, 0):
        print(line)
    print(f"next: {reply.next_change.summary}")
    return 0


def _stored(reply: admin_pb2.ExplainMembershipResponse) -> str:
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(reply.stored_value))


def node_lines(node: admin_pb2.ExplainNode, depth: int) -> list[str]:
    """A node and its parts as indented lines: `[value] text`, events and users under them."""
    pad = "  " * depth
    lines = [f"{pad}[{node.value_json}] {node.text}"]
    if node.HasField("trait"):
        lines.append(f"{pad}    trait {node.trait.key}: {node.trait.trait_class.replace('_', ' ')}")
    if node.HasField("stream"):
        lines += _stream_lines(node.stream, pad + "    ")
    if node.users_count:
        lines.append(f"{pad}    {node.users_satisfying_count} of {node.users_count} users satisfy it")
        for user in node.users:
            lines.append(f"{pad}    {'yes' if user.satisfied else 'no '} {_ids(user.profile)}")
            lines += node_lines(user.node, depth + 3)
    for child in node.children:
        lines += node_lines(child, depth + 1)
    return lines


def _stream_lines(stream: admin_pb2.StreamEvidence, pad: str) -> list[str]:
    steps = "".join(f", {s.filter} → {s.remaining_count}" for s in stream.filters)
    lines = [f"{pad}{stream.seen_count} `{stream.event}` events{steps}; {stream.event_count} kept"]
    for event in stream.events:
        read = " ".join(f"{k}={v}" for k, v in sorted(event.read_json.items()))
        value = "" if event.value_json in ("", "null") else f" value={event.value_json}"
        lines.append(f"{pad}  {time_text(event.event_time)}  {event.message_id}{value} {read}".rstrip())
    if stream.event_count > len(stream.events):
        lines.append(f"{pad}  … and {stream.event_count - len(stream.events)} more")
    return lines


# ------------------------------------------------------------------ diff, history, versions


def _diff(client: Client, args: argparse.Namespace) -> int:
    from audiences._cli_computations import _definition

    found = client.diff_definition(args.key, _definition(args) or "", kind=args.kind, collection=args.collection,
                                   sample_size=args.sample)
    if args.json:
        emit_json(to_data(found))
        return 0
    changed = f" ({found.changed_count} with a new value)" if found.changed_count else ""
    print(f"{args.key}: {found.entering_count} would enter, {found.exiting_count} would exit, "
          f"{found.staying_count} would stay{changed}")
    rows = [(outcome, s.profile.profile_id, _ids(s.profile), s.old_value_json or _value(s.old_value),
             s.new_value_json or _value(s.new_value))
            for outcome, samples in (("enter", found.entering_samples), ("exit", found.exiting_samples),
                                     ("stay", found.staying_samples)) for s in samples]
    table(rows, ("outcome", "profile", "identifiers", "now", "after"))
    return 0


def _value(value: Any) -> str:
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(value), separators=(",", ":"))


def _history(client: Client, args: argparse.Namespace) -> int:
    if args.changes:
        return _changes(client, args, key=args.key)
    step = dt.timedelta(hours=1) if args.interval == "hourly" else dt.timedelta(days=1)
    status = client.get_evaluator_status()
    start = status.clock_time.ToDatetime(tzinfo=dt.UTC) - step * (args.points - 1)
    reply = client.get_size_history(args.key, interval=args.interval, collection=args.collection, start_time=start)
    if args.json:
        emit_json(to_data(reply))
        return 0
    print(f"{args.key}: size now {reply.current_size}")
    for line in chart(reply.points):
        print(line)
    return 0


def chart(points: Any) -> list[str]:
    """One line per interval: its start, a bar as long as the size (scaled to the largest), the
    size, and the entries and exits in it."""
    largest = max((p.size for p in points), default=0) or 1
    lines = []
    for point in points:
        bar = "█" * round(BAR_WIDTH * point.size / largest)
        moves = f"  +{point.entered_count} -{point.exited_count}" if point.entered_count or point.exited_count else ""
        lines.append(f"{time_text(point.start_time)[:16]}  {bar:<{BAR_WIDTH}} {point.size}{moves}")
    return lines


def _changes(client: Client, args: argparse.Namespace, *, key: str = "", profile: str = "") -> int:
    collection = args.collection or "users"
    page = client.list_membership_history(key=key, profile_id=profile, collection=collection,
                                          page_size=min(args.limit, 1000))
    if args.json:
        emit_json(to_data(page))
        return 0
    table([(time_text(c.change_time), c.computation.key, _ids(c.profile), _CHANGE.get(c.change_type, "?"),
            c.old_value_json, c.new_value_json) for c in page.changes],
          ("time", "definition", "profile", "change", "before", "after"))
    if page.next_page_token:
        print("(more: raise --limit)")
    return 0


def profile_history(client: Client, args: argparse.Namespace) -> int:
    """`profile history TYPE:VALUE`: the profile's entries, exits and value changes, oldest first."""
    args.collection = _collection(args)
    return _changes(client, args, profile=args.profile)


def _versions(client: Client, args: argparse.Namespace) -> int:
    found = list(client.iter_definition_versions(args.key, collection=args.collection))
    if args.json:
        emit_json([to_data(v) for v in found])
        return 0
    table([(("*" if v.current else "") + str(v.version), time_text(v.create_time), v.actor,
            v.size_after_backfill if v.HasField("size_after_backfill") else "", v.definition) for v in found],
          ("version", "saved", "by", "size after backfill", "definition"))
    return 0


def _rollback(client: Client, args: argparse.Namespace) -> int:
    # The current version before and after says whether the rollback saved a new one: a version
    # with the current text and options changes nothing.
    before = client.get_definition_version(args.key, 0, collection=args.collection).version
    item = client.rollback_definition(args.key, args.version, collection=args.collection)
    if args.json:
        emit_json(to_data(item))
        return 0
    after = client.get_definition_version(args.key, 0, collection=args.collection).version
    status = status_name(item.status)
    if after == before:
        print(f"{args.key} already has version {args.version}'s text and options: nothing changed"
              f" (still version {after}; {status})")
    else:
        print(f"{args.key} rolled back to version {args.version}'s definition: saved as version {after}; {status}")
    return 0


def _audit(client: Client, args: argparse.Namespace) -> int:
    page = client.list_audit_entries(action=args.action, target_type=args.target_type, target=args.target,
                                     page_size=min(args.limit, 1000))
    data = to_data(page)
    for entry in data.get("entries", []):
        if "details" in entry:
            entry["details"] = whole_numbers(entry["details"])
    if args.json:
        emit_json(data)
        return 0
    table([(time_text(e.action_time), e.actor, e.action, e.target_type, e.target,
            json.dumps(entry.get("details", {}), separators=(",", ":")))
           for e, entry in zip(page.entries, data.get("entries", []), strict=True)],
          ("time", "by", "action", "type", "target", "details"))
    return 0


def whole_numbers(data: Any) -> Any:
    """`data` with each float that is a whole number as an int (`{"version": 1}`, not 1.0): an audit
    entry's details are a Struct, which holds every number as a double, and the server writes
    only integers there (versions, counts)."""
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {key: whole_numbers(value) for key, value in data.items()}
    if isinstance(data, list):
        return [whole_numbers(value) for value in data]
    return data
