"""The `csv` kind: a CSV file per connection on the server's disk, rewritten when values change.

Nothing is queued: on each round of the destination's worker, a connection whose computation
changed since its file was written, and whose file is older than `interval`, gets its file
rewritten from one read snapshot (the columns of ExportAudience), written beside its target,
synced and renamed over it, so readers never see half a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import apsw

from audiences_server.engine.destinations.base import Context, Destination, Queue, invalid
from audiences_server.engine.sync.files import csv_chunks
from audiences_server.store import evaluation
from audiences_server.store import sync as store
from audiences_server.store.sync import DestinationRow


class Csv(Destination):
    """CSV files on the server's disk."""

    kind = "csv"
    defaults: ClassVar[Mapping[str, Any]] = {"directory": "", "external_id_types": [], "include_traits": [],
                                             "interval_ms": 60_000}
    queue = Queue.NONE

    def check(self, settings: Mapping[str, Any]) -> None:
        """A directory."""
        if not settings["directory"]:
            raise invalid("csv.directory", "`csv.directory` is required")

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
            _replace(Path(config["directory"]) / f"{comp.collection}_{comp.key}.csv",
                     csv_chunks(conn, comp, config["external_id_types"], config["include_traits"], "all"))
        context.writer.run(_mark_written(connection.connection_id, latest, now_ms), keeps_events=True)


def _mark_written(connection_id: int, cursor: int, now_ms: int) -> Callable[[apsw.Connection], None]:
    return lambda conn: store.mark_written(conn, connection_id, cursor, now_ms)


def _replace(path: Path, chunks: Iterator[tuple[bytes, int]]) -> None:
    """Writes a file beside its target and renames it over, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "wb") as handle:
        for data, _ in chunks:
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
