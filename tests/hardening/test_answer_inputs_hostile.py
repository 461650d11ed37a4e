"""Hostile image inputs: not an image, a huge image, 50 images in one message. Each is
refused per file with its reason, and the rest of the message is still answered."""

from __future__ import annotations

from tests.conftest import BotHarness
from tests.fakes.openai_steps import SeeInputs, tiny_png
from tests.fakes.slack_events import message_im
from tests.handlers.test_messages import create, responses

T, A = "T1", "UA"


def image_parts(bot: BotHarness) -> list[dict]:
    body = responses(bot)[-1]
    return [
        p
        for item in body["input"]
        if item.get("role") == "user"
        for p in item["content"]
        if p["type"] == "input_image"
    ]


async def test_an_image_that_is_not_an_image_is_refused_and_the_rest_answered(
    bot: BotHarness,
) -> None:
    await create(bot)
    fake = bot.slack.add_file("cat.png", b"MZ\x90\x00 definitely an exe", "image/png", user=A)
    real = bot.slack.add_file("real.png", tiny_png(4, 4), "image/png", user=A)
    bot.openai.script(SeeInputs())
    event = message_im(A, "what are these?", files=[fake, real])
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert "Not shown to the model: `cat.png`: its content does not look like a .png file" in text
    assert "I see: a 4x4 png image" in text
    assert len(image_parts(bot)) == 1
    names = [f.original_name for f in (await bot.commander.status(T, A)).files]  # type: ignore[union-attr]
    assert names == ["real.png"]  # the fake one is not added for the tools either


async def test_a_huge_image_is_refused_without_downloading_it_whole(bot: BotHarness) -> None:
    await create(bot)
    huge = bot.slack.add_file("huge.png", None, "image/png", user=A, size=21 * 1024 * 1024)
    event = message_im(A, "look", files=[huge])
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert "`huge.png`: it is larger than the 20 MB the model takes" in text
    assert "You said: look" in text
    assert image_parts(bot) == []


async def test_fifty_images_in_one_message(bot: BotHarness) -> None:
    await create(bot)
    files = [
        bot.slack.add_file(f"shot{i}.png", tiny_png(1, 1 + i), "image/png", user=A)
        for i in range(50)
    ]
    event = message_im(A, "compare them", files=files)
    await bot.send.event(event)
    await bot.idle()
    text = bot.slack.thread_text("D1", event["ts"])
    assert len(image_parts(bot)) == 10
    assert text.count("at most 10 images go to the model in one message") == 40
    assert "You said: compare them" in text  # answered all the same
