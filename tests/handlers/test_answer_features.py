"""Images and PDFs as model input, web search with links, feedback and its report, stop,
and the model allowlist: end to end through the real SDKs against the fakes."""

from __future__ import annotations

import io
import threading
from typing import Any

from slack_sdk.models.blocks import Block, ContextActionsBlock, FeedbackButtonsElement
from sqlalchemy import select

from commander.cli import run as cli_run
from commander.store.answer_models import Answer, FeedbackVote
from handlers import ids
from tests.conftest import BotHarness, core_env, start_bot
from tests.fakes.openai_media import simple_pdf
from tests.fakes.openai_steps import Gate, SeeInputs, Text, WebSearch, tiny_png
from tests.fakes.slack_events import channel_message, message_im
from tests.handlers.test_messages import create, responses, until

T, A, B = "T1", "UA", "UB"


def user_parts(bot: BotHarness, index: int = -1) -> list[dict[str, Any]]:
    body = responses(bot)[index]
    return [p for item in body["input"] if item.get("role") == "user" for p in item["content"]]


def feedback_blocks(bot: BotHarness) -> list[dict[str, Any]]:
    stops = [c.args.get("blocks") or [] for c in bot.slack.calls_to("chat.stopStream")]
    posts = [c.args.get("blocks") or [] for c in bot.slack.calls_to("chat.postMessage")]
    return [b for blocks in stops + posts for b in blocks if b.get("type") == "context_actions"]


async def test_image_dm_reaches_the_model_as_image_input_and_stays_in_the_thread(
    bot: BotHarness,
) -> None:
    await create(bot)
    shot = bot.slack.add_file("screenshot.png", tiny_png(3, 5), "image/png", user=A)
    bot.openai.script(SeeInputs("The screenshot shows "))
    event = message_im(A, "what is wrong here?", files=[shot])
    await bot.send.event(event)
    await bot.idle()
    assert "The screenshot shows a 3x5 png image" in bot.slack.thread_text("D1", event["ts"])
    kinds = [p["type"] for p in user_parts(bot)]
    assert kinds == ["input_text", "input_image"]
    # Code interpreter is on: the image is there for it too, as before.
    status = await bot.commander.status(T, A)
    assert status is not None and [f.original_name for f in status.files] == ["screenshot.png"]
    # Later: "compare with the screenshot above" — the conversation has it, no new upload.
    bot.openai.script(SeeInputs("Earlier you sent "))
    later = message_im(A, "compare with the screenshot above", thread_ts=event["ts"])
    await bot.send.event(later)
    await bot.idle()
    assert [p["type"] for p in user_parts(bot)] == ["input_text"]
    assert "Earlier you sent a 3x5 png image" in bot.slack.thread_text("D1", event["ts"])


async def test_pdf_is_answered_from_its_content_and_indexed(bot: BotHarness) -> None:
    await create(bot)
    pdf = bot.slack.add_file("q3.pdf", simple_pdf("Revenue rose 7 percent"), "application/pdf")
    bot.openai.script(SeeInputs("From the report: "))
    event = message_im(A, "what does the report say?", files=[pdf])
    await bot.send.event(event)
    await bot.idle()
    assert "q3.pdf saying: Revenue rose 7 percent" in bot.slack.thread_text("D1", event["ts"])
    assert "input_file" in [p["type"] for p in user_parts(bot)]
    status = await bot.commander.status(T, A)
    assert status is not None and "file_search" in status.files[0].attached_to


async def test_web_search_cites_links_in_a_sources_footer(bot: BotHarness) -> None:
    await create(bot, tools=["web_search"])
    bot.openai.script(WebSearch("Rain today.", (("Weather | today", "https://w.example/t"),)))
    event = message_im(A, "weather?")
    await bot.send.event(event)
    await bot.idle()
    assert {"type": "web_search"} in responses(bot)[-1]["tools"]
    text = bot.slack.thread_text("D1", event["ts"])
    assert "_Sources: <https://w.example/t|Weather ¦ today>_" in text


async def test_endpoint_without_web_search_turns_it_off_once(bot: BotHarness) -> None:
    await create(bot, tools=["web_search"])
    bot.openai.faults.add(
        path="/v1/responses", status=400, message="The tool web_search is not supported."
    )
    event = message_im(A, "hello")
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert text.count("Web search is not available") == 1 and "You said: hello" in text
    assert "web_search" not in (await bot.commander.require(T, A)).tools


async def test_every_answer_ends_with_feedback_buttons_and_votes_are_reported(
    bot: BotHarness, database_url: str
) -> None:
    await create(bot)
    event = message_im(A, "hi")
    await bot.send.event(event)
    await bot.idle()
    [block] = feedback_blocks(bot)
    parsed = Block.parse(block)
    assert isinstance(parsed, ContextActionsBlock)
    parsed.validate_json()
    [element] = parsed.elements
    assert isinstance(element, FeedbackButtonsElement)
    up = element.positive_button.to_dict()["value"]
    down = element.negative_button.to_dict()["value"]
    await bot.send.block_action(A, ids.FEEDBACK, up, action_type="feedback_buttons")
    await bot.send.block_action(B, ids.FEEDBACK, up, action_type="feedback_buttons")
    await bot.send.block_action(A, ids.FEEDBACK, down, action_type="feedback_buttons")  # last wins
    await bot.idle()
    [modal] = [c.args["view"] for c in bot.slack.calls_to("views.open")]
    assert modal["callback_id"] == ids.FEEDBACK_MODAL
    values = {
        ids.FEEDBACK_COMMENT_BLOCK: {"value": {"type": "plain_text_input", "value": "Too vague"}}
    }
    await bot.send.view_submission(A, ids.FEEDBACK_MODAL, values, modal["private_metadata"])
    await bot.idle()
    async with bot.commander.db.session() as session:
        votes = {
            (v.voter_user, v.vote, v.comment)
            for v in (await session.execute(select(FeedbackVote))).scalars()
        }
        answer = (await session.execute(select(Answer))).scalar_one()
    assert votes == {(A, "down", "Too vague"), (B, "up", None)}  # B voted on A's answer
    out = io.StringIO()
    env = core_env(bot.openai, database_url)
    import os

    old = dict(os.environ)
    os.environ.update(env)
    try:
        assert await cli_run(["feedback"], out) == 0
        csv_out = io.StringIO()
        assert await cli_run(["feedback", "--since", "2000-01-01", "--csv"], csv_out) == 0
    finally:
        os.environ.clear()
        os.environ.update(old)
    report = out.getvalue()
    assert "1\t1" in report and "Too vague" in report and answer.response_id in report
    assert "hi" not in report.replace("this", "")  # no message text
    assert "negative" in csv_out.getvalue()


async def test_author_stops_a_streaming_answer_and_the_next_message_works(
    bot: BotHarness,
) -> None:
    await create(bot)
    gate = threading.Event()
    bot.openai.script([Text("Partial words here. "), Gate(gate), Text("never shown")])
    event = message_im(A, "tell me a long story")
    await bot.send.event(event)
    await until(lambda: "Partial words" in bot.slack.thread_text("D1", event["ts"]), "partial")
    # The author's "stop", received like any message (by whichever instance gets it).
    await bot.send.event(message_im(A, "stop", thread_ts=event["ts"]))
    await until(lambda: bool(bot.openai.client_left), "the model call to be cancelled")
    await bot.idle()
    gate.set()
    text = bot.slack.thread_text("D1", event["ts"])
    assert "_(Stopped.)_" in text and "never shown" not in text
    assert feedback_blocks(bot)
    bot.openai.script(Text("Fine again."))
    after = message_im(A, "next")
    await bot.send.event(after)
    await bot.idle()
    assert "Fine again." in bot.slack.thread_text("D1", after["ts"])
    async with bot.commander.db.session() as session:
        statuses = [a.status for a in (await session.execute(select(Answer))).scalars()]
    assert sorted(statuses) == ["answered", "stopped"]


async def test_stop_by_another_user_is_refused_politely(bot: BotHarness) -> None:
    await create(bot)
    gate = threading.Event()
    bot.openai.script([Text("Working on it. "), Gate(gate), Text("Done.")])
    mention = channel_message(A, "<@UBOT> long task", "C1")
    await bot.send.event({**mention, "type": "app_mention"})
    await until(lambda: "Working on it" in bot.slack.thread_text("C1", mention["ts"]), "text")
    await bot.send.event(channel_message(B, "stop", "C1", thread_ts=mention["ts"]))
    await until(
        lambda: any(c.args.get("user") == B for c in bot.slack.calls_to("chat.postEphemeral")),
        "the refusal",
    )
    gate.set()
    await bot.idle()
    assert not bot.openai.client_left
    assert "Done." in bot.slack.thread_text("C1", mention["ts"])
    [note] = [c.args for c in bot.slack.calls_to("chat.postEphemeral") if c.args.get("user") == B]
    assert "only its author can stop it" in note["text"]


async def test_model_allowlist_picks_stores_and_refuses(
    fake_openai: Any, fake_slack: Any, database_url: str
) -> None:
    harness = await start_bot(
        fake_openai, fake_slack, database_url, ALLOWED_MODELS="gpt-5.5,gpt-4.1,my-deploy+reasoning"
    )
    try:
        commander = harness.commander
        default = await commander.create(T, A, instructions="x")
        assert default.model == "gpt-5.5"
        other = await commander.create(
            T, B, instructions="x", model="my-deploy", reasoning_effort="high"
        )
        assert (other.model, other.reasoning_effort) == ("my-deploy", "high")
        await harness.send.event(message_im(B, "hi", channel="D2"))
        await harness.idle()
        assert responses(harness)[-1]["model"] == "my-deploy"
        assert responses(harness)[-1]["reasoning"] == {"effort": "high"}
        # A model outside the list, from a forged form: refused with the list.
        values = {
            ids.INSTRUCTIONS_BLOCK: {"value": {"type": "plain_text_input", "value": "x"}},
            ids.MODEL_BLOCK: {
                "value": {"type": "static_select", "selected_option": {"value": "gpt-9-secret"}}
            },
        }
        reply = await harness.send.view_submission("UC", ids.CREATE_MODAL, values)
        assert "not offered" in reply.json()["errors"][ids.MODEL_BLOCK]
        assert await commander.get(T, "UC") is None
        # App Home: switching model drops an effort the new model does not take.
        await harness.send.block_action(
            B,
            ids.HOME_MODEL,
            "gpt-4.1",
            action_type="static_select",
            view={"id": "VHOME", "type": "home"},
        )
        await harness.idle()
        changed = await commander.require(T, B)
        assert (changed.model, changed.reasoning_effort) == ("gpt-4.1", None)
    finally:
        await harness.stop()
