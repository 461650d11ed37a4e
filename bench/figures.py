"""The measurements. Each session starts its own world (fakes + seeded database + bot),
because the fake model's time-to-first-token and token rate are process-wide flags.

- `zero_latency_session`: CPU per turn, file relay, cold start (bot restarts).
- `streaming_session`: first-text and completion overhead at two concurrencies, and
  acknowledgement latency while the larger batch is in flight.
- `concurrency_session`: peak RSS with every turn streaming at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import Sent, Stack, TurnTimes, text_turn, tool_call_turn, user_id
from bench.stats import max_overlap, median, summary

MB = 1024 * 1024
QUOTAS_OFF = {"TURNS_PER_MINUTE": "100000", "FILES_PER_DAY": "100000", "MAX_STORED_MB": "1000000"}


@dataclass(frozen=True)
class Profile:
    name: str
    runs: int
    warmup_turns: int
    # streaming session: first text, completion, acknowledgements
    stream_ttft_ms: float
    stream_tokens_per_s: float
    stream_tokens: int
    small_batch: int
    big_batch: int
    batch_rate: float  # messages/s of the small batch (and wave 1 of the big one)
    probe_rate: float  # messages/s of wave 2, sent while wave 1 is in flight
    probe_every: int  # wave 2 comes from every n-th user of the big batch
    probe_tokens: int
    # zero-latency session: CPU per turn, file relay, cold start
    cpu_turns: int
    cpu_rate: float
    cpu_tokens: int
    tool_every: int
    file_mb: int
    cold_restarts: int
    # concurrency session
    conc_turns: int
    conc_ttft_ms: float
    conc_deltas_per_s: float
    conc_deltas: int
    conc_chars_per_delta: int
    conc_rate: float
    conc_runs: int
    deadline_s: float
    # burst session (bench/burst.py): the bot against the bare-I/O floor
    burst_users: int = 50
    burst_rounds: int = 4
    burst_ttft_ms: float = 300
    burst_delta_ms: float = 20
    burst_deltas: int = 40
    arrival: str = "burst"  # or "paced": a round's messages at paced_rate per second
    paced_rate: float = 100


class PeakRss:
    """Samples a process's RSS every few ms in a thread; also reads the kernel's VmHWM."""

    def __init__(self, stack: Stack, every_s: float = 0.01) -> None:
        assert stack.bot is not None
        self.bot = stack.bot
        self.every_s = every_s
        self.before_mb = 0.0
        self.sampled_peak_mb = 0.0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.sampled_peak_mb = max(self.sampled_peak_mb, self.bot.rss_mb())
            except (OSError, KeyError):
                return
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRss:
        self.before_mb = self.bot.rss_mb()
        self.hwm_reset = self.bot.reset_peak()
        self.sampled_peak_mb = self.before_mb
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        hwm = self.bot.memory_kb()["VmHWM"] / 1024 if self.hwm_reset else 0.0
        return max(hwm, self.sampled_peak_mb)


def progress(what: str, result: dict[str, Any] | None = None) -> None:
    """One line on stderr per run, so a long benchmark shows where it is."""
    keys = (
        "cpu_ms_per_turn",
        "mb_per_s",
        "first_text_ms",
        "completion_ms",
        "ack_ms",
        "rss_peak_mb",
    )
    shown = {k: result[k] for k in keys if result and k in result}
    brief = {
        k: (v.get("p50"), v.get("p99")) if isinstance(v, dict) else v for k, v in shown.items()
    }
    print(f"[bench] {time.strftime('%H:%M:%S')} {what} {brief or ''}", file=sys.stderr, flush=True)


def _done(what: str, result: dict[str, Any]) -> dict[str, Any]:
    progress(what, result)
    return result


def _ms(later: float | None, earlier: float | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier) * 1000


def overheads(times: dict[str, TurnTimes]) -> dict[str, Any]:
    first = [_ms(t.first_text, t.first_delta) for t in times.values()]
    done = [_ms(t.stream_stop, t.last_delta) for t in times.values()]
    return {
        "first_text_ms": summary([v for v in first if v is not None]),
        "completion_ms": summary([v for v in done if v is not None]),
        "missing": sum(1 for t in times.values() if t.stream_stop is None),
        "warnings": sum(1 for t in times.values() if t.warning),
    }


def ack_errors(sent: list[Sent]) -> int:
    return sum(1 for s in sent if s.status != 200)


async def warm_up(stack: Stack, turns: int, tokens: int) -> None:
    """Turns whose numbers are thrown away: first connections, caches, the JIT-less
    Python's first-call costs."""
    users = stack.users[:turns]
    await stack.script([text_turn(tokens)] * len(users))
    sent = await stack.send_paced([(u, "warm up") for u in users], 50)
    await stack.wait_answered(sent, 60)
    await asyncio.sleep(0.2)


# --- zero-latency session ---------------------------------------------------------------


async def zero_latency_session(
    profile: Profile, workdir: Path, out: dict[str, Any]
) -> dict[str, Any]:
    """Fills `out` as it goes (as every session does): a deadline keeps what was measured."""
    users = [user_id(i) for i in range(max(profile.cpu_turns, profile.warmup_turns, 1) + 1)]
    out.update(cpu_runs=[], file_runs=[], cold_starts_s=[])
    async with Stack(workdir, users, 0, 0, extra_env=QUOTAS_OFF) as stack:
        out["cold_starts_s"] = stack.cold_starts
        progress(f"{workdir.name}: started (cold start {stack.cold_starts[-1]:.2f} s)")
        await warm_up(stack, profile.warmup_turns, profile.cpu_tokens)
        for _ in range(profile.runs):
            out["cpu_runs"].append(_done("cpu run", await _cpu_run(stack, profile)))
        file_user = users[-1]
        for n in range(profile.runs):
            out["file_runs"].append(
                _done("file run", await _file_run(stack, profile, file_user, n))
            )
        for _ in range(profile.cold_restarts):
            progress(f"cold start {await stack.restart_bot():.2f} s")
        out["bot_errors"] = stack.bot_log_errors()
        return out


async def _cpu_run(stack: Stack, profile: Profile) -> dict[str, Any]:
    assert stack.bot is not None
    users = stack.users[: profile.cpu_turns]
    turns: list[Any] = []
    tool_turns = 0
    for i in range(len(users)):
        if profile.tool_every and i % profile.tool_every == 0:
            turns.append(tool_call_turn())  # this round calls get_stock_price; next answers
            tool_turns += 1
        turns.append(text_turn(profile.cpu_tokens))
    await stack.script(turns)
    await stack.begin_batch()
    calls_before = len(await stack.slack_calls())
    cpu_before = stack.bot.cpu_seconds()
    started = time.time()
    question = "What is MSFT trading at?"
    sent = await stack.send_paced([(u, question) for u in users], profile.cpu_rate)
    answered = await stack.wait_answered(sent, 120)
    await asyncio.sleep(0.3)  # let the last turns finish their bookkeeping
    cpu = stack.bot.cpu_seconds() - cpu_before
    elapsed = time.time() - started
    slack_calls = len(await stack.slack_calls()) - calls_before
    return {
        "turns": len(users),
        "tool_call_turns": tool_turns,
        "answered": len(answered),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_turn": round(cpu / len(users) * 1000, 2),
        "wall_s": round(elapsed, 2),
        "turns_per_s": round(len(users) / elapsed, 1),
        "slack_calls_per_turn": round(slack_calls / len(users), 2),
        "ack_errors": ack_errors(sent),
    }


async def _file_run(stack: Stack, profile: Profile, user: str, n: int) -> dict[str, Any]:
    size = profile.file_mb * MB
    slack_file = await stack.add_slack_file(f"bench-{n}.tar", size, "application/x-tar")
    with PeakRss(stack) as rss:
        sent = await stack.send_message(user, "", files=[slack_file])
        report = await _wait_file_report(stack, sent, 120)
    elapsed = (report["at"] - sent.sent_at) if report else None
    added = bool(report and "Added to your assistant" in str(report["args"].get("text")))
    return {
        "mb": profile.file_mb,
        "seconds": round(elapsed, 3) if elapsed else None,
        "mb_per_s": round(profile.file_mb / elapsed, 1) if elapsed else None,
        "rss_before_mb": round(rss.before_mb, 1),
        "rss_peak_mb": round(rss.peak_mb, 1),
        "rss_growth_mb": round(rss.peak_mb - rss.before_mb, 1),
        "added": added,
        "ack_status": sent.status,
    }


async def _wait_file_report(stack: Stack, sent: Sent, within_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for call in await stack.slack_calls("chat.postMessage"):
            args = call["args"]
            if args.get("channel") == sent.channel and args.get("thread_ts") == sent.ts:
                return call
        await asyncio.sleep(0.05)
    return None


# --- streaming session --------------------------------------------------------------------


async def streaming_session(profile: Profile, workdir: Path, out: dict[str, Any]) -> dict[str, Any]:
    users = [user_id(i) for i in range(max(profile.big_batch, profile.small_batch))]
    out.update(small_runs=[], big_runs=[], cold_starts_s=[])
    async with Stack(
        workdir,
        users,
        profile.stream_ttft_ms,
        profile.stream_tokens_per_s,
        extra_env=QUOTAS_OFF,
    ) as stack:
        progress(f"{workdir.name}: started (cold start {stack.cold_starts[-1]:.2f} s)")
        out["cold_starts_s"] = stack.cold_starts
        await warm_up(stack, profile.warmup_turns, 20)
        for _ in range(profile.runs):
            out["small_runs"].append(_done("small batch", await _small_batch(stack, profile)))
        for _ in range(profile.runs):
            out["big_runs"].append(_done("big batch", await _big_batch(stack, profile)))
        out["bot_errors"] = stack.bot_log_errors()
        return out


async def _small_batch(stack: Stack, profile: Profile) -> dict[str, Any]:
    users = stack.users[: profile.small_batch]
    await stack.script([text_turn(profile.stream_tokens)] * len(users))
    await stack.begin_batch()
    sent = await stack.send_paced([(u, "Tell me a story.") for u in users], profile.batch_rate)
    await stack.wait_answered(sent, 180)
    times = await stack.turn_times(sent)
    return {
        "turns": len(users),
        "concurrent_streams": _peak_streams(times),
        "ack_ms": summary([s.ack_ms for s in sent]),
        "ack_errors": ack_errors(sent),
        **overheads(times),
    }


async def _big_batch(stack: Stack, profile: Profile) -> dict[str, Any]:
    """Wave 1: one long turn per user. Wave 2: a second message per user, sent while
    every wave-1 turn is still in flight (accepted, not yet answered): those are the
    acknowledgement latencies "with N turns in flight"."""
    users = stack.users[: profile.big_batch]
    probers = users[:: max(profile.probe_every, 1)]
    long_turn, short_turn = text_turn(profile.stream_tokens), text_turn(profile.probe_tokens)
    await stack.script([long_turn] * len(users) + [short_turn] * len(probers))
    await stack.begin_batch()
    wave1 = await stack.send_paced([(u, "Tell me a story.") for u in users], profile.batch_rate)
    wave2 = await stack.send_paced([(u, "And then?") for u in probers], profile.probe_rate)
    await stack.wait_answered(wave1 + wave2, 240)
    times = await stack.turn_times(wave1 + wave2)
    first = {f"{s.channel}:{s.ts}": times[f"{s.channel}:{s.ts}"] for s in wave1}
    in_flight = []
    for probe in wave2:
        t = probe.sent_at
        in_flight.append(
            sum(
                1
                for s in wave1
                if s.sent_at < t and (first[f"{s.channel}:{s.ts}"].stream_stop or 1e18) > t
            )
        )
    return {
        "turns": len(users),
        "probes": len(probers),
        "concurrent_streams": _peak_streams(first),
        "ack_ms": summary([s.ack_ms for s in wave2]),
        "ack_ms_wave1": summary([s.ack_ms for s in wave1]),
        "in_flight_at_probe": {"min": min(in_flight), "median": median(in_flight)},
        "ack_errors": ack_errors(wave1 + wave2),
        **overheads(first),
        "wave2_missing": sum(1 for s in wave2 if times[f"{s.channel}:{s.ts}"].stream_stop is None),
    }


def _peak_streams(times: dict[str, TurnTimes]) -> int:
    return max_overlap(
        (t.stream_start, t.stream_stop)
        for t in times.values()
        if t.stream_start is not None and t.stream_stop is not None
    )


# --- concurrency session ----------------------------------------------------------------


async def concurrency_session(
    profile: Profile, workdir: Path, out: dict[str, Any]
) -> dict[str, Any]:
    users = [user_id(i) for i in range(profile.conc_turns)]
    out.update(runs=[], cold_starts_s=[])
    async with Stack(
        workdir,
        users,
        profile.conc_ttft_ms,
        profile.conc_deltas_per_s,
        extra_env=QUOTAS_OFF,
    ) as stack:
        progress(f"{workdir.name}: started (cold start {stack.cold_starts[-1]:.2f} s)")
        out["cold_starts_s"] = stack.cold_starts
        await warm_up(stack, profile.warmup_turns, 10)
        for _ in range(profile.conc_runs):
            out["runs"].append(_done("concurrency run", await _concurrency_run(stack, profile)))
        out["bot_errors"] = stack.bot_log_errors()
        return out


async def _concurrency_run(stack: Stack, profile: Profile) -> dict[str, Any]:
    answer = {
        **text_turn(profile.conc_deltas * profile.conc_chars_per_delta // 4),
        "chunk": profile.conc_chars_per_delta,
    }
    errors_before = len(stack.bot_log_errors())
    await stack.script([answer] * len(stack.users))
    await stack.begin_batch()
    with PeakRss(stack) as rss:
        sent = await stack.send_paced(
            [(u, "Write me a paragraph.") for u in stack.users], profile.conc_rate
        )
        answered = await stack.wait_answered(sent, 240)
    times = await stack.turn_times(sent)
    warnings = sum(1 for t in times.values() if t.warning)
    unanswered = len(sent) - len(answered)
    log_errors = len(stack.bot_log_errors()) - errors_before
    return {
        "turns": len(sent),
        "concurrent_streams": _peak_streams(times),
        "rss_before_mb": round(rss.before_mb, 1),
        "rss_peak_mb": round(rss.peak_mb, 1),
        "ack_ms": summary([s.ack_ms for s in sent]),
        "errors": ack_errors(sent) + warnings + unanswered + log_errors,
        "error_detail": {
            "ack": ack_errors(sent),
            "warnings": warnings,
            "unanswered": unanswered,
            "log_errors": log_errors,
        },
    }
