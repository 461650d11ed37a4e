"""The burst workload, on the bot and on the bare-I/O floor (bench/floor.py), interleaved.

`users` people each send one DM per round; in "burst" arrival all of a round's messages
leave at the same instant (as after a channel-wide announcement), in "paced" arrival at
`paced_rate` per second. A round starts when the previous one is answered. The model's
first token comes after `ttft_ms`, then `deltas` deltas `delta_ms` apart.

Both worlds run side by side (idle while the other works), and their runs alternate, so
a change in the machine's load hits both: each run's CPU is also given as a ratio to the
floor's run next to it, and the figure is the median of those ratios.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.figures import QUOTAS_OFF, Profile, ack_errors, overheads, progress, warm_up
from bench.stack import Sent, Stack, text_turn, user_id
from bench.stats import summary

PROGRAMS = {"floor": "bench.floor", "bot": "bot"}  # name -> `python -m` module


async def _world(
    stack_of: dict[str, Stack],
    exits: AsyncExitStack,
    program: str,
    profile: Profile,
    workdir: Path,
    database_url: str | None,
) -> None:
    users = [user_id(i) for i in range(profile.burst_users)]
    tokens_per_s = 1000 / profile.burst_delta_ms
    env = QUOTAS_OFF
    if database_url:
        from bench.scaling import ClusterStack, _create_database, _drop_database

        name, url = await _create_database(database_url)
        exits.push_async_callback(_drop_database, database_url, name)
        stack: Stack = ClusterStack(
            workdir,
            users,
            profile.burst_ttft_ms,
            tokens_per_s,
            extra_env=env,
            program=PROGRAMS[program],
            postgres_url=url,
        )
    else:
        stack = Stack(
            workdir,
            users,
            profile.burst_ttft_ms,
            tokens_per_s,
            extra_env=env,
            program=PROGRAMS[program],
        )
    stack_of[program] = await exits.enter_async_context(stack)
    await warm_up(stack, min(profile.warmup_turns, len(users)), profile.burst_deltas)


async def _run(stack: Stack, profile: Profile, arrival: str) -> dict[str, Any]:
    assert stack.bot is not None
    rounds = profile.burst_rounds
    await stack.script([text_turn(profile.burst_deltas)] * (len(stack.users) * rounds))
    await stack.begin_batch()
    cpu_before = stack.bot.cpu_seconds()
    started = time.time()
    sent: list[Sent] = []
    unanswered = 0
    for n in range(rounds):
        messages = [(u, f"round {n}: what's new?") for u in stack.users]
        if arrival == "burst":
            batch = await stack.send_burst(messages)
        else:
            batch = await stack.send_paced(messages, profile.paced_rate)
        answered = await stack.wait_answered(batch, 120)
        unanswered += len(batch) - len(answered)
        sent += batch
    cpu = stack.bot.cpu_seconds() - cpu_before
    elapsed = time.time() - started
    times = await stack.turn_times(sent)
    return {
        "turns": len(sent),
        "unanswered": unanswered,
        "cpu_ms_per_turn": round(cpu / len(sent) * 1000, 2),
        "wall_s": round(elapsed, 2),
        "ack_ms": summary([s.ack_ms for s in sent if s.status == 200]),
        "ack_errors": ack_errors(sent),
        "load_1m": round(os.getloadavg()[0], 2),
        **overheads(times),
    }


async def burst_session(
    profile: Profile,
    workdir: Path,
    out: dict[str, Any],
    *,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Fills `out` as it goes, so a run cut short by the deadline keeps what it measured."""
    out.update(
        arrival=profile.arrival,
        database="postgresql" if database_url else "sqlite",
        runs={program: [] for program in PROGRAMS},
        ratios=[],
    )
    tag = uuid.uuid4().hex[:6]
    async with AsyncExitStack() as exits:
        stacks: dict[str, Stack] = {}
        for program in PROGRAMS:
            await _world(
                stacks, exits, program, profile, workdir / f"{program}-{tag}", database_url
            )
            progress(f"burst: {program} started")
        for _ in range(profile.runs):
            pair = {}
            for program in PROGRAMS:
                pair[program] = await _run(stacks[program], profile, profile.arrival)
                out["runs"][program].append(pair[program])
                progress(f"burst {profile.arrival} run, {program}", pair[program])
            floor_cpu = pair["floor"]["cpu_ms_per_turn"]
            if floor_cpu:
                out["ratios"].append(round(pair["bot"]["cpu_ms_per_turn"] / floor_cpu, 2))
        out["bot_errors"] = stacks["bot"].bot_log_errors()
    return out
