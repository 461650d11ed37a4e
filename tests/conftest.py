"""Shared fixtures: the fake OpenAI and Slack servers, the database, the core, and the
whole bot.

Everything runs over real HTTP on 127.0.0.1: the official SDKs talk to the fakes, and
the bot is driven by signed requests into its real /slack/events endpoint.

Every test that uses a database asks for `database_url` and so runs once per backend
(`test_x[sqlite]`, `test_x[postgresql]`): a new SQLite file in tmp_path, or a new empty
database on the PostgreSQL server TEST_POSTGRES_URL names (dropped afterwards). Where that
server is unreachable the PostgreSQL runs are skipped, saying why; with REQUIRE_POSTGRES=1
(as in CI) they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from commander.backend import http_client
from commander.runtime import build_commander, close_commander
from commander.service import Commander
from commander.settings import load_core_settings
from tests.dbs import (
    create_postgres_database,
    drop_postgres_database,
    drop_stale_postgres_databases,
    new_database_name,
    postgres_unavailable,
)
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack

API_KEY = "sk-test-secret-key"
BOT_TOKEN = "xoxb-test-bot-token"
SIGNING_SECRET = "test-signing-secret"
TEAM = "T1"

BACKENDS = ("sqlite", "postgresql")
SESSION_START = time.time()
# Test databases named this long before the session began belong to no run still going
# (other runs may share the server), so the session drops them.
STALE_AFTER_S = 3600.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): the test is about SQLite itself (its files, its locking) "
        "and runs on SQLite only",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    test = metafunc.definition
    if "database_url" in metafunc.fixturenames and test.get_closest_marker("sqlite_only"):
        # A parametrize mark takes precedence over the fixture's own params.
        test.add_marker(pytest.mark.parametrize("database_url", ["sqlite"], indirect=True))


class _Postgres:
    """Whether the test server can be used; asked once per process."""

    checked = False
    unavailable: str | None = None

    @classmethod
    def check(cls) -> None:
        if not cls.checked:
            cls.checked = True
            cls.unavailable = postgres_unavailable()

    @classmethod
    def require(cls) -> None:
        cls.check()
        if cls.unavailable is None:
            return
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{cls.unavailable}, and REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(f"{cls.unavailable}; set TEST_POSTGRES_URL to run the PostgreSQL tests")


def require_postgres() -> None:
    """Skip (or, with REQUIRE_POSTGRES=1, fail) the calling test without the server."""
    _Postgres.require()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop the databases killed runs left behind, once per run and before any test: in
    the only process of a plain run, or in the pytest-xdist controller before it starts
    the workers (a worker doing it could drop what a test on another worker has just made,
    such as test_backends' databases named as if left behind long ago)."""
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker
        return
    _Postgres.check()
    if _Postgres.unavailable is None:
        drop_stale_postgres_databases(SESSION_START - STALE_AFTER_S)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _Postgres.unavailable is not None:
        terminalreporter.write_line(
            f"PostgreSQL variants not run: {_Postgres.unavailable}", yellow=True, bold=True
        )


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database's URL, as a user would write it in DATABASE_URL."""
    if backend == "sqlite":
        yield f"sqlite:///{folder}/commander.db"
        return
    require_postgres()
    name = new_database_name()
    url = create_postgres_database(name)
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, team_id=TEAM, bot_user_id="UBOT", bot_id="BBOT") as fake:
        yield fake


def core_env(fake_openai: FakeOpenAI, database_url: str, **extra: str) -> dict[str, str]:
    if not isinstance(database_url, str):  # a folder, as before tests ran on both backends
        raise TypeError(f"core_env wants a database URL, not {database_url!r}")
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "DATABASE_URL": database_url,
        **extra,
    }


def openai_client(fake: FakeOpenAI, timeout: float | None = None) -> AsyncOpenAI:
    """`timeout`: seconds for every request (None: the SDK's default)."""
    # The bot's own transport (commander.backend.http_client), so faults hit what runs.
    if timeout is None:
        return AsyncOpenAI(
            base_url=fake.base_url, api_key=API_KEY, max_retries=2, http_client=http_client()
        )
    return AsyncOpenAI(
        base_url=fake.base_url,
        api_key=API_KEY,
        max_retries=2,
        timeout=timeout,
        http_client=http_client(),
    )


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
async def commander(
    fake_openai: FakeOpenAI, database_url: str, market: FakeMarket
) -> AsyncIterator[Commander]:
    settings = load_core_settings(core_env(fake_openai, database_url))
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
    database_url: str,
    market: FakeMarket | None = None,
    *,
    openai_timeout: float | None = None,
    **extra_env: str,
) -> BotHarness:
    from bot.app import Bot
    from bot.settings import load_settings

    env = {
        **core_env(fake_openai, database_url, **extra_env),
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
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str, market: FakeMarket
) -> AsyncIterator[BotHarness]:
    harness = await start_bot(fake_openai, fake_slack, database_url, market)
    yield harness
    await harness.stop()
