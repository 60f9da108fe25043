"""Random and hostile input on every ingest path, against one real server: typed unary calls,
typed batches, BatchJson bodies, client streams and undecodable request bytes.

Whatever is sent, the server answers OK or a precise error (never INTERNAL or UNKNOWN) within a
deadline, each batch reports one result per call, and afterwards good calls still ingest and
every profile reads back, events and traits, through a client with default settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from audiences.v1 import common_pb2, ingest_pb2, profiles_pb2, tracking_pb2
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Running, start

DEADLINE_S = 30
# What a call may answer: OK, or an error the caller can act on.
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
         grpc.StatusCode.UNAVAILABLE}
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CALL_TYPES = ["track", "identify", "page", "screen", "group", "alias"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server for the whole suite: what one test sends must not harm what the next one reads.
    NORMAL sync: durability is not what this suite is about, and it spares an fsync per call."""
    running = start(Path(tmp_path_factory.mktemp("fuzz")) / "audiences.db", synchronous="NORMAL")
    yield running
    running.channel.close()
    running.server.stop(grace=1)


# -- JSON ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deep:
    """A value nested `levels` arrays (or objects) deep, written as text: too deep for the test's
    own encoder."""

    levels: int
    objects: bool = False

    def text(self) -> str:
        if self.objects:
            return '{"k":' * self.levels + "1" + "}" * self.levels
        return "[" * self.levels + "1" + "]" * self.levels


def to_json(value: Any) -> str:
    """JSON text of a value that may hold `Deep` leaves, NaN and infinities (as Python writes them)."""
    if isinstance(value, Deep):
        return value.text()
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


HOSTILE_TEXT = st.sampled_from([
    "\ud800", "a\udfffb", "\x00", "\u2028\u2029", "null", "-1", "0", "anonymous", "", " ", "ü" * 600,
    "x" * 40_000, "2026-01-01T00:00:00Z", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00",
])
TEXT = st.text(max_size=20) | HOSTILE_TEXT | st.text(alphabet=st.characters(), max_size=5)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
# Nested from harmless to past what any decoder reads, beside ordinary values.
LEVELS = st.sampled_from([28, 29, 30, 31, 32, 33, 34, 48, 60, 100, 255, 256, 900, 1000, 1200]) | \
    st.integers(min_value=0, max_value=1200)
NESTED = st.recursive(JSON_VALUES, lambda inner: st.lists(inner, min_size=1, max_size=2), max_leaves=40) | \
    st.builds(Deep, LEVELS, st.booleans())
VALID_TIMES = st.sampled_from(["2026-03-01T12:00:00Z", "2026-03-01T12:00:00.123+02:00", "2026-03-01T12:00:05"])
TIMES = st.one_of(VALID_TIMES, VALID_TIMES, VALID_TIMES, st.none(), TEXT)
ID_CONTEXT = st.fixed_dictionaries({}, optional={
    "traits": st.fixed_dictionaries({}, optional={"email": st.sampled_from(["e1@x.io", "e2@x.io"]) | TEXT}),
    "externalIds": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["c1", "c2"]) | TEXT,
                                                    "type": st.sampled_from(["crm", "phone"]) | TEXT}), max_size=2),
    "integrations": st.just({"Google Analytics": {"clientId": "GA1.1"}}),
    "device": st.fixed_dictionaries({"type": st.sampled_from(["ios", "android"]), "id": st.sampled_from(["d1", "d2"])}),
})


def usually(draw: st.DrawFn, ordinary: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """An ordinary value nine times in ten, else a hostile one: most calls must get far enough to
    be stored, merged and read back. (Not 0 for hostile: generation leans to the bounds.)"""
    return draw(hostile) if draw(st.integers(0, 9)) == 7 else draw(ordinary)


@st.composite
def json_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A tracking call in JSON, each field likely of the right type, and at times of any other."""
    call: dict[str, Any] = {"type": usually(draw, st.sampled_from(CALL_TYPES), JSON_VALUES)}
    required = {
        "userId": usually(draw, st.sampled_from(["u1", "u2", "u3", None]), TEXT | JSON_VALUES),
        "anonymousId": usually(draw, st.sampled_from(["a1", "a2", "a3"]), TEXT),
        "event": usually(draw, st.sampled_from(["Viewed", "Bought"]), TEXT | JSON_VALUES),
        "groupId": usually(draw, st.sampled_from(["g1", "g2"]), TEXT),
        "previousId": usually(draw, st.sampled_from(["a1", "a4"]), TEXT),
        "properties": usually(draw, st.dictionaries(TEXT, st.one_of(JSON_VALUES, JSON_VALUES, NESTED), max_size=4),
                              NESTED),
        "traits": usually(draw, st.dictionaries(st.sampled_from(["email", "plan", "name"]) | TEXT, JSON_VALUES,
                                                max_size=4), NESTED),
        "context": usually(draw, ID_CONTEXT, st.dictionaries(TEXT, NESTED, min_size=1, max_size=3)),
    }
    call.update({name: value for name, value in required.items() if draw(st.integers(0, 3)) != 2})
    optional = {
        "messageId": st.none() | st.text(max_size=8) | HOSTILE_TEXT | JSON_VALUES,
        "integrations": st.dictionaries(st.just("Google Analytics") | TEXT, JSON_VALUES, max_size=2) | JSON_VALUES,
        "timestamp": TIMES, "originalTimestamp": TIMES, "sentAt": TIMES,
        "custom": NESTED,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=3, unique=True)):
        call[name] = draw(optional[name])
    return call


@st.composite
def batch_bodies(draw: st.DrawFn) -> bytes:
    """A BatchJson body: a batch of calls with batch-level fields, one call, or a broken body."""
    calls = draw(st.lists(json_calls(), min_size=1, max_size=6))
    batch: dict[str, Any] = {"batch": calls}
    for field, ordinary, hostile in (("context", ID_CONTEXT, JSON_VALUES), ("integrations", st.just({}), JSON_VALUES),
                                     ("sentAt", VALID_TIMES, TIMES)):
        if draw(st.integers(0, 3)) == 2:
            batch[field] = usually(draw, ordinary, hostile)
    text = to_json(batch).encode("utf-8", "surrogatepass")
    shape = usually(draw, st.sampled_from(["batch", "batch", "one call"]), st.sampled_from(["cut", "raw", "deep"]))
    if shape == "one call":
        return to_json(calls[0]).encode("utf-8", "surrogatepass")
    if shape == "cut":
        return text[:draw(st.integers(min_value=0, max_value=len(text)))]
    if shape == "raw":
        return draw(st.binary(max_size=200))
    if shape == "deep":
        levels = draw(st.integers(min_value=1, max_value=3000))
        return b"[" * levels + b"]" * levels
    return text


# -- typed calls ---------------------------------------------------------------------------------

PROTO_TEXT = st.text(max_size=12) | st.sampled_from(["", "null", "0", "ü" * 600, "x" * 40_000])
STRUCT_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | PROTO_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PROTO_TEXT, inner, max_size=3),
    max_leaves=8,
)
VALID_SECONDS = st.integers(min_value=-62135596800, max_value=253402300799)
VALID_NANOS = st.integers(min_value=0, max_value=999_999_999)
SECONDS = VALID_SECONDS | st.sampled_from([-62135596801, 253402300800, 2**62, -(2**62)])
NANOS = VALID_NANOS | st.sampled_from([-1, 10**9, 2**31 - 1, -(2**31)])


def fill_struct(target: struct_pb2.Struct, value: Any, depth: int) -> None:
    """Sets a Struct from a dict, wrapped in `depth` more arrays (built in place: copying a deeply
    nested Struct would decode it, which protobuf refuses past its depth limit)."""
    for _ in range(depth):
        value = [value]
    target.update({"v": value})


@dataclass(frozen=True)
class TypedCall:
    """A typed call to build in place (copying a deeply nested Struct would decode it, which
    protobuf refuses past its depth limit): its oneof name and the value of each field set."""

    kind: str
    fields: tuple[tuple[str, Any], ...]

    def fill(self, message: Any) -> None:
        """Sets the fields on an empty Track, Identify, … message."""
        message.SetInParent()
        for name, value in self.fields:
            if isinstance(value, tuple):  # a Timestamp's (seconds, nanos)
                getattr(message, name).seconds, getattr(message, name).nanos = value
            elif isinstance(value, StructValue):
                fill_struct(getattr(message, name), value.value, value.depth)
            else:
                setattr(message, name, value)


@dataclass(frozen=True)
class StructValue:
    """What a Struct field holds: a value wrapped in `depth` arrays."""

    value: Any
    depth: int


@st.composite
def typed_calls(draw: st.DrawFn) -> TypedCall:
    """A typed call, any field set to anything its type allows."""
    kind = draw(st.sampled_from(CALL_TYPES))
    fields = []
    for field in getattr(tracking_pb2, kind.capitalize()).DESCRIPTOR.fields:
        if draw(st.integers(0, 3)) == 2:
            continue
        if field.message_type is None:
            fields.append((field.name, usually(draw, st.sampled_from(["u1", "a1", "g1", "Viewed"]), PROTO_TEXT)))
        elif field.message_type.name == "Struct":
            depth = usually(draw, st.integers(0, 2), st.integers(0, 60))
            fields.append((field.name, StructValue(draw(STRUCT_VALUES), depth)))
        else:  # Timestamp
            stamp = usually(draw, st.tuples(VALID_SECONDS, VALID_NANOS), st.tuples(SECONDS, NANOS))
            fields.append((field.name, stamp))
    return TypedCall(kind, tuple(fields))


def fill_item(draw: st.DrawFn, item: tracking_pb2.TrackingCall) -> None:
    """Fills one empty item of a typed batch or stream: a typed call, JSON bytes, or nothing."""
    form = draw(st.sampled_from(["typed", "json", "raw", "empty"]))
    if form == "typed":
        typed = draw(typed_calls())
        typed.fill(getattr(item, typed.kind))
    elif form == "json":
        item.json = to_json(draw(json_calls())).encode("utf-8", "surrogatepass")
    elif form == "raw":
        item.json = draw(st.binary(max_size=100))


# -- the checks ----------------------------------------------------------------------------------

def answered(call: Callable[[], Any]) -> Any:
    """The reply of a call, or None when it failed with a precise error; fails on anything else."""
    try:
        return call()
    except grpc.RpcError as error:
        failure = error
    assert failure.code() not in NEVER, (failure.code(), failure.details())
    return None


def write(server: Running) -> dict[str, Any]:
    return {"metadata": server.auth("write"), "timeout": DEADLINE_S}


def page_through(server: Running, rpc: Callable[..., Any], request: Any) -> int:
    """Reads every page of a listing with the default client; how many items it held."""
    count, token = 0, ""
    while True:
        request.page_token = token
        reply = rpc(request, metadata=server.auth("read"), timeout=DEADLINE_S)
        count += len(reply.events if hasattr(reply, "events") else reply.traits)
        token = reply.next_page_token
        if not token:
            return count


def everything_still_works(server: Running, tag: str) -> None:
    """Good calls on every path are accepted, and every profile's events and traits read back."""
    good = {"type": "identify", "userId": f"good-{tag}", "traits": {"plan": "pro"}, "messageId": f"good-{tag}-1"}
    reply = server.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps(good).encode()), **write(server))
    assert reply.accepted_count == 1, reply.results
    track = tracking_pb2.Track(user_id=f"good-{tag}", event="Checked", message_id=f"good-{tag}-2")
    assert server.ingest.Track(ingest_pb2.TrackRequest(track=track), **write(server)).status == \
        ingest_pb2.MESSAGE_STATUS_ACCEPTED
    item = tracking_pb2.TrackingCall(track=tracking_pb2.Track(user_id=f"good-{tag}", event="Checked",
                                                              message_id=f"good-{tag}-3"))
    assert server.ingest.Batch(ingest_pb2.BatchRequest(batch=[item]), **write(server)).accepted_count == 1
    profiles = server.query("SELECT public_id, collection FROM profiles WHERE merged_into IS NULL")
    for public_id, collection in profiles:
        ref = common_pb2.ProfileRef(id=public_id, collection=common_pb2.COLLECTION_USERS if collection == "users"
                                    else common_pb2.COLLECTION_ACCOUNTS)
        page_through(server, server.profiles.ListTraits, profiles_pb2.ListTraitsRequest(profile=ref, page_size=200))
        if collection == "users":
            page_through(server, server.profiles.ListEvents, profiles_pb2.ListEventsRequest(profile=ref, page_size=200))
    ref = common_pb2.ProfileRef(id=f"user_id:good-{tag}", collection=common_pb2.COLLECTION_USERS)
    assert page_through(server, server.profiles.ListEvents, profiles_pb2.ListEventsRequest(profile=ref)) == 2


def results_match(reply: Any, calls: int) -> None:
    """A batch reply has one result per call, numbered in order, and counts that add up."""
    assert [r.index for r in reply.results] == list(range(calls))
    assert reply.accepted_count + reply.duplicate_count + reply.rejected_count == calls
    assert all(r.reason for r in reply.results if r.status == ingest_pb2.MESSAGE_STATUS_REJECTED)


# -- the suite -------------------------------------------------------------------------------------

def test_batch_json_bodies_never_fail_the_server(server: Running) -> None:
    """Any BatchJson body (calls of any shape, broken JSON, deep nesting, NaN, lone surrogates)
    gets per-call results or a precise refusal, and leaves every profile readable."""
    @FUZZ
    @given(batch_bodies())
    def one(body: bytes) -> None:
        reply = answered(lambda: server.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), **write(server)))
        if reply is not None:
            results_match(reply, len(reply.results))

    one()
    everything_still_works(server, "json")


def test_typed_unary_calls_never_fail_the_server(server: Running) -> None:
    """Any typed unary call (strings, Structs with NaN or deep nesting, Timestamps out of range) is
    accepted, a duplicate, or a precise refusal, and leaves every profile readable."""
    @FUZZ
    @given(typed_calls())
    def one(typed: TypedCall) -> None:
        name = typed.kind.capitalize()
        request = getattr(ingest_pb2, f"{name}Request")()
        typed.fill(getattr(request, typed.kind))
        answered(lambda: getattr(server.ingest, name)(request, **write(server)))

    one()
    everything_still_works(server, "unary")


def test_typed_batches_never_fail_the_server(server: Running) -> None:
    """Any typed batch (typed items, JSON items, garbage items, empty items, batch-level context)
    gets one result per call or a precise refusal, and leaves every profile readable."""
    @FUZZ
    @given(st.data())
    def one(data: st.DataObject) -> None:
        request = ingest_pb2.BatchRequest()
        for _ in range(data.draw(st.integers(1, 5))):
            fill_item(data.draw, request.batch.add())
        if data.draw(st.booleans()):
            fill_struct(request.context, data.draw(STRUCT_VALUES), 0)
        reply = answered(lambda: server.ingest.Batch(request, **write(server)))
        if reply is not None:
            results_match(reply, len(request.batch))

    one()
    everything_still_works(server, "batch")


def test_streams_never_fail_the_server(server: Running) -> None:
    """Any client stream of items is counted call by call (or refused precisely), and leaves every
    profile readable."""
    @FUZZ
    @given(st.data())
    def one(data: st.DataObject) -> None:
        items = []
        for _ in range(data.draw(st.integers(0, 6))):
            request = ingest_pb2.StreamCallsRequest()
            fill_item(data.draw, request.call)
            items.append(request)

        def requests() -> Iterator[ingest_pb2.StreamCallsRequest]:
            yield from items

        reply = answered(lambda: server.ingest.StreamCalls(requests(), **write(server)))
        if reply is not None:
            assert reply.accepted_count + reply.duplicate_count + reply.rejected_count == len(items)

    one()
    everything_still_works(server, "stream")


INGEST_METHODS = ["Track", "Identify", "Page", "Screen", "Group", "Alias", "Batch", "BatchJson"]


def test_undecodable_request_bytes_never_fail_the_server(server: Running) -> None:
    """Request bytes that are not the method's message (or are, by chance) are refused precisely,
    never INTERNAL, on every unary ingest method."""
    @FUZZ
    @given(st.sampled_from(INGEST_METHODS), st.binary(max_size=300))
    def one(method: str, payload: bytes) -> None:
        call = server.channel.unary_unary(f"/audiences.v1.IngestService/{method}")
        answered(lambda: call(payload, **write(server)))

    one()
    everything_still_works(server, "bytes")


def test_the_test_encoder_writes_what_python_reads() -> None:
    """`to_json` gives text the server's decoder reads back to the same value (NaN aside)."""
    value = {"a": [1, 2.5, None, "x\u2028"], "b": {"c": True}, "d": Deep(3), "e": Deep(2, objects=True)}
    assert json.loads(to_json(value)) == {"a": [1, 2.5, None, "x\u2028"], "b": {"c": True}, "d": [[[1]]],
                                          "e": {"k": {"k": 1}}}
    assert math.isnan(json.loads(to_json({"n": float("nan")}))["n"])
