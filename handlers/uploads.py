"""Upload a file into a thread exactly once, even when Slack's upload URL answers 408
after it stored the bytes (python-slack-sdk#1165).

`files_upload_v2` raises on any non-200 answer from the upload URL and then never calls
files.completeUploadExternal, so a file that did arrive is never shared (and retrying
the whole call would make a second file). The three steps are done here instead:

1. files.getUploadURLExternal gives one file id and its upload URL;
2. the bytes are POSTed to that URL;
3. files.completeUploadExternal shares the file id in the thread.

When step 2 does not answer 200 (or its connection fails) the bytes may still have
arrived, so step 3 is tried anyway. Only if Slack then refuses to complete the file are
the bytes posted again, once, to the same URL. There is a single file id throughout, so
the file can appear at most once.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

MAX_POSTS = 2


async def upload_to_thread(
    client: AsyncWebClient, channel: str, thread_ts: str, filename: str, content: bytes
) -> str:
    """Share `content` as `filename` in the thread; returns the Slack file id.

    Raises SlackApiError (or a transport error) when the file could not be shared."""
    ticket = await client.files_getUploadURLExternal(filename=filename, length=len(content))
    file_id, url = str(ticket["file_id"]), str(ticket["upload_url"])
    for attempt in range(1, MAX_POSTS + 1):
        status = await _post_bytes(client, url, content)
        try:
            await client.files_completeUploadExternal(
                files=[{"id": file_id, "title": filename}],
                channel_id=channel,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            if status == 200 or attempt == MAX_POSTS:
                raise
            log.info(
                "upload of %s answered %s and did not arrive (%s); posting it again",
                filename,
                status or "no answer",
                exc.response.get("error"),
            )
            continue
        if status != 200:
            log.info("upload of %s answered %s but had arrived", filename, status or "nothing")
        return file_id
    raise AssertionError("unreachable")


async def _post_bytes(client: AsyncWebClient, url: str, content: bytes) -> int | None:
    """The upload URL's HTTP status; None when no answer came (the bytes may have landed)."""
    timeout = aiohttp.ClientTimeout(total=client.timeout)
    shared = client.session if client.session is not None and not client.session.closed else None
    session = shared or aiohttp.ClientSession(timeout=timeout)
    try:
        async with session.post(
            url, data=content, proxy=client.proxy, ssl=client.ssl, timeout=timeout
        ) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("upload POST failed: %s", type(exc).__name__)
        return None
    finally:
        if shared is None:
            await session.close()
