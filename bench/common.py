"""What the benchmark scripts share: figures, alternating repeats, percentiles, memory, the table.

A figure is a dict with a stable dotted `name` (`ingest.batch`, `tick.k1000`, …), a `label`
saying what was measured at which scale, `value` (the median of `repeats` runs), `unit`, and
`spread`, (max − min) / median of the runs. A figure with a baseline measured in the same run
also has `baseline` (the baseline's median) and `ratio` = value / baseline, always in that
direction: above 1 means more events/s or more seconds than the baseline. Latency figures
(p50, p99) are taken over every sample of a run; their `repeats` are the run's equal windows
and `spread` the spread of the percentile across them.

Benchmarks report and never assert: a missed target is a line of the table, not a failure.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def summary(samples: Sequence[float]) -> tuple[float, float]:
    """Median and relative spread ((max − min) / median)."""
    mid = statistics.median(samples)
    return mid, ((max(samples) - min(samples)) / mid if mid else 0.0)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), interpolated between the two nearest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rounded(value: float, digits: int) -> float:
    return round(value, digits) if digits > 0 else float(round(value))


def figure(name: str, label: str, samples: Sequence[float], unit: str, digits: int = 3,
           baseline: Sequence[float] | None = None, **extra: Any) -> dict[str, Any]:
    """A figure from the runs' samples, and from the baseline's runs when there is one."""
    mid, spread = summary(samples)
    out: dict[str, Any] = {"name": name, "label": label, "value": rounded(mid, digits), "unit": unit}
    if baseline:
        base, base_spread = summary(baseline)
        out.update(baseline=rounded(base, digits if base >= 1 else max(digits, 4)),
                   ratio=round(mid / base, 3) if base else None, baseline_spread=round(base_spread, 3))
    out.update(repeats=len(samples), spread=round(spread, 3), samples=[rounded(s, digits) for s in samples])
    out.update(extra)
    return out


def latency_figures(name: str, label: str, samples: Sequence[float], windows: Sequence[Sequence[float]],
                    **extra: Any) -> list[dict[str, Any]]:
    """p50 and p99 (ms) over all samples, with their spread across the windows of the run."""
    out = []
    for q in (50, 99):
        per_window = [percentile(w, q) for w in windows if w]
        spread = summary(per_window)[1] if per_window else 0.0
        out.append({"name": f"{name}.p{q}", "label": f"{label}, p{q}", "value": round(percentile(samples, q), 1),
                    "unit": "ms", "repeats": len(per_window), "spread": round(spread, 3),
                    "samples": [round(p, 1) for p in per_window], "count": len(samples), **extra})
    return out


def windows_of(stamped: Sequence[tuple[float, float]], parts: int) -> list[list[float]]:
    """Splits (time, value) samples into `parts` equal time windows of the run: the values of each."""
    if not stamped:
        return []
    start, end = min(t for t, _ in stamped), max(t for t, _ in stamped)
    width = (end - start) / parts or 1.0
    out: list[list[float]] = [[] for _ in range(parts)]
    for t, v in stamped:
        out[min(int((t - start) / width), parts - 1)].append(v)
    return out


def alternate(repeats: int, baseline: Callable[[int], float], subject: Callable[[int], float],
              what: str = "", unit: str = "") -> tuple[list[float], list[float]]:
    """Runs baseline, subject, baseline, subject, …; each returns its figure for repeat i."""
    base: list[float] = []
    ours: list[float] = []
    for i in range(repeats):
        base.append(baseline(i))
        ours.append(subject(i))
        if what:
            print(f"  {what} round {i}: baseline {base[-1]:>12,.1f}  ours {ours[-1]:>12,.1f} {unit}", flush=True)
    return base, ours


def rate(count: int, run: Callable[[], Any]) -> float:
    """Items per second of one run."""
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


# ------------------------------------------------------------------ memory of a child process


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) since it started or since `reset_peak`, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> bool:
    """Resets the process's VmHWM to its current RSS (Linux `clear_refs` 5); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ output


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def print_table(results: Sequence[dict[str, Any]], title: str = "") -> None:
    """One line per figure: median, unit, baseline, ratio, repeats, spread, target and whether met."""
    if title:
        print(f"\n{title}")
    width = max(len(r["name"]) for r in results)
    head = (f"{'figure':<{width}}  {'median':>10} {'unit':<10} {'baseline':>10} {'ratio':>7} {'n':>4}"
            f" {'spread':>6}  {'target':<28} met")
    print(head)
    print("-" * (len(head) + 4))
    for r in results:
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.3g}"
        baseline = "" if r.get("baseline") is None else _number(r["baseline"])
        met = {True: "yes", False: "NO", None: ""}[r.get("met")]
        print(f"{r['name']:<{width}}  {_number(r['value']):>10} {r['unit']:<10} {baseline:>10} {ratio:>7}"
              f" {r.get('repeats', 0):>4} {r.get('spread', 0) * 100:>5.0f}%  {r.get('target', ''):<28} {met}")
        if r.get("note"):
            print(f"{'':<{width}}  ↳ {r['note']}")


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The same table in Markdown, with each figure's label."""
    lines = ["| figure | what | median | unit | baseline | ratio | n | spread | target | met |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in results:
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.3g}"
        baseline = "" if r.get("baseline") is None else _number(r["baseline"])
        met = {True: "met", False: "**missed**", None: ""}[r.get("met")]
        lines.append(f"| `{r['name']}` | {r.get('label', '')} | {_number(r['value'])} | {r['unit']} | {baseline}"
                     f" | {ratio} | {r.get('repeats', 0)} | {r.get('spread', 0) * 100:.0f}% | {r.get('target', '')}"
                     f" | {met} |")
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(results), indent=2, ensure_ascii=False) + "\n")


def report(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Prints the figures as a table and writes them to `path` as JSON."""
    print_table(results)
    write_results(results, path)
    print(f"\nwritten {path}")
