"""The manual clock: `--clock-start` replays history older than today, and the clock keeps its
time across restarts, a kill -9 included, instead of jumping to the wall clock."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from audiences.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2
from google.protobuf import duration_pb2

from audiences_server.settings import resolve
from audiences_server.testing import ServerProcess
from tests.conftest import Running, bearer, start

START = "2020-03-01T12:00:00Z"
START_MS = 1_583_064_000_000
DAY = 86_400_000


def _clock_ms(admin: admin_pb2_grpc.AudienceAdminServiceStub, token: str) -> int:
    status = admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(), metadata=bearer(token))
    return int(status.clock_time.ToMilliseconds())


def _advance(admin: admin_pb2_grpc.AudienceAdminServiceStub, token: str, ms: int) -> None:
    step = duration_pb2.Duration()
    step.FromMilliseconds(ms)
    admin.SetClock(admin_pb2.SetClockRequest(advance=step), metadata=bearer(token))


def test_clock_start_replays_history_older_than_today(tmp_path: Path) -> None:
    """A server started at 2020-03-01 on a manual clock evaluates events of February 2020 as
    recent, and lets them age out of a window as the clock is moved on."""
    running: Running = start(tmp_path / "audiences.db", manual_clock=True, clock_start=START_MS)
    try:
        admin, token = running.admin, running.tokens["admin"]
        assert _clock_ms(admin, token) == START_MS
        body = json.dumps({"batch": [{"type": "track", "userId": "u1", "event": "Order",
                                      "timestamp": "2020-02-20T12:00:00Z"}]}).encode()
        running.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=running.auth("write"))
        running.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
            key="recent", collection=1, definition="event('Order').within(30 days).count() >= 1")),
            metadata=bearer(token))
        running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=bearer(token))
        assert running.query("SELECT value FROM computed_values") == [("true",)]
        _advance(admin, token, 21 * DAY)
        running.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=bearer(token))
        assert running.query("SELECT value FROM computed_values") == [("false",)]
    finally:
        running.channel.close()
        running.server.stop(grace=1)


def _clock_of_server(db: Path, *flags: str, advance_ms: int = 0, crash: bool = False) -> int:
    """Starts the real server command on `db`, reads its clock (then moves it on by `advance_ms`),
    and stops it gracefully or, with `crash`, with kill -9. Returns the time read."""
    server = ServerProcess(db, *flags)
    channel = grpc.insecure_channel(server.address)
    try:
        admin = admin_pb2_grpc.AudienceAdminServiceStub(channel)
        now = _clock_ms(admin, server.tokens["admin"])
        if advance_ms:
            _advance(admin, server.tokens["admin"], advance_ms)
    finally:
        channel.close()
        if crash:
            server.kill()
        else:
            server.stop()
    return now


def test_manual_clock_keeps_its_time_across_a_restart_and_a_kill(tmp_path: Path) -> None:
    """The time set survives a kill -9 and a graceful restart; `--clock-start` applies only to a
    database whose clock never ran."""
    db = tmp_path / "audiences.db"
    flags = ("--manual-clock", "--clock-start", START)
    assert _clock_of_server(db, *flags, advance_ms=3 * DAY, crash=True) == START_MS
    assert _clock_of_server(db, *flags, advance_ms=DAY) == START_MS + 3 * DAY
    assert _clock_of_server(db, *flags) == START_MS + 4 * DAY
    assert _clock_of_server(db, "--manual-clock") == START_MS + 4 * DAY


def test_clock_start_needs_the_manual_clock(tmp_path: Path) -> None:
    """`--clock-start` without `--manual-clock` is refused at start, saying why."""
    with pytest.raises(ValueError, match="needs --manual-clock"):
        start(tmp_path / "audiences.db", clock_start=START_MS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(START, START_MS), ("2020-03-01T13:00:00+01:00", START_MS), ("2020-03-01T12:00:00.250Z", START_MS + 250),
     ("", None)],
)
def test_clock_start_reads_iso_times_from_flag_or_environment(text: str, expected: int | None) -> None:
    """The setting reads an ISO-8601 time with a zone, from the flag or AUDIENCES_CLOCK_START."""
    assert resolve({"clock_start": text}, {}).clock_start == expected
    assert resolve({}, {"AUDIENCES_CLOCK_START": text}).clock_start == expected


@pytest.mark.parametrize("text", ["2020-03-01T12:00:00", "yesterday", "2020-13-01T00:00:00Z",
                                  "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_clock_start_refuses_times_without_a_zone_or_not_times(text: str) -> None:
    """A time without a zone, not a time, or outside the years 1 to 9999 in UTC (a zone can move
    the last day of 9999 past it: every status read then failed) is refused naming the flag and
    the environment variable."""
    with pytest.raises(ValueError, match="--clock-start / AUDIENCES_CLOCK_START"):
        resolve({"clock_start": text}, {})
