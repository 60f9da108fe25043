"""The per-RPC log line written directly is the line structlog's JSON configuration writes."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from audiences_server import logs


class _Stderr:
    def __init__(self, raw: io.BytesIO) -> None:
        self.buffer = raw

    def isatty(self) -> bool:
        return False


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    """A binary stderr, installed by `_json` inside the test: pytest sets its own capture again
    between a fixture and the test."""
    out = io.BytesIO()
    try:
        yield out
    finally:
        monkeypatch.undo()
        structlog.contextvars.clear_contextvars()
        logs.configure("json", "info")  # as tests/conftest.py configures


def _json(raw: io.BytesIO, level: str = "info") -> None:
    sys.stderr = _Stderr(raw)  # type: ignore[assignment]  # undone by the fixture's monkeypatch
    logs.configure("json", level)


def _fields() -> dict[str, object]:
    return {"method": "/audiences.v1.IngestService/Track", "code": "OK", "space": None, "duration_ms": 1.25,
            "event": "rpc"}


def test_same_line_as_structlog(raw: io.BytesIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same keys in the same order and the same values (the timestamp apart), context variables included."""
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    _json(raw)
    log = structlog.get_logger("audiences_server.rpc")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="req-1", peer="x")
    fields = _fields()
    log.info(fields.pop("event"), **fields)
    logs.rpc_line(_fields(), log)
    theirs, ours = (json.loads(line) for line in raw.getvalue().splitlines())
    assert list(ours) == list(theirs)
    assert {k: v for k, v in ours.items() if k != "timestamp"} == {k: v for k, v in theirs.items() if k != "timestamp"}
    assert ours["timestamp"].endswith("Z")
    assert ours["request_id"] == "req-1"


def test_captured_logs_and_levels(raw: io.BytesIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test capturing logs sees the line through structlog; a level above info writes nothing."""
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    _json(raw)
    log = structlog.get_logger("audiences_server.rpc")
    with structlog.testing.capture_logs() as captured:
        logs.rpc_line(_fields(), log)
    assert [(e["event"], e["code"]) for e in captured] == [("rpc", "OK")]
    assert raw.getvalue() == b""
    _json(raw, "warning")
    logs.rpc_line(_fields(), log)
    assert raw.getvalue() == b""


def test_a_line_that_cannot_be_written_is_dropped_not_raised(raw: io.BytesIO) -> None:
    """Logging to a closed stderr (closed by whatever started the process) loses the line and
    raises nothing into the thread that logged: the rpc line, structlog's lines, an exception's."""
    _json(raw)
    raw.close()
    logs.rpc_line({"method": "/m", "code": "OK", "event": "rpc"}, structlog.get_logger())
    structlog.get_logger().info("still_running")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger().exception("failed")


@pytest.mark.parametrize("now_ns", [1_764_876_000_000_000_000, 1_764_876_000_000_001_999,
                                    1_764_876_059_123_456_789, 1_764_876_060_999_999_999])
def test_the_timestamp_is_structlogs_iso_utc_form(monkeypatch: pytest.MonkeyPatch, now_ns: int) -> None:
    """Formatted once per second and completed with the microseconds, the stamp is the text of
    `datetime.isoformat` in UTC, as structlog's `TimeStamper(fmt="iso", utc=True)` writes it: no
    fraction at a whole second, the microseconds truncated."""
    from datetime import UTC, datetime

    monkeypatch.setattr(logs.time, "time_ns", lambda: now_ns)
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    expected = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    assert logs._utc_now_iso() == expected.isoformat().replace("+00:00", "Z")
    assert logs._utc_now_iso() == expected.isoformat().replace("+00:00", "Z")  # from the second's text kept
