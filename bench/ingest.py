"""Ingest throughput through a real server in a child process, against raw apsw as the baseline.

Prints one line per figure and writes bench/results/ingest.json. Figures move ±10–25% from run
to run on a 2-core machine; compare the ratio to the baseline measured in the same run.

    python bench/ingest.py [--events 100000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from audiences.v1 import ingest_pb2, ingest_pb2_grpc, tracking_pb2
from google.protobuf import struct_pb2

from audiences_server.core import tracking
from audiences_server.store import events
from audiences_server.store.db import connect
from audiences_server.store.migrations import migrate
from audiences_server.testing import ServerProcess

EVENTS = ["Product Viewed", "Product Added", "Order Completed", "Page Viewed", "Signed In"]


USERS = 10_000


def make_call(i: int, rng: random.Random) -> dict[str, Any]:
    """A track call of about 380 bytes with about 340 bytes of properties, from one of USERS users."""
    return {
        "type": "track", "messageId": f"m-{i}-{rng.getrandbits(40):x}", "userId": f"user-{rng.randrange(USERS)}",
        "event": rng.choice(EVENTS),
        "properties": {
            "product_id": f"sku-{rng.randrange(5000)}", "price": round(rng.uniform(1, 500), 2),
            "quantity": rng.randrange(1, 5), "currency": "EUR", "category": rng.choice(["shoes", "bags", "hats"]),
            "revenue": round(rng.uniform(1, 900), 2), "coupon": rng.choice(["", "SPRING", "VIP10"]),
            "url": f"https://shop.example.com/p/{rng.randrange(5000)}?ref=campaign-{rng.randrange(50)}",
            "search": "running shoes lightweight", "position": rng.randrange(1, 40), "in_stock": True,
        },
    }


def measure(name: str, unit: str, count: int, run: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    figure = {"name": name, "value": round(count / elapsed), "unit": unit, "seconds": round(elapsed, 2)}
    print(f"{name:<48} {figure['value']:>10,} {unit}  ({count:,} in {elapsed:.2f} s)", flush=True)
    return figure


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


def bench_batch_json(stub: Any, meta: Any, calls: list[dict[str, Any]], senders: int) -> None:
    bodies = [json.dumps({"batch": calls[i:i + 500]}).encode() for i in range(0, len(calls), 500)]

    def send(body: bytes) -> None:
        reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=meta)
        assert reply.rejected_count == 0, reply.results[:3]

    in_parallel(senders, bodies, send)


def to_track(call: dict[str, Any]) -> tracking_pb2.Track:
    props = struct_pb2.Struct()
    props.update(call["properties"])
    return tracking_pb2.Track(message_id=call["messageId"], user_id=call["userId"], event=call["event"],
                              properties=props)


def bench_batch_typed(stub: Any, meta: Any, calls: list[dict[str, Any]], senders: int) -> None:
    items = [tracking_pb2.TrackingCall(track=to_track(c)) for c in calls]
    requests = [ingest_pb2.BatchRequest(batch=items[i:i + 500]) for i in range(0, len(items), 500)]

    def send(request: ingest_pb2.BatchRequest) -> None:
        assert stub.Batch(request, metadata=meta).rejected_count == 0

    in_parallel(senders, requests, send)


def bench_stream(stub: Any, meta: Any, calls: list[dict[str, Any]], senders: int) -> None:
    encoded = [ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(json=json.dumps(c).encode()))
               for c in calls]
    reply = stub.StreamCalls(iter(encoded), metadata=meta)
    assert reply.accepted_count == len(calls), reply


def bench_unary(stub: Any, meta: Any, calls: list[dict[str, Any]], threads: int) -> None:
    requests = [ingest_pb2.TrackRequest(track=to_track(c)) for c in calls]
    in_parallel(threads, requests, lambda request: stub.Track(request, metadata=meta))


def bench_raw_apsw(path: Path, calls: list[dict[str, Any]]) -> None:
    """The baseline: the same rows into the same schema and indexes with raw executemany."""
    conn = connect(path, synchronous="FULL")
    migrate(conn, 0)
    normalized = [tracking.normalize(c, 1_800_000_000_000) for c in calls]
    rows = [c for c in normalized if isinstance(c, tracking.Call)]
    started = time.perf_counter()
    for start in range(0, len(rows), 500):
        conn.execute("BEGIN IMMEDIATE")
        chunk = rows[start:start + 500]
        events.insert_calls(conn, 1, chunk, [hash(c.user_id) % 100_000 for c in chunk], start + 1)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    print(f"{'baseline: raw apsw insert, 500-row transactions':<48} {len(rows) / elapsed:>10,.0f} events/s "
          f"(normalisation excluded)", flush=True)
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--unary", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=4, help="client threads sending batches")
    args = parser.parse_args()
    rng = random.Random(7)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline_calls = [make_call(i, rng) for i in range(args.events)]
        started = time.perf_counter()
        bench_raw_apsw(root / "raw" / "raw.db", baseline_calls)
        baseline = args.events / (time.perf_counter() - started)
        server = ServerProcess(root / "srv" / "audiences.db")
        try:
            channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 16 << 20)])
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            meta = (("authorization", f"Bearer {server.tokens['write']}"),)
            for name, fn, n in (
                (f"BatchJson, 500 per call, {args.senders} senders", bench_batch_json, args.events),
                (f"Batch (typed Struct), 500 per call, {args.senders} senders", bench_batch_typed, args.events // 2),
                ("StreamCalls, one JSON call per message", bench_stream, args.events // 2),
            ):
                calls = [make_call(i, rng) for i in range(n)]
                results.append(measure(name, "events/s", n,
                                       lambda fn=fn, calls=calls: fn(stub, meta, calls, args.senders)))
            calls = [make_call(i, rng) for i in range(args.unary)]
            results.append(measure("unary Track, 16 client threads", "calls/s", args.unary,
                                   lambda: bench_unary(stub, meta, calls, 16)))
        finally:
            server.stop()
    results.append({"name": "baseline raw apsw (incl. normalisation)", "value": round(baseline), "unit": "events/s"})
    for figure in results:
        if figure["unit"] == "events/s" and "baseline" not in figure["name"]:
            figure["baseline"] = round(baseline)
            figure["ratio"] = round(figure["value"] / baseline, 2)
    print(f"{'baseline raw apsw incl. normalisation':<48} {baseline:>10,.0f} events/s")
    out = Path(__file__).parent / "results" / "ingest.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"median of server figures: {statistics.median(f['value'] for f in results):,.0f}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
