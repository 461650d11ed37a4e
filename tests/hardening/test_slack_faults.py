"""The bot against a failing Slack: rate limits are waited out, server errors retried or
routed around, and every answer still arrives exactly once, with no status left spinning
and no stream left open.

End to end: signed Slack events into the bot, the real SDKs over HTTP against the fakes.
"""

from __future__ import annotations

import pytest
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from tests.conftest import BotHarness
from tests.fakes.openai_steps import CodeInterpreterChart, FileSearch, Text
from tests.hardening.fault_checks import (
    ask,
    assert_clean_end,
    create,
    status_calls,
    thread,
    unstopped_streams,
    user_texts,
)

STREAM_METHODS = ["chat.startStream", "chat.appendStream", "chat.stopStream"]
REFUSED = "not_allowed_token_type"


def message_jobs(bot: BotHarness) -> object:
    """The MessageJobs behind the bot's job runner (to shorten its flush interval)."""
    return bot.bot.runner.process.__self__


def refuse_streaming(bot: BotHarness) -> None:
    bot.slack.faults.add("chat.startStream", error=REFUSED, times=None)


def fast_server_retries(bot: BotHarness) -> None:
    """The bot's own Slack retry handlers, with 10 ms between server-error retries (a
    Retry-After from Slack is still honoured to the second)."""
    handlers = bot.bot.app.client.retry_handlers
    assert any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in handlers)
    for handler in handlers:
        if not isinstance(handler, AsyncRateLimitErrorRetryHandler):
            handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)


def gap_after_fault(bot: BotHarness, method: str) -> float:
    """Seconds between the faulted call to `method` and the next call to it."""
    calls = bot.slack.calls_to(method)
    faulted = next(i for i, c in enumerate(calls) if c.fault)
    return calls[faulted + 1].at - calls[faulted].at


def squash(text: str) -> str:
    return "".join(text.split())


# --- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", [*STREAM_METHODS, "chat.postMessage"])
async def test_rate_limit_retry_after_is_honoured_and_the_answer_arrives_once(
    bot: BotHarness, method: str
) -> None:
    assistant = await create(bot)
    if method == "chat.postMessage":
        refuse_streaming(bot)
    bot.slack.faults.add(method, status=429, retry_after=1)
    event = await ask(bot, "hello")
    assert_clean_end(
        bot, event, answer="You said: hello", conversation_id=assistant.conversation_id
    )
    assert gap_after_fault(bot, method) >= 1.0
    assert len(bot.slack.bot_messages("D1", event["ts"])) == 1
    assert len(user_texts(bot, assistant.conversation_id)) == 1


async def test_rate_limited_batch_is_not_lost_when_the_turn_ends_meanwhile(
    bot: BotHarness,
) -> None:
    """A timed flush waiting out a Retry-After must finish before the reply ends."""
    await create(bot)
    message_jobs(bot).flush_interval_s = 0.2  # type: ignore[attr-defined]
    bot.openai.tokens_per_second = 25
    answer = " ".join(f"word{i}" for i in range(20))
    bot.openai.script(Text(answer, chunk=6))
    bot.slack.faults.add("chat.appendStream", status=429, retry_after=1)
    event = await ask(bot, "talk slowly")
    assert_clean_end(bot, event, answer=answer)
    assert len(bot.slack.bot_messages("D1", event["ts"])) == 1


async def test_rate_limited_status_is_waited_out_and_cleared(bot: BotHarness) -> None:
    await create(bot)
    bot.slack.faults.add("assistant.threads.setStatus", status=429, retry_after=0, times=2)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, answer="You said: hello")


# --- server errors --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("method", [*STREAM_METHODS, "chat.postMessage"])
async def test_one_server_error_is_retried_and_the_answer_arrives_once(
    bot: BotHarness, method: str, status: int
) -> None:
    await create(bot)
    fast_server_retries(bot)
    if method == "chat.postMessage":
        refuse_streaming(bot)
    bot.slack.faults.add(method, status=status)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, answer="You said: hello")
    assert len(bot.slack.bot_messages("D1", event["ts"])) == 1


async def test_stream_start_down_falls_back_to_messages(bot: BotHarness) -> None:
    await create(bot)
    fast_server_retries(bot)
    bot.slack.faults.add("chat.startStream", status=503, times=None)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, answer="You said: hello")
    assert [m.streaming for m in bot.slack.bot_messages("D1", event["ts"])] == [False]


async def test_stream_append_down_closes_the_stream_and_posts_the_rest(bot: BotHarness) -> None:
    await create(bot)
    fast_server_retries(bot)
    answer = "The first words arrive, then the rest of a longer answer follows."
    bot.openai.script(Text(answer))
    bot.slack.faults.add("chat.appendStream", status=500, times=None)
    event = await ask(bot, "hello")
    text = assert_clean_end(bot, event)
    assert squash(text) == squash(answer)
    messages = bot.slack.bot_messages("D1", event["ts"])
    assert [m.streaming for m in messages] == [True, False]


async def test_stream_stop_down_still_shows_every_word(bot: BotHarness) -> None:
    await create(bot)
    fast_server_retries(bot)
    bot.slack.faults.add("chat.stopStream", status=500, times=None)
    event = await ask(bot, "hello")
    # Slack never confirmed the stop, but it was asked (and the SDK retried it).
    assert_clean_end(bot, event, answer="You said: hello", streams_closed=False)
    assert unstopped_streams(bot) == set()
    assert len(bot.slack.calls_to("chat.stopStream")) == 3  # one call, two retries


async def test_failing_status_update_mid_turn_still_clears_the_status(bot: BotHarness) -> None:
    await create(bot)
    fast_server_retries(bot)
    bot.slack.faults.add(
        "assistant.threads.setStatus",
        status=500,
        times=None,
        match={"status": "is running code…"},
    )
    bot.openai.script(CodeInterpreterChart("Here it is", filename="c.png"))
    event = await ask(bot, "chart it")
    assert_clean_end(bot, event)
    assert "is running code…" in status_calls(bot, event)


# --- streaming refused ------------------------------------------------------------------------


async def test_refused_stream_and_failed_turn_give_one_error(bot: BotHarness) -> None:
    await create(bot)
    refuse_streaming(bot)
    bot.openai.faults.add(path="/v1/responses", method="POST", status=500, times=10)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, error="unavailable")
    assert len(bot.slack.bot_messages("D1", event["ts"])) == 1


async def test_refused_stream_and_cut_answer_keep_the_words_and_one_error(
    bot: BotHarness,
) -> None:
    await create(bot)
    refuse_streaming(bot)
    bot.openai.script(Text("One two three four five six seven eight.", chunk=5))
    bot.openai.faults.add(cut_after_deltas=3)
    event = await ask(bot, "count")
    text = assert_clean_end(bot, event, error="broke mid-answer")
    assert text.startswith("One two three")


async def test_refused_stream_with_sources_shows_them_once(bot: BotHarness) -> None:
    await create(bot)
    refuse_streaming(bot)
    pdf = bot.slack.add_file("report.pdf", b"%PDF-1.7 report", "application/pdf", user="UA")
    bot.openai.script(FileSearch("It says hi.", filename="report.pdf"))
    event = await ask(bot, "summarise", files=[pdf])
    text = assert_clean_end(bot, event, answer="It says hi.")
    assert text.count("Sources: report.pdf") == 1


# --- message too long ---------------------------------------------------------------------------


def paragraphs(count: int, size: int = 300) -> str:
    return "\n\n".join(f"Paragraph {i}: " + "x" * size for i in range(count))


async def test_message_too_long_is_split_smaller_and_sent_once(bot: BotHarness) -> None:
    await create(bot)
    refuse_streaming(bot)
    answer = paragraphs(8)
    bot.openai.script(Text(answer, chunk=200))
    bot.slack.faults.add("chat.postMessage", error="msg_too_long")
    event = await ask(bot, "write a lot")
    text = assert_clean_end(bot, event)
    assert squash(text) == squash(answer)
    assert len(bot.slack.bot_messages("D1", event["ts"])) >= 2


async def test_message_too_long_forever_gives_up_after_a_bounded_number_of_tries(
    bot: BotHarness,
) -> None:
    await create(bot)
    refuse_streaming(bot)
    bot.openai.script(Text(paragraphs(8), chunk=200))
    bot.slack.faults.add("chat.postMessage", error="msg_too_long", times=None)
    event = await ask(bot, "write a lot")
    assert len(bot.slack.calls_to("chat.postMessage")) <= 12
    assert thread(bot, event) == ""
    assert status_calls(bot, event)[-1] == ""


# --- uploads -----------------------------------------------------------------------------------


async def test_upload_answering_408_after_it_worked_appears_once_without_error(
    bot: BotHarness,
) -> None:
    await create(bot)
    bot.slack.faults.add(upload_408=True)
    bot.openai.script(CodeInterpreterChart("Here it is", filename="msft.png"))
    event = await ask(bot, "chart MSFT")
    text = assert_clean_end(bot, event)
    assert ":warning:" not in text
    assert [(u.filename, u.channel, u.thread_ts) for u in bot.slack.uploads] == [
        ("msft.png", "D1", event["ts"])
    ]
    assert bot.slack.uploads[0].bytes.startswith(b"\x89PNG")
    assert bot.slack.pending_uploads == {}


async def test_upload_that_never_lands_is_posted_again_once(bot: BotHarness) -> None:
    await create(bot)
    bot.slack.faults.add("upload", status=408)  # not stored this time
    bot.openai.script(CodeInterpreterChart("Here it is", filename="msft.png"))
    event = await ask(bot, "chart MSFT")
    text = assert_clean_end(bot, event)
    assert ":warning:" not in text
    assert [u.filename for u in bot.slack.uploads] == ["msft.png"]
    assert len(bot.slack.calls_to("upload")) == 2


async def test_upload_that_keeps_failing_is_one_clear_note(bot: BotHarness) -> None:
    await create(bot)
    bot.slack.faults.add("upload", status=500, times=None)
    bot.openai.script(CodeInterpreterChart("Here it is", filename="msft.png"))
    event = await ask(bot, "chart MSFT")
    text = assert_clean_end(bot, event, error="could not upload")
    assert "Here it is" in text
    assert bot.slack.uploads == []
    assert len(bot.slack.calls_to("upload")) <= 6
