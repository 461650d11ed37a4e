"""Stream files attached in Slack into the author's assistant.

The bot token (with OAuth installs: the token of the workspace the file was shared in,
passed by the caller) is sent only to Slack's own hosts (over HTTPS) and to the host of
SLACK_API_URL (over its scheme); any other link is refused before a connection is made.
Slack answers a bad or missing token with 200 and an HTML login page, so the content
type is checked before any byte is passed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from commander.attachments import InputIncoming, InputsResult, collect, input_kind
from commander.errors import InvalidInput
from commander.filetypes import safe_filename
from commander.service import AddFilesResult, Commander, IncomingFile

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
SLACK_DOMAINS = ("slack.com", "slack-edge.com", "slack-files.com")


class DownloadRefused(InvalidInput):
    pass


def is_trusted_host(host: str | None, extra_host: str) -> bool:
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == extra_host.lower():
        return True
    return any(host == d or host.endswith("." + d) for d in SLACK_DOMAINS)


def is_trusted_url(url: str, api_url: str) -> bool:
    """May the bot token go to `url`? Slack's hosts over HTTPS, SLACK_API_URL's over its scheme."""
    try:
        parts, api = urlsplit(url), urlsplit(api_url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:  # e.g. a malformed IPv6 literal
        return False
    if host and host == (api.hostname or "").lower() and parts.scheme == api.scheme:
        return True
    return parts.scheme == "https" and is_trusted_host(host, "")


class SlackFiles:
    def __init__(self, commander: Commander, bot_token: str, api_url: str) -> None:
        self.commander = commander
        self._token = bot_token
        self._api_url = api_url
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=120.0))

    async def close(self) -> None:
        await self._http.aclose()

    async def fetch_all(
        self,
        team_id: str,
        user_id: str,
        files: list[dict[str, Any]],
        token: str | None = None,
    ) -> AddFilesResult:
        token = token or self._token
        incoming: list[IncomingFile] = []
        refused: list[tuple[str, str]] = []
        for slack_file in files:
            name = safe_filename(str(slack_file.get("name") or slack_file.get("title") or "file"))
            reason = self._unusable(slack_file)
            if reason:
                refused.append((name, reason))
                continue
            url = str(slack_file.get("url_private_download") or slack_file.get("url_private"))
            size = slack_file.get("size")
            html_ok = slack_file.get("mimetype") == "text/html"
            incoming.append(
                IncomingFile(
                    name, self._chunks(url, html_ok, token), size if isinstance(size, int) else None
                )
            )
        result = (
            await self.commander.add_files(team_id, user_id, incoming)
            if incoming
            else AddFilesResult()
        )
        result.rejected.extend(refused)
        return result

    async def fetch_inputs(
        self, files: list[dict[str, Any]], token: str | None = None
    ) -> InputsResult:
        """The message's images and PDFs, read and checked for the model's input."""
        incoming: list[InputIncoming] = []
        refused: list[InputIncoming] = []
        reasons: list[str] = []
        for slack_file in files:
            name = safe_filename(str(slack_file.get("name") or slack_file.get("title") or "file"))
            if input_kind(name) is None:
                continue
            url = str(slack_file.get("url_private_download") or slack_file.get("url_private"))
            size = slack_file.get("size")
            one = InputIncoming(
                name,
                self._chunks(url, False, token or self._token),
                size if isinstance(size, int) else None,
                str(slack_file.get("id") or ""),
            )
            reason = self._unusable(slack_file)
            if reason:
                refused.append(one)
                reasons.append(reason)
            else:
                incoming.append(one)
        result = await collect(incoming, self.commander.limits.max_file_bytes)
        for one, reason in zip(refused, reasons, strict=True):
            result.refuse(one, reason)
        return result

    def _unusable(self, slack_file: dict[str, Any]) -> str | None:
        if (
            slack_file.get("mode") in ("tombstone", "hidden_by_limit")
            or slack_file.get("file_access") == "access_denied"
        ):
            return "Slack no longer lets the bot read it"
        if slack_file.get("is_external"):
            return "it is stored outside Slack"
        url = slack_file.get("url_private_download") or slack_file.get("url_private")
        if not url:
            return "Slack gave no download link for it"
        if not is_trusted_url(str(url), self._api_url):
            return "its download link points outside Slack, so the bot will not fetch it"
        return None

    async def _chunks(self, url: str, html_ok: bool, token: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._download(url, html_ok, token):
                yield chunk
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: e.g. a "\n" in it
            raise DownloadRefused(
                f"downloading it from Slack failed ({type(exc).__name__})"
            ) from None

    async def _download(self, url: str, html_ok: bool, token: str) -> AsyncIterator[bytes]:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._http.stream("GET", url, headers=headers) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    if not is_trusted_url(url, self._api_url):
                        raise DownloadRefused("Slack redirected its download outside Slack")
                    continue
                _check(response, html_ok)
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    yield chunk
                return
        raise DownloadRefused("Slack redirected the download too many times")


def _check(response: httpx.Response, html_ok: bool) -> None:
    if response.status_code != 200:
        raise DownloadRefused(f"Slack answered {response.status_code} when the bot downloaded it")
    content_type = response.headers.get("content-type", "").lower()
    if content_type.startswith("text/html") and not html_ok:
        raise DownloadRefused(
            "Slack sent its login page instead of the file (the app may lack the files:read scope)"
        )
