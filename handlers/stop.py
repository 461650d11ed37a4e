"""Stopping an answer while it streams: its author sends "stop" in the thread.

Any instance may receive the "stop"; it is recorded on the answer's row in the database.
The instance streaming the answer reads that row between flushes and, when a stop is
there, cancels the model call: the task reading the model's stream is cancelled (its
HTTP stream closes), while Slack calls, which run in the caller's task, are never cut
half-way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from commander.feedback import AnswerKey, Answers
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"stop", "stop it", "please stop"})
NOT_YOURS = "That answer belongs to someone else, so only its author can stop it. Nothing changed."
_END = object()


def is_stop(text: str) -> bool:
    return text.strip().lower().rstrip("!. ") in STOP_WORDS


async def request_stop(
    answers: Answers, client: AsyncWebClient | None, key: AnswerKey, in_thread: bool
) -> bool:
    """Record a stop for the author's streaming answer; True when the message was a stop
    (handled: it is not a question for the model)."""
    outcome = await answers.request_stop(key, any_thread=not in_thread)
    if outcome == "stopping":
        log.info("stop requested by %s/%s", key.team_id, key.user_id)
        return True
    if outcome == "not_yours":
        if client is not None:
            try:
                await client.chat_postEphemeral(
                    channel=key.channel, user=key.user_id, thread_ts=key.thread_ts, text=NOT_YOURS
                )
            except SLACK_ERRORS as exc:
                log.info("could not tell %s that the answer is not theirs: %s", key.user_id, exc)
        return True
    return False


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class StopWatch:
    """Feeds a turn's events to `show`, checking every `interval_s` for a stop request."""

    def __init__(self, answers: Answers, answer_id: str, interval_s: float) -> None:
        self.answers = answers
        self.answer_id = answer_id
        self.interval_s = interval_s

    async def run(self, events: AsyncIterator[Any], show: Callable[[Any], Awaitable[None]]) -> bool:
        """True when the author stopped it (the model call was cancelled)."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

        async def produce() -> None:
            try:
                async with contextlib.aclosing(events):  # type: ignore[type-var]
                    async for event in events:
                        queue.put_nowait(event)
                        # No reading ahead: the turn goes on (a function's output is sent,
                        # the next delta asked for) only once this event is shown, as when
                        # the events are shown inline. Crash recovery relies on that.
                        await queue.join()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                queue.put_nowait(_Raised(exc))
                return
            queue.put_nowait(_END)

        producer = asyncio.create_task(produce(), name=f"answer:{self.answer_id}")
        next_check = time.monotonic() + self.interval_s
        try:
            while True:
                wait = max(0.0, next_check - time.monotonic())
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
                    # cancellation that comes as the item arrives (the job must stop).
                    async with asyncio.timeout(wait):
                        item = await queue.get()
                except TimeoutError:
                    item = None
                if item is _END:
                    return False
                if isinstance(item, _Raised):
                    raise item.exc
                if item is not None:
                    await show(item)
                    queue.task_done()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.interval_s
                    if await self.answers.stop_requested(self.answer_id):
                        return True
        finally:
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
