"""What operators rely on: /healthz, /readyz and /metrics over real HTTP, in HTTP mode and
in Socket Mode (against a fake Socket Mode endpoint over a real WebSocket)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.web.async_client import AsyncWebClient

from bot.probes import Probes, TimedSocketModeHandler, probe_app
from commander.jobs import JobStore
from commander.store.db import Database
from tests.conftest import BotHarness
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_socket import FakeSocketMode
from tests.spawn import Spawned, spawn_bot
from tests.test_bot_process import wait_healthy

T, A = "T1", "UA"
APP_TOKEN = "xapp-1-A1-test-app-token"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


class Scrape:
    def __init__(self, body: str) -> None:
        self.body = body
        self.values = samples(body)

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def until(condition: Callable[[], Any], what: str) -> None:
    for _ in range(2000):
        result = condition()
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def dm_turn(bot: BotHarness, text: str) -> dict[str, Any]:
    event = message_im(A, text)
    assert (await bot.send.event(event)).status_code == 200
    await bot.idle()
    return event


async def test_probes_answer_next_to_slack_events_without_the_request_guard(
    bot: BotHarness,
) -> None:
    health = await get(f"{bot.url}/healthz")
    assert health.status_code == 200 and health.json() == {"ok": True}
    ready = await get(f"{bot.url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"ok": True}
    families = {f.name for f in text_string_to_metric_families((await scrape(bot.url)).body)}
    for family in (
        "commander_turns",
        "commander_queue_depth",
        "commander_queue_oldest_age_seconds",
        "commander_lease_takeovers",
        "commander_ack_seconds",
        "commander_first_text_seconds",
        "commander_turn_seconds",
        "commander_model_errors",
        "commander_slack_errors",
    ):
        assert family in families


async def test_a_dm_turn_moves_the_latency_histograms(bot: BotHarness) -> None:
    await bot.commander.create(T, A, instructions="Be helpful.")
    bot.openai.script(Text("Hello there, " + "word " * 40))
    before = await scrape(bot.url)
    event = await dm_turn(bot, "hi")
    assert bot.slack.thread_text("D1", event["ts"]).startswith("Hello there")
    forged = await bot.send.event(message_im(A, "x"), signature="v0=" + "0" * 64)
    assert forged.status_code == 401
    after = await scrape(bot.url)
    for name in ("commander_first_text_seconds", "commander_turn_seconds"):
        assert after.get(f"{name}_count") == before.get(f"{name}_count") + 1
        assert after.get(f"{name}_sum") > before.get(f"{name}_sum")
    # The DM was acknowledged; the forged request was refused and is no acknowledgement.
    assert after.get("commander_ack_seconds_count") == before.get("commander_ack_seconds_count") + 1
    assert after.get("commander_queue_depth") == 0


async def test_slack_and_model_errors_are_counted_by_class(bot: BotHarness) -> None:
    await bot.commander.create(T, A, instructions="Be helpful.")
    before = await scrape(bot.url)
    bot.slack.faults.add("chat.startStream", error="not_allowed_token_type")
    bot.openai.script(Text("Streaming is refused, so this arrives as a plain message."))
    event = await dm_turn(bot, "first")
    assert "plain message" in bot.slack.thread_text("D1", event["ts"])
    bot.openai.faults.add(path="/v1/responses", status=400, message="Invalid value: 'input'.")
    await dm_turn(bot, "second")
    after = await scrape(bot.url)

    def moved(name: str, error_class: str) -> float:
        return after.get(name, error_class=error_class) - before.get(name, error_class=error_class)

    assert moved("commander_slack_errors_total", "not_allowed_token_type") == 1
    assert moved("commander_model_errors_total", "bad_request") == 1


async def test_queue_gauges_show_waiting_work_at_scrape_time(bot: BotHarness) -> None:
    await bot.commander.create(T, A, instructions="Be helpful.")
    bot.openai.faults.add(path="/v1/responses", delay=2.0)
    bot.openai.script(Text("one"), Text("two"))
    for text in ("first", "second"):  # the second waits behind the first: one turn a person
        assert (await bot.send.event(message_im(A, text))).status_code == 200

    async def both_waiting() -> bool:
        scraped = await scrape(bot.url)
        return scraped.get("commander_queue_depth") == 2 and (
            scraped.get("commander_queue_oldest_age_seconds") > 0
        )

    await until(both_waiting, "two jobs in the queue, one of them queued")
    await bot.idle()
    scraped = await scrape(bot.url)
    assert scraped.get("commander_queue_depth") == 0
    assert scraped.get("commander_queue_oldest_age_seconds") == 0
    assert await bot.bot.deps.jobs.queue_stats() == (0, None)


async def test_readyz_is_503_with_a_reason_when_the_database_does_not_answer() -> None:
    db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    probes = Probes(db, JobStore(db).queue_stats, timeout_s=5.0)
    try:
        async with serving(probe_app(probes)) as url:
            ready = await get(f"{url}/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"ok": False, "reason": "database unreachable"}
            assert (await get(f"{url}/healthz")).status_code == 200
            # Metrics still answer: the queue gauges keep their last values.
            assert "commander_queue_depth" in (await scrape(url)).body
    finally:
        await db.close()


async def test_socket_mode_readiness_follows_the_connection_and_acks_are_timed(
    bot: BotHarness,
) -> None:
    await bot.commander.create(T, A, instructions="Be helpful.")
    bot.openai.script(Text("Hello over the socket."))
    async with FakeSocketMode(APP_TOKEN) as socket_mode:
        handler = TimedSocketModeHandler(
            bot.bot.app, APP_TOKEN, web_client=AsyncWebClient(base_url=socket_mode.api_url)
        )
        async with serving(probe_app(bot.bot.probes(handler.client.is_connected))) as url:
            ready = await get(f"{url}/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"ok": False, "reason": "not connected to Slack"}
            assert (await get(f"{url}/healthz")).status_code == 200
            before = await scrape(url)
            try:
                await handler.connect_async()
                assert (await get(f"{url}/readyz")).status_code == 200
                event = message_im(A, "hi over the socket")
                envelope_id = await socket_mode.send_event(bot.send.envelope(event))
                assert (await socket_mode.wait_ack(envelope_id)) == {"envelope_id": envelope_id}
                await until(
                    lambda: "Hello over the socket" in bot.slack.thread_text("D1", event["ts"]),
                    "the answer",
                )
                await bot.idle()
                after = await scrape(url)
                assert after.get("commander_ack_seconds_count") == (
                    before.get("commander_ack_seconds_count") + 1
                )
                assert after.get("commander_turn_seconds_count") == (
                    before.get("commander_turn_seconds_count") + 1
                )
            finally:
                await handler.close_async()
            assert (await get(f"{url}/readyz")).status_code == 503


@pytest.fixture
def socket_mode_process(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> Iterator[Spawned]:
    """`python -m bot` in Socket Mode, where Slack does not let it connect (the fake Web
    API has no apps.connections.open)."""
    with spawn_bot(
        fake_openai, fake_slack, tmp_path, database_url, SLACK_APP_TOKEN=APP_TOKEN
    ) as spawned:
        yield spawned


async def test_socket_mode_process_serves_probes_and_stops_while_not_connected(
    socket_mode_process: Spawned,
) -> None:
    process, url = socket_mode_process
    await wait_healthy(process, url)
    ready = await get(f"{url}/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"ok": False, "reason": "not connected to Slack"}
    assert "commander_ack_seconds_count" in (await scrape(url)).body
    assert (await get(f"{url}/slack/events")).status_code == 404  # probes only
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0
