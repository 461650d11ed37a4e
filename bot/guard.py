"""A gate in front of Bolt on POST /slack/events.

Bolt parses a request body before it checks the signature, and a body it cannot parse
escapes as a 500 with a traceback. Slack never sends such bodies, but anyone can; and a
500 would make Slack retry. The gate checks the signature on the raw bytes first (401),
then that the body parses the way Bolt will read it and carries the fields Bolt routes
on (400), and only then hands the request to Bolt.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.settings import SlackSettings

Handler = Any
VIEW_TYPES = {"view_submission", "view_closed"}


class Malformed(Exception):
    pass


def _payload(body: str, content_type: str) -> dict[str, Any] | None:
    """The request as Bolt will see it; None when there is no JSON to check."""
    if not body.strip():
        return None  # Bolt answers an empty request 404 itself
    if content_type.startswith("application/json"):
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise Malformed("a JSON body must be an object")
        return parsed
    form = parse_qs(body, keep_blank_values=True)
    if "payload" not in form:
        return None
    parsed = json.loads(form["payload"][0])
    if not isinstance(parsed, dict):
        raise Malformed("payload must be a JSON object")
    return parsed


def _check_routing_fields(payload: dict[str, Any]) -> None:
    kind = payload.get("type")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            raise Malformed("block_actions without actions")
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            raise Malformed("an action without action_id")
    elif kind in VIEW_TYPES:
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("type"), str):
            raise Malformed("a view payload without view.type")
        if not isinstance(view.get("callback_id"), str):
            raise Malformed("a view payload without view.callback_id")


def slack_request_guard(settings: SlackSettings) -> Any:
    verifier = SignatureVerifier(settings.signing_secret or "")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != "/slack/events":
            return await handler(request)
        raw = await request.read()  # aiohttp keeps it: Bolt reads the same bytes again
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or not verifier.is_valid(raw, timestamp, signature):
            return web.Response(status=401, text="invalid signature")
        try:
            payload = _payload(raw.decode("utf-8"), request.content_type or "")
            if payload is not None:
                _check_routing_fields(payload)
        except (UnicodeDecodeError, ValueError, Malformed):
            return web.Response(status=400, text="malformed request")
        return await handler(request)

    return guard
