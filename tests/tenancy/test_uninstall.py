"""Uninstalls: queued work stops, installations go, and the workspace's data goes at
the provider and here, at once or after the grace period; a reinstall within it keeps
the data. Another workspace is never touched."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from commander import cli
from commander.store.models import Assistant, FollowedThread, Job, StoredFile
from commander.store.slack_tables import installations
from commander.store.tenancy_models import Departure
from commander.tenancy import utcnow
from tests.conftest import BotHarness, core_env
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.tenancy.harness import Installed, install, start_oauth_bot, until

# The job queued by hand below stays queued until the uninstall: no instance sweeps for
# unclaimed work during the test (jobs are only woken by their own deliveries).
QUIET_QUEUE = {"JOB_POLL_SECONDS": "600"}


async def rows(bot: BotHarness, table: type, team: str) -> int:
    async with bot.commander.db.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(table).where(table.team_id == team)  # type: ignore[attr-defined]
        )
    return int(found or 0)


async def installs_of(bot: BotHarness, team: str) -> int:
    async with bot.commander.db.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(installations).where(installations.c.team_id == team)
        )
    return int(found or 0)


async def departure(bot: BotHarness, scope: str) -> Departure | None:
    async with bot.commander.db.session() as session:
        return await session.get(Departure, scope)


async def settle_in(bot: BotHarness, ws: Installed, team: str, user: str, channel: str) -> str:
    """An assistant with a conversation, a file and a vector store, and a queued job."""
    await bot.commander.create(team, user, instructions="Be helpful.", tools=["file_search"])
    shared = bot.slack.add_file("notes.txt", b"private notes", "text/plain", user=user)
    bot.openai.script(Text("noted"))
    dm = message_im(user, "read this", channel=channel, files=[shared], team=team)
    await ws.send.event(dm)
    await bot.idle()
    assert bot.slack.thread_text(channel, dm["ts"]).endswith("noted")
    downloads = [c for c in bot.slack.calls if c.method == "download"]
    assert downloads and downloads[-1].token == ws.token  # the file came with its own token
    await bot.bot.deps.jobs.enqueue(f"queued:{team}", team, user, "message", {"text": "later"})
    assistant = await bot.commander.get(team, user)
    assert assistant and assistant.conversation_id and assistant.vector_store_id
    return assistant.conversation_id


async def uninstall(ws: Installed, team: str) -> None:
    response = await ws.send.event({"type": "app_uninstalled"}, team_id=team)
    assert response.status_code == 200


async def test_uninstall_without_grace_deletes_everything_at_once(
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = await start_oauth_bot(fake_openai, fake_slack, database_url, **QUIET_QUEUE)
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        b = await install(bot, "TB", "UBADMIN", bot_user_id="UBOTB")
        conversation_a = await settle_in(bot, a, "TA", "U1", "DA1")
        conversation_b = await settle_in(bot, b, "TB", "U1", "DB1")
        state = fake_openai.state
        assert len(state.vector_stores) == 2 and len(state.files) == 2
        await uninstall(a, "TA")
        await bot.idle()
        await until(lambda: departure(bot, "TA"), "the departure")
        gone = await departure(bot, "TA")
        assert gone is not None and gone.state == "purged"
        assert gone.report["jobs_stopped"] == 1 and gone.report["people"] == 1
        for table in (Assistant, StoredFile, Job):
            assert await rows(bot, table, "TA") == 0
        assert await installs_of(bot, "TA") == 0
        assert conversation_a not in state.conversations
        assert len(state.vector_stores) == 1 and len(state.files) == 1
        # Workspace B is untouched.
        assert conversation_b in state.conversations
        assert await rows(bot, Assistant, "TB") == 1 and await installs_of(bot, "TB") == 1
        assert await rows(bot, Job, "TB") >= 1
        for name, value in core_env(fake_openai, database_url).items():
            monkeypatch.setenv(name, value)
        out = io.StringIO()
        assert await cli.run(["list"], out) == 0
        assert "removed from TA (app_uninstalled)" in out.getvalue()
        assert "data deleted" in out.getvalue()
        await a.send.aclose()
        await b.send.aclose()
    finally:
        await bot.stop()


async def test_grace_period_keeps_data_until_it_ends_and_a_reinstall_keeps_it(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> None:
    bot = await start_oauth_bot(
        fake_openai, fake_slack, database_url, UNINSTALL_GRACE_DAYS="2", **QUIET_QUEUE
    )
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        b = await install(bot, "TB", "UBADMIN", bot_user_id="UBOTB")
        await settle_in(bot, a, "TA", "U1", "DA1")
        conversation_b = await settle_in(bot, b, "TB", "U2", "DB1")
        departures = bot.bot.deps.departures
        assert departures is not None
        # A leaves and comes back within the grace period: nothing is deleted.
        await uninstall(a, "TA")
        await bot.idle()
        left = await departure(bot, "TA")
        assert left is not None and left.state == "pending"
        assert await installs_of(bot, "TA") == 0 and await rows(bot, Assistant, "TA") == 1
        async with bot.commander.db.session() as session:
            queued = await session.scalar(
                select(func.count()).where(Job.team_id == "TA", Job.status == "queued")
            )
        assert queued == 0  # its queued work was stopped
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        assert (await departure(bot, "TA")).state == "returned"  # type: ignore[union-attr]
        departures.clock = lambda: utcnow() + timedelta(days=3)
        assert await departures.purge_due() == []
        assert await rows(bot, Assistant, "TA") == 1
        # B revokes the bot token and stays away: deleted once the grace period ends.
        departures.clock = utcnow
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOTB"]}}
        await b.send.event(revoked, team_id="TB")
        await bot.idle()
        assert await departures.purge_due() == []
        assert await rows(bot, Assistant, "TB") == 1
        departures.clock = lambda: utcnow() + timedelta(days=2, minutes=1)
        assert [d.scope for d in await departures.purge_due()] == ["TB"]
        assert await rows(bot, Assistant, "TB") == 0 and await rows(bot, FollowedThread, "TB") == 0
        assert conversation_b not in fake_openai.state.conversations
        assert await rows(bot, Assistant, "TA") == 1
        await a.send.aclose()
        await b.send.aclose()
    finally:
        await bot.stop()
