"""Seeing usage: App Home (own usage for everyone, workspace totals for admins only) and
`python -m commander usage`, with money when PRICES_FILE is set."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from commander import cli
from handlers.usage_view import ADMIN_HEADER
from tests.conftest import BotHarness, core_env
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_server import FakeSlack
from tests.tenancy.harness import Installed, install, start_oauth_bot


async def talk(bot: BotHarness, ws: Installed, user: str, channel: str, answer: str) -> None:
    bot.openai.script(Text(answer))
    await ws.send.event(message_im(user, "hello", channel=channel, team=ws.send.team_id))
    await bot.idle()


def home_of(bot: BotHarness, user: str) -> str:
    views = [
        c.args["view"] for c in bot.slack.calls_to("views.publish") if c.args["user_id"] == user
    ]
    return json.dumps(views[-1])


async def usage_report(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> str:
    monkeypatch.delenv("PRICES_FILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert await cli.run(["usage", *args], out) == 0
    return out.getvalue()


async def test_app_home_shows_own_usage_and_admin_totals_only_to_admins(
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    bot = await start_oauth_bot(fake_openai, fake_slack, database_url, TOKENS_PER_DAY="100000")
    try:
        a = await install(bot, "TA", "UADMIN", bot_user_id="UBOTA")
        b = await install(bot, "TB", "UB", bot_user_id="UBOTB")
        fake_slack.add_user("UADMIN", is_admin=True)
        fake_slack.add_user("U1", is_admin=False, is_owner=False)
        for team, user in (("TA", "U1"), ("TA", "UADMIN"), ("TB", "U9")):
            await bot.commander.create(team, user, instructions="Be helpful.")
        await talk(bot, a, "U1", "DA1", "one")
        await talk(bot, a, "U1", "DA1", "two")
        await talk(bot, a, "UADMIN", "DA2", "three")
        await talk(bot, b, "U9", "DB1", "elsewhere")
        for user in ("U1", "UADMIN"):
            home = {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home"}
            await a.send.event(home)
        await bot.idle()
        person = home_of(bot, "U1")
        assert "Your usage" in person and "2 message(s)" in person and "of 100,000" in person
        assert ADMIN_HEADER not in person and "Top users" not in person
        admin = home_of(bot, "UADMIN")
        assert ADMIN_HEADER in admin and "1. <@U1>" in admin and "2. <@UADMIN>" in admin
        assert "U9" not in admin  # another workspace's people are not in A's totals
        # The same numbers from the CLI, and in money with a prices file.
        prices = tmp_path / "prices.json"
        model = (await bot.commander.get("TA", "U1")).model  # type: ignore[union-attr]
        prices.write_text(
            json.dumps({"models": {model: {"input": 2, "cached_input": 1, "output": 8}}})
        )
        env = core_env(fake_openai, database_url, PRICES_FILE=str(prices))
        text = await usage_report(monkeypatch, env, "--by", "workspace", "--csv")
        table = {row["workspace"]: row for row in csv.DictReader(io.StringIO(text))}
        assert set(table) == {"TA", "TB"}
        book = bot.bot.deps.usage
        assert book is not None
        ta = await book.scope_month("TA")
        assert int(table["TA"]["tokens"]) == ta.tokens and int(table["TA"]["turns"]) == 3
        expected = (
            2 * Decimal(ta.input_tokens - ta.cached_tokens)
            + Decimal(ta.cached_tokens)
            + 8 * Decimal(ta.output_tokens)
        ) / 1_000_000
        assert Decimal(table["TA"]["cost"]) == expected.quantize(Decimal("0.0001"))
        by_user = await usage_report(
            monkeypatch, core_env(fake_openai, database_url), "--by", "user"
        )
        lines = by_user.splitlines()
        assert lines[0].startswith("scope\tuser\ttokens") and "cost" not in lines[0]
        assert any(line.startswith("TA\tU1\t") for line in lines)
        since = await usage_report(
            monkeypatch, core_env(fake_openai, database_url), "--since", "2999-01-01"
        )
        assert since.strip().endswith("0 row(s), 0 tokens")
        await a.send.aclose()
        await b.send.aclose()
    finally:
        await bot.stop()
