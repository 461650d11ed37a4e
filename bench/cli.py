"""`python -m bench [--quick | --smoke]`: the performance benchmark (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import burst, procs, report, scaling
from bench import figures as f

FULL = f.Profile(
    name="full",
    runs=3,
    warmup_turns=10,
    stream_ttft_ms=500,
    stream_tokens_per_s=20,
    stream_tokens=300,
    small_batch=50,
    big_batch=200,
    batch_rate=100,
    probe_rate=100,
    probe_every=1,
    probe_tokens=20,
    cpu_turns=200,
    cpu_rate=20,
    cpu_tokens=300,
    tool_every=5,
    file_mb=200,
    cold_restarts=4,
    conc_turns=500,
    conc_ttft_ms=3000,
    conc_deltas_per_s=3,
    conc_deltas=30,
    conc_chars_per_delta=40,
    conc_rate=250,
    conc_runs=3,
    deadline_s=570,
)
QUICK = dataclasses.replace(
    FULL,
    name="quick",
    warmup_turns=5,
    stream_tokens=40,
    batch_rate=150,
    probe_rate=150,
    probe_every=2,
    probe_tokens=10,
    cpu_turns=40,
    cold_restarts=0,
    conc_ttft_ms=2000,
    conc_deltas_per_s=2,
    conc_deltas=16,
    conc_rate=300,
    conc_runs=1,
    deadline_s=160,  # then it reports what it has: the whole run stays under 3 minutes
)
SMOKE = dataclasses.replace(
    FULL,
    name="smoke",
    runs=1,
    warmup_turns=2,
    stream_ttft_ms=100,
    stream_tokens_per_s=50,
    stream_tokens=20,
    small_batch=3,
    big_batch=6,
    batch_rate=50,
    probe_rate=50,
    probe_tokens=5,
    cpu_turns=10,
    cpu_rate=20,
    cpu_tokens=50,
    file_mb=5,
    cold_restarts=0,
    conc_turns=10,
    conc_ttft_ms=300,
    conc_deltas_per_s=20,
    conc_deltas=5,
    conc_chars_per_delta=20,
    conc_rate=50,
    conc_runs=1,
    deadline_s=120,
    burst_users=5,
    burst_rounds=2,
    burst_ttft_ms=100,
    burst_deltas=10,
)
Session = Callable[[f.Profile, Path, dict[str, Any]], Awaitable[dict[str, Any]]]
PARTIAL = 3  # exit status of a run that reports only part of its figures
SESSIONS: dict[str, Session] = {
    "burst": burst.burst_session,  # first: the headline workload, and the floor
    "zero_latency": f.zero_latency_session,
    "streaming": f.streaming_session,
    "concurrency": f.concurrency_session,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark `python -m bot` against the fake Slack and fake OpenAI.",
    )
    parser.add_argument("--quick", action="store_true", help="shorter turns, under 2 minutes")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny configuration for CI (~20 s), no thresholds"
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; smoke 1)")
    parser.add_argument(
        "--out", type=Path, default=procs.ROOT / "bench-results", help="results directory"
    )
    parser.add_argument(
        "--bot-root",
        type=Path,
        default=procs.ROOT,
        help="checkout whose `python -m bot` is measured (e.g. an older copy, for before/after)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep databases and logs")
    parser.add_argument(
        "--instances",
        type=_counts,
        help="scale-out instead: throughput and ack latency with each number of bot "
        "processes on one PostgreSQL database, e.g. 1,2 (needs --database-url)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (a database is created per world there, dropped after): "
        "the burst workload, or --instances, runs on it; the other sessions stay on SQLite",
    )
    parser.add_argument(
        "--arrival",
        choices=("burst", "paced"),
        default="burst",
        help="burst workload: each round's messages all at once (default) or paced",
    )
    parser.add_argument(
        "--sessions",
        type=lambda raw: [name for name in raw.split(",") if name],
        help=f"only these sessions, e.g. burst (of {','.join(SESSIONS)})",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="seconds; past it the run stops, reports what it measured and names the rest",
    )
    args = parser.parse_args(argv)
    unknown = set(args.sessions or ()) - set(SESSIONS)
    if unknown:
        parser.error(f"unknown sessions: {', '.join(sorted(unknown))}")
    if args.instances and not args.database_url:
        parser.error("--instances needs --database-url postgresql://…")
    return args


def _counts(raw: str) -> list[int]:
    try:
        counts = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {raw!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("instance counts must be 1 or more")
    return counts


def choose_profile(args: argparse.Namespace) -> f.Profile:
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.runs:
        profile = dataclasses.replace(profile, runs=args.runs, conc_runs=args.runs)
    profile = dataclasses.replace(profile, arrival=args.arrival)
    if args.deadline is not None:
        profile = dataclasses.replace(profile, deadline_s=args.deadline)
    return profile


async def run_sessions(
    profile: f.Profile, work: Path, sessions: dict[str, Session] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each session fills its own dict as it measures. Past the deadline, or when a
    session fails, the rest is skipped: (what was measured, what was skipped and why)."""
    deadline = time.monotonic() + profile.deadline_s
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, session in (sessions or SESSIONS).items():
        left = deadline - time.monotonic()
        if left <= 0:
            skipped[name] = f"not started: the {profile.deadline_s:.0f} s deadline had passed"
            continue
        print(f"[bench] {name} session…", file=sys.stderr, flush=True)
        started = time.monotonic()
        results[name] = out = {}
        try:
            async with asyncio.timeout(left):
                await session(profile, work / name, out)
        except TimeoutError:
            skipped[name] = f"cut short by the {profile.deadline_s:.0f} s deadline"
        except Exception as exc:  # a broken world must not cost the figures already taken
            skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[-300:]}"
        out["seconds"] = round(time.monotonic() - started, 1)
    return results, skipped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.instances:
        return scale_out(args)
    profile = choose_profile(args)
    procs.BOT_ROOT = args.bot_root.resolve()
    out: Path = args.out
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.time()
    load_before = os.getloadavg()
    plan = dict(SESSIONS)
    plan["burst"] = partial(burst.burst_session, database_url=args.database_url)
    if args.sessions:
        plan = {name: session for name, session in plan.items() if name in args.sessions}
    try:
        sessions, skipped = asyncio.run(run_sessions(profile, work, plan))
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    figs = report.figures(sessions)
    result = {
        "schema": 2,
        "profile": profile.name,
        "date": report.now_iso(),
        "duration_s": round(time.time() - started, 1),
        "machine": report.machine(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "complete": not skipped,
        "skipped": skipped,
        "bot_root": str(procs.BOT_ROOT),
        "config": dataclasses.asdict(profile),
        "figures": figs,
        "sessions": sessions,
    }
    text = json.dumps(result, indent=2) + "\n"
    for name in ("latest", profile.name):
        (out / f"{name}.json").write_text(text)
        table = report.markdown_table(figs, profile)
        notes = "".join(f"\n\nSkipped {name}: {why}." for name, why in skipped.items())
        (out / f"{name}.md").write_text(table + notes + "\n")
    print(report.text_table(figs, profile))
    load = result["load_average_1m"]
    print(
        f"\n{profile.name}: {result['duration_s']} s on {result['machine']['cpu']} "
        f"×{result['machine']['nproc']}, load average {load['before']:.1f} → "
        f"{load['after']:.1f}; JSON in {out / 'latest.json'}"
    )
    for name, why in skipped.items():
        print(f"SKIPPED {name}: {why}")
    return 0 if not skipped else PARTIAL


def scale_out(args: argparse.Namespace) -> int:
    profile = scaling.SMOKE if args.smoke else scaling.ScalingProfile()
    if args.runs:
        profile = dataclasses.replace(profile, runs=args.runs)
    procs.BOT_ROOT = args.bot_root.resolve()
    out: Path = args.out
    work = out / "work-scaling"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.time()
    load_before = os.getloadavg()
    try:
        session = asyncio.run(
            scaling.scaling_session(args.instances, args.database_url, profile, work)
        )
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    machine = report.machine()
    result = {
        "schema": 1,
        "kind": "scaling",
        "date": report.now_iso(),
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        # Other work on the machine skews every figure: the 1-minute load around the run.
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "bot_root": str(procs.BOT_ROOT),
        "config": dataclasses.asdict(profile),
        "by_instances": session,
    }
    (out / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(scaling.text_table(session, machine))
    load = result["load_average_1m"]
    print(
        f"\n{result['duration_s']} s, load average {load['before']:.1f} → {load['after']:.1f}; "
        f"JSON in {out / 'scaling.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
