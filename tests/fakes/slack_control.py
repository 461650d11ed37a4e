"""Control routes of the fake Slack under ``/_fake/`` (for standalone use).

GET  /_fake/calls[?method=chat.postMessage]  recorded calls (Authorization redacted)
GET  /_fake/messages                         channel -> messages
GET  /_fake/uploads                          completed uploads (size, sha256, text preview)
GET  /_fake/response_posts                   key -> bodies posted to response URLs
GET  /_fake/timings                          first-text timing per (channel, thread_ts)
GET  /_fake/faults                           pending faults
POST /_fake/files                            register a download: {name, content | content_base64
                                             | size, mimetype?, filetype?, user?, title?}
POST /_fake/faults                           queue a fault: same keys as Faults.add()
POST /_fake/reset                            forget everything
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.slack_server import FakeSlack

PREVIEW_BYTES = 2000


class ControlRoutes:
    """``/_fake/*`` handlers reading and driving one FakeSlack."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake

    def add_to(self, app: web.Application) -> None:
        gets: dict[str, Callable[[web.Request], Any]] = {
            "calls": self.calls,
            "messages": self.messages,
            "uploads": self.uploads,
            "response_posts": self.response_posts,
            "timings": self.timings,
            "faults": self.faults,
        }
        for name, getter in gets.items():
            app.router.add_get(f"/_fake/{name}", _as_json(getter))
        app.router.add_post("/_fake/files", self.add_file)
        app.router.add_post("/_fake/faults", self.add_fault)
        app.router.add_post("/_fake/reset", self.reset)

    def calls(self, request: web.Request) -> Any:
        method = request.query.get("method")
        chosen = self.fake.calls_to(method) if method else self.fake.calls
        return {"calls": [c.to_json() for c in chosen]}

    def messages(self, request: web.Request) -> Any:
        with self.fake.state.lock:
            return {
                channel: [asdict(m) for m in messages]
                for channel, messages in self.fake.messages.items()
            }

    def uploads(self, request: web.Request) -> Any:
        return {"uploads": [_upload_json(u) for u in self.fake.uploads]}

    def response_posts(self, request: web.Request) -> Any:
        return dict(self.fake.response_posts)

    def timings(self, request: web.Request) -> Any:
        timings = self.fake.timings
        return {
            "timings": [t.to_json() for t in timings.values()],
            "by_thread": {f"{ch}:{ts}": t.to_json() for (ch, ts), t in timings.items()},
        }

    def faults(self, request: web.Request) -> Any:
        return {"faults": [f.to_json() for f in self.fake.faults.pending]}

    async def add_file(self, request: web.Request) -> web.Response:
        spec = await request.json()
        if "content_base64" in spec:
            content = base64.b64decode(spec.pop("content_base64"))
        else:
            content = str(spec.pop("content", "")).encode()
        name = spec.pop("name")
        return web.json_response(self.fake.add_file(name, content, **spec))

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = self.fake.faults.add_json(await request.json())
        return web.json_response({"ok": True, "fault": fault.to_json()})

    async def reset(self, request: web.Request) -> web.Response:
        self.fake.reset()
        return web.json_response({"ok": True})


def _as_json(getter: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(getter(request))

    return handler


def _upload_json(upload: Any) -> dict[str, Any]:
    data = asdict(upload)
    content: bytes = data.pop("data")
    data["size"] = len(content)
    data["sha256"] = hashlib.sha256(content).hexdigest()
    data["text_preview"] = content[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    return data
