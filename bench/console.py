"""The web console's API against the gRPC calls it mirrors: server CPU per call.

A server in a child process gets `--users` users (each an identify and a few orders) and
`--definitions` audiences. Each figure is the server's CPU time (utime + stime of every thread,
from /proc/<pid>/stat) per call over `--calls` calls, the console's JSON API call against the
same work through gRPC in the same run (baseline, subject, baseline, subject, …), so the ratio
is what the console's JSON edge costs over the gRPC edge:

- `console.list`: `GET /console/api/computations?sizes=hourly` (what the audiences page reads
  every 2 s) against `ListAudiences` and one `GetSizeHistory` per audience;
- `console.validate`: `POST /console/api/validate` against `ValidateDefinition`;
- `console.preview`: `POST /console/api/preview` against `PreviewDefinition` (every profile evaluated);
- `console.traits`: `GET /console/api/profiles/users/traits` against `ListTraits`.

    python bench/console.py                       # 2,000 users, 20 audiences
    python bench/console.py --users 500 --calls 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
)
from common import RESULTS, alternate, figure, print_table, write_results

from audiences_server.testing import ServerProcess

USERS = common_pb2.COLLECTION_USERS
AUDIENCE = common_pb2.COMPUTATION_KIND_AUDIENCE
_TICKS = os.sysconf("SC_CLK_TCK")
TEXT = "event('Order Completed').where(property('total') > 20).within(30 days).count() >= 2 or trait('plan') = 'pro'"


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system, all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Bench:
    """One server with data, and a caller of each edge."""

    def __init__(self, server: ServerProcess, users: int, definitions: int) -> None:
        self.server = server
        self.meta = (("authorization", f"Bearer {server.tokens['admin']}"),)
        channel = grpc.insecure_channel(server.address)
        self.admin = admin_pb2_grpc.AudienceAdminServiceStub(channel)
        self.profiles = profiles_pb2_grpc.ProfilesServiceStub(channel)
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        write = (("authorization", f"Bearer {server.tokens['write']}"),)
        for start in range(0, users, 250):
            batch: list[dict[str, Any]] = []
            for n in range(start, min(users, start + 250)):
                plan = "pro" if n % 7 == 0 else "free"
                batch.append({"type": "identify", "userId": f"u{n}", "traits": {"plan": plan}})
                batch += [{"type": "track", "userId": f"u{n}", "event": "Order Completed",
                           "properties": {"total": (n * 13 + k * 7) % 60}} for k in range(n % 4)]
            ingest.BatchJson(ingest_pb2.BatchJsonRequest(body=json.dumps({"batch": batch}).encode()), metadata=write)
        self.keys = [f"a{n}" for n in range(definitions)]
        for n, key in enumerate(self.keys):
            self.admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=admin_pb2.Audience(
                key=key, collection=USERS, definition=f"event('Order Completed').count() >= {n % 4}")),
                metadata=self.meta)
        self.admin.RunTick(admin_pb2.RunTickRequest(until_idle=True), metadata=self.meta)

    def http(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.server.http_url}/console/api{path}", data=data, method=method,
                                          headers={"Authorization": f"Bearer {self.server.tokens['admin']}",
                                                   "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def per_call(self, calls: int, run: Callable[[], Any]) -> float:
        """Server CPU milliseconds per call of `run`."""
        before = cpu_seconds(self.server.proc.pid)
        for _ in range(calls):
            run()
        return (cpu_seconds(self.server.proc.pid) - before) * 1000 / calls

    # -- the pairs ----------------------------------------------------------------------------

    def list_grpc(self) -> None:
        for audience in self.admin.ListAudiences(admin_pb2.ListAudiencesRequest(), metadata=self.meta).audiences:
            self.admin.GetSizeHistory(admin_pb2.GetSizeHistoryRequest(
                collection=USERS, key=audience.key, interval=admin_pb2.SIZE_INTERVAL_HOURLY), metadata=self.meta)

    def list_console(self) -> None:
        self.http("GET", "/computations?sizes=hourly")

    def validate_grpc(self) -> None:
        self.admin.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
            kind=AUDIENCE, collection=USERS, definition=TEXT, key="new"), metadata=self.meta)

    def validate_console(self) -> None:
        self.http("POST", "/validate", {"definition": TEXT, "key": "new"})

    def preview_grpc(self) -> None:
        self.admin.PreviewDefinition(admin_pb2.PreviewDefinitionRequest(
            kind=AUDIENCE, collection=USERS, definition=TEXT, sample_size=10), metadata=self.meta)

    def preview_console(self) -> None:
        self.http("POST", "/preview", {"definition": TEXT, "sample_size": 10})

    def traits_grpc(self) -> None:
        self.profiles.ListTraits(profiles_pb2.ListTraitsRequest(
            profile=common_pb2.ProfileRef(collection=USERS, id="user_id:u7"), page_size=50),
            metadata=(("authorization", f"Bearer {self.server.tokens['read']}"),))

    def traits_console(self) -> None:
        self.http("GET", "/profiles/users/traits?address=user_id:u7&limit=50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--definitions", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder) / "audiences.db")
        try:
            bench = Bench(server, args.users, args.definitions)
            results = []
            pairs = [("list", "the audiences page's read, with 48 hourly sizes each", args.calls),
                     ("validate", "a definition validated as typed", args.calls),
                     ("preview", f"a preview over {args.users:,} users", max(3, args.calls // 10)),
                     ("traits", "a profile's traits", args.calls)]
            for name, label, calls in pairs:
                grpc_run, console_run = getattr(bench, f"{name}_grpc"), getattr(bench, f"{name}_console")
                grpc_run(), console_run()  # warm both paths
                base, ours = alternate(args.repeats, lambda _i, r=grpc_run, c=calls: bench.per_call(c, r),
                                       lambda _i, r=console_run, c=calls: bench.per_call(c, r),
                                       what=f"console.{name}", unit="ms CPU/call")
                results.append(figure(f"console.{name}", label, ours, "ms CPU/call", baseline=base,
                                      users=args.users, definitions=args.definitions, calls=calls))
        finally:
            server.stop()
    print_table(results, "The console's API against the same calls through gRPC (server CPU per call)")
    write_results(results, RESULTS / "console.json")


if __name__ == "__main__":
    sys.exit(main())
