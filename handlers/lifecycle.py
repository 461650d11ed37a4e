"""The app leaves a workspace: app_uninstalled, or its bot token revoked (OAuth installs).

Queued work stops and the installation goes at once; the workspace's data goes after
UNINSTALL_GRACE_DAYS (at once by default), by commander.tenancy.Departures.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from handlers.context import Deps

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
