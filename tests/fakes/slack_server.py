"""A faithful local fake of the Slack Web API, served over real HTTP (aiohttp).

Point the official client at it; nothing in slack_sdk is patched::

    slack = FakeSlack(bot_token="xoxb-test", team_id="T1", bot_user_id="UBOT", bot_id="BBOT")
    slack.start()                       # 127.0.0.1, port 0 (or port=...), own thread + loop
    client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
    ...
    slack.stop()                        # or: with FakeSlack() as slack: ...

What it answers (HTTP 200 ``{"ok": true, ...}``, or ``{"ok": false, "error": ...}``):
auth.test, chat.postMessage / postEphemeral / update / delete, chat.startStream /
appendStream / stopStream, assistant.threads.setStatus / setSuggestedPrompts /
setTitle, views.open / push / publish / update, users.info, conversations.info /
replies / history, reactions.add / remove, files.info, files.getUploadURLExternal,
the upload URL itself, files.completeUploadExternal. Anything else: ``unknown_method``.

Rules it enforces, as Slack does: a token (``Authorization: Bearer`` or a ``token``
field) on every method (``not_authed`` / ``invalid_auth``); ``no_text``; text over
``msg_too_long_at`` (default 4,000) -> ``msg_too_long``; ``markdown_text`` (and each
markdown chunk) over 12,000 -> ``msg_too_long``; block limits -> ``invalid_blocks``;
startStream needs ``thread_ts`` and, outside DMs (ids not starting with "D"),
``recipient_user_id`` / ``recipient_team_id`` (``missing_recipient_*``);
append/stop on a closed, expired (``stream_lifetime`` seconds, default off) or
non-stream message -> ``message_not_in_streaming_state``; after
``stop_stream_by_user()`` -> ``stopped_by_user``; mixing ``markdown_text`` and
``chunks`` in one stream -> ``streaming_mode_mismatch``; both in one append/stop
-> ``cannot_provide_both_markdown_text_and_chunks``; a response URL takes 5 posts.

Files: ``add_file(name, content, mimetype)`` (or ``size=``/``generator=`` for big,
lazily generated content) returns the Slack file object; GET on its
``url_private(_download)`` serves the bytes only with ``Authorization: Bearer
<bot token>``; otherwise it answers 200 with an HTML login page (text/html), the
trap real Slack sets. ``files_upload_v2`` works end to end; completed uploads
land in ``slack.uploads`` (channel, thread_ts, title, filename, bytes) and become
downloadable; bytes posted but not completed stay in ``slack.pending_uploads``.

Faults (each fires ``times`` times; ``times=None`` = always; ``match={...}``
restricts to calls whose args contain those values; method "*" = any API method;
pseudo-methods "upload", "download", "response_url" name the other endpoints)::

    slack.faults.add("chat.appendStream", status=429, retry_after=1)   # + Retry-After
    slack.faults.add("chat.postMessage", status=503)                  # 500/503 JSON error
    slack.faults.add("chat.startStream", error="not_allowed_token_type")  # 200 ok:false
    slack.faults.add("chat.update", error="msg_too_long", times=2)
    slack.faults.add(upload_408=True)      # upload stores the bytes, then answers 408
    slack.faults.add("chat.postMessage", status=500, apply=True)  # done, then 500
    slack.faults.add("*", delay=0.2, times=None)                  # latency only

Recording: ``slack.calls`` (``Call``: method, args with JSON strings decoded,
token, headers, at=time.time(), status, response, fault), ``calls_to(method)``,
``messages`` (channel -> [Message]), ``thread_text(channel, thread_ts)``,
``response_url(key)`` + ``response_posts[key]``, ``assistant_threads[(channel,
thread_ts)]``, ``views``, ``uploads``, ``timings[(channel, thread_ts)]`` (first
call / first non-empty text among postMessage, update, start/append/stopStream).

Standalone: ``python -m tests.fakes.slack_server --port 8098 --bot-token xoxb-test``
prints ``READY http://127.0.0.1:8098/api/`` and serves until SIGINT/SIGTERM; control
routes are listed in ``tests.fakes.slack_control``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fakes.slack_control import ControlRoutes
from tests.fakes.slack_faults import Faults
from tests.fakes.slack_http import SlackRoutes
from tests.fakes.slack_models import (
    AssistantThread,
    Call,
    JsonDict,
    Message,
    PendingUpload,
    StoredFile,
    Timing,
    Upload,
    filetype_for,
    mimetype_for,
    random_id,
)
from tests.fakes.slack_oauth import OAuthState
from tests.fakes.slack_state import Identity, SlackState, default_channel, default_user

__all__ = ["Call", "FakeSlack", "Message", "StoredFile", "Upload"]

MAX_BODY = 256 * 1024 * 1024


class FakeSlack:
    """The fake Slack Web API server (see the module docstring)."""

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        *,
        app_id: str = "A1",
        host: str = "127.0.0.1",
        port: int = 0,
        msg_too_long_at: int = 4000,
        stream_lifetime: float | None = None,
        response_url_max_posts: int = 5,
    ) -> None:
        identity = Identity(bot_token, team_id, bot_user_id, bot_id, app_id)
        self.state = SlackState(identity, msg_too_long_at, stream_lifetime)
        self._routes = SlackRoutes(self.state, response_url_max_posts)
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None

    # ----- lifecycle

    def start(self) -> FakeSlack:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise RuntimeError("fake Slack failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # reported by start()
            self._error = exc
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        loop.run_forever()
        if self._runner is not None:
            loop.run_until_complete(self._runner.cleanup())
        loop.close()

    async def _listen(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        self._routes.add_to(app)
        ControlRoutes(self).add_to(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = self._runner.addresses[0][1]
        self.state.base_url = f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def api_url(self) -> str:
        return f"{self.state.base_url}/api/"

    # ----- what was recorded

    @property
    def calls(self) -> list[Call]:
        with self.state.lock:
            return list(self.state.calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def messages(self) -> dict[str, list[Message]]:
        return self.state.messages

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """Visible (non-ephemeral) bot messages of a channel, or of one thread."""
        with self.state.lock:
            found = (
                self.state.thread(channel, thread_ts)
                if thread_ts
                else [m for m in self.state.messages.get(channel, []) if m.ephemeral_user is None]
            )
        return [m for m in found if m.bot_id == self.state.identity.bot_id]

    def thread_text(self, channel: str, thread_ts: str) -> str:
        """Final visible text of the bot's messages in a thread, one per line."""
        return "\n".join(m.text for m in self.bot_messages(channel, thread_ts) if m.text)

    @property
    def uploads(self) -> list[Upload]:
        return self.state.uploads

    @property
    def pending_uploads(self) -> dict[str, PendingUpload]:
        return self.state.pending_uploads

    @property
    def files(self) -> dict[str, StoredFile]:
        return self.state.files

    @property
    def views(self) -> dict[str, JsonDict]:
        return self.state.views

    @property
    def assistant_threads(self) -> dict[tuple[str, str | None], AssistantThread]:
        return self.state.assistant_threads

    @property
    def response_posts(self) -> dict[str, list[JsonDict]]:
        return self.state.response_posts

    @property
    def timings(self) -> dict[tuple[str, str | None], Timing]:
        return self.state.timings

    @property
    def oauth(self) -> OAuthState:
        """OAuth installs: ``oauth.configure(OAuthApp(...))``, ``oauth.choose(...)``."""
        return self.state.oauth

    @property
    def authorize_url(self) -> str:
        return f"{self.state.base_url}/oauth/v2/authorize"

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def reset(self) -> None:
        self.state.reset()

    # ----- arranging the world

    def add_file(
        self,
        name: str,
        content: bytes | str = b"",
        mimetype: str | None = None,
        filetype: str | None = None,
        user: str = "U1",
        *,
        size: int | None = None,
        generator: Callable[[], Iterable[bytes]] | None = None,
        title: str | None = None,
    ) -> JsonDict:
        """Register a downloadable file; returns its Slack file object.

        ``size`` without content serves ``size`` bytes of 0..255 filler, generated
        lazily; ``generator`` (called once per download) yields custom chunks.
        """
        data = content.encode() if isinstance(content, str) else content
        lazy = size is not None and not data
        stored = StoredFile(
            id=random_id("F"),
            name=name,
            title=title or name,
            mimetype=mimetype or mimetype_for(name),
            filetype=filetype or filetype_for(name),
            size=size if lazy and size is not None else len(data),
            user=user,
            data=None if lazy else data,
            generator=generator,
        )
        with self.state.lock:
            self.state.files[stored.id] = stored
        return self.state.file_json(stored)

    def add_message(
        self,
        channel: str,
        text: str,
        user: str = "U1",
        *,
        thread_ts: str | None = None,
        ts: str | None = None,
    ) -> Message:
        """A message from a user (so replies, reactions and lookups find it)."""
        message = Message(channel, ts or self.state.clock.next(), text, thread_ts, user=user)
        return self.state.add_message(message)

    def add_user(self, user_id: str, **fields: Any) -> JsonDict:
        """Override the users.info answer for ``user_id`` (fields merged in)."""
        user = {**default_user(user_id, self.state.identity), **fields}
        self.state.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, **fields: Any) -> JsonDict:
        """Override the conversations.info answer for ``channel_id``."""
        channel = {**default_channel(channel_id, self.state.identity), **fields}
        self.state.channels[channel_id] = channel
        return channel

    def response_url(self, key: str = "anything") -> str:
        """A response_url on this server; accepted posts land in response_posts[key]."""
        return f"{self.base_url}/_response/{quote(key, safe='')}"

    def stop_stream_by_user(self, channel: str, ts: str) -> None:
        """What a user pressing "stop" does: later appends get ``stopped_by_user``."""
        with self.state.lock:
            message = self.state.find_message(channel, ts)
            message.stopped = message.stopped_by_user = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Slack Web API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bot-token", default="xoxb-test")
    parser.add_argument("--team-id", default="T1")
    parser.add_argument("--bot-user-id", default="UBOT")
    parser.add_argument("--bot-id", default="BBOT")
    parser.add_argument("--msg-too-long-at", type=int, default=4000)
    parser.add_argument("--stream-lifetime", type=float, default=None)
    args = parser.parse_args(argv)
    fake = FakeSlack(
        args.bot_token,
        args.team_id,
        args.bot_user_id,
        args.bot_id,
        host=args.host,
        port=args.port,
        msg_too_long_at=args.msg_too_long_at,
        stream_lifetime=args.stream_lifetime,
    ).start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"READY {fake.api_url}", flush=True)
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
