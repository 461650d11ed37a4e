"""Slash commands end to end: signed requests in, fake Slack and OpenAI behind the bot."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from commander.errors import AssistantExists
from commander.service import DEFAULT_NAME
from handlers import ids
from tests.handlers import action_elements, make_assistant, posts, publishes_for

CREATE = "/assistant-create"
DELETE = "/assistant-delete"


async def command(bot: Any, name: str, text: str = "", user: str = "U1", key: str = "cmd"):
    return await bot.send.command(name, text, user, "C1", response_url=bot.slack.response_url(key))


async def test_create_with_text_acks_at_once_and_reports_privately(bot: Any) -> None:
    bot.openai.faults.add(path="/v1/conversations", method="POST", delay=1.0)
    started = time.monotonic()
    response = await command(bot, CREATE, "Answer like a pirate.")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200
    assert "Creating your assistant" in response.json()["text"]
    assert response.json()["response_type"] == "ephemeral"

    await bot.idle()
    [reply] = posts(bot, "cmd")
    assert reply["response_type"] == "ephemeral"
    assert f"*{DEFAULT_NAME}*" in reply["text"]
    assert "Code interpreter, File search" in reply["text"]
    assert "direct message" in reply["text"] and "assistant pane" in reply["text"]
    assistant = await bot.commander.get("T1", "U1")
    assert assistant is not None
    assert assistant.instructions == "Answer like a pirate."
    assert assistant.tools == bot.commander.default_tools
    assert publishes_for(bot, "U1"), "the Home tab is refreshed"


async def test_create_keeps_the_characters_slack_escapes(bot: Any) -> None:
    await command(bot, CREATE, "Wrap code in &lt;code&gt; tags &amp; be brief")
    await bot.idle()
    assistant = await bot.commander.get("T1", "U1")
    assert assistant is not None
    assert assistant.instructions == "Wrap code in <code> tags & be brief"


async def test_second_create_says_one_exists(bot: Any) -> None:
    await command(bot, CREATE, "First", key="first")
    await bot.idle()
    await command(bot, CREATE, "Second", key="second")
    await bot.idle()
    [reply] = posts(bot, "second")
    assert reply["text"] == AssistantExists.user_message
    assistant = await bot.commander.get("T1", "U1")
    assert assistant is not None and assistant.instructions == "First"


async def test_help_answers_in_the_acknowledgement(bot: Any) -> None:
    response = await command(bot, CREATE, "help")
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "/assistant-create <instructions>" in body["text"]
    await bot.idle()
    assert posts(bot, "cmd") == []
    assert await bot.commander.get("T1", "U1") is None


async def test_create_without_text_opens_the_modal_with_the_trigger(bot: Any) -> None:
    response = await bot.send.command(
        CREATE, "", "U1", "C1", response_url=bot.slack.response_url("cmd"), trigger="13.37.abc"
    )
    assert response.status_code == 200 and response.text == ""
    [call] = bot.slack.calls_to("views.open")
    assert call.args["trigger_id"] == "13.37.abc"
    view = call.args["view"]
    assert view["callback_id"] == ids.CREATE_MODAL
    block_ids = [b["block_id"] for b in view["blocks"]]
    # One allowed model (so no model picker); it reasons, so an effort picker.
    assert block_ids == [
        ids.NAME_BLOCK,
        ids.INSTRUCTIONS_BLOCK,
        ids.TOOLS_BLOCK,
        ids.EFFORT_BLOCK,
        ids.FILES_BLOCK,
    ]


async def test_create_without_text_when_one_exists_says_so(bot: Any) -> None:
    await make_assistant(bot)
    response = await command(bot, CREATE, "   ")
    assert response.json()["text"] == AssistantExists.user_message
    assert bot.slack.calls_to("views.open") == []


async def test_modal_that_cannot_open_is_explained(bot: Any) -> None:
    bot.slack.faults.add("views.open", error="expired_trigger_id")
    response = await command(bot, CREATE)
    assert "could not open the form" in response.json()["text"]


async def test_provider_failure_is_one_plain_sentence(bot: Any) -> None:
    bot.openai.faults.add(path="/v1/conversations", method="POST", status=401, times=5)
    await command(bot, CREATE, "Hi")
    await bot.idle()
    [reply] = posts(bot, "cmd")
    assert "credentials" in reply["text"]
    assert "Traceback" not in reply["text"]
    assert await bot.commander.get("T1", "U1") is None


async def test_unexpected_failure_gives_a_reference_and_logs_it(
    bot: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("internal detail xoxb-secret")

    monkeypatch.setattr(bot.commander, "create", broken)
    with caplog.at_level(logging.ERROR):
        await command(bot, CREATE, "Hi")
        await bot.idle()
    [reply] = posts(bot, "cmd")
    assert "reference" in reply["text"]
    assert "xoxb" not in reply["text"] and "RuntimeError" not in reply["text"]
    ref = reply["text"].rsplit("reference ", 1)[1].rstrip(").")
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)


async def test_delete_without_an_assistant(bot: Any) -> None:
    response = await command(bot, DELETE)
    assert response.status_code == 200
    await bot.idle()
    [reply] = posts(bot, "cmd")
    assert "nothing to delete" in reply["text"]


async def test_delete_offers_a_confirmation(bot: Any) -> None:
    await make_assistant(bot, name="Pirate")
    await command(bot, DELETE)
    await bot.idle()
    [reply] = posts(bot, "cmd")
    assert reply["response_type"] == "ephemeral"
    assert "*Pirate*" in reply["blocks"][0]["text"]["text"]
    [delete] = action_elements(reply["blocks"], ids.CONFIRM_DELETE)
    assert delete["value"] == "U1" and delete["style"] == "danger" and delete["confirm"]
    [cancel] = action_elements(reply["blocks"], ids.CANCEL_DELETE)
    assert cancel["value"] == "U1"
    assert await bot.commander.get("T1", "U1") is not None
