import os
import subprocess
import sys

import pytest

from bot.settings import load_settings
from commander.settings import DEFAULT_MODEL, ConfigError, load_core_settings

DEPRECATED_NOTE_MODELS = ("gpt-4o", "gpt-4.1", "gpt-5", "o3", "gpt-4o-mini")


def test_openai_defaults() -> None:
    s = load_core_settings({"OPENAI_API_KEY": "sk-x"})
    assert s.provider == "openai"
    assert s.model == DEFAULT_MODEL
    assert s.database_url == "sqlite+aiosqlite:///data/commander.db"
    assert s.email_uri is None


def test_default_model_is_not_deprecated_in_the_sdk() -> None:
    import openai.types.shared.chat_model as chat_model

    source = open(chat_model.__file__, encoding="utf-8").read()
    deprecated_section = source.split('"""Deprecated values:', 1)[1]
    assert f'"{DEFAULT_MODEL}"' not in deprecated_section
    assert f'"{DEFAULT_MODEL}"' in source


def test_openai_base_url_and_model() -> None:
    s = load_core_settings(
        {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_MODEL": "m"}
    )
    assert (s.base_url, s.model) == ("http://127.0.0.1:1/v1", "m")


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://res.openai.azure.com", "https://res.openai.azure.com/openai/v1/"),
        ("https://res.openai.azure.com/", "https://res.openai.azure.com/openai/v1/"),
        ("https://res.openai.azure.com/openai/v1/", "https://res.openai.azure.com/openai/v1/"),
    ],
)
def test_azure_v1_base_url(endpoint: str, expected: str) -> None:
    s = load_core_settings(
        {
            "AZURE_OPENAI_ENDPOINT": endpoint,
            "AZURE_OPENAI_API_KEY": "k",
            "AZURE_OPENAI_DEPLOYMENT": "dep",
        }
    )
    assert (s.provider, s.base_url, s.model, s.api_key) == ("azure", expected, "dep", "k")
    assert not s.uses_entra_id


def test_azure_without_key_uses_entra_id() -> None:
    s = load_core_settings(
        {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_DEPLOYMENT": "d"}
    )
    assert s.uses_entra_id


def test_original_app_names_are_aliases() -> None:
    s = load_core_settings(
        {
            "OPENAI_URI": "https://old.openai.azure.com/",
            "OPENAI_KEY": "oldkey",
            "OPENAI_GPT_DEPLOYMENT": "gpt",
            "OPENAI_VERSION": "2024-02-15-preview",
            "EMAIL_URI": "https://logic.example/trigger?sig=x",
        }
    )
    assert s.provider == "azure"
    assert s.base_url == "https://old.openai.azure.com/openai/v1/"
    assert (s.api_key, s.model) == ("oldkey", "gpt")
    assert s.email_uri == "https://logic.example/trigger?sig=x"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:///x/y.db", "sqlite+aiosqlite:///x/y.db"),
        ("sqlite:////abs/y.db", "sqlite+aiosqlite:////abs/y.db"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
    ],
)
def test_database_url_picks_async_driver(raw: str, expected: str) -> None:
    s = load_core_settings({"OPENAI_API_KEY": "k", "DATABASE_URL": raw})
    assert s.database_url == expected


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "OPENAI_API_KEY"),
        ({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}, "AZURE_OPENAI_DEPLOYMENT"),
        (
            {
                "OPENAI_API_KEY": "k",
                "AZURE_OPENAI_ENDPOINT": "https://r",
                "AZURE_OPENAI_DEPLOYMENT": "d",
            },
            "Unset one",
        ),
        ({"OPENAI_API_KEY": "k", "DATABASE_URL": "mysql://x/y"}, "sqlite and postgresql"),
        ({"OPENAI_API_KEY": "k", "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"OPENAI_API_KEY": "k", "MAX_FILE_MB": "lots"}, "MAX_FILE_MB"),
    ],
)
def test_bad_settings_say_what_to_set(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_core_settings(env)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "PORT": "http"}, "PORT"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": "ftp://x"},
            "SLACK_API_URL",
        ),
    ],
)
def test_bad_slack_settings(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings({"OPENAI_API_KEY": "k", **env})


def test_slack_settings_modes() -> None:
    http = load_settings(
        {"OPENAI_API_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    )
    assert not http.slack.socket_mode
    assert (http.slack.port, http.slack.api_url) == (3000, "https://slack.com/api/")
    socket = load_settings(
        {"OPENAI_API_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    )
    assert socket.slack.socket_mode


@pytest.mark.parametrize("module", ["bot", "commander"])
def test_entry_points_report_missing_settings_once_with_exit_2(module: str, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "AZURE", "SLACK"))}
    args = [sys.executable, "-m", module] + (["list"] if module == "commander" else [])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("Configuration error") == 1
    assert "OPENAI_API_KEY" in done.stderr
