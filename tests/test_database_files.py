"""The database files hold every profile and the token hashes: only their owner may read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from audiences.v1 import ingest_pb2, tracking_pb2

from tests.conftest import start


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_fresh_database_and_its_folder_are_private(tmp_path: Path) -> None:
    """A server started on a database that does not exist yet creates its folders 0700 and the
    database, its WAL and shared-memory files 0600, whatever the umask lets through (the instance
    lock is on the database itself: no file of its own)."""
    db = tmp_path / "fresh" / "deeper" / "audiences.db"
    previous = os.umask(0o002)  # a permissive umask: the modes must not come from it
    try:
        running = start(db)
    finally:
        os.umask(previous)
    try:
        track = tracking_pb2.Track(user_id="u", event="E")
        running.ingest.Track(ingest_pb2.TrackRequest(track=track), metadata=running.auth("write"))
        files = [db, *(db.with_name(f"audiences.db-{end}") for end in ("wal", "shm"))]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert (mode(db.parent), mode(db.parent.parent)) == (0o700, 0o700)
    finally:
        running.channel.close()
        running.server.stop(grace=1)
