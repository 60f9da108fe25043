"""A CSV destination's files follow its settings and its members' identifiers, not only changes
of the audience: a file is rewritten (within `interval`) once its settings changed or a message
may have changed what it shows, and is left alone while nothing did."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from audiences.v1 import sync_pb2
from google.protobuf import field_mask_pb2

from tests.evaluator.conftest import Space
from tests.sync.conftest import admin, connect, ms, wait_for


def _rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return list(csv.reader(io.StringIO(path.read_text(), newline="")))


def _update(space: Space, paths: list[str], **config: Any) -> None:
    space.running.sync.UpdateDestination(sync_pb2.UpdateDestinationRequest(
        destination=sync_pb2.Destination(key="files", csv=sync_pb2.CsvConfig(**config)),
        update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=admin(space))


def _start(space: Space, directory: Path) -> Path:
    space.send(*({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro", "nick": f"n{i}"}}
                 for i in range(3)))
    space.define("pro", "trait('plan') = 'pro'")
    space.tick()
    space.running.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
        key="files", csv=sync_pb2.CsvConfig(directory=str(directory), interval=ms(100)))), metadata=admin(space))
    connect(space, "files", "pro")
    path = directory / "users_pro.csv"
    wait_for(lambda: len(_rows(path)) == 4, what="the file")
    return path


def test_a_change_of_settings_rewrites_the_file(space: Space, tmp_path: Path) -> None:
    """`include_traits` and `external_id_types` change the file's columns, and a new `directory`
    gets the file, while the audience stays as it is (before, nothing was rewritten until the
    audience changed). The file in the old directory is left as it was last written."""
    path = _start(space, tmp_path / "one")
    assert _rows(path)[0] == ["profile_id", "user_id", "email"]
    _update(space, ["csv.include_traits"], include_traits=["nick"])
    wait_for(lambda: _rows(path)[:1] == [["profile_id", "user_id", "email", "nick"]], what="the trait column")
    assert sorted(r[1:] for r in _rows(path)[1:]) == [["u0", "", "n0"], ["u1", "", "n1"], ["u2", "", "n2"]]
    _update(space, ["csv.external_id_types"], external_id_types=["user_id"])
    wait_for(lambda: _rows(path)[:1] == [["profile_id", "user_id", "nick"]], what="the identifier columns")
    before = path.read_text()
    moved = tmp_path / "two" / "users_pro.csv"
    _update(space, ["csv.directory"], directory=str(moved.parent))
    wait_for(lambda: len(_rows(moved)) == 4, what="the file in the new directory")
    assert _rows(moved)[0] == ["profile_id", "user_id", "nick"]
    time.sleep(0.5)  # several intervals
    assert path.read_text() == before


def test_a_members_new_identifier_is_written(space: Space, tmp_path: Path) -> None:
    """A member's new email changes no membership, and still reaches the file, as ExportAudience
    gives it."""
    path = _start(space, tmp_path)
    space.send({"type": "identify", "userId": "u0", "traits": {"email": "u0@x.io"}})
    space.tick()
    wait_for(lambda: ["u0", "u0@x.io"] in [r[1:] for r in _rows(path)], what="the new email")


def test_a_file_is_left_alone_while_nothing_changes(space: Space, tmp_path: Path) -> None:
    """With no change of settings, no change record and no message, the file is not rewritten
    every interval (a rewrite replaces it: a new inode)."""
    path = _start(space, tmp_path)
    time.sleep(0.3)  # the rewrite a message received just before the first write may cause
    inode = path.stat().st_ino
    time.sleep(0.6)
    assert path.stat().st_ino == inode
