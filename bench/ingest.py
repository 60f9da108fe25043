"""Ingest throughput through a real server in a child process, each figure against its baseline.

Three figures, each measured in alternating runs (baseline, ours, baseline, ours, …) on fresh
calls of the synthetic shop of bench/data.py (`--users` users; every run sends calls it has not
sent before, to profiles the warm-up created):

- `ingest.batch`: `BatchJson`, 500 calls per request from `--senders` client threads, identity
  resolution on (it always is); baseline: the same rows, normalised beforehand, into the same
  schema and indexes with raw apsw `executemany`, one 500-row transaction per request's worth,
  with the server's connection settings (`synchronous=FULL`, the server's default).
- `ingest.stream`: `StreamCalls`, one JSON call per message, one stream per run; baseline: a
  bench-only server (bench/baseline_server.py) that parses each message and drops it.
- `ingest.unary`: `Track` with typed properties from 16 client threads; baseline: the same
  bench-only server answering `Track` with an empty response, with the real server's thread
  pool size and options.

`http.batch` (bench/http_ingest.py: `POST /v1/batch` of 100 calls against `BatchJson` of the
same bodies) is measured right after `ingest.batch`.

`ingest.batch_typed` (`Batch` with `Struct` properties, against the same raw apsw baseline) is
measured too unless `--no-typed`. Prints each run and a table, and writes
bench/results/ingest.json (see bench/common.py for the figures' fields). Figures move ±10–25%
from run to run on a 2-core machine; the ratios, measured in the same run, are what to compare.
Each figure also records the server's CPU per call (`server_cpu_us_per_call`, and the bench-only
server's as `baseline_cpu_us_per_call` for stream and unary): user plus system time of the whole
process from /proc/<pid>/stat before and after each run, the median over runs. It moves far less
than a rate when other work shares the cores. `--figures` measures only some figures.

    python bench/ingest.py                       # 100k events × 5 runs per figure
    python bench/ingest.py --events 20000 --stream 5000 --unary 2000 --repeats 3
    python bench/ingest.py --figures unary,stream --unary 2000 --stream 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import data  # bench/data.py: a script's own folder is on sys.path
import grpc
import http_ingest
from audiences.v1 import ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc, tracking_pb2
from baseline_server import BaselineServer
from common import RESULTS, alternate, figure, rate, report
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audiences_server import logs
from audiences_server.core import tracking
from audiences_server.store import events
from audiences_server.store.db import connect
from audiences_server.store.migrations import migrate
from audiences_server.testing import ServerProcess

BATCH = 500
# The figures `--figures` can pick (all by default); `http` is http.batch, `idle` the idle streams.
FIGURES = ("batch", "http", "typed", "stream", "unary", "idle")
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system, all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuPerCall:
    """Server CPU per call over runs, from /proc/<pid>/stat before and after each run: less
    sensitive than a rate to other work on the machine."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def rate(self, what: str, pid: int, count: int, run: Callable[[], Any]) -> float:
        """`rate(count, run)`, noting the process's CPU microseconds per call under `what`."""
        before = cpu_seconds(pid)
        value = rate(count, run)
        self.samples.setdefault(what, []).append((cpu_seconds(pid) - before) * 1e6 / count)
        return value

    def fields(self, ours: str, baseline: str = "") -> dict[str, Any]:
        """The figure's extra fields: median server CPU per call, ours and the baseline server's."""
        out = {"server_cpu_us_per_call": round(statistics.median(self.samples.pop(ours)), 1)}
        if baseline:
            out["baseline_cpu_us_per_call"] = round(statistics.median(self.samples.pop(baseline)), 1)
        return out


@dataclass
class Config:
    """The scale of the ingest figures."""

    users: int = 10_000
    events: int = 100_000  # per run of the batched figures
    stream: int = 30_000  # per run of the streaming figure
    unary: int = 10_000  # calls per run of the unary figure
    repeats: int = 5
    senders: int = 4
    threads: int = 16
    typed: bool = True
    figures: tuple[str, ...] = FIGURES


def fresh_calls(users: int, count: int, seed: int, now_ms: int, kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """`count` calls of the shop's activity (its population's identify and group calls left out)."""
    generated = data.generate(users, count * 3 if kinds else count, now_ms, seed)
    calls = itertools.dropwhile(lambda c: c["type"] in {"identify", "group"}, generated)
    if kinds:
        calls = (c for c in calls if c["type"] in kinds)
    return list(itertools.islice(calls, count))


def population(users: int, now_ms: int) -> list[dict[str, Any]]:
    """The identify and group calls that create the shop's users and accounts."""
    return list(itertools.takewhile(lambda c: c["type"] in {"identify", "group"}, data.generate(users, 1, now_ms, 0)))


def in_parallel(senders: int, items: list[Any], send: Callable[[Any], None]) -> None:
    """Sends the items from several client threads, as several producers would."""
    def worker(share: list[Any]) -> None:
        for item in share:
            send(item)

    pool = [threading.Thread(target=worker, args=(items[i::senders],)) for i in range(senders)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def json_bodies(calls: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps({"batch": calls[i:i + BATCH]}).encode() for i in range(0, len(calls), BATCH)]


def to_track(call: dict[str, Any]) -> tracking_pb2.Track:
    props = struct_pb2.Struct()
    props.update(call["properties"])
    return tracking_pb2.Track(message_id=call["messageId"], user_id=call["userId"], event=call["event"],
                              properties=props)


def to_item(call: dict[str, Any]) -> tracking_pb2.TrackingCall:
    if call["type"] == "track":
        return tracking_pb2.TrackingCall(track=to_track(call))
    return tracking_pb2.TrackingCall(json=json.dumps(call).encode())


class RawStore:
    """The baseline of the batched figures: raw apsw into the server's schema, same settings."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        logs.configure("console", "warning")  # migrate() logs each migration
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(path, synchronous=synchronous)
        migrate(self.conn, 0)
        self.seq = 1

    def rows(self, calls: list[dict[str, Any]], received_ms: int) -> list[tracking.Call]:
        normalized = [tracking.normalize(c, received_ms) for c in calls]
        return [c for c in normalized if isinstance(c, tracking.Call)]

    def insert(self, rows: list[tracking.Call]) -> None:
        """One transaction per 500 rows, as one request's worth."""
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            profiles = [int(c.user_id[1:]) + 1 if c.user_id and c.user_id[1:].isdigit() else None for c in chunk]
            self.conn.execute("BEGIN IMMEDIATE")
            events.insert_calls(self.conn, 1, chunk, profiles, self.seq)
            self.conn.execute("COMMIT")
            self.seq += len(chunk)

    def close(self) -> None:
        self.conn.close()


class Ingest:
    """The real server, the bench-only baseline server and raw apsw, side by side."""

    def __init__(self, root: Path, config: Config) -> None:
        self.config = config
        self.now_ms = int(time.time() * 1000)
        self.server = ServerProcess(root / "srv" / "audiences.db")
        self.baseline = BaselineServer()
        options = [("grpc.max_send_message_length", 16 << 20)]
        self.channel = grpc.insecure_channel(self.server.address, options=options)
        self.base_channel = grpc.insecure_channel(self.baseline.address, options=options)
        self.stub = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.base_stub = ingest_pb2_grpc.IngestServiceStub(self.base_channel)
        self.meta = (("authorization", f"Bearer {self.server.tokens['write']}"),)
        self.raw = RawStore(root / "raw" / "raw.db")
        self.seed = itertools.count(1)
        self.cpu = CpuPerCall()

    def close(self) -> None:
        self.channel.close()
        self.base_channel.close()
        self.raw.close()
        self.baseline.stop()
        self.server.stop()

    def warm_up(self) -> None:
        """Creates the users and accounts on the server and in the raw store (not timed)."""
        calls = population(self.config.users, self.now_ms)
        self.send_json(json_bodies(calls))
        self.raw.insert(self.raw.rows(calls, self.now_ms))
        print(f"warm-up: {len(calls):,} identify and group calls ({self.config.users:,} users)", flush=True)

    def send_json(self, bodies: list[bytes]) -> None:
        def send(body: bytes) -> None:
            reply = self.stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=self.meta, timeout=600)
            if reply.rejected_count or reply.duplicate_count:
                raise RuntimeError(f"{reply.rejected_count} rejected, {reply.duplicate_count} duplicates:"
                                   f" {reply.results[:3]}")

        in_parallel(self.config.senders, bodies, send)

    def calls(self, count: int, kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return fresh_calls(self.config.users, count, next(self.seed), self.now_ms, kinds)

    # -- the figures ---------------------------------------------------------------------

    def batch(self) -> dict[str, Any]:
        cfg = self.config
        prepared: dict[int, tuple[list[tracking.Call], list[bytes]]] = {}

        def baseline(i: int) -> float:
            calls = self.calls(cfg.events)
            prepared[i] = (self.raw.rows(calls, self.now_ms), json_bodies(calls))
            return rate(len(prepared[i][0]), lambda: self.raw.insert(prepared[i][0]))

        def ours(i: int) -> float:
            rows, bodies = prepared.pop(i)
            return self.cpu.rate("batch", self.server.proc.pid, len(rows), lambda: self.send_json(bodies))

        base, samples = alternate(cfg.repeats, baseline, ours, "batch", "events/s")
        return figure("ingest.batch", f"BatchJson, {BATCH} per call, {cfg.senders} senders, identity resolution;"
                      f" baseline raw apsw executemany, {BATCH}-row transactions", samples, "events/s", 0, base,
                      events_per_run=cfg.events, **self.cpu.fields("batch"))

    def batch_typed(self) -> dict[str, Any]:
        cfg = self.config
        count = cfg.events // 2
        prepared: dict[int, list[ingest_pb2.BatchRequest]] = {}

        def baseline(i: int) -> float:
            calls = self.calls(count)
            items = [to_item(c) for c in calls]
            prepared[i] = [ingest_pb2.BatchRequest(batch=items[j:j + BATCH]) for j in range(0, len(items), BATCH)]
            rows = self.raw.rows(calls, self.now_ms)
            return rate(len(rows), lambda: self.raw.insert(rows))

        def ours(i: int) -> float:
            requests = prepared.pop(i)

            def send(request: ingest_pb2.BatchRequest) -> None:
                if self.stub.Batch(request, metadata=self.meta, timeout=600).rejected_count:
                    raise RuntimeError("rejected calls in a typed batch")

            return rate(count, lambda: in_parallel(cfg.senders, requests, send))

        base, samples = alternate(cfg.repeats, baseline, ours, "batch typed", "events/s")
        return figure("ingest.batch_typed", f"Batch (typed Struct properties), {BATCH} per call, {cfg.senders} senders;"
                      " baseline raw apsw", samples, "events/s", 0, base, events_per_run=count)

    def stream(self) -> dict[str, Any]:
        cfg = self.config
        prepared: dict[int, list[ingest_pb2.StreamCallsRequest]] = {}

        def run(stub: Any, requests: list[ingest_pb2.StreamCallsRequest], meta: Any) -> None:
            reply = stub.StreamCalls(iter(requests), metadata=meta, timeout=600)
            if reply.accepted_count != len(requests):
                raise RuntimeError(f"stream: {reply.accepted_count} of {len(requests)} accepted: {reply}")

        def baseline(i: int) -> float:
            calls = self.calls(cfg.stream)
            prepared[i] = [ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(json=json.dumps(c).encode()))
                           for c in calls]
            return self.cpu.rate("stream base", self.baseline.pid, len(calls),
                                 lambda: run(self.base_stub, prepared[i], ()))

        def ours(i: int) -> float:
            requests = prepared.pop(i)
            return self.cpu.rate("stream", self.server.proc.pid, len(requests),
                                 lambda: run(self.stub, requests, self.meta))

        base, samples = alternate(cfg.repeats, baseline, ours, "stream", "events/s")
        return figure("ingest.stream", "StreamCalls, one JSON call per message, one stream; baseline a server"
                      " that parses and drops", samples, "events/s", 0, base, events_per_run=cfg.stream,
                      **self.cpu.fields("stream", "stream base"))

    def unary(self) -> dict[str, Any]:
        cfg = self.config
        prepared: dict[int, list[ingest_pb2.TrackRequest]] = {}

        def run(stub: Any, requests: list[ingest_pb2.TrackRequest], meta: Any) -> None:
            in_parallel(cfg.threads, requests, lambda request: stub.Track(request, metadata=meta, timeout=60))

        def baseline(i: int) -> float:
            prepared[i] = [ingest_pb2.TrackRequest(track=to_track(c)) for c in self.calls(cfg.unary, ("track",))]
            return self.cpu.rate("unary base", self.baseline.pid, len(prepared[i]),
                                 lambda: run(self.base_stub, prepared[i], self.meta))

        def ours(i: int) -> float:
            requests = prepared.pop(i)
            return self.cpu.rate("unary", self.server.proc.pid, len(requests),
                                 lambda: run(self.stub, requests, self.meta))

        base, samples = alternate(cfg.repeats, baseline, ours, "unary", "calls/s")
        return figure("ingest.unary", f"Track (typed properties), {cfg.threads} client threads; baseline a no-op"
                      " Track on a grpc.aio server with the same options", samples, "calls/s", 0, base,
                      calls_per_run=cfg.unary, **self.cpu.fields("unary", "unary base"))


def idle_streams(server: ServerProcess, streams: int = 1000, checks: int = 500) -> dict[str, Any]:
    """Health-check latency while `streams` idle streams of each kind are open: `WatchChanges` on a
    quiet feed and `StreamCalls` that never send. Sequential checks on a channel of their own."""
    admin = (("authorization", f"Bearer {server.tokens['admin']}"),)
    write = (("authorization", f"Bearer {server.tokens['write']}"),)
    idle_channel = grpc.insecure_channel(server.address)
    sync_stub = sync_pb2_grpc.SyncServiceStub(idle_channel)
    with contextlib.suppress(grpc.RpcError):  # already there on a second run
        sync_stub.CreateDestination(sync_pb2.CreateDestinationRequest(destination=sync_pb2.Destination(
            key="bench_quiet", grpc_feed=sync_pb2.GrpcFeedConfig())), metadata=admin)
    watch = sync_pb2.WatchChangesRequest(destination_key="bench_quiet")
    watch.heartbeat_interval.FromSeconds(300)
    never = threading.Event()

    def silent() -> Iterator[ingest_pb2.StreamCallsRequest]:
        never.wait()
        yield from ()

    ingest_stub = ingest_pb2_grpc.IngestServiceStub(idle_channel)
    calls = [*(sync_stub.WatchChanges(watch, metadata=admin) for _ in range(streams)),
             *(ingest_stub.StreamCalls.future(silent(), metadata=write) for _ in range(streams))]
    health_channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(health_channel)
    try:
        time.sleep(2.0)  # every stream open and idle
        latencies = []
        for _ in range(checks):
            started = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        never.set()
        for call in calls:
            call.cancel()
        health_channel.close()
        idle_channel.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"health with {2 * streams} idle streams: p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms",
          flush=True)
    return {"name": "health.idle_streams.p99", "label": f"gRPC health check p99 with {2 * streams} idle streams open"
            f" ({streams} WatchChanges, {streams} StreamCalls that never send)", "value": round(p99, 2),
            "unit": "ms", "repeats": checks, "spread": 0.0, "p50": round(statistics.median(latencies), 2)}


def collect(config: Config, root: Path | None = None) -> list[dict[str, Any]]:
    """Runs every ingest figure; returns them."""
    with tempfile.TemporaryDirectory() as tmp:
        bench = Ingest(root or Path(tmp), config)
        try:
            bench.warm_up()
            figures: dict[str, Callable[[], dict[str, Any]]] = {
                "batch": bench.batch, "http": lambda: http_ingest.http_batch(bench), "typed": bench.batch_typed,
                "stream": bench.stream, "unary": bench.unary, "idle": lambda: idle_streams(bench.server),
            }
            wanted = [name for name in FIGURES if name in config.figures and (name != "typed" or config.typed)]
            results = [figures[name]() for name in wanted]
        finally:
            bench.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Config()
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--events", type=int, default=defaults.events, help="calls per run of the batched figures")
    parser.add_argument("--stream", type=int, default=defaults.stream, help="calls per run of the stream figure")
    parser.add_argument("--unary", type=int, default=defaults.unary, help="calls per run of the unary figure")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="runs of each figure and its baseline")
    parser.add_argument("--senders", type=int, default=defaults.senders, help="client threads sending batches")
    parser.add_argument("--no-typed", dest="typed", action="store_false", help="skip the typed Batch figure")
    parser.add_argument("--figures", default=",".join(FIGURES),
                        help=f"comma-separated figures to measure, of {', '.join(FIGURES)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args()
    figures = tuple(name.strip() for name in args.figures.split(",") if name.strip())
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    config = Config(users=args.users, events=args.events, stream=args.stream, unary=args.unary,
                    repeats=args.repeats, senders=args.senders, typed=args.typed, figures=figures)
    results = collect(config)
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
