"""Message listeners: DMs, @mentions, thread follow-ups and the assistant pane.

Every accepted message is stored as a job before Slack gets its acknowledgement (the
app runs with process_before_response), keyed by channel and ts: Slack's retries, and
the app_mention + message pair one mention produces, all collapse into one job.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from commander.feedback import AnswerKey
from handlers.context import Deps
from handlers.replies import SLACK_ERRORS
from handlers.stop import is_stop, request_stop
from handlers.text import clean_user_text

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
ACCEPTED_SUBTYPES = {None, "file_share", "thread_broadcast"}
FILE_FIELDS = (
    "id",
    "name",
    "title",
    "mimetype",
    "filetype",
    "size",
    "mode",
    "is_external",
    "file_access",
    "url_private",
    "url_private_download",
)
SUGGESTED_PROMPTS = [
    {"title": "What can you do?", "message": "What can you do, and which tools do you have?"},
    {"title": "Chart a stock", "message": "Chart MSFT's closing price over the last 6 months."},
    {"title": "Search my files", "message": "Summarise the files I have shared with you."},
]


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_message(
        event: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await accept_message(
            deps, event, body, mentioned=False, client=client, bot_user_id=context.bot_user_id
        )

    async def on_mention(
        event: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await accept_message(
            deps, event, body, mentioned=True, client=client, bot_user_id=context.bot_user_id
        )

    async def on_thread_started(event: dict[str, Any], client: AsyncWebClient) -> None:
        thread = event.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            deps.spawn(suggest_prompts(client, thread), "assistant_thread_started")

    async def ignore() -> None:
        return None

    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
    app.event("assistant_thread_started")(on_thread_started)
    app.event("assistant_thread_context_changed")(ignore)


async def accept_message(
    deps: Deps,
    event: dict[str, Any],
    body: dict[str, Any],
    *,
    mentioned: bool,
    client: AsyncWebClient | None = None,
    bot_user_id: str | None = None,
) -> None:
    # With OAuth installs each workspace has its own bot user (Bolt's authorize finds it).
    bot_user_id = bot_user_id or deps.slack.bot_user_id
    user = event.get("user")
    if not _from_a_person(event, bot_user_id) or not user:
        return
    channel, ts = event.get("channel"), event.get("ts")
    if not channel or not ts:
        return
    is_dm = event.get("channel_type") == "im" or str(channel).startswith("D")
    # The author's own workspace keys their assistant (shared channels carry people of
    # other workspaces); the channel's workspace keys the channel and its threads.
    workspace = str(body.get("team_id") or deps.slack.team_id)
    team_id = deps.scope(body, str(event.get("user_team") or event.get("team") or workspace))
    thread_ts = event.get("thread_ts")
    if not is_dm and not mentioned:
        if not thread_ts or not await deps.threads.follows(workspace, channel, thread_ts):
            return
    text = valid_unicode(clean_user_text(event.get("text") or "", bot_user_id))
    if is_stop(text) and not event.get("files"):
        key = AnswerKey(workspace, team_id, user, channel, thread_ts or ts)
        if await request_stop(deps.commander.answers, client, key, bool(thread_ts) or not is_dm):
            return
    payload = {
        "channel": channel,
        "ts": ts,
        "thread_ts": thread_ts or ts,
        "in_thread": bool(thread_ts),
        "is_dm": is_dm,
        "user_team": team_id,
        "workspace": workspace,
        **deps.where(body).to_payload(),
        "text": text,
        "files": [{k: f.get(k) for k in FILE_FIELDS} for f in event.get("files") or []],
    }
    try:
        job = await deps.jobs.enqueue(
            f"msg:{workspace}:{channel}:{ts}", team_id, user, "message", payload
        )
    except SQLAlchemyError as exc:
        # Not acknowledging is what keeps the message: Slack delivers it again later.
        log.error(
            "could not store a message from %s/%s (%s); answering 500 so Slack retries",
            team_id,
            user,
            type(exc).__name__,
        )
        raise MessageNotStored() from None
    if job is None:
        log.info("duplicate delivery of %s/%s ignored", channel, ts)
        return
    deps.wake(team_id, user)


class MessageNotStored(Exception):
    """The database refused the job; the request must fail so Slack redelivers it."""


def valid_unicode(text: str) -> str:
    """Text that can be encoded as UTF-8: a lone surrogate (a "\\ud800" in the JSON) would
    make every later encoding of the prompt fail, so each becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _from_a_person(event: dict[str, Any], bot_user_id: str) -> bool:
    if event.get("subtype") not in ACCEPTED_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile") or event.get("user") == bot_user_id:
        return False
    return True


async def suggest_prompts(client: AsyncWebClient, thread: dict[str, Any]) -> None:
    try:
        await client.assistant_threads_setSuggestedPrompts(
            channel_id=thread["channel_id"],
            thread_ts=thread["thread_ts"],
            title="Try asking:",
            prompts=SUGGESTED_PROMPTS,
        )
    except SLACK_ERRORS as exc:
        log.warning("could not set suggested prompts: %s", exc)
