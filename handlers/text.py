"""Text helpers for Slack: mention stripping, escaping, splitting long markdown."""

from __future__ import annotations

import html
import re

MARKDOWN_BLOCK_MAX = 11_000  # Slack's markdown block takes 12,000; keep a margin
_FENCE = "```"


def clean_user_text(text: str, bot_user_id: str) -> str:
    """Slack message text → what the model should read."""
    text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text or "")
    return html.unescape(text).strip()


def _cut_point(text: str, limit: int) -> int:
    for separator in ("\n\n", "\n", " "):
        cut = text.rfind(separator, limit // 2, limit)
        if cut != -1:
            return cut + len(separator)
    return limit


def split_markdown(text: str, limit: int = MARKDOWN_BLOCK_MAX) -> list[str]:
    """Split at paragraph or line breaks; a code fence cut in two is closed and reopened."""
    parts: list[str] = []
    while len(text) > limit:
        cut = _cut_point(text, limit - len(_FENCE) - 1)
        head, text = text[:cut], text[cut:]
        if head.count(_FENCE) % 2 == 1:
            head, text = head.rstrip("\n") + "\n" + _FENCE, _FENCE + "\n" + text
        parts.append(head)
    parts.append(text)
    return parts
