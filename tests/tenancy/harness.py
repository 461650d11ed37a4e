"""A bot in OAuth mode against the fakes, and installing it the way a person does:
install page, Slack's consent screen (the fake's), the OAuth redirect."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from tests.conftest import SIGNING_SECRET, BotHarness, core_env, openai_client
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_oauth import OAuthApp
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack

CLIENT_ID, CLIENT_SECRET, STATE_SECRET = "1234.5678", "client-secret", "state-secret"
AUTHORIZE_LINK = re.compile(r'href="([^"]*/oauth/v2/authorize\?[^"]*)"')


def oauth_env(fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str, **extra: str):
    return {
        **core_env(fake_openai, database_url, **extra),
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_STATE_SECRET": STATE_SECRET,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_AUTHORIZE_URL": fake_slack.authorize_url,
    }


async def start_oauth_bot(
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    database_url: str,
    *,
    rotation: bool = False,
    expires_in: int = 43_200,
    redirect_here: bool = True,
    **extra_env: str,
) -> BotHarness:
    """`redirect_here`: the fake Slack app's redirect URL points at this bot (an app
    has one; a second instance behind the same URL leaves it)."""
    from bot.app import Bot
    from bot.settings import load_settings

    env = oauth_env(fake_openai, fake_slack, database_url, **extra_env)
    bot = await Bot.create(
        load_settings(env), openai_client=openai_client(fake_openai), market=FakeMarket()
    )
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    if redirect_here:
        fake_slack.oauth.configure(
            OAuthApp(
                CLIENT_ID,
                CLIENT_SECRET,
                redirect_url=f"{url}/slack/oauth_redirect",
                rotation=rotation,
                expires_in=expires_in,
            )
        )
    sender = SlackRequestSender(url, SIGNING_SECRET, team_id="T1")
    return BotHarness(bot, sender, fake_slack, fake_openai, url, runner)


@dataclass
class Installed:
    token: str
    send: SlackRequestSender


async def install(
    bot: BotHarness,
    team_id: str | None,
    installer: str,
    *,
    bot_user_id: str,
    enterprise_id: str | None = None,
    org_wide: bool = False,
    sender_team: str | None = None,
    pages_url: str | None = None,
) -> Installed:
    """Install through the browser flow; returns the new token and a sender of events
    from that workspace (for an org-wide install: from `sender_team`)."""
    bot.slack.oauth.choose(
        team_id,
        installer,
        enterprise_id=enterprise_id,
        org_wide=org_wide,
        bot_user_id=bot_user_id,
    )
    pages = pages_url or bot.url  # where the install page and redirect are served
    before = set(bot.slack.oauth.grants)
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(f"{pages}/slack/install")
        assert page.status_code == 200, page.text
        link = AUTHORIZE_LINK.search(page.text)
        assert link, page.text
        consent = await browser.get(html.unescape(link.group(1)))
        assert consent.status_code == 302, consent.text
        redirect = consent.headers["location"]
        assert redirect.startswith(f"{pages}/slack/oauth_redirect?")
        # Bolt's state cookie is marked Secure; a browser on this plain-HTTP test URL
        # would not send it back, so it is handed over as the browser would over HTTPS.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        done = await browser.get(redirect, headers={"Cookie": cookie})
    assert done.status_code == 200, done.text
    (token,) = set(bot.slack.oauth.grants) - before
    send = SlackRequestSender(
        bot.url,
        SIGNING_SECRET,
        team_id=sender_team or team_id or "",
        bot_user_id=bot_user_id,
        enterprise_id=enterprise_id,
        org_install=org_wide,
    )
    return Installed(token, send)


async def until(condition: Callable[[], Any], what: str) -> None:
    """Wait for a condition the system under test makes true (bounded, not a fixed sleep)."""
    for _ in range(2000):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")
