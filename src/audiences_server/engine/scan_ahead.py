"""A backfill's next chunk scanned in a second process while the writer evaluates this one.

A backfill job of compiled user definitions spends about half its time in the scan of the chunk's
events (`plans.scan_together`: the SQL and the decoding of its rows), and the rest evaluating
the tops of the definitions, diffing and writing. Both ran on the writer thread, one after the
other, on one core of two. Here the job asks a process of its own to scan the *next* chunk, on a
read-only connection, and evaluates its own chunk meanwhile; the next job takes that scan
instead of making it.

A scan made ahead is only taken when it is what the job would have scanned itself:

- the same plans (the same definitions' texts, kinds, collections and floors) over the same
  profiles;
- the same events: the scan reads nothing but `events`, and only jobs the writer counts in its
  `generation` can change them (ingest, merges, deletions, retention: every job but the
  evaluator's own and the manual clock's). The scan's snapshot starts after the job that asked
  for it began, and no other job can commit while that job runs, so the snapshot holds every
  change counted up to the generation the job saw; if the generation has moved when the next
  job runs, the scan is thrown away;
- the same time, or a later one that changes nothing: each profile's part of a scan comes with
  its next change time (a window's edge passing an event). A profile whose next change time has
  come by the job's time is left out, and the job scans it again itself; the others' aggregates
  are the same at both times. A clock set back discards the scan.

For a plan that reads no trait, the process also works out each scanned profile's value from
its aggregates (`Plan.result`: a compiled top reads the aggregates and traits only, never the
clock), so the job only diffs and writes it.

Anything else (a definition edited, a chunk that came out different, the process gone or slow
past WAIT_S) and the job scans in-process as before: the process only ever saves time. It starts
when a backfill has MIN_PROFILES profiles or more to go and stops once no backfill has been left
for IDLE_S.

A big live job lends the process part of its own scan (`lend`, `collect`): a tick after a
thousand new orders scans the events of the profiles touched for every definition reading them,
in one query per set of event names, and decodes them: about 40% of the job. The process scans
the last 45% of the profiles while the job scans the others, on the other core, and the job
takes its answer as if it had scanned them itself. Nothing can commit while the job runs, and the
process's snapshot starts after the job did, so it reads the same events at the same time. Such
a job starts the process (and keeps it while big jobs come), and lends once it is ready.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from audiences_server.store.db import connect
from audiences_server.store.sql.plans import AccountPlan, Plan, Shared, scan_together

log = structlog.get_logger(__name__)

# A backfill with fewer profiles than this to go is scanned in-process: the process costs about
# half a second to start, and a chunk or two gain nothing from it.
MIN_PROFILES = 5_000
# The longest a job waits for a scan it asked for before scanning itself (and giving up on the
# process for good): a scan made ahead takes about as long as the job that waits for it.
WAIT_S = 60.0
# How long the process is kept with no backfill to scan for (definitions created one after the
# other come with gaps between their backfills), before it stops.
IDLE_S = 30.0
# After this many scans thrown away in a row, one chunk in PAUSE is scanned ahead.
MISSES = 2
PAUSE = 8

# What the process is told of each plan: enough to compile it again, the same plan: text, kind,
# collection, event floor, and for an account audience's operand, its place among them (None:
# the definition's own plan).
Spec = tuple[str, str, str, int | None, int | None]
# What it answers per plan: its part of the scan, and the values worked out from it (None: the
# plan reads traits, which the job reads).
Part = tuple[Shared, dict[int, Any] | None]


@dataclass(frozen=True)
class _Asked:
    token: int
    specs: tuple[Spec, ...]
    profile_ids: tuple[int, ...]
    now_ms: int
    generation: int


class ScanAhead:
    """The process that scans a backfill's next chunk, and the one scan it has been asked for."""

    def __init__(self, path: Path, min_profiles: int = MIN_PROFILES, idle_s: float = IDLE_S) -> None:
        self._path = path
        self.min_profiles = min_profiles
        self.idle_s = idle_s
        self._idle_since: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: Connection | None = None
        self._asked: _Asked | None = None
        # A scan asked for and thrown away before its answer came: read and dropped before the
        # next is asked for (the process scans one at a time), never waited for.
        self._dropped: int | None = None
        self._tokens = itertools.count(1)
        self._broken = False
        # Whether the process has said it is ready (connected to the database): a live job lends
        # it nothing before, rather than wait for it to start.
        self._ready = False
        # Scans thrown away in a row, and chunks not asked for since (see `ask`).
        self._misses = 0
        self._skipped = 0
        # Scans taken, scans made but thrown away, and live jobs' scans lent and collected (a
        # test's and the logs' view of it).
        self.taken = 0
        self.discarded = 0
        self.lent = 0

    @property
    def running(self) -> bool:
        """Whether the process is up."""
        return self._process is not None

    def ask(self, specs: Sequence[Spec], profile_ids: Sequence[int], now_ms: int, generation: int) -> None:
        """Has the process start scanning these plans over these profiles at `now_ms`, as the
        writer's state stands at `generation` (called on the writer thread, inside a job)."""
        if self._broken:
            return
        self._idle_since = None
        if self._misses >= MISSES and self._skipped < PAUSE:
            # Its last scans were thrown away (events coming in as the backfill runs): one chunk in
            # PAUSE is scanned ahead until one is taken again, not every chunk on a core that
            # ingest needs.
            self._skipped += 1
            return
        self._skipped = 0
        if self._asked is not None:  # asked for and never taken: dropped like one thrown away
            self._dropped, self._asked = self._asked.token, None
        if self._dropped is not None:
            if self._pipe is not None and not self._pipe.poll(0):
                return  # still scanning what was thrown away: this chunk is scanned by its job
            self._receive(self._dropped)
            self._dropped = None
        if self._pipe is None and not self._start():
            return
        assert self._pipe is not None
        token = next(self._tokens)
        ids = list(profile_ids)
        try:
            self._pipe.send((token, list(specs), [ids] * len(specs), now_ms))  # one list, pickled once
        except OSError as failure:
            self._give_up("send", failure)
            return
        self._asked = _Asked(token, tuple(specs), tuple(profile_ids), now_ms, generation)

    def lend(self, specs: Sequence[Spec], candidates: Sequence[Sequence[int]], now_ms: int) -> int | None:
        """Has the process scan these plans, each over its candidates, at `now_ms`, for the job
        running now (on the writer thread, which then `collect`s it within the same job); the
        token to collect, or None when the process is not ready or busy with a backfill's scan
        (then the job scans everything itself). Starts the process if it is not up."""
        if self._broken:
            return None
        self._idle_since = None
        if self._pipe is None:
            self._start()
            return None
        if self._asked is not None or self._dropped is not None or not self._is_ready():
            return None
        token = next(self._tokens)
        try:
            self._pipe.send((token, list(specs), [list(ids) for ids in candidates], now_ms))
        except OSError as failure:
            self._give_up("send", failure)
            return None
        return token

    def _is_ready(self) -> bool:
        """Whether the process has said it is ready (read now if it has said so since)."""
        try:
            while not self._ready and self._pipe is not None and self._pipe.poll(0):
                answered, _ = self._pipe.recv()
                self._ready = answered == 0
        except (OSError, EOFError, pickle.UnpicklingError) as failure:
            self._give_up("receive", failure)
        return self._ready

    def collect(self, token: int) -> list[Part] | None:
        """The answer to a scan lent (`lend`), per plan, or None (the process failed or went away:
        the job scans those profiles itself)."""
        found = self._receive(token)
        if found is not None:
            self.lent += 1
        return found

    def take(self, specs: Sequence[Spec], profile_ids: Sequence[int], now_ms: int, generation: int
             ) -> list[Part] | None:
        """The scan asked for, per plan, if it is what these plans would scan over these profiles
        at `now_ms` with the writer at `generation` (see the module's docstring); None if not,
        or if none was asked for."""
        asked, self._asked = self._asked, None
        if asked is None:
            return None
        if (asked.specs != tuple(specs) or asked.profile_ids != tuple(profile_ids)
                or asked.generation != generation or now_ms < asked.now_ms):
            # Thrown away without waiting for it: the job scans now, while the process finishes.
            log.debug("scan_ahead_discarded", plans=asked.specs != tuple(specs),
                      profiles=asked.profile_ids != tuple(profile_ids), generation=generation - asked.generation,
                      earlier=now_ms < asked.now_ms)
            self._dropped = asked.token
            self.discarded += 1
            self._misses += 1
            return None
        started = time.perf_counter()
        found = self._receive(asked.token)
        if found is None:
            return None
        self.taken += 1
        self._misses = 0
        log.debug("scan_ahead_taken", plans=len(specs), profiles=len(profile_ids),
                  waited_ms=round((time.perf_counter() - started) * 1000, 2))
        return [_valid_at(part, now_ms) for part in found]

    def rest(self) -> None:
        """Says that no backfill is waiting: the process stops once that has lasted `idle_s`."""
        if self._process is None:
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since >= self.idle_s:
            log.info("scan_ahead_idle", taken=self.taken, discarded=self.discarded, lent=self.lent)
            self.close()

    def close(self) -> None:
        """Stops the process (a scan asked for and not taken is dropped)."""
        self._idle_since = None
        self._asked = self._dropped = None
        self._ready = False
        pipe, process = self._pipe, self._process
        self._pipe, self._process = None, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.send(None)
            pipe.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _start(self) -> bool:
        mine, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "audiences_server.engine.scan_ahead", "--fd", str(theirs.fileno()),
                 "--db", str(self._path)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )
        except OSError as failure:
            mine.close()
            self._give_up("start", failure)
            return False
        finally:
            theirs.close()
        self._pipe = Connection(mine.detach())
        log.info("scan_ahead_started", pid=self._process.pid)
        return True

    def _receive(self, token: int) -> list[Part] | None:
        """The answer to `token` (answers to earlier ones are dropped), or None."""
        pipe = self._pipe
        if pipe is None:
            return None
        try:
            while True:
                if not pipe.poll(WAIT_S):
                    self._give_up("wait", TimeoutError(f"no answer in {WAIT_S:g} s"))
                    return None
                answered, found = pipe.recv()
                if answered == token:
                    break
                self._ready = self._ready or answered == 0  # the process's word that it is ready
        except (OSError, EOFError, pickle.UnpicklingError) as failure:
            self._give_up("receive", failure)
            return None
        if isinstance(found, str):
            log.warning("scan_ahead_failed", error=found)
            self.discarded += 1
            return None
        result: list[Part] = found
        return result

    def _give_up(self, step: str, failure: BaseException) -> None:
        """The process is stopped and not started again: every scan is made in-process."""
        log.error("scan_ahead_stopped", step=step, error=f"{type(failure).__name__}: {failure}")
        self._broken = True
        if self._process is not None:
            self._process.kill()
        self.close()


def _valid_at(part: Part, now_ms: int) -> Part:
    """A plan's part of a scan made at an earlier time, as it stands at `now_ms`: the profiles
    whose next change time has come by then are left out (their caller scans them again); the
    others' aggregates, and so their values, have not changed since."""
    (covered, found), values = part
    stale = {pid for pid, (_, due) in found.items() if due is not None and due <= now_ms}
    if not stale:
        return part
    kept = {pid: held for pid, held in found.items() if pid not in stale}
    return (frozenset(covered) - stale, kept), None if values is None else {
        pid: value for pid, value in values.items() if pid not in stale}


def _serve(pipe: Connection, path: str) -> None:
    """The process: says it is ready (token 0), then answers each (token, specs, each plan's
    candidates, time) with the plans' scan, each on a snapshot of its own, until told None or
    the writer's end of the pipe closes."""
    from audiences_server.engine.registry import compiled

    conn = connect(path, readonly=True)
    try:
        pipe.send((0, "ready"))
    except OSError:
        return
    while True:
        try:
            message = pipe.recv()
        except EOFError:
            return
        if message is None:
            return
        token, specs, candidates, now_ms = message
        try:
            plans: list[Plan] = []
            alone: list[bool] = []  # whether the plan reads no trait
            for spec in specs:
                text, kind, collection, floor, operand = spec
                definition = compiled(text, kind, collection, floor)
                plan = definition.plan
                if operand is not None and isinstance(plan, AccountPlan):
                    plan = plan.quantified[operand][1]  # its values are the job's to work out
                    alone.append(False)
                else:
                    alone.append(not definition.summary.traits)
                if not isinstance(plan, Plan) or plan.query is None:
                    raise ValueError(f"not a user plan with a query: {text!r}")
                plans.append(plan)
            conn.execute("BEGIN")
            try:
                parts = scan_together(conn, plans, candidates, now_ms)
            finally:
                conn.execute("COMMIT")
            answer: Any = [
                (part, {pid: plan.result(held[0], {}, now_ms) for pid, held in part[1].items()} if bare else None)
                for plan, part, bare in zip(plans, parts, alone, strict=True)
            ]
        except Exception as failure:  # told to the writer, which scans in-process instead
            answer = f"{type(failure).__name__}: {failure}"
        try:
            pipe.send((token, answer))
        except OSError:
            return


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="scans a backfill's next chunk for the server")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    # The server stops this process itself (an interrupt at the terminal reaches both).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(Connection(args.fd), args.db)
    os._exit(0)


if __name__ == "__main__":
    main()
