"""Live figures on a server with the real clock: freshness, sync delivery and profile reads.

A server in a child process with the system clock and the default tick interval (200 ms) gets
the synthetic shop of bench/data.py (`--users`, `--events`), stamped up to now, and:

1. Freshness (`freshness.p50`, `freshness.p99`): an audience `bench_fresh`
   (`event('Bench Signal').count() >= 1`) is connected to a `grpc_feed` destination followed
   with `WatchChanges`, and to a webhook (EVENT style, `send_track`) on a local HTTP receiver.
   A paced stream of `--rate` events/s (rate/50 events queued every 20 ms, a slot; 4 sender
   threads send what is queued with `BatchJson`, as Segment's libraries flush their queue: a
   free sender takes the calls waiting up to `--request-calls`, 100 by default, a slot's calls
   in two requests if need be, so one request per slot while the server keeps up, bigger ones
   when it answers slowly) runs for `--seconds`; in each slot one event is a `Bench Signal` of
   an existing user that has had none, which makes that profile enter. For
   each such profile: from the return of the ingest RPC that carried its signal to the record
   arriving on the feed (freshness: the change committed and observable), and to the receiver
   getting its `Audience Entered` call (`sync.latency.p50`, `sync.latency.p99`). Times are
   taken in this process with one monotonic clock; the percentiles are over every signal, the
   spread over three equal windows of the run.
2. Sync delivery throughput (`sync.webhook_list.changes_per_s`, `sync.webhook_event.changes_per_s`):
   a connection's first sync to the local receiver, from `ConnectDestination` to the receiver
   holding every member, LIST style (batches of 500, sent when full or after 100 ms instead of
   the default 1 s, so that the last one does not wait; the audience `bench_active`, users with
   a page view) and EVENT style (one request per call; `bench_fresh`'s members), `--sync-repeats`
   times each (disconnect, connect again).
3. Profile reads (`profiles.traits.p50`, `.p99`, `profiles.traits.rate`): `ListTraits` of random
   existing users (page size 50) from `--clients` (8) client threads for `--read-seconds`; and
   the same reads over HTTP, `GET …/traits?limit=50` of the Profile API with one kept-alive
   connection per thread and the body parsed (`profiles.rest.p50`, `.p99`, `profiles.rest.rate`,
   the p50 and p99 against gRPC's as baselines). The two alternate in three rounds on the same
   server, `--read-seconds` each in all. The suite takes these on the evaluator's big data set
   instead (`profile_reads`).

With `--definitions N`, N definitions of the realistic space (bench/space.py) are created first
and backfilled by the server's own ticks (`backfill.live.d<N+1>`), and stay live during the
stream: the freshness figures are then `freshness.d<N+1>.p50/p99` (`--definitions 199` with
`bench_fresh` makes the 200 of `freshness.d200`), and `ticks.d<N+1>.live` gives the tick durations
seen in the evaluator's status meanwhile (median, p99, max) and the most profiles seen waiting.

Prints figures as it goes and a table, and writes bench/results/live.json (see bench/common.py).
The client side runs in this one Python process (senders, the feed follower, the receiver),
so its own latency is part of every figure.

    python bench/live.py --seconds 5 --users 2000 --events 20000     # quick
    python bench/live.py                                             # 30 s at 1,000 events/s
    python bench/live.py --users 2000 --events 20000 --rate 500 --seconds 20 --no-reads --no-sync \
        --definitions 199                                            # 200 definitions live
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import random
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import data  # bench/data.py: a script's own folder is on sys.path
import grpc
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from common import RESULTS, figure, latency_figures, percentile, report, windows_of
from google.protobuf import duration_pb2
from space import create, realistic

from audiences_server.engine.engine import DEFAULT_SPACE
from audiences_server.testing import ServerProcess

BATCH = 500
SLOT_S = 0.02  # one slot of calls per 20 ms
SENDERS = 4
FRESH = "bench_fresh"
ACTIVE = "bench_active"
USERS = common_pb2.COLLECTION_USERS


@dataclass
class Config:
    """The scale of the live figures."""

    users: int = 20_000
    events: int = 200_000
    rate: int = 1_000
    seconds: float = 30
    sync_repeats: int = 3
    clients: int = 8
    read_seconds: float = 15
    reads: bool = True
    seed: int = 3
    # Definitions of the realistic space (bench/space.py) live beside `bench_fresh` during the
    # stream (0: none); the figures are then named for the total, e.g. `freshness.d200`.
    definitions: int = 0
    sync: bool = True
    # Paced rates tried in order for `capacity` (empty: not measured), then twice the highest met.
    capacity_rates: tuple[int, ...] = ()
    # The most calls a sender puts in one request (0: one slot per request).
    request_calls: int = 100


# ------------------------------------------------------------------ the local receivers


@dataclass
class Receiver:
    """A local HTTP server that answers 200 and notes when each call arrived, by path."""

    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    entered: dict[str, float] = field(default_factory=dict)  # userId → first `Audience Entered` of FRESH
    counts: dict[str, int] = field(default_factory=dict)  # path → calls received
    changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.note(self.path, json.loads(raw), arrived)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def note(self, path: str, body: Any, arrived: float) -> None:
        calls = body.get("batch", [body]) if isinstance(body, dict) else []
        with self.changed:
            self.counts[path] = self.counts.get(path, 0) + len(calls)
            for call in calls:
                props = call.get("properties") or {}
                if call.get("event") == "Audience Entered" and props.get("audience_key") == FRESH:
                    self.entered.setdefault(call.get("userId", ""), arrived)
            self.changed.notify_all()

    def wait_count(self, path: str, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.counts.get(path, 0) >= count, timeout)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class FeedFollower:
    """Follows a `grpc_feed` destination with `WatchChanges`; notes when each user entered `key`."""

    def __init__(self, sync: Any, meta: Any, destination: str, key: str = FRESH) -> None:
        self.key = key
        self.entered: dict[str, float] = {}
        self.records = 0
        beat = duration_pb2.Duration(seconds=1)
        request = sync_pb2.WatchChangesRequest(destination_key=destination, heartbeat_interval=beat)
        self.call = sync.WatchChanges(request, metadata=meta)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            for item in self.call:
                if not item.HasField("change"):
                    continue
                arrived = time.monotonic()
                change = item.change
                self.records += 1
                if change.change_type == sync_pb2.CHANGE_TYPE_ENTERED and change.computation.key == self.key:
                    for ext in change.external_ids:
                        if ext.type == "user_id":
                            self.entered.setdefault(ext.value, arrived)
        except grpc.RpcError as stopped:
            if stopped.code() != grpc.StatusCode.CANCELLED:
                print(f"  feed follower stopped: {stopped.code().name} {stopped.details()}", flush=True)

    def stop(self) -> None:
        self.call.cancel()
        self.thread.join(timeout=10)


# ------------------------------------------------------------------ the server


class LiveServer:
    """A server on the system clock with the stubs the figures call."""

    def __init__(self, root: Path) -> None:
        self.process = ServerProcess(root / "live" / "audiences.db")
        self.channel = grpc.insecure_channel(self.process.address, options=[("grpc.max_send_message_length", 16 << 20)])
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AudienceAdminServiceStub(self.channel)
        self.sync = sync_pb2_grpc.SyncServiceStub(self.channel)
        self.write = (("authorization", f"Bearer {self.process.tokens['write']}"),)
        self.meta = (("authorization", f"Bearer {self.process.tokens['admin']}"),)

    def stop(self) -> None:
        self.channel.close()
        self.process.stop()

    def send(self, calls: list[dict[str, Any]]) -> None:
        reply = self.ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": calls}).encode()),
                                      metadata=self.write, timeout=600)
        if reply.rejected_count or reply.duplicate_count:
            raise RuntimeError(f"{reply.rejected_count} rejected, {reply.duplicate_count} duplicates:"
                               f" {reply.results[:3]}")

    def load(self, users: int, events: int, seed: int, now_ms: int) -> None:
        started = time.perf_counter()
        calls = list(data.generate(users, events, now_ms, seed))
        with futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(self.send, [calls[i:i + BATCH] for i in range(0, len(calls), BATCH)]))
        print(f"[live] loaded {len(calls):,} calls ({users:,} users, {events:,} events) in"
              f" {time.perf_counter() - started:.1f} s", flush=True)

    def audience(self, key: str, definition: str, timeout: float = 600) -> admin_pb2.Audience:
        """Creates an audience and waits for the server's own ticks to make it LIVE."""
        message = admin_pb2.Audience(key=key, collection=USERS, definition=definition)
        self.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=message), metadata=self.meta)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.admin.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key=key),
                                           metadata=self.meta).audience
            if found.status == admin_pb2.COMPUTATION_STATUS_LIVE:
                return found
            if found.status == admin_pb2.COMPUTATION_STATUS_FAILED:
                raise RuntimeError(f"{key} failed: {found.failure.message}")
            time.sleep(0.05)
        raise TimeoutError(f"{key} not LIVE after {timeout:g} s")

    def destination(self, key: str, **config: Any) -> None:
        message = sync_pb2.Destination(key=key, **config)
        self.sync.CreateDestination(sync_pb2.CreateDestinationRequest(destination=message), metadata=self.meta)

    def connect(self, destination: str, audience: str, **options: Any) -> None:
        ref = common_pb2.ComputationRef(kind=common_pb2.COMPUTATION_KIND_AUDIENCE, collection=USERS, key=audience)
        connection = sync_pb2.Connection(destination_key=destination, computation=ref, **options)
        self.sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=connection), metadata=self.meta)

    def disconnect(self, destination: str, audience: str) -> None:
        ref = common_pb2.ComputationRef(kind=common_pb2.COMPUTATION_KIND_AUDIENCE, collection=USERS, key=audience)
        self.sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(destination_key=destination,
                                                                             computation=ref), metadata=self.meta)


def webhook(url: str, style: int, batch_size: int = 0, batch_interval_ms: int = 0) -> dict[str, Any]:
    config = sync_pb2.WebhookConfig(url=url, payload_style=style, batch_size=batch_size)
    if batch_interval_ms:
        config.batch_interval.FromMilliseconds(batch_interval_ms)
    return {"webhook": config}


# ------------------------------------------------------------------ the figures


@dataclass
class Stream:
    """What a paced stream sent: each signal user's RPC return time, the events and the rate
    achieved, and its requests (how many, their mean size, their round trip's p50 and p99)."""

    returned: dict[str, float]
    sent: int
    achieved: float
    requests: int
    request_calls_mean: float
    round_trip_p50_ms: float
    round_trip_p99_ms: float

    def fields(self) -> dict[str, Any]:
        """The requests' figures, as extra fields of a result."""
        return {"requests": self.requests, "request_calls_mean": round(self.request_calls_mean, 1),
                "round_trip_p50_ms": round(self.round_trip_p50_ms, 1),
                "round_trip_p99_ms": round(self.round_trip_p99_ms, 1)}


def paced_stream(server: LiveServer, config: Config, now_ms: int, rate: int | None = None,
                 signal: str = "Bench Signal", round_number: int = 0) -> Stream:
    """Sends `rate` (else the config's) events/s for `seconds`, a `signal` event in each slot's
    calls (each round its own events).

    The calls of each 20 ms slot join a queue at the slot's time, and `SENDERS` threads send
    what is queued as Segment's libraries do: a free sender takes the calls waiting, oldest
    first, up to `config.request_calls` in one request (a slot's calls may go in two requests),
    so that a sender behind its schedule sends bigger requests instead of falling further
    behind. A slot's signal, its last call, counts as returned when the request carrying it
    returns. With `request_calls` 0, each slot is a request of its own (the fixed-size sender
    of earlier runs, whose rate is bounded by SENDERS × slot size / request latency)."""
    rng = random.Random(config.seed)
    per_slot = max(2, round((rate or config.rate) * SLOT_S))
    slots = int(config.seconds / SLOT_S)
    signals = rng.sample(range(config.users), min(slots, config.users))
    background = [c for c in data.generate(config.users, slots * per_slot, now_ms, config.seed + 1000 + round_number)
                  if c["type"] in {"track", "page"}]
    for call in background:
        del call["timestamp"]  # stamped on arrival, as live traffic is
    batches = []
    for slot, index in enumerate(signals):
        batch = background[slot * (per_slot - 1):(slot + 1) * (per_slot - 1)]
        batch.append({"type": "track", "messageId": f"{signal}-{slot}", "userId": data.user_id(index),
                      "event": signal, "properties": {"slot": slot}})
        batches.append(batch)
    returned: dict[str, float] = {}
    waited: list[float] = []  # from a slot's time to its first call leaving
    took: list[float] = []  # each request's round trip
    sizes: list[int] = []
    # The calls queued and not taken yet: (slot's time, call, whether it is the slot's first,
    # whether it is its last: the signal).
    pending: collections.deque[tuple[float, dict[str, Any], bool, bool]] = collections.deque()
    arrived = threading.Condition()
    ended = False
    limit = config.request_calls or per_slot  # 0: a slot (per_slot calls) a request

    def sender() -> None:
        while True:
            with arrived:
                while not pending and not ended:
                    arrived.wait()
                if not pending:
                    return
                taken = [pending.popleft() for _ in range(min(limit, len(pending)))]
            left = time.monotonic()
            waited.extend(left - due for due, _, first, _ in taken if first)
            server.send([call for _, call, _, _ in taken])
            back = time.monotonic()
            took.append(back - left)
            sizes.append(len(taken))
            for _, call, _, last in taken:
                if last:
                    returned[call["userId"]] = back

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    for slot, batch in enumerate(batches):
        due = started + slot * SLOT_S
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        with arrived:
            pending.extend((due, call, i == 0, i == len(batch) - 1) for i, call in enumerate(batch))
            arrived.notify_all()
    with arrived:
        ended = True
        arrived.notify_all()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    sent = sum(len(b) for b in batches)
    late = sum(1 for x in waited if x > SLOT_S)
    stream = Stream(returned, sent, sent / elapsed, len(sizes), sent / max(1, len(sizes)),
                    percentile(took, 50) * 1000, percentile(took, 99) * 1000)
    print(f"  sender: {stream.requests:,} requests of {stream.request_calls_mean:,.0f} calls on average"
          f" (at most {max(sizes, default=0):,}), round trip p50 {stream.round_trip_p50_ms:,.0f} ms,"
          f" p99 {stream.round_trip_p99_ms:,.0f} ms; {late:,} of {len(batches):,} slots left more than"
          f" one slot late", flush=True)
    return stream


def realistic_space(server: LiveServer, count: int, timeout: float = 1800) -> float:
    """Creates `count` definitions of bench/space.py and waits for the server's own ticks to make
    them all LIVE; returns the seconds that took."""
    started = time.monotonic()
    for definition in realistic(count):
        create(server.admin, server.meta, definition)
    while time.monotonic() - started < timeout:
        status = server.admin.GetEvaluatorStatus(admin_pb2.GetEvaluatorStatusRequest(), metadata=server.meta)
        if status.backfilling_count == 0:
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    print(f"[live] {count} definitions of the realistic space LIVE after {seconds:.1f} s", flush=True)
    return seconds


class TickWatcher:
    """Polls the evaluator's status while the stream runs: each tick's duration, and the most
    profiles seen waiting."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ticks: dict[tuple[int, int], float] = {}
        self.most_waiting = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        request = admin_pb2.GetEvaluatorStatusRequest()
        while not self._stop.wait(0.05):
            status = self.server.admin.GetEvaluatorStatus(request, metadata=self.server.meta)
            self.most_waiting = max(self.most_waiting, status.pending_profiles)
            if status.HasField("last_tick"):
                tick = status.last_tick
                key = (tick.tick_time.ToMilliseconds(), tick.duration.ToNanoseconds())
                self.ticks[key] = tick.duration.ToNanoseconds() / 1e6

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return list(self.ticks.values())


def freshness(server: LiveServer, receiver: Receiver, config: Config, now_ms: int) -> list[dict[str, Any]]:
    server.audience(FRESH, "event('Bench Signal').count() >= 1")
    server.destination("bench_feed", grpc_feed=sync_pb2.GrpcFeedConfig())
    server.connect("bench_feed", FRESH)
    server.destination("bench_hook", **webhook(receiver.url + "/fresh", sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT))
    server.connect("bench_hook", FRESH, send_track=True)
    follower = FeedFollower(server.sync, server.meta, "bench_feed")
    time.sleep(1)  # both connections finish their (empty) first sync
    print(f"[live] paced stream: {config.rate:,} events/s for {config.seconds:g} s, one signal per"
          f" {SLOT_S * 1000:.0f} ms slot", flush=True)
    watcher = TickWatcher(server)
    stream = paced_stream(server, config, now_ms)
    returned, sent, achieved = stream.returned, stream.sent, stream.achieved
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(follower.entered) < len(returned)
                                           or len(receiver.entered) < len(returned)):
        time.sleep(0.05)
    follower.stop()
    ticks = watcher.stop()
    results = []
    total = f".d{config.definitions + 1}" if config.definitions else ""
    scale = (f"{achieved:,.0f} events/s for {config.seconds:g} s, {len(returned)} entries, tick interval 200 ms;"
             f" {config.users:,} users / {config.events:,} events"
             + (f"; {config.definitions + 1} definitions live" if config.definitions else ""))
    if ticks:
        results.append(figure(f"ticks{total}.live", f"tick durations seen in the evaluator's status while the"
                              f" stream ran and until every entry was seen (median; p99 and max beside); {scale}",
                              ticks, "ms", 1, p99=round(percentile(ticks, 99), 1), max=round(max(ticks), 1),
                              most_waiting=watcher.most_waiting))
        print(f"  ticks: {len(ticks)} seen, median {percentile(ticks, 50):,.0f} ms, p99 {percentile(ticks, 99):,.0f}"
              f" ms, max {max(ticks):,.0f} ms; at most {watcher.most_waiting:,} profiles waiting", flush=True)
    for name, label, seen in (
        (f"freshness{total}", f"ingest RPC return → entry on the WatchChanges feed; {scale}", follower.entered),
        (f"sync.latency{total}", f"ingest RPC return → webhook receiver got Audience Entered (EVENT style); {scale}",
         receiver.entered),
    ):
        stamped = [(returned[u], (seen[u] - returned[u]) * 1000) for u in returned if u in seen]
        latencies = [v for _, v in stamped]
        missing = len(returned) - len(latencies)
        extra: dict[str, Any] = {"rate": round(achieved), "sent": sent, **stream.fields()}
        if missing:
            extra["note"] = f"{missing} of {len(returned)} entries not seen within 60 s of the end"
        if latencies:
            results += latency_figures(name, label, latencies, windows_of(stamped, 3), **extra)
        print(f"  {name}: {len(latencies)} of {len(returned)} entries seen", flush=True)
    return results


# A paced rate counts as sustained when the sender achieved at least this share of it.
ACHIEVED = 0.95


def capacity(server: LiveServer, config: Config, now_ms: int) -> list[dict[str, Any]]:
    """`capacity`: the highest of `config.capacity_rates` (paced, `seconds` each, in order,
    stopping at the first that misses) at which freshness p99 stays within 1 s and the sender
    achieves at least `ACHIEVED` of the rate (a rate the server does not take in is not sustained,
    however fresh what it took); then `overload`:
    twice that rate, the ticks' p99 duration, the ingest rate achieved against the rate asked, and
    how long after the stream the last entry is seen (the backlog drained). Each round has its own
    signal event, audience and feed, so earlier rounds' members do not count."""
    rounds: list[tuple[int, list[float], float, list[float], float]] = []

    def round_at(rate: int, number: int) -> tuple[list[float], Stream, list[float], float]:
        key, signal = f"{FRESH}_{number}", f"Bench Signal {number}"
        server.audience(key, f"event('{signal}').count() >= 1")
        server.destination(f"bench_feed_{number}", grpc_feed=sync_pb2.GrpcFeedConfig())
        server.connect(f"bench_feed_{number}", key)
        follower = FeedFollower(server.sync, server.meta, f"bench_feed_{number}", key)
        time.sleep(1)
        watcher = TickWatcher(server)
        stream = paced_stream(server, config, now_ms, rate, signal, number)
        returned, achieved = stream.returned, stream.achieved
        ended = time.monotonic()
        deadline = ended + 120
        while time.monotonic() < deadline and len(follower.entered) < len(returned):
            time.sleep(0.05)
        drained = time.monotonic() - ended
        follower.stop()
        ticks = watcher.stop()
        latencies = [(follower.entered[u] - returned[u]) * 1000 for u in returned if u in follower.entered]
        latencies += [120_000.0] * (len(returned) - len(latencies))  # not seen: counted as missing the target
        p99 = percentile(latencies, 99)
        print(f"  {rate:,} events/s asked, {achieved:,.0f} achieved: freshness p50 {percentile(latencies, 50):,.0f}"
              f" ms, p99 {p99:,.0f} ms; ticks p99 {percentile(ticks, 99) if ticks else 0:,.0f} ms;"
              f" last entry {drained:.1f} s after the stream", flush=True)
        return latencies, stream, ticks, drained

    number = 0
    best: int | None = None
    for rate in config.capacity_rates:
        number += 1
        latencies, stream, ticks, drained = round_at(rate, number)
        achieved = stream.achieved
        rounds.append((rate, latencies, achieved, ticks, drained))
        if percentile(latencies, 99) > 1000 or achieved < ACHIEVED * rate:
            break
        best = rate
    total = f".d{config.definitions + 1}" if config.definitions else ""
    scale = (f"{config.seconds:g} s per rate, tick interval 200 ms; {config.users:,} users / {config.events:,} events"
             + (f"; {config.definitions + 1} definitions live" if config.definitions else ""))
    tried = ", ".join(f"{rate:,}: {got:,.0f} achieved, p99 {percentile(lat, 99):,.0f} ms"
                      for rate, lat, got, *_ in rounds)
    results = [{"name": f"capacity{total}", "unit": "events/s", "repeats": 1, "spread": 0.0,
                "label": f"highest paced rate tried with freshness p99 ≤ 1 s and ≥ {ACHIEVED:.0%} of it achieved"
                         f" ({tried}); {scale}",
                "value": best or 0}]
    if best:
        number += 1
        asked = 2 * best
        print(f"[live] overload: {asked:,} events/s (twice the capacity)", flush=True)
        sending = (f"requests of up to {config.request_calls} calls" if config.request_calls
                   else "one request per 20 ms slot")
        latencies, stream, ticks, drained = round_at(asked, number)
        achieved = stream.achieved
        results.append(figure(f"overload{total}.ticks", f"tick durations at twice the capacity, {asked:,} events/s"
                              f" asked, {achieved:,.0f} achieved (median; p99 beside); {scale}", ticks or [0.0], "ms",
                              1, p99=round(percentile(ticks, 99), 1) if ticks else None, asked=asked,
                              achieved=round(achieved), freshness_p99_ms=round(percentile(latencies, 99)),
                              drained_s=round(drained, 1)))
        results.append({"name": f"overload{total}.ingest", "unit": "ratio", "repeats": 1, "spread": 0.0,
                        "label": f"ingest rate achieved / asked at twice the capacity ({asked:,} events/s; {sending});"
                                 f" {scale}",
                        "value": round(achieved / asked, 3), **stream.fields()})
        results.append({"name": f"overload{total}.drain", "unit": "s", "repeats": 1, "spread": 0.0,
                        "label": f"last entry seen after the stream at twice the capacity ended; {scale}",
                        "value": round(drained, 1)})
    return results


def sync_throughput(server: LiveServer, receiver: Receiver, config: Config) -> list[dict[str, Any]]:
    active = server.audience(ACTIVE, "event('Page Viewed').count() >= 1")
    fresh = server.admin.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key=FRESH),
                                     metadata=server.meta).audience
    results = []
    for style, name, audience, members, batch_size in (
        (sync_pb2.WEBHOOK_PAYLOAD_STYLE_LIST, "sync.webhook_list.changes_per_s", ACTIVE, active.size, 500),
        (sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT, "sync.webhook_event.changes_per_s", FRESH, fresh.size, 0),
    ):
        path = "/" + name
        key = name.split(".")[1]
        server.destination(key, **webhook(receiver.url + path, style, batch_size, 100 if batch_size else 0))
        samples = []
        for rep in range(config.sync_repeats):
            before = receiver.counts.get(path, 0)
            started = time.monotonic()
            server.connect(key, audience, send_track=True)
            if not receiver.wait_count(path, before + members, timeout=300):
                print(f"  {name}: first sync not complete after 300 s", flush=True)
                break
            samples.append(members / (time.monotonic() - started))
            print(f"  {name} round {rep}: {members:,} members in {members / samples[-1]:.2f} s,"
                  f" {samples[-1]:,.0f} changes/s", flush=True)
            server.disconnect(key, audience)
        if samples:
            style_name = "LIST, batches of 500 or 100 ms" if batch_size else "EVENT, one request per call"
            results.append(figure(name, f"webhook first sync of {members:,} members to a local receiver,"
                                  f" {style_name}", samples, "changes/s", 0, members=members))
    return results


class ReadFailed(Exception):
    """One read that did not succeed, named by its status."""


Reader = Callable[[random.Random], None]


def _grpc_reader(address: str, token: str, users: int) -> Callable[[], Reader]:
    """`ListTraits` (page size 50) of a random user, over one channel shared by the threads."""
    stub = profiles_pb2_grpc.ProfilesServiceStub(grpc.insecure_channel(address))
    meta = (("authorization", f"Bearer {token}"),)

    def make() -> Reader:
        def read(rng: random.Random) -> None:
            ref = common_pb2.ProfileRef(collection=USERS, id=f"user_id:{data.user_id(rng.randrange(users))}")
            try:
                stub.ListTraits(profiles_pb2.ListTraitsRequest(profile=ref, page_size=50), metadata=meta, timeout=10)
            except grpc.RpcError as failed:
                raise ReadFailed(failed.code().name) from None
        return read
    return make


def _rest_reader(http_url: str, space: str, token: str, users: int) -> Callable[[], Reader]:
    """`GET …/traits?limit=50` of a random user, one kept-alive connection per thread, the body parsed."""
    where = urllib.parse.urlsplit(http_url)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}

    def make() -> Reader:
        connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)

        def read(rng: random.Random) -> None:
            user = urllib.parse.quote(data.user_id(rng.randrange(users)), safe="")
            connection.request("GET", f"/v1/spaces/{space}/collections/users/profiles/user_id:{user}/traits?limit=50",
                               headers=auth)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise ReadFailed(str(response.status))
            json.loads(body)
        return read
    return make


def _read_for(make: Callable[[], Reader], clients: int, seconds: float, seed: int) -> tuple[list[float], list[str]]:
    """Latencies (ms) of reads from `clients` threads, each with its own reader, for `seconds`; and the failures."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        read, rng, mine = make(), random.Random(seed + n), []
        read(rng)  # the first read opens the connection
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            try:
                read(rng)
            except ReadFailed as failed:
                failures.append(str(failed))
                continue
            mine.append((time.monotonic() - now) * 1000)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, failures


def profile_reads(address: str, http_url: str, token: str, users: int, seconds: float, clients: int = 8,
                  scale: str = "", rounds: int = 3) -> list[dict[str, Any]]:
    """The traits of random existing users from `clients` threads, over gRPC (`ListTraits`) and
    over HTTP (the Profile API), `seconds` each, in `rounds` alternating rounds on the same
    server; the HTTP p50 and p99 against gRPC's as their baselines."""
    readers = {"grpc": _grpc_reader(address, token, users), "rest": _rest_reader(http_url, DEFAULT_SPACE, token, users)}
    runs: dict[str, list[list[float]]] = {kind: [] for kind in readers}
    failures: dict[str, list[str]] = {kind: [] for kind in readers}
    for round_ in range(rounds):
        for kind, make in readers.items():
            latencies, failed = _read_for(make, clients, seconds / rounds, seed=round_ * 100)
            runs[kind].append(latencies)
            failures[kind] += failed
    results = []
    for kind, name, what in (("grpc", "profiles.traits", "ListTraits (page size 50)"),
                             ("rest", "profiles.rest", "GET …/traits?limit=50 over HTTP")):
        every = [v for run in runs[kind] for v in run]
        label = f"{what} of random users, {clients} client threads, {seconds:g} s in {rounds} rounds{scale}"
        extra = {"note": f"{len(failures[kind])} failed: {sorted(set(failures[kind]))}"} if failures[kind] else {}
        results += latency_figures(name, label, every, runs[kind], **extra)
        results.append(figure(f"{name}.rate", label, [len(run) / (seconds / rounds) for run in runs[kind]],
                              "reads/s", 0, reads=len(every)))
        print(f"  {kind} profile reads: {len(every):,} in {seconds:g} s", flush=True)
    by_name = {f["name"]: f for f in results}
    for q in ("p50", "p99"):
        rest, base = by_name[f"profiles.rest.{q}"], by_name[f"profiles.traits.{q}"]["value"]
        rest.update(baseline=base, ratio=round(rest["value"] / base, 3) if base else None)
    return results


def collect(config: Config, root: Path | None = None) -> list[dict[str, Any]]:
    """Runs the live figures; returns them."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        receiver = Receiver()
        receiver.start()
        server = LiveServer(root or Path(tmp))
        try:
            now_ms = int(time.time() * 1000)
            server.load(config.users, config.events, config.seed, now_ms)
            if config.definitions:
                seconds = realistic_space(server, config.definitions)
                label = (f"{config.definitions} definitions of bench/space.py created together until LIVE, by"
                         f" the server's own ticks; {config.users:,} users / {config.events:,} events")
                results.append({"name": f"backfill.live.d{config.definitions + 1}", "label": label,
                                "value": round(seconds, 1), "unit": "s", "repeats": 1, "spread": 0.0})
            results += freshness(server, receiver, config, now_ms)
            if config.capacity_rates:
                print(f"[live] capacity: paced rates {', '.join(map(str, config.capacity_rates))} events/s", flush=True)
                results += capacity(server, config, now_ms)
            if config.sync:
                results += sync_throughput(server, receiver, config)
            if config.reads:
                results += profile_reads(server.process.address, server.process.http_url,
                                         server.process.tokens["read"], config.users, config.read_seconds,
                                         config.clients, f"; {config.users:,} users / {config.events:,} events")
        finally:
            server.stop()
            receiver.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Config()
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--rate", type=int, default=defaults.rate, help="events/s of the paced stream")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="length of the paced stream")
    parser.add_argument("--sync-repeats", type=int, default=defaults.sync_repeats)
    parser.add_argument("--clients", type=int, default=defaults.clients, help="client threads reading profiles")
    parser.add_argument("--read-seconds", type=float, default=defaults.read_seconds)
    parser.add_argument("--no-reads", dest="reads", action="store_false", help="skip the profile reads")
    parser.add_argument("--definitions", type=int, default=defaults.definitions,
                        help="definitions of the realistic space (bench/space.py) live during the stream")
    parser.add_argument("--no-sync", dest="sync", action="store_false", help="skip the sync throughputs")
    parser.add_argument("--capacity", default="", help="comma-separated paced rates for the capacity search"
                        " (e.g. 250,500,1000,2000), then twice the highest met")
    parser.add_argument("--request-calls", type=int, default=defaults.request_calls,
                        help="most calls per request (0: one slot per request)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the server's database and log go, kept afterwards (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS / "live.json")
    args = parser.parse_args()
    config = Config(users=args.users, events=args.events, rate=args.rate, seconds=args.seconds,
                    sync_repeats=args.sync_repeats, clients=args.clients, read_seconds=args.read_seconds,
                    reads=args.reads, definitions=args.definitions, sync=args.sync,
                    capacity_rates=tuple(int(rate) for rate in args.capacity.split(",") if rate.strip()),
                    request_calls=args.request_calls)
    results = collect(config, args.workdir)
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
