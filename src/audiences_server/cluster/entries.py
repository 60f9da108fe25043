"""The entries the roles write to the log, as JSON, and where a profile lives (docs/scaling.md).

On `aud.calls` (from fronts): `calls` (a batch of normalised calls of one space), `clock` (the
manual clock moved), `define` (a definition created), `update` (a definition's fields changed:
the update's `changes`, as one node's `Computations.update` takes them), `delete` and `sync` (a
destination or connection created, changed or removed: its `op` and the request's fields). On a
partition (from the identity stage, each with its outbox `serial`): `call`, `expect`,
`hand_over`, `merge`, `clock` and `define` (with the partition count), `update`, `delete`, `sync`;
and from shards, `adopt` (a merged profile's rows) and `tallies` (a shard's counts of its users'
results per account: for one tick on the manual clock, numbered by a `sequence` of its source on
the system clock; docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

from audiences_server.core import json_text
from audiences_server.core.tracking import Call


def partition_of(profile_id: int, partitions: int) -> int:
    """The partition that owns a profile: a stable hash of its id, modulo the partition count."""
    return zlib.crc32(str(profile_id).encode()) % partitions


def encode(entry: dict[str, Any]) -> bytes:
    """An entry as the log stores it (integers of any size exactly: a call's properties may hold
    one beyond 64 bits, which orjson alone refused, and the front answered LOG_UNAVAILABLE)."""
    return json_text.dumps(entry)


def decode(data: bytes) -> dict[str, Any]:
    """An entry read from the log (integers of any size exactly, as `encode` wrote them)."""
    entry = json_text.loads(data)
    if not isinstance(entry, dict) or not isinstance(entry.get("t"), str):
        raise ValueError("a log entry must be an object with a type `t`")
    return entry


def read(data: bytes) -> dict[str, Any]:
    """An entry read from the log; one that is not an entry reads as type `unreadable`, which
    every reader logs and skips, so that one bad entry never stops a partition."""
    try:
        return decode(data)
    except ValueError:
        return {"t": "unreadable"}


def call_to_json(call: Call) -> dict[str, Any]:
    """A normalised call, every field kept."""
    return {f.name: getattr(call, f.name) for f in dataclasses.fields(call)}


def call_from_json(fields: dict[str, Any]) -> Call:
    """The normalised call `call_to_json` wrote."""
    return Call(**fields)


def merge_key(survivor: int, merged: int) -> str:
    """Names one merge (a profile is merged away once)."""
    return f"{merged}>{survivor}"
