"""Database faults: concurrent writers wait their turn; a read-only database fails
loudly, refuses new messages (so Slack redelivers them) and loses no accepted job.

All three are about SQLite's file: its permissions on disk and its single write lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from commander.store.models import Job
from tests.conftest import SIGNING_SECRET, start_bot
from tests.fakes.openai_steps import Text
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender
from tests.hardening.process import until
from tests.test_bot_process import bot_env, free_port, wait_for, wait_healthy

T, A = "T1", "UA"
READ_ONLY_FILE = "a read-only disk is a property of SQLite's database file"


def _set_immutable(folder: Path, on: bool) -> None:
    """Make the database folder and files immutable: even root cannot write them."""
    paths = [folder, *folder.glob("commander.db*")]
    subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder for the database that the test can turn read-only, like a failing disk."""
    if os.geteuid() != 0:
        pytest.skip("making files immutable needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        yield disk
    finally:
        _set_immutable(disk, False)


async def jobs_of(harness: Any) -> list[Job]:
    async with harness.commander.db.session() as session:
        return list((await session.execute(select(Job).order_by(Job.id))).scalars())


def on_disk(folder: Path) -> str:
    return f"sqlite:///{folder}/commander.db"


@pytest.mark.sqlite_only(READ_ONLY_FILE)
async def test_read_only_database_refuses_new_messages_and_loses_none(
    fake_openai: Any, fake_slack: Any, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await start_bot(fake_openai, fake_slack, on_disk(small_disk))
    try:
        await harness.commander.create(T, A, instructions="x")
        before = message_im(A, "before")
        assert (await harness.send.event(before)).status_code == 200
        await harness.idle()

        _set_immutable(small_disk, True)
        during = message_im(A, "during")
        with caplog.at_level(logging.ERROR):
            refused = await harness.send.event(during, event_id="EvRO")
        assert refused.status_code >= 500  # Slack will deliver it again
        assert "could not store" in caplog.text
        await harness.idle()
        assert fake_slack.thread_text("D1", during["ts"]) == ""

        _set_immutable(small_disk, False)
        retried = await harness.send.event(
            during, event_id="EvRO", retry_num=1, retry_reason="http_error"
        )
        assert retried.status_code == 200
        await harness.idle()
        assert fake_slack.thread_text("D1", before["ts"]) == "You said: before"
        assert fake_slack.thread_text("D1", during["ts"]) == "You said: during"
        assert [j.status for j in await jobs_of(harness)] == ["done", "done"]
    finally:
        _set_immutable(small_disk, False)
        await harness.stop()


@pytest.mark.sqlite_only(READ_ONLY_FILE)
async def test_job_accepted_before_the_disk_failed_is_answered_after_restart(
    fake_openai: Any, fake_slack: Any, small_disk: Path
) -> None:
    """The disk turns read-only mid-turn and the process dies (SQLite in WAL mode may
    even take it down with SIGBUS); the accepted message is answered after the restart."""
    seeded = await start_bot(fake_openai, fake_slack, on_disk(small_disk))
    await seeded.commander.create(T, A, instructions="x")
    await seeded.stop()
    fake_openai.faults.add(path="/v1/responses", method="POST", delay=60)
    env = bot_env(fake_openai, fake_slack, on_disk(small_disk), free_port())
    env["JOB_LEASE_SECONDS"] = "1"  # the dead process's hold on the job lasts this long
    url = f"http://127.0.0.1:{env['PORT']}"
    first = subprocess.Popen(  # noqa: ASYNC220 - the bot under test is a child process
        [sys.executable, "-m", "bot"], env=env, cwd=small_disk.parent
    )
    try:
        await wait_healthy(first, url)
        event = message_im(A, "accepted")
        async with SlackRequestSender(url, SIGNING_SECRET) as send:
            assert (await send.event(event)).status_code == 200
        await wait_for(
            lambda: any(r.path == "/v1/responses" for r in fake_openai.requests), "the model call"
        )
        _set_immutable(small_disk, True)
        first.kill()
    finally:
        first.kill()
        first.wait(timeout=30)
    fake_openai.faults.clear()
    _set_immutable(small_disk, False)

    second = await start_bot(fake_openai, fake_slack, on_disk(small_disk), JOB_POLL_SECONDS="0.1")
    try:
        answered = "You said: accepted"
        await until(lambda: fake_slack.thread_text("D1", event["ts"]) == answered, "the answer")
        await second.idle()
        assert [j.status for j in await jobs_of(second)] == ["done"]
    finally:
        await second.stop()


@pytest.mark.sqlite_only(
    "one write lock for the whole file is SQLite's; PostgreSQL writers lock rows, and "
    "the multi-instance tests cover their concurrency"
)
async def test_concurrent_writers_wait_instead_of_failing(
    fake_openai: Any, fake_slack: Any, database_url: str
) -> None:
    harness = await start_bot(fake_openai, fake_slack, database_url)
    try:
        users = [f"U{i}" for i in range(12)]
        for user in users:
            await harness.commander.create(T, user, instructions="x")
        fake_openai.script(*[Text("ok") for _ in users])
        stop = threading.Event()

        def hammer() -> int:
            """Another writer on the same file, in its own thread, as fast as it can."""
            other = sqlite3.connect(str(make_url(database_url).database), timeout=30)
            other.execute("CREATE TABLE IF NOT EXISTS noise (n INTEGER)")
            writes = 0
            while not stop.is_set():
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO noise VALUES (1)")
                other.commit()
                writes += 1
                time.sleep(0.001)  # a busy neighbour, not a lock held forever
            other.close()
            return writes

        noise = asyncio.create_task(asyncio.to_thread(hammer))
        events = [message_im(u, f"hi {u}", channel=f"D{u}") for u in users]
        answers = await asyncio.gather(*(harness.send.event(e) for e in events))
        await harness.idle()
        stop.set()
        assert await noise > 0
        assert [r.status_code for r in answers] == [200] * len(users)
        for event in events:
            assert fake_slack.thread_text(event["channel"], event["ts"]) == "ok"
    finally:
        await harness.stop()
