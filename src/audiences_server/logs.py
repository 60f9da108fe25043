"""Structured logging: JSON in production, console on a terminal, one line per RPC."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO, cast

import orjson
import structlog


def _dumps(event: dict[str, Any], **options: Any) -> bytes:
    """A log line as JSON bytes; what orjson refuses (integers beyond 64 bits) goes through the stdlib."""
    try:
        return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS, **options)
    except orjson.JSONEncodeError:
        return json.dumps(event, **options).encode()


class _Kept:
    """A log stream whose failures are dropped: a line that cannot be written (stderr closed by
    whatever started the process, a full pipe) is lost, as the standard library's handlers lose
    it, instead of raising into the thread that logged (the writer's, the evaluator's), which
    would stop it."""

    __slots__ = ("__weakref__", "_stream")

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._stream.write(data)

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._stream.flush()


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Configures structlog for the process.

    Args:
        log_format: `json`, `console`, or `auto` (console when stderr is a terminal).
        level: the lowest level written.
    """
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor
    factory: Any
    text = _Kept(sys.stderr)
    buffer = getattr(sys.stderr, "buffer", None)
    stream = None if buffer is None else _Kept(buffer)
    if use_console:
        renderer, factory = structlog.dev.ConsoleRenderer(), structlog.PrintLoggerFactory(cast(TextIO, text))
    elif stream is None:  # a text-only stderr (embedded, redirected to a StringIO)
        renderer, factory = structlog.processors.JSONRenderer(), structlog.PrintLoggerFactory(cast(TextIO, text))
    else:
        # orjson writes the line as bytes in about half the time of the stdlib encoder, which
        # is paid on every RPC.
        renderer = structlog.processors.JSONRenderer(_dumps)
        factory = structlog.BytesLoggerFactory(cast(BinaryIO, stream))
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    _direct.clear()
    if not use_console and stream is not None:
        _direct.append(_Direct(tuple(processors), stream, threshold <= logging.INFO))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=factory,
        # Not cached: a logger cached on first use keeps the configuration of that moment, and
        # the process may configure again (the admin commands, tests).
        cache_logger_on_first_use=False,
    )
    _adopt_stdlib(threshold)


class _FromStdlib(logging.Handler):
    """Lines of libraries logging through the standard library (aiohttp's server answering a
    malformed request, say) written as this log's lines, so the log stays one line of JSON per
    record: the message as `event`, the library's logger as `logger`, a traceback as `exception`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log = structlog.get_logger()
            method = {logging.DEBUG: log.debug, logging.INFO: log.info, logging.WARNING: log.warning}.get(
                record.levelno, log.error)
            method(record.getMessage(), logger=record.name, exc_info=record.exc_info or None)
        except Exception:  # a log line never fails its caller
            self.handleError(record)


def _adopt_stdlib(threshold: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _FromStdlib)]:
        root.removeHandler(handler)
    root.addHandler(_FromStdlib())
    # Libraries' info lines are theirs (aiohttp's access log is off; ours is `http`): warnings up.
    root.setLevel(max(threshold, logging.WARNING))


@dataclass(frozen=True)
class _Direct:
    """What the JSON configuration writes to, for `rpc_line` to write its line itself."""

    processors: tuple[structlog.typing.Processor, ...]  # as configured: a test capturing logs changes the list
    stream: _Kept
    info: bool  # whether info lines are written at all


# The JSON configuration in force, when it is one (at most one item).
_direct: list[_Direct] = []
_PREFIX = "structlog_"


def rpc_line(fields: dict[str, Any], fallback: Any) -> None:
    """Writes the info line `rpc` with these fields (an `event` key among them, last).

    Under the JSON configuration this builds the very line structlog's processors would (the
    fields, then the context variables bound for the call, the level and a UTC ISO timestamp)
    and writes it in one call, without a logger built and a processor chain run per line:
    paid on every RPC. Under any other configuration (the console, a test capturing logs) it is
    `fallback.info(event, **fields)`.
    """
    direct = _direct[0] if _direct else None
    if direct is None or tuple(structlog.get_config()["processors"]) != direct.processors:
        event = dict(fields)
        fallback.info(event.pop("event"), **event)
        return
    if not direct.info:
        return
    for var in contextvars.copy_context():
        name = var.name
        if name.startswith(_PREFIX):
            value = var.get()
            if value is not Ellipsis:
                fields.setdefault(name[len(_PREFIX):], value)
    fields["level"] = "info"
    fields["timestamp"] = _utc_now_iso()
    direct.stream.write(_dumps(fields) + b"\n")
    direct.stream.flush()


# The last whole second a line was stamped with, and its text up to the seconds.
_second: list[tuple[int, str]] = [(-1, "")]


def _utc_now_iso() -> str:
    """The time now as structlog's `TimeStamper(fmt="iso", utc=True)` writes it
    (`2026-12-04T18:59:01.123456Z`, no fraction at a whole second), formatting the date and time
    once per second instead of on every line."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    second, text = _second[0]
    if seconds != second:
        text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = (seconds, text)
    micros = nanos // 1000
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


# A generator of its own, seeded from the system: code that seeds the module's shared generator
# (tests do, for repeatable data) must not make every request id the same.
_ids = random.Random()  # noqa: S311 (ids for finding log lines, not secrets)


# A caller's own request id is kept when it looks like one: up to 128 characters of letters,
# digits and `._:-` (a UUID, a trace id, `req-42`). Anything else (a kilobyte of text, spaces,
# control characters that would forge lines in a terminal) is replaced by one of ours.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(given: str | None) -> str:
    """The caller's request id if it is one (see `_REQUEST_ID`), else a new one."""
    return given if given is not None and _REQUEST_ID.fullmatch(given) else new_request_id()


def new_request_id() -> str:
    """32 random hex digits: unique enough to find a call in the logs, with no system call."""
    return f"{_ids.getrandbits(128):032x}"
