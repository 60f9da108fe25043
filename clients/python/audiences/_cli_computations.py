"""CLI commands for audiences and computed traits, and the evaluator's clock."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import fcntl
import io
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from audiences import _cli_insight
from audiences._admin import Computation, collection_name, status_name
from audiences._base import MAX_DURATION_SECONDS
from audiences._cli_args import moment, whole
from audiences._output import article, emit_json, fields, plural, table, time_text, to_data, value_text
from audiences.client import Client
from audiences.errors import AudiencesError
from audiences.v1 import admin_pb2

Sub = Any
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _definition_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--definition", "-d", help="the definition, in the query language")
    source.add_argument("--file", "-f", help="a file holding the definition ('-' for standard input)")
    parser.add_argument(
        "--collection", "-c", default="users", choices=("users", "accounts"), help="users (default) or accounts"
    )


def _definition(args: argparse.Namespace) -> str | None:
    if args.file == "-":
        return sys.stdin.read()
    if args.file:
        return Path(args.file).read_text(encoding="utf-8")
    text: str | None = args.definition
    return text


def register(commands: Sub) -> None:
    """Adds `audiences …`, `traits …`, `tick` and `clock`."""
    for group, kind in (("audiences", "audience"), ("traits", "computed_trait")):
        noun = "audience" if kind == "audience" else "computed trait"
        parser = commands.add_parser(group, help=f"manage {noun}s")
        verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
        create = verbs.add_parser("create", help=f"create {article(noun)} {noun} (it backfills, then turns LIVE)")
        create.add_argument("key", help="snake_case key, unique per collection")
        _definition_args(create)
        create.add_argument("--name", default="")
        create.add_argument("--description", default="")
        create.add_argument("--include-anonymous-users", action="store_true", default=None)
        create.set_defaults(handler=_create, kind=kind)
        update = verbs.add_parser("update", help=f"change {article(noun)} {noun}'s definition, name or switch")
        update.add_argument("key")
        _definition_args(update, required=False)
        update.add_argument("--name")
        update.add_argument("--description")
        update.add_argument("--enabled", action=argparse.BooleanOptionalAction, default=None)
        update.set_defaults(handler=_update, kind=kind)
        validate = verbs.add_parser("validate", help="check a definition without saving it")
        _definition_args(validate)
        validate.add_argument("--key", default="", help="the key it would have (finds cycles)")
        validate.set_defaults(handler=_validate, kind=kind)
        preview = verbs.add_parser("preview", help="evaluate an unsaved definition now: count and sample")
        _definition_args(preview)
        preview.add_argument("--sample", type=whole("profiles"), default=10, help="profiles to show (default 10)")
        preview.add_argument("--include-anonymous-users", action="store_true")
        preview.set_defaults(handler=_preview, kind=kind)
        listing = verbs.add_parser("list", help=f"list {noun}s with status and size")
        listing.add_argument("--collection", "-c", choices=("users", "accounts"))
        listing.set_defaults(handler=_list, kind=kind)
        for verb, handler, text in (
            ("show", _show, f"one {noun}: status, size, progress"),
            ("delete", _delete, f"delete {article(noun)} {noun}"),
        ):
            sub = verbs.add_parser(verb, help=text)
            sub.add_argument("key")
            sub.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
            if verb == "delete":
                sub.add_argument("--force", action="store_true", help="also remove its connections")
            sub.set_defaults(handler=handler, kind=kind)
        if kind == "audience":
            _member_commands(verbs)
        _cli_insight.definition_commands(verbs, kind)

    tick = commands.add_parser("tick", help="run an evaluator tick now")
    tick.add_argument("--until-idle", action="store_true", help="tick until no work waits")
    tick.set_defaults(handler=_tick)
    clock = commands.add_parser("clock", help="show the evaluator's clock; move a manual clock")
    move = clock.add_mutually_exclusive_group()
    move.add_argument("--set", dest="set_to", type=moment, help="move the clock to this ISO-8601 time")
    move.add_argument("--advance", help="move the clock forward, like 90s, 15m, 2h, 3d, 1w")
    clock.set_defaults(handler=_clock)


def _member_commands(verbs: Sub) -> None:
    members = verbs.add_parser("members", help="list an audience's members, a page at a time")
    members.add_argument("key")
    members.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    members.add_argument("--page-size", type=whole("members"), default=20)
    members.add_argument("--page-token", default="")
    members.add_argument("--traits", default="", help="comma-separated trait keys to show per member")
    members.add_argument("--all", action="store_true", help="every page")
    members.set_defaults(handler=_members)
    export = verbs.add_parser("export", help="write an audience's members as CSV (with --json: JSON rows)")
    export.add_argument("key")
    export.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    export.add_argument("--output", "-o", default="-", help="the CSV file (default: standard output; with --json, "
                        "a list of objects keyed by the CSV's header)")
    export.add_argument("--id-types", default="", help="comma-separated identifier columns")
    export.add_argument("--traits", default="", help="comma-separated trait columns")
    export.set_defaults(handler=_export)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _get(client: Client, kind: str, key: str, collection: str) -> Computation:
    if kind == "audience":
        return client.get_audience(key, collection=collection)
    return client.get_computed_trait(key, collection=collection)


def _progress(item: Computation) -> str:
    done, total = item.backfill.profiles_done, item.backfill.profiles_total
    if not total:
        return ""
    return f"{done}/{total} ({100 * done // total}%)"


def _print_one(item: Computation) -> None:
    fields(
        [
            ("key", item.key),
            ("collection", collection_name(item.collection)),
            ("status", status_name(item.status)),
            ("size", item.size),
            ("backfill", _progress(item)),
            ("last computed", time_text(item.last_compute_time)),
            ("name", item.name),
            ("description", item.description),
            ("definition", item.definition),
            ("failure", f"{item.failure.reason}: {item.failure.message}" if item.HasField("failure") else ""),
        ]
    )


def _create(client: Client, args: argparse.Namespace) -> int:
    create = client.create_audience if args.kind == "audience" else client.create_computed_trait
    item = create(
        args.key,
        _definition(args) or "",
        collection=args.collection,
        name=args.name,
        description=args.description,
        include_anonymous_users=args.include_anonymous_users,
    )
    if args.json:
        emit_json(to_data(item))
    else:
        print(f"created {args.key} ({collection_name(item.collection)}): {status_name(item.status)}")
    return 0


def _update(client: Client, args: argparse.Namespace) -> int:
    update = client.update_audience if args.kind == "audience" else client.update_computed_trait
    item = update(
        args.key,
        collection=args.collection,
        definition=_definition(args),
        name=args.name,
        description=args.description,
        enabled=args.enabled,
    )
    if args.json:
        emit_json(to_data(item))
    else:
        print(f"updated {args.key}: {status_name(item.status)}")
    return 0


def _validate(client: Client, args: argparse.Namespace) -> int:
    reply = client.validate_definition(
        _definition(args) or "", kind=args.kind, collection=args.collection, key=args.key
    )
    if args.json:
        emit_json(to_data(reply))
    elif reply.valid:
        summary = reply.summary
        print("valid")
        fields(
            [
                ("events", ", ".join(summary.event_names)),
                ("traits", ", ".join(summary.traits)),
                ("expressions", summary.primary_expression_count),
            ]
        )
    else:
        error = reply.error
        # A dependency cycle is of the definitions together, at no place in this one's text (line 0).
        where = f" at line {error.line}, column {error.column}" if error.line else ""
        print(f"invalid ({error.reason}){where}: {error.message}")
        if error.caret_display:
            print(error.caret_display)
    return 0 if reply.valid else 1


def _preview(client: Client, args: argparse.Namespace) -> int:
    reply = client.preview_definition(
        _definition(args) or "",
        kind=args.kind,
        collection=args.collection,
        include_anonymous_users=args.include_anonymous_users,
        sample_size=args.sample,
    )
    if args.json:
        emit_json(to_data(reply))
        return 0
    print(f"{plural(reply.count, 'profile')} at {time_text(reply.evaluate_time)}")
    table(
        [(s.profile.profile_id, _ids(s.profile), _sample_text(s)) for s in reply.samples],
        ("profile", "identifiers", "value"),
    )
    return 0


def _sample_text(sample: Any) -> str:
    """A preview sample's value as the server computed it (`3`, not the `3.0` of its
    `google.protobuf.Value`), strings bare; servers before `value_json` give the Value only."""
    if not sample.value_json:
        return value_text(sample.value)
    value = json.loads(sample.value_json)
    return value if isinstance(value, str) else sample.value_json


def _ids(profile: Any) -> str:
    return " ".join(f"{i.type}:{i.value}" for i in profile.external_ids if i.type != "anonymous_id") or " ".join(
        f"{i.type}:{i.value}" for i in profile.external_ids
    )


def _list(client: Client, args: argparse.Namespace) -> int:
    items: list[Computation] = list(
        client.iter_audiences(collection=args.collection)
        if args.kind == "audience"
        else client.iter_computed_traits(collection=args.collection)
    )
    if args.json:
        emit_json([to_data(i) for i in items])
        return 0
    table(
        [
            (
                i.key,
                collection_name(i.collection),
                status_name(i.status),
                i.size,
                _progress(i),
                time_text(i.last_compute_time),
            )
            for i in items
        ],
        ("key", "collection", "status", "size", "backfill", "last computed"),
    )
    return 0


def _show(client: Client, args: argparse.Namespace) -> int:
    item = _get(client, args.kind, args.key, args.collection)
    if args.json:
        emit_json(to_data(item))
    else:
        _print_one(item)
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    delete = client.delete_audience if args.kind == "audience" else client.delete_computed_trait
    delete(args.key, collection=args.collection, force=args.force)
    if not args.json:
        print(f"deleted {args.key}")
    return 0


def _members(client: Client, args: argparse.Namespace) -> int:
    token, traits, rows, data = args.page_token, _split(args.traits), [], []
    while True:
        page = client.list_audience_members(
            args.key, collection=args.collection, include_traits=traits, page_size=args.page_size, page_token=token
        )
        data += [to_data(m) for m in page.members]
        rows += [
            (
                m.profile.profile_id,
                _ids(m.profile),
                time_text(m.enter_time),
                *[value_text(m.traits.fields[t]) if t in m.traits.fields else "" for t in traits],
            )
            for m in page.members
        ]
        token = page.next_page_token
        if not (args.all and token):
            break
    if args.json:
        emit_json({"members": data, "total_size": page.total_size, "next_page_token": token})
        return 0
    table(rows, ("profile", "identifiers", "entered", *traits))
    print(plural(page.total_size, "member") + (f"; next page: --page-token {token}" if token else ""))
    return 0


def _export(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "collection": args.collection,
        "external_id_types": _split(args.id_types),
        "include_traits": _split(args.traits),
    }
    if args.output == "-" and args.json:
        buffer = io.BytesIO()
        client.export_audience_to(args.key, buffer, **options)
        emit_json(list(csv.DictReader(io.StringIO(buffer.getvalue().decode("utf-8-sig"), newline=""))))
        return 0
    if args.output == "-":
        client.export_audience_to(args.key, sys.stdout.buffer, **options)
        sys.stdout.buffer.flush()
        return 0
    written = _exported_to(Path(args.output), lambda out: client.export_audience_to(args.key, out, **options))
    if args.json:
        emit_json({"output": args.output, "bytes": written})
    else:
        print(f"wrote {written} bytes to {args.output}", file=sys.stderr)
    return 0


def _exported_to(target: Path, export: Callable[[BinaryIO], int]) -> int:
    """Runs the export into a new file beside `target`, renamed over it once the export is whole,
    with the mode the file had (a new one's as the umask gives): a failed export (the server down,
    a key mistyped) leaves the file that was there. A path naming the file of this process's
    standard output or error, however spelled (/dev/stdout, a link to it, /dev/fd/1), or /dev/fd/N,
    is written into through that open file as it was opened (`>> log` appends, a pipe is written);
    a symbolic link to a file (or to none yet) has that file replaced (or made) as above; a path
    that is not a file (a named pipe, a device) is written into as it is."""
    descriptor = _open_descriptor(target)
    if descriptor is not None:
        with open(descriptor, "wb", closefd=False) as out:
            return export(out)
    if target.is_symlink():
        try:
            resolved = target.resolve()
        except RuntimeError as looping:  # a loop of links
            raise OSError(f"{target}: {looping}") from None
        if resolved.is_file() or not resolved.exists():
            target = resolved  # the file it names, or will name, replaced or made as above
    if target.is_symlink() or (target.exists() and not target.is_file()):
        with open(target, "wb") as out:
            return export(out)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # a new file, never another's
    try:
        with open(handle, "wb") as out:
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            written = export(out)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def _open_descriptor(target: Path) -> int | None:
    """The descriptor of this process, open for writing, whose file a path names (the same device
    and inode), however the path spells it (/dev/stdout, a link to it, /dev/fd/../fd/1,
    /proc/thread-self/fd/3, a path through a link to /dev/fd); None for any other path.

    Raises:
        OSError: the path is in /proc (/dev/fd/5 with 5 not open): it names no file to write.
    """
    try:
        named = os.stat(target)  # through links
    except OSError:
        if os.path.realpath(target.parent).startswith("/proc/"):
            raise OSError(f"{target}: not an open file of this process") from None
        return None
    for descriptor in sorted(int(name) for name in os.listdir("/proc/self/fd")):
        try:
            opened = os.fstat(descriptor)
            writable = fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
        except OSError:
            continue  # the listing's own descriptor, closed since
        if writable and (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino):
            return descriptor
    return None


def _tick_row(tick: admin_pb2.Tick) -> tuple[Any, ...]:
    return (
        time_text(tick.tick_time),
        tick.profiles_evaluated,
        tick.definitions_evaluated,
        tick.values_changed,
        f"{tick.duration.ToTimedelta().total_seconds() * 1000:.1f} ms",
    )


def _tick(client: Client, args: argparse.Namespace) -> int:
    reply = client.run_tick(until_idle=args.until_idle)
    if args.json:
        emit_json(to_data(reply))
    else:
        table([_tick_row(t) for t in reply.ticks], ("tick time", "profiles", "definitions", "changes", "took"))
    return 0


def parse_duration(text: str) -> dt.timedelta:
    """`90s`, `15m`, `2h`, `3d`, `1w` (or a sum like `1d12h`) as a timedelta."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text.strip().lower()):
        raise ValueError(f"not a duration: {text!r} (use s, m, h, d, w, like 90s or 1d12h)")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds <= MAX_DURATION_SECONDS:  # an infinity from thousands of digits too
        raise ValueError(f"too long a duration: {text!r} (at most 10,000 years)")
    return dt.timedelta(seconds=seconds)


def _clock(client: Client, args: argparse.Namespace) -> int:
    moved = None
    if args.set_to:
        moved = client.set_clock(args.set_to)
    elif args.advance:
        moved = client.set_clock(advance=parse_duration(args.advance))
    try:
        status = client.get_evaluator_status()
    except AudiencesError as error:
        if moved is None or error.code != grpc.StatusCode.UNIMPLEMENTED:
            raise
        # A cluster's front moves the clock but serves no evaluator status: the move is what to say.
        if args.json:
            emit_json(to_data(moved))
        else:
            fields([("previous time", time_text(moved.previous_clock_time)), ("time", time_text(moved.clock_time))])
        return 0
    if args.json:
        emit_json(to_data(status))
        return 0
    fields(
        [
            ("clock", admin_pb2.ClockMode.Name(status.clock_mode).removeprefix("CLOCK_MODE_").lower()),
            ("time", time_text(status.clock_time)),
            ("last tick", time_text(status.last_tick.tick_time) if status.HasField("last_tick") else "never"),
            ("pending profiles", status.pending_profiles),
            ("next due", time_text(status.next_due_time)),
            ("backfilling", status.backfilling_count),
        ]
    )
    return 0
