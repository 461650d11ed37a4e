"""Usage metering and budgets, end to end: totals equal the fake provider's usage blocks
exactly; budgets hold across two bot instances sharing one database."""

from __future__ import annotations

from typing import Any

from commander.store.models import Assistant
from commander.usage import UsageBook
from tests.conftest import BotHarness
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import FileSearch, FunctionCall, Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.tenancy.harness import Installed, install, start_oauth_bot


def usage_blocks(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body["usage"] for r in fake.state.responses.values() if r.body.get("usage")]


def model_calls(fake: FakeOpenAI) -> int:
    return len([r for r in fake.requests if r.method == "POST" and r.path == "/v1/responses"])


async def dm(bot: BotHarness, ws: Installed, user: str, text: str, channel: str) -> str:
    event = message_im(user, text, channel=channel, team=ws.send.team_id)
    assert (await ws.send.event(event)).status_code == 200
    await bot.idle()
    return bot.slack.thread_text(channel, event["ts"])


async def test_usage_totals_match_the_providers_usage_blocks_exactly(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    bot = await start_oauth_bot(fake_openai, fake_slack, database_url)
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        await bot.commander.create("TA", "U1", instructions="Be helpful.", tools=["file_search"])
        shared = bot.slack.add_file("notes.txt", b"the notes", "text/plain", user="U1")
        bot.openai.script(
            FileSearch("They say hi.", filename="notes.txt"),
            FunctionCall("get_stock_price", {"symbol": "MSFT"}),
            Text("MSFT is fine."),
            Text("And a third answer."),
        )
        event = message_im("U1", "summarise", channel="DA1", files=[shared], team="TA")
        await a.send.event(event)
        await bot.idle()
        await dm(bot, a, "U1", "price of MSFT?", "DA1")
        await dm(bot, a, "U1", "and now?", "DA1")
        blocks = usage_blocks(fake_openai)
        assert len(blocks) == 4  # the function call took two rounds
        book = bot.bot.deps.usage
        assert book is not None
        month = await book.person_month("TA", "U1")
        assert month.input_tokens == sum(b["input_tokens"] for b in blocks)
        assert month.output_tokens == sum(b["output_tokens"] for b in blocks)
        assert month.cached_tokens == sum(
            b["input_tokens_details"]["cached_tokens"] for b in blocks
        )
        assert month.reasoning_tokens == sum(
            b["output_tokens_details"]["reasoning_tokens"] for b in blocks
        )
        assert month.cached_tokens > 0 and month.reasoning_tokens > 0
        assert month.turns == 3 and month.files_added == 1
        assert month.file_search_calls == 1 and month.function_calls == 1
        assert (await book.scope_month("TA")).tokens == month.tokens
        await a.send.aclose()
    finally:
        await bot.stop()


async def test_budgets_hold_across_two_instances(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    """Two bots on one database (on PostgreSQL in the [postgresql] run): what one
    instance counted, the other refuses on. Refusals make no model call."""
    first = await start_oauth_bot(
        fake_openai, fake_slack, database_url, TOKENS_PER_DAY="1", WORKSPACE_TOKENS_PER_MONTH="1"
    )
    second = await start_oauth_bot(
        fake_openai,
        fake_slack,
        database_url,
        redirect_here=False,
        TOKENS_PER_DAY="1",
        WORKSPACE_TOKENS_PER_MONTH="1",
    )
    try:
        a1 = await install(first, "TA", "UADMIN", bot_user_id="UBOTA")
        b1 = await install(first, "TB", "UBADMIN", bot_user_id="UBOTB")
        a2 = Installed(
            a1.token,
            second.send.__class__(
                second.url, "test-signing-secret", team_id="TA", bot_user_id="UBOTA"
            ),
        )
        for team, user in (("TA", "U1"), ("TA", "U2"), ("TB", "U3")):
            await first.commander.create(team, user, instructions="Be helpful.")
        fake_openai.script(Text("first answer"), Text("other workspace"))
        assert await dm(first, a1, "U1", "hello", "DA1") == "first answer"
        calls = model_calls(fake_openai)
        # The person's daily budget, checked by the other instance.
        refused = await dm(second, a2, "U1", "again", "DA1")
        assert "today's allowance of 1 tokens" in refused and "midnight UTC" in refused
        # The workspace's monthly budget, for another person of the same workspace.
        refused = await dm(second, a2, "U2", "me too", "DA2")
        assert "workspace has used this month's allowance" in refused and "resets on" in refused
        assert model_calls(fake_openai) == calls
        # Another workspace has its own budget.
        assert await dm(first, b1, "U3", "hi", "DB1") == "other workspace"
        # Nothing the refused people had is lost.
        async with first.commander.db.session() as session:
            assert await session.get(Assistant, 1) is not None
        book = UsageBook(first.commander.db, first.bot.settings.tenancy)
        assert (await book.person_today("TA", "U2")).tokens == 0
        for ws in (a1, b1, a2):
            await ws.send.aclose()
    finally:
        await first.stop()
        await second.stop()
