"""Signed Slack requests into a bot's ``/slack/events``, shaped like Slack sends them.

    async with SlackRequestSender("http://127.0.0.1:3000", "signing-secret") as slack_in:
        await slack_in.event(message_im("U1", "hello"))           # event_callback, JSON
        await slack_in.event(app_mention("U1", "hi"), retry_num=1, retry_reason="http_timeout")
        await slack_in.command("/ask", "question", "U1", "C1", response_url=fake.response_url())
        await slack_in.block_action("U1", "approve", "yes", channel_id="C1", message_ts="1.2")
        values = {"block": {"action": {"type": "plain_text_input", "value": "x"}}}
        await slack_in.view_submission("U1", "settings", values, private_metadata="42")
        await slack_in.url_verification("challenge-1")

Every sender method takes ``timestamp=`` and ``signature=`` to forge requests for
negative tests; ``post(body, content_type)`` sends anything. Requests carry
``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`` and
``X-Slack-Request-Timestamp``. Event builders (``message_im``, ``channel_message``,
``app_mention``, ``assistant_thread_started``, ``assistant_thread_context_changed``,
``message_changed``, ``message_deleted``, ``bot_message``) are plain functions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx

from tests.fakes.slack_events import (
    app_mention,
    assistant_thread_context_changed,
    assistant_thread_started,
    bot_message,
    channel_message,
    channel_name_of,
    message_changed,
    message_deleted,
    message_im,
    new_ts,
)
from tests.fakes.slack_models import JsonDict

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

__all__ = [
    "SlackRequestSender",
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "bot_message",
    "channel_message",
    "message_changed",
    "message_deleted",
    "message_im",
    "sign",
]


def sign(signing_secret: str, timestamp: int | str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def trigger_id() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


# ----- the sender


class SlackRequestSender:
    """Posts correctly signed Slack requests to a bot over HTTP (httpx)."""

    # The event builders, also reachable from a sender instance.
    message_im = staticmethod(message_im)
    channel_message = staticmethod(channel_message)
    app_mention = staticmethod(app_mention)
    assistant_thread_started = staticmethod(assistant_thread_started)
    assistant_thread_context_changed = staticmethod(assistant_thread_context_changed)
    message_changed = staticmethod(message_changed)
    message_deleted = staticmethod(message_deleted)
    bot_message = staticmethod(bot_message)

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        api_app_id: str = "A1",
        team_domain: str = "fake-workspace",
        verification_token: str = "legacy-verification-token",
        path: str = "/slack/events",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        enterprise_id: str | None = None,
        org_install: bool = False,
    ) -> None:
        # enterprise_id: the workspace belongs to an Enterprise Grid org; org_install: the
        # app is installed org-wide (authorizations then name the org, not the workspace).
        self.enterprise_id, self.org_install = enterprise_id, org_install
        has_path = urlparse(bot_url).path not in ("", "/")
        self.url = bot_url if has_path else bot_url.rstrip("/") + path
        self.signing_secret = signing_secret
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.api_app_id = api_app_id
        self.team_domain, self.verification_token = team_domain, verification_token
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def __aenter__(self) -> SlackRequestSender:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ----- signing and posting

    def headers_for(
        self,
        body: str,
        content_type: str,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or sign(self.signing_secret, stamp, body),
        }

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` signed (or with the given forged timestamp/signature)."""
        sent = {**self.headers_for(body, content_type, timestamp, signature), **(headers or {})}
        return await self._client.post(self.url, content=body.encode(), headers=sent)

    async def _post_form(
        self, fields: dict[str, str], timestamp: int | str | None, signature: str | None
    ) -> httpx.Response:
        return await self.post(urlencode(fields), FORM, timestamp=timestamp, signature=signature)

    async def _post_payload(
        self, payload: JsonDict, timestamp: int | str | None, signature: str | None
    ) -> httpx.Response:
        return await self._post_form({"payload": json.dumps(payload)}, timestamp, signature)

    # ----- Events API

    def envelope(
        self,
        event: JsonDict,
        *,
        team_id: str | None = None,
        event_id: str | None = None,
        event_time: int | None = None,
    ) -> JsonDict:
        """The ``event_callback`` envelope Slack wraps around ``event``."""
        team = team_id or self.team_id
        return {
            "token": self.verification_token,
            "team_id": team,
            "context_team_id": team,
            "context_enterprise_id": self.enterprise_id,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": event_time or int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": None if self.org_install else team,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": self.org_install,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }

    async def event(
        self,
        event: JsonDict,
        *,
        team_id: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Deliver ``event`` in an event_callback; retry headers when given."""
        body = json.dumps(self.envelope(event, team_id=team_id, event_id=event_id))
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self.post(
            body, JSON, timestamp=timestamp, signature=signature, headers=headers
        )

    async def url_verification(
        self,
        challenge: str | None = None,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body = {
            "token": self.verification_token,
            "challenge": challenge or secrets.token_urlsafe(24),
            "type": "url_verification",
        }
        return await self.post(json.dumps(body), JSON, timestamp=timestamp, signature=signature)

    # ----- slash commands and interactivity

    def _user(self, user_id: str) -> JsonDict:
        name = f"user-{user_id.lower()}"
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> JsonDict:
        team: JsonDict = {"id": self.team_id, "domain": self.team_domain}
        if self.enterprise_id:
            team["enterprise_id"] = self.enterprise_id
        return team

    def _enterprise(self) -> JsonDict | None:
        return {"id": self.enterprise_id, "name": "Org"} if self.enterprise_id else None

    async def command(
        self,
        command: str,
        text: str = "",
        user_id: str = "U1",
        channel_id: str = "C1",
        *,
        response_url: str = "https://hooks.slack.com/commands/T1/1/fake",
        channel_name: str | None = None,
        user_name: str | None = None,
        trigger: str | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """A slash command, form-encoded as Slack posts it."""
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name or channel_name_of(channel_id),
            "user_id": user_id,
            "user_name": user_name or f"user-{user_id.lower()}",
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "true" if self.org_install else "false",
            **(
                {"enterprise_id": self.enterprise_id, "enterprise_name": "Org"}
                if self.enterprise_id
                else {}
            ),
            "response_url": response_url,
            "trigger_id": trigger or trigger_id(),
        }
        return await self._post_form(fields, timestamp, signature)

    async def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str = "actions",
        action_type: str = "button",
        channel_id: str | None = None,
        message_ts: str | None = None,
        message: JsonDict | None = None,
        view: JsonDict | None = None,
        response_url: str | None = "https://hooks.slack.com/actions/T1/1/fake",
        state_values: JsonDict | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """A ``block_actions`` payload from a message (default) or a ``view``."""
        payload: JsonDict = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id(),
            "team": self._team(),
            "enterprise": self._enterprise(),
            "is_enterprise_install": self.org_install,
            "state": {"values": state_values or {}},
            "actions": [_action(action_id, block_id, action_type, value)],
        }
        if view is not None:
            payload.update(container={"type": "view", "view_id": view.get("id")}, view=view)
        else:
            payload.update(_message_context(channel_id or "C1", message_ts, message, user_id))
            payload["response_url"] = response_url
        return await self._post_payload(payload, timestamp, signature)

    async def view_submission(
        self,
        user_id: str,
        callback_id: str,
        state_values: JsonDict,
        private_metadata: str = "",
        *,
        view_id: str | None = None,
        blocks: list[JsonDict] | None = None,
        title: str = "Settings",
        response_urls: list[JsonDict] | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """A ``view_submission`` payload for a modal with the given state."""
        view_id = view_id or "V" + secrets.token_hex(5).upper()
        view = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": state_values},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": title},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.api_app_id,
            "external_id": "",
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id(),
            "view": view,
            "response_urls": response_urls or [],
            "is_enterprise_install": self.org_install,
            "enterprise": self._enterprise(),
        }
        return await self._post_payload(payload, timestamp, signature)


def _action(action_id: str, block_id: str, action_type: str, value: str | None) -> JsonDict:
    action: JsonDict = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": new_ts(),
    }
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": action_id, "emoji": True}
        if value is not None:
            action["value"] = value
    elif action_type in ("static_select", "external_select"):
        text = {"type": "plain_text", "text": value or "", "emoji": True}
        action["selected_option"] = {"text": text, "value": value}
    elif value is not None:
        action["value"] = value
    return action


def _message_context(
    channel_id: str, message_ts: str | None, message: JsonDict | None, user_id: str
) -> dict[str, Any]:
    ts = message_ts or (message or {}).get("ts") or new_ts()
    shown = message or {"type": "message", "ts": ts, "text": "", "user": user_id}
    return {
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "channel": {"id": channel_id, "name": channel_name_of(channel_id)},
        "message": shown,
    }
