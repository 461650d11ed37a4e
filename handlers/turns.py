"""Run one stored message job: files in, the turn, the reply out.

A job interrupted by a crash is run again on restart: the stream it left open is
closed first, with a note that the answer follows again.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.models.messages.chunk import MarkdownTextChunk
from slack_sdk.web.async_client import AsyncWebClient

from commander.errors import CommanderError
from commander.events import (
    Citation,
    EmailPending,
    GeneratedFile,
    TextDelta,
    ToolProgress,
    TurnFailed,
)
from commander.jobs import RUNNING
from commander.service import AddFilesResult, Resume
from commander.store.models import Job
from handlers import blocks
from handlers.context import Deps, error_ref
from handlers.replies import SLACK_ERRORS, SlackReply, Target
from handlers.status import StatusKeeper

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
NO_ASSISTANT_HINT = (
    "You don't have an assistant yet. Run `/assistant-create <instructions>` "
    "(or just `/assistant-create` for a form) and then talk to me here."
)
INTERRUPTED_NOTE = "\n\n_(Interrupted by a restart. The answer follows again below.)_"


class MessageJobs:
    def __init__(self, deps: Deps, client: AsyncWebClient, flush_interval_s: float = 1.0) -> None:
        self.deps = deps
        self.client = client
        self.flush_interval_s = flush_interval_s

    async def process(self, job: Job) -> None:
        payload = job.payload
        target = Target(
            payload["channel"], payload["thread_ts"], job.user_id, payload.get("user_team", "")
        )
        if job.status == RUNNING:
            await self._close_leftover_stream(job, target)
            if job.progress.get("answered"):
                await self.deps.jobs.finish(job)
                return
        if job.attempts >= MAX_ATTEMPTS:
            await self._say(target, f":warning: I could not answer this message (ref {job.id}).")
            await self.deps.jobs.finish(job, error="too many attempts")
            return
        await self.deps.jobs.start(job)
        try:
            await self._run(job, target)
        except CommanderError as exc:
            await self._close_leftover_stream(job, target)
            await self._say(target, f":warning: {exc.user_message}")
            await self.deps.jobs.finish(job, error=type(exc).__name__)
            return
        except Exception:
            ref = error_ref()
            log.exception("message job %s failed (ref %s)", job.id, ref)
            await self._close_leftover_stream(job, target)
            await self._say(target, f":warning: Something went wrong on my side (ref `{ref}`).")
            await self.deps.jobs.finish(job, error=f"crash {ref}")
            return
        await self.deps.jobs.finish(job)

    async def _run(self, job: Job, target: Target) -> None:
        payload = job.payload
        commander = self.deps.commander
        if await commander.get(job.team_id, job.user_id) is None:
            await self._say(target, NO_ASSISTANT_HINT, ephemeral=not payload.get("is_dm"))
            return
        text = payload.get("text", "")
        if payload.get("files"):
            added = await self.deps.files.fetch_all(job.team_id, job.user_id, payload["files"])
            await self._say(target, files_report(added))
            if not text:
                return
            if added.added:
                names = ", ".join(f.original_name for f in added.added)
                text += f"\n\n(I attached these files for you: {names})"
        if not text.strip():
            await self._say(target, "Your message is empty. Ask me something!")
            return
        new_thread = await self.deps.threads.follow(job.team_id, target.channel, target.thread_ts)
        title = (
            text[:60] if new_thread and payload.get("is_dm") and payload.get("in_thread") else ""
        )
        await self._turn(job, target, text, title)

    async def _turn(self, job: Job, target: Target, text: str, title: str) -> None:
        async def remember_stream(ts: str | None) -> None:
            await self.deps.jobs.save_progress(job, stream_ts=ts)

        reply = SlackReply(
            self.client, target, on_stream=remember_stream, flush_interval_s=self.flush_interval_s
        )
        status = StatusKeeper(self.client, target, enabled=bool(job.payload.get("is_dm")))
        citations: list[str] = []
        async with status:
            if title:
                await status.set_title(title)
            resume = await self._resume_point(job)
            async for event in self.deps.commander.ask(
                job.team_id, job.user_id, text, resume=resume
            ):
                await self._show(event, reply, status, target, citations)
            footer = f"\n\n_Sources: {', '.join(citations)}_" if citations else ""
            await reply.finish(footer)
        await self.deps.jobs.save_progress(job, answered=True, stream_ts=None)

    async def _resume_point(self, job: Job) -> Resume | None:
        """The thread's position before this job's turn, saved on its first attempt."""
        if "cursor" in job.progress:
            return Resume(job.progress["cursor"])
        assistant = await self.deps.commander.require(job.team_id, job.user_id)
        await self.deps.jobs.save_progress(job, cursor=assistant.last_item_id)
        return None

    async def _show(
        self,
        event: Any,
        reply: SlackReply,
        status: StatusKeeper,
        target: Target,
        citations: list[str],
    ) -> None:
        if isinstance(event, TextDelta):
            await reply.text(event.text)
        elif isinstance(event, ToolProgress):
            await reply.progress(event)
            if event.status == "in_progress":
                await status.set(f"is {event.label}…")
        elif isinstance(event, GeneratedFile):
            await self._upload(target, event)
        elif isinstance(event, Citation):
            citations.append(event.filename)
        elif isinstance(event, EmailPending):
            await self._post_blocks(
                target,
                "Your assistant drafted an email. Send it?",
                blocks.email_confirmation(
                    event.pending_id, list(event.to), event.subject, event.content, target.user_id
                ),
            )
        elif isinstance(event, TurnFailed):
            await reply.fail(event.user_message)

    async def _upload(self, target: Target, file: GeneratedFile) -> None:
        try:
            await self.client.files_upload_v2(
                channel=target.channel,
                thread_ts=target.thread_ts,
                content=file.content,
                filename=file.filename,
                title=file.filename,
            )
        except SLACK_ERRORS as exc:
            log.warning("uploading %s to Slack failed: %s", file.filename, exc)
            await self._say(target, f":warning: I made {file.filename} but could not upload it.")

    async def _close_leftover_stream(self, job: Job, target: Target) -> None:
        ts = job.progress.get("stream_ts")
        if not ts or job.progress.get("answered"):
            return
        try:
            await self.client.chat_stopStream(
                channel=target.channel, ts=ts, chunks=[MarkdownTextChunk(text=INTERRUPTED_NOTE)]
            )
        except SLACK_ERRORS as exc:
            log.info("leftover stream %s was already closed: %s", ts, exc)
        await self.deps.jobs.save_progress(job, stream_ts=None)

    async def _say(self, target: Target, text: str, *, ephemeral: bool = False) -> None:
        try:
            if ephemeral:
                await self.client.chat_postEphemeral(
                    channel=target.channel,
                    user=target.user_id,
                    text=text,
                    thread_ts=target.thread_ts,
                )
            else:
                await self.client.chat_postMessage(
                    channel=target.channel, thread_ts=target.thread_ts, text=text
                )
        except SLACK_ERRORS as exc:
            log.warning("could not post to Slack: %s", exc)

    async def _post_blocks(self, target: Target, text: str, message_blocks: list[dict]) -> None:
        try:
            await self.client.chat_postMessage(
                channel=target.channel, thread_ts=target.thread_ts, text=text, blocks=message_blocks
            )
        except SLACK_ERRORS as exc:
            log.warning("could not post to Slack: %s", exc)


def files_report(result: AddFilesResult) -> str:
    lines = []
    if result.added:
        names = ", ".join(f"`{f.original_name}`" for f in result.added)
        lines.append(f":paperclip: Added to your assistant: {names}")
    for name, reason in result.rejected:
        lines.append(f":no_entry_sign: Not added: `{name}`: {reason}.")
    return "\n".join(lines) or "No files were attached."
