"""Shared fixtures: the fake OpenAI and Slack servers, the core, and the whole bot.

Everything runs over real HTTP on 127.0.0.1: the official SDKs talk to the fakes, and
the bot is driven by signed requests into its real /slack/events endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from commander.runtime import build_commander, close_commander
from commander.service import Commander
from commander.settings import load_core_settings
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack

API_KEY = "sk-test-secret-key"
BOT_TOKEN = "xoxb-test-bot-token"
SIGNING_SECRET = "test-signing-secret"
TEAM = "T1"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, team_id=TEAM, bot_user_id="UBOT", bot_id="BBOT") as fake:
        yield fake


def core_env(fake_openai: FakeOpenAI, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/commander.db",
        **extra,
    }


def openai_client(fake: FakeOpenAI, timeout: float | None = None) -> AsyncOpenAI:
    """`timeout`: seconds for every request (None: the SDK's default)."""
    if timeout is None:
        return AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=2)
    return AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=2, timeout=timeout)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
async def commander(
    fake_openai: FakeOpenAI, tmp_path: Path, market: FakeMarket
) -> AsyncIterator[Commander]:
    settings = load_core_settings(core_env(fake_openai, tmp_path))
    service = await build_commander(settings, client=openai_client(fake_openai), market=market)
    yield service
    await close_commander(service)


@dataclass
class BotHarness:
    bot: Any
    send: SlackRequestSender
    slack: FakeSlack
    openai: FakeOpenAI
    url: str
    runner: web.AppRunner

    @property
    def commander(self) -> Commander:
        return self.bot.deps.commander

    async def idle(self) -> None:
        await self.bot.idle()

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.send.aclose()
        await self.bot.close()


async def start_bot(
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    tmp_path: Path,
    market: FakeMarket | None = None,
    *,
    openai_timeout: float | None = None,
    **extra_env: str,
) -> BotHarness:
    from bot.app import Bot
    from bot.settings import load_settings

    env = {
        **core_env(fake_openai, tmp_path, **extra_env),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }
    bot = await Bot.create(
        load_settings(env),
        openai_client=openai_client(fake_openai, openai_timeout),
        market=market or FakeMarket(),
    )
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    sender = SlackRequestSender(url, SIGNING_SECRET, team_id=TEAM)
    return BotHarness(bot, sender, fake_slack, fake_openai, url, runner)


@pytest.fixture
async def bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, market: FakeMarket
) -> AsyncIterator[BotHarness]:
    harness = await start_bot(fake_openai, fake_slack, tmp_path, market)
    yield harness
    await harness.stop()
