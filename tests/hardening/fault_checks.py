"""What every turn must leave behind, whatever failed on the way.

Used by test_openai_faults.py and test_slack_faults.py:
- it ended in the answer, or in exactly one short ":warning:" sentence;
- no "is thinking…" status is left spinning (the last setStatus call clears it);
- no Slack stream is left open (every started stream got a chat.stopStream);
- the user's message is in the conversation at most once.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import BotHarness
from tests.fakes.slack_events import message_im

T, A = "T1", "UA"
WARNING = ":warning:"


async def create(bot: BotHarness, user: str = A, **kwargs: Any) -> Any:
    """An assistant for `user`; retries in tests do not wait."""
    bot.commander.retry_base_s = 0
    return await bot.commander.create(T, user, instructions="Be helpful.", **kwargs)


async def ask(bot: BotHarness, text: str, **kwargs: Any) -> dict[str, Any]:
    """A DM from A; returns once the bot has finished everything it started."""
    event = message_im(A, text, **kwargs)
    response = await bot.send.event(event)
    assert response.status_code == 200
    await bot.idle()
    return event


def response_posts(bot: BotHarness) -> list[dict[str, Any]]:
    return [r.json for r in bot.openai.requests if r.method == "POST" and r.path == "/v1/responses"]


def user_texts(bot: BotHarness, conversation_id: str) -> list[str]:
    """Text of every user message stored in the conversation, in order."""
    items = bot.openai.state.conversations[conversation_id].items
    return [
        "".join(part.get("text", "") for part in item.get("content") or [])
        for item in items
        if item.get("role") == "user"
    ]


def thread(bot: BotHarness, event: dict[str, Any]) -> str:
    return bot.slack.thread_text(event["channel"], event["ts"])


def status_calls(bot: BotHarness, event: dict[str, Any]) -> list[str]:
    return [
        str(c.args.get("status"))
        for c in bot.slack.calls_to("assistant.threads.setStatus")
        if c.args.get("channel_id") == event["channel"] and c.args.get("thread_ts") == event["ts"]
    ]


def unstopped_streams(bot: BotHarness) -> set[str]:
    """ts of streams Slack started for the bot that never got a chat.stopStream call."""
    started = {
        str(c.response["ts"])
        for c in bot.slack.calls_to("chat.startStream")
        if c.response and c.response.get("ok")
    }
    stopped = {str(c.args.get("ts")) for c in bot.slack.calls_to("chat.stopStream")}
    return started - stopped


def assert_clean_end(
    bot: BotHarness,
    event: dict[str, Any],
    *,
    answer: str | None = None,
    error: str | None = None,
    conversation_id: str | None = None,
    streams_closed: bool = True,
) -> str:
    """The invariants every turn keeps; returns the thread's visible text.

    `answer`: the whole answer must be visible exactly once and no warning;
    `error`: exactly one warning, containing this text."""
    text = thread(bot, event)
    if answer is not None:
        assert text.count(answer) == 1, text
        assert WARNING not in text, text
    if error is not None:
        assert text.count(WARNING) == 1, text
        assert error in text.split(WARNING, 1)[1], text
        assert "Traceback" not in text
    statuses = status_calls(bot, event)
    assert statuses, "the DM turn set no status at all"
    assert statuses[-1] == "", f"status left spinning: {statuses}"
    assert bot.slack.assistant_threads[(event["channel"], event["ts"])].status == ""
    if streams_closed:
        assert unstopped_streams(bot) == set()
        messages = bot.slack.bot_messages(event["channel"])
        assert not [m for m in messages if m.streaming and not m.stopped]
    if conversation_id is not None:
        assert user_texts(bot, conversation_id).count(event["text"]) <= 1
    return text
