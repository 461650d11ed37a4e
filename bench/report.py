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
    "burst_cpu_per_turn",
    "burst_ack_latency",
    "burst_first_text_overhead",
    "burst_completion_overhead",
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


def _spread(values: list[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None}
    return {
        "median": _med([{"v": v} for v in present], "v"),
        "min": min(present),
        "max": max(present),
    }


def burst_figures(burst: dict[str, Any]) -> dict[str, Any]:
    """Bot and floor side by side; CPU also as the median ratio bot ÷ floor of paired runs."""
    runs = burst.get("runs", {})
    bot, floor = runs.get("bot", []), runs.get("floor", [])
    ratio = _spread(burst.get("ratios", []))
    where = f"{burst.get('database', '–')}, {burst.get('arrival', '–')}"
    both: dict[str, dict[str, Any]] = {}
    for name, key, target in (
        ("burst_ack_latency", "ack_ms", {"p99": 50}),
        ("burst_first_text_overhead", "first_text_ms", {"p50": 25, "p99": 100}),
        ("burst_completion_overhead", "completion_ms", {"p50": 25}),
    ):
        both[name] = {
            "unit": "ms",
            "p50": _med(bot, key, "p50"),
            "p99": _med(bot, key, "p99"),
            "range_p99": _spread([(r.get(key) or {}).get("p99") for r in bot]),
            "floor_p50": _med(floor, key, "p50"),
            "floor_p99": _med(floor, key, "p99"),
            "turns": bot[0]["turns"] if bot else 0,
            "where": where,
            "target": target,
        }
    return {
        "burst_cpu_per_turn": {
            "unit": "ms",
            "value": _med(bot, "cpu_ms_per_turn"),
            "range": _spread([r.get("cpu_ms_per_turn") for r in bot]),
            "floor": _med(floor, "cpu_ms_per_turn"),
            "floor_range": _spread([r.get("cpu_ms_per_turn") for r in floor]),
            "ratio_to_floor": ratio["median"],
            "ratio_range": ratio,
            "runs": len(bot),
            "load_1m": [r.get("load_1m") for r in bot],
            "errors": sum(r.get("ack_errors", 0) + r.get("unanswered", 0) for r in bot),
            "where": where,
            "target": {"value": 15},
        },
        **both,
    }


def figures(sessions: dict[str, Any]) -> dict[str, Any]:
    """Every figure; those of a skipped or cut-short session are None (or from fewer runs)."""
    zero = sessions.get("zero_latency", {})
    stream, conc = sessions.get("streaming", {}), sessions.get("concurrency", {})
    small, big = stream.get("small_runs", []), stream.get("big_runs", [])
    zero.setdefault("cpu_runs", [])
    zero.setdefault("file_runs", [])
    conc.setdefault("runs", [])
    cold = [
        *zero.get("cold_starts_s", []),
        *stream.get("cold_starts_s", []),
        *conc.get("cold_starts_s", []),
    ]
    bursts = burst_figures(sessions.get("burst", {}))
    floor_cpu = bursts["burst_cpu_per_turn"]["floor"]
    zero_cpu = _med(zero["cpu_runs"], "cpu_ms_per_turn")
    return {
        **bursts,
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
            "value": zero_cpu,
            # the floor measured in the burst workload (no tool calls): a lower bound
            "ratio_to_burst_floor": (
                round(zero_cpu / floor_cpu, 2) if zero_cpu is not None and floor_cpu else None
            ),
            "turns": zero["cpu_runs"][0]["turns"] if zero["cpu_runs"] else 0,
            "slack_calls_per_turn": _med(zero["cpu_runs"], "slack_calls_per_turn"),
            "turns_per_s": _med(zero["cpu_runs"], "turns_per_s"),
            "target": {"value": 15},
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
    bcpu, back = figs["burst_cpu_per_turn"], figs["burst_ack_latency"]
    bft, bco = figs["burst_first_text_overhead"], figs["burst_completion_overhead"]
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

    def floor_50_99(fig: dict[str, Any]) -> str:
        return f"{p50_99(fig)} (floor {_fmt(fig['floor_p50'])} / {_fmt(fig['floor_p99'])})"

    burst_how = (
        f"{profile.burst_users} users × {profile.burst_rounds} rounds, {bcpu['where']}, "
        f"TTFT {profile.burst_ttft_ms:.0f} ms + {profile.burst_deltas} deltas "
        f"{profile.burst_delta_ms:.0f} ms apart"
    )
    rng = bcpu["range"]
    return [
        (
            "CPU per turn (burst)",
            f"bot user+sys / turns; {burst_how}",
            f"{_fmt(bcpu['value'], 2)} ms [{_fmt(rng['min'], 2)}–{_fmt(rng['max'], 2)}], "
            f"{_fmt(bcpu['ratio_to_floor'], 2)}× the floor's {_fmt(bcpu['floor'], 2)} ms",
            "≤ 15 ms",
            verdict(bcpu),
        ),
        (
            "ack latency (burst)",
            "event sent → HTTP answer, a round's messages at once",
            floor_50_99(back),
            "p99 ≤ 50 ms",
            verdict(back),
        ),
        (
            "first-text overhead (burst)",
            "model's first delta → first text in Slack",
            floor_50_99(bft),
            "p50 ≤ 25, p99 ≤ 100 ms",
            verdict(bft),
        ),
        (
            "completion overhead (burst)",
            "model's last delta → chat.stopStream",
            floor_50_99(bco),
            "p50 ≤ 25 ms",
            verdict(bco),
        ),
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
            f"{_fmt(cpu['value'], 2)} ms ({_fmt(cpu['slack_calls_per_turn'], 1)} Slack calls), "
            f"{_fmt(cpu['ratio_to_burst_floor'], 2)}× the burst floor",
            "≤ 15 ms",
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
