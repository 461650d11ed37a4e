"""A local fake of Slack's Socket Mode endpoint, over a real WebSocket (aiohttp).

``POST /api/apps.connections.open`` with ``Authorization: Bearer <app token>`` answers
``{"ok": true, "url": "ws://.../link/?ticket=..."}`` (``invalid_auth`` for another
token). On the socket the server first sends ``hello``, then whatever envelope a test
pushes with ``send_event(envelope_body)``: ``{"envelope_id", "type": "events_api",
"accepts_response_payload": false, "retry_attempt", "retry_reason", "payload"}``, as in
Slack's Socket Mode docs. The app acks with ``{"envelope_id": ...}``; acks land in
``acks``. Runs on the test's own event loop::

    async with FakeSocketMode(app_token="xapp-1-test") as socket_mode:
        client = AsyncWebClient(base_url=socket_mode.api_url)   # for apps.connections.open
        ...
"""

from __future__ import annotations

import asyncio
import json
import secrets
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

JsonDict = dict[str, Any]


class FakeSocketMode:
    def __init__(self, app_token: str, app_id: str = "A1") -> None:
        self.app_token = app_token
        self.app_id = app_id
        self.acks: list[JsonDict] = []
        self.sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._acked = asyncio.Condition()
        self.url = ""

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    async def __aenter__(self) -> FakeSocketMode:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.disconnect_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _open(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.app_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        ws_url = self.url.replace("http://", "ws://") + f"/link/?ticket={ticket}"
        return web.json_response({"ok": True, "url": ws_url})

    async def _link(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(request.query["ticket"])
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.sockets),
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                body = json.loads(message.data)
                if isinstance(body, dict) and "envelope_id" in body:
                    async with self._acked:
                        self.acks.append(body)
                        self._acked.notify_all()
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws

    async def send_event(self, payload: JsonDict, retry_attempt: int = 0) -> str:
        """Push an events_api envelope around an event_callback body; its envelope id."""
        envelope_id = secrets.token_hex(16)
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": payload,
        }
        await self.sockets[-1].send_json(envelope)
        return envelope_id

    async def wait_ack(self, envelope_id: str, wait_s: float = 10.0) -> JsonDict:
        async with asyncio.timeout(wait_s), self._acked:
            await self._acked.wait_for(
                lambda: any(a["envelope_id"] == envelope_id for a in self.acks)
            )
        return next(a for a in self.acks if a["envelope_id"] == envelope_id)

    async def disconnect_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
