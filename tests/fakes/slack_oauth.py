"""OAuth installs in the fake Slack: the install page, oauth.v2.access and tokens per
workspace.

A test says which workspace the next visitor of the authorize page installs into
(``slack.oauth.choose(...)``), as a person would pick one on Slack's consent screen.
``GET /oauth/v2/authorize?client_id=…&scope=…&state=…`` then redirects (302) to the
app's redirect URL with ``code`` and ``state``; ``oauth.v2.access`` trades the code for
a bot token of that workspace, in the shape Bolt's OAuth flow and slack_sdk's token
rotator parse (access_token, token_type "bot", scope, bot_user_id, app_id, team,
enterprise, authed_user, is_enterprise_install; with rotation also refresh_token and
expires_in). ``grant_type=refresh_token`` rotates: a new access and refresh token, the
old access token keeps working until it expires (as Slack's do).

Every Web API call is checked against the tokens issued: unknown -> ``invalid_auth``,
expired -> ``token_expired``, revoked (``slack.oauth.revoke``) -> ``token_revoked``.
``auth.test`` answers with the identity of the token it was called with.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.slack_models import ApiError, Call, JsonDict, random_id


@dataclass(frozen=True)
class Workspace:
    """Who a token speaks for (auth.test); the primary one comes from FakeSlack(...)."""

    bot_token: str
    team_id: str | None
    bot_user_id: str
    bot_id: str
    app_id: str = "A1"
    team_name: str = "Fake Workspace"
    bot_name: str = "commander"
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False


@dataclass
class Grant:
    workspace: Workspace
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class Choice:
    """What the person picks on the consent screen."""

    team_id: str | None
    installer: str
    enterprise_id: str | None = None
    org_wide: bool = False
    bot_user_id: str = ""


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_url: str = ""
    # Token rotation on: tokens expire after expires_in seconds and come with a refresh token.
    rotation: bool = False
    expires_in: int = 43_200


@dataclass
class OAuthState:
    app: OAuthApp | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, Workspace] = field(default_factory=dict)
    codes: dict[str, Choice] = field(default_factory=dict)
    choice: Choice | None = None

    def configure(self, app: OAuthApp) -> None:
        self.app = app

    def choose(
        self,
        team_id: str | None,
        installer: str,
        *,
        enterprise_id: str | None = None,
        org_wide: bool = False,
        bot_user_id: str = "",
    ) -> None:
        self.choice = Choice(team_id, installer, enterprise_id, org_wide, bot_user_id)

    def add(self, workspace: Workspace, expires_at: float | None = None) -> None:
        self.grants[workspace.bot_token] = Grant(workspace, expires_at)

    def revoke(self, token: str) -> None:
        self.grants[token].revoked = True

    def expire(self, token: str) -> None:
        self.grants[token].expires_at = time.time() - 1

    def check(self, token: str | None) -> Workspace:
        grant = self.grants.get(token or "")
        if grant is None:
            raise ApiError("invalid_auth")
        if grant.revoked:
            raise ApiError("token_revoked")
        if grant.expires_at is not None and grant.expires_at <= time.time():
            raise ApiError("token_expired")
        return grant.workspace

    def tokens_of(self, team_or_enterprise: str) -> list[str]:
        return [
            token
            for token, grant in self.grants.items()
            if team_or_enterprise in (grant.workspace.team_id, grant.workspace.enterprise_id)
        ]

    # ----- oauth.v2.access

    def access(self, call: Call) -> JsonDict:
        app = self.app
        args = {**call.args, **basic_auth(call.headers)}
        if app is None:
            raise ApiError("invalid_client_id")
        if args.get("client_id") != app.client_id:
            raise ApiError("invalid_client_id")
        if args.get("client_secret") != app.client_secret:
            raise ApiError("bad_client_secret")
        if args.get("grant_type") == "refresh_token":
            return self._refresh(str(args.get("refresh_token") or ""))
        choice = self.codes.pop(str(args.get("code") or ""), None)
        if choice is None:
            raise ApiError("invalid_code")
        workspace = self._new_workspace(choice)
        return self._token_answer(workspace, choice.installer)

    def _new_workspace(self, choice: Choice) -> Workspace:
        assert self.app is not None
        return Workspace(
            bot_token=f"xoxb-{secrets.token_hex(8)}",
            team_id=None if choice.org_wide else choice.team_id,
            bot_user_id=choice.bot_user_id or random_id("U"),
            bot_id=random_id("B"),
            team_name=f"Workspace {choice.team_id}",
            enterprise_id=choice.enterprise_id,
            enterprise_name=f"Org {choice.enterprise_id}" if choice.enterprise_id else None,
            is_enterprise_install=choice.org_wide,
        )

    def _token_answer(self, workspace: Workspace, installer: str | None) -> JsonDict:
        assert self.app is not None
        expires_at = time.time() + self.app.expires_in if self.app.rotation else None
        self.add(workspace, expires_at)
        body: JsonDict = {
            "ok": True,
            "app_id": workspace.app_id,
            "access_token": workspace.bot_token,
            "token_type": "bot",
            "scope": "chat:write,commands,files:read,files:write,im:history,users:read",
            "bot_user_id": workspace.bot_user_id,
            "team": {"id": workspace.team_id, "name": workspace.team_name}
            if workspace.team_id
            else None,
            "enterprise": {"id": workspace.enterprise_id, "name": workspace.enterprise_name}
            if workspace.enterprise_id
            else None,
            "is_enterprise_install": workspace.is_enterprise_install,
        }
        if installer:
            body["authed_user"] = {"id": installer}
        if self.app.rotation:
            refresh = f"xoxe-1-{secrets.token_hex(12)}"
            self.refresh_tokens[refresh] = workspace
            body["refresh_token"], body["expires_in"] = refresh, self.app.expires_in
        return body

    def _refresh(self, refresh_token: str) -> JsonDict:
        workspace = self.refresh_tokens.pop(refresh_token, None)
        if workspace is None:
            raise ApiError("invalid_refresh_token")
        rotated = replace(workspace, bot_token=f"xoxb-{secrets.token_hex(8)}")
        return self._token_answer(rotated, None)

    # ----- the consent screen

    async def authorize(self, request: web.Request) -> web.Response:
        app, choice = self.app, self.choice
        query = request.query
        if app is None or query.get("client_id") != app.client_id:
            return web.Response(status=400, text="invalid_client_id")
        if choice is None:
            return web.Response(status=400, text="no workspace chosen (slack.oauth.choose)")
        code = f"{int(time.time())}.{secrets.token_hex(10)}"
        self.codes[code] = choice
        target = query.get("redirect_uri") or app.redirect_url
        params = {"code": code, "state": query.get("state", "")}
        raise web.HTTPFound(f"{target}?{urlencode(params)}")


def basic_auth(headers: dict[str, str]) -> dict[str, str]:
    """client_id and client_secret from HTTP Basic auth, the way slack_sdk sends them."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not value.startswith("Basic "):
        return {}
    try:
        decoded = base64.b64decode(value[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return {}
    client_id, _, secret = decoded.partition(":")
    return {"client_id": client_id, "client_secret": secret}
