"""OAuth and budget settings, and the fake Slack's OAuth side against the real SDK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import load_slack_settings
from commander.settings import ConfigError
from commander.tenancy_settings import load_tenancy_settings
from commander.usage import load_prices
from tests.fakes.slack_oauth import OAuthApp
from tests.fakes.slack_server import FakeSlack

OAUTH = {
    "SLACK_CLIENT_ID": "1.2",
    "SLACK_CLIENT_SECRET": "s",
    "SLACK_STATE_SECRET": "t",
    "SLACK_SIGNING_SECRET": "x",
}


def test_oauth_settings_need_all_three_and_no_bot_token() -> None:
    settings = load_slack_settings(OAUTH)
    assert settings.oauth is not None and settings.bot_token == ""
    assert "users:read" in settings.oauth.scopes
    with pytest.raises(ConfigError, match="SLACK_STATE_SECRET is not set"):
        load_slack_settings({k: v for k, v in OAUTH.items() if k != "SLACK_STATE_SECRET"})
    with pytest.raises(ConfigError, match="Unset SLACK_BOT_TOKEN"):
        load_slack_settings({**OAUTH, "SLACK_BOT_TOKEN": "xoxb-1"})
    assert "secret" not in repr(settings.oauth)  # secrets stay out of logs and errors
    single = load_slack_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "x"})
    assert single.oauth is None


def test_budget_and_retention_settings(tmp_path: Path) -> None:
    assert load_tenancy_settings({}).tokens_per_day is None
    loaded = load_tenancy_settings(
        {"TOKENS_PER_DAY": "1000", "UNINSTALL_GRACE_DAYS": "1.5", "RETENTION_DAYS": "90"}
    )
    assert (loaded.tokens_per_day, loaded.uninstall_grace_days) == (1000, 1.5)
    assert loaded.retention_days == 90
    with pytest.raises(ConfigError, match="TOKENS_PER_DAY must be a whole number"):
        load_tenancy_settings({"TOKENS_PER_DAY": "lots"})
    with pytest.raises(ConfigError, match="must not be negative"):
        load_tenancy_settings({"UNINSTALL_GRACE_DAYS": "-1"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_tenancy_settings({"PRICES_FILE": str(tmp_path / "nope.json")})
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"models": {"m": {"output": 1}}}))
    with pytest.raises(ConfigError, match="is not a prices file"):
        load_prices(bad)


async def test_fake_oauth_speaks_like_slack() -> None:
    with FakeSlack(bot_token="xoxb-main", team_id="T1") as slack:
        slack.oauth.configure(OAuthApp("cid", "secret", "http://app/redirect", rotation=True))
        client = AsyncWebClient(base_url=slack.api_url)
        with pytest.raises(SlackApiError) as refused:
            await client.oauth_v2_access(client_id="cid", client_secret="wrong", code="x")
        assert refused.value.response["error"] == "bad_client_secret"
        slack.oauth.choose("T2", "U9", bot_user_id="UB2")
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(
                slack.authorize_url, params={"client_id": "cid", "state": "s1"}
            )
        assert consent.status_code == 302
        code = httpx.URL(consent.headers["location"]).params["code"]
        granted = await client.oauth_v2_access(client_id="cid", client_secret="secret", code=code)
        assert granted["token_type"] == "bot" and granted["team"]["id"] == "T2"
        assert granted["refresh_token"] and granted["expires_in"] > 0
        token = granted["access_token"]
        me = await client.auth_test(token=token)
        assert (me["team_id"], me["user_id"]) == ("T2", "UB2")
        assert (await client.auth_test(token="xoxb-main"))["team_id"] == "T1"
        refreshed = await client.oauth_v2_access(
            client_id="cid",
            client_secret="secret",
            grant_type="refresh_token",
            refresh_token=granted["refresh_token"],
        )
        assert refreshed["access_token"] != token and refreshed["token_type"] == "bot"
        slack.oauth.expire(token)
        with pytest.raises(SlackApiError) as expired:
            await client.auth_test(token=token)
        assert expired.value.response["error"] == "token_expired"
        slack.oauth.revoke(refreshed["access_token"])
        with pytest.raises(SlackApiError) as revoked:
            await client.auth_test(token=refreshed["access_token"])
        assert revoked.value.response["error"] == "token_revoked"
        with pytest.raises(SlackApiError) as used:
            await client.oauth_v2_access(client_id="cid", client_secret="secret", code=code)
        assert used.value.response["error"] == "invalid_code"
