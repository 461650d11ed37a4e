"""App Home: the user's assistant at a glance, refreshed after every change."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from commander.errors import CommanderError
from handlers import blocks
from handlers.context import Deps, error_ref
from handlers.replies import SLACK_ERRORS
from handlers.usage_view import usage_blocks, with_usage

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_home_opened(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        team_id = deps.scope(body, str(body.get("team_id") or deps.slack.team_id))
        deps.spawn(publish_home(deps, client, team_id, str(event["user"])), "app_home_opened")

    async def on_other_event(event: dict[str, Any]) -> None:
        """An event type no listener handles (e.g. a new subscription in the manifest):
        answered 200 so Slack neither retries it nor counts a delivery failure."""
        log.debug("event %r ignored", str(event.get("type") or "")[:40])

    app.event("app_home_opened")(on_home_opened)
    # Home registers last (handlers.registry), and Bolt runs only the first listener that
    # matches: this catch-all must stay after every other event listener.
    app.event(re.compile(".*"))(on_other_event)


async def publish_home(
    deps: Deps,
    client: AsyncWebClient,
    team_id: str,
    user_id: str,
    notice: str | None = None,
) -> None:
    """Show the user's current assistant (or the intro) on their Home tab."""
    try:
        status = await deps.commander.status(team_id, user_id)
        commander = deps.commander
        view = blocks.home_view(
            status,
            user_id,
            notice=notice,
            choices=commander.settings.model_choices,
            available_tools=commander.available_tools,
        )
        if deps.usage is not None:
            view = with_usage(view, await usage_blocks(deps.usage, client, team_id, user_id))
        await client.views_publish(user_id=user_id, view=view)
    except SLACK_ERRORS as exc:
        log.warning("could not publish the home view of %s/%s: %s", team_id, user_id, exc)
    except Exception as exc:
        failure_text(exc, "showing the home view")


def failure_text(exc: BaseException, doing: str) -> str:
    """One sentence for the user; details of unexpected failures go to the log.

    Call it from an `except` block so the traceback is logged with the reference.
    """
    if isinstance(exc, CommanderError):
        return exc.user_message
    ref = error_ref()
    log.exception("%s failed (ref %s)", doing, ref)
    return f"Something went wrong on our side. Please try again (reference {ref})."
