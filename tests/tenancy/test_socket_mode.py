"""Socket Mode with OAuth installs: the install page and redirect are served next to the
probes (never /slack/events), and events over the socket use their workspace's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.installs import add_install_routes
from bot.probes import TimedSocketModeHandler, probe_app
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_oauth import OAuthApp
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_socket import FakeSocketMode
from tests.tenancy.harness import CLIENT_ID, CLIENT_SECRET, install, start_oauth_bot, until

APP_TOKEN = "xapp-1-test"


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


async def test_socket_mode_serves_installs_and_answers_with_the_workspace_token(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    bot = await start_oauth_bot(
        fake_openai, fake_slack, database_url, redirect_here=False, SLACK_APP_TOKEN=APP_TOKEN
    )
    try:
        assert bot.bot.settings.slack.socket_mode
        async with FakeSocketMode(APP_TOKEN) as socket_mode:
            handler = TimedSocketModeHandler(
                bot.bot.app, APP_TOKEN, web_client=AsyncWebClient(base_url=socket_mode.api_url)
            )
            pages = probe_app(bot.bot.probes(handler.client.is_connected))
            add_install_routes(pages, bot.bot.app)
            async with serving(pages) as url:
                fake_slack.oauth.configure(
                    OAuthApp(CLIENT_ID, CLIENT_SECRET, redirect_url=f"{url}/slack/oauth_redirect")
                )
                a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA", pages_url=url)
                async with httpx.AsyncClient() as probe:
                    assert (await probe.post(f"{url}/slack/events", content="{}")).status_code in (
                        404,
                        405,
                    )
                await bot.commander.create("TA", "U1", instructions="Be helpful.")
                bot.openai.script(Text("over the socket"))
                await handler.connect_async()
                try:
                    event = message_im("U1", "hi", channel="DA1", team="TA")
                    envelope_id = await socket_mode.send_event(a.send.envelope(event))
                    await socket_mode.wait_ack(envelope_id)
                    await until(
                        lambda: bot.slack.thread_text("DA1", event["ts"]) == "over the socket",
                        "the answer",
                    )
                    await bot.idle()
                finally:
                    await handler.close_async()
                streams = [c for c in fake_slack.calls_to("chat.startStream")]
                assert streams and {c.token for c in streams} == {a.token}
                await a.send.aclose()
    finally:
        await bot.stop()
