"""CLI commands that send tracking calls: track, identify, page, screen, group, alias, import."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audiences import messages
from audiences._cli_args import count, json_object, unreadable_json
from audiences._output import Progress, emit_json, plural, table
from audiences.batching import MAX_BATCH_BYTES, MAX_BATCH_CALLS, MAX_MESSAGE_BYTES, json_default
from audiences.client import Client
from audiences.errors import AudiencesError
from audiences.v1 import ingest_pb2

Sub = Any  # argparse's private _SubParsersAction


_object = json_object("a JSON object, like '{\"plan\": \"pro\"}'")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--anonymous-id", help="the anonymousId")
    parser.add_argument("--timestamp", help="when it happened, ISO-8601 (default: now)")
    parser.add_argument("--context", type=_object, help="the context object, as JSON")
    parser.add_argument("--message-id", help="the messageId (default: a new one; repeats are stored once)")


def register(commands: Sub) -> None:
    """Adds the event commands."""
    track = commands.add_parser("track", help="send a track call")
    track.add_argument("user_id", help="the userId ('' with --anonymous-id)")
    track.add_argument("event", help="the event name, like 'Order Completed'")
    track.add_argument("--properties", "-p", type=_object, help="the properties, as JSON")
    _common(track)
    track.set_defaults(
        handler=_send,
        build=lambda a: messages.track(
            a.user_id, a.event, a.properties, a.context, a.timestamp, a.anonymous_id, message_id=a.message_id
        ),
    )

    identify = commands.add_parser("identify", help="send an identify call")
    identify.add_argument("user_id")
    identify.add_argument("--traits", "-t", type=_object, help="the traits, as JSON")
    _common(identify)
    identify.set_defaults(
        handler=_send,
        build=lambda a: messages.identify(
            a.user_id, a.traits, a.context, a.timestamp, a.anonymous_id, message_id=a.message_id
        ),
    )

    for kind, builder in (("page", messages.page), ("screen", messages.screen)):
        view = commands.add_parser(kind, help=f"send a {kind} call (the event '{kind.title()} Viewed')")
        view.add_argument("user_id")
        view.add_argument("name", nargs="?", help=f"the {kind}'s name")
        view.add_argument("--category")
        view.add_argument("--properties", "-p", type=_object)
        _common(view)
        view.set_defaults(
            handler=_send,
            build=lambda a, b=builder: b(
                a.user_id,
                a.category,
                a.name,
                a.properties,
                a.context,
                a.timestamp,
                a.anonymous_id,
                message_id=a.message_id,
            ),
        )

    group = commands.add_parser("group", help="send a group call: link a user to an account")
    group.add_argument("user_id")
    group.add_argument("group_id", help="the account's groupId")
    group.add_argument("--traits", "-t", type=_object, help="the account's traits, as JSON")
    _common(group)
    group.set_defaults(
        handler=_send,
        build=lambda a: messages.group(
            a.user_id, a.group_id, a.traits, a.context, a.timestamp, a.anonymous_id, message_id=a.message_id
        ),
    )

    alias = commands.add_parser("alias", help="send an alias call: previous id and user id are one person")
    alias.add_argument("previous_id")
    alias.add_argument("user_id")
    alias.add_argument("--timestamp")
    alias.add_argument("--context", type=_object)
    alias.add_argument("--message-id")
    alias.set_defaults(
        handler=_send,
        build=lambda a: messages.alias(a.previous_id, a.user_id, a.context, a.timestamp, message_id=a.message_id),
    )

    load = commands.add_parser("import", help="send every call of a file of JSON lines (tracking-API shape)")
    load.add_argument("file", help="an .ndjson file, one call per line ('-' for standard input)")
    load.add_argument(
        "--batch-size",
        type=count("calls", MAX_BATCH_CALLS, "the server's limit per batch"),
        default=500,
        help=f"calls per request, 1 to {MAX_BATCH_CALLS:,}, the server's limit (default 500); a batch is also "
        "cut before the server's 500 KB, and a line that alone is over it is rejected without sending it",
    )
    load.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar (default: on a terminal)",
    )
    load.set_defaults(handler=_import)


def _send(client: Client, args: argparse.Namespace) -> int:
    # A call without --timestamp has this machine's now as its originalTimestamp; the batch's
    # `sentAt` (now, from the same clock) lets the server correct it for this machine's clock
    # skew, as the queued client's batches do. A --timestamp given is taken as it is.
    call = args.build(args)
    reply = client.send_batch([call], sent_at=None if "timestamp" in call else messages.now_iso())
    result = reply.results[0]
    status = ingest_pb2.MessageStatus.Name(result.status).removeprefix("MESSAGE_STATUS_").lower()
    if args.json:
        emit_json({"message_id": result.message_id, "status": status, "reason": result.reason, "detail": result.detail})
    elif result.status == ingest_pb2.MESSAGE_STATUS_REJECTED:
        print(f"rejected ({result.reason}): {result.detail}")
    else:
        print(f"{status} {result.message_id}")
    return 1 if result.status == ingest_pb2.MESSAGE_STATUS_REJECTED else 0


def _lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 (byte {data[bad.start]:#04x})") from None


# Levels of objects and arrays past which a line is rejected without sending it. The server
# stores 32 at most and refuses a deeper call on its own (`nesting_too_deep`), but near a thousand
# levels Python's JSON encoder and decoder stop, here (a traceback) or on the server, which then
# refuses the whole batch as not JSON, dropping the calls sent with it.
MAX_SENT_DEPTH = 500


def _depth(value: Any) -> int:
    """How many levels of objects and arrays a JSON value nests; iterative, so that any depth
    costs no recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep(number: int) -> dict[str, Any]:
    """The rejection of line `number`, nested too deep to send."""
    return {"line": number, "reason": "nesting_too_deep",
            "detail": f"the call nests objects and arrays more than {MAX_SENT_DEPTH} levels deep (not sent)"}


def _chunks(lines: list[str], size: int, rejected: list[dict[str, Any]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Batches of (line number, call), within the server's limits; bad lines go to `rejected`."""
    batch: list[tuple[int, dict[str, Any]]] = []
    weight = 0
    # Of the file up to each line: a line without `messageId` gets one from it, the same each time
    # the same file is imported, so importing it again (after a failure midway) stores no line twice.
    read = hashlib.sha256()
    for number, line in enumerate(lines, 1):
        read.update(line.encode("utf-8", "surrogateescape") + b"\n")
        if not line.strip():
            continue
        try:
            call = json.loads(line)
        except ValueError as bad:
            rejected.append({"line": number, "reason": "bad_request", "detail": unreadable_json(bad)})
            continue
        except RecursionError:  # valid JSON, nested past what Python's decoder reads
            rejected.append(_too_deep(number))
            continue
        if not isinstance(call, dict):
            rejected.append({"line": number, "reason": "bad_request", "detail": "the line is not a JSON object"})
            continue
        if line.count("{") + line.count("[") > MAX_SENT_DEPTH and _depth(call) > MAX_SENT_DEPTH:
            rejected.append(_too_deep(number))
            continue
        if not call.get("messageId"):
            call["messageId"] = f"imp-{read.hexdigest()[:32]}"
        # Its bytes in the request as `send_batch` encodes it (non-ASCII escaped), not the line's length.
        length = len(json.dumps(call, separators=(",", ":"), default=json_default))
        if length > MAX_BATCH_BYTES:  # alone it would make the server refuse the whole batch
            rejected.append({"line": number, "reason": "message_too_large",
                             "detail": f"the call is {length:,} bytes of JSON; a call may have {MAX_MESSAGE_BYTES:,}"
                             " (not sent)"})
            continue
        if batch and (len(batch) >= size or weight + length > MAX_BATCH_BYTES):
            yield batch
            batch, weight = [], 0
        batch.append((number, call))
        weight += length + 1  # and its comma
    if batch:
        yield batch


def _import(client: Client, args: argparse.Namespace) -> int:
    lines = _lines(args.file)
    rejected: list[dict[str, Any]] = []
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    progress = Progress(len(lines), "importing", args.progress)
    for batch in _chunks(lines, args.batch_size, rejected):
        try:
            reply = client.send_batch([call for _, call in batch])
        except AudiencesError:
            print(f"audiences: the import stopped at line {batch[0][0]} (every line before it was sent and"
                  " answered); importing the same file again stores no line twice", file=sys.stderr)
            raise
        counts["accepted"] += reply.accepted_count
        counts["duplicate"] += reply.duplicate_count
        rejected += [
            {"line": batch[r.index][0], "reason": r.reason, "detail": r.detail}
            for r in reply.results
            if r.status == ingest_pb2.MESSAGE_STATUS_REJECTED
        ]
        progress.advance(batch[-1][0] - progress.done)
    progress.advance(progress.total - progress.done)
    progress.finish()
    counts["rejected"] = len(rejected)
    rejected.sort(key=lambda r: int(r["line"]))
    if args.json:
        emit_json({**counts, "rejected_lines": rejected})
    else:
        total = sum(counts.values())
        print(
            f"{plural(total, 'call')}: {counts['accepted']} accepted, {counts['duplicate']} duplicate, "
            f"{counts['rejected']} rejected"
        )
        if rejected:
            table([(r["line"], r["reason"], r["detail"]) for r in rejected[:50]], ("line", "reason", "detail"))
            if len(rejected) > 50:
                print(f"... and {len(rejected) - 50} more (--json lists them all)")
    return 1 if rejected else 0
