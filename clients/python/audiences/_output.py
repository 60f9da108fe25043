"""How the CLI prints: aligned tables for people, JSON lines for scripts."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO, cast

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_INT64 = frozenset({
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
})
_INT64_WRAPPERS = frozenset({"google.protobuf.Int64Value", "google.protobuf.UInt64Value"})


def to_data(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data, field names as in the proto, enums by name.

    Unlike protobuf's JSON form, 64-bit integers (counts, sizes, ids) are JSON numbers, not
    strings, and a field at its default (a count of 0, an empty string) is there rather than
    left out, so that `.size` of an empty audience reads 0, as the clients return it."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return cast(dict[str, Any], _integers(message.DESCRIPTOR, data))


def _integers(descriptor: Descriptor, data: Any) -> Any:
    """`data`, protobuf's JSON form of a message of `descriptor`, with its 64-bit integers (which
    that form writes as strings) as ints, in nested messages, lists and maps too."""
    if descriptor.full_name in _INT64_WRAPPERS:
        return int(data)
    if descriptor.full_name.startswith("google.protobuf.") or not isinstance(data, dict):
        return data  # Struct, Value, Timestamp, Duration, …: their JSON is as it should be
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            inner = field.message_type.fields_by_name["value"]
            data[field.name] = {key: _field_value(inner, item) for key, item in value.items()}
        elif field.is_repeated:
            data[field.name] = [_field_value(field, item) for item in value]
        else:
            data[field.name] = _field_value(field, value)
    return data


def _field_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64 and isinstance(value, str):
        return int(value)
    if field.message_type is not None:
        return _integers(field.message_type, value)
    return value


def article(word: str) -> str:
    """`a` or `an` before a word (by its first letter, which is right for this CLI's nouns)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def plural(count: int, noun: str) -> str:
    """`1 member`, `2 members`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def value_text(value: struct_pb2.Value | None) -> str:
    """A `google.protobuf.Value` as compact JSON (strings bare)."""
    if value is None:
        return ""
    data = json_format.MessageToDict(value)
    return data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))


def time_text(stamp: timestamp_pb2.Timestamp, set_: bool = True) -> str:
    """A Timestamp as `2027-01-15 08:00:00Z`, or empty when unset."""
    if not set_ or (stamp.seconds == 0 and stamp.nanos == 0):
        return ""
    moment = stamp.ToDatetime(tzinfo=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None) -> None:
    """Prints rows as an aligned table with a header line; `(none)` when there are no rows."""
    stream = out or sys.stdout
    if not rows:
        print("(none)", file=stream)
        return
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=stream)


def fields(pairs: Iterable[tuple[str, Any]], out: TextIO | None = None) -> None:
    """Prints `name: value` lines, names aligned, skipping empty values."""
    shown = [(k, str(v)) for k, v in pairs if v not in (None, "")]
    width = max((len(k) for k, _ in shown), default=0)
    for key, value in shown:
        lines = value.splitlines() or [""]
        print(f"{key + ':':<{width + 1}} {lines[0]}", file=out or sys.stdout)
        for line in lines[1:]:
            print(" " * (width + 2) + line, file=out or sys.stdout)


def emit_json(data: Any, out: TextIO | None = None) -> None:
    """Prints data as one JSON document."""
    print(json.dumps(data, indent=2, sort_keys=False, default=str), file=out or sys.stdout)


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal (or when forced)."""

    def __init__(self, total: int, label: str, enabled: bool | None = None) -> None:
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0

    def advance(self, count: int) -> None:
        """Moves the bar forward by `count` items."""
        self.done += count
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()

    def finish(self) -> None:
        """Ends the bar's line."""
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
