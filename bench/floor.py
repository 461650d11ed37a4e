"""`python -m bench.floor`: the bare-I/O floor the bot is measured against.

A plain aiohttp program doing the I/O of one turn and nothing else, configured like the
bot (SLACK_*, OPENAI_*, DATABASE_URL, PORT): it checks the Slack signature, stores the
message durably before the acknowledgement, reads the person's conversation, streams
the model's answer (decoding every SSE event), makes 5 Slack calls (status, start,
append, stop, status cleared) and 5 durable writes per turn (insert, claim, stream ts,
answered, done), one person's turns one after the other. No framework, no ORM, no
retries, no guarantees beyond "written before acknowledged": what the bot costs above
this is the price of everything else.

SQLite through the standard library's sqlite3 on one thread (WAL, synchronous=FULL, as
durable as the bot's), with group commit: the writes that arrive while a commit is under
way go together in the next transaction. PostgreSQL through asyncpg. It writes the bot's
own `jobs` table, so the benchmark's "answered?" query works unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

INSERT = (
    "INSERT INTO jobs (dedupe_key, team_id, user_id, kind, payload, status, attempts, progress,"
    " lease_token, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
    " ON CONFLICT (dedupe_key) DO NOTHING"
)
SET_STATUS = "UPDATE jobs SET status = {}, updated_at = {} WHERE dedupe_key = {}"
SET_PROGRESS = "UPDATE jobs SET progress = {}, updated_at = {} WHERE dedupe_key = {}"
CONVERSATION = "SELECT conversation_id FROM assistants WHERE team_id = {} AND user_id = {}"


class Store:
    """Durable writes: one sqlite3 connection on one thread, or an asyncpg pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self._pool: Any = None
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1)
        self._pending: list[tuple[str, tuple[Any, ...], asyncio.Future[int]]] = []
        self._flushing = False

    async def open(self) -> None:
        if self.sqlite:
            path = self.url.split(":///", 1)[1]

            def connect() -> sqlite3.Connection:
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA busy_timeout=10000")
                return db

            self._db = await self._run(connect)
        else:
            import asyncpg

            dsn = self.url.replace("postgresql+asyncpg://", "postgresql://")
            self._pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _sql(self, template: str, count: int) -> str:
        marks = ["?"] * count if self.sqlite else [f"${n + 1}" for n in range(count)]
        return template.format(*marks)

    async def execute(self, template: str, *args: Any) -> str:
        sql = self._sql(template, len(args))
        if self.sqlite:
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending.append((sql, args, done))
            if not self._flushing:
                self._flushing = True
                asyncio.get_running_loop().create_task(self._flush())
            return str(await done)
        return str(await self._pool.execute(sql, *args))

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    counts = await self._run(self._commit, [(sql, a) for sql, a, _ in batch])
                except sqlite3.Error as exc:
                    for _, _, done in batch:
                        done.set_exception(exc)
                    continue
                for (_, _, done), rows in zip(batch, counts, strict=True):
                    done.set_result(rows)
        finally:
            self._flushing = False

    def _commit(self, batch: list[tuple[str, tuple[Any, ...]]]) -> list[int]:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            counts = [self._db.execute(sql, args).rowcount for sql, args in batch]
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return counts

    async def value(self, template: str, *args: Any) -> Any:
        sql = self._sql(template, len(args))
        if self.sqlite:
            assert self._db is not None
            db = self._db
            row = await self._run(lambda: db.execute(sql, args).fetchone())
            return row[0] if row else None
        return await self._pool.fetchval(sql, *args)

    def now(self) -> Any:
        moment = datetime.now(UTC)
        return moment.isoformat(" ") if self.sqlite else moment

    def json(self, value: Any) -> Any:
        return json.dumps(value)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._db is not None:
            await self._run(self._db.close)
        self._thread.shutdown()


class Floor:
    def __init__(self, env: dict[str, str]) -> None:
        self.secret = env["SLACK_SIGNING_SECRET"].encode()
        self.slack = env["SLACK_API_URL"].rstrip("/") + "/"
        self.openai = env["OPENAI_BASE_URL"].rstrip("/")
        self.slack_headers = {"Authorization": f"Bearer {env['SLACK_BOT_TOKEN']}"}
        self.openai_headers = {"Authorization": f"Bearer {env['OPENAI_API_KEY']}"}
        self.store = Store(env["DATABASE_URL"])
        self.http: aiohttp.ClientSession | None = None
        self.queues: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.workers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def start(self, _app: web.Application) -> None:
        await self.store.open()
        connector = aiohttp.TCPConnector(limit=0)
        self.http = aiohttp.ClientSession(connector=connector)

    async def stop(self, _app: web.Application) -> None:
        for task in self.workers.values():
            task.cancel()
        await asyncio.gather(*self.workers.values(), return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        await self.store.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def events(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        base = b"v0:" + stamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401)
        envelope = json.loads(body)
        event = envelope.get("event") or {}
        team, user, channel = envelope.get("team_id"), event.get("user"), event.get("channel")
        if event.get("type") != "message" or not (team and user and channel):
            return web.Response()
        key = f"msg:{team}:{channel}:{event['ts']}"
        s = self.store
        now = s.now()
        payload = s.json({"channel": channel, "ts": event["ts"], "text": event.get("text", "")})
        await s.execute(INSERT, key, team, user, "message", payload, "queued", 0, "{}", 0, now, now)
        person = (team, user)
        self.queues[person].append({"key": key, **event})
        if person not in self.workers:
            self.workers[person] = asyncio.create_task(self.drain(person))
        return web.Response()

    async def drain(self, person: tuple[str, str]) -> None:
        try:
            while self.queues[person]:
                await self.turn(person, self.queues[person].pop(0))
        finally:
            self.workers.pop(person, None)

    async def slack_call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.post(
            self.slack + method, json=args, headers=self.slack_headers
        ) as response:
            return dict(await response.json())

    async def turn(self, person: tuple[str, str], event: dict[str, Any]) -> None:
        assert self.http is not None
        s, key, channel, ts = self.store, event["key"], event["channel"], event["ts"]
        await s.execute(SET_STATUS, "running", s.now(), key)
        conversation = await s.value(CONVERSATION, *person)
        status = {"channel_id": channel, "thread_ts": ts}
        await self.slack_call("assistant.threads.setStatus", {**status, "status": "thinking…"})
        request = {
            "model": "gpt-4.1-mini",
            "input": [{"role": "user", "content": event.get("text", "")}],
            "stream": True,
        }
        if conversation:
            request["conversation"] = conversation
        text: list[str] = []
        stream_ts: str | None = None
        appended = 0
        async with self.http.post(
            f"{self.openai}/responses", json=request, headers=self.openai_headers
        ) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = json.loads(line[6:])
                if data.get("type") != "response.output_text.delta":
                    continue
                text.append(data["delta"])
                if stream_ts is None:
                    started = await self.slack_call(
                        "chat.startStream",
                        {"channel": channel, "thread_ts": ts, "markdown_text": "".join(text)},
                    )
                    stream_ts = started.get("ts")
                    appended = len(text)
                    await s.execute(SET_PROGRESS, s.json({"stream_ts": stream_ts}), s.now(), key)
                elif len(text) - appended >= 20:
                    chunk = "".join(text[appended:])
                    appended = len(text)
                    await self.slack_call(
                        "chat.appendStream",
                        {"channel": channel, "ts": stream_ts, "markdown_text": chunk},
                    )
        await s.execute(SET_PROGRESS, s.json({"answered": True}), s.now(), key)
        if stream_ts is not None:
            rest = "".join(text[appended:])
            await self.slack_call(
                "chat.stopStream", {"channel": channel, "ts": stream_ts, "markdown_text": rest}
            )
        await self.slack_call("assistant.threads.setStatus", {**status, "status": ""})
        await s.execute(SET_STATUS, "done", s.now(), key)


def main() -> None:
    env = dict(os.environ)
    floor = Floor(env)
    app = web.Application()
    app.router.add_get("/healthz", floor.healthz)
    app.router.add_post("/slack/events", floor.events)
    app.on_startup.append(floor.start)
    app.on_cleanup.append(floor.stop)
    try:  # the bot runs on uvloop too (bot/main.py)
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    web.run_app(
        app,
        host=env.get("HOST", "127.0.0.1"),
        port=int(env["PORT"]),
        print=None,
        access_log=None,
        loop=loop,
    )


if __name__ == "__main__":
    main()
