"""`python -m bench --quick --smoke` runs end to end: the real bot process, the bare-I/O
floor, the fake Slack and the fake OpenAI as separate processes, signed events in. No
thresholds here (CI machines are noisy): it must finish and write its JSON with every
figure. Past its deadline, or when a session fails, it reports what it has and names the
rest, without a traceback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.cli import PARTIAL, SMOKE, run_sessions
from bench.report import FIGURES, figures

ROOT = Path(__file__).resolve().parent.parent
MEASURED = {
    "burst_cpu_per_turn": ("value", "floor", "ratio_to_floor"),
    "burst_ack_latency": ("p50", "p99", "floor_p50", "floor_p99"),
    "burst_first_text_overhead": ("p50", "p99"),
    "burst_completion_overhead": ("p50", "p99"),
    "ack_latency": ("p50", "p99"),
    "first_text_overhead_small": ("p50", "p99"),
    "first_text_overhead_large": ("p50", "p99"),
    "completion_overhead_small": ("p50", "p99"),
    "completion_overhead_large": ("p50", "p99"),
    "cpu_per_turn": ("value",),
    "concurrency": ("peak_rss", "errors"),
    "file_relay": ("rss_growth", "mb_per_s"),
    "cold_start": ("value",),
}


@pytest.mark.sqlite_only(
    "the single-instance benchmark keeps its own SQLite files; its PostgreSQL scaling run "
    "(python -m bench --instances) is measured, not smoke-tested"
)
def test_bench_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    assert set(MEASURED) == set(FIGURES)
    for name, keys in MEASURED.items():
        figure = result["figures"][name]
        for key in keys:
            assert isinstance(figure[key], int | float), (name, key, figure)
    assert result["machine"]["nproc"]
    assert result["complete"] is True and result["skipped"] == {}
    assert set(result["load_average_1m"]) == {"before", "after"}
    assert (tmp_path / "latest.md").read_text().count("\n") >= len(FIGURES) + 2
    assert not (tmp_path / "work").exists(), "the benchmark cleans up its databases and logs"


def test_past_the_deadline_it_reports_what_it_skipped(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--deadline", "0", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == PARTIAL, done.stderr[-4000:]
    assert "Traceback" not in done.stdout + done.stderr
    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["complete"] is False
    assert set(result["skipped"]) == {"burst", "zero_latency", "streaming", "concurrency"}
    assert set(result["figures"]) == set(FIGURES)
    assert result["figures"]["burst_cpu_per_turn"]["value"] is None
    assert "SKIPPED burst" in done.stdout
    assert "Skipped concurrency" in (tmp_path / "latest.md").read_text()


def test_a_cut_short_or_failed_session_keeps_what_was_measured(tmp_path: Path) -> None:
    never = asyncio.Event()

    async def measured(_profile: Any, _work: Path, out: dict[str, Any]) -> dict[str, Any]:
        out["cpu_runs"] = [{"cpu_ms_per_turn": 42.0, "turns": 10}]
        out["file_runs"] = []
        return out

    async def broken(_profile: Any, _work: Path, out: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the fake Slack never became ready")

    async def stuck(_profile: Any, _work: Path, out: dict[str, Any]) -> dict[str, Any]:
        out["small_runs"] = [{"turns": 3, "first_text_ms": {"p50": 1.0, "p99": 2.0}}]
        await never.wait()  # the deadline ends it
        return out

    sessions = {
        "zero_latency": measured,
        "burst": broken,
        "streaming": stuck,
        "concurrency": measured,
    }
    profile = dataclasses.replace(SMOKE, deadline_s=1)
    results, skipped = asyncio.run(run_sessions(profile, tmp_path, sessions))
    assert skipped["burst"].startswith("failed: RuntimeError: the fake Slack never")
    assert skipped["streaming"] == "cut short by the 1 s deadline"
    assert skipped["concurrency"].startswith("not started")
    assert "zero_latency" not in skipped
    figs = figures(results)
    assert figs["cpu_per_turn"]["value"] == 42.0
    assert figs["first_text_overhead_small"]["p99"] == 2.0
    assert figs["burst_cpu_per_turn"]["value"] is None
    assert figs["concurrency"]["peak_rss"] is None
