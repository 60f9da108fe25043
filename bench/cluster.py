"""One shard against two: events/s through the cluster and how fresh a shard's store is.

Starts a nats-server (JetStream on a temporary directory), the identity stage and one, then two,
shards as `audiences-server cluster` processes on the system clock; this process is the front. It
sends `--events` track calls from `--users` users in batches of `--batch`, and measures:

- `events/s`: calls sent divided by the seconds from the first append until every shard has
  stored them all (the shards' `events` rows, polled);
- `freshness`: for a probe call appended every 0.2 s during the load, the seconds from the log's
  acknowledgement to the call being stored by its shard (p50, p95);
- CPU seconds per 1,000 calls of each role (utime + stime from /proc/<pid>/stat), which is what
  to compare on a shared machine where wall-clock figures move with the neighbours.

What 2 cores can and cannot show: the front, nats-server, the identity stage and the shards all
share the same two cores, so wall-clock events/s cannot grow with shards here; more shards only
split the store-and-evaluate work (visible as CPU per 1,000 calls per shard halving), while the
identity stage, which every call crosses, stays whole. Scaling out shows on machines with a core
per role and more.

    python bench/cluster.py --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apsw

from audiences_server.cluster.entries import partition_of
from audiences_server.cluster.front import Front
from audiences_server.cluster.log import JetStreamLog
from audiences_server.engine.clock import Clock

TICK_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        conn.setbusytimeout(5000)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except apsw.SQLError:
            return 0


def has_message(db: Path, message_id: str) -> bool:
    with contextlib.closing(apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        conn.setbusytimeout(5000)
        try:
            return conn.execute("SELECT 1 FROM events WHERE message_id = ?", (message_id,)).fetchone() is not None
        except apsw.SQLError:
            return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(command, stdout=output, stderr=output)


async def run_once(shards: int, events: int, users: int, batch: int) -> dict[str, Any]:
    nats = shutil.which("nats-server")
    if nats is None:
        sys.exit("nats-server is not on PATH (Debian: apt-get install nats-server)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        url = f"nats://127.0.0.1:{port}"
        server = start([nats, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp / "nats")], tmp / "nats.log")
        await asyncio.sleep(1)
        me = [sys.executable, "-m", "audiences_server.cli", "cluster"]
        roles = {"identity": start([*me, "identity", "--db", str(tmp / "identity.db"), "--nats", url,
                                    "--partitions", str(shards)], tmp / "identity.log")}
        for p in range(shards):
            roles[f"shard-{p}"] = start([*me, "shard", "--db", str(tmp / f"shard-{p}.db"), "--nats", url,
                                         "--partition", str(p)], tmp / f"shard-{p}.log")
        roles["nats-server"] = server
        try:
            return await _measure(tmp, url, shards, events, users, batch, roles)
        finally:
            for process in roles.values():
                process.terminate()
            for process in roles.values():
                process.wait(30)


async def _measure(tmp: Path, url: str, shards: int, events: int, users: int, batch: int,
                   roles: dict[str, subprocess.Popen[bytes]]) -> dict[str, Any]:
    log = await JetStreamLog.connect(url)
    front = Front(log, Clock())
    dbs = [tmp / f"shard-{p}.db" for p in range(shards)]
    # Warm-up: every role started, and one call through.
    await front.submit(1, [{"type": "track", "userId": "warm", "event": "Warm", "messageId": "warm"}])
    while sum(stored(db) for db in dbs) < 1:
        await asyncio.sleep(0.1)
    cpu_before = {name: cpu_seconds(p.pid) for name, p in roles.items()}
    calls = [{"type": "track", "userId": f"u{i % users}", "event": "Order Completed", "messageId": f"m{i}",
              "properties": {"total": i % 100}} for i in range(events)]
    started = time.perf_counter()
    probes: list[float] = []
    probing = asyncio.create_task(_probe(front, dbs, shards, probes))
    for first in range(0, events, batch):
        await front.submit(1, calls[first:first + batch])
    while sum(stored(db) for db in dbs) < events + 1 + len(probes):
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    probing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await probing
    cpu = {name: (cpu_seconds(p.pid) - cpu_before[name]) * 1000 / events for name, p in roles.items()}
    await log.close()
    return {"shards": shards, "events_per_s": events / seconds, "freshness_p50_s": _pct(probes, 50),
            "freshness_p95_s": _pct(probes, 95), "cpu_ms_per_call": cpu}


async def _probe(front: Front, dbs: list[Path], shards: int, out: list[float]) -> None:
    """One call every 0.2 s; how long after its ack its shard has it."""
    n = 0
    while True:
        n += 1
        message_id = f"probe-{n}"
        await front.submit(1, [{"type": "track", "userId": f"probe{n}", "event": "Probe", "messageId": message_id}])
        acked = time.perf_counter()
        while not any(has_message(db, message_id) for db in dbs):
            await asyncio.sleep(0.01)
        out.append(time.perf_counter() - acked)
        await asyncio.sleep(0.2)


def _pct(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[pct - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}; "
          f"partition of user profile 1: {partition_of(1, 2)} of 2")
    for shards in (1, 2):
        figures = asyncio.run(run_once(shards, args.events, args.users, args.batch))
        cpu = ", ".join(f"{name} {ms:.3f}" for name, ms in figures["cpu_ms_per_call"].items())
        print(f"{shards} shard(s): {figures['events_per_s']:,.0f} events/s end to end; freshness p50 "
              f"{figures['freshness_p50_s'] * 1000:.0f} ms, p95 {figures['freshness_p95_s'] * 1000:.0f} ms; "
              f"CPU ms per call: {cpu}")


if __name__ == "__main__":
    main()
