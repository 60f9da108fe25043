"""Structured logging: JSON in production, console on a terminal, one line per RPC."""

from __future__ import annotations

import json
import logging
import random
import sys
from typing import Any

import orjson
import structlog


def _dumps(event: dict[str, Any], **options: Any) -> bytes:
    """A log line as JSON bytes; what orjson refuses (integers beyond 64 bits) goes through the stdlib."""
    try:
        return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS, **options)
    except orjson.JSONEncodeError:
        return json.dumps(event, **options).encode()


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Configures structlog for the process.

    Args:
        log_format: `json`, `console`, or `auto` (console when stderr is a terminal).
        level: the lowest level written.
    """
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor
    factory: Any
    stream = getattr(sys.stderr, "buffer", None)
    if use_console:
        renderer, factory = structlog.dev.ConsoleRenderer(), structlog.PrintLoggerFactory(sys.stderr)
    elif stream is None:  # a text-only stderr (embedded, redirected to a StringIO)
        renderer, factory = structlog.processors.JSONRenderer(), structlog.PrintLoggerFactory(sys.stderr)
    else:
        # orjson writes the line as bytes in about half the time of the stdlib encoder, which
        # is paid on every RPC.
        renderer, factory = structlog.processors.JSONRenderer(_dumps), structlog.BytesLoggerFactory(stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=factory,
        # Not cached: a logger cached on first use keeps the configuration of that moment, and
        # the process may configure again (the admin commands, tests).
        cache_logger_on_first_use=False,
    )


# A generator of its own, seeded from the system: code that seeds the module's shared generator
# (tests do, for repeatable data) must not make every request id the same.
_ids = random.Random()  # noqa: S311 (ids for finding log lines, not secrets)


def new_request_id() -> str:
    """32 random hex digits: unique enough to find a call in the logs, with no system call."""
    return f"{_ids.getrandbits(128):032x}"
