"""`audiences-server cluster local`: nats-server, the identity stage, the shard processes and a front
as child processes of one command, supervised (docs/scaling.md, "Running it").

Every role is built to resume from its own file after a kill -9 (the identity stage and the
shards recreate their consumers at the position their file holds; the front keeps nothing of the
log), so a role that dies is reported in one line and started again; after nats-server, the roles
that read the log are started again too (`Supervisor._restart_log`). A role that keeps dying
(more than `RESTARTS` times within `WINDOW_S`), or that refused its arguments or settings (exit
status 2: the same command would refuse them again), stops the cluster: every role is stopped,
the log last, and the command exits 1 with one line saying why. SIGTERM, SIGINT (Ctrl-C) and
SIGHUP stop every role the same way and exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

# Deaths of one role allowed within WINDOW_S: one more stops the cluster. A role that dies at
# once on every start (a corrupt file, say) gives up within seconds
# instead of starting again forever; a role killed now and then is started again every time.
RESTARTS = 5
WINDOW_S = 60.0
# The pause before a dead role is started again (nats-server is started again at once).
RESTART_DELAY_S = 0.5
# How often the children are looked at.
POLL_S = 0.2
# How long a role has to stop after SIGTERM before it is killed (SIGKILL: safe for every role,
# which is what a restart relies on anyway).
STOP_S = 20.0
# How long nats-server has to accept connections after it is started.
NATS_READY_S = 15.0
# The status with which a role refuses its arguments or settings (argparse's, and the roles' own).
REFUSED = 2

_PR_SET_PDEATHSIG = 1  # prctl(2), <linux/prctl.h>


@dataclasses.dataclass(eq=False)
class Role:
    """One child process of the cluster: what runs it, and its deaths within the window."""

    name: str
    command: list[str]
    reads_log: bool = False  # it reads the log with a consumer made at its start (identity, shards)
    process: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None  # dead, to be started again at this time (monotonic)
    deaths: deque[float] = dataclasses.field(default_factory=deque)


class _GiveUp(Exception):
    """The cluster stops: the message is the reason, one line."""


def run_local(args: argparse.Namespace) -> int:
    """Runs `cluster local` until a signal (exit 0) or a role that keeps dying (exit 1)."""
    nats_server = shutil.which("nats-server")
    if nats_server is None:
        print("audiences-server: nats-server is not on PATH (Debian: apt-get install nats-server)", file=sys.stderr)
        return 1
    partitions = args.partitions or args.shards
    if partitions < args.shards or args.shards < 1:  # before anything starts, so nothing is left running
        print("audiences-server: --partitions must be at least --shards, and --shards at least 1", file=sys.stderr)
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    url = f"nats://127.0.0.1:{args.port}"
    banner = (f"nats at {url}; a front on {args.listen} (HTTP {args.http_listen}, tokens in "
              f"{args.dir / 'credentials.json'}), the identity stage and {args.shards} shard processes "
              f"({partitions} partitions) under {args.dir}; Ctrl-C stops them")
    return Supervisor(roles_of(args, nats_server, partitions), args.port, banner).run()


def roles_of(args: argparse.Namespace, nats_server: str, partitions: int) -> list[Role]:
    """nats-server first, then the identity stage, the shard processes and the front: the order
    they start in (every role waits for the log; the front's reads wait for the shards)."""
    me = [sys.executable, "-m", "audiences_server.cli", "cluster"]
    url = f"nats://127.0.0.1:{args.port}"
    directory: Path = args.dir
    roles = [Role("nats-server", [nats_server, "-a", "127.0.0.1", "-p", str(args.port), "-js",
                                  "-sd", str(directory / "nats")]),
             Role("identity", [*me, "identity", "--db", str(directory / "identity.db"), "--nats", url,
                               "--partitions", str(partitions)], reads_log=True)]
    reads = [f"127.0.0.1:{args.shard_port + p}" for p in range(partitions)]
    for k in range(args.shards):
        mine = range(k, partitions, args.shards)
        roles.append(Role(f"shard-{k}", [*me, "shard", "--data-dir", str(directory / f"shard-{k}"), "--nats", url,
                                         *(f"--partition={p}" for p in mine),
                                         *(f"--listen={reads[p]}" for p in mine)], reads_log=True))
    roles.append(Role("front", [*me, "front", "--db", str(directory / "front.db"), "--nats", url,
                                "--listen", args.listen, "--http-listen", args.http_listen,
                                *(f"--shard={address}" for address in reads)]))
    return roles


def how_it_ended(status: int) -> str:
    """`exit status 1`, `killed by SIGKILL`: a process's end as a person reads it."""
    return f"exit status {status}" if status >= 0 else f"killed by {_signal_name(-status)}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Supervisor:
    """Starts the roles, starts again the ones that die, and stops them all, the log last."""

    def __init__(self, roles: list[Role], nats_port: int, banner: str) -> None:
        """`roles[0]` is nats-server, listening on `nats_port`."""
        self._nats, *self._others = roles
        self._port = nats_port
        self._banner = banner
        self._signal: int | None = None

    def run(self) -> int:
        """Supervises until a signal (0) or a give-up (1); no child is left running either way."""
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, self._signalled)
        try:
            self._start(self._nats)
            if not self._nats_ready() and self._signal is None:
                status = self._nats.process.wait() if self._nats.process else 0
                raise _GiveUp(f"nats-server exited at start ({how_it_ended(status)}): is port {self._port} "
                              "free? Its lines are above")
            for role in self._others:
                if self._signal is None:
                    self._start(role)
            if self._signal is None:
                print(self._banner, flush=True)
            while self._signal is None:
                self._look()
                time.sleep(POLL_S)
        except _GiveUp as gave_up:
            log.error("cluster_stopping", reason=str(gave_up))
            self._stop_all()
            with contextlib.suppress(OSError):
                print(f"audiences-server: {gave_up}; every role is stopped", file=sys.stderr, flush=True)
            return 1
        except BaseException:  # a mistake of this code: the children still go
            self._stop_all()
            raise
        log.info("cluster_stopping", signal=_signal_name(self._signal))
        self._stop_all()
        log.info("cluster_stopped")
        return 0

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self._signal = signum

    def _start(self, role: Role, restarted: str | None = None) -> None:
        """Starts the role's process in a process group of its own, so that a terminal's Ctrl-C
        reaches this command only and the roles are stopped in order (the log last: stopped with
        them, it went away under roles still closing their connections)."""
        role.restart_at = None
        # preexec_fn: this command runs no threads of its own.
        role.process = subprocess.Popen(role.command, stdin=subprocess.DEVNULL, process_group=0,
                                        preexec_fn=_child_setup(os.getpid()))  # noqa: PLW1509
        if restarted is None:
            log.info("role_started", role=role.name, pid=role.process.pid)
        else:
            log.info("role_restarted", role=role.name, pid=role.process.pid, deaths_in_window=len(role.deaths),
                     because=restarted)

    def _nats_ready(self) -> bool:
        """Waits until nats-server accepts connections: False if it exited first, or a signal came."""
        deadline = time.monotonic() + NATS_READY_S
        while self._signal is None:
            assert self._nats.process is not None
            if self._nats.process.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self._port), timeout=0.2).close()
                return True
            except OSError:
                if time.monotonic() > deadline:
                    raise _GiveUp(f"nats-server did not accept connections on port {self._port} within "
                                  f"{NATS_READY_S:.0f} s") from None
                time.sleep(0.05)
        return False

    def _look(self) -> None:
        """Starts the roles whose pause is over; reports the ones that died since the last look."""
        now = time.monotonic()
        for role in (self._nats, *self._others):
            if role.restart_at is not None:
                if now >= role.restart_at:
                    self._start(role, restarted="died")
                continue
            assert role.process is not None
            status = role.process.poll()
            if status is not None:
                self._died(role, status, now)

    def _died(self, role: Role, status: int, now: float) -> None:
        """One line for the death; then the role is started again, or the cluster gives up."""
        assert role.process is not None
        ended = {"exit_status": status} if status >= 0 else {"signal": _signal_name(-status)}
        role.deaths.append(now)
        while role.deaths[0] < now - WINDOW_S:
            role.deaths.popleft()
        reason = None
        if status == REFUSED and role is not self._nats:
            reason = (f"{role.name} refused to start ({how_it_ended(status)}: its arguments or settings, see its "
                      "line above)")
        elif len(role.deaths) > RESTARTS:
            reason = f"{role.name} died {len(role.deaths)} times within {WINDOW_S:.0f} s (last: {how_it_ended(status)})"
        if reason is not None:
            log.error("role_died", role=role.name, pid=role.process.pid, **ended, action="stop")
            raise _GiveUp(reason)
        log.warning("role_died", role=role.name, pid=role.process.pid, **ended, action="restart")
        if role is self._nats:
            self._restart_log()
        else:
            role.restart_at = now + RESTART_DELAY_S

    def _restart_log(self) -> None:
        """nats-server again at once, on its store, and the roles that read the log killed and
        started again: they make their consumers anew at the positions their files hold, while
        the consumers they had may have lost, on the dead server, entries that were on their way
        to them. Killed (SIGKILL, which they are built for), not stopped: a clean stop would
        close a connection the server's death broke, and fail on it. The front reconnects by
        itself (its appends fail meanwhile, and its callers are told)."""
        readers = [role for role in self._others if role.reads_log and role.restart_at is None]
        _kill(readers)
        self._start(self._nats, restarted="died")
        self._nats_ready()  # if it died again, the next look counts it; the readers wait for it meanwhile
        if self._signal is None:
            for role in readers:
                self._start(role, restarted="nats-server restarted")

    def _stop_all(self) -> None:
        """Every role but nats-server together, then nats-server once they are gone."""
        _stop(self._others)
        _stop([self._nats])


def _stop(roles: list[Role]) -> None:
    """Stops the roles' running processes together: SIGTERM, then SIGKILL after STOP_S."""
    running = [role for role in roles if role.process is not None and role.process.poll() is None]
    for role in running:
        assert role.process is not None
        with contextlib.suppress(ProcessLookupError):
            role.process.terminate()
    deadline = time.monotonic() + STOP_S
    for role in running:
        assert role.process is not None
        try:
            role.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("role_killed", role=role.name, pid=role.process.pid, after_s=STOP_S)
            role.process.kill()
            role.process.wait()


def _kill(roles: list[Role]) -> None:
    """SIGKILL to the roles' running processes, and waits for them."""
    for role in roles:
        if role.process is not None and role.process.poll() is None:
            role.process.kill()
            role.process.wait()


def _child_setup(parent: int) -> Callable[[], None]:
    """What a child runs before its program: on Linux, SIGTERM when this command dies, even by
    SIGKILL (no role is left running on its own, holding its ports and files); a child whose
    parent died before that is set exits at once."""
    libc = _libc()  # loaded here: the child, between fork and exec, only calls it

    def setup() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return setup


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, for prctl(2): Linux only."""
    return ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
