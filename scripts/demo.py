"""`make demo`: a realistic shop's data, loaded through the client, and audiences that use the
whole query language, evaluated live.

Steps: start a server of its own on `var/demo/` (or use the one at an explicit `--address`; the
AUDIENCES_* variables never choose the server, so a shell set up for another server is safe),
generate a B2B e-commerce data set with `bench/data.py` (10,000 users, 1,000 accounts, 300,000
events over 120 days by default), send it through `audiences.Client`'s background batching
queue, create the definitions below, tick until every one is LIVE, and print each with its size.

    .venv/bin/python scripts/demo.py                 # the full data set, on its own server
    .venv/bin/python scripts/demo.py --users 500 --events 10000
    .venv/bin/python scripts/demo.py --address 127.0.0.1:50051   # on a running server
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import audiences
from audiences.v1 import admin_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import data  # noqa: E402 - bench/data.py, the benchmarks' generator, is not a package

DEMO_DIR = ROOT / "var" / "demo"


@dataclass(frozen=True)
class Definition:
    """One audience or computed trait of the demo, and what part of the language it shows."""

    kind: str  # "audience" or "computed_trait"
    key: str
    text: str
    shows: str
    collection: str = "users"


DEFINITIONS: tuple[Definition, ...] = (
    Definition("audience", "active_browsers", "event('Product Viewed').within(7 days).count() >= 3",
               "count in a window"),
    Definition("audience", "lapsed_buyers",
               "event('Order Completed').between(30 days, 90 days).count() >= 1\n"
               "AND NOT event('Order Completed').within(30 days).count() >= 1",
               "between, AND NOT"),
    Definition("audience", "big_spenders",
               "event('Order Completed').within(90 days).sum(property('revenue')) >= 500",
               "aggregation threshold"),
    Definition("audience", "considered_then_carted",
               "event('Product Viewed').where(\n"
               "    event('Product Added').where(property('product_id') = property(parent: 'product_id'))\n"
               "        .within(parent: 1 hours).count() >= 1\n"
               ").within(30 days).count() >= 2",
               "funnel: parent window, parent property"),
    Definition("audience", "serial_returners", "event('Order Refunded').count() >= 2 OR "
               "event('Order Refunded').within(14 days).count() >= 1", "OR, unbounded history"),
    Definition("audience", "pro_or_enterprise", "trait('plan').one_of('pro', 'enterprise')", "custom trait"),
    Definition("audience", "vip", "trait('big_spenders') = true AND trait('active_browsers') = true",
               "audience of audiences"),
    Definition("computed_trait", "favorite_category",
               "event('Product Viewed').within(120 days).mode(property('category'), 3)", "mode"),
    Definition("computed_trait", "revenue_90d", "event('Order Completed').within(90 days).sum(property('revenue'))",
               "computed trait: sum"),
    Definition("computed_trait", "last_sign_in_method", "event('Signed In').last(property('method'))",
               "computed trait: last"),
    Definition("audience", "buying_accounts", "ANY event('Order Completed').within(30 days).count() >= 1",
               "account ANY", "accounts"),
    Definition("audience", "all_users_signed_in", "ALL event('Signed In').within(30 days).count() >= 1",
               "account ALL", "accounts"),
    Definition("audience", "dormant_accounts", "ALL NOT event('Page Viewed').within(14 days).count() >= 1",
               "account ALL NOT", "accounts"),
    Definition("audience", "accounts_with_vips", "ANY trait('vip') = true AND trait('employees') >= 50",
               "account ANY reading a user audience, account trait", "accounts"),
)


def _say(text: str) -> None:
    print(text, flush=True)


def load(client: audiences.Client, calls: Iterable[dict[str, Any]], say: Callable[[str], None] = _say) -> int:
    """Sends every call through the client's background queue; returns how many were sent."""
    started, sent = time.monotonic(), 0
    for call in calls:
        client.enqueue(call)
        sent += 1
        if sent % 50_000 == 0:
            say(f"  queued {sent:,} calls ({sent / (time.monotonic() - started):,.0f}/s)")
    client.flush()
    stats = client.stats
    say(f"  sent {sent:,} calls in {time.monotonic() - started:.1f}s: {stats.accepted:,} accepted, "
        f"{stats.duplicate:,} duplicate, {stats.rejected + stats.failed:,} not stored")
    return sent


def define(client: audiences.Client, definitions: Iterable[Definition] = DEFINITIONS) -> None:
    """Creates each definition, or updates it when the key exists (so the demo can run twice)."""
    for d in definitions:
        create = client.create_audience if d.kind == "audience" else client.create_computed_trait
        update = client.update_audience if d.kind == "audience" else client.update_computed_trait
        try:
            create(d.key, d.text, collection=d.collection, description=d.shows)
        except audiences.AudiencesError as error:
            if error.reason != "ALREADY_EXISTS" and error.code.name != "ALREADY_EXISTS":
                raise
            update(d.key, collection=d.collection, definition=d.text, description=d.shows)


def sizes(client: audiences.Client, definitions: Iterable[Definition] = DEFINITIONS) -> dict[tuple[str, str], int]:
    """The size of each definition now: members of an audience, profiles with a value for a trait."""
    out = {}
    for d in definitions:
        get = client.get_audience if d.kind == "audience" else client.get_computed_trait
        out[(d.collection, d.key)] = get(d.key, collection=d.collection).size
    return out


def run(client: audiences.Client, *, users: int, events: int, seed: int = 7,
        say: Callable[[str], None] = _say) -> dict[tuple[str, str], int]:
    """The demo's pipeline on a server the client reaches; returns each definition's size."""
    now = client.get_evaluator_status().clock_time.ToMilliseconds()
    say(f"generating {users:,} users, {max(1, users // 10):,} accounts, {events:,} events over 120 days")
    load(client, data.generate(users, events, now, seed), say)
    say(f"creating {len(DEFINITIONS)} audiences and computed traits")
    started = time.monotonic()
    define(client)
    client.wait_until_live(timeout=600)
    say(f"  all LIVE after {time.monotonic() - started:.1f}s of backfill")
    return sizes(client)


def report(client: audiences.Client, found: dict[tuple[str, str], int]) -> None:
    """Prints each definition with its size and what it shows."""
    rows = []
    for d in DEFINITIONS:
        get = client.get_audience if d.kind == "audience" else client.get_computed_trait
        item = get(d.key, collection=d.collection)
        status = admin_pb2.ComputationStatus.Name(item.status).removeprefix("COMPUTATION_STATUS_")
        kind = "audience" if d.kind == "audience" else "trait"
        rows.append((d.key, d.collection, kind, status, f"{found[(d.collection, d.key)]:,}", d.shows))
    headers = ("key", "collection", "kind", "status", "size", "shows")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _start_server() -> Any:
    from audiences_server.testing import ServerProcess

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    return ServerProcess(DEMO_DIR / "audiences.db", "--synchronous", "NORMAL")


def main(argv: list[str] | None = None) -> int:
    """Runs the demo; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    # Only an explicit --address: AUDIENCES_ADDRESS names the user's own server (the README's
    # walkthrough suggests exporting it), which must not receive the demo's 300,000 events.
    parser.add_argument("--address", default=None,
                        help="use the server at this address (tokens as for the CLI) instead of starting one; "
                        "AUDIENCES_ADDRESS is ignored")
    parser.add_argument("--keep", action="store_true", help="leave the demo's own server running")
    args = parser.parse_args(argv)
    started = time.monotonic()
    server = None if args.address else _start_server()
    if server is not None:
        _say(f"started a server on {server.address} over {server.db}")
        client = audiences.Client(server.address, server.tokens, send_threads=4)
    else:
        client = audiences.Client(args.address, send_threads=4)
    try:
        found = run(client, users=args.users, events=args.events, seed=args.seed)
        report(client, found)
        _say(f"demo finished in {time.monotonic() - started:.1f}s")
        if server is not None and args.keep:
            _say(f"the server keeps running (pid {server.proc.pid}); try:\n"
                 f"  export AUDIENCES_ADDRESS={server.address} AUDIENCES_CREDENTIALS_FILE={DEMO_DIR}/credentials.json\n"
                 "  .venv/bin/audiences audiences list")
    finally:
        client.close()
        if server is not None and not args.keep:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
