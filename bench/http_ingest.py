"""`http.batch`: Segment's HTTP tracking API against gRPC `BatchJson`, measured in the same run.

`POST /v1/batch` of 100 calls a request (analytics-python's default batch size), HTTP Basic with
the write token, from `--senders` client threads each holding one keep-alive connection
(http.client: the lightest client, so that the figure is the server's); baseline: `BatchJson`
with the same 100-call bodies from as many threads, on the same server process. Runs alternate
(BatchJson, HTTP, BatchJson, …) on calls neither has sent before. Both end in the same engine
path, so the ratio is the cost of the HTTP edge (aiohttp, the bounded body read, the JSON
answer) against gRPC's. Part of bench/ingest.py's stage; the target is a ratio of at least 0.8.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from typing import Any

import grpc
from audiences.v1 import ingest_pb2
from common import alternate, figure, rate

HTTP_BATCH = 100
_SUCCESS = b'{"success":true}'


def bodies(calls: list[dict[str, Any]]) -> list[bytes]:
    """The calls as batch bodies of HTTP_BATCH calls, the same bytes for both transports."""
    return [json.dumps({"batch": calls[i:i + HTTP_BATCH]}).encode() for i in range(0, len(calls), HTTP_BATCH)]


def _in_threads(senders: int, items: list[bytes], work: Any) -> None:
    """Runs `work(share)` on `senders` threads; re-raises the first failure once all have ended."""
    failures: list[BaseException] = []

    def run(share: list[bytes]) -> None:
        try:
            work(share)
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=run, args=(items[i::senders],)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def post_batches(port: int, write_key: str, batches: list[bytes], senders: int) -> None:
    """POSTs every body to /v1/batch, one keep-alive connection per sender thread."""
    headers = {"Content-Type": "application/json",
               "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}

    def send(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            for body in share:
                conn.request("POST", "/v1/batch", body, headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200 or answer != _SUCCESS:
                    raise RuntimeError(f"/v1/batch answered {response.status}: {answer[:300]!r}")
        finally:
            conn.close()

    _in_threads(senders, batches, send)


def batch_json(stub: Any, meta: Any, batches: list[bytes], senders: int) -> None:
    """Sends every body with BatchJson from `senders` threads."""
    def send(share: list[bytes]) -> None:
        for body in share:
            reply = stub.BatchJson(ingest_pb2.BatchJsonRequest(body=body), metadata=meta, timeout=600)
            if reply.rejected_count or reply.duplicate_count:
                raise RuntimeError(f"BatchJson: {reply.rejected_count} rejected, {reply.duplicate_count} duplicates")

    try:
        _in_threads(senders, batches, send)
    except grpc.RpcError as failed:
        raise RuntimeError(f"BatchJson failed: {failed}") from None


def http_batch(bench: Any) -> dict[str, Any]:
    """The `http.batch` figure on bench/ingest.py's server and calls (`bench` is its `Ingest`)."""
    cfg = bench.config
    server = bench.server
    prepared: dict[int, list[bytes]] = {}

    def baseline(i: int) -> float:
        calls = bench.calls(cfg.events)
        prepared[i] = bodies(bench.calls(cfg.events))
        batches = bodies(calls)
        return rate(len(calls), lambda: batch_json(bench.stub, bench.meta, batches, cfg.senders))

    def ours(i: int) -> float:
        batches = prepared.pop(i)
        count = sum(len(json.loads(body)["batch"]) for body in batches)
        return rate(count, lambda: post_batches(server.http_port, server.tokens["write"], batches, cfg.senders))

    base, samples = alternate(cfg.repeats, baseline, ours, "http batch", "events/s")
    return figure("http.batch", f"POST /v1/batch, {HTTP_BATCH} per request, {cfg.senders} senders (keep-alive);"
                  f" baseline BatchJson, {HTTP_BATCH} per call, same senders, same server", samples, "events/s", 0,
                  base, events_per_run=cfg.events)
