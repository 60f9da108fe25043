"""The Python client: background batching, overflow, retries, typed errors, every service's methods."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import audiences
import grpc
import pytest
from audiences.batching import Batcher, Undelivered
from audiences.config import resolve
from audiences.v1 import admin_pb2, ingest_pb2, tracking_pb2

from tests.client.conftest import T0
from tests.conftest import Running

ISO_T0 = "2027-01-15T08:00:00.000Z"


def _ok(body: bytes) -> ingest_pb2.BatchJsonResponse:
    count = len(json.loads(body)["batch"])
    return ingest_pb2.BatchJsonResponse(accepted_count=count)


# -- batching -------------------------------------------------------------------------------


def test_close_delivers_every_queued_call(server: Running, unique: Callable[[str], str]) -> None:
    """Calls queued with a long flush interval are all sent, in several batches, by `close()`."""
    user = unique("batched")
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens, batch_size=100, flush_interval=30)
    for i in range(1_050):
        client.track(user_id=user, event="Item Seen", properties={"i": i}, timestamp=ISO_T0)
    assert client.close(timeout=30)
    assert client.stats.accepted == 1_050
    assert client.stats.batches >= 11
    stored = server.query("SELECT count(*) FROM events WHERE user_id = ?", (user,))
    assert stored[0][0] == 1_050


def test_flush_interval_sends_without_flush(client: audiences.Client, unique: Callable[[str], str]) -> None:
    """A lone call is sent by the background thread once `flush_interval` passes, with no flush."""
    message_id = client.identify(user_id=unique("lone"), traits={"plan": "pro"})
    deadline = time.monotonic() + 5
    while client.stats.accepted < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.stats.accepted == 1
    assert message_id.startswith("py-")


def test_rejected_calls_reach_on_error_with_the_call(server: Running) -> None:
    """A call the server rejects is reported to `on_error` with its reason and the call itself."""
    seen: list[Undelivered] = []
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens, on_error=seen.append)
    client.enqueue({"type": "track", "userId": "x", "event": 42})
    client.close()
    assert [(u.reason, u.message["event"]) for u in seen] == [("event_not_string", 42)]
    assert client.stats.rejected == 1


def _gated() -> tuple[threading.Event, Callable[[bytes], ingest_pb2.BatchJsonResponse]]:
    gate = threading.Event()

    def send(body: bytes) -> ingest_pb2.BatchJsonResponse:
        gate.wait(10)
        return _ok(body)

    return gate, send


def test_overflow_raise_refuses_with_queue_full() -> None:
    """With `raise`, a call beyond `max_queue_size` fails with QueueFull, an AudiencesError
    RESOURCE_EXHAUSTED / QUEUE_FULL, and is not queued."""
    gate, send = _gated()
    batcher = Batcher(send, batch_size=1, max_queue_size=2, on_overflow="raise", flush_interval=0)
    batcher.put({"n": 0})  # taken by the sender, which waits at the gate
    time.sleep(0.1)
    batcher.put({"n": 1})
    batcher.put({"n": 2})
    with pytest.raises(audiences.QueueFull) as caught:
        batcher.put({"n": 3})
    assert isinstance(caught.value, audiences.AudiencesError)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL")
    gate.set()
    assert batcher.close(timeout=5)
    assert batcher.stats.accepted == 3


def test_overflow_drop_newest_drops_counts_and_reports() -> None:
    """With `drop_newest`, a call beyond the bound is dropped at once, counted in `stats.dropped`
    and reported to `on_error`; the calls already queued are all sent."""
    gate, send = _gated()
    seen: list[Undelivered] = []
    batcher = Batcher(send, batch_size=1, max_queue_size=2, on_overflow="drop_newest", flush_interval=0,
                      on_error=seen.append)
    batcher.put({"n": 0})
    time.sleep(0.1)
    assert batcher.put({"n": 1})
    assert batcher.put({"n": 2})
    assert batcher.put({"n": 3}) is False
    assert [(u.reason, u.message) for u in seen] == [("dropped", {"n": 3})]
    gate.set()
    batcher.close(timeout=5)
    assert (batcher.stats.accepted, batcher.stats.dropped) == (3, 1)


def test_overflow_block_waits_for_room() -> None:
    """With `block`, a call beyond the bound waits until the sender makes room, then is queued."""
    gate, send = _gated()
    batcher = Batcher(send, batch_size=1, max_queue_size=1, on_overflow="block", flush_interval=0)
    batcher.put({"n": 0})
    time.sleep(0.1)
    batcher.put({"n": 1})
    blocked = threading.Thread(target=batcher.put, args=({"n": 2},))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()
    gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    batcher.close(timeout=5)
    assert batcher.stats.accepted == 3


def test_unavailable_is_retried_with_backoff() -> None:
    """A batch that fails with UNAVAILABLE is retried until it goes through; nothing is lost."""
    failures = [2]

    def flaky(body: bytes) -> ingest_pb2.BatchJsonResponse:
        if failures[0]:
            failures[0] -= 1
            raise audiences.AudiencesError(grpc.StatusCode.UNAVAILABLE, "connection refused")
        return _ok(body)

    batcher = Batcher(flaky, backoff=0.01, flush_interval=0)
    batcher.put({"n": 1})
    batcher.close(timeout=5)
    assert (batcher.stats.accepted, batcher.stats.retries, batcher.stats.failed) == (1, 2, 0)


def test_a_refused_batch_is_not_retried_and_is_reported(server: Running) -> None:
    """A batch refused for good (a read token cannot write) is reported once per call with the
    typed error, counted as failed, and not retried."""
    seen: list[Undelivered] = []
    client = audiences.Client(f"127.0.0.1:{server.port}", {"write": server.tokens["read"]}, on_error=seen.append)
    client.track(user_id="someone", event="Anything")
    client.close()
    assert client.stats.failed == 1
    assert client.stats.retries == 0
    assert seen[0].error is not None
    assert seen[0].error.code == grpc.StatusCode.PERMISSION_DENIED
    assert seen[0].reason == "SCOPE_MISSING"


def test_client_side_checks_fail_at_once() -> None:
    """A call the server would refuse outright fails in the caller's thread with the same reason."""
    client = audiences.Client("127.0.0.1:1", "token")
    with pytest.raises(audiences.AudiencesError) as caught:
        client.track(event="No One")
    assert (caught.value.reason, caught.value.violations[0].field) == ("NO_USER_ANON_ID", "user_id")
    with pytest.raises(audiences.AudiencesError, match=r"bytes of JSON"):
        client.track(user_id="u", event="Big", properties={"blob": "x" * 40_000})
    client.close()


# -- typed errors ---------------------------------------------------------------------------


def test_error_carries_code_reason_metadata_and_violations(client: audiences.Client) -> None:
    """A refused call raises AudiencesError with the gRPC code, the ErrorInfo reason and
    metadata, the field violations, and the line and column of a bad definition."""
    with pytest.raises(audiences.AudiencesError) as caught:
        client.create_audience("broken", "event('A').count( >= 1")
    error = caught.value
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_DEFINITION")
    assert (error.line, error.column) == (1, 19)
    assert error.metadata["offending_text"] == ">="
    assert error.violations[0].field == "definition"
    assert "^^" in error.message
    assert error.request_id


def test_error_names_the_missing_scope(server: Running) -> None:
    """A token of the wrong scope gives PERMISSION_DENIED / SCOPE_MISSING naming the scope needed."""
    client = audiences.Client(f"127.0.0.1:{server.port}", server.tokens["write"])
    with pytest.raises(audiences.AudiencesError) as caught:
        client.iter_audiences().__next__()
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.metadata == {"required_scope": "admin", "token_scope": "write"}
    client.close()


def test_unary_ingest_error_has_field_violations(client: audiences.Client) -> None:
    """The unary Track RPC refuses an anonymous call with NO_USER_ANON_ID and a field violation;
    the error survives pickling (for multiprocessing)."""
    with pytest.raises(audiences.AudiencesError) as caught:
        client.send(tracking_pb2.Track(event="Nobody"))
    error = pickle.loads(pickle.dumps(caught.value))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "NO_USER_ANON_ID")
    assert error.violations
    assert error.metadata["code"] == "no_user_anon_id"


def test_unreachable_server_is_unavailable() -> None:
    """A server that cannot be reached raises AudiencesError UNAVAILABLE."""
    client = audiences.Client("127.0.0.1:1", "token", timeout=5)
    with pytest.raises(audiences.AudiencesError) as caught:
        client.get_evaluator_status()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    client.close()


# -- configuration --------------------------------------------------------------------------


def test_tokens_resolve_from_arguments_environment_then_file(tmp_path: Path) -> None:
    """A scope's token comes from its own argument, then `token`, then AUDIENCES_<SCOPE>_TOKEN,
    then AUDIENCES_TOKEN, then the credentials file; the address from the argument, then
    AUDIENCES_ADDRESS, then 127.0.0.1:50051."""
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"space": "default", "tokens": {"write": "fw", "read": "fr", "admin": "fa"}}))
    env = {"AUDIENCES_CREDENTIALS_FILE": str(creds), "AUDIENCES_READ_TOKEN": "er"}
    assert resolve(environ=env).tokens == {"write": "fw", "read": "er", "admin": "fa"}
    assert resolve(admin_token="aa", environ=env).tokens["admin"] == "aa"
    assert resolve(token="one", environ=env).tokens == dict.fromkeys(("write", "read", "admin", "operator"), "one")
    assert resolve(token={"write": "w"}, environ=env).tokens["write"] == "w"
    assert resolve(environ=env).address == "127.0.0.1:50051"
    assert resolve(environ={**env, "AUDIENCES_ADDRESS": "h:1"}).address == "h:1"
    assert resolve(environ={"AUDIENCES_DB": str(tmp_path / "x.db")}).tokens["admin"] == "fa"


def test_missing_token_is_reported_before_calling() -> None:
    """A method whose scope has no token fails with UNAUTHENTICATED / TOKEN_MISSING naming it."""
    client = audiences.Client("127.0.0.1:1", {"write": "w"}, credentials_file="/nonexistent")
    with pytest.raises(audiences.AudiencesError) as caught:
        client.get_metadata("user_id:x")
    assert (caught.value.reason, caught.value.metadata) == ("TOKEN_MISSING", {"required_scope": "read"})
    client.close()


# -- admin, profiles, sync ------------------------------------------------------------------


def test_admin_and_profile_methods_round_trip(client: audiences.Client, unique: Callable[[str], str]) -> None:
    """Definitions are created, validated, previewed, updated and ticked LIVE; the profile
    methods then read the member's traits, events, ids, links, record and memberships."""
    user, key, trait_key, account = unique("ada"), unique("buyers"), unique("spend"), unique("acme")
    client.identify(user_id=user, traits={"email": f"{user}@example.com"}, timestamp=ISO_T0)
    client.group(user_id=user, group_id=account, traits={"name": "Acme"}, timestamp=ISO_T0)
    client.track(user_id=user, event="Order Completed", properties={"revenue": 50}, timestamp=ISO_T0)
    client.flush()
    definition = (f"event('Order Completed').where(property('revenue') > 10).count() >= 1"
                  f" AND trait('email') = '{user}@example.com'")
    assert client.validate_definition(definition).valid
    assert client.preview_definition(definition).count == 1
    client.create_audience(key, definition)
    client.create_computed_trait(trait_key, "event('Order Completed').sum(property('revenue'))")
    client.wait_until_live(timeout=30)
    assert client.get_audience(key).size == 1
    assert [m.profile.profile_id for m in client.iter_audience_members(key)]
    updated = client.update_audience(key, name="Buyers", description="who bought")
    assert (updated.name, updated.definition) == ("Buyers", definition)
    traits = client.get_traits(f"user_id:{user}")
    assert traits[key] is True
    assert traits[trait_key] == 50
    assert isinstance(traits[trait_key], int)  # read from `value_json`: the Value alone says 50.0
    assert traits["email"] == f"{user}@example.com"
    assert [e.event for e in client.iter_events(f"user_id:{user}")] == ["Order Completed"]
    assert {i.type for i in client.list_external_ids(f"user_id:{user}").external_ids} == {"user_id", "email"}
    assert client.list_links(f"group_id:{account}", collection="accounts").links[0].profile.external_ids
    assert client.get_metadata(f"user_id:{user}").profile_id.startswith("prf_")
    assert [m.audience_key for m in client.list_audience_memberships(f"user_id:{user}").memberships] == [key]
    assert client.get_evaluator_status().clock_mode == admin_pb2.CLOCK_MODE_MANUAL
    client.delete_audience(key)
    client.delete_computed_trait(trait_key)
    with pytest.raises(audiences.AudiencesError) as caught:
        client.get_audience(key)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_identity_rule_methods(client: audiences.Client) -> None:
    """Identity rules are read and changed; violations are listed."""
    rules = client.get_identity_rules()
    assert {r.id_type for r in rules.rules} >= {"user_id", "email"}
    rule = client.update_identity_rule("ios.id", limit=3, limit_period="weekly")
    assert (rule.limit, rule.limit_period) == (3, admin_pb2.IDENTITY_LIMIT_PERIOD_WEEKLY)
    rule = client.update_identity_rule("phone", limit_period="daily", source_keys=["properties.phone"])
    assert (rule.limit_period, list(rule.source_keys)) == (admin_pb2.IDENTITY_LIMIT_PERIOD_DAILY, ["properties.phone"])
    assert client.list_identity_rule_violations().violations is not None


def test_clock_methods_move_a_manual_clock(client: audiences.Client) -> None:
    """set_clock moves a manual clock forward; run_tick reports the tick at the new time."""
    before = client.get_evaluator_status().clock_time.ToMilliseconds()
    moved = client.set_clock(advance=60)
    assert moved.clock_time.ToMilliseconds() == before + 60_000 >= T0
    assert client.run_tick().ticks[0].tick_time.ToMilliseconds() == before + 60_000


def test_ingest_rpcs_typed_batch_and_stream(client: audiences.Client, unique: Callable[[str], str]) -> None:
    """The typed unary, Batch and StreamCalls RPCs are reachable through the client too."""
    user = unique("typed")
    assert client.send(tracking_pb2.Identify(user_id=user)).status == ingest_pb2.MESSAGE_STATUS_ACCEPTED
    reply = client.send_typed_batch([tracking_pb2.TrackingCall(track=tracking_pb2.Track(user_id=user, event="A"))])
    assert reply.accepted_count == 1
    streamed = client.stream_calls({"type": "track", "userId": user, "event": f"E{i}"} for i in range(3))
    assert streamed.accepted_count == 3
    assert client.send_batch([{"type": "page", "userId": user}]).accepted_count == 1


def test_stream_calls_takes_the_chosen_timeout(server: Running, unique: Callable[[str], str]) -> None:
    """A stream is one call: with a timeout chosen for the client, a stream still open past it
    ends DEADLINE_EXCEEDED (it used to get a fixed hour whatever the client's timeout)."""
    user = unique("slow_stream")

    def slowly() -> Iterator[dict[str, Any]]:
        yield {"type": "track", "userId": user, "event": "First"}
        time.sleep(2)
        yield {"type": "track", "userId": user, "event": "Late"}

    with (audiences.Client(f"127.0.0.1:{server.port}", server.tokens, timeout=0.5) as client,
          pytest.raises(audiences.AudiencesError) as raised):
        client.stream_calls(slowly())
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert raised.value.metadata["timeout"] == "0.5"


def test_sync_methods_work_or_say_unimplemented(client: audiences.Client, unique: Callable[[str], str]) -> None:
    """The SyncService methods either work (a grpc_feed destination is created, listed and
    deleted) or, while the server does not implement them yet, raise UNIMPLEMENTED."""
    key = unique("feed")
    status = client.get_evaluator_status()  # proves the server answers at all
    assert status.clock_mode == admin_pb2.CLOCK_MODE_MANUAL
    calls: list[Callable[[], object]] = [
        lambda: client.create_destination(key, grpc_feed={}),
        lambda: list(client.iter_destinations()),
        lambda: client.get_destination(key),
        lambda: client.list_changes(key),
        lambda: list(client.export_audience("x")),
        lambda: next(iter(client.watch_changes(key, heartbeat_interval=1))),
    ]
    outcomes = []
    for call in calls:
        try:
            call()
            outcomes.append("OK")
        except audiences.AudiencesError as error:
            outcomes.append(error.code.name)
    if outcomes[0] == "UNIMPLEMENTED":
        assert set(outcomes) == {"UNIMPLEMENTED"}
        return
    assert outcomes[:3] == ["OK", "OK", "OK"]
    client.delete_destination(key, force=True)
