"""OAuth installs end to end: two workspaces, each answered with its own token; people
of one never reach the assistants of the other; Grid org installs; token rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from commander.store.slack_tables import installations
from tests.conftest import BotHarness
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.tenancy.harness import install, start_oauth_bot


@pytest.fixture
async def oauth_bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> AsyncIterator[BotHarness]:
    harness = await start_oauth_bot(fake_openai, fake_slack, database_url)
    yield harness
    await harness.stop()


def tokens_used(bot: BotHarness, method: str, channel: str) -> set[str | None]:
    return {c.token for c in bot.slack.calls_to(method) if c.args.get("channel") == channel}


async def test_two_workspaces_each_answered_with_its_own_token(oauth_bot: BotHarness) -> None:
    bot = oauth_bot
    a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
    b = await install(bot, "TB", "UBADMIN", bot_user_id="UBOTB")
    assert a.token != b.token
    async with bot.bot.deps.commander.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(installations)) == 2
    await bot.commander.create("TA", "U1", instructions="Be helpful.")
    await bot.commander.create("TB", "U2", instructions="Be helpful.")
    bot.openai.script(Text("answer for A"), Text("answer for B"))
    first = message_im("U1", "hello from A", channel="DA1", team="TA")
    second = message_im("U2", "hello from B", channel="DB1", team="TB")
    assert (await a.send.event(first)).status_code == 200
    await bot.idle()
    assert (await b.send.event(second)).status_code == 200
    await bot.idle()
    assert bot.slack.thread_text("DA1", first["ts"]) == "answer for A"
    assert bot.slack.thread_text("DB1", second["ts"]) == "answer for B"
    assert tokens_used(bot, "chat.startStream", "DA1") == {a.token}
    assert tokens_used(bot, "chat.startStream", "DB1") == {b.token}
    # Bolt checked each request's token with auth.test, each against its own workspace.
    assert {c.token for c in bot.slack.calls_to("auth.test")} >= {a.token, b.token}
    await a.send.aclose()
    await b.send.aclose()


async def test_events_of_a_workspace_that_never_installed_are_not_answered(
    oauth_bot: BotHarness,
) -> None:
    bot = oauth_bot
    await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
    await bot.commander.create("TX", "U1", instructions="Be helpful.")
    stranger = message_im("U1", "hello", channel="DX1", team="TX")
    bot.send.team_id = "TX"
    response = await bot.send.event(stranger)
    await bot.idle()
    assert response.status_code == 200
    assert bot.slack.thread_text("DX1", stranger["ts"]) == ""
    assert [r for r in bot.openai.requests if r.path == "/v1/responses"] == []
