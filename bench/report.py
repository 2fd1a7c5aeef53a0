"""The end of a run: Markdown summary tables, ratios, and the JSON record.

Every number in the tables comes from this run. Ratios are Bananas' value
divided by the peer's, per metric, both measured in this run; whether a ratio
above 1 is good depends on the metric, so each column says which way is
better (↑ higher is better, ↓ lower is better). Nothing is compared with
another run's numbers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BASELINE = "bananas"
Results = dict[str, dict[str, dict[str, Any]]]
"""scenario -> system -> result, or {"error": ...} / {"skipped": ...}."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """One column: where its value is in a scenario result and how to show it."""

    label: str
    scenario: str
    get: Callable[[dict[str, Any]], float | None]
    higher_is_better: bool
    digits: int
    step: int | None = None
    """For memory columns: which step of ``memory_counts``."""


def _path(*keys: str | int) -> Callable[[dict[str, Any]], float | None]:
    def get(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return float(value) if isinstance(value, int | float) else None

    return get


def _memory_step(index: int) -> Callable[[dict[str, Any]], float | None]:
    """RSS after the step's full count; None if the budget ran out first."""
    rss = _path("steps", index, "rss_mb")

    def get(result: dict[str, Any]) -> float | None:
        step = _step(result, index)
        return rss(result) if step and step["completed"] >= step["target"] else None

    return get


def _step(result: dict[str, Any], index: int) -> dict[str, Any] | None:
    steps = result.get("steps") or []
    return steps[index] if index < len(steps) else None


def _crash_max(result: dict[str, Any]) -> float | None:
    if result.get("recovered") and result["recovered"] == result.get("held"):
        return float(result["max_s"])
    return None


THROUGHPUT = (
    Metric("enqueue jobs/s ↑", "enqueue", _path("one_by_one", "rate"), True, 0),
    Metric("enqueue p50 ms ↓", "enqueue", _path("one_by_one", "p50_ms"), False, 3),
    Metric("enqueue p99 ms ↓", "enqueue", _path("one_by_one", "p99_ms"), False, 3),
    Metric("bulk jobs/s ↑", "enqueue", _path("bulk", "rate"), True, 0),
    Metric("drain no-op jobs/s ↑", "drain", _path("noop", "rate"), True, 0),
    Metric("drain incr jobs/s ↑", "drain", _path("incr", "rate"), True, 0),
    Metric("Redis cmds/job ↓", "drain", _path("noop", "commands_per_job"), False, 1),
    Metric("worker CPU µs/job ↓", "cpu_per_job", _path("us_per_job"), False, 1),
    Metric("cpu 1 proc jobs/s ↑", "cpu", _path("runs", "1", "rate"), True, 0),
    Metric("cpu 2 procs jobs/s ↑", "cpu", _path("runs", "2", "rate"), True, 0),
    Metric("cpu 2 procs speedup ↑", "cpu", _path("speedup"), True, 2),
    Metric("chain steps/s ↑", "workflow", _path("chain_steps_per_s"), True, 0),
    Metric("chord members/s ↑", "workflow", _path("chord_members_per_s"), True, 0),
)
LATENCY = (
    Metric("idle p50 ms ↓", "latency", _path("idle", "p50"), False, 2),
    Metric("idle p95 ms ↓", "latency", _path("idle", "p95"), False, 2),
    Metric("idle p99 ms ↓", "latency", _path("idle", "p99"), False, 2),
    Metric("80% load p50 ms ↓", "latency", _path("loaded", "p50"), False, 2),
    Metric("80% load p99 ms ↓", "latency", _path("loaded", "p99"), False, 2),
    Metric("round trip p50 ms ↓", "roundtrip", _path("p50"), False, 2),
    Metric("round trip p99 ms ↓", "roundtrip", _path("p99"), False, 2),
    Metric("delayed late p50 ms ↓", "delayed", _path("p50"), False, 1),
    Metric("delayed late p99 ms ↓", "delayed", _path("p99"), False, 1),
)

FLOW = (
    Metric("limit off by % ↓", "limited", _path("error_pct"), False, 1),
    Metric("unlimited jobs/s ↑", "limited", _path("unlimited", "rate"), True, 0),
    Metric("limit CPU µs/job ↓", "limited", _path("limit_cpu_us_per_job"), False, 1),
    Metric("small group done ms ↓", "fairshare", _path("groups", "small_done_ms"), False, 0),
    Metric("without groups ms ↓", "fairshare", _path("fifo", "small_done_ms"), False, 0),
)
"""Issue 16's flow control; a system without the feature shows "n/a". The limited
drain's rate is in its progress line, not here: neither more nor fewer is better
than the configured rate, so its column is the distance from it."""


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n / 1000:g}k"


def tables(memory_counts: Sequence[int]) -> tuple[tuple[str, tuple[Metric, ...]], ...]:
    """The summary tables' columns; memory columns are named after the run's counts."""
    footprint = (
        Metric("crash: all recovered after s ↓", "crash", _crash_max, False, 1),
        Metric("Redis B/queued job ↓", "queued", _path("bytes_per_job"), False, 0),
        Metric("RSS idle MiB ↓", "memory", _path("idle_rss_mb"), False, 1),
        *(
            Metric(f"RSS after {_count(n)} MiB ↓", "memory", _memory_step(i), False, 1, step=i)
            for i, n in enumerate(memory_counts)
        ),
    )
    return (
        ("Throughput", THROUGHPUT),
        ("Latency", LATENCY),
        ("Recovery and memory", footprint),
        ("Flow control", FLOW),
    )


def _cell(results: Results, metric: Metric, system: str) -> str:
    entry = results.get(metric.scenario, {}).get(system)
    if entry is None:
        return ""
    if "error" in entry:
        return "error"
    if "skipped" in entry:
        return "n/a" if str(entry["skipped"]).startswith("n/a") else "—"
    if metric.scenario == "crash" and metric.get(entry) is None:
        return _crash_text(entry)
    if metric.step is not None and metric.get(entry) is None:
        return _partial_memory_text(entry, metric.step)
    value = metric.get(entry)
    return "—" if value is None else f"{value:,.{metric.digits}f}"


def _crash_text(entry: dict[str, Any]) -> str:
    if not entry.get("recovered"):
        return f"none in {entry.get('timeout_s', 0):.0f} s"
    return f"{entry['recovered']}/{entry['held']} in {entry['timeout_s']:.0f} s"


def _partial_memory_text(entry: dict[str, Any], index: int) -> str:
    """A memory step cut short by its budget: the RSS and the count reached."""
    step = _step(entry, index)
    if step is None:
        return "—"
    return f"{step['rss_mb']:.1f} at {_count(step['completed'])}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|---" + "|---:" * (len(headers) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _used(results: Results, metrics: Sequence[Metric], systems: Sequence[str]) -> list[Metric]:
    return [m for m in metrics if any(_cell(results, m, s) for s in systems)]


def summary_markdown(results: Results, systems: Sequence[str], memory_counts: Sequence[int]) -> str:
    """Return the summary tables, one row per system."""
    parts = []
    for title, metrics in tables(memory_counts):
        used = _used(results, metrics, systems)
        if not used:
            continue
        rows = [[s, *(_cell(results, m, s) for m in used)] for s in systems]
        parts.append(f"### {title}\n\n" + _table(["system", *(m.label for m in used)], rows))
    return "\n\n".join(parts)


def ratios(
    results: Results, systems: Sequence[str], memory_counts: Sequence[int]
) -> dict[str, dict[str, float]]:
    """Return peer -> metric label -> Bananas ÷ peer, where both were measured."""
    out: dict[str, dict[str, float]] = {}
    for _, metrics in tables(memory_counts):
        for metric in metrics:
            entries = results.get(metric.scenario, {})
            base_entry = entries.get(BASELINE)
            base = metric.get(base_entry) if base_entry else None
            if not base:
                continue
            for peer in systems:
                entry = entries.get(peer)
                value = metric.get(entry) if entry and peer != BASELINE else None
                if value:
                    out.setdefault(peer, {})[metric.label] = base / value
    return out


def ratios_markdown(results: Results, systems: Sequence[str], memory_counts: Sequence[int]) -> str:
    """Return the Bananas ÷ peer table (one row per metric, one column per peer),
    or a sentence saying why there is none."""
    table = ratios(results, systems, memory_counts)
    if not table:
        return "No ratios: Bananas has no result in this run."
    peers = [peer for peer in systems if peer in table]
    rows = [
        [
            metric.label,
            *(f"{table[p][metric.label]:.3g}" if metric.label in table[p] else "" for p in peers),
        ]
        for _, metrics in tables(memory_counts)
        for metric in metrics
        if any(metric.label in table[p] for p in peers)
    ]
    return _table(["bananas ÷ peer", *peers], rows)


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write the run's record (results, ratios, versions, sizes) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
