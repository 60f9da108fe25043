"""`audiences-server cluster local` as a supervisor: a role that dies is reported in one line and
started again, and the cluster goes on; a role that keeps dying, or refuses its settings, stops
every role with one line and exit status 1; a signal stops every role, exit 0; in no case is a
role left running. The real command, with nats-server (skipped without it, as the other cluster
tests are)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from audiences_server.cluster.local import RESTARTS

Line = dict[str, Any]


class Local:
    """A running `cluster local` on free ports, its output in files, its log lines read back."""

    def __init__(self, tmp: Path, shards: int = 2, http_port: int | None = None) -> None:
        if shutil.which("nats-server") is None:
            pytest.skip("nats-server is not on PATH: `make test-cluster` installs it (Debian package nats-server)")
        self.dir = tmp / "cluster"
        nats, listen, http, shard_port = _free_ports(shards)
        self.http = f"127.0.0.1:{http_port or http}"
        self.shards = shards
        self.stderr = tmp / "stderr"
        command = [sys.executable, "-m", "audiences_server.cli", "cluster", "local", "--dir", str(self.dir),
                   "--shards", str(shards), "--port", str(nats), "--listen", f"127.0.0.1:{listen}",
                   "--http-listen", self.http, "--shard-port", str(shard_port)]
        with (tmp / "stdout").open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err)

    def text(self) -> str:
        return self.stderr.read_text(errors="replace")

    def lines(self) -> list[Line]:
        """The log lines written so far, the command's and the roles' (JSON); the rest is skipped."""
        found = []
        for text in self.text().splitlines():
            if text.startswith("{"):
                try:
                    found.append(json.loads(text))
                except ValueError:
                    continue  # a line being written
        return found

    def wait_line(self, test: Callable[[Line], bool], timeout_s: float = 30, after: Line | None = None) -> Line:
        """The first log line that passes `test` (after the line `after`, if given), once written."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.lines()
            for line in lines[lines.index(after) + 1 if after is not None else 0:]:
                if test(line):
                    return line
            assert time.monotonic() < deadline, f"no such line within {timeout_s} s:\n{self.text()[-4000:]}"
            time.sleep(0.05)

    def pid(self, role: str) -> int:
        """The pid of the role's latest process (once it was started)."""
        self.wait_line(lambda line: line["event"] == "role_started" and line["role"] == role)
        return int([line for line in self.lines() if line["event"] in ("role_started", "role_restarted")
                    and line["role"] == role][-1]["pid"])

    def pids(self) -> set[int]:
        """Every process the command started."""
        return {int(line["pid"]) for line in self.lines() if line["event"] in ("role_started", "role_restarted")}

    def tokens(self) -> dict[str, str]:
        tokens: dict[str, str] = json.loads((self.dir / "credentials.json").read_text())["tokens"]
        return tokens

    def identify(self, user: str, plan: str, timeout_s: float = 30) -> None:
        """Sends an identify through the front's HTTP API, again until it is accepted (the front
        is starting, or the log is back and the front not yet reconnected)."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, self.text()[-4000:]
            try:
                reply = httpx.post(f"http://{self.http}/v1/identify", auth=(self.tokens()["write"], ""),
                                   json={"userId": user, "traits": {"plan": plan}}, timeout=5)
                if reply.status_code == 200:
                    return
            except (OSError, KeyError, ValueError, httpx.HTTPError):
                pass  # no credentials file yet, or no front listening yet
            assert time.monotonic() < deadline, f"{user} was not accepted:\n{self.text()[-4000:]}"
            time.sleep(0.2)

    def plan(self, user: str, timeout_s: float = 30) -> str:
        """Reads the user's `plan` through the front (HTTP Profile API), waiting until the owning
        shard has stored it."""
        plans = self.plans([user], timeout_s, lambda found: user in found)
        return plans[user]

    def plans(self, users: list[str], timeout_s: float, done: Callable[[dict[str, str]], bool]) -> dict[str, str]:
        """Each user's `plan` read through the front, read again until `done` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = {}
            for user in users:
                reply = httpx.get(f"http://{self.http}/v1/spaces/default/collections/users/profiles/user_id:{user}/"
                                  "traits", auth=(self.tokens()["read"], ""), timeout=15)
                if reply.status_code == 200:
                    found[user] = reply.json()["traits"].get("plan")
            if done(found):
                return found
            assert time.monotonic() < deadline, f"read {found}:\n{self.text()[-4000:]}"
            time.sleep(0.2)

    def ready(self) -> None:
        """Returns once a call goes through the front and the log and reads back from its shard."""
        self.identify("ready", "yes", timeout_s=60)
        assert self.plan("ready", timeout_s=60) == "yes"

    def stop(self, number: int = signal.SIGTERM) -> int:
        self.process.send_signal(number)
        return self.process.wait(60)

    def close(self) -> None:
        """Whatever a failed test left: the command stopped, then any role still running killed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.pids():
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Callable[..., Local]]:
    """Starts `cluster local` (keyword arguments as `Local` takes them); closes what the test left."""
    started: list[Local] = []

    def start(**options: Any) -> Local:
        started.append(Local(tmp_path, **options))
        return started[-1]

    yield start
    for one in started:
        one.close()


def _free_ports(shards: int) -> tuple[int, int, int, int]:
    """Ports for nats-server, the front's gRPC and HTTP listeners, and the first of the `shards`
    consecutive ports of the shards' read endpoints (base + p): all free, and all different (each
    is held while the next is found, so that no role is given another's port)."""
    held: list[socket.socket] = []

    def hold(port: int) -> int:
        probe = socket.socket()
        held.append(probe)
        probe.bind(("127.0.0.1", port))
        return int(probe.getsockname()[1])

    try:
        nats, listen, http = hold(0), hold(0), hold(0)
        while True:
            base = hold(0)
            try:
                for port in range(base + 1, base + shards):
                    hold(port)
                return nats, listen, http, base
            except OSError:
                continue
    finally:
        for probe in held:
            probe.close()


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (Linux's /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _no_role_left(cluster: Local) -> None:
    pids = cluster.pids()
    assert len(pids) >= 2 + cluster.shards + 1  # nats-server, the identity stage, the shards, the front
    # The roles told by the kernel stop on their own, the log going too; one whose stop overruns
    # ends itself at STOP_DEADLINE_S (its stacks printed), so under load this takes that at most.
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in pids):
        left = [_command(pid) for pid in pids if _running(pid)]
        assert time.monotonic() < deadline, (left, cluster.text()[-6000:])
        time.sleep(0.1)


def _command(pid: int) -> str:
    try:
        return f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:300]
    except OSError:
        return f"{pid}: gone"


def _stopping(cluster: Local) -> str:
    """What was written once the command began to stop every role: with no traceback there, every
    role stopped cleanly. (A role that crashes by itself prints its own traceback before the
    command sees it die and starts it again: that is the role's report, not the stop's.)"""
    text = cluster.text()
    return text[text.index('"event":"cluster_stopping"'):]


def _users_of(db: Path) -> set[str]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.setbusytimeout(5000)
    try:
        return {value for (value,) in conn.execute("SELECT id_value FROM identifiers WHERE id_type = 'user_id'")}
    finally:
        conn.close()


def test_a_shard_killed_is_started_again_and_the_cluster_goes_on(local: Callable[..., Local]) -> None:
    """kill -9 of a shard process: one warning line names it (role, pid, signal), it is started
    again, and calls sent afterwards are stored (the restarted shard's partition among them) and
    read back through the front, which reads the shard's endpoint on its port again."""
    cluster = local()
    cluster.ready()
    victim = cluster.pid("shard-0")
    os.kill(victim, signal.SIGKILL)
    died = cluster.wait_line(lambda line: line["event"] == "role_died" and line["pid"] == victim)
    assert (died["role"], died["signal"], died["action"], died["level"]) == ("shard-0", "SIGKILL", "restart", "warning")
    restarted = cluster.wait_line(lambda line: line["event"] == "role_restarted" and line["role"] == "shard-0",
                                  after=died)
    assert restarted["pid"] != victim
    users = [f"after-{n}" for n in range(8)]
    for user in users:
        cluster.identify(user, "after")
    assert cluster.plans(users, 60, lambda found: len(found) == len(users)) == dict.fromkeys(users, "after")
    assert _users_of(cluster.dir / "shard-0" / "partition-0.db") & set(users)  # the restarted one stored some
    assert cluster.process.poll() is None
    assert cluster.stop() == 0
    assert "Traceback" not in _stopping(cluster), cluster.text()[-6000:]
    _no_role_left(cluster)


def test_a_role_that_keeps_dying_stops_the_cluster(local: Callable[..., Local]) -> None:
    """A shard killed again each time it is started: after RESTARTS restarts, the next death
    stops every role (no traceback while they stop) and the command exits 1 with one line saying
    why."""
    cluster = local()
    for death in range(RESTARTS + 1):
        victim = cluster.pid("shard-1")
        os.kill(victim, signal.SIGKILL)
        died = cluster.wait_line(lambda line, pid=victim: line["event"] == "role_died" and line["pid"] == pid)
        if death < RESTARTS:
            cluster.wait_line(lambda line: line["event"] == "role_restarted" and line["role"] == "shard-1",
                              after=died)
    assert cluster.process.wait(60) == 1
    text = cluster.text()
    assert text.splitlines()[-1] == (f"audiences-server: shard-1 died {RESTARTS + 1} times within 60 s (last: killed "
                                     "by SIGKILL); every role is stopped")
    last = [line for line in cluster.lines() if line["event"] == "role_died"][-1]
    assert (last["role"], last["action"], last["level"]) == ("shard-1", "stop", "error")
    assert "Traceback" not in _stopping(cluster), text[-6000:]
    _no_role_left(cluster)


def test_a_role_that_refuses_its_settings_stops_the_cluster(local: Callable[..., Local]) -> None:
    """The front cannot listen (another program holds its HTTP port): it exits 2, which a restart
    would not change, so every role is stopped at once, one line says so, the command exits 1."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        cluster = local(http_port=holder.getsockname()[1])
        assert cluster.process.wait(60) == 1
    text = cluster.text()
    assert text.splitlines()[-1] == ("audiences-server: front refused to start (exit status 2: its arguments or "
                                     "settings, see its line above); every role is stopped")
    assert "could not listen for HTTP" in text
    assert "Traceback" not in _stopping(cluster), text[-6000:]
    assert not [line for line in cluster.lines() if line["event"] == "role_restarted" and line["role"] == "front"]
    _no_role_left(cluster)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=lambda number: signal.Signals(number).name)
def test_a_signal_stops_every_role(local: Callable[..., Local], number: int) -> None:
    """SIGTERM, or Ctrl-C's SIGINT: every role stopped (nats-server last, so that no role loses
    its connection while closing, and no traceback), exit 0."""
    cluster = local()
    cluster.ready()
    assert cluster.stop(number) == 0
    assert "Traceback" not in _stopping(cluster), cluster.text()[-6000:]
    assert cluster.lines()[-1]["event"] == "cluster_stopped"
    _no_role_left(cluster)


def test_nats_server_killed_is_started_again_with_the_readers(local: Callable[..., Local]) -> None:
    """kill -9 of nats-server: it is started again on its store, the identity stage and the
    shards are started again after it (their consumers made anew from their files), the front
    reconnects, and what was stored before and what is sent after both read back."""
    cluster = local()
    cluster.ready()
    victim = cluster.pid("nats-server")
    os.kill(victim, signal.SIGKILL)
    cluster.wait_line(lambda line: line["event"] == "role_died" and line["pid"] == victim)
    for role in ("identity", "shard-0", "shard-1"):
        cluster.wait_line(lambda line, role=role: line["event"] == "role_restarted" and line["role"] == role
                          and line["because"] == "nats-server restarted")
    cluster.identify("after", "yes")
    assert cluster.plan("after") == "yes"
    assert cluster.plan("ready") == "yes"
    assert cluster.stop() == 0
    assert "Traceback" not in _stopping(cluster), cluster.text()[-6000:]
    _no_role_left(cluster)


@pytest.mark.skipif(sys.platform != "linux", reason="the roles learn of their parent's death through Linux's prctl")
def test_the_command_killed_leaves_no_role_running(local: Callable[..., Local]) -> None:
    """kill -9 of `cluster local` itself, which can clean nothing up: its roles are told by the
    kernel (SIGTERM at their parent's death) and stop."""
    cluster = local()
    cluster.wait_line(lambda line: line["event"] == "front_started")
    cluster.process.kill()
    cluster.process.wait(10)
    _no_role_left(cluster)


def test_fewer_partitions_than_shards_starts_nothing(tmp_path: Path) -> None:
    """A usage error is found before any role starts (nats-server used to be started first and
    left running after the refusal)."""
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not on PATH: `make test-cluster` installs it (Debian package nats-server)")
    ran = subprocess.run([sys.executable, "-m", "audiences_server.cli", "cluster", "local", "--dir",
                          str(tmp_path / "cluster"), "--shards", "2", "--partitions", "1",
                          "--port", str(_free_ports(1)[0])], check=False, capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stderr) == (
        2, "audiences-server: --partitions must be at least --shards, and --shards at least 1\n")
    assert not (tmp_path / "cluster" / "nats").exists()


@pytest.mark.parametrize("stuck", ["time.sleep(60)", "sum(range(10 ** 12))"], ids=["waiting", "holding-the-gil"])
def test_a_role_that_overruns_its_stop_ends_itself(stuck: str) -> None:
    """A role told to stop that is still running STOP_DEADLINE_S later (here shortened) prints its
    threads' stacks and exits 1 by itself, whether it waits or holds the GIL: with the command
    killed, nothing else would kill it. A second signal does not move the deadline."""
    code = ("import time\n"
            "from audiences_server.cluster import roles\n"
            "roles.end_unless_stopped_within(1.0)\n"
            "roles.end_unless_stopped_within(0.1)\n"
            f"{stuck}  # a stop that never ends\n")
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=50)
    assert ran.returncode == 1, ran.stderr
    assert time.monotonic() - started >= 1.0
    assert "Timeout (0:00:01)!" in ran.stderr
    assert 'File "<string>", line 5 in <module>' in ran.stderr  # where the main thread was


def test_a_role_s_work_that_does_not_end_once_stopped_is_cancelled() -> None:
    """`until_stopped`: work that ends by itself when told to stop ends so; work still waiting (an
    append to a log that went away) is cancelled `grace_s` after the stop; work failing before
    the stop raises its error."""
    from audiences_server.cluster.roles import until_stopped

    async def scenario() -> tuple[str, str, float]:
        stop = asyncio.Event()

        async def polite() -> None:
            await stop.wait()

        async def stuck() -> None:
            await asyncio.Event().wait()

        loop = asyncio.get_running_loop()
        loop.call_later(0.05, stop.set)
        await until_stopped(polite(), stop, grace_s=30)
        started = time.monotonic()
        await until_stopped(stuck(), stop, grace_s=0.3)
        waited = time.monotonic() - started

        async def failing() -> None:
            raise RuntimeError("the log refused")

        try:
            await until_stopped(failing(), asyncio.Event(), grace_s=30)
            failed = "nothing"
        except RuntimeError as error:
            failed = str(error)
        return "ended", failed, waited

    ended, failed, waited = asyncio.run(scenario())
    assert (ended, failed) == ("ended", "the log refused")
    assert 0.3 <= waited < 5


def test_a_role_stopped_while_its_connect_swallows_the_cancellation_ends() -> None:
    """Stopped before NATS answered, a role cancels its connect; the NATS client can swallow that
    cancellation (its flush does) and reconnect for ever, which held the role (and asyncio.run's
    end, waiting for that task) until killed: it now ends at once, exit 0, nothing having started."""
    code = ("import asyncio\n"
            "from audiences_server.cluster import roles\n"
            "from audiences_server.cluster.log import JetStreamLog\n"
            "async def stubborn(url, **options):\n"
            "    while True:\n"
            "        try:\n"
            "            await asyncio.sleep(10)\n"
            "        except asyncio.CancelledError:\n"
            "            pass\n"
            "JetStreamLog.connect = staticmethod(stubborn)\n"
            "async def main():\n"
            "    stop = asyncio.Event()\n"
            "    asyncio.get_running_loop().call_later(0.1, stop.set)\n"
            "    await roles._connect_unless_stopped('nats://127.0.0.1:1', stop)\n"
            "    print('returned')\n"
            "asyncio.run(main())\n")
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=50)
    assert (ran.returncode, "returned" in ran.stdout) == (0, False), ran.stderr
    assert "stopped_before_the_log_answered" in ran.stdout
    assert time.monotonic() - started < 10
