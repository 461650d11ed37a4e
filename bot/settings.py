"""Bot settings: the core's, plus Slack's. Read from the environment and `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from commander.api.settings import ApiSettings, load_api_settings
from commander.settings import ConfigError, CoreSettings, load_core_settings

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str
    port: int

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


@dataclass(frozen=True)
class BotSettings:
    core: CoreSettings
    slack: SlackSettings
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


def load_slack_settings(env: Mapping[str, str]) -> SlackSettings:
    bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    if not bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set. Copy the Bot User OAuth Token (xoxb-…).")
    if not bot_token.startswith("xoxb-"):
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
    )


def load_settings(env: Mapping[str, str] | None = None) -> BotSettings:
    env = os.environ if env is None else env
    return BotSettings(
        core=load_core_settings(env), slack=load_slack_settings(env), api=load_api_settings(env)
    )
