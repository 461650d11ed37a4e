"""What orchestrators and Prometheus ask: GET /healthz, /readyz and /metrics.

In HTTP mode these routes sit next to /slack/events (the Slack request guard only looks
at POST /slack/events); in Socket Mode a small server on PORT serves only them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest
from sqlalchemy import text

from commander.metrics import QueueStats, observe_ack, refresh_queue_gauges
from commander.store.db import Database

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0
SLACK_EVENTS_PATH = "/slack/events"

Connected = Callable[[], Awaitable[bool]]
Handler = Any


class Probes:
    """`slack_connected`: in Socket Mode, whether the Socket Mode client is connected."""

    def __init__(
        self,
        db: Database,
        queue_stats: QueueStats,
        slack_connected: Connected | None = None,
        timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.db = db
        self.queue_stats = queue_stats
        self.slack_connected = slack_connected
        self.timeout_s = timeout_s

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        reason = await self.not_ready()
        if reason:
            return web.json_response({"ok": False, "reason": reason}, status=503)
        return web.json_response({"ok": True})

    async def not_ready(self) -> str | None:
        """Why this instance should not get traffic now; None when it is ready."""
        try:
            await asyncio.wait_for(self._select_1(), self.timeout_s)
        except Exception as exc:
            log.warning("readiness: the database did not answer (%s)", type(exc).__name__)
            return "database unreachable"
        if self.slack_connected is not None and not await self.slack_connected():
            return "not connected to Slack"
        return None

    async def _select_1(self) -> None:
        async with self.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def metrics(self, _request: web.Request) -> web.Response:
        await refresh_queue_gauges(self.queue_stats)
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def probe_app(probes: Probes) -> web.Application:
    app = web.Application()
    probes.add_to(app)
    return app


@web.middleware
async def ack_timer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Times POST /slack/events from arrival to response (Slack's acknowledgement)."""
    if request.method != "POST" or request.path != SLACK_EVENTS_PATH:
        return await handler(request)
    started = time.perf_counter()
    response: web.StreamResponse = await handler(request)
    if response.status < 400:  # forged or malformed requests are not acknowledgements
        observe_ack(time.perf_counter() - started)
    return response


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each envelope from receipt to its ack."""

    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        started = time.perf_counter()
        await super().handle(client, req)
        observe_ack(time.perf_counter() - started)
