"""Per-user limits: configurable, friendly when reached, per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commander.quotas import LimitReached, Quotas
from commander.settings import Limits, MiB, normalise_database_url
from commander.store.db import Database
from tests.conftest import start_bot
from tests.fakes.slack_events import message_im

T, A, B = "T1", "UA", "UB"


async def test_turn_window_slides_with_the_clock(database_url: str) -> None:
    db = Database(normalise_database_url(database_url))
    await db.migrate()
    now = [datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
    quotas = Quotas(Limits(turns_per_minute=2), db, clock=lambda: now[0])
    try:
        await quotas.take_turn(T, A)
        now[0] += timedelta(seconds=10)
        await quotas.take_turn(T, A)
        with pytest.raises(LimitReached, match="wait about 51 s"):
            await quotas.take_turn(T, A)
        await quotas.take_turn(T, B)  # another person has their own budget
        now[0] += timedelta(seconds=50)
        await quotas.take_turn(T, A)  # the first turn left the window
        with pytest.raises(LimitReached, match="2 messages in the last minute"):
            await quotas.take_turn(T, A)
    finally:
        await db.close()


@pytest.fixture
async def limited(fake_openai: Any, fake_slack: Any, database_url: str):
    harness = await start_bot(
        fake_openai,
        fake_slack,
        database_url,
        TURNS_PER_MINUTE="2",
        FILES_PER_DAY="2",
        MAX_STORED_MB="1",
    )
    yield harness
    await harness.stop()


async def test_turns_a_minute(limited: Any) -> None:
    await limited.commander.create(T, A, instructions="x")
    await limited.commander.create(T, B, instructions="x")
    events = [message_im(A, f"question {i}") for i in range(3)]
    for event in events:
        await limited.send.event(event)
    other = message_im(B, "hello", channel="D2")
    await limited.send.event(other)
    await limited.idle()
    answers = [limited.slack.thread_text("D1", e["ts"]) for e in events]
    assert answers[:2] == ["You said: question 0", "You said: question 1"]
    assert "2 messages in the last minute" in answers[2]
    assert limited.slack.thread_text("D2", other["ts"]) == "You said: hello"
    posts = [r for r in limited.openai.requests if r.path == "/v1/responses"]
    assert len(posts) == 3


async def test_files_a_day_and_bytes_stored(limited: Any) -> None:
    await limited.commander.create(T, A, instructions="x")
    small = [limited.slack.add_file(f"n{i}.txt", b"notes", "text/plain", user=A) for i in range(3)]
    event = message_im(A, "", files=small)
    await limited.send.event(event)
    await limited.idle()
    thread = limited.slack.thread_text("D1", event["ts"])
    assert "Added to your assistant: `n0.txt`, `n1.txt`" in thread
    assert "Not added: `n2.txt`: you reached today's limit of 2 files" in thread

    await limited.commander.create(T, B, instructions="x")
    big = limited.slack.add_file("big.txt", b"a" * (MiB - 10), "text/plain", user=B)
    more = limited.slack.add_file("more.txt", b"b" * 100, "text/plain", user=B)
    second = message_im(B, "", channel="D2", files=[big, more])
    await limited.send.event(second)
    await limited.idle()
    thread = limited.slack.thread_text("D2", second["ts"])
    assert "Added to your assistant: `big.txt`" in thread
    assert "Not added: `more.txt`: your assistant already stores close to its 1 MB" in thread
