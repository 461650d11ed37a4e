"""Crash tests: the real bot process (`python -m bot`, HTTP mode) is SIGKILLed in the
middle of turns, started again on the same database, and must finish every job cleanly.

A kill is made deterministic by holding each turn at its crash point (a `delay` fault on
one user's Slack call, a held model call, or a slow model) and killing once the fakes
show every turn got there; the test then checks the held calls were still unanswered
when the process died. As one real crash cuts every turn in flight, each test runs
several users' turns to different crash points, kills them with one SIGKILL and checks
one restart recovers all of them. A held Slack call is still carried out by the fake
after its delay, as Slack carries out a request whose caller died; the test waits for
that before restarting, except where it plays "Slack never got it": then the fake
answers the held call with an error, without carrying it out.

What every crash leaves behind (`assert_tidy`): each accepted message has its final
answer, every Slack stream that was started is stopped, no "is thinking…" status is
left spinning, and the user's message is in the provider's conversation exactly once.

How many complete answers (`complete_answers`) — exactly one, except:
- One duplicate when the kill falls after the whole answer had reached Slack and before
  the job recorded that (`answered`): Slack carried out the final chat.stopStream
  (which carries the last words) but the bot died before hearing back, or the bot died
  while clearing the status after it. Restarted, it cannot tell "the last words and
  the stop reached Slack" from "a stream cut short" (stopped to split a long answer, or
  expired while the bot was down), so it shows the stored answer again rather than
  risk losing it. Never more than one duplicate, and never a second model call: the
  stored answer is shown, not regenerated.
- A chart is uploaded twice in the same kind of window: Slack carried out
  files.completeUploadExternal and the bot died before hearing back. The restarted
  turn re-delivers the charts of the stored answer, and the upload path
  (`MessageJobs._upload`) does not check whether the thread already has them. A kill
  anywhere else in an upload ends with the chart uploaded once.
Everywhere else the text shown before the kill is an unfinished stream, stopped with an
"Interrupted by a restart" note, and the answer follows once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.turns import MAX_ATTEMPTS
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_steps import CodeInterpreterChart, FunctionCall, Step, tiny_png
from tests.fakes.slack_events import message_im
from tests.fakes.slack_models import Call, Message
from tests.fakes.slack_server import FakeSlack
from tests.hardening.process import BotProcess, until

T = "T1"
NOTE = "Interrupted by a restart"
CUT = "\n\n_("  # where the note on an interrupted stream begins
WORDS = " ".join(f"word{i}" for i in range(100))
HOLD_S = 2.5  # held Slack calls: long enough for every user's turn to reach its point
NEVER = {"delay": HOLD_S, "error": "fatal_error"}  # held, then dropped: Slack never got it


@pytest.fixture
async def bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> AsyncIterator[BotProcess]:
    process = BotProcess(fake_openai, fake_slack, tmp_path, database_url)
    try:
        yield process
    finally:
        await process.close()


def dm(user: str, text: str) -> dict[str, Any]:
    """A DM from `user` in their own DM channel (so every user's thread is separate)."""
    return message_im(user, text, channel=f"D{user}")


def scripted(steps_by_text: dict[str, Step]) -> Callable[[dict[str, Any]], list[Step]]:
    """A model turn chosen by the user's message; others get the fake's default answer
    ("You said: <text>", or "Tool said: <output>" after function outputs)."""

    def turn(request: dict[str, Any]) -> list[Step]:
        for item in request.get("input") or []:
            for part in item.get("content") or [] if isinstance(item, dict) else []:
                if part.get("text") in steps_by_text:
                    return [steps_by_text[part["text"]]]
        return []  # no steps: the fake answers by default

    return turn


# --- what the fakes saw -----------------------------------------------------------------


def model_calls(fake_openai: FakeOpenAI, conversation_id: str | None = None) -> list[Any]:
    return [
        r
        for r in fake_openai.requests
        if r.method == "POST"
        and r.path == "/v1/responses"
        and (conversation_id is None or (r.json or {}).get("conversation") == conversation_id)
    ]


def items(fake_openai: FakeOpenAI, conversation_id: str, kind: str) -> list[dict[str, Any]]:
    """The conversation's items of one kind: "user", "function_call", ..."""
    return [
        item
        for item in fake_openai.state.conversations[conversation_id].items
        if item.get("role", item.get("type")) == kind
    ]


def user_texts(fake_openai: FakeOpenAI, conversation_id: str) -> list[str]:
    return [
        "".join(part.get("text", "") for part in item.get("content") or [])
        for item in items(fake_openai, conversation_id, "user")
    ]


def streams(fake_slack: FakeSlack, event: dict[str, Any]) -> list[Message]:
    """The bot's streamed messages in the thread of `event`, oldest first."""
    return [m for m in fake_slack.bot_messages(event["channel"], event["ts"]) if m.streaming]


def shown(message: Message) -> str:
    """The message's answer text, without the note an interrupted stream gets."""
    return message.text.split(CUT)[0].strip()


def complete_answers(fake_slack: FakeSlack, event: dict[str, Any], answer: str) -> int:
    """How many messages show the whole answer (an interrupted stream may, too)."""
    return sum(shown(m) == answer for m in streams(fake_slack, event))


def uploads(fake_slack: FakeSlack, event: dict[str, Any]) -> list[str]:
    return [
        u.filename
        for u in fake_slack.uploads
        if (u.channel, u.thread_ts) == (event["channel"], event["ts"])
    ]


def held(fake_slack: FakeSlack, method: str, **match: Any) -> Call | None:
    """The call to `method` a delay fault is holding (or has held), if the fake got it."""
    for call in fake_slack.calls_to(method):
        if call.fault is not None and all(call.args.get(k) == v for k, v in match.items()):
            return call
    return None


def carried_out(fake_slack: FakeSlack, call: Call) -> bool:
    """Slack is done with a held call (its caller may be long dead): it carried it out,
    or, for a NEVER fault, dropped it."""
    if call.method == "upload":
        file_id = call.args["file_id"]
        pending = fake_slack.pending_uploads.get(file_id)
        return (pending is not None and pending.data is not None) or any(
            u.file_id == file_id for u in fake_slack.uploads
        )
    return call.response is not None


async def kill_at(bot: BotProcess, fake_slack: FakeSlack, ready: Callable[[], Any]) -> list[Call]:
    """SIGKILL once `ready()` returns the held calls (all there); checks none had been
    answered, so the process died inside each of them."""
    calls: list[Call] = await until(ready, "every turn to reach its crash point")
    bot.kill()
    early = [c.method for c in calls if carried_out(fake_slack, c)]
    assert early == [], f"answered before the kill (hold them longer): {early}"
    return calls


async def slack_done_with(fake_slack: FakeSlack, calls: list[Call]) -> None:
    for call in calls:
        await until(lambda c=call: carried_out(fake_slack, c), f"Slack to finish {call.method}")


async def model_idle(fake_openai: FakeOpenAI) -> None:
    """Nothing in flight at the model: held calls whose caller died were dropped, and
    streams whose caller died ran to their end (their answers landed)."""
    await asyncio.to_thread(fake_openai.wait_idle, 15)


async def restart_and_finish(bot: BotProcess) -> None:
    await bot.start()
    await until(bot.all_jobs_finished, "every job to finish")
    bot.kill()  # every job is finished: nothing is under way any more
    assert "Traceback" not in bot.logs()


def assert_tidy(fake_slack: FakeSlack, *events: dict[str, Any]) -> None:
    """No stream left open, no status left spinning."""
    for channel, messages in fake_slack.messages.items():
        open_streams = [m.ts for m in messages if m.streaming and not m.stopped]
        assert open_streams == [], f"streams left open in {channel}"
    for event in events:
        thread = fake_slack.assistant_threads.get((event["channel"], event["ts"]))
        assert thread is None or thread.status == "", f"status left on in {event['channel']}"


# --- after the acknowledgement -------------------------------------------------------------


async def test_killed_after_the_acknowledgement_each_message_is_answered_once(
    bot: BotProcess, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """Exactly once. UA's first message is held in its model call (the model drops a
    request whose caller died), its second was only acknowledged (queued behind it):
    neither reached the thread at the model or in Slack, so both simply run again.
    UE's message has crashed the bot MAX_ATTEMPTS times: it gets one short warning and
    its "is thinking…" status is cleared, though no turn runs to clear it."""
    await bot.seed_assistants(T, "UA", "UE")
    fake_openai.faults.add(path="/v1/responses", method="POST", delay=2, times=2)
    first, second, poison = dm("UA", "first question"), dm("UA", "second"), dm("UE", "boom")
    await bot.start()
    for event in (first, poison):
        assert (await bot.send.event(event)).status_code == 200
    await until(lambda: len(model_calls(fake_openai)) == 2, "both model calls to be held")
    assert (await bot.send.event(second)).status_code == 200
    jobs = {j.payload["text"]: j for j in await bot.jobs()}
    assert {text: (j.status, j.attempts) for text, j in jobs.items()} == {
        "first question": ("running", 1),
        "boom": ("running", 1),
        "second": ("queued", 0),
    }
    bot.kill()
    assert fake_slack.bot_messages("DUA") == fake_slack.bot_messages("DUE") == []
    await bot.set_attempts(jobs["boom"].id, MAX_ATTEMPTS)  # as if this was its third crash
    assert fake_slack.assistant_threads[("DUE", poison["ts"])].status == "is thinking…"

    await restart_and_finish(bot)
    await model_idle(fake_openai)  # the held calls have been dropped
    assert [m.text for m in fake_slack.bot_messages("DUA", first["ts"])] == [
        "You said: first question"
    ]
    assert [m.text for m in fake_slack.bot_messages("DUA", second["ts"])] == ["You said: second"]
    (warning,) = fake_slack.bot_messages("DUE", poison["ts"])
    assert warning.text.startswith(":warning: I could not answer this message")
    assert {j.payload["text"]: (j.status, j.attempts) for j in await bot.jobs()} == {
        "first question": ("done", 2),
        "second": ("done", 1),
        "boom": ("failed", MAX_ATTEMPTS),
    }
    ua, ue = await bot.conversation_of(T, "UA"), await bot.conversation_of(T, "UE")
    assert user_texts(fake_openai, ua) == ["first question", "second"]
    assert user_texts(fake_openai, ue) == []  # its held call was dropped; none after
    assert len(model_calls(fake_openai, ua)) == 3  # the dropped one, then one per message
    assert_tidy(fake_slack, first, second, poison)


# --- mid-answer: model streaming, Slack stream, between a function call and its output ---


async def test_killed_mid_answer_each_answer_follows_once(
    bot: BotProcess, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """Exactly once. What Slack showed before the kill is an unfinished stream; it is
    stopped with a note and the answer follows, shown from the conversation (the model
    finished it meanwhile) or, for UD, from the model once the function it had asked
    for has run again.
    - UA: the model is streaming; the first words reached Slack in a stream the job
      recorded.
    - UB: chat.startStream reached Slack, its answer (the stream's ts) never reached the
      bot: no record names that stream, so the restart finds it in the thread.
    - UC: a chat.appendStream is under way.
    - UD: the model asked for a function; it ran, its output was not sent yet (the
      append showing it done is under way): the thread ends in a call without output."""
    users = ("UA", "UB", "UC", "UD")
    await bot.seed_assistants(T, *users)
    streaming, starting, appending = (
        dm(user, f"Tell {user} a story: {WORDS}") for user in users[:3]
    )
    calling = dm("UD", "What does MSFT cost?")
    fake_openai.tokens_per_second = 50  # ~200 characters a second
    bad_symbol = FunctionCall("get_stock_price", {"symbol": "not a symbol"})
    fake_openai.script(*[scripted({calling["text"]: bad_symbol})] * 6)
    fake_slack.faults.add("chat.startStream", delay=HOLD_S, match={"channel": "DUB"})
    fake_slack.faults.add("chat.appendStream", delay=HOLD_S, match={"channel": "DUC"})
    fake_slack.faults.add("chat.appendStream", delay=HOLD_S, match={"channel": "DUD"})
    await bot.start()
    for event in (streaming, starting, appending, calling):
        assert (await bot.send.event(event)).status_code == 200

    ua = await bot.conversation_of(T, "UA")

    async def ready() -> list[Call] | None:
        job = await bot.job_of("UA")
        calls = [
            held(fake_slack, "chat.startStream", channel="DUB"),
            held(fake_slack, "chat.appendStream", channel="DUC"),
            held(fake_slack, "chat.appendStream", channel="DUD"),
        ]
        recorded = job is not None and job.progress.get("stream_ts")
        assert not fake_openai.state.conversations[ua].items, "UA's answer ended too soon"
        return calls if recorded and all(calls) else None  # type: ignore[return-value]

    calls = await kill_at(bot, fake_slack, ready)
    await slack_done_with(fake_slack, calls)
    await model_idle(fake_openai)
    fake_openai.tokens_per_second = 0
    ud = await bot.conversation_of(T, "UD")
    assert [i.get("type") for i in fake_openai.state.conversations[ud].items] == [
        "message",
        "function_call",
    ]

    await restart_and_finish(bot)
    for event in (streaming, starting, appending):
        conversation = await bot.conversation_of(T, event["user"])
        answer = "You said: " + event["text"]
        interrupted, final = streams(fake_slack, event)
        assert NOTE in interrupted.text and answer.startswith(shown(interrupted))
        assert final.text == answer
        assert complete_answers(fake_slack, event, answer) == 1
        assert len(model_calls(fake_openai, conversation)) == 1  # shown, not regenerated
        assert user_texts(fake_openai, conversation) == [event["text"]]
    interrupted, final = streams(fake_slack, calling)
    assert NOTE in interrupted.text and shown(interrupted) == ""  # only "calling…" showed
    assert final.text.startswith("Tool said: error:")
    assert len(model_calls(fake_openai, ud)) == 2  # the call, then its output after restart
    assert user_texts(fake_openai, ud) == [calling["text"]]
    assert len(items(fake_openai, ud, "function_call_output")) == 1
    assert [j.attempts for j in await bot.jobs()] == [2, 2, 2, 2]
    assert_tidy(fake_slack, streaming, starting, appending, calling)


# --- as the answer ends ------------------------------------------------------------------


async def test_killed_as_the_answer_ends_it_is_shown_at_most_twice(
    bot: BotProcess, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """SlackReply.finish appends the answer's last words, then stops the stream; the job
    records `answered` after that and after the status is cleared.
    - UA: killed during the final stop, which Slack carried out: the whole answer is in
      Slack but not recorded, so the restart shows it once more: one duplicate;
    - UB: killed during the final stop, which Slack never got: every word had arrived
      (appended), so the restart stops the stream with the note and the answer follows
      once more: one duplicate, marked as interrupted;
    - UC: killed while the status is cleared, after the stop: one duplicate.
    Never a second model call: the restart shows the answer stored in the conversation."""
    users = ("UA", "UB", "UC")
    await bot.seed_assistants(T, *users)
    stopped, unstopped, clearing = (dm(user, f"What is the answer, {user}?") for user in users)
    fake_slack.faults.add("chat.stopStream", delay=HOLD_S, match={"channel": "DUA"})
    fake_slack.faults.add("chat.stopStream", **NEVER, match={"channel": "DUB"})
    clear = {"channel_id": "DUC", "status": ""}
    fake_slack.faults.add("assistant.threads.setStatus", delay=HOLD_S, match=clear)
    await bot.start()
    for event in (stopped, unstopped, clearing):
        assert (await bot.send.event(event)).status_code == 200

    def ready() -> list[Call] | None:
        calls = [
            held(fake_slack, "chat.stopStream", channel="DUA"),
            held(fake_slack, "chat.stopStream", channel="DUB"),
            held(fake_slack, "assistant.threads.setStatus", **clear),
        ]
        return calls if all(calls) else None  # type: ignore[return-value]

    stop_a, never_b, clear_c = await kill_at(bot, fake_slack, ready)
    await slack_done_with(fake_slack, [stop_a, never_b, clear_c])
    await model_idle(fake_openai)

    await restart_and_finish(bot)
    for event, noted in ((stopped, False), (unstopped, True), (clearing, False)):
        answer = "You said: " + event["text"]
        first, again = streams(fake_slack, event)
        assert again.text == answer
        assert complete_answers(fake_slack, event, answer) == 2
        if noted:  # left open by the dead process: closed on restart, with the note
            assert NOTE in first.text and shown(first) == answer
        else:  # stopped whole by the dead process: no note
            assert first.text == answer
        conversation = await bot.conversation_of(T, event["user"])
        assert len(model_calls(fake_openai, conversation)) == 1
        assert user_texts(fake_openai, conversation) == [event["text"]]
    assert_tidy(fake_slack, stopped, unstopped, clearing)


# --- during an upload ------------------------------------------------------------------------


async def test_killed_while_uploading_a_chart_it_is_uploaded_once_or_twice_at_most(
    bot: BotProcess, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    """The chart is uploaded once, twice at most (see the module docstring):
    - UA: killed while the bytes are posted to the upload URL (Slack stores them; the
      upload is never completed): the restart uploads the stored answer's chart;
    - UB: killed during files.completeUploadExternal, which Slack carried out: the
      chart was shared, and the restart shares it again (one duplicate);
    - UC: killed during files.completeUploadExternal, which Slack never got: uploaded
      once, by the restart.
    The text is exactly-once as mid-answer. A dead process's unfinished upload stays
    pending at Slack (there is no call to withdraw one; Slack discards them)."""
    users = ("UA", "UB", "UC")
    await bot.seed_assistants(T, *users)
    events = {user: dm(user, f"Chart MSFT for {user}") for user in users}
    charts = {user: tiny_png(size, size) for user, size in zip(users, (2, 5, 6), strict=True)}
    assert len({len(png) for png in charts.values()}) == 3  # tells the uploads apart
    steps = {
        events[user]["text"]: CodeInterpreterChart("Here is your chart", "msft.png", charts[user])
        for user in users
    }
    fake_openai.script(*[scripted(steps)] * 3)
    fake_slack.faults.add("upload", delay=HOLD_S, match={"length": len(charts["UA"])})
    complete = "files.completeUploadExternal"
    fake_slack.faults.add(complete, delay=HOLD_S, match={"channel_id": "DUB"})
    fake_slack.faults.add(complete, **NEVER, match={"channel_id": "DUC"})
    await bot.start()
    for event in events.values():
        assert (await bot.send.event(event)).status_code == 200

    def ready() -> list[Call] | None:
        calls = [
            held(fake_slack, "upload", length=len(charts["UA"])),
            held(fake_slack, complete, channel_id="DUB"),
            held(fake_slack, complete, channel_id="DUC"),
        ]
        return calls if all(calls) else None  # type: ignore[return-value]

    bytes_a, complete_b, never_c = await kill_at(bot, fake_slack, ready)
    await slack_done_with(fake_slack, [bytes_a, complete_b, never_c])
    await model_idle(fake_openai)
    assert [uploads(fake_slack, events[user]) for user in users] == [[], ["msft.png"], []]

    await restart_and_finish(bot)
    assert [uploads(fake_slack, events[user]) for user in users] == [
        ["msft.png"],
        ["msft.png", "msft.png"],
        ["msft.png"],
    ]
    for user in users:
        event = events[user]
        assert all(u.bytes == charts[user] for u in fake_slack.uploads if u.channel == f"D{user}")
        interrupted, final = streams(fake_slack, event)
        assert NOTE in interrupted.text
        assert final.text == "Here is your chart\n\nmsft.png (attached)"
        conversation = await bot.conversation_of(T, user)
        assert len(model_calls(fake_openai, conversation)) == 1
        assert user_texts(fake_openai, conversation) == [event["text"]]
    assert len(fake_slack.pending_uploads) == 2  # UA's and UC's, from the dead process
    assert_tidy(fake_slack, *events.values())
    assert [j.status for j in await bot.jobs()] == ["done"] * 3
