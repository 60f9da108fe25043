"""A front: validates and normalises calls as one node does, appends them, answers after the log's ack.

`Front` is the front as a library (tests, `cluster send`); `LogBridge` turns the server itself
into a front (`audiences-server cluster front`): its ingest paths append instead of storing.

Fronts keep no state of the calls: any number can append to `aud.calls` (a front server also
keeps the definitions given to its admin API in its file: cluster/control.py). Duplicates (a message id seen
before) are found by the identity stage, so a front answers `accepted` for every valid call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from audiences_server.cluster.entries import call_to_json, encode
from audiences_server.cluster.log import CALLS, Log
from audiences_server.core import tracking
from audiences_server.engine.clock import Clock
from audiences_server.engine.computations import Spec, check
from audiences_server.engine.ingest import ACCEPTED, REJECTED, CallResult, Sender
from audiences_server.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable, Unimplemented
from audiences_server.store.sql.plans import AccountPlan, compile_definition


class Front:
    """Appends calls and control entries to the log."""

    def __init__(self, log: Log, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    async def submit(self, space_id: int, raws: Sequence[Any], source_id: str = "",
                     defaults: tracking.BatchDefaults | None = None) -> list[CallResult]:
        """Validates a batch, appends its valid calls as one entry, and returns once the log stored it."""
        at = self._clock.now_ms()
        normalized = [tracking.normalize(raw, at, defaults) for raw in raws]
        valid = [call_to_json(n) for n in normalized if isinstance(n, tracking.Call)]
        if valid:
            await append_calls(self._log, space_id, source_id, at, valid)
        return [CallResult(i, n.message_id, REJECTED, n.reason, n.detail) if isinstance(n, tracking.Rejection)
                else CallResult(i, n.message_id, ACCEPTED) for i, n in enumerate(normalized)]

    async def set_clock(self, at_ms: int) -> int:
        """Moves every shard's manual clock to `at_ms` and has it run a tick, in the calls' order;
        returns the tick's number (its position in `aud.calls`), which a shard records once the
        tick is done (`Shard.tick`).

        Raises:
            FailedPrecondition: CLOCK_NOT_MANUAL, this front runs on the system clock.
            InvalidArgument: CLOCK_BACKWARDS, `at_ms` is before the front's clock (the same time
                again is a tick at that time, as on one node).
        """
        if not self._clock.manual:
            raise FailedPrecondition("the cluster runs on the system clock", reason="CLOCK_NOT_MANUAL")
        if at_ms < self._clock.now_ms():
            raise InvalidArgument("the clock only moves forwards", reason="CLOCK_BACKWARDS",
                                  violations=[FieldViolation("target", "before the current clock time")])
        self._clock.set(at_ms)  # type: ignore[attr-defined]
        return await self._log.append(CALLS, encode({"t": "clock", "at": at_ms}))

    async def define(self, space_id: int, spec: Spec) -> None:
        """Sends a definition to every shard, once checked as one node checks it.

        An account definition is accepted when it compiles to a SQL plan (`ANY`/`ALL` operands
        that compile as user conditions, a top comparing account traits with literals): shards
        combine such definitions from each other's counts (docs/scaling.md, "Account audiences
        across shards"). On the manual clock every clock entry is a barrier and each tick's
        values are one node's; on the system clock shards publish their counts after their own
        ticks and the values are one node's once every shard has ticked and published after the
        calls stop (eventually exact; change times differ from one node's by up to the shards'
        tick intervals plus the log's latency).

        Raises:
            InvalidArgument: the definition does not parse or check.
            Unimplemented: CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED, an account definition the
                SQL plans do not cover (account-level streams, most account computed
                traits): the interpreter would need every linked user's events on one shard.
        """
        refuse_unbuilt(spec)
        await self._log.append(CALLS, define_entry(space_id, spec))


def refuse_unbuilt(spec: Spec) -> None:
    """Refuses what a cluster cannot evaluate yet, once the definition checks as on one node
    (on either clock).

    Raises:
        InvalidArgument: the definition does not parse or check.
        Unimplemented: CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED (see `Front.define`).
    """
    checked = check(spec.definition, spec.kind, spec.collection)
    if spec.collection == "accounts" and not isinstance(compile_definition(checked, None), AccountPlan):
        raise Unimplemented("a cluster evaluates only the account definitions that compile to SQL plans",
                            reason="CLUSTER_ACCOUNTS_INTERPRETED_UNIMPLEMENTED")


def define_entry(space_id: int, spec: Spec, public_id: str = "") -> bytes:
    """The control entry that creates a definition on every shard (with the front's id for it, if any)."""
    entry = {"t": "define", "space": space_id, "spec": dataclasses.asdict(spec)}
    return encode(entry | {"public_id": public_id} if public_id else entry)


async def append_calls(log: Log, space_id: int, source_id: str, at_ms: int, calls: list[dict[str, Any]]) -> int:
    """Appends `calls` entries (normalised calls of one space, received at `at_ms`), as few as the
    log's largest entry allows (a request's calls, normalised, can be twice what was sent: a
    batch of 500 KB went over NATS's 1 MB); returns the last one's position.

    Should the front stop between two of them, the caller, told nothing, sends the request
    again: the calls already appended are stored once (each shard stores a `messageId` once)."""
    head = {"t": "calls", "space": space_id, "source": source_id, "at": at_ms}
    room = log.max_entry_bytes - len(encode({**head, "calls": []}))
    position = 0
    part: list[orjson.Fragment] = []  # calls encoded once, to measure them
    size = 0
    for call in calls:
        text = encode(call)
        if part and size + len(text) + 1 > room:
            position = await log.append(CALLS, encode({**head, "calls": part}))
            part, size = [], 0
        part.append(orjson.Fragment(text))
        size += len(text) + 1
    if part or not calls:
        position = await log.append(CALLS, encode({**head, "calls": part}))
    return position


class LogBridge:
    """Hands the server's accepted calls to the log (`Ingest.elsewhere`): the HTTP and gRPC ingest
    paths validate and normalise as on one node, and answer once the log has stored the calls.

    It is called on the writer's thread, with every request the writer grouped: one append per group.
    """

    def __init__(self, log: Log, loop: asyncio.AbstractEventLoop, clock: Clock, timeout_s: float = 10) -> None:
        self._log = log
        self._loop = loop
        self._clock = clock
        self._timeout_s = timeout_s

    def __call__(self, sender: Sender, calls: list[tracking.Call]) -> None:
        """Appends the calls and waits for the log's acknowledgement.

        Raises:
            Unavailable: LOG_UNAVAILABLE, the log did not acknowledge in time (the caller retries).
        """
        appended = asyncio.run_coroutine_threadsafe(
            append_calls(self._log, sender.space_id, sender.source_id, self._clock.now_ms(),
                         [call_to_json(call) for call in calls]), self._loop)
        try:
            appended.result(self._timeout_s)
        except Exception as failure:
            appended.cancel()
            raise Unavailable(f"the log did not store the calls: {type(failure).__name__}",
                              reason="LOG_UNAVAILABLE") from None
