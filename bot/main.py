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
from bot.installs import add_install_routes
from bot.probes import TimedSocketModeHandler, probe_app
from bot.settings import BotSettings, load_settings
from commander.errors import CommanderError, DatabaseUnavailable
from commander.logs import configure_logging
from commander.settings import ConfigError
from commander.store.single_process import only_process

log = logging.getLogger("bot")


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
        await bot.close(settings.core.cluster.shutdown_grace_s)


async def _listen(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=os.environ.get("HOST", "0.0.0.0"), port=port).start()
    return runner


async def _http(bot: Bot, stop: asyncio.Event) -> None:
    runner = await _listen(bot.web_app(), bot.settings.slack.port)
    log.info(
        "serving Slack requests%s over HTTP on port %d", _and_api(bot), bot.settings.slack.port
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _socket_mode(bot: Bot, stop: asyncio.Event) -> None:
    handler = TimedSocketModeHandler(bot.app, bot.settings.slack.app_token)
    # Probes answer while connecting: /readyz says 503 until the socket is up.
    port = bot.settings.slack.port
    app = probe_app(bot.probes(handler.client.is_connected))
    bot.add_api(app)
    add_install_routes(app, bot.app)  # OAuth installs: the install page and redirect
    runner = await _listen(app, port)
    log.info("serving /healthz, /readyz and /metrics%s on port %d", _and_api(bot), port)
    # Connecting retries until Slack answers; a stop request must not wait for that.
    connecting = asyncio.create_task(_connect(handler))
    try:
        await stop.wait()
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await handler.close_async()
        await runner.cleanup()


def _and_api(bot: Bot) -> str:
    return " and the REST API" if bot.settings.api else ""


async def _connect(handler: TimedSocketModeHandler) -> None:
    await handler.connect_async()
    log.info("connected to Slack in Socket Mode")


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
        with (
            only_process(settings.core.database_url),
            asyncio.Runner(loop_factory=fast_event_loop()) as runner,
        ):
            runner.run(serve(settings))
    except (ConfigError, StartupError) as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(2)
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"Startup failed: {exc}\n")
        sys.exit(2)
    except CommanderError as exc:
        sys.stderr.write(f"Startup failed: {exc.user_message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        pass
