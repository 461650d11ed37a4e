"""The fake Slack behaves like Slack towards the official SDK, Bolt and HTTP clients."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.models.messages.chunk import TaskUpdateChunk
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack_requests import (
    SlackRequestSender,
    app_mention,
    assistant_thread_started,
    bot_message,
    channel_message,
    message_changed,
    message_deleted,
    message_im,
)
from tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-test"
SECRET = "signing-secret"
PARENT = "1700000000.000100"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=TOKEN, team_id="T1", bot_user_id="UBOT", bot_id="BBOT") as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(slack: FakeSlack) -> None:
    slack.reset()


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=30)


# ----- auth and basics


async def test_auth_test_answers_like_slack(client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response.data == {
        "ok": True,
        "url": "https://t1.slack.com/",
        "team": "Fake Workspace",
        "user": "commander",
        "team_id": "T1",
        "user_id": "UBOT",
        "bot_id": "BBOT",
        "is_enterprise_install": False,
    }


async def test_token_is_required_on_every_method(slack: FakeSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert (await api_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=slack.api_url)
    error = await api_error(anonymous.chat_postMessage(channel="C1", text="x"))
    assert error.response["error"] == "not_authed"
    async with http() as web_client:
        form = await web_client.post(slack.api_url + "auth.test", data={"token": TOKEN})
    assert form.json()["ok"] is True
    assert slack.calls[-1].token == TOKEN and "token" not in slack.calls[-1].args


async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await api_error(client.api_call("chat.teleport", json={"channel": "C1"}))
    assert error.response.status_code == 200
    assert error.response["error"] == "unknown_method"


# ----- messages


async def test_post_update_delete(client: AsyncWebClient, slack: FakeSlack) -> None:
    posted = await client.chat_postMessage(channel="C1", text="Thinking…", thread_ts=PARENT)
    assert posted["channel"] == "C1" and posted["message"]["bot_id"] == "BBOT"
    assert posted["message"]["thread_ts"] == PARENT and posted["message"]["user"] == "UBOT"
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="Answer")
    assert (updated["ts"], updated["text"]) == (posted["ts"], "Answer")
    assert slack.thread_text("C1", PARENT) == "Answer"
    replies = await client.conversations_replies(channel="C1", ts=PARENT)
    assert [m["text"] for m in replies["messages"]] == ["Answer"]
    await client.chat_delete(channel="C1", ts=posted["ts"])
    assert slack.messages["C1"] == []
    error = await api_error(client.chat_update(channel="C1", ts=posted["ts"], text="x"))
    assert error.response["error"] == "message_not_found"


async def test_cannot_edit_other_peoples_messages(client: AsyncWebClient, slack: FakeSlack) -> None:
    theirs = slack.add_message("C1", "mine", user="U1")
    error = await api_error(client.chat_update(channel="C1", ts=theirs.ts, text="x"))
    assert error.response["error"] == "cant_update_message"
    await client.reactions_add(channel="C1", timestamp=theirs.ts, name="eyes")
    assert theirs.reactions == {"eyes": ["UBOT"]}
    error = await api_error(client.reactions_add(channel="C1", timestamp=theirs.ts, name="eyes"))
    assert error.response["error"] == "already_reacted"


async def test_post_ephemeral(client: AsyncWebClient, slack: FakeSlack) -> None:
    response = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert set(response.data) == {"ok", "message_ts"}
    (message,) = slack.messages["C1"]
    assert message.ephemeral_user == "U1" and message.ts == response["message_ts"]
    assert slack.bot_messages("C1") == []


async def test_message_limits(client: AsyncWebClient) -> None:
    long_text = "x" * 4001
    posted = await client.chat_postMessage(channel="C1", text="short")
    error = await api_error(client.chat_update(channel="C1", ts=posted["ts"], text=long_text))
    assert error.response["error"] == "msg_too_long"
    empty = client.api_call("chat.postMessage", json={"channel": "C1", "text": ""})
    error = await api_error(empty)
    assert error.response["error"] == "no_text"
    blocks = [{"type": "divider"}] * 51
    error = await api_error(client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
    error = await api_error(client.chat_postMessage(channel="C1", text="t", blocks=[section]))
    assert "json-pointer:/blocks/0/text/text" in error.response["response_metadata"]["messages"][0]
    error = await api_error(client.chat_postMessage(channel="X1", text="t"))
    assert error.response["error"] == "channel_not_found"


async def test_msg_too_long_threshold_is_configurable() -> None:
    with FakeSlack(msg_too_long_at=10) as small:
        client = AsyncWebClient(token="xoxb-test", base_url=small.api_url)
        error = await api_error(client.chat_postMessage(channel="C1", text="x" * 11))
    assert error.response["error"] == "msg_too_long"


# ----- streaming


async def test_chat_stream_helper_end_to_end(client: AsyncWebClient, slack: FakeSlack) -> None:
    stream = await client.chat_stream(channel="D1", thread_ts=PARENT, buffer_size=10)
    await stream.append(markdown_text="Hello")
    assert slack.calls_to("chat.startStream") == []  # still buffered by the SDK
    await stream.append(markdown_text=", world!")
    await stream.append(markdown_text=" More text!")
    await stream.append(chunks=[TaskUpdateChunk(id="t1", title="Search", status="complete")])
    await stream.stop(markdown_text=" Bye.")
    methods = [c.method for c in slack.calls]
    assert methods == [
        "chat.startStream",
        "chat.appendStream",
        "chat.appendStream",
        "chat.stopStream",
    ]
    start = slack.calls_to("chat.startStream")[0]
    assert start.args["chunks"] == [{"type": "markdown_text", "text": "Hello, world!"}]
    (message,) = slack.messages["D1"]
    assert message.streaming and message.stopped and message.ts == stream.ts
    assert message.text == "Hello, world! More text! Bye."
    assert {"type": "task_update", "id": "t1", "title": "Search", "status": "complete"} in (
        message.chunks
    )
    assert slack.thread_text("D1", PARENT) == "Hello, world! More text! Bye."
    late = client.chat_appendStream(channel="D1", ts=message.ts, markdown_text="late")
    assert (await api_error(late)).response["error"] == "message_not_in_streaming_state"


async def test_streams_outside_dms_need_recipients(
    client: AsyncWebClient, slack: FakeSlack
) -> None:
    stream = await client.chat_stream(channel="C1", thread_ts=PARENT)
    error = await api_error(stream.stop(markdown_text="hi"))
    assert error.response["error"] == "missing_recipient_user_id"
    only_user = client.chat_startStream(channel="C1", thread_ts=PARENT, recipient_user_id="U1")
    assert (await api_error(only_user)).response["error"] == "missing_recipient_team_id"
    no_thread = client.api_call("chat.startStream", json={"channel": "D1"})
    assert (await api_error(no_thread)).response["error"] == "invalid_arguments"
    ok = await client.chat_stream(
        channel="C1", thread_ts=PARENT, recipient_user_id="U1", recipient_team_id="T1"
    )
    await ok.append(markdown_text="fine")
    await ok.stop()
    assert slack.thread_text("C1", PARENT) == "fine"


async def test_stream_rules(client: AsyncWebClient, slack: FakeSlack) -> None:
    started = await client.chat_startStream(channel="D1", thread_ts=PARENT, markdown_text="a")
    ts = started["ts"]
    mixed = client.chat_appendStream(channel="D1", ts=ts, chunks=[_md("b")])
    assert (await api_error(mixed)).response["error"] == "streaming_mode_mismatch"
    both = client.chat_appendStream(channel="D1", ts=ts, markdown_text="b", chunks=[_md("c")])
    both_error = (await api_error(both)).response["error"]
    assert both_error == "cannot_provide_both_markdown_text_and_chunks"
    huge = client.chat_appendStream(channel="D1", ts=ts, markdown_text="z" * 12_001)
    assert (await api_error(huge)).response["error"] == "msg_too_long"
    empty = client.chat_appendStream(channel="D1", ts=ts)
    assert (await api_error(empty)).response["error"] == "markdown_text_or_chunks_required"
    bad = client.chat_appendStream(channel="D1", ts=ts, chunks=[{"type": "task_update"}])
    assert (await api_error(bad)).response["error"] == "invalid_chunks"
    await client.chat_appendStream(channel="D1", ts=ts, markdown_text="b" * 12_000)
    slack.stop_stream_by_user("D1", ts)
    stopped = client.chat_appendStream(channel="D1", ts=ts, markdown_text="c")
    assert (await api_error(stopped)).response["error"] == "stopped_by_user"
    normal = await client.chat_postMessage(channel="D1", text="plain")
    not_stream = client.chat_stopStream(channel="D1", ts=normal["ts"])
    assert (await api_error(not_stream)).response["error"] == "message_not_in_streaming_state"


async def test_streams_expire_after_their_lifetime() -> None:
    with FakeSlack(stream_lifetime=0) as short:
        client = AsyncWebClient(token="xoxb-test", base_url=short.api_url)
        started = await client.chat_startStream(channel="D1", thread_ts=PARENT)
        late = client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="x")
        assert (await api_error(late)).response["error"] == "message_not_in_streaming_state"


def _md(text: str) -> dict[str, str]:
    return {"type": "markdown_text", "text": text}


# ----- files


async def test_files_upload_v2_end_to_end(client: AsyncWebClient, slack: FakeSlack) -> None:
    content = b"a,b\n1,2\n"
    response = await client.files_upload_v2(
        channel="C1",
        thread_ts=PARENT,
        content=content,
        filename="data.csv",
        title="Data",
        initial_comment="Here you go",
    )
    methods = [c.method for c in slack.calls]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert slack.calls_to("upload")[0].args["length"] == len(content)
    file = response["file"]
    assert (file["name"], file["title"], file["mimetype"]) == ("data.csv", "Data", "text/csv")
    (upload,) = slack.uploads
    assert (upload.channel, upload.thread_ts, upload.title) == ("C1", PARENT, "Data")
    assert (upload.filename, upload.bytes) == ("data.csv", content)
    assert slack.thread_text("C1", PARENT) == "Here you go"
    info = await client.files_info(file=file["id"])
    assert info["file"]["size"] == len(content)
    async with http() as web_client:
        got = await web_client.get(file["url_private_download"], headers=_bearer(TOKEN))
    assert got.content == content


async def test_upload_answering_408_still_stores_bytes(
    client: AsyncWebClient, slack: FakeSlack
) -> None:
    slack.faults.add(upload_408=True)
    with pytest.raises(SlackRequestError, match="status: 408"):
        await client.files_upload_v2(channel="C1", content=b"xyz", filename="x.txt")
    assert slack.uploads == []
    (pending,) = slack.pending_uploads.values()
    assert pending.data == b"xyz"
    await client.files_completeUploadExternal(files=[{"id": pending.file_id}], channel_id="C1")
    assert slack.uploads[0].bytes == b"xyz"
    missing = client.files_completeUploadExternal(files=[{"id": "FNOPE"}])
    assert (await api_error(missing)).response["error"] == "file_not_found"


async def test_downloads_need_the_bot_token(slack: FakeSlack) -> None:
    file = slack.add_file("notes.txt", b"hello", "text/plain")
    url = file["url_private_download"]
    assert url.startswith(slack.base_url) and file["id"].startswith("F")
    async with http() as web_client:
        good = await web_client.get(url, headers=_bearer(TOKEN))
        pages = [await web_client.get(url, headers=h) for h in ({}, _bearer("xoxb-wrong"))]
    assert good.status_code == 200 and good.content == b"hello"
    assert good.headers["content-type"].startswith("text/plain")
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert b"<html" in page.content and b"hello" not in page.content
    assert [c.args["authorized"] for c in slack.calls_to("download")] == [True, False, False]


async def test_large_files_stream_lazily(slack: FakeSlack) -> None:
    size = 32 * 1024 * 1024
    file = slack.add_file("big.bin", size=size)
    assert slack.files[file["id"]].data is None and file["size"] == size
    digest, received = hashlib.sha256(), 0
    async with http() as web_client:
        url = file["url_private_download"]
        async with web_client.stream("GET", url, headers=_bearer(TOKEN)) as response:
            assert response.headers["content-length"] == str(size)
            async for piece in response.aiter_bytes():
                digest.update(piece)
                received += len(piece)
    expected = hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
    assert received == size and digest.hexdigest() == expected
    custom = slack.add_file("gen.txt", size=3, generator=lambda: [b"a", b"bc"])
    async with http() as web_client:
        got = await web_client.get(custom["url_private"], headers=_bearer(TOKEN))
    assert got.content == b"abc"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ----- faults


async def test_429_is_retried_by_the_sdk_retry_handler(slack: FakeSlack) -> None:
    slack.faults.add("chat.postMessage", status=429, retry_after=1)
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    response = await retrying.chat_postMessage(channel="C1", text="eventually")
    assert response["ok"] and time.monotonic() - started >= 1.0
    first, second = slack.calls_to("chat.postMessage")
    assert (first.status, first.fault, second.status) == (429, "status=429 error=ratelimited", 200)
    assert second.at - first.at >= 1.0
    assert [m.text for m in slack.messages["C1"]] == ["eventually"]


async def test_429_without_retry_handler_raises(client: AsyncWebClient, slack: FakeSlack) -> None:
    slack.faults.add("chat.appendStream", status=429, retry_after=7)
    started = await client.chat_startStream(channel="D1", thread_ts=PARENT)
    error = await api_error(
        client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="x")
    )
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    await client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="x")  # fired once


async def test_error_faults(client: AsyncWebClient, slack: FakeSlack) -> None:
    slack.faults.add("chat.startStream", error="not_allowed_token_type")
    refused = client.chat_startStream(channel="D1", thread_ts=PARENT)
    assert (await api_error(refused)).response["error"] == "not_allowed_token_type"
    await client.chat_startStream(channel="D1", thread_ts=PARENT)
    slack.faults.add("chat.update", status=503, times=2)
    posted = await client.chat_postMessage(channel="C1", text="a")
    for _ in range(2):
        error = await api_error(client.chat_update(channel="C1", ts=posted["ts"], text="b"))
        assert error.response.status_code == 503
    await client.chat_update(channel="C1", ts=posted["ts"], text="b")
    slack.faults.add("chat.postMessage", error="channel_not_found", match={"channel": "C9"})
    await client.chat_postMessage(channel="C1", text="fine")
    missing = client.chat_postMessage(channel="C9", text="x")
    assert (await api_error(missing)).response["error"] == "channel_not_found"


async def test_applied_fault_and_delay(client: AsyncWebClient, slack: FakeSlack) -> None:
    slack.faults.add("chat.postMessage", status=500, apply=True)
    error = await api_error(client.chat_postMessage(channel="C1", text="posted anyway"))
    assert error.response.status_code == 500
    assert [m.text for m in slack.messages["C1"]] == ["posted anyway"]
    slack.faults.add("*", delay=0.05)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.05
    assert slack.faults.pending == []


# ----- views, assistant threads, lookups, response_url


async def test_views(client: AsyncWebClient, slack: FakeSlack) -> None:
    modal = {
        "type": "modal",
        "callback_id": "settings",
        "title": {"type": "plain_text", "text": "Settings"},
        "private_metadata": "42",
        "blocks": [],
    }
    view = (await client.views_open(trigger_id="1.2.abc", view=modal))["view"]
    assert view["id"].startswith("V") and view["root_view_id"] == view["id"]
    assert (view["callback_id"], view["private_metadata"], view["state"]) == (
        "settings",
        "42",
        {"values": {}},
    )
    stale = client.views_update(view_id=view["id"], hash="0.stale", view=modal)
    assert (await api_error(stale)).response["error"] == "hash_conflict"
    updated = (await client.views_update(view_id=view["id"], hash=view["hash"], view=modal))["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    first = (await client.views_publish(user_id="U1", view=home))["view"]
    again = (await client.views_publish(user_id="U1", view=home))["view"]
    assert first["id"] == again["id"] and again["type"] == "home"
    no_trigger = client.views_open(view=modal)
    assert (await api_error(no_trigger)).response["error"] == "invalid_arguments"
    unknown = client.views_update(view_id="VNOPE", view=modal)
    assert (await api_error(unknown)).response["error"] == "not_found"


async def test_assistant_threads(client: AsyncWebClient, slack: FakeSlack) -> None:
    await client.assistant_threads_setStatus(
        channel_id="D1", thread_ts=PARENT, status="is thinking…", loading_messages=["Reading…"]
    )
    prompts = [{"title": "Summarise", "message": "Summarise this channel"}]
    await client.assistant_threads_setSuggestedPrompts(
        channel_id="D1", thread_ts=PARENT, prompts=prompts, title="Try"
    )
    await client.assistant_threads_setTitle(channel_id="D1", thread_ts=PARENT, title="Chat")
    await client.assistant_threads_setStatus(channel_id="D1", thread_ts=PARENT, status="")
    thread = slack.assistant_threads[("D1", PARENT)]
    assert thread.status_history == ["is thinking…", ""] and thread.status == ""
    assert (thread.prompts, thread.prompts_title, thread.title) == (prompts, "Try", "Chat")
    too_many = client.assistant_threads_setSuggestedPrompts(channel_id="D1", prompts=prompts * 5)
    assert (await api_error(too_many)).response["error"] == "invalid_arguments"


async def test_users_and_conversations_info(client: AsyncWebClient, slack: FakeSlack) -> None:
    user = (await client.users_info(user="U1"))["user"]
    assert user["id"] == "U1" and user["is_bot"] is False and "tz" in user
    slack.add_user("U2", real_name="Ada Lovelace", tz="Europe/Paris")
    assert (await client.users_info(user="U2"))["user"]["tz"] == "Europe/Paris"
    assert (await api_error(client.users_info(user="X1"))).response["error"] == "user_not_found"
    channel = (await client.conversations_info(channel="D1"))["channel"]
    assert channel["is_im"] is True
    missing = client.conversations_info(channel="nope")
    assert (await api_error(missing)).response["error"] == "channel_not_found"


async def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    hook = AsyncWebhookClient(slack.response_url("cmd-1"))
    for number in range(5):
        assert (await hook.send(text=f"m{number}")).status_code == 200
    sixth = await hook.send(text="m5")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert [p["text"] for p in slack.response_posts["cmd-1"]] == [f"m{n}" for n in range(5)]


async def test_timings_record_first_text(client: AsyncWebClient, slack: FakeSlack) -> None:
    stream = await client.chat_stream(channel="D1", thread_ts=PARENT, buffer_size=1000)
    await stream.append(markdown_text="short answer")
    await stream.stop()
    timing = slack.timings[("D1", PARENT)]
    start, stop = slack.calls_to("chat.startStream")[0], slack.calls_to("chat.stopStream")[0]
    assert timing.first_call_at == start.at
    assert (timing.first_text_at, timing.first_text_method) == (stop.at, "chat.stopStream")
    await client.chat_postMessage(channel="C1", thread_ts="2.000001", text="hi")
    async with http() as web_client:
        data = (await web_client.get(slack.base_url + "/_fake/timings")).json()
    assert data["by_thread"]["C1:2.000001"]["first_text_method"] == "chat.postMessage"


# ----- standalone


@pytest.fixture
def standalone() -> Iterator[str]:
    command = [sys.executable, "-m", "tests.fakes.slack_server", "--port", "0"]
    command += ["--bot-token", "xoxb-cli"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/api/")
        yield line.split()[1]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


async def test_standalone_server_and_control_routes(standalone: str) -> None:
    base = standalone.removesuffix("/api/")
    client = AsyncWebClient(token="xoxb-cli", base_url=standalone)
    assert (await client.auth_test())["user_id"] == "UBOT"
    async with http() as web_client:
        spec = {"name": "a.txt", "content": "data", "mimetype": "text/plain"}
        file = (await web_client.post(base + "/_fake/files", json=spec)).json()
        got = await web_client.get(file["url_private_download"], headers=_bearer("xoxb-cli"))
        assert got.content == b"data"
        fault = {"method": "chat.postMessage", "error": "msg_too_long"}
        assert (await web_client.post(base + "/_fake/faults", json=fault)).json()["ok"]
        error = await api_error(client.chat_postMessage(channel="C1", text="x"))
        assert error.response["error"] == "msg_too_long"
        calls = (await web_client.get(base + "/_fake/calls?method=chat.postMessage")).json()
        assert calls["calls"][0]["fault"] == "status=200 error=msg_too_long"
        assert "authorization" not in {k.lower() for k in calls["calls"][0]["headers"]}
        await web_client.post(base + "/_fake/reset")
        assert (await web_client.get(base + "/_fake/calls")).json() == {"calls": []}


# ----- signed requests into a bot


async def test_sender_signs_like_slack() -> None:
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(capture)
    async with SlackRequestSender("http://bot.test", SECRET, transport=transport) as sender:
        await sender.event(message_im("U1", "hi"), retry_num=2, retry_reason="http_timeout")
        await sender.command("/ask", "what?", "U1", "C1")
        await sender.event(message_im("U1", "forged"), signature="v0=bad", timestamp=1)
    verifier = SignatureVerifier(SECRET)
    event, command, forged = seen
    for request in (event, command):
        assert request.url.path == "/slack/events"
        assert verifier.is_valid(
            body=request.content.decode(),
            timestamp=request.headers["X-Slack-Request-Timestamp"],
            signature=request.headers["X-Slack-Signature"],
        )
    assert (event.headers["X-Slack-Retry-Num"], event.headers["X-Slack-Retry-Reason"]) == (
        "2",
        "http_timeout",
    )
    body = json.loads(event.content)
    assert body["type"] == "event_callback" and body["event"]["channel_type"] == "im"
    assert body["authorizations"][0] == {
        "enterprise_id": None,
        "team_id": "T1",
        "user_id": "UBOT",
        "is_bot": True,
        "is_enterprise_install": False,
    }
    fields = {k: v[0] for k, v in parse_qs(command.content.decode()).items()}
    assert (fields["command"], fields["text"], fields["channel_id"]) == ("/ask", "what?", "C1")
    assert fields["trigger_id"] and fields["response_url"]
    assert not verifier.is_valid(
        body=forged.content.decode(),
        timestamp=forged.headers["X-Slack-Request-Timestamp"],
        signature=forged.headers["X-Slack-Signature"],
    )


def test_event_builders_have_slack_shapes() -> None:
    shared = message_im("U1", "see file", files=[{"id": "F1"}], thread_ts=PARENT)
    assert (shared["subtype"], shared["thread_ts"], shared["channel_type"]) == (
        "file_share",
        PARENT,
        "im",
    )
    assert shared["client_msg_id"] and shared["ts"] == shared["event_ts"]
    mention = app_mention("U1", "help", "C1")
    assert mention["text"] == "<@UBOT> help" and "channel_type" not in mention
    assert channel_message("U1", "x", "C7")["channel_type"] == "channel"
    assert message_changed("D1", "1.1", "new", "U1")["message"]["text"] == "new"
    assert message_deleted("C1", "1.1", "U1")["deleted_ts"] == "1.1"
    assert bot_message("x", legacy=True)["subtype"] == "bot_message"
    started = assistant_thread_started("U1", "D1", PARENT)
    assert started["assistant_thread"]["thread_ts"] == PARENT


@pytest.fixture
async def bolt_url(slack: FakeSlack) -> AsyncIterator[str]:
    """A real Bolt AsyncApp served over HTTP, talking to the fake Slack."""
    app = AsyncApp(
        token=TOKEN,
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=slack.api_url),
        process_before_response=True,
    )
    _add_listeners(app)
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def _add_listeners(app: AsyncApp) -> None:
    @app.event("app_mention")
    async def mention(say_stream: Any) -> None:
        stream = await say_stream(buffer_size=5)
        await stream.append(markdown_text="Hello ")
        await stream.append(markdown_text="there")
        await stream.stop()

    @app.event("assistant_thread_started")
    async def started(set_suggested_prompts: Any) -> None:
        await set_suggested_prompts(prompts=[{"title": "Hi", "message": "Say hi"}])

    @app.command("/ask")
    async def ask(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"echo: {command['text']}")

    @app.action("approve")
    async def approve(ack: Any, respond: Any, body: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"approved {body['actions'][0]['value']}")

    @app.view("settings")
    async def settings(ack: Any, view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        value = view["state"]["values"]["b"]["a"]["value"]
        await client.chat_postMessage(channel="C1", text=f"{view['private_metadata']}={value}")


async def test_bolt_app_accepts_the_sender_and_uses_the_fake(
    bolt_url: str, slack: FakeSlack
) -> None:
    async with SlackRequestSender(bolt_url, SECRET) as sender:
        assert (await sender.url_verification("c-1")).json() == {"challenge": "c-1"}
        response = await sender.event(app_mention("U1", "hi", "C1", ts=PARENT))
        assert response.status_code == 200
        assert slack.thread_text("C1", PARENT) == "Hello there"
        start = slack.calls_to("chat.startStream")[0]
        assert (start.args["recipient_user_id"], start.args["recipient_team_id"]) == ("U1", "T1")
        await sender.event(assistant_thread_started("U1", "D1", PARENT))
        assert slack.assistant_threads[("D1", PARENT)].prompts[0]["title"] == "Hi"
        url = slack.response_url("ask")
        await sender.command("/ask", "question", "U1", "C1", response_url=url)
        await sender.block_action("U1", "approve", "yes", response_url=slack.response_url("btn"))
        values = {"b": {"a": {"type": "plain_text_input", "value": "v"}}}
        submitted = await sender.view_submission("U1", "settings", values, private_metadata="k")
        assert submitted.status_code == 200
        forged = await sender.event(app_mention("U1", "x"), signature="v0=" + "0" * 64)
        stale = await sender.command("/ask", "old", timestamp=int(time.time()) - 3600)
    assert slack.response_posts["ask"][0]["text"] == "echo: question"
    assert slack.response_posts["btn"][0]["text"] == "approved yes"
    assert slack.messages["C1"][-1].text == "k=v"
    assert (forged.status_code, stale.status_code) == (401, 401)


async def test_fake_runs_beside_the_test_loop(slack: FakeSlack) -> None:
    """Concurrent SDK calls are served from the fake's own thread."""
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    texts = [f"m{n}" for n in range(20)]
    await asyncio.gather(*(client.chat_postMessage(channel="C1", text=t) for t in texts))
    assert sorted(m.text for m in slack.messages["C1"]) == sorted(texts)
    assert len({m.ts for m in slack.messages["C1"]}) == 20
