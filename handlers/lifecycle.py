"""The app leaves a workspace: app_uninstalled, or its bot token revoked (OAuth installs).
Also the retention notice (RETENTION_DAYS) sent to a person before their data goes.

Queued work stops and the installation goes at once; the workspace's data goes after
UNINSTALL_GRACE_DAYS (at once by default), by commander.tenancy.Departures.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from commander.retention import Notify
from handlers.context import Deps
from handlers.replies import SLACK_ERRORS
from handlers.workspaces import SlackHandle, Where

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    if deps.departures is None:
        return

    async def on_uninstalled(body: dict[str, Any]) -> None:
        await left(deps, body, "app_uninstalled")

    async def on_tokens_revoked(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Only the bot token matters: the app asks for no user tokens.
        if (event.get("tokens") or {}).get("bot"):
            await left(deps, body, "tokens_revoked")

    app.event("app_uninstalled")(on_uninstalled)
    app.event("tokens_revoked")(on_tokens_revoked)


async def left(deps: Deps, body: dict[str, Any], reason: str) -> None:
    assert deps.departures is not None
    where = deps.where(body)
    departure = await deps.departures.left(
        where.scope, enterprise_id=where.enterprise_id, team_id=where.team_id, reason=reason
    )
    if deps.departures.grace.total_seconds() <= 0:
        deps.spawn(deps.departures.purge_due(), f"purge {departure.scope}")


def retention_notifier(deps: Deps) -> Notify:
    """Tells a person by DM, with their workspace's token, when their assistant's stored
    data will be cleared for lack of use."""

    async def notify(scope: str, user_id: str, name: str, when: datetime) -> bool:
        handle = await _handle_for_scope(deps, scope)
        if handle is None:
            return False
        text = (
            f"Your assistant *{name}* has not been used for a while. On {when:%Y-%m-%d} (UTC) "
            "its conversation history and files will be deleted; its name, instructions and "
            "tools stay. Send it a message before then to keep them."
        )
        try:
            await handle.client.chat_postMessage(channel=user_id, text=text)
        except SLACK_ERRORS as exc:
            log.warning("could not tell %s/%s about retention: %s", scope, user_id, exc)
            return False
        return True

    return notify


async def _handle_for_scope(deps: Deps, scope: str) -> SlackHandle | None:
    if deps.workspaces is None:
        return None
    handle = await deps.workspaces.handle(Where(scope))
    if handle is None and deps.workspaces.oauth:  # an org-wide install is found by its id
        handle = await deps.workspaces.handle(Where(None, scope, True))
    return handle
