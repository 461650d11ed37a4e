"""App Home: the published view, and the buttons on it, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from commander.service import IncomingFile
from commander.store.models import StoredFile
from handlers import ids
from handlers.actions import NOT_YOURS
from tests.fakes import slack_requests
from tests.handlers import action_elements, make_assistant, publishes_for

HOME = {"id": "VHOME", "type": "home"}


def home_opened(user: str = "U1", tab: str = "home") -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": tab}


async def add_file(bot: Any, name: str = "notes.txt", user: str = "U1") -> StoredFile:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"some notes worth searching"

    result = await bot.commander.add_files("T1", user, [IncomingFile(name, chunks())])
    [stored] = result.added
    return stored


async def press(bot: Any, user: str, action_id: str, value: str) -> None:
    response = await bot.send.block_action(user, action_id, value, view=HOME)
    assert response.status_code == 200
    await bot.idle()


def last_home(bot: Any, user: str = "U1") -> dict[str, Any]:
    views = publishes_for(bot, user)
    assert views, f"no home view was published for {user}"
    return views[-1]


def notice(view: dict[str, Any]) -> str:
    first = view["blocks"][0]
    assert first["type"] == "context"
    return first["elements"][0]["text"]


async def test_home_without_an_assistant_offers_the_modal(bot: Any) -> None:
    await bot.send.event(home_opened())
    await bot.idle()
    view = last_home(bot)
    assert view["type"] == "home"
    assert action_elements(view, ids.OPEN_CREATE_MODAL)
    assert not action_elements(view, ids.CONFIRM_DELETE)


async def test_messages_tab_publishes_nothing(bot: Any) -> None:
    await bot.send.event(home_opened(tab="messages"))
    await bot.idle()
    assert bot.slack.calls_to("views.publish") == []


async def test_home_shows_the_assistant_and_its_files(bot: Any) -> None:
    await make_assistant(bot, name="Scout", instructions="Find <things> & report.")
    stored = await add_file(bot)
    await bot.send.event(home_opened())
    await bot.idle()
    view = last_home(bot)
    text = str(view)
    assert "Scout" in text and "Find &lt;things&gt; &amp; report." in text
    assert "<!date^" in text and bot.commander.settings.model in text
    [remove] = action_elements(view, ids.REMOVE_FILE)
    assert remove["value"] == str(stored.id)
    assert action_elements(view, ids.RESET_THREAD)[0]["value"] == "U1"
    assert action_elements(view, ids.CONFIRM_DELETE)[0]["style"] == "danger"


async def test_create_button_opens_the_modal_with_its_trigger(
    bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_requests, "trigger_id", lambda: "42.42.home")
    await press(bot, "U1", ids.OPEN_CREATE_MODAL, "create")
    [call] = bot.slack.calls_to("views.open")
    assert call.args["trigger_id"] == "42.42.home"
    assert call.args["view"]["callback_id"] == ids.CREATE_MODAL


async def test_reset_starts_a_new_conversation_and_refreshes_home(bot: Any) -> None:
    before = await make_assistant(bot)
    await press(bot, "U1", ids.RESET_THREAD, "U1")
    after = await bot.commander.get("T1", "U1")
    assert after is not None and after.conversation_id != before.conversation_id
    assert "Conversation reset" in notice(last_home(bot))


async def test_someone_else_cannot_reset(bot: Any) -> None:
    before = await make_assistant(bot)
    await press(bot, "U2", ids.RESET_THREAD, "U1")
    after = await bot.commander.get("T1", "U1")
    assert after is not None and after.conversation_id == before.conversation_id
    assert publishes_for(bot, "U1") == []
    assert notice(last_home(bot, "U2")) == NOT_YOURS


async def test_remove_file(bot: Any) -> None:
    await make_assistant(bot)
    stored = await add_file(bot, "plan.md")
    await press(bot, "U1", ids.REMOVE_FILE, str(stored.id))
    status = await bot.commander.status("T1", "U1")
    assert status is not None and status.files == []
    view = last_home(bot)
    assert notice(view) == "Removed plan.md from your assistant."
    assert not action_elements(view, ids.REMOVE_FILE)


@pytest.mark.parametrize("value", ["own-file-of-U1", "not-a-number"])
async def test_someone_else_cannot_remove_a_file(bot: Any, value: str) -> None:
    await make_assistant(bot)
    await make_assistant(bot, "U2")
    stored = await add_file(bot)
    file_value = str(stored.id) if value == "own-file-of-U1" else value
    await press(bot, "U2", ids.REMOVE_FILE, file_value)
    status = await bot.commander.status("T1", "U1")
    assert status is not None and [f.id for f in status.files] == [stored.id]
    assert "not one of yours" in notice(last_home(bot, "U2"))


async def test_delete_from_home(bot: Any) -> None:
    await make_assistant(bot)
    await add_file(bot)
    await press(bot, "U1", ids.CONFIRM_DELETE, "U1")
    assert await bot.commander.get("T1", "U1") is None
    view = last_home(bot)
    assert "Deleted your assistant" in notice(view) and "1 file(s)" in notice(view)
    assert action_elements(view, ids.OPEN_CREATE_MODAL)


async def test_someone_else_cannot_delete_from_a_forged_home_button(bot: Any) -> None:
    await make_assistant(bot)
    await press(bot, "U2", ids.CONFIRM_DELETE, "U1")
    assert await bot.commander.get("T1", "U1") is not None
    assert notice(last_home(bot, "U2")) == NOT_YOURS


async def test_a_failing_publish_is_logged_not_raised(
    bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bot.slack.faults.add("views.publish", error="not_enabled")
    await bot.send.event(home_opened())
    await bot.idle()
    assert "could not publish the home view" in caplog.text
    assert "xoxb" not in caplog.text
