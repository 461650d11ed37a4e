"""Buttons and the create modal's submission.

Every listener acknowledges at once and spawns the work. Every button checks that the
person pressing it owns what it acts on; anyone else is told so and nothing changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from commander.errors import AssistantExists, CommanderError, InvalidInput, PendingEmailNotFound
from commander.model_choice import REASONING_EFFORTS
from commander.service import AddFilesResult
from handlers import blocks, ids
from handlers.context import Deps
from handlers.home import failure_text, publish_home
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)

Body = dict[str, Any]
NOT_YOURS = "That button belongs to someone else, so it does nothing for you. Nothing changed."
ANY = re.compile(".*")
MAX_ROW_ID = 2**63 - 1  # the database's integer range


@dataclass(frozen=True)
class Origin:
    """Who acted, and where the message or view they acted in lives."""

    team_id: str
    user_id: str
    response_url: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    thread_ts: str | None = None
    ephemeral: bool = False
    in_view: bool = False

    @classmethod
    def of_action(cls, body: Body, default_team: str) -> Origin:
        user = body.get("user") or {}
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(
            team_id=str((body.get("team") or {}).get("id") or user.get("team_id") or default_team),
            user_id=str(user.get("id") or ""),
            response_url=body.get("response_url"),
            channel=(body.get("channel") or {}).get("id") or container.get("channel_id"),
            message_ts=container.get("message_ts") or message.get("ts"),
            thread_ts=container.get("thread_ts") or message.get("thread_ts"),
            ephemeral=bool(container.get("is_ephemeral")),
            in_view=container.get("type") == "view",
        )

    @classmethod
    def of_command(cls, body: Body, default_team: str) -> Origin:
        return cls(
            team_id=str(body.get("team_id") or default_team),
            user_id=str(body.get("user_id") or ""),
            response_url=body.get("response_url"),
            channel=body.get("channel_id"),
            ephemeral=True,
        )


def action_origin(deps: Deps, body: Body) -> Origin:
    origin = Origin.of_action(body, deps.slack.team_id)
    return replace(origin, team_id=deps.scope(body, origin.team_id))


@dataclass
class Reply:
    """Talks back to the person who acted, by the most reliable route available."""

    deps: Deps
    client: AsyncWebClient
    respond: AsyncRespond
    origin: Origin

    async def tell(self, text: str, message_blocks: list[blocks.Block] | None = None) -> None:
        """A note only the actor sees: on their Home tab, or as an ephemeral message."""
        origin = self.origin
        if origin.in_view:
            await publish_home(self.deps, self.client, origin.team_id, origin.user_id, text)
            return
        content = blocks.message(text, message_blocks)
        if await self._respond(response_type="ephemeral", replace_original=False, **content):
            return
        await self._post_private(content)

    async def replace(self, text: str, message_blocks: list[blocks.Block] | None = None) -> None:
        """Replace the message that was acted on (its buttons go with it)."""
        origin = self.origin
        content = blocks.message(text, message_blocks)
        if origin.channel and origin.message_ts and not origin.ephemeral:
            try:
                await self.client.chat_update(
                    channel=origin.channel, ts=origin.message_ts, **content
                )
                return
            except SLACK_ERRORS as exc:
                log.warning("chat.update of the acted-on message failed: %s", exc)
        if not await self._respond(replace_original=True, **content):
            await self._post_private(content)

    async def changed(self, text: str) -> None:
        """Report a change to the actor's assistant and bring their Home tab up to date."""
        if self.origin.in_view:
            await self.refresh_home(text)
            return
        await self.tell(text)
        await self.refresh_home()

    async def refresh_home(self, notice: str | None = None) -> None:
        await publish_home(self.deps, self.client, self.origin.team_id, self.origin.user_id, notice)

    async def _respond(self, **message: Any) -> bool:
        if not self.origin.response_url:
            return False
        try:
            response = await self.respond(**message)
        except Exception as exc:
            log.warning("posting to the response_url failed: %s", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("the response_url answered %s", response.status_code)
        return response.status_code == 200

    async def _post_private(self, content: dict[str, Any]) -> None:
        origin = self.origin
        try:
            if origin.channel:
                await self.client.chat_postEphemeral(
                    channel=origin.channel,
                    user=origin.user_id,
                    thread_ts=origin.thread_ts,
                    **content,
                )
                return
        except SLACK_ERRORS as exc:
            log.info("ephemeral note failed (%s); sending a DM instead", exc)
        await direct_message(self.client, origin.user_id, content["text"], content["blocks"])


async def direct_message(
    client: AsyncWebClient,
    user_id: str,
    text: str,
    message_blocks: list[blocks.Block] | None = None,
) -> None:
    try:
        await client.chat_postMessage(channel=user_id, **blocks.message(text, message_blocks))
    except SLACK_ERRORS as exc:
        log.warning("could not send a DM to %s: %s", user_id, exc)


async def open_create_modal(deps: Deps, client: AsyncWebClient, trigger_id: str) -> None:
    """Open the create form. Call it before the acknowledgement: trigger ids last 3 s."""
    commander = deps.commander
    view = blocks.create_modal(
        commander.available_tools,
        commander.limits.max_instructions_chars,
        commander.settings.model_choices,
    )
    await client.views_open(trigger_id=trigger_id, view=view)


# --- listeners -------------------------------------------------------------------------

ActionListener = Callable[..., Awaitable[None]]
Work = Callable[[Deps, Reply, str], Awaitable[None]]


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_open_create(
        ack: AsyncAck, body: Body, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        reply = Reply(deps, client, respond, action_origin(deps, body))
        try:
            await open_create_modal(deps, client, str(body.get("trigger_id") or ""))
        except SLACK_ERRORS as exc:
            log.warning("views.open for the create modal failed: %s", exc)
            deps.spawn(reply.tell("I could not open the form. Please try again."), "open_modal")
        await ack()

    async def on_create_submitted(ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        if not (body.get("user") or {}).get("id"):
            await ack()  # no person to act for (Slack always names one): nothing to do
            return
        await submit_create_modal(deps, ack, body, client)

    async def on_unknown(ack: AsyncAck, body: Body) -> None:
        """Buttons, forms and shortcuts this version does not know (an old message, a
        changed manifest): acknowledged with a 200 so Slack shows no error, and ignored."""
        log.info("unknown interaction %r ignored", str(body.get("type") or "")[:40])
        await ack()

    app.action(ids.OPEN_CREATE_MODAL)(on_open_create)
    app.view(ids.CREATE_MODAL)(on_create_submitted)
    app.action(ids.CONFIRM_DELETE)(owner_only(deps, delete_assistant, "delete"))
    app.action(ids.CANCEL_DELETE)(owner_only(deps, cancel_delete, "cancel_delete"))
    app.action(ids.RESET_THREAD)(owner_only(deps, reset_thread, "reset_thread"))
    app.action(ids.REMOVE_FILE)(spawned(deps, remove_file, "remove_file"))
    app.action(ids.EMAIL_SEND)(owner_only(deps, send_email, "email_send"))
    app.action(ids.EMAIL_CANCEL)(owner_only(deps, cancel_email, "email_cancel"))
    # Last: Bolt runs only the first listener that matches.
    app.action(ANY)(on_unknown)
    app.view(ANY)(on_unknown)
    app.view({"type": "view_closed", "callback_id": ANY})(on_unknown)
    app.shortcut(ANY)(on_unknown)
    app.options(ANY)(on_unknown)


def spawned(deps: Deps, work: Work, name: str, *, check_owner: bool = False) -> ActionListener:
    """A button listener: ack at once, then run `work(deps, reply, object_id)` spawned.

    With `check_owner`, the button's value is `owner` or `owner:object_id`
    (blocks.owned_value) and only that owner may press it.
    """

    async def listener(
        ack: AsyncAck, body: Body, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        origin = action_origin(deps, body)
        if not origin.user_id:
            log.info("%s ignored: the payload names no user", name)
            return
        reply = Reply(deps, client, respond, origin)
        value = str(((body.get("actions") or [{}])[0]).get("value") or "")
        if check_owner:
            owner, object_id = blocks.parse_owned_value(value)
            if owner != origin.user_id:
                log.info("%s refused: %s pressed a button of %s", name, origin.user_id, owner)
                deps.spawn(reply.tell(NOT_YOURS), f"{name}_refused")
                return
            value = object_id
        deps.spawn(guarded(work(deps, reply, value), reply, name), name)

    return listener


def owner_only(deps: Deps, work: Work, name: str) -> ActionListener:
    return spawned(deps, work, name, check_owner=True)


async def guarded(work: Awaitable[None], reply: Reply, name: str) -> None:
    """Run a button's work; whatever fails, the user hears one plain sentence."""
    try:
        await work
    except Exception as exc:
        await reply.tell(failure_text(exc, name))


# --- deleting --------------------------------------------------------------------------


async def delete_assistant(deps: Deps, reply: Reply, _object_id: str) -> None:
    origin = reply.origin
    report = await deps.commander.delete(origin.team_id, origin.user_id)
    text = blocks.delete_report_text(report)
    if origin.in_view:
        await reply.refresh_home(text)
        return
    await reply.replace(text)
    await reply.refresh_home()


async def cancel_delete(_deps: Deps, reply: Reply, _object_id: str) -> None:
    await reply.replace("Nothing was deleted. Your assistant stays as it is.")


# --- App Home buttons ------------------------------------------------------------------


async def reset_thread(deps: Deps, reply: Reply, _object_id: str) -> None:
    origin = reply.origin
    await deps.commander.reset_thread(origin.team_id, origin.user_id)
    text = "Conversation reset: your assistant starts afresh. Its files and settings stay."
    await reply.changed(text)


async def remove_file(deps: Deps, reply: Reply, file_row_id: str) -> None:
    """Ownership is checked by the service: the file must be the actor's own."""
    origin = reply.origin
    if not (file_row_id.isascii() and file_row_id.isdigit()) or int(file_row_id) > MAX_ROW_ID:
        raise InvalidInput("That file is not one of yours, or it was already removed.")
    stored = await deps.commander.remove_file(origin.team_id, origin.user_id, int(file_row_id))
    text = f"Removed {blocks.fit(stored.original_name, 255)} from your assistant."
    await reply.changed(text)


# --- email confirmation ----------------------------------------------------------------


async def send_email(deps: Deps, reply: Reply, pending_id: str) -> None:
    await settle_email(deps, reply, pending_id, send=True)


async def cancel_email(deps: Deps, reply: Reply, pending_id: str) -> None:
    await settle_email(deps, reply, pending_id, send=False)


async def settle_email(deps: Deps, reply: Reply, pending_id: str, *, send: bool) -> None:
    """Send or cancel a drafted email once; a second press is told it was handled."""
    commander, origin = deps.commander, reply.origin
    settle = commander.confirm_email if send else commander.cancel_email
    try:
        pending = await commander.pending_email(origin.team_id, origin.user_id, pending_id)
    except PendingEmailNotFound as exc:
        await reply.tell(exc.user_message)
        return
    try:
        await settle(origin.team_id, origin.user_id, pending_id)
    except (PendingEmailNotFound, InvalidInput) as exc:
        await reply.tell(exc.user_message)
        return
    except CommanderError as exc:
        summary = f":x: {blocks.fit(exc.user_message, 1000)}"
    else:
        summary = email_summary(pending.recipients, send=send)
    await reply.replace(summary, blocks.email_outcome(summary, pending.recipients, pending.subject))


def email_summary(recipients: list[str], *, send: bool) -> str:
    if send:
        return f":white_check_mark: Sent to {blocks.fit(', '.join(recipients), 1000)}."
    return ":no_entry_sign: Cancelled. The email was not sent."


# --- the create modal ------------------------------------------------------------------


async def submit_create_modal(
    deps: Deps, ack: AsyncAck, body: Body, client: AsyncWebClient
) -> None:
    """Validate in the acknowledgement (errors show in the form), create afterwards."""
    commander = deps.commander
    origin = action_origin(deps, body)
    view = body.get("view") or {}
    form = blocks.read_create_form((view.get("state") or {}).get("values") or {})
    errors = blocks.create_form_errors(
        form,
        commander.available_tools,
        commander.limits.max_instructions_chars,
        commander.settings.model_choices,
    )
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    if await commander.get(origin.team_id, origin.user_id) is not None:
        await ack(response_action="update", view=blocks.notice_modal(AssistantExists.user_message))
        return
    await ack()
    deps.spawn(create_from_form(deps, client, origin, form), "create_modal")


async def create_from_form(
    deps: Deps, client: AsyncWebClient, origin: Origin, form: blocks.CreateForm
) -> None:
    """Create the assistant, add the form's files, and tell the user in a DM."""
    try:
        assistant = await deps.commander.create(
            origin.team_id,
            origin.user_id,
            instructions=form.instructions,
            name=form.name or None,
            tools=form.tools,
            model=form.model or None,
            reasoning_effort=_chosen_effort(deps, form),
        )
    except Exception as exc:
        await direct_message(client, origin.user_id, failure_text(exc, "creating an assistant"))
        return
    lines = [blocks.created_text(assistant)]
    if form.files:
        result = await add_form_files(deps, client, origin, form.files)
        lines.append(blocks.files_result_text(result))
    await direct_message(client, origin.user_id, "\n\n".join(lines))
    await publish_home(deps, client, origin.team_id, origin.user_id)


async def add_form_files(
    deps: Deps, client: AsyncWebClient, origin: Origin, files: list[dict[str, Any]]
) -> AddFilesResult:
    found, missing = await look_up_files(client, files)
    try:
        result = (
            await deps.files.fetch_all(origin.team_id, origin.user_id, found, client.token)
            if found
            else AddFilesResult()
        )
    except Exception as exc:
        reason = failure_text(exc, "adding files from the create form")
        result = AddFilesResult(rejected=[(file_name(f), reason) for f in found])
    result.rejected.extend(missing)
    return result


async def look_up_files(
    client: AsyncWebClient, files: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Full Slack file objects for the form's files (with their download links)."""
    found: list[dict[str, Any]] = []
    missing: list[tuple[str, str]] = []
    for slack_file in files:
        try:
            info = await client.files_info(file=str(slack_file["id"]))
            found.append(dict(info["file"]))
        except SLACK_ERRORS as exc:
            log.warning("files.info for %s failed: %s", slack_file.get("id"), exc)
            missing.append((file_name(slack_file), "Slack would not hand it to the bot"))
    return found, missing


def file_name(slack_file: dict[str, Any]) -> str:
    return str(slack_file.get("name") or slack_file.get("title") or slack_file.get("id") or "file")


def _chosen_effort(deps: Deps, form: blocks.CreateForm) -> str | None:
    """The form's effort when the chosen model takes one (others have no effort)."""
    choices = deps.commander.settings.model_choices
    model = form.model or choices[0].name
    takes = any(c.name == model and c.reasoning for c in choices)
    return form.effort if takes and form.effort in REASONING_EFFORTS else None
