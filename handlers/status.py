"""The assistant pane's "is thinking…" status, kept alive on long turns.

Slack clears a status after about two minutes, so it is re-sent periodically while
the turn runs, and cleared when it ends. Outside assistant threads Slack refuses the
call; the keeper then goes quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.replies import SLACK_ERRORS, Target

log = logging.getLogger(__name__)

REFRESH_S = 60.0
LOADING_MESSAGES = ["Thinking…", "Reading your files…", "Working on it…"]


class StatusKeeper:
    def __init__(self, client: AsyncWebClient, target: Target, *, enabled: bool) -> None:
        self.client = client
        self.target = target
        self.enabled = enabled
        self._status = "is thinking…"
        self._shown = False  # Slack accepted a status: it must be cleared at the end
        self._refresher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StatusKeeper:
        await self._send(self._status)
        if self.enabled:
            self._refresher = asyncio.create_task(self._refresh())
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self._send("")

    async def set(self, status: str) -> None:
        if status != self._status:
            self._status = status
            await self._send(status)

    async def set_title(self, title: str) -> None:
        if not self.enabled:
            return
        try:
            await self.client.assistant_threads_setTitle(
                channel_id=self.target.channel, thread_ts=self.target.thread_ts, title=title[:60]
            )
        except SLACK_ERRORS as exc:
            log.debug("setTitle refused: %s", exc)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await self._send(self._status)

    async def _send(self, status: str) -> None:
        if not self.enabled:
            return
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=self.target.channel,
                thread_ts=self.target.thread_ts,
                status=status,
                loading_messages=LOADING_MESSAGES if status else None,
            )
        except SlackApiError as exc:
            if exc.response.status_code == 200 and not self._shown:
                # Refused before anything showed: not an assistant thread; stay quiet.
                log.debug("setStatus refused (not an assistant thread?): %s", exc)
                self.enabled = False
            else:  # a failure left over after the SDK's retries: still clear it at the end
                log.warning("setStatus failed: %s", exc.response.get("error"))
        except SLACK_ERRORS as exc:
            log.warning("setStatus failed: %s", type(exc).__name__)
        else:
            self._shown = self._shown or bool(status)
