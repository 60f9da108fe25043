"""The change feed's values, `stream_calls` refusals, timeouts of exports, option words, closed
clients, and what the CLI prints: counts and audit details as JSON numbers, and `profile
--limit` past one page. Against the shared manual-clock server, or a server that never answers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import audiences
import grpc
import pytest
from audiences._output import to_data
from audiences.v1 import admin_pb2, sync_pb2

from tests.client.conftest import Result
from tests.conftest import Running

Run = Callable[..., Result]
AT = "2027-01-15T07:00:00Z"
BIG = 2**53 + 1  # the first integer a double does not hold
NAN_CALL = {"type": "track", "userId": "nan", "event": "E", "properties": {"x": float("nan")}}


@pytest.fixture
def silent() -> Iterator[str]:
    """The address of a server that takes connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


# -- 1: the change feed keeps integers ---------------------------------------------------------


def test_the_change_feed_keeps_integers(client: audiences.Client, run_cli: Run,
                                        unique: Callable[[str], str]) -> None:
    """A computed trait of 2^53 + 1 and of 120 reaches `change_values`, `audiences --json watch`
    and the `watch` table exactly (it came as 9007199254740992.0 and 120.0 from the `Value`s)."""
    big, small, event = unique("feed_big"), unique("feed_small"), unique("Paid")
    key, dest = unique("revenue"), unique("feed")
    client.send_batch([
        {"type": "track", "userId": big, "event": event, "properties": {"revenue": BIG}, "timestamp": AT},
        {"type": "track", "userId": small, "event": event, "properties": {"revenue": 120}, "timestamp": AT},
    ])
    client.create_computed_trait(key, f"event('{event}').sum(property('revenue'))")
    client.create_destination(dest, grpc_feed={})
    client.connect_destination(dest, key, kind="computed_trait")
    client.wait_until_live(timeout=60)

    def user(record: sync_pb2.ChangeRecord) -> str:
        return next(i.value for i in record.external_ids if i.type == "user_id")

    listed = {user(r): audiences.change_values(r) for r in client.list_changes(dest).changes}
    assert listed == {big: (None, BIG), small: (None, 120)}
    assert isinstance(listed[small][1], int)
    stream = client.watch_changes(dest)
    first = next(item.change for item in stream if item.HasField("change"))
    stream.close()  # type: ignore[attr-defined]
    assert audiences.change_values(first)[1] in (BIG, 120)

    watched = run_cli("--json", "watch", dest, "--limit", "2")
    assert watched.code == 0, watched.err
    lines = [json.loads(line) for line in watched.out.splitlines()]
    assert sorted(line["new_value"] for line in lines) == [120, BIG]
    assert all(type(line["new_value"]) is int and "new_value_json" not in line for line in lines)
    table = run_cli("watch", dest, "--limit", "2").out
    assert f"  {BIG}  cursor=" in table
    assert "  120  cursor=" in table
    assert "120.0" not in table


def test_change_values_reads_the_values_without_json_text() -> None:
    """From a server that sends no JSON text, the `Value`s are read; no value is None."""
    record = sync_pb2.ChangeRecord()
    record.new_value.number_value = 2.5
    assert audiences.change_values(record) == (None, 2.5)
    record.old_value_json = "7"
    assert audiences.change_values(record) == (7, 2.5)


# -- 2: stream_calls raises the client's own refusal -------------------------------------------


def test_stream_calls_refuses_a_call_it_cannot_encode_as_track_does(client: audiences.Client) -> None:
    """A NaN property: InvalidArgument VALUE_NOT_JSON, as track() raises (it was UNKNOWN
    "Exception iterating requests!" with no reason)."""
    good = {"type": "track", "userId": "ok", "event": "E"}
    with pytest.raises(audiences.InvalidArgument) as caught:
        client.stream_calls([good, NAN_CALL])
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_NOT_JSON")
    with pytest.raises(audiences.InvalidArgument) as tracked:
        client.track(user_id="nan", event="E", properties={"x": float("nan")})
    assert tracked.value.reason == caught.value.reason


def test_stream_calls_raises_what_the_callers_iterator_raised(client: audiences.Client) -> None:
    """An exception from the caller's own iterator is raised as it is, not gRPC's UNKNOWN."""

    def calls() -> Iterator[dict[str, Any]]:
        yield {"type": "track", "userId": "ok", "event": "E"}
        raise LookupError("the caller's own failure")

    with pytest.raises(LookupError, match="the caller's own failure"):
        client.stream_calls(calls())


@pytest.mark.parametrize("given", [{}, {"messageId": None}, {"messageId": ""}], ids=["absent", "none", "empty"])
def test_each_call_without_an_id_is_a_call_of_its_own(client: audiences.Client, server: Running,
                                                      given: dict[str, Any]) -> None:
    """A dict without a `messageId` (or with an empty one), sent or queued several times, is
    stored each time under an id of its own, and the caller's dict is left as it was. `enqueue`
    kept an empty id, which the server replaced on every retry of a batch it had already stored
    (a deadline passed while it committed), storing the calls again; `enqueue`, `send_batch` and
    `stream_calls` writing a new id into the caller's dict stored a dict sent twice once."""
    user = f"own-{len(given)}-{given.get('messageId')!r}"
    template = {"type": "track", "userId": user, "event": "E", **given}
    assert client.send_batch([template, template]).accepted_count == 2
    assert client.stream_calls([template, template]).accepted_count == 2

    async def twice() -> list[int]:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens) as aio:
            return [(await aio.send_batch([template])).accepted_count for _ in range(2)]

    assert asyncio.run(twice()) == [1, 1]
    queued = [client.enqueue(template) for _ in range(3)]
    assert all(message_id.startswith("py-") for message_id in queued)
    assert len(set(queued)) == 3
    assert client.flush(10)
    assert template == {"type": "track", "userId": user, "event": "E", **given}
    assert sum(1 for _ in client.iter_events(f"user_id:{user}")) == 9


def test_the_async_stream_calls_refuses_it_too(server: Running) -> None:
    """AsyncClient: InvalidArgument VALUE_NOT_JSON, not asyncio.CancelledError (which is no
    AudiencesError and which asyncio reads as the task being cancelled)."""

    async def body() -> str:
        async with audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens) as client:
            try:
                await client.stream_calls([NAN_CALL])
            except audiences.InvalidArgument as error:
                return error.reason
            return "nothing raised"

    assert asyncio.run(body()) == "VALUE_NOT_JSON"


# -- 4: an export keeps to the timeout ---------------------------------------------------------


class _RecordingSync:
    """A SyncService stub that records the timeout of each ExportAudience."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def ExportAudience(self, request: Any, *, metadata: Any, timeout: float | None,
                       wait_for_ready: bool) -> Iterator[sync_pb2.ExportAudienceResponse]:
        self.timeouts.append(timeout)
        return iter([sync_pb2.ExportAudienceResponse(csv_data=b"profile_id\n")])


@pytest.mark.parametrize(("options", "expected"), [
    ({}, 3600), ({"timeout": 2}, 2), ({"timeout": 7200}, 7200), ({"timeout": None}, None),
])
def test_an_export_takes_the_timeout_the_caller_chose(options: dict[str, Any], expected: float | None) -> None:
    """An export may take an hour under the default timeout; a chosen one applies as it is."""
    client = audiences.Client("127.0.0.1:1", "token", **options)
    recorder = _RecordingSync()
    client.sync_stub = recorder  # type: ignore[assignment]
    assert b"".join(client.export_audience("k")) == b"profile_id\n"
    assert recorder.timeouts == [expected]
    client.close()


def test_cli_export_exits_3_after_the_timeout(run_cli: Run, silent: str) -> None:
    """`audiences export` against a server that never answers exits 3 after --timeout, naming it
    (it waited for ever)."""
    began = time.monotonic()
    result = run_cli("--address", silent, "--token", "token", "--timeout", "1", "audiences", "export", "k")
    assert time.monotonic() - began < 10
    assert result.code == 3
    assert result.err.startswith(f"audiences: no answer from the Audiences server at {silent} within 1 s")


# -- 6: option words ------------------------------------------------------------------------------


def test_an_unknown_interval_is_the_clients_invalid_argument(client: audiences.Client) -> None:
    """`interval="weekly"`: InvalidArgument INTERVAL_INVALID naming the words, as `sort` is (it
    was a bare ValueError, not an AudiencesError)."""
    with pytest.raises(audiences.InvalidArgument) as caught:
        client.get_size_history("k", interval="weekly")
    assert caught.value.reason == "INTERVAL_INVALID"
    assert caught.value.metadata == {"option": "interval", "value": "weekly"}
    assert "hourly, daily" in caught.value.message


# -- 7: --json counts are numbers ---------------------------------------------------------------


def test_json_counts_are_numbers_and_zero_is_there(run_cli: Run, unique: Callable[[str], str]) -> None:
    """`--json audiences show`: `size` is 1 or 0, a number (it was "1", and no key for 0)."""
    user, some, none = unique("counted"), unique("some"), unique("nobody")
    assert run_cli("identify", user, "--traits", json.dumps({"tag": user}), f"--timestamp={AT}").code == 0
    for key, tag in ((some, user), (none, unique("no_such_tag"))):
        assert run_cli("audiences", "create", key, "--definition", f"trait('tag') = '{tag}'").code == 0
    assert run_cli("tick", "--until-idle").code == 0
    sizes = {key: json.loads(run_cli("--json", "audiences", "show", key).out)["size"] for key in (some, none)}
    assert sizes == {some: 1, none: 0}
    assert all(type(size) is int for size in sizes.values())


def test_to_data_writes_64_bit_integers_as_numbers() -> None:
    """Every int64, nested and repeated too, is an int, exact past 2^53; defaults are there."""
    reply = admin_pb2.ListAudiencesResponse(audiences=[admin_pb2.Audience(key="a", size=BIG)])
    data = to_data(reply)
    assert data["audiences"][0]["size"] == BIG
    assert data["next_page_token"] == ""
    assert to_data(admin_pb2.Audience(key="b"))["size"] == 0


# -- 10: profile --limit reads past a page and says when there are more -------------------------


def test_profile_limit_reads_past_one_page_and_says_there_are_more(run_cli: Run, client: audiences.Client,
                                                                    unique: Callable[[str], str]) -> None:
    """`--limit` is the most items shown, read 200 a page (it stopped at 200); when there are
    more, a note says so and how to see them (the table ended at 50 rows without a word)."""
    user = unique("many")
    client.send_batch([{"type": "identify", "userId": user, "traits": {f"t{i:03d}": i for i in range(210)},
                        "timestamp": AT}])
    ref = f"user_id:{user}"
    total = len(client.get_traits(ref))
    assert total >= 210

    def rows(*args: str) -> list[str]:
        result = run_cli("profile", "traits", ref, *args)
        assert result.code == 0, result.err
        return result.out.splitlines()[2:]  # after `profile prf_…` and the header

    shown = rows()
    assert len(shown) == 51
    assert shown[-1] == "(the first 50 items; there are more: raise --limit)"
    shown = rows("--limit", "203")
    assert len(shown) == 204
    assert shown[-1] == "(the first 203 items; there are more: raise --limit)"
    assert len(rows("--limit", str(total + 5))) == total  # everything, no note
    data = json.loads(run_cli("--json", "profile", "traits", ref, "--limit", "203").out)
    assert len(data["traits"]) == 203
    assert data["next_page_token"]
    assert len(json.loads(run_cli("--json", "profile", "traits", ref, "--limit", "300").out)["traits"]) == total


# -- 11: audit details keep integers ------------------------------------------------------------


def test_audit_details_print_integers(run_cli: Run, unique: Callable[[str], str]) -> None:
    """An audience's `create` entry shows {"version":1}, not {"version":1.0}, in the table and JSON."""
    key = unique("audited")
    assert run_cli("audiences", "create", key, "--definition", "trait('plan') = 'x'").code == 0
    table = run_cli("audit", "--target", key).out
    assert '{"version":1}' in table
    assert "1.0" not in table
    entry = json.loads(run_cli("--json", "audit", "--target", key).out)["entries"][0]
    assert entry["details"] == {"version": 1}
    assert type(entry["details"]["version"]) is int
    assert type(entry["entry_id"]) is int


# -- 12: a closed client ----------------------------------------------------------------------------


def test_a_call_after_close_is_client_closed(server: Running) -> None:
    """After close(), a method raises AudiencesError FAILED_PRECONDITION CLIENT_CLOSED (it was a
    bare ValueError from gRPC), as a tracking call does; paged and streamed ones too."""
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens)
    client.close()
    calls: list[Callable[[], Any]] = [
        client.get_evaluator_status,
        lambda: list(client.iter_audiences()),
        lambda: list(client.watch_changes("feed")),
        lambda: client.track(user_id="u", event="E"),
    ]
    for call in calls:
        with pytest.raises(audiences.AudiencesError) as caught:
            call()
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CLIENT_CLOSED")


def test_an_async_call_after_close_is_client_closed(server: Running) -> None:
    """AsyncClient: the same error (it was grpc's UsageError)."""

    async def body() -> list[str]:
        client = audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens)
        await client.close()
        reasons = []
        for call in (client.get_evaluator_status, lambda: client.stream_calls([])):
            try:
                await call()
            except audiences.AudiencesError as error:
                reasons.append(error.reason)
        try:
            [item async for item in client.watch_changes("feed")]
        except audiences.AudiencesError as error:
            reasons.append(error.reason)
        return reasons

    assert asyncio.run(body()) == ["CLIENT_CLOSED"] * 3


def test_close_ends_an_open_watch_saying_why(server: Running, unique: Callable[[str], str]) -> None:
    """A watch_changes stream open when close() is called ends at once with CANCELLED CLIENT_CLOSED."""
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens)
    dest = unique("closing_feed")
    client.create_destination(dest, grpc_feed={})
    ended: list[BaseException] = []
    started = threading.Event()

    def watch() -> None:
        try:
            for _ in client.watch_changes(dest, heartbeat_interval=1):
                started.set()
        except Exception as error:
            ended.append(error)

    thread = threading.Thread(target=watch)
    thread.start()
    assert started.wait(10)
    client.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(ended) == 1
    assert isinstance(ended[0], audiences.AudiencesError)
    assert (ended[0].code, ended[0].reason) == (grpc.StatusCode.CANCELLED, "CLIENT_CLOSED")


def test_close_ends_a_call_in_flight_saying_why() -> None:
    """A unary call waiting on a server that never answers (a socket that listens and nothing
    more), ended by close() from another thread: CANCELLED CLIENT_CLOSED, as AsyncClient says
    (it had no reason: a caller could not tell its own close() from the server cancelling)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = audiences.Client(f"127.0.0.1:{silent.getsockname()[1]}", "aud_admin_x", timeout=30)
        ended: list[BaseException] = []

        def call() -> None:
            try:
                client.get_space()
            except Exception as error:
                ended.append(error)

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(0.5)
        client.close()
        thread.join(10)
    assert len(ended) == 1
    assert isinstance(ended[0], audiences.AudiencesError)
    assert (ended[0].code, ended[0].reason) == (grpc.StatusCode.CANCELLED, "CLIENT_CLOSED")


def test_async_close_ends_an_open_watch_saying_why(server: Running, unique: Callable[[str], str]) -> None:
    """AsyncClient: the same error (it was asyncio.CancelledError); cancelling the task that
    watches is still a cancellation."""
    dest = unique("closing_async_feed")

    async def body() -> tuple[str, str]:
        client = audiences.AsyncClient(f"127.0.0.1:{server.port}", server.tokens)
        await client.create_destination(dest, grpc_feed={})

        async def watch() -> str:
            try:
                async for _ in client.watch_changes(dest, heartbeat_interval=1):
                    pass
            except audiences.AudiencesError as error:
                return f"{error.code.name} {error.reason}"
            return "ended"

        cancelled = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        cancelled.cancel()
        try:
            await cancelled
            by_task = "not cancelled"
        except asyncio.CancelledError:
            by_task = "cancelled"
        watching = asyncio.create_task(watch())
        await asyncio.sleep(1.5)
        await client.close()
        return by_task, await asyncio.wait_for(watching, 10)

    assert asyncio.run(body()) == ("cancelled", "CANCELLED CLIENT_CLOSED")
