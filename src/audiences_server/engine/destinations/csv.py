"""The `csv` kind: a CSV file per connection on the server's disk, rewritten when what it shows may
have changed.

Nothing is queued: on each round of the destination's worker, a connection whose file may be out
of date, and whose file is older than `interval`, gets its file rewritten from one read snapshot
(the columns of ExportAudience), written beside its target, synced and renamed over it, so
readers never see half a file. A file may be out of date when the settings it was written under
(`directory`, `external_id_types`, `include_traits`) changed, or when anything it shows may have
changed since: a change record (of its own computation, or of one of its trait columns) or a
message received (a member's new identifier or trait value). A file that cannot be written (the
disk full, the directory's permissions changed) is the connection's last error, logged once per
distinct error, and tried again after `interval`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import apsw
import structlog

from audiences_server.engine.destinations.base import (
    Context,
    Destination,
    Queue,
    check_id_types,
    check_trait_names,
    invalid,
)
from audiences_server.engine.sync.files import csv_chunks
from audiences_server.store import evaluation, events
from audiences_server.store import sync as store
from audiences_server.store.sync import ConnectionRow, DestinationRow

log = structlog.get_logger(__name__)

# The longest `directory` taken: Linux's PATH_MAX.
MAX_DIRECTORY_CHARS = 4_096


@dataclass(frozen=True)
class _Written:
    """What a connection's file was last written from: the settings that shape it, and how far
    the server's change records and received messages went in its snapshot (`_news`)."""

    settings: tuple[Any, ...]
    news: tuple[int, int]


class Csv(Destination):
    """CSV files on the server's disk."""

    kind = "csv"
    defaults: ClassVar[Mapping[str, Any]] = {"directory": "", "external_id_types": [], "include_traits": [],
                                             "interval_ms": 60_000}
    queue = Queue.NONE
    own_places = "another directory"

    def __init__(self) -> None:
        # Per connection (its destination's public id, its id and creation time), what this
        # process last wrote its file from. Kept in memory only: after a restart each file is
        # written once more, since what it was written from is not known then.
        self._written: dict[tuple[str, int, int], _Written] = {}
        self._lock = threading.Lock()

    def check(self, settings: Mapping[str, Any]) -> None:
        """An absolute path that is a directory, or can be made one (its nearest existing
        ancestor is a directory): anything else could never be written, and would only fail on
        every round. Relative to what the server was started in, a path would move with it."""
        directory = settings["directory"]
        if not directory:
            raise invalid("csv.directory", "`csv.directory` is required")
        if len(directory) > MAX_DIRECTORY_CHARS:
            raise invalid("csv.directory", f"`csv.directory` is {len(directory):,} characters long; at most "
                          f"{MAX_DIRECTORY_CHARS:,}", "FIELD_TOO_LONG")
        if "\0" in directory:
            raise invalid("csv.directory", "`csv.directory` must not contain a NUL character")
        path = Path(directory)
        if not path.is_absolute():
            raise invalid("csv.directory", f"`csv.directory` must be an absolute path, not {directory!r}")
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise invalid("csv.directory", f"`csv.directory`: {str(existing)!r} exists and is not a directory")
        check_id_types(settings["external_id_types"], "csv.external_id_types")
        check_trait_names(settings["include_traits"], "csv.include_traits")

    def place(self, settings: Mapping[str, Any], collection: str, key: str) -> tuple[Any, ...] | None:
        """A connection's file (`file_of`), symbolic links resolved: two destinations writing it,
        with columns of their own or from two spaces, would each replace the other's file."""
        return (os.path.realpath(file_of(settings, collection, key)),)

    def refresh(self, row: DestinationRow, context: Context, now_ms: int) -> None:
        """Rewrites each connection's file when it may be out of date and the interval has passed."""
        if row.enabled:
            self.write_files(context, row, now_ms)

    def write_files(self, context: Context, row: DestinationRow, now_ms: int) -> None:
        """Rewrites the files that may be out of date: never written by this process, written
        under other settings (a file moved to another `directory` is written there; the one in
        the old directory is left as it was), or before the newest change record or message.
        Those are the server's, not the computation's members': a member's new identifier makes
        no change record, and a file costs at most a rewrite per `interval`, as when its
        audience changes all the time."""
        config, readers = row.config, context.readers
        settings = _settings(config)
        connections = store.connections_of(readers.get(), row.destination_id)
        news = _news(readers.get())
        with self._lock:
            keys = {(row.public_id, c.connection_id, c.created_ms) for c in connections}
            for gone in [k for k in self._written if k[0] == row.public_id and k not in keys]:
                del self._written[gone]  # disconnected: a connection made later is another
            written = dict(self._written)
        for connection in connections:
            key = (row.public_id, connection.connection_id, connection.created_ms)
            if written.get(key) == _Written(settings, news) or now_ms - connection.written_ms < int(
                    config["interval_ms"]):
                continue
            with readers.snapshot() as conn:
                comp = next((c for c in evaluation.computations(conn, row.space_id)
                             if c.computation_id == connection.computation_id), None)
                if comp is None:
                    continue
                latest, seen = store.latest_change_of(conn, comp.computation_id), _news(conn)
                path = file_of(config, comp.collection, comp.key)
                try:
                    _replace(path, csv_chunks(conn, comp, config["external_id_types"], config["include_traits"],
                                              "all"))
                except (OSError, ValueError) as failure:  # ValueError: a NUL in a path stored before it was refused
                    _failed(context, row, connection, f"cannot write {path}: {failure}", now_ms)
                    continue
            context.writer.run(_mark_written(connection.connection_id, latest, now_ms), keeps_events=True)
            with self._lock:
                self._written[key] = _Written(settings, seen)


def _settings(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """The settings that shape a file: where it is, and its columns."""
    return config["directory"], tuple(config["external_id_types"]), tuple(config["include_traits"])


def _news(conn: apsw.Connection) -> tuple[int, int]:
    """How far the server's change records and received messages go: anything a file shows (a
    member, an identifier, a trait value) changes only with one of them."""
    return store.latest_change(conn), events.next_seq(conn)


def file_of(config: Mapping[str, Any], collection: str, key: str) -> Path:
    """The file a connection of a destination with these settings writes."""
    return Path(config["directory"]) / f"{collection}_{key}.csv"


def _failed(context: Context, row: DestinationRow, connection: ConnectionRow, error: str, now_ms: int) -> None:
    """A file not written: the connection's last error, logged when it differs from the last one
    (not on every attempt, each `interval`)."""
    if error != connection.last_error:
        log.warning("sync_sink_failed", destination=row.destination_id, error=error)
    context.writer.run(lambda conn: store.write_failed(conn, connection.connection_id, error, now_ms),
                       keeps_events=True)


def _mark_written(connection_id: int, cursor: int, now_ms: int) -> Callable[[apsw.Connection], None]:
    return lambda conn: store.mark_written(conn, connection_id, cursor, now_ms)


def _replace(path: Path, chunks: Iterator[tuple[bytes, int]]) -> None:
    """Writes a file beside its target and renames it over, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".csv.tmp")
    try:
        with open(temporary, "wb") as handle:
            for data, _ in chunks:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a file cut short by a full disk is not left behind
        raise
