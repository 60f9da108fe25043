"""The database files hold every profile and the token hashes: only their owner may read them."""

from __future__ import annotations

import json
import os
import stat
import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from audiences.v1 import ingest_pb2, tracking_pb2

from audiences_server.store.db import DatabaseGone
from tests.conftest import error_reason, start


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


def test_a_database_file_removed_under_the_server_stores_nothing_more(tmp_path: Path) -> None:
    """The database file removed while the server runs: a call is UNAVAILABLE `DATABASE_GONE`
    (not acknowledged, then lost with the removed file when the server stops), `/readyz` says not
    ready, and a reader on a thread with no connection yet is refused `DATABASE_GONE` too rather
    than making a new, empty database at the path."""
    db = tmp_path / "audiences.db"
    running = start(db)
    try:
        track = ingest_pb2.TrackRequest(track=tracking_pb2.Track(user_id="u", event="E"))
        running.ingest.Track(track, metadata=running.auth("write"))
        for path in (db, db.with_name("audiences.db-wal"), db.with_name("audiences.db-shm")):
            path.unlink()
        with pytest.raises(grpc.RpcError) as refused:
            running.ingest.Track(track, metadata=running.auth("write"))
        assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_GONE")
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{running.http_url}/readyz", timeout=10)
        assert (not_ready.value.code, json.loads(not_ready.value.read())["reason"]) == (503, "DATABASE_GONE")
        failures: list[BaseException] = []

        def read() -> None:  # a thread with no reader connection yet, as a new pool thread would be
            try:
                running.server.engine.readers.get()
            except DatabaseGone as failed:
                failures.append(failed)

        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        assert len(failures) == 1
        assert not db.exists()
    finally:
        running.channel.close()
        running.server.stop(grace=1)
    assert not db.exists()
