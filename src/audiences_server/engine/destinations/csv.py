"""The `csv` kind: a CSV file per connection on the server's disk, rewritten when values change.

Nothing is queued: on each round of the destination's worker, a connection whose computation
changed since its file was written, and whose file is older than `interval`, gets its file
rewritten from one read snapshot (the columns of ExportAudience), written beside its target,
synced and renamed over it, so readers never see half a file. A file that cannot be written (the
disk full, the directory's permissions changed) is the connection's last error, logged once per
distinct error, and tried again after `interval`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
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
from audiences_server.store import evaluation
from audiences_server.store import sync as store
from audiences_server.store.sync import ConnectionRow, DestinationRow

log = structlog.get_logger(__name__)

# The longest `directory` taken: Linux's PATH_MAX.
MAX_DIRECTORY_CHARS = 4_096


class Csv(Destination):
    """CSV files on the server's disk."""

    kind = "csv"
    defaults: ClassVar[Mapping[str, Any]] = {"directory": "", "external_id_types": [], "include_traits": [],
                                             "interval_ms": 60_000}
    queue = Queue.NONE
    own_places = "another directory"

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
        """Rewrites each connection's file when its values changed and the interval has passed."""
        if row.enabled:
            write_files(context, row, now_ms)


def write_files(context: Context, row: DestinationRow, now_ms: int) -> None:
    """Rewrites the files that are out of date."""
    config, readers = row.config, context.readers
    for connection in store.connections_of(readers.get(), row.destination_id):
        latest = store.latest_change_of(readers.get(), connection.computation_id)
        fresh = connection.written_cursor >= latest and connection.written_cursor >= 0
        if fresh or now_ms - connection.written_ms < int(config["interval_ms"]):
            continue
        with readers.snapshot() as conn:
            comp = next((c for c in evaluation.computations(conn, row.space_id)
                         if c.computation_id == connection.computation_id), None)
            if comp is None:
                continue
            latest = store.latest_change_of(conn, comp.computation_id)
            path = file_of(config, comp.collection, comp.key)
            try:
                _replace(path, csv_chunks(conn, comp, config["external_id_types"], config["include_traits"], "all"))
            except (OSError, ValueError) as failure:  # ValueError: a NUL in a path stored before it was refused
                _failed(context, row, connection, f"cannot write {path}: {failure}", now_ms)
                continue
        context.writer.run(_mark_written(connection.connection_id, latest, now_ms), keeps_events=True)


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
