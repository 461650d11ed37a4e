"""`python -m bot` driven from outside, as a Slack workspace would: only the documented
environment variables, signed HTTP requests in, the fake Slack and fake OpenAI behind."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port for a child process to listen on, free when chosen.

    Not one the kernel picks (bind to port 0): those come from its ephemeral range, as do
    the ports of every outgoing connection, so another socket could take the port before
    the child binds it (more likely with pytest-xdist workers side by side), and a test
    could then talk to another test's server. Each worker takes the ports of its own band
    below that range in turn, from a random start, skipping any in use."""
    band = _port_band()
    for _ in range(len(band)):
        port = band[next(_port_turn) % len(band)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {band}")


_port_turn = itertools.count(random.randrange(1 << 16))


def _port_band() -> range:
    """This worker's share of the ports below the kernel's ephemeral range."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default; macOS and Windows start higher
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (low - low // 2) // workers
    start = low // 2 + worker * size
    return range(start, start + size)


def bot_env(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str, port: int
) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=fake_openai.base_url,
        PORT=str(port),
        DATABASE_URL=database_url,
    )
    return env


@pytest.fixture
def bot_process(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    from tests.spawn import spawn_bot  # spawn imports bot_env from here: import it late

    with spawn_bot(fake_openai, fake_slack, tmp_path, database_url) as spawned:
        yield spawned


async def wait_healthy(process: subprocess.Popen[str], url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError(
                    f"bot exited: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("bot never became healthy")


async def wait_for(condition, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_bot_process_serves_commands_and_messages_then_stops_cleanly(
    bot_process: tuple[subprocess.Popen[str], str], fake_slack: FakeSlack
) -> None:
    process, url = bot_process
    await wait_healthy(process, url)
    async with SlackRequestSender(url, SIGNING_SECRET) as send:
        created = await send.command(
            "/assistant-create",
            "Answer like a pirate.",
            "U1",
            "C1",
            response_url=fake_slack.response_url("create"),
        )
        assert created.status_code == 200
        await wait_for(lambda: fake_slack.response_posts["create"], "the create result")
        event = message_im("U1", "ahoy")
        assert (await send.event(event)).status_code == 200
        await wait_for(
            lambda: "You said: ahoy" in fake_slack.thread_text("D1", event["ts"]), "the answer"
        )
        forged = await send.event(message_im("U1", "x"), signature="v0=" + "0" * 64)
        assert forged.status_code == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in output
    for secret in (BOT_TOKEN, SIGNING_SECRET, API_KEY):
        assert secret not in output


def test_rejected_bot_token_is_one_plain_error_with_exit_2(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> None:
    env = bot_env(fake_openai, fake_slack, database_url, free_port())
    env["SLACK_BOT_TOKEN"] = "xoxb-not-the-right-one"
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("Configuration error") == 1
    assert "SLACK_BOT_TOKEN" in done.stderr
    assert "xoxb-not-the-right-one" not in done.stderr + done.stdout
