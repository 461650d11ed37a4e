"""Which Slack client serves which workspace.

In single-token mode there is one client. With OAuth installs every workspace (or Grid
org) has its own bot token in the installation store; work done after the
acknowledgement (a queued message, a purge notice) looks it up here, refreshing a
rotating token first when it is about to expire.

People are keyed by *owner scope* (see commander/store/tenancy_models.py): the
enterprise id for an org-wide Grid install, the workspace id otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], AsyncWebClient]


@dataclass(frozen=True)
class Where:
    """The installation a request came through."""

    team_id: str | None
    enterprise_id: str | None = None
    is_enterprise_install: bool = False

    @property
    def scope(self) -> str:
        return owner_scope(self.team_id, self.enterprise_id, self.is_enterprise_install)

    def to_payload(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "enterprise_install": self.is_enterprise_install,
        }

    @classmethod
    def of_payload(cls, workspace: str | None, payload: Mapping[str, Any]) -> Where:
        return cls(
            workspace,
            payload.get("enterprise_id"),
            bool(payload.get("enterprise_install")),
        )

    @classmethod
    def of_context(cls, context: Mapping[str, Any], fallback_team: str | None = None) -> Where:
        return cls(
            context.get("team_id") or fallback_team,
            context.get("enterprise_id"),
            bool(context.get("is_enterprise_install")),
        )


def owner_scope(team_id: str | None, enterprise_id: str | None, enterprise_install: bool) -> str:
    if enterprise_install and enterprise_id:
        return enterprise_id
    return team_id or enterprise_id or ""


@dataclass(frozen=True)
class SlackHandle:
    client: AsyncWebClient
    bot_user_id: str


class Workspaces(Protocol):
    oauth: bool

    async def handle(self, where: Where) -> SlackHandle | None:
        """The client for that installation; None when the app is no longer installed."""
        ...

    def scope(self, where: Where, person_team: str) -> str:
        """The owner scope of a person whose home workspace is `person_team`."""
        ...


class SingleWorkspace:
    """Single-token mode: one client for everything; people keyed as they always were."""

    oauth = False

    def __init__(self, client: AsyncWebClient, bot_user_id: str) -> None:
        self._handle = SlackHandle(client, bot_user_id)

    async def handle(self, where: Where) -> SlackHandle | None:
        return self._handle

    def scope(self, where: Where, person_team: str) -> str:
        return person_team


class Installations:
    """OAuth mode: each installation's own bot token, rotated when it is about to expire."""

    oauth = True

    def __init__(
        self,
        store: AsyncInstallationStore,
        make_client: ClientFactory,
        rotator: AsyncTokenRotator | None,
        rotation_minutes: int,
    ) -> None:
        self.store = store
        self._make_client = make_client
        self._rotator = rotator
        self._rotation_minutes = rotation_minutes

    async def handle(self, where: Where) -> SlackHandle | None:
        installation = await self.store.async_find_installation(
            enterprise_id=where.enterprise_id,
            team_id=where.team_id,
            is_enterprise_install=where.is_enterprise_install,
        )
        if installation is None or not installation.bot_token:
            return None
        if self._rotator is not None and installation.bot_refresh_token:
            try:
                rotated = await self._rotator.perform_token_rotation(
                    installation=installation,
                    minutes_before_expiration=self._rotation_minutes,
                )
            except (SlackTokenRotationError, SlackApiError) as exc:
                log.error("could not refresh the bot token of %s: %s", where.scope, exc)
                return None
            if rotated is not None:
                await self.store.async_save(rotated)
                installation = rotated
        assert installation.bot_token is not None
        return SlackHandle(
            self._make_client(installation.bot_token), installation.bot_user_id or ""
        )

    def scope(self, where: Where, person_team: str) -> str:
        if where.is_enterprise_install and where.enterprise_id:
            return where.enterprise_id
        return person_team
