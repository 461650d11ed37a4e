"""Buttons and the create modal, end to end through the bot's HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from commander.errors import AssistantExists, PendingEmailNotFound
from commander.store.models import PendingEmail
from handlers import blocks, ids
from handlers.actions import NOT_YOURS
from tests.conftest import start_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import FORM, new_ts
from tests.fakes.slack_server import FakeSlack
from tests.handlers import action_elements, dm_texts, make_assistant, posts, publishes_for


def modal_values(
    instructions: str | None = "Summarise things.",
    name: str | None = None,
    tools: list[str] | None = None,
    files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    selected = [{"value": tool} for tool in tools or []]
    return {
        ids.NAME_BLOCK: {"value": {"type": "plain_text_input", "value": name}},
        ids.INSTRUCTIONS_BLOCK: {"value": {"type": "plain_text_input", "value": instructions}},
        ids.TOOLS_BLOCK: {"value": {"type": "checkboxes", "selected_options": selected}},
        ids.FILES_BLOCK: {"value": {"type": "file_input", "files": files or []}},
    }


async def submit(bot: Any, values: dict[str, Any], user: str = "U1"):
    return await bot.send.view_submission(user, ids.CREATE_MODAL, values)


async def press_ephemeral(
    bot: Any, user: str, action_id: str, value: str, key: str, channel: str = "C1"
):
    """A button in an ephemeral message (e.g. a slash command's reply): no `message` field."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": bot.send.verification_token,
        "trigger_id": "1.2.3",
        "team": {"id": "T1", "domain": "fake-workspace"},
        "container": {
            "type": "message",
            "message_ts": new_ts(),
            "channel_id": channel,
            "is_ephemeral": True,
        },
        "channel": {"id": channel, "name": "general"},
        "response_url": bot.slack.response_url(key),
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }
    return await bot.send.post(urlencode({"payload": json.dumps(payload)}), FORM)


# --- the create modal ------------------------------------------------------------------


async def test_valid_modal_creates_with_the_chosen_name_and_tools(bot: Any) -> None:
    response = await submit(bot, modal_values("Be terse.", "Terse", ["file_search"]))
    assert response.status_code == 200 and response.text == ""
    await bot.idle()
    assistant = await bot.commander.get("T1", "U1")
    assert assistant is not None
    assert (assistant.name, assistant.instructions, assistant.tools) == (
        "Terse",
        "Be terse.",
        ["file_search"],
    )
    [dm] = dm_texts(bot, "U1")
    assert "*Terse*" in dm and "File search" in dm
    assert publishes_for(bot, "U1")


async def test_modal_with_no_tools_ticked_creates_a_plain_assistant(bot: Any) -> None:
    await submit(bot, modal_values(tools=[]))
    await bot.idle()
    assistant = await bot.commander.get("T1", "U1")
    assert assistant is not None and assistant.tools == []


@pytest.mark.parametrize(
    ("values", "block_id"),
    [
        (modal_values(instructions="   "), ids.INSTRUCTIONS_BLOCK),
        (modal_values(instructions="x" * 3001), ids.INSTRUCTIONS_BLOCK),
        (modal_values(tools=["send_email"]), ids.TOOLS_BLOCK),
    ],
)
async def test_invalid_modal_answers_with_field_errors(
    bot: Any, values: dict[str, Any], block_id: str
) -> None:
    response = await submit(bot, values)
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block_id]
    await bot.idle()
    assert await bot.commander.get("T1", "U1") is None


async def test_modal_when_one_exists_shows_why(bot: Any) -> None:
    await make_assistant(bot)
    body = (await submit(bot, modal_values())).json()
    assert body["response_action"] == "update"
    assert AssistantExists.user_message in str(body["view"])


async def test_modal_files_are_added_and_reported_in_a_dm(bot: Any) -> None:
    notes = bot.slack.add_file("notes.txt", b"Meeting notes: ship it.", "text/plain")
    binary = bot.slack.add_file("tool.exe", b"MZ\x90\x00", "application/octet-stream")
    missing = {"id": "FMISSING", "name": "gone.pdf"}
    files = [{"id": notes["id"], "name": "notes.txt"}, {"id": binary["id"]}, missing]
    await submit(bot, modal_values(tools=["code_interpreter", "file_search"], files=files))
    await bot.idle()

    info_ids = [c.args["file"] for c in bot.slack.calls_to("files.info")]
    assert info_ids == [notes["id"], binary["id"], "FMISSING"]
    status = await bot.commander.status("T1", "U1")
    assert status is not None
    assert [f.original_name for f in status.files] == ["notes.txt"]
    [dm] = dm_texts(bot, "U1")
    assert "Added 1 file(s)" in dm and "notes.txt" in dm
    assert "Could not add 2 file(s)" in dm and "tool.exe" in dm and "gone.pdf" in dm


# --- deleting --------------------------------------------------------------------------


async def test_confirmed_delete_removes_everything_and_replaces_the_prompt(bot: Any) -> None:
    await make_assistant(bot)
    await press_ephemeral(bot, "U1", ids.CONFIRM_DELETE, "U1", "prompt")
    await bot.idle()
    assert await bot.commander.get("T1", "U1") is None
    [reply] = posts(bot, "prompt")
    assert reply["replace_original"] is True
    assert "Deleted your assistant" in reply["text"] and "its conversation" in reply["text"]
    assert "actions" not in [b["type"] for b in reply["blocks"]]
    assert action_elements(publishes_for(bot, "U1")[-1], ids.OPEN_CREATE_MODAL)


async def test_delete_when_nothing_is_left_says_so(bot: Any) -> None:
    await press_ephemeral(bot, "U1", ids.CONFIRM_DELETE, "U1", "prompt")
    await bot.idle()
    [reply] = posts(bot, "prompt")
    assert "nothing to delete" in reply["text"]


async def test_someone_else_cannot_confirm_a_delete(bot: Any) -> None:
    await make_assistant(bot)
    await press_ephemeral(bot, "U2", ids.CONFIRM_DELETE, "U1", "prompt")
    await bot.idle()
    assert await bot.commander.get("T1", "U1") is not None
    [reply] = posts(bot, "prompt")
    assert reply["text"] == NOT_YOURS
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False


async def test_cancel_delete_keeps_the_assistant(bot: Any) -> None:
    await make_assistant(bot)
    await press_ephemeral(bot, "U1", ids.CANCEL_DELETE, "U1", "prompt")
    await bot.idle()
    assert await bot.commander.get("T1", "U1") is not None
    [reply] = posts(bot, "prompt")
    assert reply["replace_original"] is True and "Nothing was deleted" in reply["text"]


async def test_buttons_acknowledge_before_the_work_finishes(bot: Any) -> None:
    await make_assistant(bot)
    bot.openai.faults.add(path="/v1/conversations/*", method="DELETE", delay=1.0)
    started = asyncio.get_running_loop().time()
    response = await press_ephemeral(bot, "U1", ids.CONFIRM_DELETE, "U1", "prompt")
    assert response.status_code == 200
    assert asyncio.get_running_loop().time() - started < 1.0
    await bot.idle()
    assert await bot.commander.get("T1", "U1") is None


# --- email confirmation ----------------------------------------------------------------


class EmailInbox:
    """A local email webhook recording what it is asked to send."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> EmailInbox:
        app = web.Application()
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/send?sig=secret"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"ok": self.status == 200}, status=self.status)


@pytest.fixture
async def inbox() -> AsyncIterator[EmailInbox]:
    box = await EmailInbox().start()
    yield box
    await box.stop()


@pytest.fixture
async def email_bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str, inbox: EmailInbox
) -> AsyncIterator[Any]:
    harness = await start_bot(fake_openai, fake_slack, database_url, EMAIL_URI=inbox.url)
    yield harness
    await harness.stop()


async def draft_email(bot: Any, user: str = "U1") -> tuple[str, str, str]:
    """A pending email and its confirmation message in the user's DM: (id, channel, ts)."""
    await make_assistant(bot, user)
    pending = PendingEmail(
        team_id="T1",
        user_id=user,
        recipients=["ann@example.com", "bob@example.com"],
        subject="Quarterly <numbers>",
        content="Hi both,\nnumbers attached & final.",
    )
    async with bot.commander.db.transaction() as session:
        session.add(pending)
    message = await bot.bot.app.client.chat_postMessage(
        channel=user,
        text="Send this email?",
        blocks=blocks.email_confirmation(
            pending.id, pending.recipients, pending.subject, pending.content, user
        ),
    )
    return pending.id, str(message["channel"]), str(message["ts"])


async def press_email(
    bot: Any, user: str, action_id: str, pending_id: str, where: tuple[str, str], key: str
):
    return await bot.send.block_action(
        user,
        action_id,
        blocks.owned_value("U1", pending_id),
        channel_id=where[0],
        message_ts=where[1],
        response_url=bot.slack.response_url(key),
    )


def shown(bot: Any, channel: str, ts: str) -> Any:
    return next(m for m in bot.slack.messages[channel] if m.ts == ts)


async def test_send_email_sends_once_and_updates_the_message(
    email_bot: Any, inbox: EmailInbox
) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    await press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, (channel, ts), "p1")
    await email_bot.idle()
    assert inbox.received == [
        {
            "to": "ann@example.com,bob@example.com",
            "subject": "Quarterly <numbers>",
            "content": "Hi both,\nnumbers attached & final.",
        }
    ]
    message = shown(email_bot, channel, ts)
    assert message.text.startswith(":white_check_mark: Sent to ann@example.com, bob@example.com")
    assert "actions" not in [b["type"] for b in message.blocks]
    pending = await email_bot.commander.pending_email("T1", "U1", pending_id)
    assert pending.status == "sent"


async def test_double_press_sends_exactly_once(email_bot: Any, inbox: EmailInbox) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    where = (channel, ts)
    await asyncio.gather(
        press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, where, "first"),
        press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, where, "second"),
    )
    await email_bot.idle()
    await press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, where, "third")
    await email_bot.idle()
    assert len(inbox.received) == 1
    notes = posts(email_bot, "first") + posts(email_bot, "second") + posts(email_bot, "third")
    assert [n["text"] for n in notes] == [PendingEmailNotFound.user_message] * 2
    assert all(n["response_type"] == "ephemeral" for n in notes)
    assert shown(email_bot, channel, ts).text.startswith(":white_check_mark: Sent to")


async def test_cancel_email(email_bot: Any, inbox: EmailInbox) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    await press_email(email_bot, "U1", ids.EMAIL_CANCEL, pending_id, (channel, ts), "p1")
    await email_bot.idle()
    await press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, (channel, ts), "p2")
    await email_bot.idle()
    assert inbox.received == []
    assert "Cancelled" in shown(email_bot, channel, ts).text
    [late] = posts(email_bot, "p2")
    assert late["text"] == PendingEmailNotFound.user_message


async def test_someone_else_cannot_send_or_cancel(email_bot: Any, inbox: EmailInbox) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    for action_id, key in ((ids.EMAIL_SEND, "send"), (ids.EMAIL_CANCEL, "cancel")):
        await press_email(email_bot, "U2", action_id, pending_id, (channel, ts), key)
    await email_bot.idle()
    assert inbox.received == []
    assert [p["text"] for p in posts(email_bot, "send") + posts(email_bot, "cancel")] == [
        NOT_YOURS
    ] * 2
    assert (await email_bot.commander.pending_email("T1", "U1", pending_id)).status == "pending"
    assert action_elements(shown(email_bot, channel, ts).blocks, ids.EMAIL_SEND)


async def test_forged_value_naming_the_presser_finds_nothing(
    email_bot: Any, inbox: EmailInbox
) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    await email_bot.send.block_action(
        "U2",
        ids.EMAIL_SEND,
        blocks.owned_value("U2", pending_id),
        channel_id=channel,
        message_ts=ts,
        response_url=email_bot.slack.response_url("forged"),
    )
    await email_bot.idle()
    assert inbox.received == []
    assert [p["text"] for p in posts(email_bot, "forged")] == [PendingEmailNotFound.user_message]


async def test_failed_send_is_reported_on_the_message(email_bot: Any, inbox: EmailInbox) -> None:
    inbox.status = 500
    pending_id, channel, ts = await draft_email(email_bot)
    await press_email(email_bot, "U1", ids.EMAIL_SEND, pending_id, (channel, ts), "p1")
    await email_bot.idle()
    message = shown(email_bot, channel, ts)
    assert message.text.startswith(":x: The email was not sent")
    assert "500" in message.text and "secret" not in message.text
    assert "actions" not in [b["type"] for b in message.blocks]


async def test_email_reply_falls_back_to_the_response_url(email_bot: Any) -> None:
    pending_id, channel, ts = await draft_email(email_bot)
    email_bot.slack.faults.add("chat.update", error="message_not_found")
    await press_email(email_bot, "U1", ids.EMAIL_CANCEL, pending_id, (channel, ts), "p1")
    await email_bot.idle()
    [reply] = posts(email_bot, "p1")
    assert reply["replace_original"] is True and "Cancelled" in reply["text"]
