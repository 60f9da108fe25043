"""The engine: owns the store and the clock, and offers the use cases to the servicers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import structlog

from audiences_server.engine.auth import SCOPES, Auth
from audiences_server.engine.clock import Clock, ManualClock
from audiences_server.engine.ingest import Ingest
from audiences_server.settings import Settings
from audiences_server.store.db import Readers
from audiences_server.store.migrations import prepare
from audiences_server.store.writer import Writer

log = structlog.get_logger(__name__)

DEFAULT_SPACE = "default"


class Engine:
    """Everything behind the gRPC services, for one database file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock: Clock = ManualClock() if settings.manual_clock else Clock()
        prepare(settings.db, settings.synchronous, self.clock.now_ms())
        self.writer = Writer(settings.db, synchronous=settings.synchronous)
        self.readers = Readers(settings.db, settings.synchronous)
        self.auth = Auth(self.writer, self.readers)
        self.ingest = Ingest(self.writer, self.clock)

    def bootstrap(self) -> Path | None:
        """On an empty database, creates space `default` with one token per scope.

        The tokens go to a file only its owner can read, next to the database, so that a
        newcomer can use the CLI at once. Returns that file's path, or None when the
        database already had a space.
        """
        if self.auth.list_spaces():
            return None
        now = self.clock.now_ms()
        self.auth.create_space(DEFAULT_SPACE, now)
        tokens = {scope: self.auth.create_token(DEFAULT_SPACE, scope, now, "bootstrap").token for scope in SCOPES}
        path = self.settings.credentials_path
        write_private(path, json.dumps({"space": DEFAULT_SPACE, "tokens": tokens}, indent=2) + "\n")
        log.info("credentials_written", path=str(path.resolve()), space=DEFAULT_SPACE)
        return path

    def close(self) -> None:
        """Finishes queued writes and closes every connection."""
        self.writer.close()
        self.readers.close()


def write_private(path: Path, text: str) -> None:
    """Writes a file readable by its owner only (mode 0600), created that way from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
