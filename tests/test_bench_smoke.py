"""`python -m bench --quick --smoke` runs end to end: the real bot process, the fake Slack
and the fake OpenAI as separate processes, signed events in. No thresholds here (CI
machines are noisy): it must finish and write its JSON with every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import FIGURES

ROOT = Path(__file__).resolve().parent.parent
MEASURED = {
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
    assert (tmp_path / "latest.md").read_text().count("\n") >= len(FIGURES) + 2
    assert not (tmp_path / "work").exists(), "the benchmark cleans up its databases and logs"
