"""The benchmark suite: every figure of BENCHMARKS.md in one run, with its baseline and target.

Runs five stages, one after the other, each with its own servers in child processes:

- ingest (bench/ingest.py): `ingest.batch`, `http.batch` (the HTTP tracking API against
  `BatchJson`), `ingest.stream`, `ingest.unary` (and, in the full preset, `ingest.batch_typed`),
  each against its baseline in alternating runs, and
  `health.idle_streams.p99` (health checks with 1,000 idle streams open);
- evaluator (bench/evaluator.py): `backfill.a` … `backfill.e` against DuckDB,
  `memory.backfill.peak`, `tick.k1000` and `tick.k1000.per_definition` against DuckDB,
  `tick.k1000.floor` and `tick.k1000.vs_floor` (SQLite's set-based floor for that tick, same rounds),
  `backfill.d200` and `tick.k1000.d200` (a realistic space of 200 definitions, bench/space.py),
  `tick.growth.k100`, and `profiles.traits.*` with `profiles.rest.*` beside it (bench/live.py's
  reads over gRPC and over HTTP, alternating, on the big data set);
- live (bench/live.py): `freshness.p50/p99` and `sync.latency.p50/p99` under a paced stream at
  1,000 events/s on the system clock, and the webhook first-sync throughputs;
- live_d200 (bench/live.py with the realistic space's 199 definitions beside `bench_fresh`):
  `backfill.live.d200` (the 199 created together, made LIVE by the server's own ticks),
  `freshness.d200.p50/p99` at 1,000 events/s, `capacity.d200` (the highest paced rate tried
  whose freshness p99 stays within 1 s, at least 95% of it achieved) and, at twice that rate,
  `overload.d200.ticks`, `overload.d200.ingest` (rate achieved / asked) and
  `overload.d200.drain`;
- sync (bench/sync_event.py): `sync.event.throughput`, EVENT-style webhook deliveries (a signed
  request per change) to a local receiver, with the server's CPU per change and the load.

Every ratio is value / baseline, both measured in the same run in alternating runs (baseline,
ours, baseline, ours, …); the value is the median of the runs and `spread` their
(max − min) / median. The suite reports and never asserts: each figure with a target says
whether it was met. The targets are set for the full scale; the quick preset's small data sets
only show that the harness works and roughly where things stand.

Writes bench/results/latest.json (a list, one object per figure: name, label, value, unit,
baseline, ratio, repeats, spread, target, met, …) and bench/results/latest.md (the Markdown
table), and prints the table.

    python bench/suite.py --quick        # small scales, about 3 minutes (`make bench-quick`)
    python bench/suite.py                # 100k users / 1M events (`make bench`): about 20 minutes today
    python bench/suite.py --quick --only live,ingest
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import evaluator
import ingest
import live
import sync_event
from common import RESULTS, markdown_table, print_table, write_results

Check = Callable[[dict[str, Any]], bool]


def _ratio_at_most(limit: float) -> Check:
    return lambda f: f.get("ratio") is not None and f["ratio"] <= limit


def _ratio_at_least(limit: float) -> Check:
    return lambda f: f.get("ratio") is not None and f["ratio"] >= limit


def _value_at_most(limit: float) -> Check:
    return lambda f: f.get("value") is not None and f["value"] <= limit


def _value_at_least(limit: float) -> Check:
    return lambda f: f.get("value") is not None and f["value"] >= limit


TARGETS: dict[str, tuple[str, Check]] = {
    "ingest.batch": ("ratio ≥ 0.5 and ≥ 40,000/s",
                     lambda f: _ratio_at_least(0.5)(f) and _value_at_least(40_000)(f)),
    "ingest.stream": ("ratio ≥ 0.7", _ratio_at_least(0.7)),
    "ingest.unary": ("ratio ≥ 0.6", _ratio_at_least(0.6)),
    "http.batch": ("ratio ≥ 0.8 (of BatchJson)", _ratio_at_least(0.8)),
    "health.idle_streams.p99": ("≤ 10 ms", _value_at_most(10)),
    **{f"backfill.{tag}": ("ratio ≤ 10 (≤ 10× DuckDB)", _ratio_at_most(10)) for tag in "abcd"},
    "backfill.e": ("ratio ≤ 10 (≤ 10× DuckDB) and ≤ 0.3 s",
                   lambda f: _ratio_at_most(10)(f) and _value_at_most(0.3)(f)),
    "tick.k1000": ("p50 ≤ 30 ms", _value_at_most(30)),
    "tick.k1000.per_definition": ("p50 ≤ 15 ms", _value_at_most(15)),
    "tick.k1000.vs_floor": ("ratio ≤ 1.5 (≤ 1.5× SQLite's floor)", _ratio_at_most(1.5)),
    "tick.k1000.d200": ("≤ 300 ms and ratio ≤ 10", lambda f: _value_at_most(300)(f) and _ratio_at_most(10)(f)),
    "backfill.d200": ("≤ 60 s", _value_at_most(60)),
    "tick.growth.k100": ("ratio ≤ 2", _ratio_at_most(2)),
    "freshness.p99": ("≤ 500 ms", _value_at_most(500)),
    "profiles.traits.p99": ("≤ 10 ms", _value_at_most(10)),
    "profiles.rest.p99": ("ratio ≤ 1.2 (≤ 1.2× gRPC's p99)", _ratio_at_most(1.2)),
    "memory.backfill.peak": ("≤ 1,024 MiB", _value_at_most(1024)),
    "memory.d200.peak": ("≤ 1,024 MiB", _value_at_most(1024)),
    "freshness.d200.p99": ("≤ 500 ms", _value_at_most(500)),
    "overload.d200.ticks": ("p99 ≤ 2,000 ms", lambda f: f.get("p99") is not None and f["p99"] <= 2000),
    "overload.d200.ingest": (f"≥ {live.ACHIEVED} (keeps its rate)", _value_at_least(live.ACHIEVED)),
    "overload.d200.drain": ("≤ 60 s (every entry seen once the load drops)", _value_at_most(60)),
    "sync.event.throughput": ("≥ 3,000 changes/s", _value_at_least(3000)),
}

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "ingest": ingest.Config(users=2_000, events=20_000, stream=5_000, unary=2_000, repeats=3, typed=False),
        "evaluator": evaluator.Config(users=5_000, events=50_000, rounds=2, duck_repeats=3, tick_repeats=5,
                                      d200_repeats=3),
        "live": live.Config(users=2_000, events=20_000, seconds=5, sync_repeats=2, reads=False),
        "live_d200": live.Config(users=2_000, events=20_000, seconds=10, reads=False, sync=False, definitions=199,
                                 capacity_rates=(500, 1_000)),
        "sync": sync_event.Config(members=3_000, repeats=2),
        "read_seconds": 3.0,
    },
    "full": {
        "ingest": ingest.Config(users=10_000, events=100_000, stream=30_000, unary=10_000, repeats=5, typed=True),
        "evaluator": evaluator.Config(users=100_000, events=1_000_000, rounds=3, duck_repeats=3, tick_repeats=7),
        "live": live.Config(users=20_000, events=200_000, seconds=30, sync_repeats=3, reads=False),
        "live_d200": live.Config(users=100_000, events=1_000_000, seconds=20, reads=False, sync=False,
                                 definitions=199, capacity_rates=(250, 500, 1_000, 2_000)),
        "sync": sync_event.Config(members=20_000, repeats=3),
        "read_seconds": 15.0,
    },
}
STAGES = ("ingest", "evaluator", "live", "live_d200", "sync")


def run_stage(stage: str, preset: dict[str, Any]) -> list[dict[str, Any]]:
    if stage == "ingest":
        return ingest.collect(preset["ingest"])
    if stage == "evaluator":
        config: evaluator.Config = preset["evaluator"]

        def reads(big: evaluator.Server) -> list[dict[str, Any]]:
            print("profile reads on the big data set:", flush=True)
            return live.profile_reads(big.process.address, big.process.http_url, big.process.tokens["read"],
                                      big.users, preset["read_seconds"], 8,
                                      f"; {big.users:,} users / {big.events:,} events")

        return evaluator.collect(config, on_big=reads)
    if stage == "sync":
        return sync_event.collect(preset["sync"])
    return live.collect(preset[stage])


def judge(results: list[dict[str, Any]]) -> None:
    """Adds each figure's target and whether it was met."""
    for fig in results:
        if fig["name"] in TARGETS:
            text, check = TARGETS[fig["name"]]
            fig["target"] = text
            fig["met"] = bool(check(fig)) if fig.get("value") is not None else False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick preset (small scales, few repeats)")
    parser.add_argument("--only", default=",".join(STAGES), help=f"stages to run, of {', '.join(STAGES)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    name = "quick" if args.quick else "full"
    preset = PRESETS[name]
    stages = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    failed = []
    for stage in stages:
        print(f"\n=== {stage} ({name} preset) ===", flush=True)
        stage_started = time.perf_counter()
        try:
            figures = run_stage(stage, preset)
        except Exception as error:  # report the others; a broken stage is a line of the table
            traceback.print_exc()
            failed.append(stage)
            figures = [{"name": f"{stage}.error", "label": f"the {stage} stage failed", "value": None, "unit": "",
                        "repeats": 0, "spread": 0.0, "note": f"{type(error).__name__}: {error}"[:300]}]
        for fig in figures:
            fig["stage"] = stage
        results += figures
        print(f"=== {stage}: {time.perf_counter() - stage_started:.0f} s ===", flush=True)
    judge(results)
    for fig in results:
        fig.update(preset=name, date=date)
    elapsed = time.perf_counter() - started
    print_table(results, f"{name} preset, {date}, {platform.node()} ({_cores()} cores), {elapsed:.0f} s")
    write_results(results, args.out)
    args.out.with_suffix(".md").write_text(markdown_table(results))
    print(f"\nwritten {args.out} and {args.out.with_suffix('.md')}")
    return 1 if failed else 0


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
