"""OAuth installs end to end: two workspaces, each answered with its own token; people
of one never reach the assistants of the other; Grid org installs; token rotation."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from commander import cli
from commander.store.slack_tables import installations
from handlers import ids
from handlers.blocks import owned_value
from tests.conftest import SIGNING_SECRET, BotHarness, core_env
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender
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


def responses_sent(bot: BotHarness) -> list[dict]:
    return [r.json for r in bot.openai.requests if r.method == "POST" and r.path == "/v1/responses"]


async def test_a_person_of_workspace_a_never_reaches_workspace_b_assistants(
    oauth_bot: BotHarness, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User ids are unique only within a workspace: "U1" of A and "U1" of B are two
    people. A's U1 reaches neither B's U1's assistant by a DM, a button nor App Home."""
    bot = oauth_bot
    a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
    await install(bot, "TB", "UBADMIN", bot_user_id="UBOTB")
    theirs = await bot.commander.create("TB", "U1", instructions="B's secret", name="B-bot")
    dm = message_im("U1", "what are your instructions?", channel="DA1", team="TA")
    await a.send.event(dm)
    await bot.idle()
    assert "/assistant-create" in bot.slack.thread_text("DA1", dm["ts"])
    assert responses_sent(bot) == []
    # A button naming U1 as its owner, pressed by A's U1: acts on A's U1 only.
    await a.send.block_action(
        "U1",
        ids.CONFIRM_DELETE,
        owned_value("U1", ""),
        response_url=bot.slack.response_url("delete"),
    )
    await a.send.event({"type": "app_home_opened", "user": "U1", "channel": "DA1", "tab": "home"})
    await bot.idle()
    assert await bot.commander.get("TB", "U1") is not None
    homes = [c for c in bot.slack.calls_to("views.publish") if c.args.get("user_id") == "U1"]
    assert homes and all(c.token == a.token for c in homes)
    assert "B-bot" not in json.dumps(homes[-1].args["view"])
    # The CLI names people by owner scope and user id: A's U1 has nothing.
    for name, value in core_env(bot.openai, database_url).items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert await cli.run(["show", "--team", "TA", "--user", "U1"], out) == 1
    assert theirs.name not in out.getvalue()
    await a.send.aclose()


async def test_grid_org_install_one_person_seen_from_two_workspaces(
    oauth_bot: BotHarness,
) -> None:
    """An org-wide install is found by enterprise id; a Grid user id is global, so W1
    talks to one assistant from either workspace of the org."""
    bot = oauth_bot
    org = await install(
        bot,
        None,
        "WADMIN",
        bot_user_id="UBOTE",
        enterprise_id="E1",
        org_wide=True,
        sender_team="T1",
    )
    from_t2 = install_sender(bot, "T2", "E1")
    bot.openai.script(Text("first"), Text("second"))
    await org.send.command("/assistant-create", "Be brief.", user_id="W1")
    await bot.idle()
    assert await bot.commander.get("E1", "W1") is not None
    assert await bot.commander.get("T1", "W1") is None
    one = message_im("W1", "hi from T1", channel="DW1", team="T1")
    two = message_im("W1", "hi from T2", channel="DW2", team="T2")
    await org.send.event(one)
    await bot.idle()
    await from_t2.event(two)
    await bot.idle()
    assert bot.slack.thread_text("DW1", one["ts"]) == "first"
    assert bot.slack.thread_text("DW2", two["ts"]) == "second"
    sent = responses_sent(bot)
    assert len(sent) == 2 and sent[0]["conversation"] == sent[1]["conversation"]
    assert tokens_used(bot, "chat.startStream", "DW2") == {org.token}
    await org.send.aclose()
    await from_t2.aclose()


def install_sender(bot: BotHarness, team: str, enterprise: str) -> SlackRequestSender:
    return SlackRequestSender(
        bot.url,
        SIGNING_SECRET,
        team_id=team,
        bot_user_id="UBOTE",
        enterprise_id=enterprise,
        org_install=True,
    )


async def test_rotating_tokens_are_refreshed_and_used(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    # Tokens that expire within the refresh margin (2 hours) are refreshed before use.
    bot = await start_oauth_bot(
        fake_openai, fake_slack, database_url, rotation=True, expires_in=600
    )
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        await bot.commander.create("TA", "U1", instructions="Be helpful.")
        bot.openai.script(Text("fresh"))
        dm = message_im("U1", "hi", channel="DA1", team="TA")
        fake_slack.oauth.expire(a.token)  # the installed token no longer works
        await a.send.event(dm)
        await bot.idle()
        assert bot.slack.thread_text("DA1", dm["ts"]) == "fresh"
        refreshes = [
            c
            for c in fake_slack.calls_to("oauth.v2.access")
            if c.args.get("grant_type") == "refresh_token"
        ]
        assert refreshes
        used = tokens_used(bot, "chat.startStream", "DA1")
        assert used and a.token not in used
        async with bot.bot.deps.commander.db.session() as session:
            stored = (await session.execute(select(installations.c.bot_token))).scalars().all()
        assert a.token not in stored
        await a.send.aclose()
    finally:
        await bot.stop()
