"""OAuth installs: Bolt's OAuth flow on slack_sdk's async SQLAlchemy stores, kept in the
same database as everything else (DATABASE_URL, SQLite or PostgreSQL).

SLACK_STATE_SECRET signs the OAuth `state` values: a state that was not issued by this
app (with this secret) is refused before the database is asked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import OAuthSettings
from commander.store.db import Database
from commander.store.slack_tables import BOTS, INSTALLATIONS, OAUTH_STATES
from handlers.workspaces import ClientFactory, Installations, owner_scope

log = logging.getLogger(__name__)

STATE_EXPIRY_S = 600
OnInstall = Callable[[str], Awaitable[Any]]


class InstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's store; a saved installation also tells `on_install` its owner scope
    (a reinstall within the uninstall grace period keeps the workspace's data)."""

    def __init__(self, client_id: str, db: Database) -> None:
        super().__init__(
            client_id, db.engine, bots_table_name=BOTS, installations_table_name=INSTALLATIONS
        )
        self.on_install: OnInstall | None = None

    async def async_save(self, installation: Installation) -> None:
        await super().async_save(installation)
        scope = owner_scope(
            installation.team_id, installation.enterprise_id, installation.is_enterprise_install
        )
        log.info("installed in %s", scope)
        if self.on_install is not None:
            await self.on_install(scope)


class SignedStateStore(AsyncOAuthStateStore):
    def __init__(self, inner: AsyncOAuthStateStore, secret: str) -> None:
        self._inner = inner
        self._key = secret.encode()

    @property
    def logger(self) -> logging.Logger:
        return log

    def _sign(self, state: str) -> str:
        return hmac.new(self._key, state.encode(), hashlib.sha256).hexdigest()[:32]

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = await self._inner.async_issue(*args, **kwargs)
        return f"{state}.{self._sign(state)}"

    async def async_consume(self, state: str) -> bool:
        raw, _, signature = state.rpartition(".")
        if not raw or not hmac.compare_digest(signature, self._sign(raw)):
            log.warning("refused an OAuth state this app did not issue")
            return False
        return await self._inner.async_consume(raw)


def oauth_parts(
    oauth: OAuthSettings, db: Database, base_client: AsyncWebClient, make_client: ClientFactory
) -> tuple[AsyncOAuthSettings, Installations]:
    """Bolt's OAuth settings and the per-workspace client lookup, on one store."""
    store = InstallationStore(oauth.client_id, db)
    states = SignedStateStore(
        AsyncSQLAlchemyOAuthStateStore(STATE_EXPIRY_S, db.engine, table_name=OAUTH_STATES),
        oauth.state_secret,
    )
    settings = AsyncOAuthSettings(
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        scopes=list(oauth.scopes),
        user_scopes=[],
        redirect_uri=oauth.redirect_uri,
        authorization_url=oauth.authorize_url,
        installation_store=store,
        state_store=states,
        token_rotation_expiration_minutes=oauth.rotation_minutes,
    )
    # Bolt's own authorize would refresh rotating tokens through a client pointed at
    # slack.com; this one uses SLACK_API_URL like every other call.
    settings.authorize = AsyncInstallationStoreAuthorize(
        logger=log,
        installation_store=store,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        token_rotation_expiration_minutes=oauth.rotation_minutes,
        client=base_client,
    )
    rotator = AsyncTokenRotator(
        client_id=oauth.client_id, client_secret=oauth.client_secret, client=base_client
    )
    return settings, Installations(store, make_client, rotator, oauth.rotation_minutes)


def add_install_routes(web_app: web.Application, app: AsyncApp) -> None:
    """The install page and OAuth redirect on another aiohttp app (Socket Mode serves
    only probes over HTTP, and must not serve unsigned /slack/events)."""
    flow = app.oauth_flow
    if flow is None:
        return

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(
            await flow.handle_installation(await to_bolt_request(request))
        )

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    web_app.router.add_get(flow.install_path, install)
    web_app.router.add_get(flow.redirect_uri_path, redirect)
