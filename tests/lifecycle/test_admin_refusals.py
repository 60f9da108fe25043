"""The `audiences-server` commands refuse what they cannot do in one line and a non-zero status,
leaving nothing behind: a `--db` that does not exist (the commands other than `serve` and
`restore` never create one), a file that is not a database or is damaged, a database another
process holds locked, a backup target that is not a regular file, a port out of range, a row
limit SQLite cannot take; and a reader of their output going away is no error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from audiences_server import cli
from audiences_server.engine.engine import Engine
from audiences_server.settings import Settings, resolve
from audiences_server.store import backup as backups
from audiences_server.store import db as store_db
from audiences_server.store import writer

BUSY = "audiences-server: the database is busy: another process holds its write lock; try again\n"


def _database(path: Path) -> Path:
    """A database of this server with space `shop` and one token, written out whole (no -wal)."""
    engine = Engine(Settings(db=path))
    engine.auth.create_space("shop", 0)
    engine.auth.create_token("shop", "read", 0, "bi")
    engine.close()
    return path


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command run in this process: its status, standard output and standard error."""
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own."""
    return subprocess.run([sys.executable, "-m", "audiences_server.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


# Every command but `serve` and `restore`, each needing only a database.
COMMANDS = (
    ("spaces", "list"),
    ("spaces", "create", "x"),
    ("spaces", "origins", "shop"),
    ("tokens", "list", "--space", "shop"),
    ("tokens", "create", "--space", "shop", "--scope", "read"),
    ("tokens", "revoke", "tok_0"),
    ("db", "tables"),
    ("db", "rows", "spaces"),
    ("db", "export", "spaces"),
)


@pytest.mark.parametrize("command", [*COMMANDS, ("backup", "BACKUP")], ids=" ".join)
def test_a_database_that_does_not_exist_is_refused_not_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    """A mistyped `--db` is `no database at …`, status 1, and no file nor folder is made (a
    database made by `spaces create` before the first start was never bootstrapped)."""
    db = tmp_path / "typo" / "audiences.db"
    target = tmp_path / "backup.db"
    args = [str(target) if part == "BACKUP" else part for part in command]
    status, out, err = _main(capsys, *args, "--db", str(db))
    assert (status, out, err) == (1, "", f"audiences-server: no database at {db}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is not sqlite")


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(2000))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    whole = _database(path.with_name("whole.db")).read_bytes()
    path.write_bytes(whole[: len(whole) // 3])


BAD_FILES = {
    "not sqlite": (_not_sqlite, "is not an SQLite database: file is not a database"),
    "random bytes": (_random, "is not an SQLite database: file is not a database"),
    "empty": (_empty, "is not an SQLite database: the file is empty"),
    "truncated": (_truncated, "is damaged: database disk image is malformed"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("command", [*COMMANDS, ("backup", "BACKUP")], ids=" ".join)
def test_a_file_that_is_not_a_sound_database_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...], kind: str) -> None:
    """Not SQLite, random bytes, an empty file or a truncated copy: one line naming the file,
    status 1, the file unchanged and no backup begun."""
    make, said = BAD_FILES[kind]
    db = tmp_path / "bad.db"
    make(db)
    before = db.read_bytes()
    target = tmp_path / "backup.db"
    args = [str(target) if part == "BACKUP" else part for part in command]
    status, out, err = _main(capsys, *args, "--db", str(db))
    assert (status, out, err) == (1, "", f"audiences-server: {db} {said}\n")
    assert db.read_bytes() == before
    assert not target.exists()
    assert not list(target.parent.glob("*.partial"))


def test_a_backup_of_a_database_with_a_damaged_page_is_refused(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A database whose one page is garbage still opens; `backup` used to copy it page for page and
    say `backed up` (status 0), a backup that `restore` then refused. The copy is checked:
    `… is damaged`, status 1, nothing written."""
    db = _database(tmp_path / "bad.db")
    pages = bytearray(db.read_bytes())
    pages[2 * 4096:3 * 4096] = b"\xff" * 4096  # page 3, an index's root: not the spaces table
    db.write_bytes(pages)
    target = tmp_path / "backup.db"
    status, out, err = _main(capsys, "backup", str(target), "--db", str(db))
    assert (status, out) == (1, "")
    assert err.startswith(f"audiences-server: {db} is damaged: ")
    assert err.endswith("; no backup was written\n")
    assert not target.exists()
    assert not list(target.parent.glob("*.partial"))


def test_a_database_of_another_program_is_not_migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`spaces`, `tokens` and `serve` open the engine, which migrates: on an SQLite file that is not
    this server's they refuse instead of adding the server's tables to it (`serve` takes one with no
    table as a new database). `db` reads it."""
    db = tmp_path / "other.db"
    conn = apsw.Connection(str(db))
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = db.read_bytes()
    status, _, err = _main(capsys, "spaces", "list", "--db", str(db))
    assert (status, err) == (1, f"audiences-server: {db} is not an Audiences database\n")
    served = _command("serve", "--db", str(db), "--listen", "127.0.0.1:0", "--http-listen", "")
    assert (served.returncode, served.stderr) == (1, f"audiences-server: {db} is not an Audiences database: it"
                                                     " holds another program's tables, which a server would add its"
                                                     " own to\n")
    assert db.read_bytes() == before
    assert _main(capsys, "db", "tables", "--db", str(db)) == (0, "notes\t0\tbody\n", "")


@pytest.mark.parametrize("kind", [kind for kind in BAD_FILES if kind != "empty"])
def test_serve_refuses_a_file_that_is_not_a_sound_database(tmp_path: Path, kind: str) -> None:
    """`serve` makes a new database of a missing or empty file, but refuses the other bad files
    in one line."""
    make, said = BAD_FILES[kind]
    db = tmp_path / "bad.db"
    make(db)
    served = _command("serve", "--db", str(db), "--listen", "127.0.0.1:0", "--http-listen", "")
    assert (served.returncode, served.stderr) == (1, f"audiences-server: {db} {said}\n")


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A database recording a migration this version does not know was written by a newer one:
    `restore` refuses it as a backup before touching the database, and `serve` and the commands
    that open the engine (which migrates) refuse it, each in one line naming the migration."""
    future = _database(tmp_path / "future.db")
    conn = apsw.Connection(str(future))
    conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES ('0099_from_the_future', 0)")
    conn.close()
    said = ("was written by a newer version of Audiences (migration 0099_from_the_future is unknown to this one);"
            " run that version or newer")
    db = _database(tmp_path / "audiences.db")
    before, untouched = db.read_bytes(), future.read_bytes()
    assert _main(capsys, "restore", str(future), "--db", str(db)) == (1, "", f"audiences-server: {future} {said}\n")
    assert db.read_bytes() == before
    status, _, err = _main(capsys, "tokens", "list", "--space", "shop", "--db", str(future))
    assert (status, err) == (1, f"audiences-server: {future} {said}\n")
    served = _command("serve", "--db", str(future), "--listen", "127.0.0.1:0", "--http-listen", "")
    # Status 2, as for settings it refuses: starting it again would only repeat the refusal.
    assert (served.returncode, served.stderr) == (2, f"audiences-server: {future} {said}\n")
    assert future.read_bytes() == untouched
    assert _main(capsys, "db", "tables", "--db", str(future))[0] == 0  # it only reads


def test_a_directory_as_the_database_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--db` naming a folder says so, for every command; `restore` no longer blames a server."""
    folder = tmp_path / "var"
    folder.mkdir()
    status, _, err = _main(capsys, "spaces", "list", "--db", str(folder))
    assert (status, err) == (1, f"audiences-server: {folder} is a directory, not a database\n")
    backup = _database(tmp_path / "backup.db")
    status, _, err = _main(capsys, "restore", str(backup), "--db", str(folder))
    assert status == 1
    assert err == (f"audiences-server: {folder} is a directory, not a database: --db names the database file to"
                   " restore into\n")
    assert list(folder.iterdir()) == []


def test_a_refused_backup_leaves_no_database_where_it_would_restore(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The backup is checked before the database (and its lock file) is made."""
    bad = tmp_path / "bad.db"
    _not_sqlite(bad)
    db = tmp_path / "var" / "audiences.db"
    status, _, err = _main(capsys, "restore", str(bad), "--db", str(db))
    assert (status, err) == (1, f"audiences-server: {bad} is not an SQLite database: file is not a database\n")
    assert not db.parent.exists()


def test_a_restore_over_a_file_it_cannot_read_says_how_to_go_on(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A database file damaged past reading, the day its backup is restored: refused (it may be
    another program's), saying to move it aside and restore into its place, which then works."""
    db = _database(tmp_path / "audiences.db")
    backup = tmp_path / "backup.db"
    assert _main(capsys, "backup", str(backup), "--db", str(db))[0] == 0
    _not_sqlite(db)
    status, _, err = _main(capsys, "restore", str(backup), "--db", str(db))
    assert status == 1
    assert err.endswith("file is not a database; a restore writes only over an Audiences database: move the file"
                        " (and its -wal and -shm files) aside, then restore into its place\n")
    db.rename(tmp_path / "damaged.db")
    assert _main(capsys, "restore", str(backup), "--db", str(db))[0] == 0


@pytest.mark.parametrize("force", [(), ("--force",)], ids=["", "force"])
def test_a_backup_target_that_is_not_a_regular_file_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], force: tuple[str, ...]) -> None:
    """A directory or a named pipe (a device alike: /dev/full was replaced by a regular file) is
    refused whatever --force says, before any page is copied."""
    db = _database(tmp_path / "audiences.db")
    folder = tmp_path / "backups"
    folder.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, kind in ((folder, "a directory"), (fifo, "a named pipe")):
        status, _, err = _main(capsys, "backup", str(target), *force, "--db", str(db))
        assert (status, err) == (1, f"audiences-server: {target} is {kind}: a backup is written to a file of its own\n")
        assert not list(target.parent.glob("*.partial"))
    assert folder.is_dir()
    assert list(folder.iterdir()) == []
    assert fifo.is_fifo()


def test_a_backup_stopped_by_sigterm_leaves_no_partial_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while the copy is made (a supervisor's stop, `timeout`) ends the command with status
    143 as Ctrl-C ends it, removing its partial file first: the process used to end at once and
    leave the partial copy of the database beside the target."""
    db = _database(tmp_path / "audiences.db")
    copy = backups._copy

    def interrupted(source: apsw.Connection, target: apsw.Connection) -> None:
        copy(source, target)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between two bytecodes of this thread
            time.sleep(0.001)

    monkeypatch.setattr(backups, "_copy", interrupted)
    target = tmp_path / "backup.db"
    with pytest.raises(SystemExit) as ended:
        _main(capsys, "backup", str(target), "--db", str(db))
    assert ended.value.code == 143
    assert not target.exists()
    assert not list(target.parent.glob("*.partial"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was


def test_a_backup_that_fails_leaves_no_partial_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup is whole or absent: the copy failing (here a full disk) removes its partial file;
    so does a source that SQLite cannot read, given to the backup function itself."""
    db = _database(tmp_path / "audiences.db")
    target = tmp_path / "backup.db"

    def full(source: apsw.Connection, destination: apsw.Connection) -> None:
        destination.execute("CREATE TABLE started (x)")
        raise apsw.FullError("database or disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(backups, "_copy", full)
        status, _, err = _main(capsys, "backup", str(target), "--db", str(db))
    assert (status, err) == (1, "audiences-server: database or disk is full\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audiences.db"]
    bad = tmp_path / "bad.db"
    _not_sqlite(bad)
    with pytest.raises(apsw.NotADBError):
        backups.backup(bad, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audiences.db", "bad.db"]
    assert _main(capsys, "backup", str(target), "--db", str(db))[0] == 0
    assert target.is_file()
    assert not list(target.parent.glob("*.partial"))


@pytest.mark.parametrize("flag", ["listen", "http_listen"])
@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-5", "127.0.0.1",
                                     "127.0.0.1:http", "[::1]:-1"])
def test_a_listen_address_needs_a_port_from_0_to_65535(flag: str, address: str) -> None:
    """gRPC bound port 99999 as 34463 and -5 as 65531 (the low 16 bits), and an address without a
    port as 443: each is refused, by flag and by environment alike."""
    option = "--" + flag.replace("_", "-")
    with pytest.raises(ValueError, match=f"^{option} / AUDIENCES_{flag.upper()}: ") as refused:
        resolve({flag: address}, {})
    port = address.rpartition(":")[2]
    if port.lstrip("-").isdigit():
        assert str(refused.value).endswith(f"{address!r} has port {port}; ports are 0 (any free one) to 65535")
    else:
        assert str(refused.value).endswith(f"expected HOST:PORT (port 0 picks a free one), not {address!r}")
    with pytest.raises(ValueError, match=f"^{option} / AUDIENCES_{flag.upper()}: "):
        resolve({}, {f"AUDIENCES_{flag.upper()}": address})


def test_ports_0_to_65535_and_no_http_listener_are_taken() -> None:
    """Port 0 (any free one, which the tests use) and 65535 are ports; an empty HTTP address
    turns the listener off."""
    settings = resolve({"listen": "127.0.0.1:0", "http_listen": "[::1]:65535"}, {})
    assert (settings.listen, settings.http_listen) == ("127.0.0.1:0", "[::1]:65535")
    assert resolve({"http_listen": ""}, {}).http_listen == ""


def test_serve_on_a_port_out_of_range_does_not_start(tmp_path: Path) -> None:
    """The real command: status 2 (a usage error), one line, and no database made."""
    db = tmp_path / "audiences.db"
    served = _command("serve", "--db", str(db), "--listen", "127.0.0.1:99999", "--http-listen", "")
    assert (served.returncode, served.stderr) == (
        2, "audiences-server: --listen / AUDIENCES_LISTEN: '127.0.0.1:99999' has port 99999; ports are 0 (any free"
        " one) to 65535\n")
    assert not db.exists()


@pytest.mark.parametrize("role", [("shard", "--partition", "0", "--db", "p.db", "--listen"),
                                  ("front", "--shard"), ("local", "--listen"), ("local", "--http-listen")],
                         ids=" ".join)
def test_a_cluster_role_refuses_a_port_out_of_range(role: tuple[str, ...]) -> None:
    """The cluster's roles read their HOST:PORT options as `serve` does: a usage error, one line."""
    ran = _command("cluster", *role, "127.0.0.1:99999")
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[-1].endswith("'127.0.0.1:99999' has port 99999; ports are 0 (any free one) to 65535")


@pytest.mark.parametrize("command", [("spaces", "create", "locked"),
                                     ("tokens", "create", "--space", "shop", "--scope", "write")], ids=" ".join)
def test_a_write_on_a_locked_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]) -> None:
    """Another process holds the write lock (`BEGIN EXCLUSIVE`): once SQLite's busy timeout
    passes (shortened here from 10 s), the command says the database is busy, without a traceback
    (the writer's own log line included)."""
    db = _database(tmp_path / "audiences.db")

    def impatient(path: Any, **options: Any) -> apsw.Connection:
        conn = store_db.connect(path, **options)
        conn.setbusytimeout(200)
        return conn

    monkeypatch.setattr(writer, "connect", impatient)
    holder = apsw.Connection(str(db))
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert _main(capsys, *command, "--db", str(db)) == (1, "", BUSY)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("limit", ["99999999999999999999", "9223372036854775808", "-1", "ten"])
def test_a_row_limit_sqlite_cannot_take_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         limit: str) -> None:
    """`db rows --limit` takes 0 (all) to 2**63-1, SQLite's LIMIT; past it SQLite failed with
    "datatype mismatch", and a negative limit returned every row."""
    db = _database(tmp_path / "audiences.db")
    with pytest.raises(SystemExit) as usage:
        cli.main(["db", "rows", "tokens", "--limit", limit, "--db", str(db)])
    assert usage.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"argument --limit: expected a number of rows from 0 (all) to 9223372036854775807, not {limit!r}\n")
    assert _main(capsys, "db", "rows", "tokens", "--limit", "9223372036854775807", "--db", str(db))[1].count("\n") == 1


@pytest.mark.parametrize("command", [("db", "rows", "tokens"), ("db", "export", "spaces", "--format", "ndjson"),
                                     ("spaces", "list")], ids=" ".join)
def test_a_reader_gone_away_is_no_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    """`… | head -1`: the command stops quietly with status 0, as the `audiences` CLI does,
    instead of `[Errno 32] Broken pipe` and status 1."""
    db = _database(tmp_path / "audiences.db")
    process = subprocess.Popen([sys.executable, "-m", "audiences_server.cli", *command, "--db", str(db)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # long before the command writes: its first write finds no reader
    status = process.wait(timeout=120)
    err = process.stderr.read().decode()
    process.stderr.close()
    assert (status, err) == (0, "")


def test_a_credentials_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """`--credentials-file` naming a directory is refused before anything is made, not written
    beside it under an odd name."""
    (tmp_path / "tokens").mkdir()
    served = _command("serve", "--db", str(tmp_path / "a.db"), "--listen", "127.0.0.1:0", "--http-listen", "",
                      "--credentials-file", str(tmp_path / "tokens"))
    assert (served.returncode, served.stderr) == (2, f"audiences-server: --credentials-file {tmp_path / 'tokens'} is"
                                                     " a directory; name the file the bootstrap tokens go to\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens"]


def test_admin_commands_take_only_their_own_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup, a listing or a token never fails on a serve-only setting: a bad
    `AUDIENCES_WORKERS` in the environment is not read, and their help lists only what they use."""
    db = _database(tmp_path / "a.db")
    monkeypatch.setenv("AUDIENCES_WORKERS", "abc")
    monkeypatch.setenv("AUDIENCES_TICK_INTERVAL_MS", "-1")
    assert _main(capsys, "spaces", "list", "--db", str(db))[:2] == (0, "shop\n")
    assert _main(capsys, "backup", str(tmp_path / "b.db"), "--db", str(db))[0] == 0
    helped = _command("backup", "--help").stdout
    assert ("--db" in helped, "--synchronous" in helped, "--listen" in helped, "--workers" in helped) == (
        True, True, False, False)
    served = _command("serve", "--db", str(db), "--listen", "127.0.0.1:0", "--http-listen", "")
    assert served.returncode == 2
    assert "--workers / AUDIENCES_WORKERS" in served.stderr
