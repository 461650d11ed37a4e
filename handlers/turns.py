"""Run one stored message job: files in, the turn, the reply out.

A job interrupted by a crash is run again on restart: the stream it left open is
closed first, with a note that the answer follows again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.models.messages.chunk import MarkdownTextChunk
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from commander.attachments import InputsResult, input_kind
from commander.errors import CommanderError
from commander.events import (
    Citation,
    EmailPending,
    GeneratedFile,
    Notice,
    TextDelta,
    ToolProgress,
    TurnCompleted,
    TurnFailed,
)
from commander.feedback import AnswerKey
from commander.filetypes import route, safe_filename
from commander.jobs import RUNNING, Closing
from commander.leases import LeaseLost
from commander.service import AddFilesResult, Resume
from commander.store.answer_models import ANSWERED, FAILED, STOPPED
from commander.store.models import Job
from commander.usage import TurnUsage
from handlers import answer_blocks, blocks
from handlers.context import Deps, error_ref
from handlers.replies import SLACK_ERRORS, SlackReply, Target
from handlers.status import StatusKeeper
from handlers.stop import StopWatch
from handlers.text import split_markdown
from handlers.uploads import upload_to_thread
from handlers.workspaces import Where

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
NO_FILES = "No files were attached."
SAY_MAX_CHARS = 3_000
NO_ASSISTANT_HINT = (
    "You don't have an assistant yet. Run `/assistant-create <instructions>` "
    "(or just `/assistant-create` for a form) and then talk to me here."
)
INTERRUPTED_NOTE = "\n\n_(Interrupted by a restart. The answer follows again below.)_"
MAX_THREAD_PAGES = 5  # of 200 messages, read when looking for leftover streams


class MessageJobs:
    def __init__(
        self,
        deps: Deps,
        client: AsyncWebClient,
        flush_interval_s: float = 1.0,
        bot_user_id: str | None = None,
    ) -> None:
        self.deps = deps
        self.client = client
        self.flush_interval_s = flush_interval_s
        self.bot_user_id = bot_user_id or deps.slack.bot_user_id

    async def process(self, job: Job) -> None:
        """Run the job with the token of the workspace it came from."""
        if self.deps.workspaces is None or not self.deps.workspaces.oauth:
            await self._process(job)
            return
        where = Where.of_payload(job.payload.get("workspace", job.team_id), job.payload)
        handle = await self.deps.workspaces.handle(where)
        if handle is None:
            log.info("job %s dropped: the app is no longer installed in %s", job.id, where.scope)
            await self.deps.jobs.finish(job, error="uninstalled")
            return
        own = MessageJobs(self.deps, handle.client, self.flush_interval_s, handle.bot_user_id)
        await own._process(job)

    async def _process(self, job: Job) -> None:
        payload = job.payload
        target = Target(
            payload["channel"], payload["thread_ts"], job.user_id, payload.get("user_team", "")
        )
        if job.status == RUNNING:  # taken over from an instance that died: tidy up first
            await self._close_leftover_streams(job, target)
            if job.progress.get("answered"):
                await self.deps.jobs.finish(job)
                return
        if job.attempts >= MAX_ATTEMPTS:
            if payload.get("is_dm"):
                await self._clear_status(target)
            await self._say(target, f":warning: I could not answer this message (ref {job.id}).")
            await self.deps.jobs.finish(job, error="too many attempts")
            return
        await self.deps.jobs.start(job)
        # The turn's own end (the answer's status, its usage) is written with the job's.
        closing: Closing = []
        try:
            await self._run_and_finish(job, target, closing)
        finally:
            if closing:  # not written with the job's end: its lease was lost, or shutdown
                await self._write_apart(closing)

    async def _run_and_finish(self, job: Job, target: Target, closing: Closing) -> None:
        try:
            await self._run(job, target, closing)
        except LeaseLost:
            raise  # another instance owns the job now: touch nothing
        except CommanderError as exc:
            await self._close_leftover_stream(job, target)
            await self._say(target, f":warning: {exc.user_message}")
            await self.deps.jobs.finish(job, error=type(exc).__name__, also=closing)
            return
        except Exception:
            ref = error_ref()
            log.exception("message job %s failed (ref %s)", job.id, ref)
            await self._close_leftover_stream(job, target)
            await self._say(target, f":warning: Something went wrong on my side (ref `{ref}`).")
            await self.deps.jobs.finish(job, error=f"crash {ref}", also=closing)
            return
        # `answered` in the same write as done: a takeover finds one or the other.
        await self.deps.jobs.finish(job, answered=True, stream_ts=None, also=closing)

    async def _write_apart(self, closing: Closing) -> None:
        try:
            await self.deps.jobs.write_apart(closing)
        except SQLAlchemyError as exc:
            log.warning("could not record the end of a turn (%s)", type(exc).__name__)

    async def _run(self, job: Job, target: Target, closing: Closing) -> None:
        payload = job.payload
        commander = self.deps.commander
        assistant = await commander.get(job.team_id, job.user_id)
        if assistant is None:
            await self._say(target, NO_ASSISTANT_HINT, ephemeral=not payload.get("is_dm"))
            return
        if self.deps.usage is not None:
            # Over a budget: a friendly refusal (BudgetExceeded), and no model call.
            await self.deps.usage.check(job.team_id, job.user_id)
        meter = TurnUsage()
        try:
            await self._answer(job, target, assistant, meter, closing)
        finally:
            if self.deps.usage is not None and meter.counts() != TurnUsage().counts():
                closing.append(
                    self.deps.usage.recording(
                        job.team_id,
                        str(payload.get("workspace") or job.team_id),
                        job.user_id,
                        assistant.model,
                        meter,
                    )
                )

    async def _answer(
        self,
        job: Job,
        target: Target,
        assistant: Any,
        meter: TurnUsage,
        closing: Closing,
    ) -> None:
        payload = job.payload
        text = payload.get("text", "")
        inputs = InputsResult()
        if payload.get("files"):
            inputs = await self.deps.files.fetch_inputs(payload["files"], self.client.token)
            names = await self._add_files(job, target, inputs)
            meter.files_added = len(names)
            if not text and any(one.kind == "image" for one in inputs.inputs):
                text = "(The user sent the attached image(s) without a message.)"
            if not text:
                return
            if names:
                text += f"\n\n(I attached these files for you: {', '.join(names)})"
        if not text.strip():
            await self._say(target, "Your message is empty. Ask me something!")
            return
        # DMs reach the bot without being followed; of them only a DM thread's first turn
        # needs to know it is new (for its title). Saves a database write per DM turn.
        new_thread = (not payload.get("is_dm") or payload.get("in_thread")) and (
            await self.deps.threads.follow(
                payload.get("workspace", job.team_id), target.channel, target.thread_ts
            )
        )
        title = (
            text[:60] if new_thread and payload.get("is_dm") and payload.get("in_thread") else ""
        )
        answer = AnswerKey(
            payload.get("workspace", job.team_id),
            job.team_id,
            job.user_id,
            target.channel,
            target.thread_ts,
        )
        meter.turns = 1
        await self._turn(job, target, text, title, assistant, answer, inputs, meter, closing)

    async def _add_files(self, job: Job, target: Target, inputs: InputsResult) -> list[str]:
        """Add the message's files once: a job resumed after a crash does not add them again.

        Images and PDFs the model cannot take are not added for the tools either; images
        no enabled tool takes only go to the model."""
        if "added_files" in job.progress:
            return list(job.progress["added_files"])
        assistant = await self.deps.commander.require(job.team_id, job.user_id)
        for_tools = [f for f in job.payload["files"] if tool_bound(f, assistant.tools, inputs)]
        added, refusal = AddFilesResult(), ""
        try:
            if for_tools:
                added = await self.deps.files.fetch_all(
                    job.team_id, job.user_id, for_tools, self.client.token
                )
        except CommanderError as exc:  # e.g. too many files: the model still gets its inputs
            refusal = f":warning: {exc.user_message}"
        names = [f.original_name for f in added.added]
        await self.deps.jobs.save_progress(job, added_files=names)
        report = files_report(added, inputs)
        if refusal:
            report = refusal if report == NO_FILES else f"{refusal}\n{report}"
        await self._say(target, report)
        return names

    async def _turn(
        self,
        job: Job,
        target: Target,
        text: str,
        title: str,
        assistant: Any,
        key: AnswerKey,
        inputs: InputsResult,
        meter: TurnUsage,
        closing: Closing,
    ) -> None:
        async def remember_stream(ts: str | None) -> None:
            await self.deps.jobs.save_progress(job, stream_ts=ts)

        answers = self.deps.commander.answers
        reply = SlackReply(
            self.client, target, on_stream=remember_stream, flush_interval_s=self.flush_interval_s
        )
        status = StatusKeeper(self.client, target, enabled=bool(job.payload.get("is_dm")))
        citations: list[tuple[str, str]] = []
        outcome = {"status": ANSWERED, "response_id": None}
        # Recorded with the turn's resume point, in one write.
        answer_id, opening = answers.starting(key, assistant.name, assistant.model)
        feedback = [answer_blocks.feedback_block(answer_id)]

        async def show(event: Any) -> None:
            meter.see(event)
            await self._show(event, reply, status, target, citations)
            if isinstance(event, TurnCompleted):
                outcome["response_id"] = event.response_id
                # Close the stream now, before the thread's bookkeeping in ask().
                await reply.finish(answer_blocks.sources_footer(citations), feedback)
            elif isinstance(event, TurnFailed):
                outcome["status"] = FAILED

        try:
            async with status:
                if title:
                    await status.set_title(title)
                resume = await self._resume_point(job, assistant.last_item_id, [opening])
                # Closed at once even when showing an event fails: the turn then saves
                # where the thread stands and lets the user's next turn start.
                events = self.deps.commander.ask(
                    job.team_id, job.user_id, text, resume=resume, attachments=inputs.items
                )
                watch = StopWatch(answers, answer_id, self.flush_interval_s)
                if await watch.run(events, show):
                    outcome["status"] = STOPPED
                    footer = answer_blocks.STOPPED_NOTE + answer_blocks.sources_footer(citations)
                    await reply.finish(footer, feedback)
                await reply.finish(answer_blocks.sources_footer(citations), feedback)
        finally:
            closing.append(
                answers.finishing(answer_id, str(outcome["status"]), outcome["response_id"])
            )

    async def _resume_point(self, job: Job, cursor: str | None, opening: Closing) -> Resume | None:
        """The thread's position before this job's turn, saved on its first attempt
        (with `opening`, the statements that start the turn's bookkeeping)."""
        if "cursor" in job.progress:
            await self.deps.jobs.write_apart(opening)
            return Resume(job.progress["cursor"])
        await self.deps.jobs.save_progress(job, also=opening, cursor=cursor)
        return None

    async def _show(
        self,
        event: Any,
        reply: SlackReply,
        status: StatusKeeper,
        target: Target,
        citations: list[tuple[str, str]],
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
            citations.append((event.filename, event.url))
        elif isinstance(event, Notice):
            await self._say(target, f":information_source: {event.text}")
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
            await upload_to_thread(
                self.client, target.channel, target.thread_ts, file.filename, file.content
            )
        except SLACK_ERRORS as exc:
            log.warning("uploading %s to Slack failed: %s", file.filename, exc)
            await self._say(target, f":warning: I made {file.filename} but could not upload it.")

    async def _close_leftover_stream(self, job: Job, target: Target) -> None:
        ts = job.progress.get("stream_ts")
        if not ts or job.progress.get("answered"):
            return
        await self._stop_leftover(target, ts)
        await self.deps.jobs.save_progress(job, stream_ts=None)

    # --- recovery after a crash ---------------------------------------------------------

    async def _close_leftover_streams(self, job: Job, target: Target) -> None:
        """Stop every stream the dead process may have left open for this job.

        The job records the stream it has open, but only once chat.startStream has
        answered: a process killed while that call was under way leaves a stream no
        record names. So when the turn had begun (its cursor is saved) and no stream is
        recorded, the bot's messages in the thread after the user's message, from before
        this process started, are stopped too; Slack refuses (harmlessly) the ones that
        are not streaming. (Reading the thread is rate-limited: only then is it read.)"""
        if job.progress.get("answered"):
            return  # everything was shown and stopped before `answered` was recorded
        leftovers = [job.progress["stream_ts"]] if job.progress.get("stream_ts") else []
        if "cursor" in job.progress and not leftovers:
            leftovers = await self._earlier_bot_messages(job, target)
        for ts in leftovers:
            await self._stop_leftover(target, ts)
        await self.deps.jobs.save_progress(job, stream_ts=None)

    async def _earlier_bot_messages(self, job: Job, target: Target) -> list[str]:
        """ts of the bot's messages in the job's thread after the user's message, less the
        streams other running jobs have recorded (other people's live answers there)."""
        since = str(job.payload.get("ts") or target.thread_ts)
        until = _now()
        in_use = await self.deps.jobs.streams_in_use(exclude_job=job.id)
        found: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_THREAD_PAGES):
            try:
                page = await self.client.conversations_replies(
                    channel=target.channel,
                    ts=target.thread_ts,
                    oldest=since,
                    limit=200,
                    cursor=cursor,
                )
            except SLACK_ERRORS as exc:  # e.g. no replies yet, or no history scope
                log.info("could not read thread %s for leftover streams: %s", target.thread_ts, exc)
                break
            for message in page.get("messages") or []:
                ts = str(message.get("ts") or "")
                if (
                    message.get("user") == self.bot_user_id
                    and _ts_key(since) < _ts_key(ts) < until
                    and ts not in in_use
                ):
                    found.append(ts)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found

    async def _stop_leftover(self, target: Target, ts: str) -> None:
        try:
            await self.client.chat_stopStream(
                channel=target.channel, ts=ts, chunks=[MarkdownTextChunk(text=INTERRUPTED_NOTE)]
            )
        except SLACK_ERRORS as exc:
            log.info("leftover message %s was not streaming: %s", ts, exc)
        else:
            log.info("closed stream %s left open by a stopped process", ts)

    async def _clear_status(self, target: Target) -> None:
        """The "is thinking…" a dead process set; its turn will not run again to clear it."""
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=target.channel, thread_ts=target.thread_ts, status=""
            )
        except SLACK_ERRORS as exc:
            log.info("could not clear the status of %s: %s", target.thread_ts, exc)

    async def _say(self, target: Target, text: str, *, ephemeral: bool = False) -> None:
        """Plain text, split in parts Slack accepts (a file report can be long)."""
        for part in split_markdown(text, limit=SAY_MAX_CHARS):
            try:
                if ephemeral:
                    await self.client.chat_postEphemeral(
                        channel=target.channel,
                        user=target.user_id,
                        text=part,
                        thread_ts=target.thread_ts,
                    )
                else:
                    await self.client.chat_postMessage(
                        channel=target.channel, thread_ts=target.thread_ts, text=part
                    )
            except SLACK_ERRORS as exc:
                log.warning("could not post to Slack: %s", exc)
                return

    async def _post_blocks(self, target: Target, text: str, message_blocks: list[dict]) -> None:
        try:
            await self.client.chat_postMessage(
                channel=target.channel, thread_ts=target.thread_ts, text=text, blocks=message_blocks
            )
        except SLACK_ERRORS as exc:
            log.warning("could not post to Slack: %s", exc)


def files_report(result: AddFilesResult, inputs: InputsResult | None = None) -> str:
    lines = []
    if result.added:
        names = ", ".join(f"`{f.original_name}`" for f in result.added)
        lines.append(f":paperclip: Added to your assistant: {names}")
    if inputs and inputs.inputs:
        names = ", ".join(f"`{one.name}`" for one in inputs.inputs)
        lines.append(f":eyes: Shown to the model with your message: {names}")
    for name, reason in result.rejected:
        lines.append(f":no_entry_sign: Not added: `{name}`: {reason}.")
    for name, reason in inputs.refused if inputs else []:
        lines.append(f":no_entry_sign: Not shown to the model: `{name}`: {reason}.")
    return "\n".join(lines) or NO_FILES


def tool_bound(slack_file: dict[str, Any], tools: list[str], inputs: InputsResult) -> bool:
    """Does this file go to the assistant's tools (file search / code interpreter)?"""
    name = safe_filename(str(slack_file.get("name") or slack_file.get("title") or "file"))
    key = str(slack_file.get("id") or name)
    if input_kind(name) is None:
        return True  # as before: the tools take it, or the report says why not
    if key in inputs.refused_keys:
        return False  # not a real image/PDF, or too big: said once, in the model's terms
    return bool(route(name, tools)[0]) or key not in inputs.shown_keys


def _ts_key(ts: str) -> tuple[int, int]:
    """A Slack ts ("1700000000.000123") as integers, for exact comparisons."""
    seconds, _, micros = ts.partition(".")
    try:
        return int(seconds or 0), int((micros + "000000")[:6])
    except ValueError:
        return 0, 0


def _now() -> tuple[int, int]:
    return _ts_key(f"{time.time():.6f}")  # Slack's ts are wall-clock times
