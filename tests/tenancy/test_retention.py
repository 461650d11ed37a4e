"""RETENTION_DAYS: an unused assistant's conversation, files and vector store are deleted
at the provider after one DM notice; its settings stay and it starts afresh."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from commander.retention import utcnow
from commander.store.models import StoredFile
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.tenancy.harness import install, start_oauth_bot


async def test_a_retention_run_warns_once_then_clears_and_keeps_settings(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    bot = await start_oauth_bot(fake_openai, fake_slack, database_url, RETENTION_DAYS="30")
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        await bot.commander.create(
            "TA", "U1", instructions="Speak French.", name="Pierre", tools=["file_search"]
        )
        shared = bot.slack.add_file("notes.txt", b"old notes", "text/plain", user="U1")
        bot.openai.script(Text("noted"), Text("fresh start"))
        await a.send.event(message_im("U1", "keep this", channel="DA1", files=[shared], team="TA"))
        await bot.idle()
        before = await bot.commander.get("TA", "U1")
        assert before and before.conversation_id and before.vector_store_id
        retention = bot.bot.retention
        assert retention is not None
        notify = bot.bot.tenancy_notify
        assert notify is not None

        def dms() -> list[str]:
            return [m.text for m in fake_slack.messages.get("DU1", [])]

        retention.clock = lambda: utcnow() + timedelta(days=26)
        assert (await retention.run(notify)).warned == 0
        retention.clock = lambda: utcnow() + timedelta(days=28)
        assert (await retention.run(notify)).warned == 1
        assert (await retention.run(notify)).warned == 0  # told once
        (notice,) = dms()
        assert "Pierre" in notice and "will be deleted" in notice
        told = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "U1"]
        assert told and told[0].token == a.token
        retention.clock = lambda: utcnow() + timedelta(days=30, hours=12)
        assert (await retention.run(notify)).cleared == 0  # not before notice + 3 days
        retention.clock = lambda: utcnow() + timedelta(days=31, minutes=1)
        assert (await retention.run(notify)).cleared == 1
        after = await bot.commander.get("TA", "U1")
        assert after is not None
        assert (after.name, after.instructions, after.tools) == (
            "Pierre",
            "Speak French.",
            ["file_search"],
        )
        assert after.vector_store_id is None and after.conversation_id != before.conversation_id
        state = fake_openai.state
        assert before.conversation_id not in state.conversations
        assert before.vector_store_id not in state.vector_stores and state.files == {}
        async with bot.commander.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(StoredFile)) == 0
        retention.clock = lambda: utcnow() + timedelta(days=60)
        report = await retention.run(notify)
        assert (report.warned, report.cleared) == (0, 0) and len(dms()) == 1
        # It answers on its new, empty thread.
        await a.send.event(message_im("U1", "hello again", channel="DA1", team="TA"))
        await bot.idle()
        assert fake_slack.bot_messages("DA1")[-1].text == "fresh start"
        await a.send.aclose()
    finally:
        await bot.stop()
