"""`python -m bench --instances 1,2 --database-url postgresql://…`: how the bot scales
out. N `python -m bot` processes share one PostgreSQL database (a new one per run, on
the server the URL names, dropped afterwards); deliveries go round-robin over them, as a
load balancer would send them.

Throughput at saturation: `turns` messages from `users` people are offered far faster
than the bot can answer them (the model answers at once), so the queue fills and the
instances work flat out; turns per second = turns ÷ (first message sent → last job
finished, from the jobs table). Ack latency (each delivery's HTTP round trip) twice: during
that burst, where acknowledging competes with the turns for the CPU, and at a light load
afterwards (`light_turns` at `light_per_s`, well under capacity).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.figures import QUOTAS_OFF, progress, warm_up
from bench.procs import SIGNING_SECRET, TEAM, Proc, spawn_bot, wait_healthy
from bench.stack import Sent, Stack, text_turn, user_id
from bench.stats import median, summary
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender


@dataclass(frozen=True)
class ScalingProfile:
    runs: int = 3
    users: int = 50
    turns: int = 300
    offered_per_s: float = 400  # well above what 2 cores answer: the queue fills
    answer_tokens: int = 20
    warmup_turns: int = 10
    light_turns: int = 40
    light_per_s: float = 5
    within_s: float = 240


SMOKE = ScalingProfile(
    runs=1, users=5, turns=20, warmup_turns=2, light_turns=5, light_per_s=10, within_s=60
)


@dataclass
class ClusterStack(Stack):
    """A benchmark world with `instances` bots on one PostgreSQL database."""

    instances: int = 1
    postgres_url: str = ""
    bots: list[Proc] = field(default_factory=list)
    _senders: list[SlackRequestSender] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def database_url(self) -> str:
        return self.postgres_url

    async def start_bot(self) -> float:
        self.bots = [spawn_bot(self.bot_config(), self.workdir) for _ in range(self.instances)]
        self.bot = self.bots[0]
        colds = await asyncio.gather(*(asyncio.to_thread(wait_healthy, b) for b in self.bots))
        self.cold_starts.extend(colds)
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
        self._senders = [
            SlackRequestSender(
                bot.url,
                SIGNING_SECRET,
                team_id=TEAM,
                transport=httpx.AsyncHTTPTransport(limits=limits),
                timeout=60.0,
            )
            for bot in self.bots
        ]
        return max(colds)

    def sender_for_next(self) -> SlackRequestSender:
        return self._senders[next(self._turn) % len(self._senders)]

    async def send_message(
        self, user: str, text: str, files: list[dict[str, Any]] | None = None
    ) -> Sent:
        sender = self.sender_for_next()
        channel = f"D{user}"
        event = message_im(user, text, channel=channel, files=files)
        sent = Sent(user, channel, event["ts"], time.time())
        response = await sender.event(event)
        sent.acked_at = time.time()
        sent.status = response.status_code
        return sent

    async def stop(self) -> None:
        for sender in self._senders:
            await sender.aclose()
        self._senders = []
        for bot in self.bots[1:]:
            await asyncio.to_thread(bot.stop)
        await super().stop()

    async def wait_answered(self, sent: list[Sent], within_s: float) -> set[str]:
        keys = {f"msg:{TEAM}:{s.channel}:{s.ts}": f"{s.channel}:{s.ts}" for s in sent}
        deadline = time.monotonic() + within_s
        done: list[str] = []
        while time.monotonic() < deadline:
            done, _ = await self.finished(list(keys))
            if len(done) >= len(keys):
                break
            await asyncio.sleep(0.2)
        return {keys[k] for k in done}

    async def finished(self, keys: list[str]) -> tuple[list[str], float | None]:
        """The finished jobs among `keys`, and when the last of them finished."""
        conn = await _connect(self.postgres_url)
        try:
            rows = await conn.fetch(
                "SELECT dedupe_key, updated_at FROM jobs"
                " WHERE status IN ('done', 'failed') AND dedupe_key = ANY($1::text[])",
                keys,
            )
        finally:
            await conn.close()
        last = max((row["updated_at"].timestamp() for row in rows), default=None)
        return [row["dedupe_key"] for row in rows], last


async def _connect(url: str, database: str | None = None) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=database or parsed.database or "postgres",
        timeout=10,
    )


async def _create_database(server_url: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:16]}"
    conn = await _connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(server_url).set(database=name)
    return name, url.render_as_string(hide_password=False)


async def _drop_database(server_url: str, name: str) -> None:
    conn = await _connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def saturation_run(
    instances: int, server_url: str, profile: ScalingProfile, workdir: Path
) -> dict[str, Any]:
    users = [user_id(i) for i in range(profile.users)]
    name, url = await _create_database(server_url)
    try:
        async with ClusterStack(
            workdir, users, 0, 0, extra_env=QUOTAS_OFF, instances=instances, postgres_url=url
        ) as stack:
            await warm_up(stack, min(profile.warmup_turns, len(users)), profile.answer_tokens)
            await stack.script([text_turn(profile.answer_tokens)] * profile.turns)
            messages = [(users[i % len(users)], f"question {i}") for i in range(profile.turns)]
            cpu_before = sum(bot.cpu_seconds() for bot in stack.bots)
            started = time.time()
            sent = await stack.send_paced(messages, profile.offered_per_s)
            answered = await stack.wait_answered(sent, profile.within_s)
            keys = [f"msg:{TEAM}:{s.channel}:{s.ts}" for s in sent]
            _, last = await stack.finished(keys)
            cpu = sum(bot.cpu_seconds() for bot in stack.bots) - cpu_before
            await stack.script([text_turn(profile.answer_tokens)] * profile.light_turns)
            light = [(users[i % len(users)], f"light {i}") for i in range(profile.light_turns)]
            light_sent = await stack.send_paced(light, profile.light_per_s)
            light_answered = await stack.wait_answered(light_sent, profile.within_s)
            errors = stack.bot_log_errors()
    finally:
        await _drop_database(server_url, name)
    elapsed = (last or time.time()) - started
    acks = [s.ack_ms for s in sent if s.status == 200]
    result = {
        "instances": instances,
        "turns": profile.turns,
        "answered": len(answered),
        "ack_errors": sum(1 for s in sent if s.status != 200),
        "wall_s": round(elapsed, 2),
        "turns_per_s": round(len(answered) / elapsed, 1),
        "bot_cpu_ms_per_turn": round(cpu / profile.turns * 1000, 1),
        "ack_ms": summary(acks),
        "light_turns": profile.light_turns,
        "light_answered": len(light_answered),
        "light_ack_ms": summary([s.ack_ms for s in light_sent if s.status == 200]),
        "bot_errors": errors[:20],
    }
    progress(
        f"{instances} instance(s): {result['turns_per_s']} turns/s, "
        f"bot CPU {result['bot_cpu_ms_per_turn']} ms/turn, "
        f"ack p50 {result['ack_ms']['p50']:.1f} ms / p99 {result['ack_ms']['p99']:.1f} ms; "
        f"light load: ack p50 {result['light_ack_ms']['p50']:.1f} ms "
        f"/ p99 {result['light_ack_ms']['p99']:.1f} ms"
    )
    return result


async def scaling_session(
    counts: list[int], server_url: str, profile: ScalingProfile, workdir: Path
) -> dict[str, Any]:
    by_count: dict[str, Any] = {}
    for count in counts:
        runs = [
            await saturation_run(count, server_url, profile, workdir / f"n{count}-r{run}")
            for run in range(profile.runs)
        ]
        by_count[str(count)] = {"runs": runs, "figures": _figures(runs)}
    return by_count


def _figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float | None]:
        return {"median": median(values), "min": min(values), "max": max(values)}

    return {
        "turns_per_s": spread([r["turns_per_s"] for r in runs]),
        "bot_cpu_ms_per_turn": spread([r["bot_cpu_ms_per_turn"] for r in runs]),
        "ack_p50_ms": spread([r["ack_ms"]["p50"] for r in runs]),
        "ack_p99_ms": spread([r["ack_ms"]["p99"] for r in runs]),
        "light_ack_p50_ms": spread([r["light_ack_ms"]["p50"] for r in runs]),
        "light_ack_p99_ms": spread([r["light_ack_ms"]["p99"] for r in runs]),
        "answered_all": all(
            r["answered"] == r["turns"] and r["light_answered"] == r["light_turns"] for r in runs
        ),
    }


def text_table(session: dict[str, Any], machine: dict[str, Any]) -> str:
    """Medians over the runs, [min–max] in brackets."""
    columns = (
        "turns_per_s",
        "bot_cpu_ms_per_turn",
        "ack_p50_ms",
        "ack_p99_ms",
        "light_ack_p50_ms",
        "light_ack_p99_ms",
    )
    lines = [
        f"Scaling on {machine['cpu']} ×{machine['nproc']} (median [min–max] over runs):",
        "instances | " + " | ".join(columns) + " | all answered",
    ]
    for count, entry in session.items():
        fig = entry["figures"]
        cells = [
            f"{fig[c]['median']:.1f} [{fig[c]['min']:.1f}–{fig[c]['max']:.1f}]" for c in columns
        ]
        lines.append(f"{count} | " + " | ".join(cells) + f" | {fig['answered_all']}")
    return "\n".join(lines)
