"""`python -m bot`: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP on PORT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable

from aiohttp import web
from dotenv import load_dotenv

from bot.app import Bot, StartupError
from bot.demo_market import market_from_env
from bot.settings import BotSettings, load_settings
from commander.api import serve_api
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
    # MARKET_DATA=fixed: offline prices for benchmarks and demos only (bot/demo_market.py).
    bot = await Bot.create(settings, market=market_from_env(os.environ))
    # Everything built so far (modules, validators, the app) lives as long as the process:
    # keep it out of the garbage collector's full passes, which otherwise stall the event
    # loop for ~100 ms at a time under load.
    gc.freeze()
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
    log.info(
        "serving Slack requests%s over HTTP on port %d",
        " and the REST API" if bot.settings.api else "",
        bot.settings.slack.port,
    )
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
        api = bot.api_app()
        if api is None:
            await stop.wait()
        else:
            host = os.environ.get("HOST", "0.0.0.0")
            await serve_api(api, host, bot.settings.slack.port, stop)
    finally:
        await handler.close_async()


def fast_event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (not on Windows): the bot spends most of its time in
    the event loop and socket I/O, which uvloop does in C. None: asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    load_dotenv()
    configure_logging()
    try:
        settings = load_settings()
        with asyncio.Runner(loop_factory=fast_event_loop()) as runner:
            runner.run(serve(settings))
    except (ConfigError, StartupError) as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(2)
    except CommanderError as exc:
        sys.stderr.write(f"Startup failed: {exc.user_message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        pass
