"""`python -m bot`: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP on PORT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web
from dotenv import load_dotenv

from bot.app import Bot, StartupError
from bot.settings import BotSettings, load_settings
from commander.errors import CommanderError
from commander.runtime import quiet_http_loggers
from commander.settings import ConfigError

log = logging.getLogger("bot")


def configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_http_loggers()


async def serve(settings: BotSettings) -> None:
    bot = await Bot.create(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if settings.slack.socket_mode:
            await _socket_mode(bot, stop)
        else:
            await _http(bot, stop)
    finally:
        await bot.close()


async def _http(bot: Bot, stop: asyncio.Event) -> None:
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host=os.environ.get("HOST", "0.0.0.0"), port=bot.settings.slack.port)
    await site.start()
    log.info("serving Slack requests over HTTP on port %d", bot.settings.slack.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _socket_mode(bot: Bot, stop: asyncio.Event) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bot.app, bot.settings.slack.app_token)
    await handler.connect_async()
    log.info("connected to Slack in Socket Mode")
    try:
        await stop.wait()
    finally:
        await handler.close_async()


def main() -> None:
    load_dotenv()
    configure_logging()
    try:
        settings = load_settings()
        asyncio.run(serve(settings))
    except (ConfigError, StartupError) as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(2)
    except CommanderError as exc:
        sys.stderr.write(f"Startup failed: {exc.user_message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        pass
