"""The server's Prometheus metrics, one registry per server (tests run several in one process).

Counters and histograms are updated where things happen (calls, messages, ticks, write groups);
backlogs and sizes are read from the engine and the database when `/metrics` is scraped (on a
worker thread, never on the event loop), so the hot paths pay at most a counter increment.
"""

from __future__ import annotations

import bisect
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from audiences_server.store import backlogs, evaluation
from audiences_server.store.db import Readers

# Call latencies from a fraction of a millisecond (a profile read) to seconds (a large batch).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A tick takes milliseconds when little changed and seconds during a large backfill.
_TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TICK_PROFILE_BUCKETS = (0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
# The writer takes at most 256 jobs per group (store.writer.Writer's max_group).
_GROUP_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_GROUP_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class TickFacts(Protocol):
    """What the metrics read of a finished tick (engine.evaluator.TickReport)."""

    @property
    def duration_ms(self) -> float: ...

    @property
    def profiles_evaluated(self) -> int: ...

    @property
    def values_changed(self) -> int: ...


@dataclass(frozen=True)
class Sources:
    """Where the scrape-time values come from."""

    readers: Readers
    db: Path
    writer_depth: Callable[[], int]  # jobs queued for the writer
    ingest_waiting: Callable[[], int]  # tracking calls queued for the writer, not yet committed
    now_ms: Callable[[], int]  # the evaluator's clock (manual in tests), for due times


class Metrics:
    """The metrics of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._call_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._calls = Counter("audiences_calls", "Calls answered, by transport, method and code",
                              ("transport", "method", "code"), registry=self.registry)
        self._latency = Histogram("audiences_call_duration_seconds", "Time to answer a call",
                                  ("transport", "method"), buckets=_LATENCY_BUCKETS, registry=self.registry)
        self._messages = Counter("audiences_messages", "Tracking calls received, by outcome and reason",
                                 ("outcome", "reason"), registry=self.registry)
        self._tick_seconds = Histogram("audiences_tick_duration_seconds", "Time an evaluator tick took",
                                       buckets=_TICK_BUCKETS, registry=self.registry)
        self._tick_profiles = Histogram("audiences_tick_profiles", "Profiles evaluated by a tick",
                                        buckets=_TICK_PROFILE_BUCKETS, registry=self.registry)
        self._values_changed = Counter("audiences_values_changed", "Computed values changed by ticks",
                                       registry=self.registry)
        self._group_size = OneThreadHistogram(_GROUP_SIZE_BUCKETS)
        self._group_seconds = OneThreadHistogram(_GROUP_SECONDS_BUCKETS)
        self.registry.register(_WriterGroups(self._group_size, self._group_seconds))

    def observe_call(self, transport: str, method: str, code: str, seconds: float) -> None:
        """Counts one finished call (gRPC or HTTP) and its latency."""
        key = (transport, method, code)
        children = self._call_children.get(key)
        if children is None:
            # `labels()` takes a lock and builds its key on every call: paid once per series here.
            children = self._call_children[key] = (self._calls.labels(*key), self._latency.labels(transport, method))
        children[0].inc()
        children[1].observe(seconds)

    def count_messages(self, outcome: str, reason: str, count: int) -> None:
        """Counts tracking calls of one outcome: accepted, duplicate, or rejected with its reason code."""
        self._messages.labels(outcome, reason).inc(count)

    def observe_tick(self, tick: TickFacts) -> None:
        """Records one finished evaluator tick."""
        self._tick_seconds.observe(tick.duration_ms / 1000)
        self._tick_profiles.observe(tick.profiles_evaluated)
        self._values_changed.inc(tick.values_changed)

    def observe_group(self, size: int, seconds: float) -> None:
        """Records one committed write group; called on the writer thread only (no lock taken)."""
        self._group_size.observe(size)
        self._group_seconds.observe(seconds)

    def watch(self, sources: Sources) -> None:
        """Reads backlogs and sizes from these sources at every scrape."""
        self.registry.register(_Backlogs(sources))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class OneThreadHistogram:
    """A histogram that only one thread observes into, so without a lock: a list increment and
    an addition, for the writer's thousands of groups per second. Read at scrape time."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is above every bound (+Inf)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Counts a value in the first bucket whose upper bound holds it (`le`, as Prometheus does)."""
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The histogram as a metric family, cumulative as Prometheus wants it."""
        cumulative = list(itertools.accumulate(list(self._counts)))
        edges = [_bound(b) for b in self._bounds] + ["+Inf"]
        return HistogramMetricFamily(name, documentation, buckets=list(zip(edges, cumulative, strict=True)),
                                     sum_value=self._sum)


class _WriterGroups(Collector):
    """The writer's group histograms."""

    def __init__(self, size: OneThreadHistogram, seconds: OneThreadHistogram) -> None:
        self._size = size
        self._seconds = seconds

    def collect(self) -> Iterator[Metric]:
        yield self._size.family("audiences_writer_group_size", "Write jobs committed together in one transaction")
        yield self._seconds.family("audiences_writer_group_duration_seconds",
                                   "Time from a group's BEGIN to its COMMIT, fsync included")


class _Backlogs(Collector):
    """What waits, read when scraped: queues in memory, backlogs in the database, file sizes."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def describe(self) -> Iterable[Metric]:
        # Registering asks for the names; without this it would read the database to learn them.
        return self._families()

    def collect(self) -> Iterator[Metric]:
        writer, waiting, touched, due, due_lag, backfilling, pending, dead, lag, size = self._families()
        source = self._sources
        writer.add_metric([], source.writer_depth())
        waiting.add_metric([], source.ingest_waiting())
        # Each read on its own, no transaction around them: a pool thread's connection may be
        # inside a stream's read snapshot (ExportAudience), where BEGIN would fail.
        conn = source.readers.get()
        touched.add_metric([], evaluation.pending_profiles(conn))
        due.add_metric([], backlogs.due_waiting(conn, source.now_ms()))
        due_lag.add_metric([], backlogs.due_lag_ms(conn, source.now_ms()) / 1000)
        backfilling.add_metric([], len(evaluation.backfilling(conn)))
        queues = backlogs.destination_backlogs(conn)
        now_ms = time.time_ns() // 1_000_000  # deliveries are stamped on the wall clock
        for queue in queues:
            labels = [queue.space, queue.key, queue.kind]
            pending.add_metric(labels, queue.waiting)
            dead.add_metric(labels, queue.dead)
            lag.add_metric(labels, 0 if queue.oldest_ms is None else max(0, now_ms - queue.oldest_ms) / 1000)
        size.add_metric(["main"], _file_bytes(source.db))
        size.add_metric(["wal"], _file_bytes(Path(f"{source.db}-wal")))
        yield from (writer, waiting, touched, due, due_lag, backfilling, pending, dead, lag, size)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        destination = ["space", "destination", "kind"]
        return (
            GaugeMetricFamily("audiences_writer_queue_depth", "Write jobs waiting for the writer thread"),
            GaugeMetricFamily("audiences_ingest_waiting_calls",
                              "Tracking calls accepted for the writer, not committed yet"),
            GaugeMetricFamily("audiences_evaluator_touched_profiles",
                              "Profiles whose data changed since the evaluator last took them"),
            GaugeMetricFamily("audiences_evaluator_due_waiting",
                              "(Definition, profile) pairs whose next change time has come, not yet evaluated"),
            GaugeMetricFamily("audiences_evaluator_due_lag_seconds",
                              "How late the oldest waiting due (definition, profile) pair is (0 when none waits)"),
            GaugeMetricFamily("audiences_evaluator_backfilling_definitions", "Definitions being backfilled"),
            GaugeMetricFamily("audiences_delivery_pending", "Changes queued for a destination, not delivered or read",
                              labels=destination),
            GaugeMetricFamily("audiences_delivery_dead_letters", "Deliveries parked as dead letters",
                              labels=destination),
            GaugeMetricFamily("audiences_delivery_lag_seconds",
                              "Age of the oldest change queued for a destination and not parked (0 when none)",
                              labels=destination),
            GaugeMetricFamily("audiences_database_bytes", "Size of the database files", labels=["file"]),
        )


def _bound(value: float) -> str:
    """A bucket bound as Prometheus' own histograms write it (`1.0`, `0.005`)."""
    return repr(float(value))


def _file_bytes(path: Path) -> int:
    """A file's size, 0 when it does not exist (no WAL between a checkpoint and the next write)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
