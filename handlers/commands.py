"""Slash commands: /assistant-create and /assistant-delete.

Each is acknowledged at once; slow work is spawned and answers privately through the
command's response_url.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from commander.errors import AssistantExists
from handlers import blocks
from handlers.actions import Origin, Reply, open_create_modal
from handlers.context import Deps
from handlers.home import failure_text
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)

CREATE_COMMAND = "/assistant-create"
DELETE_COMMAND = "/assistant-delete"
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
CREATING = ":hourglass_flowing_sand: Creating your assistant…"
NO_FORM = "I could not open the form. Try `/assistant-create <instructions>` instead."
NOTHING_TO_DELETE = "You have no assistant, so there is nothing to delete."
UNKNOWN_COMMAND = "That is not one of my commands. Try `/assistant-create help`."


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_create(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        if not body.get("user_id"):
            await ack()  # no person to act for (Slack always names one): nothing to do
            return
        await create_command(deps, ack, body, Reply(deps, client, respond, origin(body)))

    async def on_delete(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        if body.get("user_id"):
            deps.spawn(offer_delete(deps, Reply(deps, client, respond, origin(body))), "delete_cmd")

    async def on_unknown(ack: AsyncAck, body: dict[str, Any]) -> None:
        """A command the manifest does not (or no longer) declare: a 200 with a hint, so
        Slack shows no "dispatch_failed" and does not count a failure."""
        log.info("unknown slash command %r ignored", str(body.get("command") or "")[:40])
        await ack(response_type="ephemeral", text=UNKNOWN_COMMAND)

    def origin(body: dict[str, Any]) -> Origin:
        found = Origin.of_command(body, deps.slack.team_id)
        return replace(found, team_id=deps.scope(body, found.team_id))

    app.command(CREATE_COMMAND)(on_create)
    app.command(DELETE_COMMAND)(on_delete)
    app.command(re.compile(".*"))(on_unknown)  # last: Bolt runs only the first match


async def create_command(deps: Deps, ack: AsyncAck, body: dict[str, Any], reply: Reply) -> None:
    text = blocks.unescape(str(body.get("text") or "")).strip()
    if text.lower() in HELP_WORDS:
        await ack(response_type="ephemeral", text=help_text(deps))
    elif text:
        await ack(response_type="ephemeral", text=CREATING)
        deps.spawn(create_now(deps, reply, text), "create_cmd")
    else:
        note = await open_form(deps, reply, body)
        await (ack(response_type="ephemeral", text=note) if note else ack())


async def open_form(deps: Deps, reply: Reply, body: dict[str, Any]) -> str:
    """Open the create modal within the command's 3 s; returns the ack text ('' if none)."""
    origin = reply.origin
    if await deps.commander.get(origin.team_id, origin.user_id) is not None:
        return AssistantExists.user_message
    try:
        await open_create_modal(deps, reply.client, str(body.get("trigger_id") or ""))
    except SLACK_ERRORS as exc:
        log.warning("views.open for the create modal failed: %s", exc)
        return NO_FORM
    return ""


async def create_now(deps: Deps, reply: Reply, instructions: str) -> None:
    origin = reply.origin
    try:
        assistant = await deps.commander.create(
            origin.team_id, origin.user_id, instructions=instructions
        )
    except Exception as exc:
        await reply.tell(failure_text(exc, "creating an assistant"))
        return
    await reply.changed(blocks.created_text(assistant))


async def offer_delete(deps: Deps, reply: Reply) -> None:
    origin = reply.origin
    try:
        status = await deps.commander.status(origin.team_id, origin.user_id)
    except Exception as exc:
        await reply.tell(failure_text(exc, "looking up an assistant to delete"))
        return
    if status is None:
        await reply.tell(NOTHING_TO_DELETE)
        return
    await reply.tell("Delete your assistant?", blocks.delete_confirmation(origin.user_id, status))


def help_text(deps: Deps) -> str:
    return blocks.help_text(deps.commander.available_tools)
