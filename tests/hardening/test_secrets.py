"""Secrets never leave their place (docs/guarantees.md, "Secrets").

One broad scenario — commands, DMs, mentions, files that work and files that fail, an
email draft sent against a failing, an unreachable and a working webhook, provider
errors, Slack errors, a crash inside a listener's work, forged requests, deletion — runs
with every logger at DEBUG. Then every captured log record (message, arguments,
traceback), every call the fake Slack received (arguments; headers other than the
bot token's own Authorization), every response_url post, every request the fake
OpenAI received (bodies) and every answer the bot's endpoint gave is searched for the
bot token, the signing secret, the OpenAI key and the EMAIL_URI's query string.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from commander.runtime import quiet_http_loggers
from handlers import blocks, ids
from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET, BotHarness, start_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import FunctionCall
from tests.fakes.slack_events import app_mention, channel_message, message_im
from tests.fakes.slack_server import FakeSlack
from tests.hardening.hostile_support import A, B, Spy, T, create, raw_post

EMAIL_QUERY = "sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=EmailSasSignature0123456789"
SECRETS = {
    "bot token": BOT_TOKEN,
    "signing secret": SIGNING_SECRET,
    "OpenAI key": API_KEY,
    "EMAIL_URI query": EMAIL_QUERY,
    "EMAIL_URI signature": "EmailSasSignature0123456789",
}


class Webhook:
    """The email webhook: answers `status`, or is not listening at all."""

    def __init__(self) -> None:
        self.status = 500
        self.received: list[dict[str, Any]] = []

    async def answer(self, request: web.Request) -> web.StreamResponse:
        self.received.append(await request.json())
        return web.json_response({"ok": self.status == 200}, status=self.status)


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Root and every named logger at DEBUG — then the production logging setup
    (bot.main.configure_logging → quiet_http_loggers) is applied on top, as in a
    deployment with LOG_LEVEL=DEBUG."""
    names = ["", *logging.root.manager.loggerDict]
    saved = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    quiet_http_loggers()
    try:
        yield caplog
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def email_bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str
) -> AsyncIterator[tuple[BotHarness, Webhook, Spy]]:
    hook = Webhook()
    async with Spy(hook.answer) as spy:
        harness = await start_bot(
            fake_openai, fake_slack, database_url, EMAIL_URI=spy.url(f"/hook?{EMAIL_QUERY}")
        )
        try:
            yield harness, hook, spy
        finally:
            await harness.stop()


async def _draft_and_press(bot: BotHarness, key: str) -> None:
    """The model drafts an email in A's DM; A presses Send."""
    bot.openai.script(
        FunctionCall("send_email", {"to": "ann@example.com", "subject": "Hi", "content": "Hello"})
    )
    await bot.send.event(message_im(A, "email Ann"))
    await bot.idle()
    [pending] = [p for p in (await bot.commander.status(T, A)).pending_emails]
    await bot.send.block_action(
        A,
        ids.EMAIL_SEND,
        blocks.owned_value(A, pending.id),
        channel_id="D1",
        response_url=bot.slack.response_url(key),
    )
    await bot.idle()


async def run_broad_scenario(bot: BotHarness, hook: Webhook, spy: Spy) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    send = bot.send
    bot.commander.retry_base_s = 0

    # Forged and malformed requests.
    answers.append(await send.event(message_im(A, "hi"), signature="v0=" + "0" * 64))
    answers.append(await send.event(message_im(A, "hi"), timestamp=1))
    answers.append(await raw_post(bot, "{broken", {"Content-Type": "application/json"}))
    answers.append(await send.command("/unknown", "x", A, response_url=bot.slack.response_url("u")))

    # Create, talk, mention, follow up.
    answers.append(
        await send.command(
            "/assistant-create", "Be brief.", A, response_url=bot.slack.response_url("create")
        )
    )
    await bot.idle()
    await create(bot, B)
    answers.append(await send.event(message_im(A, f"my key is not {API_KEY[:3]}...")))
    mention = app_mention(B, "<@UBOT> hello", channel="C1")
    answers.append(await send.event(mention))
    await bot.idle()
    answers.append(await send.event(channel_message(A, "me too", "C1", thread_ts=mention["ts"])))
    await bot.idle()

    # Files: fine, a login page, a 404, a foreign host, a crash in the download.
    async def file_server(request: web.Request) -> web.StreamResponse:
        if "login" in request.path:
            return web.Response(text="<html>Sign in</html>", content_type="text/html")
        return web.Response(status=404)

    async with Spy(file_server) as files:
        good = bot.slack.add_file("notes.txt", b"notes", "text/plain", user=A)
        login = {
            **bot.slack.add_file("a.txt", b"a", user=A),
            "url_private_download": files.url("/login/a.txt"),
        }
        missing = {
            **bot.slack.add_file("b.txt", b"b", user=A),
            "url_private_download": files.url("/missing/b.txt"),
        }
        foreign = {
            **bot.slack.add_file("c.txt", b"c", user=A),
            "url_private_download": files.url("/c.txt", host="localhost"),
        }
        answers.append(await send.event(message_im(A, "", files=[good, login, missing, foreign])))
        await bot.idle()

    # Provider failures: 500s until the retries give up, then a 401.
    bot.openai.faults.add(path="/v1/responses", method="POST", status=500, times=10)
    answers.append(await send.event(message_im(A, "provider down")))
    await bot.idle()
    bot.openai.faults.clear()
    bot.openai.faults.add(path="/v1/responses", method="POST", status=401, times=10)
    answers.append(await send.event(message_im(A, "bad credentials")))
    await bot.idle()
    bot.openai.faults.clear()

    # Slack failures: streaming refused, posting fails, a Home publish fails.
    bot.slack.faults.add("chat.startStream", error="invalid_auth", times=1)
    bot.slack.faults.add("chat.postMessage", status=500, times=3)
    answers.append(await send.event(message_im(A, "slack trouble")))
    bot.slack.faults.add("views.publish", error="not_authed", times=2)
    answers.append(await send.event({"type": "app_home_opened", "user": A, "tab": "home"}))
    await bot.idle()
    bot.slack.faults.clear()

    # A forged button value, and an unexpected crash while a file is indexed.
    answers.append(
        await send.block_action(
            A, ids.REMOVE_FILE, "9" * 40, response_url=bot.slack.response_url("forged")
        )
    )
    backend = bot.commander.backend

    async def explode(*_args: Any) -> None:
        raise RuntimeError("the index exploded")

    backend.index_file = explode  # type: ignore[method-assign]
    crash = bot.slack.add_file("boom.txt", b"boom", "text/plain", user=A)
    answers.append(await send.event(message_im(A, "index this", files=[crash])))
    await bot.idle()
    del backend.index_file

    # Email: the webhook fails, is unreachable, then works.
    hook.status = 500
    await _draft_and_press(bot, "email-500")
    hook.status = 200
    await _draft_and_press(bot, "email-ok")
    assert len(hook.received) == 2
    await spy.__aexit__(None, None, None)  # the webhook goes away
    await _draft_and_press(bot, "email-down")

    # Someone else's buttons, then deleting everything.
    answers.append(
        await send.block_action(
            B, ids.CONFIRM_DELETE, A, response_url=bot.slack.response_url("theirs")
        )
    )
    answers.append(
        await send.command(
            "/assistant-delete", "", A, response_url=bot.slack.response_url("delete")
        )
    )
    answers.append(
        await send.block_action(
            A, ids.CONFIRM_DELETE, A, response_url=bot.slack.response_url("confirm")
        )
    )
    await bot.idle()
    return answers


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), record.stack_info or ""]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def _leaks(where: str, text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{name} in {where}"
        for name, value in SECRETS.items()
        if name not in allowed and value in text
    ]


async def test_secrets_never_reach_logs_errors_or_slack(
    email_bot: tuple[BotHarness, Webhook, Spy],
    every_logger_at_debug: pytest.LogCaptureFixture,
) -> None:
    bot, hook, spy = email_bot
    answers = await run_broad_scenario(bot, hook, spy)
    caplog = every_logger_at_debug

    # The scenario did go through its failures (so the scan means something).
    logged = _logged(caplog)
    assert len(caplog.records) > 200
    assert any(r.levelno >= logging.WARNING for r in caplog.records)
    assert any(r.exc_info for r in caplog.records), "a crash was logged with its traceback"
    said = json.dumps([c.args for c in bot.slack.calls] + [bot.slack.response_posts])
    for expected in (
        "login page",
        "outside Slack",
        "email service returned HTTP 500",
        "could not reach the email service",
        ":white_check_mark: Sent to",
        "Deleted your assistant",
        "Something went wrong",
    ):
        assert expected in said, expected

    leaks = _leaks("logs", logged)
    for call in bot.slack.calls:
        leaks += _leaks(f"Slack {call.method} args", json.dumps(call.args, default=str))
        headers = {k: v for k, v in call.headers.items() if k.lower() != "authorization"}
        leaks += _leaks(f"Slack {call.method} headers", json.dumps(headers))
        if call.token is not None:
            assert call.token == BOT_TOKEN
    leaks += _leaks("response_url posts", json.dumps(bot.slack.response_posts))
    leaks += _leaks(
        "Slack messages",
        json.dumps(
            [[m.text, m.blocks, m.chunks] for ms in bot.slack.messages.values() for m in ms]
        ),
    )
    for request in bot.openai.requests:
        body = json.dumps([request.json, request.form, request.query], default=str)
        leaks += _leaks(f"OpenAI {request.method} {request.path}", body)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        leaks += _leaks(f"OpenAI {request.path} headers", json.dumps(headers))
    for answer in answers:
        leaks += _leaks(f"HTTP answer {answer.status_code}", answer.text)
    assert leaks == []


async def test_secrets_stay_out_of_logs_even_without_the_quiet_http_loggers(
    email_bot: tuple[BotHarness, Webhook, Spy], caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger at DEBUG, the production quieting of httpx *not* applied: only the
    EMAIL_URI query (httpx logs full URLs at INFO) may show — which is why
    bot.main.configure_logging quiets httpx; tokens and keys never show."""
    bot, hook, spy = email_bot
    names = ["", *logging.root.manager.loggerDict]
    saved = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.DEBUG)
        await run_broad_scenario(bot, hook, spy)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    assert _leaks("logs", _logged(caplog), allowed=("EMAIL_URI query", "EMAIL_URI signature")) == []
