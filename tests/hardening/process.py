"""`python -m bot` as a real child process against the in-test fakes: start it, send it
signed Slack requests, SIGKILL it at a chosen moment, start it again on the same database.

    bot = BotProcess(fake_openai, fake_slack, tmp_path, database_url)
    await bot.seed_assistants("T1", "UA")    # written straight into the bot's database
    await bot.start()
    await bot.send.event(message_im("UA", "hi"))
    await until(lambda: fake_slack.calls_to("chat.startStream"), "the first words")
    bot.kill()                               # SIGKILL: no clean-up code runs
    await bot.start()                        # same DATABASE_URL: unfinished jobs resume
    await bot.stop()                         # SIGTERM; asserts a clean exit

Each run logs to `tmp_path/bot-<n>.log`; `bot.logs()` returns them all. The test reads
the bot's database (SQLite or PostgreSQL) through its own engine: `await bot.jobs()`.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from commander.runtime import open_commander
from commander.settings import load_core_settings, normalise_database_url
from commander.store.db import Database
from commander.store.models import Assistant, Job
from tests.conftest import SIGNING_SECRET, core_env, openai_client
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack
from tests.test_bot_process import bot_env, free_port, wait_healthy

POLL_S = 0.01
LEASE_S = 2
DEFAULT_TIMEOUT_S = 20.0


async def until(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    what: str,
    limit_s: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """Poll a condition the system under test makes true; bounded, never a fixed sleep.

    Returns the condition's first truthy value."""
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


@dataclass
class JobRow:
    id: int
    user_id: str
    status: str
    attempts: int
    progress: dict[str, Any]
    payload: dict[str, Any]
    error: str | None


class BotProcess:
    """One bot installation (database, settings); each `start()` is a new process."""

    def __init__(
        self, fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
    ) -> None:
        self.fake_openai = fake_openai
        self.fake_slack = fake_slack
        self.tmp_path = tmp_path
        self.database_url = database_url
        self._db: Database | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.send = SlackRequestSender("http://127.0.0.1:1", SIGNING_SECRET)
        self.runs = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def seed_assistants(self, team_id: str, *user_ids: str) -> None:
        """Create the users' assistants in the bot's database (migrating it) before a start."""
        settings = load_core_settings(core_env(self.fake_openai, self.database_url))
        async with open_commander(settings, client=openai_client(self.fake_openai)) as core:
            for user_id in user_ids:
                await core.create(team_id, user_id, instructions="Be helpful.")

    async def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        port = free_port()
        env = bot_env(self.fake_openai, self.fake_slack, self.database_url, port)
        # A killed run's jobs keep their lease until it expires: the restart takes them
        # over after LEASE_S (in production JOB_LEASE_SECONDS, 30 s by default).
        env.update(JOB_LEASE_SECONDS=str(LEASE_S), JOB_POLL_SECONDS="0.1")
        self.runs += 1
        log = (self.tmp_path / f"bot-{self.runs}.log").open("wb")
        try:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - the bot under test
                [sys.executable, "-m", "bot"],
                cwd=self.tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.url = f"http://127.0.0.1:{port}"
        await self.send.aclose()
        self.send = SlackRequestSender(self.url, SIGNING_SECRET)
        await wait_healthy(self.process, self.url)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost host would: no clean-up runs."""
        assert self.process is not None and self.process.poll() is None, "not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        """SIGTERM and a clean exit."""
        await self.send.aclose()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, 30)
        assert code == 0, f"bot exited with {code}:\n{self.logs()}"

    async def close(self) -> None:
        """For `finally`: whatever state the process is in, leave none behind."""
        await self.send.aclose()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._db is not None:
            await self._db.close()
            self._db = None

    def logs(self) -> str:
        return "\n".join(
            (self.tmp_path / f"bot-{n}.log").read_text(errors="replace")
            for n in range(1, self.runs + 1)
        )

    # --- the database, as the test sees it ----------------------------------------------

    @property
    def db(self) -> Database:
        """The bot's database, through an engine of the test's own (closed by `close()`)."""
        if self._db is None:
            self._db = Database(normalise_database_url(self.database_url))
        return self._db

    async def jobs(self) -> list[JobRow]:
        """The job rows, oldest first; none before the bot has migrated the database."""
        try:
            async with self.db.session() as session:
                jobs = (await session.execute(select(Job).order_by(Job.id))).scalars().all()
        except DBAPIError as exc:
            if "jobs" not in str(exc.orig):  # anything but "no such table: jobs"
                raise
            return []
        return [
            JobRow(j.id, j.user_id, j.status, j.attempts, j.progress or {}, j.payload, j.error)
            for j in jobs
        ]

    async def job_of(self, user_id: str) -> JobRow | None:
        """The user's newest job."""
        jobs = [j for j in await self.jobs() if j.user_id == user_id]
        return jobs[-1] if jobs else None

    async def set_attempts(self, job_id: int, attempts: int) -> None:
        """Only while no bot runs: as if the job had been started `attempts` times."""
        assert self.process is None or self.process.poll() is not None
        async with self.db.transaction() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(attempts=attempts))

    async def all_jobs_finished(self) -> bool:
        jobs = await self.jobs()
        return bool(jobs) and all(j.status in ("done", "failed") for j in jobs)

    async def conversation_of(self, team_id: str, user_id: str) -> str:
        """The provider conversation of the user's assistant."""
        async with self.db.session() as session:
            conversation_id = (
                await session.execute(
                    select(Assistant.conversation_id).where(
                        Assistant.team_id == team_id, Assistant.user_id == user_id
                    )
                )
            ).scalar_one()
        return str(conversation_id)
