"""The engine: owns the store and the clock, and offers the use cases to the servicers."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from audiences_server.engine.auth import Auth
from audiences_server.engine.clock import Clock, ManualClock
from audiences_server.engine.computations import Computations
from audiences_server.engine.deletion import Deletions
from audiences_server.engine.evaluator import Evaluator
from audiences_server.engine.explain import Explainer
from audiences_server.engine.history import History
from audiences_server.engine.identity_admin import IdentityAdmin
from audiences_server.engine.ingest import Ingest
from audiences_server.engine.lifecycle import Lifecycle
from audiences_server.engine.page_tokens import PageTokens
from audiences_server.engine.profile_reads import ProfileReads, ProfileSource
from audiences_server.engine.retention import Retention
from audiences_server.engine.scan_ahead import ScanAhead
from audiences_server.engine.sync.feed import Feed
from audiences_server.engine.sync.service import Sync
from audiences_server.engine.versions import Versions
from audiences_server.errors import FailedPrecondition, FieldViolation, InvalidArgument
from audiences_server.metrics import Metrics, Sources
from audiences_server.settings import Settings
from audiences_server.store import backlogs, evaluation
from audiences_server.store import clock as clock_store
from audiences_server.store.db import DatabaseGone, Readers
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.migrations import prepare
from audiences_server.store.spaces import server_key
from audiences_server.store.writer import Writer

if TYPE_CHECKING:
    from audiences_server.cluster.feeds import ClusterSync

log = structlog.get_logger(__name__)

DEFAULT_SPACE = "default"


# The last millisecond a protobuf Timestamp can hold.
MAX_TIMESTAMP_MS = 253_402_300_799_999


class Engine:
    """Everything behind the gRPC services, for one database file."""

    def __init__(self, settings: Settings, *, saved_clock: bool = False) -> None:
        """`saved_clock`: for a command run beside the server on its file (`audiences-server
        tokens …`), whose time must be the server's: on a database a server ran on with
        --manual-clock, the manual clock's saved time (read, never moved or saved), else the
        system clock. Without it, the clock is as the settings say."""
        self.settings = settings
        # Where this start wrote the bootstrap tokens (`bootstrap`), if it did.
        self.credentials_written: Path | None = None
        self.metrics = Metrics()
        if settings.clock_start is not None and not settings.manual_clock:
            raise ValueError("--clock-start sets the manual clock: it needs --manual-clock")
        prepare(settings.db, settings.synchronous, Clock().now_ms())
        self.writer = Writer(settings.db, synchronous=settings.synchronous, on_group=self.metrics.observe_group)
        self.readers = Readers(settings.db, settings.synchronous)
        self.clock: Clock = (self._manual_clock() if settings.manual_clock
                             else self._saved_clock() if saved_clock else Clock())
        self.auth = Auth(self.writer, self.readers, self.clock.now_ms)
        self.ingest = Ingest(self.writer, self.clock)
        # A cluster's front (cluster/control.py): told of every manual clock move, and asked
        # before every RPC whether the front serves it (raises when it does not).
        self.on_clock_set: Callable[[int], object] | None = None
        self.method_gate: Callable[[str], None] | None = None
        # A front given the shards' read endpoints (cluster/reads.py): profile reads by RPC name,
        # and definitions' rows with their status and size over every shard.
        self.profile_router: Callable[[str, Any], Any] | None = None
        self.cluster_rows: Callable[[list[ComputationRow]], list[ComputationRow]] | None = None
        # Change feeds and dead letters on a front: the shards' own, merged (cluster/feeds.py's ClusterSync).
        self.cluster_sync: ClusterSync | None = None
        self.evaluator = Evaluator(self.writer, self.readers, self.clock, settings.tick_interval_ms,
                                   settings.history_retention_days * 86_400_000, settings.tick_budget_ms,
                                   settings.tick_slice)
        if settings.backfill_scan_ahead:
            self.evaluator.scan_ahead = ScanAhead(settings.db)
        self.ingest.listeners.append(self.evaluator.wake)
        self.computations = Computations(self.writer, self.readers, self.clock, self.evaluator)
        self.page_tokens = PageTokens(server_key(self.readers.get(), "page_token"))
        retention_ms = settings.history_retention_days * 86_400_000
        self.explainer = Explainer(self.readers, self.clock, retention_ms)
        self.history = History(self.readers, self.clock, self.page_tokens, retention_ms)
        self.versions = Versions(self.writer, self.readers, self.clock, self.page_tokens)
        # Replaced on a cluster's front by the shards' reads (cluster/reads.py, ShardProfileReads).
        self.profile_reads: ProfileSource = ProfileReads(self.readers, self.page_tokens)
        self.identity_admin = IdentityAdmin(self.writer, self.readers, self.clock, self.page_tokens)
        self.sync = Sync(self.writer, self.readers)
        self.feed = Feed(self.writer, self.readers, self.sync)
        self.evaluator.on_change.append(self.sync.wake)
        self.lifecycle = Lifecycle(
            Deletions(self.writer, self.readers, self.clock, self.evaluator, self.ingest.suppressions),
            Retention(self.writer, self.readers, self.clock), self.auth)
        self.lifecycle.deletions.on_exits += [self.sync.wake, self.lifecycle.wake]
        self._watch()

    def _watch(self) -> None:
        """Feeds the metrics: outcomes and ticks as they happen, backlogs when scraped."""
        self.ingest.on_messages = self.metrics.count_messages
        self.evaluator.on_tick.append(self.metrics.observe_tick)
        self.metrics.watch(Sources(self.readers, self.settings.db, lambda: self.writer.depth,
                                   lambda: self.ingest.waiting, self.clock.now_ms))

    def _manual_clock(self) -> ManualClock:
        """The manual clock, at the time it had when the server last ran on this database, or, the
        first time, at `--clock-start` (or the wall clock); every time it is set is saved."""
        saved = clock_store.saved_time(self.readers.get())
        start = saved if saved is not None else self.settings.clock_start
        clock = ManualClock(start, save=self._save_clock)
        if saved is None:
            self._save_clock(clock.now_ms())
        return clock

    def _saved_clock(self) -> Clock:
        """The manual clock at its saved time, standing still, if a server ran on one here; else
        the system clock."""
        saved = clock_store.saved_time(self.readers.get())
        return Clock() if saved is None else ManualClock(saved)

    def _save_clock(self, now_ms: int) -> None:
        self.writer.run(lambda conn: clock_store.save_time(conn, now_ms), keeps_events=True)

    def bootstrap(self) -> Path | None:
        """On an empty database, creates space `default` with one token per scope (and, after a
        first start interrupted before its file was written, issues them again).

        The tokens go to a file only its owner can read, next to the database, so that a
        newcomer can use the CLI at once. A file already there (another database's bootstrap
        tokens, their only copy in clear) is never overwritten: this database's go beside it,
        under a name with the database's (`credentials_beside`). Returns the file's path, or
        None when the database already had a space.
        """
        tokens = self.auth.bootstrap_tokens(DEFAULT_SPACE, self.clock.now_ms())
        if tokens is None:
            return None
        wanted = self.settings.credentials_path
        text = json.dumps({"space": DEFAULT_SPACE, "tokens": tokens}, indent=2) + "\n"
        path = next(candidate for candidate in credentials_beside(wanted, self.settings.db)
                    if create_private(candidate, text))
        if path != wanted:
            log.warning("credentials_file_exists", path=str(wanted.resolve()), written=str(path.resolve()),
                        detail="left as it was (another database's tokens); this database's are in `written`")
        log.info("credentials_written", path=str(path.resolve()), space=DEFAULT_SPACE)
        self.auth.settle_bootstrap()
        self.credentials_written = path
        return path

    def set_clock(self, to_ms: int | None, advance_ms: int | None) -> tuple[int, int]:
        """Moves the manual clock forwards (tests only); returns the old and new times."""
        if not isinstance(self.clock, ManualClock):
            raise FailedPrecondition("the server runs on the system clock; start it with --manual-clock to set it",
                                     reason="CLOCK_NOT_MANUAL")
        previous = self.clock.now_ms()
        target = to_ms if to_ms is not None else previous + (advance_ms or 0)
        if target < previous:
            raise InvalidArgument("the clock only moves forwards", reason="CLOCK_BACKWARDS",
                                  violations=[FieldViolation("target", "before the current clock time")])
        if target > MAX_TIMESTAMP_MS:
            raise InvalidArgument("the clock cannot move past 9999-12-31T23:59:59.999Z", reason="TIMESTAMP_INVALID",
                                  violations=[FieldViolation("target", "out of range")])
        self.clock.set(target)
        self.lifecycle.sweep()  # retention follows the clock
        if self.on_clock_set is not None:
            self.on_clock_set(target)
        return previous, target

    def evaluator_status(self, space_id: int) -> dict[str, Any]:
        """What the evaluator has waiting for a space: its backlog (touched profiles, due pairs
        and how late the oldest is) and its backfills (another space's are not told)."""
        now = self.clock.now_ms()
        with self.readers.snapshot() as conn:
            return {"pending_profiles": evaluation.pending_profiles(conn, space_id),
                    "next_due_ms": backlogs.oldest_due(conn, space_id),
                    "backfilling": evaluation.backfilling_count(conn, space_id),
                    "due_waiting": backlogs.due_waiting(conn, now, space_id),
                    "due_lag_ms": backlogs.due_lag_ms(conn, now, space_id)}

    def profile_refs(self, profile_ids: list[int]) -> dict[int, tuple[str, str, list[tuple[str, str]]]]:
        """Public ids, collections and identifiers of profiles."""
        return evaluation.profile_refs(self.readers.get(), profile_ids)

    def custom_traits(self, profile_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The visible custom traits of profiles."""
        return evaluation.custom_traits(self.readers.get(), profile_ids)

    def start(self) -> None:
        """Starts background work (the evaluator loop, the delivery workers)."""
        self.evaluator.start()
        self.sync.start()
        self.lifecycle.start()

    def close(self) -> None:
        """Stops background work, finishes queued writes and closes every connection."""
        self.lifecycle.stop()
        self.evaluator.stop()
        self.sync.stop()
        try:
            self.auth.flush_usage()
        except DatabaseGone:  # nothing can be stored any more, tokens' last use included: stop all the same
            log.error("usage_not_flushed", reason="DATABASE_GONE")
        self.writer.close()
        self.readers.close()


def credentials_beside(path: Path, db: Path) -> Iterator[Path]:
    """Where bootstrap tokens may go, in order: `path`, then beside it with the database file's
    name (`credentials.json`, `credentials-audiences.json`, `credentials-audiences-2.json`, …)."""
    yield path
    for n in itertools.count(1):
        yield path.with_name(f"{path.stem}-{db.stem}{'' if n == 1 else f'-{n}'}{path.suffix}")


def create_private(path: Path, text: str) -> bool:
    """Writes a new file readable by its owner only (mode 0600, from the start), or returns False,
    writing nothing, when something is at `path` already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return True
