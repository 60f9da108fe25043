"""The WAL is checkpointed beside the writer, not inside its commits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import apsw

from audiences_server.store.writer import Writer


def test_the_checkpointer_copies_the_wal_on_its_own_thread(tmp_path: Path) -> None:
    """Past the threshold, a checkpoint runs on the `sqlite-checkpoint` thread (never on the
    writer's), the WAL starts over once copied, and everything written is in the file."""
    db = tmp_path / "w.db"
    writer = Writer(db, checkpoint_pages=20)
    seen: list[str] = []
    real = writer.checkpointer._conn

    class Spy:
        """The checkpointer's connection, noting which thread runs each statement."""

        def execute(self, sql: str, *args: object) -> apsw.Cursor:
            seen.append(threading.current_thread().name)
            return real.execute(sql, *args)

        def close(self) -> None:
            real.close()

    writer.checkpointer._conn = Spy()  # type: ignore[assignment]
    pages: list[int] = []  # the WAL's size after each commit, as the writer's WAL hook is told

    def hook(conn: apsw.Connection, name: str, n: int) -> int:
        pages.append(n)
        return writer.checkpointer.wal_hook(conn, name, n)

    writer._conn.setwalhook(hook)
    writer.run(lambda conn: conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    for batch in range(30):
        writer.run(lambda conn, b=batch: conn.executemany("INSERT INTO t (v) VALUES (?)",
                                                         [(f"{b}-{i}" * 40,) for i in range(50)]))
    # Once a checkpoint has copied the whole WAL, a commit writes it again from its start.
    deadline = time.monotonic() + 10
    extra = 0
    while not (writer.checkpointer.checkpoints and pages[-1] < max(pages) // 2):
        assert time.monotonic() < deadline, pages
        writer.run(lambda conn: conn.execute("INSERT INTO t (v) VALUES ('more')"))
        extra += 1
        time.sleep(0.02)
    assert seen
    assert set(seen) == {"sqlite-checkpoint"}
    writer.close()
    check = apsw.Connection(str(db))
    assert check.execute("SELECT count(*) FROM t").fetchall() == [(30 * 50 + extra,)]
