"""EVENT-style webhook throughput (`sync.event.throughput`): changes per second delivered one
request each to a local receiver.

A server in a child process gets `--members` users with `plan = 'pro'` and the audience
`trait('plan') = 'pro'`; a webhook destination in EVENT style (`send_track`, one call per
change, so one request per change), signed (Standard Webhooks) and with the default
`max_in_flight`, is connected, and the figure is the connection's first sync: from
`ConnectDestination` to the receiver holding every member's `Audience Entered`, `--repeats`
times (disconnect, connect again). Every delivery's outcome is committed as it is answered, as
always. The receiver is aiohttp on its own event loop in this process: it answers 200 and
counts, so the figure is the server's (and the machine's: the receiver shares its two cores).
The server's CPU time per change and the load average before and after each run are kept
with the figure, since the machine is shared.

    python bench/sync_event.py --members 3000 --repeats 2     # quick
    python bench/sync_event.py                                # 20,000 members, 3 runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from audiences.v1 import admin_pb2, admin_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc, sync_pb2, sync_pb2_grpc
from common import RESULTS, figure, report

from audiences_server.testing import ServerProcess

USERS = common_pb2.COLLECTION_USERS
SECRET = "whsec_" + "QmVuY2htYXJrU2lnbmluZ1NlY3JldDMyQnl0ZXMh"  # 32 bytes, base64


@dataclass
class Config:
    """The scale of the figure."""

    members: int = 20_000
    repeats: int = 3
    max_in_flight: int = 0  # 0: the destination's default
    synchronous: str = "FULL"  # the server's --synchronous: FULL (its default) waits for the disk on every commit


class Receiver:
    """aiohttp on a thread of its own: answers 200 to every POST and counts the calls."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self._loop.run_forever()

    async def _post(self, request: web.Request) -> web.Response:
        await request.read()
        with self.changed:
            self.count += 1
            self.changed.notify_all()
        return web.Response()

    def wait_count(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, timeout)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def _load(channel: grpc.Channel, token: str, members: int) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    for start in range(0, members, 1000):
        calls = [{"type": "identify", "userId": f"m{i}", "traits": {"plan": "pro", "email": f"m{i}@bench.example"}}
                 for i in range(start, min(members, start + 1000))]
        ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": calls}).encode()),
                         metadata=(("authorization", f"Bearer {token}"),), timeout=600)


def _audience(admin: Any, meta: Any, members: int) -> None:
    message = admin_pb2.Audience(key="pro", collection=USERS, definition="trait('plan') = 'pro'")
    admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=message), metadata=meta)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        found = admin.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="pro"), metadata=meta).audience
        if found.status == admin_pb2.COMPUTATION_STATUS_LIVE and found.size == members:
            return
        time.sleep(0.1)
    raise TimeoutError("the audience did not become LIVE")


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def collect(config: Config) -> list[dict[str, Any]]:
    """Runs the figure; returns it."""
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "audiences.db", "--synchronous", config.synchronous)
        channel = grpc.insecure_channel(server.address)
        meta = (("authorization", f"Bearer {server.tokens['admin']}"),)
        try:
            _load(channel, server.tokens["write"], config.members)
            _audience(admin_pb2_grpc.AudienceAdminServiceStub(channel), meta, config.members)
            sync = sync_pb2_grpc.SyncServiceStub(channel)
            webhook = sync_pb2.WebhookConfig(url=f"http://127.0.0.1:{receiver.port}/in", signing_secret=SECRET,
                                             payload_style=sync_pb2.WEBHOOK_PAYLOAD_STYLE_EVENT,
                                             max_in_flight=config.max_in_flight)
            sync.CreateDestination(sync_pb2.CreateDestinationRequest(
                destination=sync_pb2.Destination(key="hook", webhook=webhook)), metadata=meta)
            ref = common_pb2.ComputationRef(kind=common_pb2.COMPUTATION_KIND_AUDIENCE, collection=USERS, key="pro")
            samples, loads, cpu = [], [], []
            for rep in range(config.repeats):
                before, load_before = receiver.count, os.getloadavg()[0]
                started, cpu_before = time.monotonic(), _cpu_s(server.proc.pid)
                sync.ConnectDestination(sync_pb2.ConnectDestinationRequest(connection=sync_pb2.Connection(
                    destination_key="hook", computation=ref, send_track=True)), metadata=meta)
                if not receiver.wait_count(before + config.members, timeout=900):
                    print("  sync.event.throughput: first sync not complete after 900 s", flush=True)
                    break
                samples.append(config.members / (time.monotonic() - started))
                loads.append((round(load_before, 2), round(os.getloadavg()[0], 2)))
                cpu.append(round((_cpu_s(server.proc.pid) - cpu_before) / config.members * 1e6))
                print(f"  sync.event.throughput round {rep}: {config.members:,} changes in"
                      f" {config.members / samples[-1]:.2f} s, {samples[-1]:,.0f} changes/s, server CPU"
                      f" {cpu[-1]} µs per change, load average {loads[-1][0]} → {loads[-1][1]}", flush=True)
                sync.DisconnectDestination(sync_pb2.DisconnectDestinationRequest(
                    destination_key="hook", computation=ref), metadata=meta)
        finally:
            channel.close()
            server.stop()
            receiver.stop()
    if not samples:
        return []
    return [figure("sync.event.throughput", f"webhook first sync of {config.members:,} members to a local receiver,"
                   " EVENT style (a request per change), signed, max_in_flight"
                   f" {config.max_in_flight or 'default'}"
                   + ("" if config.synchronous == "FULL" else f", synchronous {config.synchronous}"),
                   samples, "changes/s", 0,
                   members=config.members, server_cpu_us_per_change=cpu, load_average=loads,
                   cores=os.cpu_count())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Config()
    parser.add_argument("--members", type=int, default=defaults.members)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default=defaults.synchronous,
                        help="the server's --synchronous (FULL, the default, is the figure; NORMAL shows what the"
                             " disk's flushes cost)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sync_event.json")
    args = parser.parse_args()
    results = collect(Config(members=args.members, repeats=args.repeats, max_in_flight=args.max_in_flight,
                             synchronous=args.synchronous))
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
