"""Helpers for test_hostile_inputs.py, test_isolation.py and test_secrets.py.

`Spy` is a local HTTP server that records every request it receives: a URL that must
never be fetched points at it, and the test asserts it saw nothing (or, for a trusted
host that plays Slack's file server, what it saw).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from commander.store.models import Base
from tests.conftest import (
    API_KEY,
    BACKENDS,
    BOT_TOKEN,
    TEAM,
    BotHarness,
    fresh_database,
    start_bot,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import FORM, new_ts
from tests.fakes.slack_server import FakeSlack

T, A, B = "T1", "UA", "UB"
DM = {A: "D1", B: "D2"}

# What a Python stack trace or an internal exception leaks into a message.
TRACE_MARKERS = (
    "Traceback (most recent call last)",
    'File "/',
    '.py", line',
    "KeyError",
    "TypeError",
    "ValueError",
    "AttributeError",
    "UnicodeEncodeError",
    "OverflowError",
    "IntegrityError",
    "sqlalchemy",
    "sqlite3",
)


@dataclass
class Hit:
    method: str
    path_qs: str
    host: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _ok(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="spy says hello", content_type="text/plain")


@dataclass
class Spy:
    """A local HTTP listener that records every request (method, path, headers, body)."""

    answer: Answer = _ok
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Spy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/x", host: str = "127.0.0.1") -> str:
        """`host="localhost"` reaches this listener under a name the bot must not trust."""
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(
            Hit(
                request.method,
                request.path_qs,
                request.host,
                dict(request.headers),
                await request.read(),
            )
        )
        return await self.answer(request)


# --- the bot under test ------------------------------------------------------------------


def shared_bot_fixtures() -> tuple[Any, Any]:
    """`(_shared_bot, bot)` fixtures: one bot (with its fakes) per test module and
    database backend, wiped before each test. Starting a bot costs ~0.3 s (migrations,
    TLS contexts); the catalogue has hundreds of entries. A module using them must run
    its tests in the module's event loop: ``pytestmark = pytest.mark.asyncio(loop_scope="module")``.

    Wiped per test: every database row, everything the fake Slack and fake OpenAI
    recorded, scripted or were told to fail; the bot is idle in between.
    """

    @pytest_asyncio.fixture(
        scope="module", loop_scope="module", name="_shared_bot", params=BACKENDS
    )
    async def shared(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Any:
        with fresh_database(request.param, tmp_path_factory.mktemp("bot")) as database_url:
            fake_openai = FakeOpenAI(api_key=API_KEY).start()
            fake_slack = FakeSlack(
                bot_token=BOT_TOKEN, team_id=TEAM, bot_user_id="UBOT", bot_id="BBOT"
            ).start()
            # One bot serves every test of the module: the per-minute turn limit (in
            # memory, so not wiped) must not count the whole module as one person's minute.
            harness = await start_bot(
                fake_openai, fake_slack, database_url, TURNS_PER_MINUTE="100000"
            )
            yield harness
            await harness.stop()
            fake_slack.stop()
            fake_openai.stop()

    @pytest_asyncio.fixture(loop_scope="module", name="bot")
    async def fresh(_shared_bot: BotHarness) -> Any:
        await wipe(_shared_bot)
        yield _shared_bot
        await _shared_bot.idle()

    return shared, fresh


async def wipe(bot: BotHarness) -> None:
    await bot.idle()
    bot.slack.reset()
    bot.openai.reset()
    async with bot.commander.db.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
    bot.commander.retry_base_s = 0


async def create(bot: BotHarness, user: str = A, team: str = T, **fields: Any) -> Any:
    fields.setdefault("instructions", f"Assistant of {user}.")
    bot.commander.retry_base_s = 0
    return await bot.commander.create(team, user, **fields)


def responses(bot: BotHarness) -> list[dict[str, Any]]:
    """Bodies of every responses.create the bot sent to the fake OpenAI."""
    return [r.json for r in bot.openai.requests if r.method == "POST" and r.path == "/v1/responses"]


def prompt_of(request: dict[str, Any]) -> str:
    return request["input"][0]["content"][0]["text"]


def conversation_texts(bot: BotHarness, conversation_id: str) -> list[str]:
    """Every text stored in a conversation at the fake provider."""
    items = bot.openai.state.conversations[conversation_id].items
    return [
        str(part.get("text"))
        for item in items
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("text")
    ]


def slack_methods(bot: BotHarness) -> list[str]:
    return [c.method for c in bot.slack.calls if c.method != "auth.test"]


def everything_slack_got(bot: BotHarness) -> str:
    """All arguments of all calls and all response_url posts, as one JSON string."""
    calls = [c.args for c in bot.slack.calls]
    return json.dumps([calls, bot.slack.response_posts], ensure_ascii=False, default=str)


def assert_no_trace(bot: BotHarness) -> None:
    seen = everything_slack_got(bot)
    leaked = [marker for marker in TRACE_MARKERS if marker in seen]
    assert not leaked, f"internal details reached Slack: {leaked}"


def user_visible_texts(bot: BotHarness) -> list[str]:
    """Texts of everything the bot showed people: messages, ephemerals, response_url posts."""
    texts = [
        str(c.args.get("text") or c.args.get("markdown_text") or "")
        for c in bot.slack.calls
        if c.method.startswith("chat.")
    ]
    texts += [
        str(p.get("text") or "") for posts in bot.slack.response_posts.values() for p in posts
    ]
    return [t for t in texts if t]


async def until(condition: Callable[[], Any], what: str, tries: int = 2000) -> None:
    """Wait for a condition the system under test makes true (bounded polling)."""
    for _ in range(tries):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def raw_post(bot: BotHarness, body: bytes | str, headers: dict[str, str]) -> httpx.Response:
    """POST to /slack/events with exactly these headers (no signing)."""
    async with httpx.AsyncClient(timeout=30) as client:
        content = body.encode() if isinstance(body, str) else body
        return await client.post(f"{bot.url}/slack/events", content=content, headers=headers)


async def post_payload(bot: BotHarness, payload: dict[str, Any]) -> httpx.Response:
    """A signed interactivity request carrying `payload` as given."""
    return await bot.send.post(urlencode({"payload": json.dumps(payload)}), FORM)


def action_payload(
    user: str,
    action_id: str,
    value: str | None,
    *,
    response_url: str,
    channel: str = "C1",
    ephemeral: bool = True,
    view: bool = False,
    team: str = T,
) -> dict[str, Any]:
    """A block_actions payload: a button in a message (ephemeral by default) or a Home view."""
    action: dict[str, Any] = {"action_id": action_id, "block_id": "b", "type": "button"}
    if value is not None:
        action["value"] = value
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A1",
        "trigger_id": "1.2.3",
        "team": {"id": team, "domain": "fake-workspace"},
        "actions": [action],
    }
    if view:
        payload["container"] = {"type": "view", "view_id": "VHOME"}
        payload["view"] = {"id": "VHOME", "type": "home"}
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": new_ts(),
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        payload["channel"] = {"id": channel, "name": "general"}
        payload["response_url"] = response_url
    return payload


async def press(
    bot: BotHarness,
    user: str,
    action_id: str,
    value: str | None,
    key: str = "press",
    **where: Any,
) -> httpx.Response:
    """`user` presses a button; replies land in bot.slack.response_posts[key]."""
    payload = action_payload(
        user, action_id, value, response_url=bot.slack.response_url(key), **where
    )
    response = await post_payload(bot, payload)
    assert response.status_code == 200
    return response


def posts(bot: BotHarness, key: str) -> list[str]:
    return [str(p.get("text") or "") for p in bot.slack.response_posts.get(key, [])]


def dm_texts(bot: BotHarness, user: str) -> list[str]:
    """Messages the bot sent into the user's DM (chat.postMessage with channel=user id)."""
    return [
        str(c.args.get("text") or "")
        for c in bot.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == user
    ]


def publishes(bot: BotHarness, user: str) -> list[dict[str, Any]]:
    return [
        c.args["view"] for c in bot.slack.calls_to("views.publish") if c.args["user_id"] == user
    ]
