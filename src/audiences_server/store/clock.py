"""The manual clock's time, kept in the database so that a restart resumes it."""

from __future__ import annotations

import apsw


def saved_time(conn: apsw.Connection) -> int | None:
    """The manual clock's last time, in milliseconds since the epoch; None if it never ran."""
    row = conn.execute("SELECT now_ms FROM manual_clock WHERE clock = 1").fetchone()
    return None if row is None else int(row[0])


def save_time(conn: apsw.Connection, now_ms: int) -> None:
    """Records the manual clock's time."""
    conn.execute(
        "INSERT INTO manual_clock (clock, now_ms) VALUES (1, ?)"
        " ON CONFLICT (clock) DO UPDATE SET now_ms = excluded.now_ms",
        (now_ms,),
    )
