"""Turn the sessions' raw runs into figures (median over runs), a table and JSON."""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import median

FIGURES = (
    "ack_latency",
    "first_text_overhead_small",
    "first_text_overhead_large",
    "completion_overhead_small",
    "completion_overhead_large",
    "cpu_per_turn",
    "concurrency",
    "file_relay",
    "cold_start",
)


def machine() -> dict[str, Any]:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = _read("/proc/meminfo")

    def mem_mb(key: str) -> int | None:
        found = re.search(rf"^{key}:\s*(\d+) kB", meminfo, re.MULTILINE)
        return int(found.group(1)) // 1024 if found else None

    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_mb": mem_mb("MemTotal"),
        "mem_available_mb": mem_mb("MemAvailable"),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _med(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value)
    result = median(values)
    return round(result, 2) if result is not None else None


def figures(sessions: dict[str, Any]) -> dict[str, Any]:
    zero, stream, conc = sessions["zero_latency"], sessions["streaming"], sessions["concurrency"]
    small, big = stream["small_runs"], stream["big_runs"]
    cold = zero["cold_starts_s"] + stream["cold_starts_s"] + conc["cold_starts_s"]
    return {
        "ack_latency": {
            "unit": "ms",
            "p50": _med(big, "ack_ms", "p50"),
            "p99": _med(big, "ack_ms", "p99"),
            "in_flight": _med(big, "in_flight_at_probe", "median"),
            "errors": sum(run["ack_errors"] for run in big),
            "target": {"p99": 50},
        },
        "first_text_overhead_small": _overhead(small, "first_text_ms", {"p50": 25, "p99": 100}),
        "first_text_overhead_large": _overhead(big, "first_text_ms", {"p50": 25, "p99": 100}),
        "completion_overhead_small": _overhead(small, "completion_ms", {"p50": 25}),
        "completion_overhead_large": _overhead(big, "completion_ms", {"p50": 25}),
        "cpu_per_turn": {
            "unit": "ms",
            "value": _med(zero["cpu_runs"], "cpu_ms_per_turn"),
            "turns": zero["cpu_runs"][0]["turns"] if zero["cpu_runs"] else 0,
            "slack_calls_per_turn": _med(zero["cpu_runs"], "slack_calls_per_turn"),
            "turns_per_s": _med(zero["cpu_runs"], "turns_per_s"),
            "target": {"value": 10},
        },
        "concurrency": {
            "unit": "MB",
            "peak_rss": _med(conc["runs"], "rss_peak_mb"),
            "turns": conc["runs"][0]["turns"] if conc["runs"] else 0,
            "concurrent_streams": _med(conc["runs"], "concurrent_streams"),
            "errors": sum(run["errors"] for run in conc["runs"]),
            "target": {"peak_rss": 300, "errors": 0},
        },
        "file_relay": {
            "unit": "MB",
            "rss_growth": _med(zero["file_runs"], "rss_growth_mb"),
            "mb_per_s": _med(zero["file_runs"], "mb_per_s"),
            "file_mb": zero["file_runs"][0]["mb"] if zero["file_runs"] else 0,
            "all_added": all(run["added"] for run in zero["file_runs"]),
            "target": {"rss_growth": 32},
        },
        "cold_start": {
            "unit": "s",
            "value": _med([{"s": s} for s in cold], "s"),
            "samples": len(cold),
            "target": {"value": 2},
        },
    }


def _overhead(runs: list[dict[str, Any]], key: str, target: dict[str, float]) -> dict[str, Any]:
    return {
        "unit": "ms",
        "p50": _med(runs, key, "p50"),
        "p99": _med(runs, key, "p99"),
        "turns": runs[0]["turns"] if runs else 0,
        "concurrent_streams": _med(runs, "concurrent_streams"),
        "target": target,
    }


def met(figure: dict[str, Any]) -> bool | None:
    verdicts = []
    for key, limit in figure.get("target", {}).items():
        value = figure.get(key)
        if value is None:
            return None
        verdicts.append(value <= limit)
    return all(verdicts) if verdicts else None


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def rows(figs: dict[str, Any], profile: Any) -> list[tuple[str, str, str, str, str]]:
    """(figure, how measured, result, target, verdict) for each figure."""
    ack = figs["ack_latency"]
    fts, ftl = figs["first_text_overhead_small"], figs["first_text_overhead_large"]
    cos, col = figs["completion_overhead_small"], figs["completion_overhead_large"]
    cpu, conc, relay, cold = (
        figs["cpu_per_turn"],
        figs["concurrency"],
        figs["file_relay"],
        figs["cold_start"],
    )

    def verdict(fig: dict[str, Any]) -> str:
        return {True: "met", False: "missed", None: "–"}[met(fig)]

    def p50_99(fig: dict[str, Any]) -> str:
        return f"p50 {_fmt(fig['p50'])} ms / p99 {_fmt(fig['p99'])} ms"

    return [
        (
            "acknowledgement latency",
            f"event sent → HTTP answer, {_fmt(ack['in_flight'], 0)} turns in flight",
            p50_99(ack),
            "p99 ≤ 50 ms",
            verdict(ack),
        ),
        (
            f"first-text overhead @{fts['turns']}",
            "model's first delta → first text in Slack",
            p50_99(fts),
            "p50 ≤ 25, p99 ≤ 100 ms",
            verdict(fts),
        ),
        (
            f"first-text overhead @{profile.big_batch}",
            "same, larger batch (+ wave-2 messages)",
            p50_99(ftl),
            "p50 ≤ 25, p99 ≤ 100 ms",
            verdict(ftl),
        ),
        (
            f"completion overhead @{cos['turns']}",
            "model's last delta → chat.stopStream",
            p50_99(cos),
            "p50 ≤ 25 ms",
            verdict(cos),
        ),
        (
            f"completion overhead @{profile.big_batch}",
            "same, larger batch",
            p50_99(col),
            "p50 ≤ 25 ms",
            verdict(col),
        ),
        (
            "CPU per turn",
            f"bot user+sys / turns; {cpu['turns']} turns, zero-latency model, "
            f"{profile.cpu_tokens}-token answer, tool call in 1 of {profile.tool_every}",
            f"{_fmt(cpu['value'], 2)} ms ({_fmt(cpu['slack_calls_per_turn'], 1)} Slack calls)",
            "≤ 10 ms",
            verdict(cpu),
        ),
        (
            "concurrency",
            f"bot peak RSS, {conc['turns']} turns, {_fmt(conc['concurrent_streams'], 0)} "
            "streaming at once",
            f"{_fmt(conc['peak_rss'])} MB, {conc['errors']} errors",
            "≤ 300 MB, 0 errors",
            verdict(conc),
        ),
        (
            "file relay",
            f"{relay['file_mb']} MB attachment Slack → provider: RSS growth, speed",
            f"+{_fmt(relay['rss_growth'])} MB, {_fmt(relay['mb_per_s'])} MB/s",
            "growth ≤ 32 MB",
            verdict(relay),
        ),
        (
            "cold start",
            f"`python -m bot` → /healthz 200 ({cold['samples']} starts)",
            f"{_fmt(cold['value'], 2)} s",
            "≤ 2 s",
            verdict(cold),
        ),
    ]


def markdown_table(figs: dict[str, Any], profile: Any) -> str:
    lines = [
        "| figure | how measured | result (median of runs) | target | |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows(figs, profile)]
    return "\n".join(lines)


def text_table(figs: dict[str, Any], profile: Any) -> str:
    table = [("figure", "how measured", "result", "target", ""), *rows(figs, profile)]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    out = []
    for n, row in enumerate(table):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
