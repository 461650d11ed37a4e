"""The usage part of App Home: a person's own usage today and this month; for workspace
admins and owners (users.info is_admin / is_owner) also the workspace's totals this
month and its top users. Anyone else never gets the workspace part."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from commander.usage import Totals, UsageBook
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)

MAX_HOME_BLOCKS = 100
ADMIN_HEADER = "Workspace usage this month (admins only)"


async def usage_blocks(
    book: UsageBook, client: AsyncWebClient, scope: str, user_id: str
) -> list[dict[str, Any]]:
    today = await book.person_today(scope, user_id)
    month = await book.person_month(scope, user_id)
    per_day = book.settings.tokens_per_day
    cap = f" of {per_day:,}" if per_day else ""
    mine = (
        f"*Today:* {_line(today)} ({today.tokens:,}{cap} tokens)\n"
        f"*This month:* {_line(month)} ({month.tokens:,} tokens)"
    )
    found = [_divider(), _header("Your usage"), _section(mine)]
    if not await is_workspace_admin(client, user_id):
        return found
    total = await book.scope_month(scope)
    per_month = book.settings.workspace_tokens_per_month
    cap = f" of {per_month:,}" if per_month else ""
    top = await book.top_users(scope)
    ranking = "\n".join(
        f"{i}. <@{user}>: {tokens:,} tokens" for i, (user, tokens) in enumerate(top, 1)
    )
    found += [
        _header(ADMIN_HEADER),
        _section(f"{_line(total)} ({total.tokens:,}{cap} tokens)"),
        _section("*Top users*\n" + (ranking or "_nobody yet_")),
    ]
    return found


async def is_workspace_admin(client: AsyncWebClient, user_id: str) -> bool:
    try:
        answer = await client.users_info(user=user_id)
    except SLACK_ERRORS as exc:
        log.warning("users.info for %s failed (%s): not shown as an admin", user_id, exc)
        return False
    user = answer.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner"))


def with_usage(view: dict[str, Any], extra: list[dict[str, Any]]) -> dict[str, Any]:
    room = MAX_HOME_BLOCKS - len(view.get("blocks", []))
    return {**view, "blocks": [*view.get("blocks", []), *extra[: max(0, room)]]}


def _line(t: Totals) -> str:
    return (
        f"{t.turns} message(s), {t.input_tokens:,} in ({t.cached_tokens:,} cached), "
        f"{t.output_tokens:,} out ({t.reasoning_tokens:,} reasoning), "
        f"{t.tool_calls} tool call(s), {t.files_added} file(s)"
    )


def _divider() -> dict[str, Any]:
    return {"type": "divider"}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
