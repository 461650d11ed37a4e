"""Bot settings: the core's, plus Slack's. Read from the environment and `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from commander.api.settings import ApiSettings, load_api_settings
from commander.settings import ConfigError, CoreSettings, load_core_settings
from commander.tenancy_settings import TenancySettings, load_tenancy_settings

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


DEFAULT_SCOPES = (
    "app_mentions:read,assistant:write,channels:history,chat:write,commands,"
    "files:read,files:write,im:history,users:read"
)
DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"


@dataclass(frozen=True)
class OAuthSettings:
    """Multi-workspace install through Slack's OAuth flow (all three secrets set)."""

    client_id: str
    client_secret: str = field(repr=False)
    state_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    redirect_uri: str | None = None
    # Rotated tokens are refreshed this long before they expire.
    rotation_minutes: int = 120


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str  # "" with OAuth: every workspace has its own, in the installation store
    signing_secret: str | None
    app_token: str | None
    api_url: str
    port: int
    oauth: OAuthSettings | None = None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


@dataclass(frozen=True)
class BotSettings:
    core: CoreSettings
    slack: SlackSettings
    tenancy: TenancySettings = field(default_factory=TenancySettings)
    api: ApiSettings | None = None  # the REST API, served only when API_KEYS is set


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be a number between 1 and 65535, got {raw!r}.") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"PORT must be a number between 1 and 65535, got {raw!r}.")
    return port


def _api_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"SLACK_API_URL must be an http(s) URL, got {raw!r}.")
    return raw if raw.endswith("/") else raw + "/"


def load_oauth_settings(env: Mapping[str, str]) -> OAuthSettings | None:
    names = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET")
    values = {name: env.get(name, "").strip() for name in names}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"OAuth install needs {', '.join(names)}; {', '.join(missing)} is not set."
        )
    scopes = tuple(
        s.strip() for s in (env.get("SLACK_SCOPES") or DEFAULT_SCOPES).split(",") if s.strip()
    )
    authorize_url = env.get("SLACK_AUTHORIZE_URL", "").strip() or DEFAULT_AUTHORIZE_URL
    if urlsplit(authorize_url).scheme not in ("http", "https"):
        raise ConfigError(f"SLACK_AUTHORIZE_URL must be an http(s) URL, got {authorize_url!r}.")
    return OAuthSettings(
        client_id=values["SLACK_CLIENT_ID"],
        client_secret=values["SLACK_CLIENT_SECRET"],
        state_secret=values["SLACK_STATE_SECRET"],
        scopes=scopes,
        authorize_url=authorize_url,
        redirect_uri=env.get("SLACK_REDIRECT_URI", "").strip() or None,
    )


def load_slack_settings(env: Mapping[str, str]) -> SlackSettings:
    oauth = load_oauth_settings(env)
    bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    if oauth is not None and bot_token:
        raise ConfigError(
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set. Unset SLACK_BOT_TOKEN to install "
            "through OAuth (each workspace then has its own token), or the OAuth settings."
        )
    if not bot_token and oauth is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set. Copy the Bot User OAuth Token (xoxb-…).")
    if bot_token and not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")
    signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip() or None
    if not app_token and not signing_secret:
        raise ConfigError(
            "Set SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET to serve HTTP."
        )
    return SlackSettings(
        bot_token=bot_token,
        signing_secret=signing_secret,
        app_token=app_token,
        api_url=_api_url(env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL),
        port=_port(env.get("PORT", "").strip() or "3000"),
        oauth=oauth,
    )


def load_settings(env: Mapping[str, str] | None = None) -> BotSettings:
    env = os.environ if env is None else env
    return BotSettings(
        core=load_core_settings(env),
        slack=load_slack_settings(env),
        tenancy=load_tenancy_settings(env),
        api=load_api_settings(env),
    )
