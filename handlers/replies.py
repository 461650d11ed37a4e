"""Show one turn in a Slack thread: streamed text, tool progress, files, errors.

Text streams through `chat_stream` (chat.startStream / appendStream / stopStream).
The first words go out at once; after that, deltas are batched so each stream makes at
most one append per `flush_interval_s`. When Slack refuses streaming, the reply falls
back to ordinary messages, split to stay within Slack's limits (and split further,
a bounded number of times, if Slack still answers msg_too_long). A reply ends once: a
failed turn's error replaces the normal ending rather than adding to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.models.messages.chunk import MarkdownTextChunk, TaskUpdateChunk
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from commander.events import ToolProgress
from commander.metrics import observe_first_text, observe_turn, record_slack_error
from handlers.text import split_markdown

log = logging.getLogger(__name__)

STREAM_MAX_CHARS = 11_000  # per streamed message; longer answers continue in a new one
FLUSH_CHARS = 1_000
ZWSP = "\u200b"
# Slack's own refusals, and the transport failing after the SDK's retries ran out.
SLACK_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)
MAX_SPLITS = 2  # msg_too_long: a part is split in halves at most twice (quarters)
MIN_SPLIT_CHARS = 200
TASK_STATUS = {"in_progress": "in_progress", "completed": "complete", "failed": "error"}


@dataclass(frozen=True)
class Target:
    channel: str
    thread_ts: str
    user_id: str
    team_id: str


class SlackReply:
    def __init__(
        self,
        client: AsyncWebClient,
        target: Target,
        *,
        on_stream: Callable[[str | None], Awaitable[None]],
        flush_interval_s: float = 1.0,
        started_at: float | None = None,
    ) -> None:
        """`started_at`: time.monotonic() when the job started (default: now), for the
        first-text and turn latency metrics."""
        self.client = client
        self.target = target
        self.on_stream = on_stream
        self.flush_interval_s = flush_interval_s
        self._stream: AsyncChatStream | None = None
        self._saved_ts: str | None = None
        self._streamed_chars = 0
        self._pending = ""
        self._pending_chunks: list[TaskUpdateChunk] = []
        self._fallback: list[str] | None = None
        self._last_flush = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._finished = False
        self._last_char = ""
        self._end_blocks: list[dict] | None = None
        self._started_at = time.monotonic() if started_at is None else started_at
        self._shown_text = False
        self.sent_any = False

    # --- text and progress --------------------------------------------------------

    async def text(self, delta: str) -> None:
        delta = self._defuse_mentions(delta)
        if self._fallback is not None:
            self._fallback.append(delta)
            return
        self._pending += delta
        if self._stream is None or len(self._pending) >= FLUSH_CHARS:
            await self._flush()
        else:
            self._schedule()

    def _defuse_mentions(self, delta: str) -> str:
        """Model text must not ping a channel: `<!here>`, `<!channel>`, `<!everyone>` and
        group mentions lose their meaning (a zero-width space after the `<`), also when
        the `<` and the `!` arrive in different deltas."""
        if self._last_char == "<" and delta.startswith("!"):
            delta = ZWSP + delta
        delta = delta.replace("<!", "<" + ZWSP + "!")
        self._last_char = delta[-1:] or self._last_char
        return delta

    async def progress(self, event: ToolProgress) -> None:
        if self._fallback is not None:
            return
        chunk = TaskUpdateChunk(
            id=(event.id or event.tool)[:64],
            title=event.label.capitalize(),
            status=TASK_STATUS.get(event.status, "in_progress"),
        )
        self._pending_chunks.append(chunk)
        await self._flush()

    def _schedule(self) -> None:
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(max(0.0, self._last_flush + self.flush_interval_s - time.monotonic()))
        # finish() cancels this timer: a batch already on its way (perhaps waiting out a
        # Retry-After) must still arrive, before whatever finish() sends after it.
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._lock:
            if self._fallback is not None or not (self._pending or self._pending_chunks):
                return
            text, chunks = self._pending, self._pending_chunks
            self._pending, self._pending_chunks = "", []
            try:
                await self._append(text, chunks)
            except SLACK_ERRORS as exc:
                await self._fall_back(exc, text)
            self._last_flush = time.monotonic()

    async def _append(self, text: str, chunks: list[TaskUpdateChunk]) -> None:
        if self._stream is not None and self._streamed_chars + len(text) > STREAM_MAX_CHARS:
            await self._stop_stream()
        if self._stream is None:
            self._stream = await self.client.chat_stream(
                channel=self.target.channel,
                thread_ts=self.target.thread_ts,
                recipient_user_id=self.target.user_id,
                recipient_team_id=self.target.team_id,
                task_display_mode="timeline",
                buffer_size=1,
            )
            self._streamed_chars = 0
        all_chunks = [*chunks, MarkdownTextChunk(text=text)] if text else chunks
        await self._stream.append(chunks=all_chunks)
        self._streamed_chars += len(text)
        self.sent_any = True
        if text:
            self._text_shown()
        if self._stream.ts and self._stream.ts != self._saved_ts:
            # Once per streamed message, not per append: it is a database write.
            self._saved_ts = self._stream.ts
            await self.on_stream(self._stream.ts)

    def _text_shown(self) -> None:
        if not self._shown_text:
            self._shown_text = True
            observe_first_text(time.monotonic() - self._started_at)

    async def _fall_back(self, exc: Exception, text: str) -> None:
        record_slack_error(exc)
        error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
        log.warning("streaming refused (%s); falling back to chat.postMessage", error or exc)
        # Deltas that arrived while the failed append was under way follow its text.
        self._fallback = [text + self._pending]
        self._pending, self._pending_chunks = "", []
        if self._stream is not None and self._stream.ts:
            await self._stop_stream()

    async def _stop_stream(
        self, markdown: str | None = None, blocks: list[dict] | None = None
    ) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            await stream.stop(markdown_text=markdown or None, blocks=blocks or None)
        except SLACK_ERRORS as exc:
            record_slack_error(exc)
            log.warning("could not close a Slack stream: %s", exc)
        await self.on_stream(None)

    # --- ending ---------------------------------------------------------------------

    async def finish(self, footer: str = "", end_blocks: list[dict] | None = None) -> None:
        """End the reply; only the first call counts (a failed turn has already ended it).

        `end_blocks` (e.g. the feedback buttons) end the message: chat.stopStream's
        blocks, or the last plain message's."""
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        self._pending += footer
        try:
            await self._flush()
            if self._fallback is not None:
                self._fallback.append(self._pending)
                self._pending = ""
                self._end_blocks = end_blocks
                await self.post("".join(self._fallback))
            elif self._stream is not None:
                await self._stop_stream(blocks=end_blocks)
        finally:
            observe_turn(time.monotonic() - self._started_at)

    async def fail(self, message: str) -> None:
        """End the turn with one short sentence, whatever state the stream is in."""
        queued = self._pending + "".join(self._fallback or [])
        shown = self.sent_any or bool(queued.strip())
        await self.finish(("\n\n" if shown else "") + f":warning: {message}")

    async def post(self, markdown: str) -> None:
        """Post text as ordinary messages, split within Slack's limits."""
        parts = [part for part in split_markdown(markdown) if part.strip()]
        for index, part in enumerate(parts):
            await self._post_part(part, last=index == len(parts) - 1)

    async def _post_part(self, part: str, splits: int = 0, *, last: bool = False) -> None:
        """One message; when Slack finds it too long, its halves, a bounded number of times."""
        extra = (self._end_blocks or []) if last else []
        try:
            await self.client.chat_postMessage(
                channel=self.target.channel,
                thread_ts=self.target.thread_ts,
                text=part[:3000],
                blocks=[{"type": "markdown", "text": part}, *extra],
            )
        except SlackApiError as exc:
            record_slack_error(exc)
            too_long = _error_code(exc) == "msg_too_long"
            if not too_long or splits >= MAX_SPLITS or len(part) < MIN_SPLIT_CHARS:
                raise
            log.info("Slack found a %d-character message too long; splitting it", len(part))
            pieces = [p for p in split_markdown(part, len(part) // 2 + 1) if p.strip()]
            for index, piece in enumerate(pieces):
                await self._post_part(piece, splits + 1, last=last and index == len(pieces) - 1)
            return
        self.sent_any = True
        self._text_shown()


def _error_code(exc: SlackApiError) -> str | None:
    response = getattr(exc, "response", None)
    try:
        return str(response["error"]) if response is not None else None
    except (KeyError, TypeError):
        return None
