"""Several real `python -m bot` processes (HTTP mode) on one PostgreSQL database, with the
in-test fake Slack and fake OpenAI behind them, and deliveries spread over them as a load
balancer (or Slack's own retries) would.

    cluster = Cluster(fake_openai, fake_slack, tmp_path, database_url, size=3)
    await cluster.seed_assistants("T1", "UA")   # migrates the database, creates assistants
    await cluster.start()                       # all instances at once, until healthy
    await cluster.deliver(dm("UA", "hi"))      # round-robin over the live instances
    cluster.kill(1)                             # SIGKILL: no clean-up runs
    await cluster.restart(1)                    # same DATABASE_URL, a new port
    await cluster.stop(0)                       # SIGTERM; asserts a clean exit

Each run of instance i logs to `tmp_path/bot<i>-<run>.log`; `cluster.logs()` returns them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from commander.runtime import open_commander
from commander.settings import load_core_settings
from tests.conftest import SIGNING_SECRET, TEAM, core_env, openai_client
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_requests import JSON, SlackRequestSender
from tests.fakes.slack_server import FakeSlack
from tests.handlers.test_actions import press_ephemeral
from tests.hardening.process import until
from tests.test_bot_process import bot_env, free_port, wait_healthy

LEASE_S = 3  # JOB_LEASE_SECONDS of every instance: a dead one's jobs move after this
POLL_S = 1  # JOB_POLL_SECONDS: the fallback when a NOTIFY is missed
STOP_TIMEOUT_S = 30


class Instance:
    """One bot instance; each `start()` is a new process on a new port."""

    def __init__(self, index: int, env: dict[str, str], folder: Path) -> None:
        self.index = index
        self.env = env
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.runs = 0
        self.in_rotation = False  # the load balancer sends it deliveries

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        assert not self.alive, f"instance {self.index} is already running"
        port = free_port()
        self.runs += 1
        log = (self.folder / f"bot{self.index}-{self.runs}.log").open("wb")
        try:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - the bot under test
                [sys.executable, "-m", "bot"],
                cwd=self.folder,
                env={**self.env, "PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(self.process, self.url)  # type: ignore[arg-type]
        except AssertionError as exc:
            raise AssertionError(f"instance {self.index}: {exc}\n{self.logs()}") from None
        self.in_rotation = True

    def kill(self) -> None:
        assert self.alive, f"instance {self.index} is not running"
        self.in_rotation = False
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a replica: it must exit 0 in bounded time."""
        self.in_rotation = False
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"instance {self.index} still running {STOP_TIMEOUT_S} s after SIGTERM"
            ) from None
        assert code == 0, f"instance {self.index} exited with {code}:\n{self.logs()}"

    def close(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- bot{self.index} run {n} ---\n"
            + (self.folder / f"bot{self.index}-{n}.log").read_text(errors="replace")
            for n in range(1, self.runs + 1)
        )


class Cluster:
    """`size` instances sharing one DATABASE_URL; see the module docstring."""

    def __init__(
        self,
        fake_openai: FakeOpenAI,
        fake_slack: FakeSlack,
        folder: Path,
        database_url: str,
        *,
        size: int = 3,
        **extra_env: str,
    ) -> None:
        self.fake_openai, self.fake_slack = fake_openai, fake_slack
        self.database_url = database_url
        self.extra_env = extra_env
        env = {
            **bot_env(fake_openai, fake_slack, database_url, 0),
            "DATABASE_URL": database_url,
            "JOB_LEASE_SECONDS": str(LEASE_S),
            "JOB_POLL_SECONDS": str(POLL_S),
            **extra_env,
        }
        self.instances = [Instance(i, env, folder) for i in range(size)]
        # One signer: it only signs bodies; where they go is chosen per delivery.
        self.signer = SlackRequestSender("http://127.0.0.1:1", SIGNING_SECRET, team_id=TEAM)
        self._client = httpx.AsyncClient(timeout=30)
        self._next = 0
        self._db: asyncpg.Connection | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def seed_assistants(self, team_id: str, *user_ids: str) -> None:
        """Migrate the database and create the users' assistants, before any start."""
        env = {**core_env(self.fake_openai, self.database_url), **self.extra_env}
        env["DATABASE_URL"] = self.database_url
        settings = load_core_settings(env)
        async with open_commander(settings, client=openai_client(self.fake_openai)) as core:
            for user_id in user_ids:
                await core.create(team_id, user_id, instructions="Be helpful.")

    async def start(self, *indices: int) -> None:
        """Start the given instances (all by default) at the same moment."""
        chosen = indices or tuple(range(len(self.instances)))
        await asyncio.gather(*(self.instances[i].start() for i in chosen))

    async def restart(self, index: int) -> None:
        await self.instances[index].start()

    def kill(self, index: int) -> None:
        self.instances[index].kill()

    async def stop(self, index: int) -> None:
        await self.instances[index].stop()

    async def close(self) -> None:
        for instance in self.instances:
            instance.close()
        await self._client.aclose()
        await self.signer.aclose()
        if self._db is not None:
            await self._db.close()

    def logs(self) -> str:
        return "\n".join(instance.logs() for instance in self.instances)

    # --- deliveries ---------------------------------------------------------------------

    def next_instance(self, avoid: int | None = None) -> Instance:
        """Round-robin over the instances in rotation (skipping `avoid`)."""
        for _ in range(len(self.instances)):
            instance = self.instances[self._next % len(self.instances)]
            self._next += 1
            if instance.in_rotation and instance.index != avoid:
                return instance
        raise AssertionError("no instance is in rotation")

    async def post(
        self,
        instance: Instance,
        body: str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**self.signer.headers_for(body, content_type), **(headers or {})}
        return await self._client.post(
            f"{instance.url}/slack/events", content=body.encode(), headers=sent
        )

    def envelope(self, event: dict[str, Any]) -> str:
        """The event_callback body Slack sends (and re-sends, byte for byte, on a retry)."""
        return json.dumps(self.signer.envelope(event))

    async def deliver(
        self, event: dict[str, Any], *, to: int | None = None, body: str | None = None
    ) -> Instance:
        """Deliver an event to the next instance (or instance `to`); asserts the 200."""
        instance = self.instances[to] if to is not None else self.next_instance()
        response = await self.post(instance, body or self.envelope(event), JSON)
        assert response.status_code == 200, f"bot{instance.index}: {response.status_code}"
        return instance

    async def retry(self, body: str, number: int, *, avoid: int) -> Instance:
        """Slack's retry of an unacknowledged delivery: the same body, retry headers, and
        (behind a load balancer) most likely another instance."""
        instance = self.next_instance(avoid=avoid)
        headers = {"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": "http_timeout"}
        response = await self.post(instance, body, JSON, headers)
        assert response.status_code == 200, f"bot{instance.index}: {response.status_code}"
        return instance

    async def command(
        self, command: str, text: str, user_id: str, response_url: str, *, to: int | None = None
    ) -> httpx.Response:
        """A slash command, through the round-robin (or to instance `to`)."""
        instance = self.instances[to] if to is not None else self.next_instance()
        sender = SlackRequestSender(instance.url, SIGNING_SECRET, team_id=TEAM)
        async with sender:
            return await sender.command(command, text, user_id, "C1", response_url=response_url)

    async def press(
        self, user_id: str, action_id: str, value: str, key: str, *, to: int
    ) -> httpx.Response:
        """A button in an ephemeral message the bot posted through a response_url (the
        fake Slack's `key`), pressed and delivered to instance `to`."""
        sender = SlackRequestSender(self.instances[to].url, SIGNING_SECRET, team_id=TEAM)
        async with sender:
            pressing = SimpleNamespace(send=sender, slack=self.fake_slack)
            return await press_ephemeral(pressing, user_id, action_id, value, key)

    # --- who is doing what ----------------------------------------------------------------

    def owner_of_port(self, port: int) -> Instance | None:
        """The live instance holding the local TCP port `port` (a client connection)."""
        inodes = _socket_inodes_by_local_port().get(port, set())
        for instance in self.instances:
            if instance.alive and inodes & _socket_inodes_of(instance.pid):
                return instance
        return None

    # --- the shared database, as the test sees it -----------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """A query on the shared database, through the test's own connection."""
        if self._db is None:
            url = make_url(self.database_url)
            self._db = await asyncpg.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                user=url.username or "postgres",
                password=url.password,
                database=url.database,
                timeout=10,
            )
        return list(await self._db.fetch(sql, *args))

    async def unfinished_jobs(self) -> list[asyncpg.Record]:
        try:
            return await self.fetch(
                "SELECT * FROM jobs WHERE status NOT IN ('done', 'failed') ORDER BY id"
            )
        except asyncpg.UndefinedTableError:
            return []

    async def settle(self, limit_s: float = 30) -> None:
        """Wait until no job is queued or running and nothing is in flight at the model."""
        try:
            await until(self._no_unfinished_jobs, "every job to finish", limit_s)
        except AssertionError as exc:
            jobs = [dict(row) for row in await self.unfinished_jobs()]
            raise AssertionError(f"{exc}; unfinished: {jobs}\n{self.logs()[-6000:]}") from None
        await asyncio.to_thread(self.fake_openai.wait_idle, limit_s)

    async def _no_unfinished_jobs(self) -> bool:
        return not await self.unfinished_jobs()

    async def conversation_of(self, team_id: str, user_id: str) -> str | None:
        rows = await self.fetch(
            "SELECT conversation_id FROM assistants WHERE team_id = $1 AND user_id = $2",
            team_id,
            user_id,
        )
        return str(rows[0]["conversation_id"]) if rows else None


def _socket_inodes_by_local_port() -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                found.setdefault(port, set()).add(fields[9])
    return found


def _socket_inodes_of(pid: int) -> set[str]:
    inodes = set()
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            target = os.readlink(f"{folder}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes
