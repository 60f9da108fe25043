"""Shared fixtures: a real server on port 0 over a real SQLite file, reached through real channels."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import grpc
import pytest
from audiences.v1 import admin_pb2_grpc, ingest_pb2_grpc, profiles_pb2_grpc, sync_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import settings

from audiences_server import logs
from audiences_server.server import AudiencesServer, create_server
from audiences_server.settings import Settings

# Property tests draw the same examples on every run (`repeatable`, the default and what `make
# test` runs), so a commit that passed passes again; `make fuzz` (`explore`) draws new ones each
# run, and whatever it finds becomes a plain test.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Servers started in-process log like production (JSON, info and up) to stderr, which pytest
# captures and shows only for failing tests.
logs.configure("json", "info")


@pytest.fixture(autouse=True)
def _logs_as_configured() -> Iterator[None]:
    """Configures logging again after each test: a command run inside a test (`cli.main`)
    configures it onto that test's captured stderr, which pytest closes afterwards."""
    yield
    logs.configure("json", "info")


@dataclass
class Running:
    """A started server and what tests need to talk to it."""

    server: AudiencesServer
    port: int
    db: Path
    tokens: dict[str, str]
    channel: grpc.Channel

    @property
    def http_url(self) -> str:
        """The base URL of the server's HTTP listener."""
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channel)

    @property
    def profiles(self) -> profiles_pb2_grpc.ProfilesServiceStub:
        return profiles_pb2_grpc.ProfilesServiceStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.AudienceAdminServiceStub:
        return admin_pb2_grpc.AudienceAdminServiceStub(self.channel)

    @property
    def sync(self) -> sync_pb2_grpc.SyncServiceStub:
        return sync_pb2_grpc.SyncServiceStub(self.channel)

    def auth(self, scope: str) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the bootstrap token of a scope."""
        return bearer(self.tokens[scope])

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Reads the server's database file directly, as an operator would."""
        conn = apsw.Connection(str(self.db), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata for a token."""
    return (("authorization", f"Bearer {token}"),)


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("no ErrorInfo detail")


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations of a failed call."""
    status = rpc_status.from_call(error)
    out = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


def start(db: Path, **changes: Any) -> Running:
    """Starts a server on a free port over the given database file."""
    changes = {"listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", **changes}
    settings = Settings(db=db, log_format="json", shutdown_grace_s=5, **changes)
    server, port = create_server(settings)
    server.start()
    tokens = json.loads((server.engine.credentials_written or settings.credentials_path).read_text())["tokens"]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return Running(server, port, db, tokens, channel)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """A server over a fresh database in tmp_path."""
    server = start(tmp_path / "audiences.db")
    yield server
    server.channel.close()
    server.server.stop(grace=1)
