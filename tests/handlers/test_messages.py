"""Messages end to end: signed events into the bot's HTTP endpoint, the fake Slack and
the fake OpenAI behind it, real SDK clients in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from commander.store.models import Job
from tests.conftest import BotHarness, start_bot
from tests.fakes.openai_steps import CodeInterpreterChart, FileSearch, FunctionCall, Text
from tests.fakes.slack_events import (
    app_mention,
    assistant_thread_started,
    bot_message,
    channel_message,
    message_changed,
    message_deleted,
    message_im,
)

T, A, B = "T1", "UA", "UB"


def responses(bot: BotHarness) -> list[dict[str, Any]]:
    return [r.json for r in bot.openai.requests if r.method == "POST" and r.path == "/v1/responses"]


def methods(bot: BotHarness) -> list[str]:
    return [c.method for c in bot.slack.calls]


async def create(bot: BotHarness, user: str = A, **kwargs: Any) -> Any:
    return await bot.commander.create(T, user, instructions="Be helpful.", **kwargs)


async def until(condition: Callable[[], Any], what: str) -> None:
    """Wait for a condition the system under test makes true (bounded, not a fixed sleep)."""
    for _ in range(2000):
        if await condition() if asyncio.iscoroutinefunction(condition) else condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_user_without_assistant_gets_a_hint_and_no_model_call(bot: BotHarness) -> None:
    event = message_im(A, "hello")
    response = await bot.send.event(event)
    assert response.status_code == 200
    await bot.idle()
    assert "/assistant-create" in bot.slack.thread_text("D1", event["ts"])
    assert responses(bot) == []


async def test_dm_reply_streams_into_the_thread(bot: BotHarness) -> None:
    await create(bot)
    bot.openai.script(Text("Hello there, " + "word " * 80))
    event = message_im(A, "hi")
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert text == ("Hello there, " + "word " * 80).strip() or text.startswith("Hello there")
    assert "chat.startStream" in methods(bot) and "chat.stopStream" in methods(bot)
    start = bot.slack.calls_to("chat.startStream")[0].args
    assert start["thread_ts"] == event["ts"]
    assert start["recipient_user_id"] == A and start["recipient_team_id"] == T
    # Batched: far fewer Slack calls than model deltas.
    deltas = len("Hello there, " + "word " * 80) // 4
    assert len(bot.slack.calls_to("chat.appendStream")) < deltas / 4


async def test_retries_and_double_deliveries_answer_once(bot: BotHarness) -> None:
    await create(bot)
    event = message_im(A, "only once")
    first = await bot.send.event(event, event_id="Ev1")
    retry = await bot.send.event(event, event_id="Ev1", retry_num=1, retry_reason="http_timeout")
    again = await bot.send.event(event, event_id="Ev1", retry_num=2, retry_reason="http_error")
    assert {first.status_code, retry.status_code, again.status_code} == {200}
    mention = app_mention(A, "<@UBOT> twice", channel="C1")
    await bot.send.event(mention, event_id="Ev2")
    await bot.send.event(
        channel_message(A, mention["text"], "C1", ts=mention["ts"]), event_id="Ev3"
    )
    await bot.idle()
    assert len(responses(bot)) == 2
    assert len(bot.slack.calls_to("chat.startStream")) == 2


async def test_ignores_own_bots_edits_and_deletions(bot: BotHarness) -> None:
    await create(bot)
    original = message_im(A, "hi")
    events = [
        bot_message("from a bot", channel="D1"),
        {**message_im("UBOT", "my own words")},
        message_changed("D1", original["ts"], "edited", A),
        message_deleted("D1", original["ts"], A),
    ]
    for event in events:
        assert (await bot.send.event(event)).status_code == 200
    await bot.idle()
    assert responses(bot) == []
    assert [m for m in methods(bot) if m.startswith("chat.")] == []


async def test_mention_replies_in_thread_and_follow_ups_reach_each_authors_assistant(
    bot: BotHarness,
) -> None:
    a = await create(bot, A)
    b = await create(bot, B)
    mention = app_mention(A, "<@UBOT> what is up?", channel="C1")
    await bot.send.event(mention)
    await bot.idle()
    root = mention["ts"]
    assert bot.slack.thread_text("C1", root) == "You said: what is up?"

    await bot.send.event(channel_message(A, "and more?", "C1", thread_ts=root))
    await bot.send.event(channel_message(B, "me too", "C1", thread_ts=root))
    await bot.send.event(channel_message(B, "not a bot thread", "C1", thread_ts="1.000001"))
    await bot.send.event(channel_message(A, "plain channel chatter", "C1"))
    await bot.idle()
    # A's and B's turns run side by side: only each person's own order is promised.
    said = [(r["conversation"], r["input"][0]["content"][0]["text"]) for r in responses(bot)]
    assert [text for conv, text in said if conv == a.conversation_id] == [
        "what is up?",
        "and more?",
    ]
    assert [text for conv, text in said if conv == b.conversation_id] == ["me too"]
    assert len(said) == 3
    starts = bot.slack.calls_to("chat.startStream")
    assert sorted(s.args["recipient_user_id"] for s in starts) == sorted([A, A, B])


async def test_shared_channel_users_from_another_workspace_are_kept_apart(
    bot: BotHarness,
) -> None:
    await create(bot, A)
    mention = app_mention(A, "<@UBOT> hi", channel="C1", team="T9")
    await bot.send.event(mention)
    await bot.idle()
    # UA of workspace T9 is not UA of T1: no assistant, so only a private hint.
    assert responses(bot) == []
    hint = bot.slack.calls_to("chat.postEphemeral")[0].args
    assert hint["user"] == A and "/assistant-create" in hint["text"]


async def test_files_are_streamed_from_slack_and_added(bot: BotHarness) -> None:
    await create(bot)
    pdf = bot.slack.add_file("report.pdf", b"%PDF-1.7 report", "application/pdf", user=A)
    exe = bot.slack.add_file("tool.exe", b"MZ", "application/octet-stream", user=A)
    foreign = {**bot.slack.add_file("x.txt", b"hi", "text/plain", user=A)}
    foreign["url_private_download"] = "https://evil.example.com/steal"
    event = message_im(A, "summarise the report", files=[pdf, exe, foreign])
    bot.openai.script(FileSearch("It says hi.", filename="report.pdf"))
    await bot.send.event(event)
    await bot.idle()
    thread = bot.slack.thread_text("D1", event["ts"])
    assert "Added to your assistant: `report.pdf`" in thread
    assert "Not added: `tool.exe`" in thread
    assert "outside Slack" in thread
    assert "Sources: report.pdf" in thread
    downloads = bot.slack.calls_to("download")
    assert downloads and all(c.token == bot.slack.state.identity.bot_token for c in downloads)
    status = await bot.commander.status(T, A)
    assert [f.original_name for f in status.files] == ["report.pdf"]
    turn_text = responses(bot)[0]["input"][0]["content"][0]["text"]
    assert "report.pdf" in turn_text


async def test_a_login_page_instead_of_a_file_is_refused(bot: BotHarness) -> None:
    await create(bot)
    login = web.Application()

    async def login_page(_request: web.Request) -> web.Response:
        return web.Response(text="<html>Sign in</html>", content_type="text/html")

    login.router.add_get("/{name}", login_page)
    runner = web.AppRunner(login)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        file = bot.slack.add_file("notes.txt", b"notes", "text/plain", user=A)
        file["url_private_download"] = f"http://127.0.0.1:{port}/notes.txt"
        event = message_im(A, "", files=[file])
        await bot.send.event(event)
        await bot.idle()
    finally:
        await runner.cleanup()
    thread = bot.slack.thread_text("D1", event["ts"])
    assert "Not added: `notes.txt`" in thread and "login page" in thread
    assert (await bot.commander.status(T, A)).files == []
    assert responses(bot) == []


async def test_charts_are_uploaded_into_the_thread(bot: BotHarness) -> None:
    await create(bot)
    bot.openai.script(CodeInterpreterChart("Here it is", filename="msft.png"))
    event = message_im(A, "chart MSFT")
    await bot.send.event(event)
    await bot.idle()
    uploads = bot.slack.uploads
    assert [(u.filename, u.channel, u.thread_ts) for u in uploads] == [
        ("msft.png", "D1", event["ts"])
    ]
    assert uploads[0].bytes.startswith(b"\x89PNG")
    assert "sandbox:" not in bot.slack.thread_text("D1", event["ts"])


async def test_tool_progress_is_shown_as_task_updates(bot: BotHarness) -> None:
    await create(bot)
    bot.openai.script(FunctionCall("get_stock_price", {"symbol": "MSFT"}))
    await bot.send.event(message_im(A, "price of MSFT?"))
    await bot.idle()
    chunks = [
        chunk
        for call in bot.slack.calls
        if call.method in ("chat.startStream", "chat.appendStream")
        for chunk in call.args.get("chunks") or []
    ]
    tasks = [(c["title"], c["status"]) for c in chunks if c["type"] == "task_update"]
    assert ("Calling get_stock_price", "in_progress") in tasks
    assert ("Calling get_stock_price", "complete") in tasks


async def test_refused_streaming_falls_back_to_messages(bot: BotHarness) -> None:
    await create(bot)
    bot.slack.faults.add("chat.startStream", error="not_allowed_token_type", times=None)
    event = message_im(A, "hello")
    await bot.send.event(event)
    await bot.idle()
    posted = bot.slack.calls_to("chat.postMessage")
    assert posted and posted[-1].args["blocks"][0]["text"] == "You said: hello"


async def test_long_answers_are_split_within_limits(bot: BotHarness) -> None:
    await create(bot)
    long_text = ("A fairly long sentence that goes on. " * 50 + "\n\n") * 20
    bot.openai.script(Text(long_text, chunk=500))
    event = message_im(A, "write a lot")
    await bot.send.event(event)
    await bot.idle()
    streams = bot.slack.bot_messages("D1", event["ts"])
    assert len(streams) >= 2
    assert all(len(m.text) <= 12_000 for m in streams)
    assert "".join(m.text for m in streams).replace("\n", "") == long_text.replace("\n", "")


async def test_provider_failure_is_one_short_sentence(bot: BotHarness) -> None:
    await create(bot)
    bot.commander.retry_base_s = 0
    bot.openai.faults.add(path="/v1/responses", method="POST", status=500, times=10)
    event = message_im(A, "hello")
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert text.startswith(":warning:") and "Traceback" not in text
    assert text.count("\n") == 0


async def test_assistant_pane_prompts_status_and_title(bot: BotHarness) -> None:
    await create(bot)
    started = assistant_thread_started(A, "D1")
    thread_ts = started["assistant_thread"]["thread_ts"]
    await bot.send.event(started)
    await bot.idle()
    assert bot.slack.calls_to("assistant.threads.setSuggestedPrompts")
    await bot.send.event(message_im(A, "Plan my week please", thread_ts=thread_ts))
    await bot.idle()
    thread = bot.slack.assistant_threads[("D1", thread_ts)]
    assert thread.title == "Plan my week please"
    assert "is thinking…" in thread.status_history
    assert thread.status == ""


async def test_restart_in_the_middle_of_a_turn_resumes_and_closes_the_stream(
    fake_openai: Any, fake_slack: Any, database_url: str
) -> None:
    first = await start_bot(fake_openai, fake_slack, database_url)
    await create(first)
    # Every call after the first words hangs: the process dies with the stream open.
    fake_slack.faults.add("chat.appendStream", delay=60, times=None)
    fake_slack.faults.add("chat.stopStream", delay=60, times=None)
    fake_openai.script(Text("First words then a lot more text " * 20, chunk=8))
    event = message_im(A, "tell me a story")
    await first.send.event(event)

    async def stream_recorded() -> bool:
        async with first.commander.db.session() as session:
            job = (await session.execute(select(Job))).scalar_one()
            return bool(job.progress.get("stream_ts"))

    conversation = fake_openai.state.conversations[
        (await first.commander.require(T, A)).conversation_id
    ]
    await until(stream_recorded, "the stream to start")
    await until(lambda: len(conversation.items) == 2, "the model to finish its answer")
    await first.stop()  # the process goes away mid-turn
    fake_slack.faults.clear()

    second = await start_bot(fake_openai, fake_slack, database_url)
    try:
        await second.idle()
        messages = fake_slack.bot_messages("D1", event["ts"])
        assert len(messages) == 2
        assert all(m.stopped for m in messages), [(m.ts, m.stopped, m.text[:60]) for m in messages]
        assert "Interrupted by a restart" in messages[0].text
        # The answer the model already gave is shown again, not generated twice.
        assert messages[1].text.strip() == ("First words then a lot more text " * 20).strip()
        assert len(responses(second)) == 1
        assert [i.get("role") for i in conversation.items].count("user") == 1
        async with second.commander.db.session() as session:
            job = (await session.execute(select(Job))).scalar_one()
        assert job.status == "done" and job.attempts == 2
    finally:
        await second.stop()


async def test_model_text_cannot_ping_the_channel(bot: BotHarness) -> None:
    await create(bot)
    bot.openai.script(Text("Hey <!channel> and <!here|here>, also <!subteam^S1>", chunk=1))
    mention = app_mention(A, "<@UBOT> announce it", channel="C1")
    await bot.send.event(mention)
    await bot.idle()
    text = bot.slack.thread_text("C1", mention["ts"])
    assert "Hey" in text and "channel>" in text
    assert "<!" not in text
