"""Destinations as a plug-in point: the registry matches the API, a kind registered alone gets a
first sync and changes through its sink, and the sync code names no kind."""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from audiences import Client, cli
from audiences.v1 import sync_pb2

from audiences_server.engine.destinations import registry
from audiences_server.engine.destinations.base import Context, Destination, Done, Outcome, Sink
from audiences_server.store import inspect
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow
from tests.evaluator.conftest import Space
from tests.sync.conftest import SECRET, wait_for

SRC = Path(__file__).resolve().parents[2] / "src" / "audiences_server"


class _MemorySink:
    """Keeps what it is sent, two deliveries per write."""

    max_in_flight = 2
    max_batch = 2

    def __init__(self, received: list[dict[str, Any]]) -> None:
        self.received = received
        self.lock = threading.Lock()

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        return [list(heads[i:i + 2]) for i in range(0, len(heads), 2)][:writes], None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        with self.lock:
            self.received += [d.record for d in batch]
        done(batch, Outcome(ok=True))

    def close(self) -> None:
        pass


class _Memory(Destination):
    """A kind that exists only in this test."""

    kind = "memory"
    defaults: ClassVar[Mapping[str, Any]] = {"label": ""}

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def build(self, row: DestinationRow, context: Context) -> Sink:
        return _MemorySink(self.received)


def test_every_kind_is_a_config_of_the_api() -> None:
    """The registry's kinds are exactly the configs `Destination.config` offers, by name."""
    oneof = sync_pb2.Destination.DESCRIPTOR.oneofs_by_name["config"]
    assert registry.kinds() == [f.name for f in oneof.fields]


def test_a_kind_registered_alone_gets_first_sync_then_changes(space: Space, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind added to the registry, with no other change anywhere, is stored, queued, sent to its
    sink (the current member, then an exit and an entry) and counted as delivered."""
    memory = _Memory()
    monkeypatch.setitem(registry.KINDS, "memory", memory)
    space.send({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    sync = space.running.server.engine.sync
    created = sync.create_destination(space.space_id, "mem", "", True, "memory", {"label": "x"}, {})
    assert (created.kind, created.config) == ("memory", {"label": "x"})
    try:
        sync.connect(space.space_id, "mem", ("audience", "users", "pro"), {})
        wait_for(lambda: len(memory.received) == 1, what="the first sync")
        space.send({"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
                   {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}})
        space.tick()
        wait_for(lambda: len(memory.received) == 3, what="the changes")
        assert [r["change"] for r in memory.received] == ["entered", "exited", "entered"]
        view = wait_for(lambda: (v := sync.connection(space.space_id, "mem", ("audience", "users", "pro")))
                        .status["delivered"] == 3 and v, what="the deliveries committed")
        assert view.status["pending"] == 0
    finally:
        sync.delete_destination(space.space_id, "mem", force=True)


def test_an_unknown_kind_is_refused(space: Space) -> None:
    """A kind the registry does not have is INVALID_ARGUMENT `DESTINATION_KIND_UNKNOWN`."""
    with pytest.raises(Exception, match="not a kind of destination") as caught:
        space.running.server.engine.sync.create_destination(space.space_id, "x", "", True, "carrier_pigeon", {}, {})
    assert getattr(caught.value, "reason", "") == "DESTINATION_KIND_UNKNOWN"


def test_the_sync_code_names_no_kind() -> None:
    """Outside engine/destinations, the sync code (engine, API, store) has no string naming a kind:
    what differs between kinds is asked of the registry."""
    files = [*sorted((SRC / "engine" / "sync").glob("*.py")), SRC / "api" / "sync.py", SRC / "store" / "sync.py"]
    named = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in registry.KINDS:
                named.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert named == []


def test_the_client_names_a_kind_by_its_config(space: Space) -> None:
    """The Python client creates and updates a destination of any kind from the config named
    after it, in the API's JSON form, and refuses a name that is no kind."""
    with Client(f"127.0.0.1:{space.running.port}", admin_token=space.tokens["admin"],
                credentials_file="/nonexistent") as client:
        created = client.create_destination("hook", webhook={"url": "http://127.0.0.1:9/", "signingSecret": SECRET,
                                                             "maxInFlight": 4})
        assert (created.webhook.max_in_flight, created.webhook.signing_secret_set) == (4, True)
        updated = client.update_destination("hook", webhook={"url": "http://127.0.0.1:9/", "maxInFlight": 2})
        assert (updated.webhook.max_in_flight, updated.webhook.signing_secret_set) == (2, True)
        with pytest.raises(TypeError, match="no kind of destination named carrier_pigeon"):
            client.create_destination("bird", carrier_pigeon={})


def test_every_secret_setting_is_blanked_by_the_database_commands() -> None:
    """Each kind's secret settings are among those `audiences-server db` blanks, so a new kind's
    secret cannot be read back from the file's looks either."""
    secrets = {name for kind in registry.KINDS.values() for name in kind.secrets}
    assert secrets <= set(inspect.SECRET_SETTINGS)


def test_the_cli_creates_any_kind_by_name(space: Space, capsys: pytest.CaptureFixture[str]) -> None:
    """`audiences destinations create KEY --kind KIND --config JSON` creates a destination of any
    kind from its settings in the API's JSON form; a shortcut takes `--config` for the rest."""
    common = ["--address", f"127.0.0.1:{space.running.port}", "--admin-token", space.tokens["admin"],
              "--credentials-file", "/nonexistent", "--json"]
    assert cli.main([*common, "destinations", "create", "hook", "--kind", "webhook", "--config",
                     '{"url": "http://127.0.0.1:9/", "maxInFlight": 3}']) == 0
    assert json.loads(capsys.readouterr().out)["webhook"]["max_in_flight"] == 3
    assert cli.main([*common, "destinations", "create", "old", "--webhook", "http://127.0.0.1:9/", "--config",
                     '{"payloadStyle": "WEBHOOK_PAYLOAD_STYLE_LIST"}']) == 0
    assert json.loads(capsys.readouterr().out)["webhook"]["payload_style"] == "WEBHOOK_PAYLOAD_STYLE_LIST"
