"""The composition root: build the core, the Bolt app and its listeners, and serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from openai import AsyncOpenAI
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.guard import slack_request_guard
from bot.installs import oauth_parts
from bot.probes import Connected, Probes, ack_timer
from bot.settings import BotSettings
from commander.api import mount_api
from commander.jobs import JobRunner, JobStore, ThreadFollower
from commander.retention import Notify, Retention
from commander.runtime import build_commander, close_commander
from commander.service import Commander
from commander.stream_events import warm_up
from commander.tenancy import Departures
from commander.tools import MarketData
from commander.usage import UsageBook
from handlers.context import Deps, SlackConfig
from handlers.downloads import SlackFiles
from handlers.lifecycle import retention_notifier
from handlers.registry import register_all
from handlers.turns import MAX_ATTEMPTS, MessageJobs
from handlers.workspaces import SingleWorkspace, Workspaces

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The bot cannot start; the message says why in plain words."""


SLACK_TIMEOUT_S = 30
SLACK_MAX_CONNECTIONS = 256


def slack_client(
    settings: BotSettings,
    token: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    # One pooled HTTP session for every Web API call. Without it slack_sdk opens (and
    # closes) a new session and TCP/TLS connection for each call. With OAuth installs the
    # clients of all workspaces share it, each with its own token.
    session = session or aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT_S),
        connector=aiohttp.TCPConnector(limit=SLACK_MAX_CONNECTIONS),
    )
    return AsyncWebClient(
        token=token or settings.slack.bot_token or None,
        base_url=settings.slack.api_url,
        session=session,
        timeout=SLACK_TIMEOUT_S,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            SlackServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """Retries 500 and 503 as the SDK's does, and also 502 and 504 (Slack's edge failing
    to reach the API). A 429 is left to the rate-limit handler, which honours Retry-After."""

    async def _can_retry_async(self, *, state: Any, request: Any, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        return response is not None and response.status_code in (500, 502, 503, 504)


async def _identify(client: AsyncWebClient) -> tuple[str, str]:
    try:
        auth = await client.auth_test()
    except Exception as exc:
        error = getattr(getattr(exc, "response", None), "data", {}) or {}
        reason = error.get("error") if isinstance(error, dict) else None
        raise StartupError(
            f"Slack rejected SLACK_BOT_TOKEN ({reason or type(exc).__name__}). "
            "Check the token and SLACK_API_URL."
        ) from None
    return str(auth["user_id"]), str(auth["team_id"])


JOB_RETENTION = timedelta(days=3)
HOUSEKEEPING_EVERY_S = 6 * 3600


async def _housekeeping(jobs: JobStore) -> None:
    while True:
        try:
            purged = await jobs.purge(JOB_RETENTION)
            if purged:
                log.info("forgot %d finished message job(s)", purged)
        except Exception:
            log.exception("housekeeping failed")
        await asyncio.sleep(HOUSEKEEPING_EVERY_S)


TENANCY_CHORES_EVERY_S = 15 * 60


async def _tenancy_chores(
    departures: Departures | None, retention: Retention | None, notify: Notify
) -> None:
    """Purges of workspaces whose uninstall grace period has ended; retention."""
    while True:
        try:
            if departures is not None:
                await departures.purge_due()
            if retention is not None:
                await retention.run(notify)
        except Exception:
            log.exception("purging departed workspaces or retention failed")
        await asyncio.sleep(TENANCY_CHORES_EVERY_S)


@dataclass
class Bot:
    settings: BotSettings
    app: AsyncApp
    deps: Deps
    runner: JobRunner
    housekeeping: asyncio.Task[None] | None = None
    tenancy_chores: asyncio.Task[None] | None = None
    retention: Retention | None = None
    tenancy_notify: Notify | None = None

    @classmethod
    async def create(
        cls,
        settings: BotSettings,
        *,
        openai_client: AsyncOpenAI | None = None,
        market: MarketData | None = None,
    ) -> Bot:
        client = slack_client(settings)
        bot_user_id = team_id = ""
        try:
            if settings.slack.oauth is None:
                bot_user_id, team_id = await _identify(client)
            commander: Commander = await build_commander(
                settings.core, client=openai_client, market=market
            )
        except BaseException:
            await _close_session(client)
            raise
        warm_up(commander.backend.turn_client)
        workspaces: Workspaces = SingleWorkspace(client, bot_user_id)
        departures: Departures | None = None
        oauth_settings = None
        if settings.slack.oauth is not None:
            oauth_settings, installs = oauth_parts(
                settings.slack.oauth,
                commander.db,
                client,
                lambda token: slack_client(settings, token, client.session),
            )
            grace = timedelta(days=settings.tenancy.uninstall_grace_days)
            departures = Departures(commander, grace)
            installs.store.on_install = departures.returned
            workspaces = installs
        app = AsyncApp(
            client=client,
            signing_secret=settings.slack.signing_secret or "socket-mode",
            process_before_response=True,
            request_verification_enabled=not settings.slack.socket_mode,
            oauth_settings=oauth_settings,
        )
        cluster = settings.core.cluster
        jobs = JobStore(
            commander.db,
            commander.locks.instance_id,
            cluster.job_lease_s,
            max_attempts=MAX_ATTEMPTS,
        )
        deps = Deps(
            commander=commander,
            jobs=jobs,
            files=SlackFiles(commander, settings.slack.bot_token, settings.slack.api_url),
            threads=ThreadFollower(commander.db),
            slack=SlackConfig(
                bot_token=settings.slack.bot_token,
                api_url=settings.slack.api_url,
                bot_user_id=bot_user_id,
                team_id=team_id,
            ),
            workspaces=workspaces,
            departures=departures,
            usage=UsageBook(commander.db, settings.tenancy),
        )
        runner = JobRunner(jobs, MessageJobs(deps, client).process, poll_s=cluster.job_poll_s)
        deps.runner = runner
        register_all(app, deps)
        resumed = await runner.recover()
        if resumed:
            log.info("claimed unfinished work of %d user(s)", resumed)
        runner.start_sweeping()
        log.info("instance %s is taking jobs", jobs.instance_id)
        bot = cls(settings, app, deps, runner, asyncio.create_task(_housekeeping(jobs)))
        if settings.tenancy.retention_days is not None:
            bot.retention = Retention(commander, settings.tenancy)
        bot.tenancy_notify = retention_notifier(deps)
        if departures is not None or bot.retention is not None:
            bot.tenancy_chores = asyncio.create_task(
                _tenancy_chores(departures, bot.retention, bot.tenancy_notify)
            )
        return bot

    def web_app(self) -> web.Application:
        web_app = self.app.web_app(path="/slack/events", port=self.settings.slack.port)
        web_app.middlewares.insert(0, ack_timer)
        web_app.middlewares.append(slack_request_guard(self.settings.slack))
        self.probes().add_to(web_app)
        self.add_api(web_app)
        return web_app

    def add_api(self, app: web.Application) -> None:
        """The REST API at /api when API_KEYS is set: beside /slack/events in HTTP mode,
        beside the probes on PORT in Socket Mode."""
        if self.settings.api is not None:
            mount_api(app, self.deps.commander, self.settings.api, usage=self.deps.usage)

    def probes(self, slack_connected: Connected | None = None) -> Probes:
        return Probes(self.deps.commander.db, self.deps.jobs.queue_stats, slack_connected)

    async def idle(self) -> None:
        """Wait until every accepted piece of work has finished (tests, shutdown)."""
        while True:
            await self.deps.idle()
            await self.runner.idle()
            if not self.deps.busy and not self.runner.busy:
                return

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop; running jobs get `grace_s` to finish, then go to the other instances."""
        for chore in (self.housekeeping, self.tenancy_chores):
            if chore is not None:
                chore.cancel()
                # Wait for it: closing the database under a running purge hangs aiosqlite.
                with contextlib.suppress(asyncio.CancelledError):
                    await chore
        await self.runner.close(grace_s)
        await self.deps.idle()
        await self.deps.files.close()
        await close_commander(self.deps.commander)
        await _close_session(self.app.client)


async def _close_session(client: AsyncWebClient) -> None:
    if client.session is not None and not client.session.closed:
        await client.session.close()
