"""One benchmark world: fake Slack + fake OpenAI + seeded database + the real bot.

Everything talks over HTTP on 127.0.0.1. The driver sends signed Slack events into the
bot exactly as Slack would, and reads what happened from the fakes' /_fake/* routes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.procs import (
    API_KEY,
    SIGNING_SECRET,
    TEAM,
    BotConfig,
    Proc,
    seed,
    spawn_bot,
    spawn_fake_openai,
    spawn_fake_slack,
    wait_healthy,
    wait_ready,
)
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender

SENTENCE = "The quick brown fox jumps over the lazy dog while the bench counts. "


def answer_text(tokens: int, chars_per_token: int = 4) -> str:
    """A deterministic answer of `tokens` tokens of `chars_per_token` characters."""
    length = tokens * chars_per_token
    return (SENTENCE * (length // len(SENTENCE) + 1))[:length]


def text_turn(tokens: int, chars_per_delta: int = 4) -> dict[str, Any]:
    return {"type": "text", "text": answer_text(tokens), "chunk": chars_per_delta}


def tool_call_turn(symbol: str = "MSFT") -> dict[str, Any]:
    return {"type": "function_call", "name": "get_stock_price", "arguments": {"symbol": symbol}}


def user_id(n: int) -> str:
    return f"U{n:05d}"


def dm_channel(user: str) -> str:
    return f"D{user}"


@dataclass
class Sent:
    """One signed event the driver delivered, and how the bot answered it."""

    user: str
    channel: str
    ts: str
    sent_at: float
    acked_at: float = 0.0
    status: int = 0

    @property
    def ack_ms(self) -> float:
        return (self.acked_at - self.sent_at) * 1000


@dataclass
class TurnTimes:
    """What the fakes saw of one turn (wall clock, time.time())."""

    first_delta: float | None = None
    last_delta: float | None = None
    first_text: float | None = None
    stream_start: float | None = None
    stream_stop: float | None = None
    warning: bool = False


@dataclass
class Stack:
    workdir: Path
    users: list[str]
    ttft_ms: float
    tokens_per_second: float
    extra_env: dict[str, str] = field(default_factory=dict)
    program: str = "bot"
    slack: Proc | None = None
    openai: Proc | None = None
    bot: Proc | None = None
    conversations: dict[str, str] = field(default_factory=dict)
    cold_starts: list[float] = field(default_factory=list)
    _http: httpx.AsyncClient | None = None
    _sender: SlackRequestSender | None = None
    _seen_responses: set[str] = field(default_factory=set)

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.slack = spawn_fake_slack(self.workdir)
        self.openai = spawn_fake_openai(self.workdir, self.ttft_ms, self.tokens_per_second)
        await asyncio.gather(
            asyncio.to_thread(wait_ready, self.slack), asyncio.to_thread(wait_ready, self.openai)
        )
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
        self._http = httpx.AsyncClient(timeout=60.0, limits=limits)
        self.conversations = await asyncio.to_thread(
            seed, self.workdir, self.database_url, self.openai.url, self.users
        )
        await self.start_bot()
        return self

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir}/bot.db"

    def bot_config(self) -> BotConfig:
        assert self.slack and self.openai
        return BotConfig(
            self.slack.url,
            self.openai.url,
            self.database_url,
            extra_env=self.extra_env,
            program=self.program,
        )

    async def start_bot(self) -> float:
        self.bot = spawn_bot(self.bot_config(), self.workdir)
        cold = await asyncio.to_thread(wait_healthy, self.bot)
        self.cold_starts.append(cold)
        if self._sender is not None:
            await self._sender.aclose()
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
        )
        self._sender = SlackRequestSender(
            self.bot.url, SIGNING_SECRET, team_id=TEAM, transport=transport, timeout=60.0
        )
        return cold

    async def restart_bot(self) -> float:
        assert self.bot
        await asyncio.to_thread(self.bot.stop)
        return await self.start_bot()

    async def stop(self) -> None:
        if self._sender is not None:
            await self._sender.aclose()
        if self._http is not None:
            await self._http.aclose()
        for proc in (self.bot, self.slack, self.openai):
            if proc is not None:
                await asyncio.to_thread(proc.stop)

    async def __aenter__(self) -> Stack:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- driving the bot ------------------------------------------------------------------

    async def send_message(
        self, user: str, text: str, files: list[dict[str, Any]] | None = None
    ) -> Sent:
        assert self._sender is not None
        channel = dm_channel(user)
        event = message_im(user, text, channel=channel, files=files)
        sent = Sent(user, channel, event["ts"], time.time())
        response = await self._sender.event(event)
        sent.acked_at = time.time()
        sent.status = response.status_code
        return sent

    async def send_paced(self, messages: list[tuple[str, str]], rate_per_s: float) -> list[Sent]:
        """Open loop: message i leaves at i / rate, whatever the earlier ones are doing."""
        start = time.monotonic()

        async def one(i: int, user: str, text: str) -> Sent:
            delay = start + i / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            return await self.send_message(user, text)

        return list(await asyncio.gather(*(one(i, u, t) for i, (u, t) in enumerate(messages))))

    def sender_for_next(self) -> SlackRequestSender:
        assert self._sender is not None
        return self._sender

    async def send_burst(self, messages: list[tuple[str, str]]) -> list[Sent]:
        """All at once, as after a channel-wide announcement. Every request is built and
        signed first and sent through aiohttp, so that the driver (on the same cores)
        adds as little as it can to the acknowledgement times it measures."""
        ready = []
        for user, text in messages:
            sender = self.sender_for_next()
            channel = dm_channel(user)
            event = message_im(user, text, channel=channel)
            body = json.dumps(sender.envelope(event))
            headers = sender.headers_for(body, "application/json")
            ready.append((sender.url, body.encode(), headers, Sent(user, channel, event["ts"], 0)))
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def one(url: str, body: bytes, headers: dict[str, str], sent: Sent) -> Sent:
                sent.sent_at = time.time()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    sent.acked_at = time.time()
                    sent.status = response.status
                return sent

            return list(await asyncio.gather(*(one(*item) for item in ready)))

    # --- the fakes' control routes -------------------------------------------------------

    @property
    def _openai_root(self) -> str:
        assert self.openai
        return self.openai.url.removesuffix("/v1")

    @property
    def _slack_root(self) -> str:
        assert self.slack
        return self.slack.url.removesuffix("/api/")

    async def script(self, turns: list[Any]) -> None:
        assert self._http
        response = await self._http.post(f"{self._openai_root}/_fake/script", json=turns)
        response.raise_for_status()

    async def add_slack_file(self, name: str, size: int, mimetype: str) -> dict[str, Any]:
        assert self._http
        spec = {"name": name, "size": size, "mimetype": mimetype}
        response = await self._http.post(f"{self._slack_root}/_fake/files", json=spec)
        response.raise_for_status()
        return dict(response.json())

    async def slack_calls(self, method: str | None = None) -> list[dict[str, Any]]:
        assert self._http
        params = {"method": method} if method else {}
        response = await self._http.get(f"{self._slack_root}/_fake/calls", params=params)
        response.raise_for_status()
        return list(response.json()["calls"])

    async def wait_answered(self, sent: list[Sent], within_s: float) -> set[str]:
        """Wait until the bot has finished (done or failed) the job of every message.

        Reads the bot's own job table (SQLite, read-only, WAL lets it read alongside the
        bot) a few times a second: polling the fake Slack's call log instead would load
        the very server whose answer times are being measured. Returns `channel:ts` of
        the finished ones."""
        keys = {f"msg:{TEAM}:{s.channel}:{s.ts}": f"{s.channel}:{s.ts}" for s in sent}
        deadline = time.monotonic() + within_s
        done: set[str] = set()
        while time.monotonic() < deadline:
            done = await asyncio.to_thread(self._finished_jobs, list(keys))
            if len(done) >= len(keys):
                break
            await asyncio.sleep(0.2)
        return {keys[k] for k in done}

    def _finished_jobs(self, keys: list[str]) -> set[str]:
        path = self.workdir / "bot.db"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            finished: set[str] = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT dedupe_key FROM jobs WHERE status IN ('done', 'failed') "
                    f"AND dedupe_key IN ({marks})",
                    chunk,
                )
                finished.update(row[0] for row in rows)
            return finished

    async def begin_batch(self) -> None:
        """Forget the model timings so far: the next turn_times() sees only newer ones."""
        assert self._http
        timings = (await self._http.get(f"{self._openai_root}/_fake/timings")).json()
        self._seen_responses.update(timings)

    async def turn_times(self, sent: list[Sent]) -> dict[str, TurnTimes]:
        """Per message (`channel:ts`), what the fake model and the fake Slack saw.

        Model timings are per response id, and each response names its conversation:
        one per user. A user's turns run one after the other, so the user's new responses
        in order of their first delta match the user's messages in order of sending
        (function-call rounds stream no text, so they have no timings)."""
        assert self._http and self.openai
        by_key = {f"{s.channel}:{s.ts}": TurnTimes() for s in sent}
        keys_of_user: dict[str, list[str]] = {}
        for s in sorted(sent, key=lambda s: s.sent_at):
            keys_of_user.setdefault(s.user, []).append(f"{s.channel}:{s.ts}")
        user_of_conversation = {conv: user for user, conv in self.conversations.items()}
        timings = (await self._http.get(f"{self._openai_root}/_fake/timings")).json()
        fresh = [rid for rid in timings if rid not in self._seen_responses]
        self._seen_responses.update(fresh)
        gate = asyncio.Semaphore(32)
        headers = {"Authorization": f"Bearer {API_KEY}"}

        async def conversation_of(response_id: str) -> str:
            async with gate:
                r = await self._http.get(  # type: ignore[union-attr]
                    f"{self.openai.url}/responses/{response_id}",  # type: ignore[union-attr]
                    headers=headers,
                )
            return str((r.json().get("conversation") or {}).get("id"))

        conversations = await asyncio.gather(*(conversation_of(rid) for rid in fresh))
        responses_of_user: dict[str, list[dict[str, float]]] = {}
        for rid, conversation in zip(fresh, conversations, strict=True):
            user = user_of_conversation.get(conversation)
            if user is not None:
                responses_of_user.setdefault(user, []).append(timings[rid])
        for user, keys in keys_of_user.items():
            ordered = sorted(responses_of_user.get(user, []), key=lambda t: t["first_delta"])
            for key, timing in zip(keys, ordered, strict=False):
                by_key[key].first_delta = timing["first_delta"]
                by_key[key].last_delta = timing["last_delta"]
        slack_timings = (await self._http.get(f"{self._slack_root}/_fake/timings")).json()
        for key, timing in slack_timings["by_thread"].items():
            if key in by_key:
                by_key[key].first_text = timing.get("first_text_at")
        starts, stops, posts = await asyncio.gather(
            self.slack_calls("chat.startStream"),
            self.slack_calls("chat.stopStream"),
            self.slack_calls("chat.postMessage"),
        )
        thread_of: dict[tuple[str, str], str] = {}
        for c in starts:
            key = f"{c['args'].get('channel')}:{c['args'].get('thread_ts')}"
            thread_of[(c["args"].get("channel"), (c.get("response") or {}).get("ts"))] = key
            if key in by_key and by_key[key].stream_start is None:
                by_key[key].stream_start = c["at"]
        for c in stops:
            key = thread_of.get((c["args"].get("channel"), c["args"].get("ts")), "")
            if key in by_key:
                by_key[key].stream_stop = c["at"]
        for c in posts:
            key = f"{c['args'].get('channel')}:{c['args'].get('thread_ts')}"
            if key in by_key and ":warning:" in str(c["args"].get("text", "")):
                by_key[key].warning = True
        return by_key

    def bot_log_errors(self) -> list[str]:
        """Lines of the bot's logs at ERROR or above, and tracebacks."""
        found: list[str] = []
        name = self.program.rpartition(".")[2]
        for log in sorted(self.workdir.glob(f"{name}*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                    found.append(line[:300])
        return found
