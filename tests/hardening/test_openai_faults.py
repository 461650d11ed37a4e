"""The bot against a failing OpenAI: every turn ends in the answer or in one clear error,
no status keeps spinning, no stream stays open, and the user's message never lands twice.

End to end: signed Slack events into the bot, the real SDKs over HTTP against the fakes.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from openai import AsyncOpenAI

import commander.turn as turn_module
from tests.conftest import API_KEY, BotHarness, start_bot
from tests.fakes.openai_steps import CodeInterpreterChart, ErrorEvent, Fail, Incomplete, Text
from tests.hardening.fault_checks import (
    A,
    T,
    ask,
    assert_clean_end,
    create,
    response_posts,
    user_texts,
)

RESPONSES = {"path": "/v1/responses", "method": "POST"}


# --- HTTP errors on responses.create ------------------------------------------------------


@pytest.mark.parametrize("retry_after", [0.3, None], ids=["retry-after", "no-retry-after"])
async def test_rate_limit_is_waited_out_and_answered_once(
    bot: BotHarness, retry_after: float | None
) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(**RESPONSES, status=429, retry_after=retry_after)
    started = time.monotonic()
    event = await ask(bot, "hello")
    elapsed = time.monotonic() - started
    assert_clean_end(
        bot, event, answer="You said: hello", conversation_id=assistant.conversation_id
    )
    assert len(response_posts(bot)) == 2
    assert user_texts(bot, assistant.conversation_id) == ["hello"]
    if retry_after is not None:
        assert elapsed >= retry_after  # the server's Retry-After was honoured


async def test_persistent_rate_limit_ends_in_one_clear_error(bot: BotHarness) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(**RESPONSES, status=429, retry_after=0, times=10)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, error="busy", conversation_id=assistant.conversation_id)
    assert len(response_posts(bot)) == 3  # bounded
    assert user_texts(bot, assistant.conversation_id) == []


async def test_rate_limit_asking_for_minutes_is_one_clear_error_at_once(bot: BotHarness) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(**RESPONSES, status=429, retry_after=120)
    started = time.monotonic()
    event = await ask(bot, "hello")
    assert time.monotonic() - started < 5  # no pointless wait
    assert_clean_end(bot, event, error="busy", conversation_id=assistant.conversation_id)
    assert len(response_posts(bot)) == 1


@pytest.mark.parametrize("status", [408, 500, 503])
async def test_server_error_is_retried_and_answered_once(bot: BotHarness, status: int) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(**RESPONSES, status=status)
    event = await ask(bot, "hello")
    assert_clean_end(
        bot, event, answer="You said: hello", conversation_id=assistant.conversation_id
    )
    assert user_texts(bot, assistant.conversation_id) == ["hello"]


@pytest.mark.parametrize("status", [500, 503])
async def test_persistent_server_error_ends_in_one_clear_error(
    bot: BotHarness, status: int
) -> None:
    assistant = await create(bot)
    bot.openai.faults.add(**RESPONSES, status=status, times=10)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, error="unavailable", conversation_id=assistant.conversation_id)
    assert len(response_posts(bot)) == 3
    # The next message is answered normally.
    bot.openai.faults.clear()
    again = await ask(bot, "still there?")
    assert_clean_end(bot, again, answer="You said: still there?")
    assert user_texts(bot, assistant.conversation_id) == ["still there?"]


# --- timeouts and connection failures ---------------------------------------------------------


@pytest.fixture
async def impatient(fake_openai: Any, fake_slack: Any, database_url: str):
    """The bot with a 0.5 s OpenAI client timeout."""
    harness = await start_bot(fake_openai, fake_slack, database_url, openai_timeout=0.5)
    yield harness
    await harness.stop()


async def test_read_timeout_is_retried_without_sending_the_message_twice(
    impatient: BotHarness,
) -> None:
    assistant = await create(impatient)
    impatient.openai.faults.add(**RESPONSES, delay=1.5)
    event = await ask(impatient, "hello")
    assert_clean_end(
        impatient, event, answer="You said: hello", conversation_id=assistant.conversation_id
    )
    assert len(response_posts(impatient)) == 2
    assert user_texts(impatient, assistant.conversation_id) == ["hello"]


async def test_persistent_read_timeout_ends_in_one_clear_error(impatient: BotHarness) -> None:
    assistant = await create(impatient)
    impatient.openai.faults.add(**RESPONSES, delay=1.5, times=3)
    event = await ask(impatient, "hello")
    assert_clean_end(
        impatient, event, error="unavailable", conversation_id=assistant.conversation_id
    )
    assert len(response_posts(impatient)) == 3
    assert user_texts(impatient, assistant.conversation_id) == []


async def test_stalled_stream_shows_the_answer_the_model_finished_anyway(
    impatient: BotHarness,
) -> None:
    """The stream stalls past the read timeout after the response was created; the model
    keeps going server-side, so the bot waits for that response instead of asking again
    (asking again would put the message into the conversation twice)."""
    assistant = await create(impatient)
    impatient.openai.ttft_ms = 1000  # first delta later than the 0.5 s read timeout
    event = await ask(impatient, "hello")
    impatient.openai.ttft_ms = 0
    assert_clean_end(
        impatient, event, answer="You said: hello", conversation_id=assistant.conversation_id
    )
    assert len(response_posts(impatient)) == 1
    assert user_texts(impatient, assistant.conversation_id) == ["hello"]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def unreachable(bot: BotHarness) -> tuple[Any, Any]:
    """Points the bot's OpenAI client at a closed port; returns what to restore."""
    backend = bot.commander.backend
    saved = backend.client, backend.turn_client
    closed = AsyncOpenAI(base_url=closed_port_url(), api_key=API_KEY, max_retries=2)
    backend.client, backend.turn_client = closed, closed.with_options(max_retries=0)
    return saved


async def test_unreachable_provider_ends_in_one_clear_error_and_recovers(
    bot: BotHarness,
) -> None:
    assistant = await create(bot)
    saved = unreachable(bot)
    started = time.monotonic()
    event = await ask(bot, "hello")
    assert time.monotonic() - started < 2  # no read-back of a provider that is not there
    assert_clean_end(bot, event, error="unavailable", conversation_id=assistant.conversation_id)
    backend = bot.commander.backend
    backend.client, backend.turn_client = saved
    again = await ask(bot, "and now?")
    assert_clean_end(bot, again, answer="You said: and now?")
    assert user_texts(bot, assistant.conversation_id) == ["and now?"]


# --- broken streams and failed responses -------------------------------------------------------


async def test_stream_cut_mid_answer_keeps_the_words_and_adds_one_error(bot: BotHarness) -> None:
    assistant = await create(bot)
    bot.openai.script(Text("One two three four five six seven eight nine ten.", chunk=5))
    bot.openai.faults.add(cut_after_deltas=3)
    event = await ask(bot, "count")
    text = assert_clean_end(
        bot, event, error="broke mid-answer", conversation_id=assistant.conversation_id
    )
    assert text.startswith("One two three")
    assert len(response_posts(bot)) == 1  # shown words are never generated twice
    again = await ask(bot, "count again")
    assert_clean_end(bot, again, answer="You said: count again")
    assert user_texts(bot, assistant.conversation_id) == ["count again"]


async def test_stream_cut_before_any_words_is_not_asked_again_while_it_may_land(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model accepted the message and its response is still "in progress" when the
    bounded wait ends: asking again could add the message twice, so the turn ends in one
    error, and the next message is answered normally."""
    monkeypatch.setattr(turn_module, "RECOVER_WAIT_S", 0.3)
    assistant = await create(bot)
    bot.openai.faults.add(cut_after_deltas=0)
    event = await ask(bot, "hello")
    assert_clean_end(bot, event, error="broke", conversation_id=assistant.conversation_id)
    assert len(response_posts(bot)) == 1
    again = await ask(bot, "hello again")
    assert_clean_end(bot, again, answer="You said: hello again")
    assert user_texts(bot, assistant.conversation_id) == ["hello again"]


async def test_stream_cut_of_a_response_that_still_landed_shows_it_without_asking_again(
    bot: BotHarness,
) -> None:
    assistant = await create(bot)
    bot.openai.script(Text("The stored answer."))
    bot.openai.faults.add(cut_after_deltas=0, finish_after_cut=True)
    event = await ask(bot, "hello")
    assert_clean_end(
        bot, event, answer="The stored answer.", conversation_id=assistant.conversation_id
    )
    assert len(response_posts(bot)) == 1
    assert user_texts(bot, assistant.conversation_id) == ["hello"]
    roles = [i.get("role") for i in bot.openai.state.conversations[assistant.conversation_id].items]
    assert roles == ["user", "assistant"]


@pytest.mark.parametrize("step", [Fail(), ErrorEvent()], ids=["response.failed", "error-event"])
async def test_failed_response_ends_in_one_clear_error(bot: BotHarness, step: Any) -> None:
    assistant = await create(bot)
    bot.openai.script([Text("Partial words"), step])
    event = await ask(bot, "hello")
    text = assert_clean_end(
        bot, event, error="could not finish", conversation_id=assistant.conversation_id
    )
    assert text.startswith("Partial words")
    assert len(response_posts(bot)) == 1
    again = await ask(bot, "again")
    assert_clean_end(bot, again, answer="You said: again")
    assert user_texts(bot, assistant.conversation_id).count("again") == 1


async def test_incomplete_response_is_shown_with_a_note(bot: BotHarness) -> None:
    assistant = await create(bot)
    bot.openai.script(Incomplete(reason="max_output_tokens", text="Half an answer"))
    event = await ask(bot, "hello")
    text = assert_clean_end(bot, event, conversation_id=assistant.conversation_id)
    assert text.startswith("Half an answer")
    assert "cut short: max output tokens" in text
    assert ":warning:" not in text
    assert user_texts(bot, assistant.conversation_id) == ["hello"]


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500], ids=["expired-container", "server-error"])
async def test_failed_chart_download_is_a_note_and_the_answer_still_arrives(
    bot: BotHarness, status: int
) -> None:
    await create(bot)
    bot.openai.faults.add(path="/v1/containers/*", status=status, times=3, retry_after=0.01)
    bot.openai.script(CodeInterpreterChart("Here is your chart", filename="msft.png"))
    event = await ask(bot, "chart MSFT")
    text = assert_clean_end(bot, event)
    assert "Here is your chart" in text
    assert "msft.png could not be retrieved" in text
    assert bot.slack.uploads == []


async def test_chart_download_that_fails_once_is_retried_and_uploaded_once(
    bot: BotHarness,
) -> None:
    await create(bot)
    bot.openai.faults.add(path="/v1/containers/*", status=500, retry_after=0.01)
    bot.openai.script(CodeInterpreterChart("Here is your chart", filename="msft.png"))
    event = await ask(bot, "chart MSFT")
    text = assert_clean_end(bot, event)
    assert "could not be retrieved" not in text
    assert [u.filename for u in bot.slack.uploads] == ["msft.png"]


async def test_file_that_fails_indexing_is_reported_and_the_question_still_answered(
    bot: BotHarness,
) -> None:
    assistant = await create(bot, tools=["file_search"])
    pdf = bot.slack.add_file("scan.pdf", b"%PDF-1.7 scanned", "application/pdf", user=A)
    bot.openai.faults.add(vector_store_file_fails=True, message="bad pdf", code="invalid_file")
    event = await ask(bot, "what is in it?", files=[pdf])
    text = assert_clean_end(bot, event, conversation_id=assistant.conversation_id)
    assert "Not added: `scan.pdf`: the file could not be indexed for search." in text
    assert "You said: what is in it?" in text
    assert text.count(":warning:") == 0
    status = await bot.commander.status(T, A)
    assert status.files == []
    # The provider copy of the file that could not be indexed is not left behind.
    assert bot.openai.state.files == {}
