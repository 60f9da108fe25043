"""Online backup and restore through the real `audiences-server` command: a backup taken while
a server is under load restores to a server that starts and holds every call acknowledged
before the backup began; restore refuses while a server holds the database; `db` reads it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import grpc
import pytest
from audiences.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc, profiles_pb2, profiles_pb2_grpc

from audiences_server import ops_cli
from audiences_server.cli import _parser
from audiences_server.engine.engine import Engine
from audiences_server.settings import Settings, resolve
from audiences_server.testing import ServerProcess
from tests.conftest import bearer


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own."""
    return subprocess.run([sys.executable, "-m", "audiences_server.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def _run(*args: str) -> str:
    """One of the operator's commands that need no server, run in this process; its output."""
    parsed = _parser().parse_args(args)
    out = io.StringIO()
    ops_cli.run(resolve(vars(parsed), {}), parsed, out)
    return out.getvalue()


class _Sender(threading.Thread):
    """Sends batches of 50 identify calls until stopped, noting each acknowledged message id."""

    def __init__(self, address: str, token: str) -> None:
        super().__init__(daemon=True)
        self._channel = grpc.insecure_channel(address)
        self._token = token
        self.acknowledged: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        batch = 0
        while not self.stopping.is_set():
            ids = [f"b{batch}-{i}" for i in range(50)]
            body = json.dumps({"batch": [{"type": "identify", "userId": f"u{batch}-{i}", "messageId": m}
                                         for i, m in enumerate(ids)]}).encode()
            reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=bearer(self._token))
            assert reply.accepted_count == 50
            self.acknowledged += ids
            batch += 1
        self._channel.close()


def test_backup_under_load_restores_every_acknowledged_call(tmp_path: Path) -> None:
    """Calls keep coming while the backup runs; the restored database starts a server that
    answers for every call acknowledged before the backup began."""
    db = tmp_path / "live" / "audiences.db"
    server = ServerProcess(db)
    sender = _Sender(server.address, server.tokens["write"])
    try:
        sender.start()
        while len(sender.acknowledged) < 500:
            assert sender.is_alive(), "the sender stopped"
            sender.join(0.02)
        before = list(sender.acknowledged)
        copy = tmp_path / "audiences-backup.db"
        made = _command("backup", str(copy), "--db", str(db))
        assert made.returncode == 0, made.stderr
        assert len(sender.acknowledged) > len(before)  # ingestion went on while it ran
        with pytest.raises(OSError, match="a server is running"):
            _run("restore", str(copy), "--db", str(db))
    finally:
        sender.stopping.set()
        sender.join(30)
        server.stop()
    restored = tmp_path / "restored" / "audiences.db"
    restored.parent.mkdir()
    shutil.copy(db.parent / "credentials.json", restored.parent / "credentials.json")
    assert _run("restore", str(copy), "--db", str(restored)).startswith("restored")
    conn = apsw.Connection(str(restored), flags=apsw.SQLITE_OPEN_READONLY)
    stored = {r[0] for r in conn.execute("SELECT message_id FROM events")}
    conn.close()
    assert set(before) <= stored
    again = ServerProcess(restored)
    try:
        channel = grpc.insecure_channel(again.address)
        reply = profiles_pb2_grpc.ProfilesServiceStub(channel).ListExternalIds(profiles_pb2.ListExternalIdsRequest(
            profile=common_pb2.ProfileRef(collection=common_pb2.COLLECTION_USERS, id="user_id:u0-0")),
            metadata=bearer(again.tokens["read"]))
        assert [(i.type, i.value) for i in reply.external_ids] == [("user_id", "u0-0")]
        channel.close()
    finally:
        assert again.stop() == 0


def test_db_commands_read_tables_rows_and_exports(tmp_path: Path) -> None:
    """`db tables` lists tables with counts; `db rows` filters by column with values bound and
    blanks token hashes; `db export` writes CSV; a table that does not exist is named."""
    db = tmp_path / "audiences.db"
    engine = Engine(Settings(db=db))
    engine.auth.create_space("shop", 0)
    engine.auth.create_token("shop", "read", 0, "bi")
    engine.close()
    listed = dict(line.split("\t")[:2] for line in _run("db", "tables", "--db", str(db)).splitlines())
    assert (listed["spaces"], listed["tokens"]) == ("1", "1")
    rows = [json.loads(r) for r in _run("db", "rows", "tokens", "--where", "label=bi", "--db", str(db)).splitlines()]
    assert [(r["scope"], r["token_hash"]) for r in rows] == [("read", "(redacted)")]
    assert _run("db", "rows", "tokens", "--where", "label=x' OR '1'='1", "--db", str(db)) == ""
    out = tmp_path / "spaces.csv"
    _run("db", "export", "spaces", "-o", str(out), "--db", str(db))
    assert out.read_text().splitlines()[0] == "space_id,name,created_ms,event_retention_ms"
    with pytest.raises(ValueError, match="no table 'nope'"):
        _run("db", "rows", "nope", "--db", str(db))


def test_db_export_never_replaces_the_database_or_a_file_unasked(tmp_path: Path) -> None:
    """`db export -o` refuses the database and its -wal file, and an existing file without
    `--force`; it writes a file readable by its owner only, and a failed export leaves the file
    that was there. Webhook header values are blanked, as secrets are."""
    db = tmp_path / "audiences.db"
    engine = Engine(Settings(db=db))
    engine.auth.create_space("shop", 0)
    engine.close()
    size = db.stat().st_size
    for target in (db, tmp_path / "audiences.db-wal", tmp_path / "." / "audiences.db"):
        with pytest.raises(ValueError, match="cannot be written over the database"):
            _run("db", "export", "spaces", "-o", str(target), "--db", str(db))
    assert db.stat().st_size == size
    assert _run("db", "tables", "--db", str(db))
    out = tmp_path / "spaces.csv"
    out.write_text("kept\n")
    with pytest.raises(ValueError, match="exists; choose another name or say --force"):
        _run("db", "export", "spaces", "-o", str(out), "--db", str(db))
    with pytest.raises(ValueError, match="no table 'nope'"):
        _run("db", "export", "nope", "-o", str(out), "--force", "--db", str(db))
    assert out.read_text() == "kept\n"
    _run("db", "export", "spaces", "-o", str(out), "--force", "--db", str(db))
    assert out.read_text().startswith("space_id,")
    assert out.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.partial"))
    conn = apsw.Connection(str(db))
    conn.execute("INSERT INTO destinations (space_id, key, public_id, name, kind, enabled, config, policy, created_ms,"
                 " updated_ms) SELECT space_id, 'hook', 'dst_1', 'hook', 'webhook', 1, ?, '{}', 0, 0 FROM spaces",
                 (json.dumps({"url": "http://x", "headers": {"Authorization": "s3"}}),))
    conn.close()
    config = json.loads(json.loads(_run("db", "rows", "destinations", "--db", str(db)))["config"])
    assert config["headers"] == {"Authorization": "(redacted)"}


def test_a_database_named_like_a_scratch_file_survives_export_and_backup(tmp_path: Path) -> None:
    """`db export -o NAME` and `backup NAME` write through a new file of their own beside NAME:
    they wrote through `NAME.partial`, removed first, so a database of that name was deleted (the
    export still said it had written)."""
    db = tmp_path / "store.partial"
    engine = Engine(Settings(db=db))
    engine.auth.create_space("shop", 0)
    engine.close()
    before = db.read_bytes()
    _run("db", "export", "spaces", "-o", str(tmp_path / "store"), "--db", str(db))
    assert (tmp_path / "store").read_text().startswith("space_id,")
    _run("backup", str(tmp_path / "store"), "--db", str(db), "--force")
    assert db.read_bytes() == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no scratch file left


def test_a_backup_of_an_older_version_is_migrated_and_moved_past_its_ids(tmp_path: Path) -> None:
    """A backup made before `id_floors` existed (migration 0022) restores: the restore brings it
    up to date before moving its ids on. It stopped with a traceback after the database was
    already replaced, its ids not moved on, so change and connection ids could be issued again."""
    from audiences_server.store import migrations
    old = tmp_path / "old.db"
    conn = apsw.Connection(str(old))
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)")
    for name, fn in migrations.MIGRATIONS:
        if name >= "0022":
            break
        with conn:
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES (?, 0)", (name,))
    conn.close()
    db = tmp_path / "audiences.db"
    restored = _command("restore", str(old), "--db", str(db))
    assert restored.returncode == 0, restored.stderr
    conn = apsw.Connection(str(db))
    assert [name for name, _ in migrations.MIGRATIONS] == [
        name for (name,) in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone() == (1 << 40,)
    assert conn.execute("SELECT value FROM id_floors WHERE name = 'connections'").fetchone() == ((1 << 40),)
    conn.close()


def test_local_commands_leave_an_older_database_to_serve_and_restore_only_ours(tmp_path: Path) -> None:
    """`spaces`/`tokens` refuse a database with migrations still to apply (only `serve` applies
    them), changing nothing; `restore` refuses another program's database."""
    db = tmp_path / "audiences.db"
    Engine(Settings(db=db)).close()
    conn = apsw.Connection(str(db))
    conn.execute("DELETE FROM _migrations WHERE name = (SELECT max(name) FROM _migrations)")
    before = conn.execute("SELECT count(*) FROM _migrations").fetchone()
    conn.close()
    for args in (("spaces", "list"), ("tokens", "list", "--space", "default")):
        refused = _command(*args, "--db", str(db))
        assert refused.returncode == 1, refused
        assert "migration(s) of this version to apply" in refused.stderr
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM _migrations").fetchone() == before
    conn.close()
    other = tmp_path / "app.db"
    conn = apsw.Connection(str(other))
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    backup = tmp_path / "b.db"
    Engine(Settings(db=tmp_path / "fresh.db")).close()
    _run("backup", str(backup), "--db", str(tmp_path / "fresh.db"))
    refused = _command("restore", str(backup), "--db", str(other))
    assert refused.returncode == 1
    assert "not an Audiences database" in refused.stderr
    conn = apsw.Connection(str(other))
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]
    conn.close()


def test_local_tokens_list_and_revoke(tmp_path: Path) -> None:
    """`tokens list` shows a space's tokens without secrets; `tokens revoke` revokes one by id."""
    db = tmp_path / "audiences.db"
    engine = Engine(Settings(db=db))
    engine.auth.create_space("shop", 0)
    issued = engine.auth.create_token("shop", "write", 0, "checkout")
    engine.close()
    revoked = _command("tokens", "revoke", issued.token_id, "--db", str(db))
    assert revoked.stdout == f"revoked {issued.token_id} (write token of shop)\n"
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT actor, action, target FROM audit_log").fetchall() == [
        ("local: audiences-server", "revoke", issued.token_id)]
    conn.close()
    listed = _command("tokens", "list", "--space", "shop", "--db", str(db)).stdout.split("\t")
    assert (listed[0], listed[1], listed[2], listed[-1]) == (issued.token_id, "write", "checkout", "revoked\n")
    assert issued.token not in "\t".join(listed)


def _feed_until(client: Any, cursor: str, count: int) -> list[Any]:
    """The feed's records after `cursor`, once there are `count` (they are queued after the tick)."""
    deadline = time.monotonic() + 20
    while len(found := list(client.list_changes("feed", start_cursor=cursor).changes)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} records"
        time.sleep(0.05)
    return found


def test_a_restored_server_never_issues_a_change_or_feed_id_again(tmp_path: Path) -> None:
    """After a backup, changes are delivered (feed records, message ids), one of them by a
    connection made after the backup; the backup is restored, the same audience connected again
    and a new change made: every record and message id is new, and a consumer resuming from its
    cursor of before the restore reads the new records (the restored ids restarted from the
    backup's, so the new change reused the delivered one's ids, and the connection made again its
    id and so its first sync's message ids: a receiver deduplicating on them dropped them, and the
    consumer's cursor skipped them)."""
    import audiences

    db = tmp_path / "live" / "audiences.db"
    server = ServerProcess(db, "--manual-clock", "--clock-start", "2024-01-01T00:00:00Z")
    client = audiences.Client(server.address, dict(server.tokens), timeout=30)
    copy = tmp_path / "backup.db"
    try:
        client.create_audience("pro", "trait('plan') = 'pro'")
        client.create_audience("also_pro", "trait('plan') = 'pro'")
        client.wait_until_live()
        client.create_destination("feed", grpc_feed={})
        client.connect_destination("feed", "pro")
        client.identify(user_id="u1", traits={"plan": "pro"})
        client.flush()
        client.run_tick(until_idle=True)
        _feed_until(client, "", 1)  # u1's record in the feed before the backup
        made = _command("backup", str(copy), "--db", str(db))
        assert made.returncode == 0, made.stderr
        client.connect_destination("feed", "also_pro")  # its first sync: u1
        client.identify(user_id="u2", traits={"plan": "pro"})
        client.flush()
        client.run_tick(until_idle=True)
        before = _feed_until(client, "", 4)
        assert sorted((c.computation.key, c.external_ids[0].value) for c in before) == [
            ("also_pro", "u1"), ("also_pro", "u2"), ("pro", "u1"), ("pro", "u2")]
    finally:
        client.close()
        assert server.stop() == 0
    restored = tmp_path / "restored" / "audiences.db"
    restored.parent.mkdir()
    shutil.copy(db.parent / "credentials.json", restored.parent / "credentials.json")
    assert _run("restore", str(copy), "--db", str(restored)).startswith("restored")
    again = ServerProcess(restored, "--manual-clock")
    client = audiences.Client(again.address, dict(again.tokens), timeout=30)
    try:
        client.connect_destination("feed", "also_pro")  # its first sync: u1 again
        client.identify(user_id="u3", traits={"plan": "pro"})
        client.flush()
        client.run_tick(until_idle=True)
        after = _feed_until(client, before[-1].cursor, 3)
        assert sorted((c.computation.key, c.external_ids[0].value) for c in after) == [
            ("also_pro", "u1"), ("also_pro", "u3"), ("pro", "u3")]
        assert min(int(c.cursor) for c in after) > max(int(c.cursor) for c in before)
        assert not {c.message_id for c in after} & {c.message_id for c in before}
    finally:
        client.close()
        assert again.stop() == 0
