"""The hostile and malformed input catalogue (docs/guarantees.md, "Hostile and malformed
input"): each entry is a request into the bot's real /slack/events endpoint, signed unless
the entry is about signatures, with the fake Slack and fake OpenAI behind the bot.

Status codes, as decided:
- 401: the request is not provably from Slack (bad, missing or stale signature).
- 400: signed but not parseable (not JSON / not form-encoded), or without the fields Bolt
  needs to route it (bot/guard.py answers before Bolt parses anything).
- 404: signed but not a Slack request at all (empty, ``{}``, plain text, no event).
- 413: a body over 1 MB (aiohttp's limit; Slack's payloads are far smaller).
- 200: everything Slack can send, known or not: unknown commands, actions, views,
  shortcuts and event types are acknowledged and ignored, so Slack neither retries nor
  shows the user an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from commander.errors import AssistantExists, NoAssistant, PendingEmailNotFound
from commander.store.models import Job, PendingEmail
from handlers import ids
from handlers.actions import NOT_YOURS
from handlers.commands import UNKNOWN_COMMAND
from tests.conftest import SIGNING_SECRET, BotHarness, start_bot
from tests.fakes.openai_steps import FunctionCall, Text
from tests.fakes.slack_events import (
    app_mention,
    bot_message,
    channel_message,
    message_changed,
    message_deleted,
    message_im,
)
from tests.fakes.slack_requests import FORM, JSON, sign
from tests.hardening.hostile_support import (
    A,
    B,
    Spy,
    T,
    action_payload,
    assert_no_trace,
    conversation_texts,
    create,
    post_payload,
    posts,
    press,
    prompt_of,
    raw_post,
    responses,
    shared_bot_fixtures,
    slack_methods,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
_shared_bot, bot = shared_bot_fixtures()

Send = Callable[[BotHarness], Awaitable[httpx.Response]]


def stale() -> int:
    return int(time.time()) - 6 * 60


def dm_body(bot: BotHarness, text: str = "hi") -> str:
    return json.dumps(bot.send.envelope(message_im(A, text)))


async def nothing_happened(bot: BotHarness) -> None:
    await bot.idle()
    assert slack_methods(bot) == [], "no Slack call may follow a refused request"
    assert responses(bot) == []
    assert await bot.commander.list_all() == []
    async with bot.commander.db.session() as session:
        assert (await session.execute(select(Job))).scalars().all() == []


# --- 1. request integrity ---------------------------------------------------------------


async def _tampered(bot: BotHarness) -> httpx.Response:
    body = dm_body(bot, "hello")
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": JSON,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SIGNING_SECRET, stamp, body),
    }
    return await raw_post(bot, body.replace('"hello"', '"tampered"'), headers)


async def _other_secret(bot: BotHarness) -> httpx.Response:
    body = dm_body(bot)
    stamp = str(int(time.time()))
    return await bot.send.post(body, JSON, signature=sign("another-secret", stamp, body))


async def _v1_scheme(bot: BotHarness) -> httpx.Response:
    body = dm_body(bot)
    stamp = str(int(time.time()))
    signature = sign(SIGNING_SECRET, stamp, body).replace("v0=", "v1=")
    return await bot.send.post(body, JSON, timestamp=stamp, signature=signature)


async def _no_headers(bot: BotHarness) -> httpx.Response:
    return await raw_post(bot, dm_body(bot), {"Content-Type": JSON})


async def _empty_signature(bot: BotHarness) -> httpx.Response:
    headers = {
        "Content-Type": JSON,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "",
    }
    return await raw_post(bot, dm_body(bot), headers)


async def _replayed(bot: BotHarness) -> httpx.Response:
    """A request captured 6 minutes ago, replayed with its then-valid signature."""
    body = dm_body(bot)
    then = stale()
    return await bot.send.post(
        body, JSON, timestamp=then, signature=sign(SIGNING_SECRET, then, body)
    )


UNAUTHENTIC: list[Any] = [
    pytest.param(
        lambda bot: bot.send.event(message_im(A, "hi"), signature="v0=" + "0" * 64),
        id="bad-signature",
    ),
    pytest.param(_no_headers, id="missing-signature-headers"),
    pytest.param(_empty_signature, id="empty-signature"),
    pytest.param(_other_secret, id="signed-with-another-secret"),
    pytest.param(_v1_scheme, id="unknown-signature-version"),
    pytest.param(_tampered, id="body-changed-after-signing"),
    pytest.param(lambda bot: bot.send.event(message_im(A, "hi"), timestamp=stale()), id="stale"),
    pytest.param(_replayed, id="replayed-6-minutes-later"),
    pytest.param(
        lambda bot: bot.send.event(message_im(A, "hi"), timestamp=int(time.time()) + 360),
        id="timestamp-6-minutes-ahead",
    ),
    pytest.param(
        lambda bot: bot.send.command("/assistant-create", "x", A, signature="v0=bad"),
        id="slash-command-bad-signature",
    ),
    pytest.param(
        lambda bot: bot.send.block_action(A, ids.CONFIRM_DELETE, A, signature="v0=bad"),
        id="button-bad-signature",
    ),
    pytest.param(
        lambda bot: bot.send.event(message_im(A, "hi"), timestamp="not-a-number"),
        id="garbled-timestamp",
    ),
    pytest.param(
        lambda bot: bot.send.post("{not json", JSON, signature="v0=forged"),
        id="unsigned-invalid-json",
    ),
    pytest.param(
        lambda bot: raw_post(bot, b"\xff\xfe\x00garbage", {"Content-Type": JSON}),
        id="unsigned-non-utf8-bytes",
    ),
]


@pytest.mark.parametrize("send", UNAUTHENTIC)
async def test_unauthentic_requests_get_401_and_do_nothing(bot: BotHarness, send: Send) -> None:
    response = await send(bot)
    assert response.status_code == 401
    await nothing_happened(bot)


MALFORMED: list[Any] = [
    pytest.param(lambda bot: bot.send.post("", JSON), 404, id="empty-body"),
    pytest.param(lambda bot: bot.send.post("{}", JSON), 404, id="empty-json-object"),
    pytest.param(lambda bot: bot.send.post("hello world", "text/plain"), 404, id="plain-text"),
    pytest.param(
        lambda bot: bot.send.post(json.dumps({"type": "event_callback", "team_id": T}), JSON),
        404,
        id="event-callback-without-event",
    ),
    pytest.param(
        lambda bot: bot.send.post(json.dumps({"type": "event_callback", "event": {}}), JSON),
        404,
        id="event-without-type",
    ),
    pytest.param(
        lambda bot: bot.send.post("x=" + "a" * (1024 * 1024 + 10), FORM),
        413,
        id="body-over-1-MB",
    ),
    pytest.param(
        lambda bot: bot.send.post("{not json", JSON),
        400,
        id="signed-invalid-json",
    ),
    pytest.param(
        lambda bot: bot.send.post("[1, 2, 3]", JSON),
        400,
        id="signed-json-array",
    ),
    pytest.param(
        lambda bot: bot.send.post("payload=%7Bnot-json", FORM),
        400,
        id="form-payload-not-json",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot, {"type": "view_submission", "user": {"id": A}, "view": {"callback_id": "x"}}
        ),
        400,
        id="view-without-type",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot, {"type": "block_actions", "user": _user(), "team": {"id": T}, "actions": []}
        ),
        400,
        id="button-with-empty-actions",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {"type": "block_actions", "user": _user(), "team": {"id": T}, "actions": [{}]},
        ),
        400,
        id="button-without-action-id",
    ),
]


@pytest.mark.parametrize(("send", "status"), MALFORMED)
async def test_malformed_bodies_are_refused_without_a_500(
    bot: BotHarness, send: Send, status: int
) -> None:
    response = await send(bot)
    assert response.status_code == status
    assert "Traceback" not in response.text
    await nothing_happened(bot)


def _user(user: str = A) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "team_id": T}


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_ts": f"{time.time():.6f}", **fields}


UNKNOWN: list[Any] = [
    pytest.param(
        lambda bot: bot.send.command("/weather", "Paris", A, response_url="https://x.invalid/r"),
        UNKNOWN_COMMAND,
        id="unknown-slash-command",
    ),
    pytest.param(
        lambda bot: bot.send.block_action(A, "no_such_button", "v"), "", id="unknown-action-id"
    ),
    pytest.param(
        lambda bot: bot.send.block_action(A, "picker", "x", action_type="static_select"),
        "",
        id="unknown-select-menu",
    ),
    pytest.param(
        lambda bot: bot.send.view_submission(A, "no_such_form", {}), "", id="unknown-view-callback"
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "view_closed",
                "user": _user(),
                "team": {"id": T},
                "view": {"id": "V1", "type": "modal", "callback_id": ids.CREATE_MODAL},
                "is_cleared": False,
            },
        ),
        "",
        id="view-closed",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {"type": "shortcut", "callback_id": "x", "user": _user(), "team": {"id": T}},
        ),
        "",
        id="global-shortcut",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "message_action",
                "callback_id": "x",
                "user": _user(),
                "team": {"id": T},
                "channel": {"id": "C1"},
                "message": {"ts": "1.2", "text": "hi"},
            },
        ),
        "",
        id="message-shortcut",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "block_suggestion",
                "action_id": "x",
                "block_id": "b",
                "value": "ab",
                "user": _user(),
                "team": {"id": T},
            },
        ),
        "",
        id="options-request",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "interactive_message",
                "callback_id": "legacy",
                "actions": [{"name": "a", "value": "b", "type": "button"}],
                "user": _user(),
                "team": {"id": T},
                "channel": {"id": "C1"},
            },
        ),
        "",
        id="legacy-attachment-button",
    ),
    pytest.param(
        lambda bot: bot.send.event(_event("tokens_revoked", tokens={"bot": ["UBOT"]})),
        "",
        id="event-tokens-revoked",
    ),
    pytest.param(
        lambda bot: bot.send.event(_event("app_uninstalled")), "", id="event-app-uninstalled"
    ),
    pytest.param(
        lambda bot: bot.send.event(
            _event("reaction_added", user=A, reaction="x", item={"type": "message"})
        ),
        "",
        id="event-not-subscribed",
    ),
    pytest.param(
        lambda bot: bot.send.url_verification("c-123"), '{"challenge": "c-123"}', id="url-check"
    ),
]


@pytest.mark.parametrize(("send", "body"), UNKNOWN)
async def test_unknown_slack_requests_are_acknowledged_and_ignored(
    bot: BotHarness, send: Send, body: str
) -> None:
    response = await send(bot)
    assert response.status_code == 200
    assert body in response.text if body else response.text in ("", "{}")
    await nothing_happened(bot)


MISSING_FIELDS: list[Any] = [
    pytest.param(
        lambda bot: bot.send.event({k: v for k, v in message_im(A, "hi").items() if k != "user"}),
        id="message-without-user",
    ),
    pytest.param(
        lambda bot: bot.send.event(
            {k: v for k, v in message_im(A, "hi").items() if k not in ("channel", "channel_type")}
        ),
        id="message-without-channel",
    ),
    pytest.param(
        lambda bot: bot.send.event(
            {k: v for k, v in message_im(A, "hi").items() if k not in ("ts", "event_ts")}
        ),
        id="message-without-ts",
    ),
    pytest.param(
        lambda bot: bot.send.post(
            "command=%2Fassistant-create&text=Be+nice&team_id=T1&response_url=", FORM
        ),
        id="command-without-user",
    ),
    pytest.param(
        lambda bot: bot.send.post("command=%2Fassistant-delete&team_id=T1", FORM),
        id="delete-command-without-user",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "block_actions",
                "team": {"id": T},
                "actions": [{"action_id": ids.RESET_THREAD, "value": A, "type": "button"}],
            },
        ),
        id="button-without-user",
    ),
    pytest.param(
        lambda bot: post_payload(
            bot,
            {
                "type": "view_submission",
                "team": {"id": T},
                "view": {"type": "modal", "callback_id": ids.CREATE_MODAL, "state": {}},
            },
        ),
        id="form-without-user",
    ),
    pytest.param(
        lambda bot: bot.send.event(_event("app_home_opened", tab="home")),
        id="home-opened-without-user",
    ),
    pytest.param(
        lambda bot: bot.send.event(_event("assistant_thread_started")),
        id="assistant-pane-without-thread",
    ),
]


@pytest.mark.parametrize("send", MISSING_FIELDS)
async def test_missing_fields_are_ignored_quietly(bot: BotHarness, send: Send) -> None:
    response = await send(bot)
    assert response.status_code == 200
    await nothing_happened(bot)


async def test_form_without_state_shows_field_errors(bot: BotHarness) -> None:
    payload = {
        "type": "view_submission",
        "user": _user(),
        "team": {"id": T},
        "view": {"id": "V1", "type": "modal", "callback_id": ids.CREATE_MODAL},
    }
    response = await post_payload(bot, payload)
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    await nothing_happened(bot)


# --- 2. retries and duplicate deliveries ------------------------------------------------


async def _retries_with_headers(bot: BotHarness, event: dict[str, Any]) -> None:
    await bot.send.event(event, event_id="Ev1")
    for num, reason in ((1, "http_timeout"), (2, "http_error"), (3, "connection_failed")):
        await bot.send.event(event, event_id="Ev1", retry_num=num, retry_reason=reason)


async def _redelivered_without_headers(bot: BotHarness, event: dict[str, Any]) -> None:
    await bot.send.event(event, event_id="Ev1")
    await bot.send.event(event, event_id="Ev2")


async def _reason_without_number(bot: BotHarness, event: dict[str, Any]) -> None:
    await bot.send.event(event, event_id="Ev1")
    await bot.send.event(event, event_id="Ev1", retry_reason="http_timeout")


async def _concurrent(bot: BotHarness, event: dict[str, Any]) -> None:
    await asyncio.gather(
        *(bot.send.event(event, event_id="Ev1", retry_num=n or None) for n in range(4))
    )


async def _retry_while_answering(bot: BotHarness, event: dict[str, Any]) -> None:
    bot.openai.faults.add(path="/v1/responses", method="POST", delay=0.3)
    await bot.send.event(event, event_id="Ev1")
    await until(lambda: responses(bot), "the first turn to start")
    await bot.send.event(event, event_id="Ev1", retry_num=1, retry_reason="http_timeout")


async def _mention_pair(bot: BotHarness, event: dict[str, Any]) -> None:
    mention = app_mention(A, "<@UBOT> answer me once", channel="D1", ts=event["ts"])
    await bot.send.event(mention, event_id="Ev1")
    await bot.send.event(event, event_id="Ev2")


@pytest.mark.parametrize(
    "deliver",
    [
        pytest.param(_retries_with_headers, id="retry-num-1-2-3-with-reasons"),
        pytest.param(_redelivered_without_headers, id="redelivered-without-retry-headers"),
        pytest.param(_reason_without_number, id="retry-reason-without-number"),
        pytest.param(_concurrent, id="four-deliveries-at-once"),
        pytest.param(_retry_while_answering, id="retry-while-the-answer-streams"),
        pytest.param(_mention_pair, id="app-mention-plus-message-pair"),
    ],
)
async def test_duplicate_deliveries_are_answered_once(
    bot: BotHarness, deliver: Callable[[BotHarness, dict[str, Any]], Awaitable[None]]
) -> None:
    assistant = await create(bot)
    event = message_im(A, "answer me once")
    await deliver(bot, event)
    await bot.idle()
    assert len(responses(bot)) == 1
    assert len(bot.slack.calls_to("chat.startStream")) == 1
    assert conversation_texts(bot, assistant.conversation_id).count("answer me once") == 1


async def test_a_retried_file_share_adds_the_file_once(bot: BotHarness) -> None:
    await create(bot)
    notes = bot.slack.add_file("notes.txt", b"notes", "text/plain", user=A)
    event = message_im(A, "", files=[notes])
    await bot.send.event(event, event_id="Ev1")
    await bot.send.event(event, event_id="Ev1", retry_num=1, retry_reason="http_timeout")
    await bot.idle()
    status = await bot.commander.status(T, A)
    assert [f.original_name for f in status.files] == ["notes.txt"]
    assert len(bot.slack.calls_to("download")) == 1


# --- 3. Slack message variants ----------------------------------------------------------


async def _thread_root(bot: BotHarness) -> str:
    mention = app_mention(A, "<@UBOT> start", channel="C1")
    await bot.send.event(mention)
    await bot.idle()
    return str(mention["ts"])


def _with(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**event, **fields}


IGNORED_VARIANTS: list[Any] = [
    pytest.param(lambda root: message_changed("D1", "1.000001", "edited", A), id="message-changed"),
    pytest.param(lambda root: message_deleted("D1", "1.000001", A), id="message-deleted"),
    pytest.param(
        lambda root: message_changed("C1", root, "edited", A, thread_ts=root),
        id="edit-in-a-followed-thread",
    ),
    pytest.param(
        lambda root: _with(channel_message(A, "joined", "C1"), subtype="channel_join"),
        id="channel-join",
    ),
    pytest.param(
        lambda root: _with(message_im(A, "topic"), subtype="channel_topic"), id="other-subtype"
    ),
    pytest.param(lambda root: bot_message("me", channel="D1"), id="own-bot-message"),
    pytest.param(
        lambda root: bot_message("legacy", channel="D1", legacy=True), id="legacy-bot-message"
    ),
    pytest.param(
        lambda root: bot_message("other", channel="D1", bot_id="BOTHER", user="UOTHERBOT"),
        id="another-apps-message",
    ),
    pytest.param(lambda root: message_im("UBOT", "my own words"), id="own-user-id"),
    pytest.param(
        lambda root: channel_message(A, "chatter without mention", "C1"), id="channel-chatter"
    ),
    pytest.param(
        lambda root: channel_message(A, "reply", "C1", thread_ts="1.000002"),
        id="reply-in-a-thread-the-bot-is-not-in",
    ),
    pytest.param(
        lambda root: channel_message(A, "same ts, other channel", "C2", thread_ts=root),
        id="reply-in-another-channels-thread",
    ),
]


@pytest.mark.parametrize("make", IGNORED_VARIANTS)
async def test_message_variants_that_are_ignored(
    bot: BotHarness, make: Callable[[str], dict[str, Any]]
) -> None:
    await create(bot)
    root = await _thread_root(bot)
    before = len(responses(bot)), len(bot.slack.calls)
    response = await bot.send.event(make(root))
    assert response.status_code == 200
    await bot.idle()
    assert (len(responses(bot)), len(bot.slack.calls)) == before


async def test_thread_broadcast_in_a_followed_thread_is_answered_once(bot: BotHarness) -> None:
    await create(bot)
    root = await _thread_root(bot)
    broadcast = _with(
        channel_message(A, "also send to channel", "C1", thread_ts=root), subtype="thread_broadcast"
    )
    await bot.send.event(broadcast)
    await bot.send.event(broadcast, retry_num=1, retry_reason="http_timeout")
    await bot.idle()
    assert [prompt_of(r) for r in responses(bot)] == ["start", "also send to channel"]


async def test_thread_broadcast_in_a_dm_is_answered(bot: BotHarness) -> None:
    await create(bot)
    event = _with(message_im(A, "broadcast", thread_ts="1.000001"), subtype="thread_broadcast")
    await bot.send.event(event)
    await bot.idle()
    assert [prompt_of(r) for r in responses(bot)] == ["broadcast"]


async def test_shared_channel_user_of_another_workspace_is_another_person(
    bot: BotHarness,
) -> None:
    """UA of workspace T9 is not UA of T1: keyed by (T9, UA), answered by their own."""
    ours = await create(bot, A, T)
    theirs = await create(bot, A, "T9")
    mention = _with(app_mention(A, "<@UBOT> who am I?", channel="C1", team="T9"), user_team="T9")
    await bot.send.event(mention)
    await bot.idle()
    [sent] = responses(bot)
    assert sent["conversation"] == theirs.conversation_id
    assert (
        sent["instructions"] == f"Assistant of {A}."
        and ours.conversation_id != theirs.conversation_id
    )
    assert conversation_texts(bot, ours.conversation_id) == []
    start = bot.slack.calls_to("chat.startStream")[0].args
    assert (start["recipient_team_id"], start["recipient_user_id"]) == ("T9", A)


async def test_shared_channel_user_without_assistant_gets_only_a_private_hint(
    bot: BotHarness,
) -> None:
    await create(bot, A, T)
    mention = _with(app_mention(A, "<@UBOT> hi", channel="C1", team="T9"), user_team="T9")
    await bot.send.event(mention)
    await bot.idle()
    assert responses(bot) == []
    [hint] = bot.slack.calls_to("chat.postEphemeral")
    assert hint.args["user"] == A and "/assistant-create" in hint.args["text"]
    assert bot.slack.calls_to("chat.postMessage") == []


async def test_shared_channel_follow_up_by_another_workspace_is_answered(
    bot: BotHarness,
) -> None:
    await create(bot, A, T)
    theirs = await create(bot, B, "T9")
    root = await _thread_root(bot)
    reply = _with(channel_message(B, "and me?", "C1", thread_ts=root, team="T9"), user_team="T9")
    await bot.send.event(reply)
    await bot.idle()
    assert responses(bot)[-1]["conversation"] == theirs.conversation_id


async def test_a_deleted_users_message_is_answered(bot: BotHarness) -> None:
    """Decision: answered. Slack delivers only what an account could post; checking
    users.info on every message would add a Slack call before the 3 s acknowledgement."""
    await create(bot)
    bot.slack.add_user(A, deleted=True)
    event = message_im(A, "written just before my account was deactivated")
    await bot.send.event(event)
    await bot.idle()
    assert bot.slack.thread_text("D1", event["ts"]).startswith("You said:")
    assert bot.slack.calls_to("users.info") == []


# --- 4. prompts ---------------------------------------------------------------------------

LIMIT = 32_000
TOO_LONG = f"at most {LIMIT:,} characters"
EMPTY = "Your message is empty"


@pytest.mark.parametrize(
    ("text", "model_sees", "reply"),
    [
        pytest.param("", None, EMPTY, id="empty"),
        pytest.param(None, None, EMPTY, id="text-null"),
        pytest.param("   \n\t  ", None, EMPTY, id="whitespace-only"),
        pytest.param("<@UBOT>", None, EMPTY, id="only-a-mention-of-the-bot"),
        pytest.param("x" * 100_000, None, TOO_LONG, id="100000-characters"),
        pytest.param("y" * (LIMIT + 1), None, TOO_LONG, id="one-over-the-limit"),
        pytest.param("z" * LIMIT, "z" * LIMIT, "You said:", id="exactly-the-limit"),
        pytest.param(
            "ctl \x00\x07\x1b[31mred\x1b[0m\x7f end",
            "ctl \x00\x07\x1b[31mred\x1b[0m\x7f end",
            "You said:",
            id="control-characters",
        ),
        pytest.param(
            "مرحبا \u202eevil\u202c שלום", "مرحبا \u202eevil\u202c שלום", "You said:", id="rtl-text"
        ),
        pytest.param(
            "👩‍👩‍👧‍👦 🏳️‍🌈 :tada: 🧪",
            "👩‍👩‍👧‍👦 🏳️‍🌈 :tada: 🧪",
            "You said:",
            id="emoji-and-zwj-sequences",
        ),
        pytest.param("bad \ud800 half", "bad \ufffd half", "You said:", id="lone-surrogate"),
        pytest.param("\u200b\ufeff", "\u200b\ufeff", "You said:", id="invisible-characters-only"),
        pytest.param(
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;",
            "<script>alert(1)</script> &amp;",
            "You said:",
            id="slack-escaped-html",
        ),
        pytest.param(
            "/assistant-delete", "/assistant-delete", "You said:", id="command-text-in-a-dm"
        ),
        pytest.param(
            "w" * 30_000, "w" * 30_000, "You said:", id="30000-characters-without-a-space"
        ),
    ],
)
async def test_prompts_are_answered_or_refused_clearly(
    bot: BotHarness, text: str | None, model_sees: str | None, reply: str
) -> None:
    await create(bot)
    event = message_im(A, "")
    event["text"] = text
    await bot.send.event(event)
    await bot.idle()
    thread = bot.slack.thread_text("D1", event["ts"])
    assert reply in thread
    if model_sees is None:
        assert responses(bot) == []
        assert thread.count("\n") == 0 and len(thread) < 200, "one short sentence"
    else:
        [sent] = responses(bot)
        assert prompt_of(sent) == model_sees
        assert all(len(m.text) <= 12_000 for m in bot.slack.bot_messages("D1", event["ts"]))
    assert await bot.commander.get(T, A) is not None
    assert_no_trace(bot)


async def test_a_mention_with_nothing_else_is_told_it_is_empty(bot: BotHarness) -> None:
    await create(bot)
    mention = app_mention(A, "<@UBOT>", channel="C1")
    await bot.send.event(mention)
    await bot.idle()
    assert EMPTY in bot.slack.thread_text("C1", mention["ts"])
    assert responses(bot) == []


# --- 5. files -------------------------------------------------------------------------------


async def _spy_answer(request: web.Request) -> web.StreamResponse:
    """Plays Slack's file server on the trusted host (127.0.0.1, SLACK_API_URL's host)."""
    name = request.match_info["tail"]
    if name.startswith("login"):
        page = "<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
        return web.Response(text=page, content_type="text/html")
    if name.startswith("missing"):
        return web.Response(status=404, text="no such file")
    if name.startswith("redirect"):
        port = request.url.port
        raise web.HTTPFound(f"http://localhost:{port}/stolen")
    return web.Response(body=b"file bytes", content_type="application/octet-stream")


@dataclass
class FileCase:
    make: Callable[[BotHarness, Spy], list[dict[str, Any]]]
    says: list[str]
    stored: list[str] = field(default_factory=list)
    downloads: int | None = None  # downloads from the fake Slack, when it matters


def _file(
    bot: BotHarness,
    stored_as: str,
    content: bytes = b"notes",
    mime: str = "text/plain",
    **override: Any,
) -> dict[str, Any]:
    """A file on the fake Slack, its Slack file object changed by `override`."""
    return {**bot.slack.add_file(stored_as, content, mime, user=A), **override}


def _at(spy: Spy, path: str, host: str = "127.0.0.1") -> dict[str, str]:
    return {"url_private_download": spy.url(path, host), "url_private": spy.url(path, host)}


LONG_NAME = "n" * 996 + ".txt"
REFUSED_OUTSIDE = "its download link points outside Slack"

FILE_CASES: list[Any] = [
    pytest.param(
        FileCase(lambda b, s: [_file(b, "empty.txt", b"")], ["`empty.txt`: it is empty"]),
        id="zero-bytes",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [b.slack.add_file("big.txt", size=51 * 1024 * 1024, user=A)],
            ["`big.txt`: it is larger than the 50 MB limit"],
            downloads=0,
        ),
        id="over-the-size-limit",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "tool.exe", b"MZ\x90", "application/octet-stream")],
            ["`tool.exe`: “.exe” files are not supported"],
            downloads=0,
        ),
        id="unsupported-type",
    ),
    pytest.param(
        FileCase(lambda b, s: [_file(b, "README")], ["`README`: it has no file extension"]),
        id="no-extension",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "passwd.txt", name="../../etc/passwd.txt")],
            ["Added to your assistant: `passwd.txt`"],
            ["passwd.txt"],
        ),
        id="name-with-slashes",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "win.ini.txt", name="..\\..\\windows\\win.ini.txt")],
            ["Added to your assistant: `win.ini.txt`"],
            ["win.ini.txt"],
        ),
        id="name-with-backslashes",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "long.txt", name=LONG_NAME)],
            ["Added to your assistant: `" + "n" * 116 + ".txt`"],
            ["n" * 116 + ".txt"],
        ),
        id="name-of-1000-characters",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "badname.txt", name="bad\nname\x00\u202e.txt")],
            ["Added to your assistant: `badname.txt`"],
            ["badname.txt"],
        ),
        id="name-with-control-characters",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "report.pdf", b"just text", "application/pdf")],
            ["`report.pdf`: its content does not look like a .pdf file"],
        ),
        id="pdf-that-is-text",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "photo.png", b"\xff\xd8\xff\xe0jpeg", "image/png")],
            ["`photo.png`: its content does not look like a .png file"],
        ),
        id="png-that-is-a-jpeg",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "data.csv", b"a,b\n\x00\x01\x02", "text/csv")],
            ["`data.csv`: it contains binary data"],
        ),
        id="csv-with-binary-content",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", b"<!DOCTYPE html><html>Sign in</html>")],
            ["`notes.txt`: it is a web page, not a file of its stated type"],
        ),
        id="text-file-that-is-a-web-page",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", **_at(s, "/login/notes.txt"))],
            ["`notes.txt`: Slack sent its login page instead of the file"],
        ),
        id="slack-login-page-instead-of-the-file",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", **_at(s, "/missing/notes.txt"))],
            ["`notes.txt`: Slack answered 404 when the bot downloaded it"],
        ),
        id="download-answers-404",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", **_at(s, "/steal", host="localhost"))],
            ["`notes.txt`: " + REFUSED_OUTSIDE],
            downloads=0,
        ),
        id="download-link-on-a-foreign-host",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [
                _file(b, "notes.txt", url_private_download=f"http://files.slack.com:{s.port}/x")
            ],
            ["`notes.txt`: " + REFUSED_OUTSIDE],
            downloads=0,
        ),
        id="slack-host-over-plain-http",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [
                _file(b, "notes.txt", url_private_download="https://files.slack.com.evil.example/x")
            ],
            ["`notes.txt`: " + REFUSED_OUTSIDE],
            downloads=0,
        ),
        id="look-alike-host",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [
                _file(
                    b,
                    "notes.txt",
                    url_private_download=f"https://files.slack.com@localhost:{s.port}/x",
                )
            ],
            ["`notes.txt`: " + REFUSED_OUTSIDE],
            downloads=0,
        ),
        id="userinfo-trick",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", url_private_download="file:///etc/passwd")],
            ["`notes.txt`: " + REFUSED_OUTSIDE],
            downloads=0,
        ),
        id="file-scheme-link",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", **_at(s, "/bad\nlink\x00.txt"))],
            ["`notes.txt`: downloading it from Slack failed"],
        ),
        id="link-with-control-characters",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "notes.txt", **_at(s, "/redirect/notes.txt"))],
            ["`notes.txt`: Slack redirected its download outside Slack"],
        ),
        id="redirect-to-a-foreign-host",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "gone.txt", mode="tombstone")],
            ["`gone.txt`: Slack no longer lets the bot read it"],
            downloads=0,
        ),
        id="deleted-file",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "drive.txt", is_external=True)],
            ["`drive.txt`: it is stored outside Slack"],
            downloads=0,
        ),
        id="external-file",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, "nolink.txt", url_private_download=None, url_private=None)],
            ["`nolink.txt`: Slack gave no download link for it"],
            downloads=0,
        ),
        id="file-without-a-link",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, f"n{i:02}.txt", f"note {i}".encode()) for i in range(20)],
            ["Added to your assistant: `n00.txt`"],
            [f"n{i:02}.txt" for i in range(20)],
            downloads=20,
        ),
        id="20-files-at-once",
    ),
    pytest.param(
        FileCase(
            lambda b, s: [_file(b, f"n{i:02}.txt") for i in range(21)],
            [":warning: Please attach at most 20 files at once."],
            downloads=0,
        ),
        id="21-files-at-once",
    ),
]


@pytest.mark.parametrize("case", FILE_CASES)
async def test_files_are_added_or_refused_with_a_reason(bot: BotHarness, case: FileCase) -> None:
    await create(bot)
    async with Spy(_spy_answer) as spy:
        event = message_im(A, "", files=case.make(bot, spy))
        response = await bot.send.event(event)
        assert response.status_code == 200
        await bot.idle()
    thread = bot.slack.thread_text("D1", event["ts"])
    for expected in case.says:
        assert expected in thread
    status = await bot.commander.status(T, A)
    assert [f.original_name for f in status.files] == case.stored
    if case.downloads is not None:
        assert len(bot.slack.calls_to("download")) == case.downloads
    foreign = [hit for hit in spy.hits if not hit.host.startswith("127.0.0.1")]
    assert foreign == [], "nothing may be fetched from a host other than Slack's"
    assert responses(bot) == []
    assert_no_trace(bot)


async def test_a_file_lying_about_its_size_is_cut_off_at_the_limit(
    fake_openai: Any, fake_slack: Any, database_url: str
) -> None:
    bot = await start_bot(fake_openai, fake_slack, database_url, MAX_FILE_MB="1")
    try:
        await create(bot)
        liar = {**bot.slack.add_file("liar.txt", size=3 * 1024 * 1024, user=A), "size": 10}
        event = message_im(A, "", files=[liar])
        await bot.send.event(event)
        await bot.idle()
        assert "`liar.txt`: it is larger than the 1 MB limit" in bot.slack.thread_text(
            "D1", event["ts"]
        )
        assert (await bot.commander.status(T, A)).files == []
        assert not [r for r in bot.openai.requests if r.path == "/v1/files"]
    finally:
        await bot.stop()


async def test_the_bot_token_goes_only_to_slack(bot: BotHarness) -> None:
    """A foreign download link, a redirect to a foreign host and a look-alike: the local
    listener behind each records every header; the bot token reaches none of them."""
    await create(bot)
    token = bot.slack.state.identity.bot_token
    async with Spy(_spy_answer) as spy:
        files = [
            _file(bot, "a.txt", **_at(spy, "/a.txt", host="localhost")),
            _file(bot, "b.txt", **_at(spy, "/redirect/b.txt")),
            _file(bot, "c.txt", url_private_download=f"https://slack.com@localhost:{spy.port}/c"),
            _file(bot, "d.txt"),
        ]
        await bot.send.event(message_im(A, "", files=files))
        await bot.idle()
    foreign = [hit for hit in spy.hits if not hit.host.startswith("127.0.0.1")]
    assert foreign == []
    assert [hit.path_qs for hit in spy.hits] == ["/redirect/b.txt"]  # the trusted host only
    assert [f.original_name for f in (await bot.commander.status(T, A)).files] == ["d.txt"]
    assert all(c.token == token for c in bot.slack.calls_to("download"))


async def test_twenty_refused_files_with_long_names_still_get_a_report(bot: BotHarness) -> None:
    await create(bot)
    files = [_file(bot, f"{i:02}" + "x" * 200 + ".exe", b"MZ") for i in range(20)]
    event = message_im(A, "", files=files)
    await bot.send.event(event)
    await bot.idle()
    assert "Not added" in bot.slack.thread_text("D1", event["ts"])


# --- 6. URLs are never fetched on a user's behalf ------------------------------------------


async def _vector_event(bot: BotHarness, spy: Spy, vector: str) -> dict[str, Any]:
    here, there = spy.url("/in-prompt"), spy.url("/foreign", host="localhost")
    if vector == "url-in-prompt":
        return message_im(A, f"summarise {here} and {there}")
    if vector == "slack-link-markup":
        return message_im(A, f"read <{here}|this page> and <{there}>")
    if vector == "message-attachments-and-unfurls":
        return _with(
            message_im(A, "what is this?"),
            attachments=[
                {"from_url": here, "image_url": there, "thumb_url": here, "original_url": there}
            ],
        )
    if vector == "image-block":
        event = message_im(A, "look")
        event["blocks"] = [{"type": "image", "image_url": there, "alt_text": "x"}]
        return event
    if vector == "file-permalinks-and-thumbnails":
        file = _file(
            bot,
            "notes.txt",
            permalink=there,
            permalink_public=there,
            thumb_64=there,
            thumb_360=here,
            url_private=there,
            url_private_download=there,
        )
        return message_im(A, "", files=[file])
    if vector == "model-answers-with-a-url":
        bot.openai.script(Text(f"Go to {here} or <{there}|there>"))
        return message_im(A, "where should I go?")
    if vector == "model-calls-a-function-with-a-url":
        bot.openai.script(FunctionCall("get_stock_price", {"symbol": there}))
        return message_im(A, "price?")
    raise AssertionError(vector)


@pytest.mark.parametrize(
    "vector",
    [
        "url-in-prompt",
        "slack-link-markup",
        "message-attachments-and-unfurls",
        "image-block",
        "file-permalinks-and-thumbnails",
        "model-answers-with-a-url",
        "model-calls-a-function-with-a-url",
    ],
)
async def test_urls_are_never_fetched_on_a_users_behalf(bot: BotHarness, vector: str) -> None:
    await create(bot)
    async with Spy() as spy:
        event = await _vector_event(bot, spy, vector)
        response = await bot.send.event(event)
        assert response.status_code == 200
        await bot.idle()
    assert spy.hits == [], f"the bot fetched {[h.path_qs for h in spy.hits]}"
    assert bot.slack.thread_text("D1", event["ts"])
    assert_no_trace(bot)


async def test_instructions_with_urls_are_never_fetched(bot: BotHarness) -> None:
    async with Spy() as spy:
        await bot.send.command(
            "/assistant-create",
            f"Always read {spy.url('/instructions')} first",
            A,
            response_url=bot.slack.response_url("create"),
        )
        await bot.idle()
        await bot.send.event(message_im(A, "go"))
        await bot.idle()
    assert spy.hits == []
    assert responses(bot)[0]["instructions"].endswith("/instructions first")


# --- 7. timing and ordering -----------------------------------------------------------------


async def _command(bot: BotHarness, name: str, text: str, key: str) -> httpx.Response:
    return await bot.send.command(name, text, A, "C1", response_url=bot.slack.response_url(key))


def _conversation_creations(bot: BotHarness) -> int:
    return len(
        [r for r in bot.openai.requests if r.method == "POST" and r.path == "/v1/conversations"]
    )


async def test_create_twice_in_parallel_makes_exactly_one_assistant(bot: BotHarness) -> None:
    bot.openai.faults.add(path="/v1/conversations", method="POST", delay=0.2)
    first, second = await asyncio.gather(
        _command(bot, "/assistant-create", "First", "one"),
        _command(bot, "/assistant-create", "Second", "two"),
    )
    assert first.status_code == second.status_code == 200
    await bot.idle()
    [assistant] = await bot.commander.list_all()
    assert assistant.instructions in ("First", "Second")
    replies = posts(bot, "one") + posts(bot, "two")
    assert sum("Created your assistant" in r for r in replies) == 1
    assert replies.count(AssistantExists.user_message) == 1
    assert _conversation_creations(bot) == 1, "the loser must not leave an orphan conversation"


async def test_create_by_command_and_form_in_parallel_makes_one(bot: BotHarness) -> None:
    values = {
        ids.INSTRUCTIONS_BLOCK: {"value": {"type": "plain_text_input", "value": "From the form"}},
    }
    await asyncio.gather(
        _command(bot, "/assistant-create", "From the command", "cmd"),
        bot.send.view_submission(A, ids.CREATE_MODAL, values),
    )
    await bot.idle()
    assert len(await bot.commander.list_all()) == 1
    assert _conversation_creations(bot) == 1
    assert_no_trace(bot)


async def test_delete_while_a_turn_is_running_waits_for_it_and_leaves_nothing(
    bot: BotHarness,
) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(path="/v1/responses", method="POST", delay=0.3)
    event = message_im(A, "a long question")
    await bot.send.event(event)
    await until(lambda: responses(bot), "the turn to start")
    await press(bot, A, ids.CONFIRM_DELETE, A, "delete")
    await bot.idle()
    assert bot.slack.thread_text("D1", event["ts"]) == "You said: a long question"
    assert all(m.stopped for m in bot.slack.bot_messages("D1", event["ts"]))
    assert any("Deleted your assistant" in p for p in posts(bot, "delete"))
    assert await bot.commander.get(T, A) is None
    assert assistant.conversation_id not in bot.openai.state.conversations
    async with bot.commander.db.session() as session:
        assert (await session.execute(select(Job))).scalars().all() == []
    assert_no_trace(bot)


async def test_delete_twice_deletes_once_and_says_so(bot: BotHarness) -> None:
    await create(bot)
    await asyncio.gather(
        press(bot, A, ids.CONFIRM_DELETE, A, "first"),
        press(bot, A, ids.CONFIRM_DELETE, A, "second"),
    )
    await bot.idle()
    replies = posts(bot, "first") + posts(bot, "second")
    assert sum("Deleted your assistant" in r for r in replies) == 1
    assert sum("nothing to delete" in r for r in replies) == 1
    assert_no_trace(bot)


async def test_create_right_after_delete_starts_afresh(bot: BotHarness) -> None:
    old = await create(bot)
    await press(bot, A, ids.CONFIRM_DELETE, A, "delete")
    await _command(bot, "/assistant-create", "Fresh start", "create")
    await bot.idle()
    new = await bot.commander.require(T, A)
    assert new.conversation_id != old.conversation_id and new.instructions == "Fresh start"
    assert old.conversation_id not in bot.openai.state.conversations
    await bot.send.event(message_im(A, "hello again"))
    await bot.idle()
    assert responses(bot)[-1]["conversation"] == new.conversation_id


async def test_a_message_queued_behind_a_delete_gets_the_hint(bot: BotHarness) -> None:
    await create(bot)
    await press(bot, A, ids.CONFIRM_DELETE, A, "delete")
    event = message_im(A, "are you there?")
    await bot.send.event(event)
    await bot.idle()
    assert "/assistant-create" in bot.slack.thread_text("D1", event["ts"])
    assert responses(bot) == []


# --- 8. buttons ----------------------------------------------------------------------------


async def _a_file(bot: BotHarness, user: str = A) -> int:
    event = message_im(user, "", files=[bot.slack.add_file("mine.txt", b"mine", user=user)])
    await bot.send.event(event)
    await bot.idle()
    [stored] = (await bot.commander.status(T, user)).files
    return int(stored.id)


async def _a_draft(bot: BotHarness, user: str = A) -> str:
    pending = PendingEmail(
        team_id=T, user_id=user, recipients=["x@example.com"], subject="s", content="c"
    )
    async with bot.commander.db.transaction() as session:
        session.add(pending)
    return str(pending.id)


@pytest.mark.parametrize(
    ("action_id", "value", "reply"),
    [
        pytest.param(ids.CONFIRM_DELETE, A, NOT_YOURS, id="someone-else-presses-delete"),
        pytest.param(ids.RESET_THREAD, A, NOT_YOURS, id="someone-else-presses-reset"),
        pytest.param(ids.CANCEL_DELETE, A, NOT_YOURS, id="someone-else-presses-cancel"),
        pytest.param(ids.EMAIL_SEND, "{owner}:{draft}", NOT_YOURS, id="someone-else-sends-email"),
        pytest.param(
            ids.EMAIL_CANCEL, "{owner}:{draft}", NOT_YOURS, id="someone-else-cancels-email"
        ),
        pytest.param(
            ids.REMOVE_FILE, "{file}", "not one of yours", id="someone-else-removes-a-file"
        ),
    ],
)
async def test_someone_elses_buttons_do_nothing(
    bot: BotHarness, action_id: str, value: str, reply: str
) -> None:
    assistant = await create(bot, A)
    file_id, draft = await _a_file(bot), await _a_draft(bot)
    await press(bot, B, action_id, value.format(owner=A, draft=draft, file=file_id), "b")
    await bot.idle()
    assert any(reply in text for text in posts(bot, "b"))
    status = await bot.commander.status(T, A)
    assert status is not None and status.assistant.conversation_id == assistant.conversation_id
    assert [f.id for f in status.files] == [file_id]
    assert [p.status for p in status.pending_emails] == ["pending"]
    assert await bot.commander.get(T, B) is None
    assert_no_trace(bot)


@pytest.mark.parametrize(
    ("action_id", "value", "reply"),
    [
        pytest.param(ids.RESET_THREAD, A, NoAssistant.user_message, id="reset"),
        pytest.param(ids.CONFIRM_DELETE, A, "nothing to delete", id="delete"),
        pytest.param(ids.CANCEL_DELETE, A, "Nothing was deleted", id="cancel-delete"),
        pytest.param(ids.REMOVE_FILE, "{file}", "already removed", id="remove-file"),
        pytest.param(
            ids.EMAIL_SEND, "{owner}:{draft}", PendingEmailNotFound.user_message, id="email-send"
        ),
        pytest.param(
            ids.EMAIL_CANCEL,
            "{owner}:{draft}",
            PendingEmailNotFound.user_message,
            id="email-cancel",
        ),
    ],
)
async def test_buttons_of_a_deleted_assistant_say_what_happened(
    bot: BotHarness, action_id: str, value: str, reply: str
) -> None:
    await create(bot)
    file_id, draft = await _a_file(bot), await _a_draft(bot)
    await bot.commander.delete(T, A)
    await press(bot, A, action_id, value.format(owner=A, draft=draft, file=file_id), "old")
    await bot.idle()
    assert any(reply in text for text in posts(bot, "old")), posts(bot, "old")
    assert await bot.commander.get(T, A) is None
    assert_no_trace(bot)


NOT_A_FILE = "That file is not one of yours, or it was already removed."


@pytest.mark.parametrize(
    ("action_id", "value", "reply"),
    [
        pytest.param(ids.CONFIRM_DELETE, None, NOT_YOURS, id="delete-without-value"),
        pytest.param(ids.CONFIRM_DELETE, "", NOT_YOURS, id="delete-empty-value"),
        pytest.param(ids.CONFIRM_DELETE, f" {A}", NOT_YOURS, id="delete-padded-owner"),
        pytest.param(ids.CONFIRM_DELETE, f"{B}:{A}", NOT_YOURS, id="delete-swapped-owner"),
        pytest.param(ids.RESET_THREAD, "x" * 5000, NOT_YOURS, id="reset-5000-character-value"),
        pytest.param(ids.EMAIL_SEND, f"{A}:", PendingEmailNotFound.user_message, id="email-no-id"),
        pytest.param(
            ids.EMAIL_SEND, f"{A}:' OR 1=1 --", PendingEmailNotFound.user_message, id="email-sqli"
        ),
        pytest.param(
            ids.EMAIL_CANCEL, f"{A}:../../x", PendingEmailNotFound.user_message, id="email-path"
        ),
        pytest.param(ids.REMOVE_FILE, "", NOT_A_FILE, id="remove-empty"),
        pytest.param(ids.REMOVE_FILE, "abc", NOT_A_FILE, id="remove-letters"),
        pytest.param(ids.REMOVE_FILE, "-1", NOT_A_FILE, id="remove-negative"),
        pytest.param(ids.REMOVE_FILE, "1.0", NOT_A_FILE, id="remove-decimal"),
        pytest.param(ids.REMOVE_FILE, "9" * 30, NOT_A_FILE, id="remove-beyond-64-bit"),
        pytest.param(ids.REMOVE_FILE, "\u0661", NOT_A_FILE, id="remove-arabic-digit"),
        pytest.param(ids.REMOVE_FILE, "1; DROP TABLE files", NOT_A_FILE, id="remove-sqli"),
    ],
)
async def test_forged_button_values_change_nothing(
    bot: BotHarness, action_id: str, value: str | None, reply: str
) -> None:
    assistant = await create(bot)
    file_id, _ = await _a_file(bot), await _a_draft(bot)
    await press(bot, A, action_id, value, "forged")
    await bot.idle()
    said = posts(bot, "forged")
    assert any(reply in text for text in said), said
    assert not any("Something went wrong" in text for text in said)
    status = await bot.commander.status(T, A)
    assert status is not None and status.assistant.conversation_id == assistant.conversation_id
    assert [f.id for f in status.files] == [file_id]
    assert [p.status for p in status.pending_emails] == ["pending"]
    assert_no_trace(bot)


async def test_a_button_from_a_home_view_of_someone_else_does_nothing(bot: BotHarness) -> None:
    await create(bot, A)
    payload = action_payload(B, ids.CONFIRM_DELETE, A, response_url="", view=True)
    await post_payload(bot, payload)
    await bot.idle()
    assert await bot.commander.get(T, A) is not None
    [publish] = bot.slack.calls_to("views.publish")
    assert publish.args["user_id"] == B, "only the presser's own Home is touched"
    assert NOT_YOURS in json.dumps(publish.args["view"])
