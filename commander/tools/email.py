"""The send_email tool (drafts only) and the webhook that delivers confirmed emails."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from commander.tools.base import EmailDraft, FunctionTool, ToolContext, ToolError, str_arg

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 10
MAX_SUBJECT_CHARS = 200
MAX_CONTENT_CHARS = 20_000

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def parse_recipients(raw: str) -> list[str]:
    """Split a comma-separated address list, validating each address."""
    if _CONTROL_RE.search(raw):
        raise ToolError("'to' must not contain line breaks or control characters")
    addresses: list[str] = []
    for part in raw.split(","):
        address = part.strip()
        if not address:
            continue
        if len(address) > 254 or not _EMAIL_RE.fullmatch(address):
            raise ToolError(f"invalid email address {address[:80]!r}")
        if address.lower() not in (a.lower() for a in addresses):
            addresses.append(address)
    if not addresses:
        raise ToolError("'to' must contain at least one email address")
    if len(addresses) > MAX_RECIPIENTS:
        raise ToolError(f"too many recipients ({len(addresses)}); the limit is {MAX_RECIPIENTS}")
    return addresses


def build_draft(to: str, subject: str, content: str) -> EmailDraft:
    """Validate raw tool arguments into an EmailDraft (raises ToolError)."""
    recipients = parse_recipients(to)
    subject = subject.strip()
    if _CONTROL_RE.search(subject):
        raise ToolError("'subject' must be a single line without control characters")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise ToolError(f"'subject' is too long (max {MAX_SUBJECT_CHARS} characters)")
    if not content.strip():
        raise ToolError("'content' must not be empty")
    if len(content) > MAX_CONTENT_CHARS:
        raise ToolError(f"'content' is too long (max {MAX_CONTENT_CHARS} characters)")
    return EmailDraft(to=recipients, subject=subject, content=content)


async def _send_email(args: dict[str, Any], ctx: ToolContext) -> str:
    draft = build_draft(str_arg(args, "to"), str_arg(args, "subject", ""), str_arg(args, "content"))
    pending_id = await ctx.propose_email(draft)
    return (
        f"Email draft {pending_id} to {', '.join(draft.to)} is waiting for the owner to confirm "
        "it in Slack. It has NOT been sent yet; tell the user it awaits their confirmation."
    )


def send_email_tool() -> FunctionTool:
    return FunctionTool(
        name="send_email",
        description=(
            "Sends an email to a recipient(s). The email is saved as a draft that the user "
            "must confirm in Slack before it is sent."
        ),
        parameters={
            "type": "object",
            "properties": {
                "to": {
                    "type": "string",
                    "description": "The email(s) the email should be sent to, comma-separated.",
                },
                "subject": {"type": "string", "description": "The subject of the email."},
                "content": {"type": "string", "description": "The content of the email."},
            },
            "required": ["to", "subject", "content"],
            "additionalProperties": False,
        },
        handler=_send_email,
    )


class EmailSendError(Exception):
    """Delivery through the email webhook failed; the message is safe to show users."""


class EmailWebhook:
    """Delivers confirmed drafts to an HTTP email webhook, e.g. an Azure Logic App trigger.

    The URL may carry a SAS signature in its query string, so only scheme and host are
    ever logged or put into error messages.
    """

    def __init__(
        self, url: str, client: httpx.AsyncClient | None = None, timeout_s: float = 15
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("email webhook URL must be an http(s) URL")
        self._url = url
        self._safe_url = f"{parts.scheme}://{parts.hostname}"
        self._client = client
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"EmailWebhook({self._safe_url})"

    async def send(self, draft: EmailDraft) -> None:
        # Same JSON shape as the Azure sample's Logic App trigger, plus the subject.
        payload = {"to": ",".join(draft.to), "subject": draft.subject, "content": draft.content}
        try:
            if self._client is None:
                async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                    response = await client.post(self._url, json=payload)
            else:
                response = await self._client.post(self._url, json=payload, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            logger.warning("email webhook %s failed: %s", self._safe_url, reason)
            # "from None": the httpx exception may embed the full URL, SAS key included.
            raise EmailSendError(f"could not reach the email service ({reason})") from None
        if not response.is_success:
            logger.warning(
                "email webhook %s returned HTTP %s", self._safe_url, response.status_code
            )
            raise EmailSendError(f"the email service returned HTTP {response.status_code}")
        logger.info(
            "email webhook %s accepted an email to %d recipient(s)", self._safe_url, len(draft.to)
        )
