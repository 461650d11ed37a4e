"""Core settings, read from the environment (and `.env` via python-dotenv).

Names of the original web app (OPENAI_URI, OPENAI_KEY, OPENAI_GPT_DEPLOYMENT,
OPENAI_VERSION) are accepted as aliases so old `.env` files keep working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from commander.errors import ConfigError
from commander.store.urls import PoolOptions, normalise_database_url

DEFAULT_MODEL = "gpt-5.5"
DEFAULT_DATABASE_URL = "sqlite:///data/commander.db"
MiB = 1024 * 1024

Provider = Literal["openai", "azure"]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 50 * MiB
    max_files_per_message: int = 20
    max_prompt_chars: int = 32_000
    max_instructions_chars: int = 16_000
    max_tool_rounds: int = 8
    turns_per_minute: int = 20
    files_per_day: int = 100
    max_stored_bytes: int = 1024 * MiB


@dataclass(frozen=True)
class Cluster:
    """How instances sharing one database divide the work."""

    job_lease_s: float = 30.0  # a dead instance's job is taken over this long after
    job_poll_s: float = 2.0  # how often each instance looks for unclaimed work
    shutdown_grace_s: float = 20.0  # on SIGTERM, running jobs get this long to finish


@dataclass(frozen=True)
class CoreSettings:
    provider: Provider
    model: str
    api_key: str | None
    base_url: str | None
    database_url: str
    email_uri: str | None = None
    limits: Limits = Limits()
    database_pool: PoolOptions = field(default_factory=PoolOptions)
    cluster: Cluster = Cluster()

    @property
    def uses_entra_id(self) -> bool:
        return self.provider == "azure" and not self.api_key


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _positive_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(
            f"{name} must be greater than zero."
            if minimum == 1
            else f"{name} must be {minimum} or more."
        )
    return value


def load_limits(env: Mapping[str, str]) -> Limits:
    return Limits(
        max_file_bytes=_positive_int(env, "MAX_FILE_MB", Limits.max_file_bytes // MiB) * MiB,
        max_files_per_message=_positive_int(
            env, "MAX_FILES_PER_MESSAGE", Limits.max_files_per_message
        ),
        max_prompt_chars=_positive_int(env, "MAX_PROMPT_CHARS", Limits.max_prompt_chars),
        max_tool_rounds=_positive_int(env, "MAX_TOOL_ROUNDS", Limits.max_tool_rounds),
        turns_per_minute=_positive_int(env, "TURNS_PER_MINUTE", Limits.turns_per_minute),
        files_per_day=_positive_int(env, "FILES_PER_DAY", Limits.files_per_day),
        max_stored_bytes=_positive_int(env, "MAX_STORED_MB", Limits.max_stored_bytes // MiB) * MiB,
    )


def _seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from None
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}.")
    return value


def load_cluster(env: Mapping[str, str]) -> Cluster:
    return Cluster(
        job_lease_s=_seconds(env, "JOB_LEASE_SECONDS", Cluster.job_lease_s, minimum=1),
        job_poll_s=_seconds(env, "JOB_POLL_SECONDS", Cluster.job_poll_s, minimum=0.05),
        shutdown_grace_s=_seconds(
            env, "SHUTDOWN_GRACE_SECONDS", Cluster.shutdown_grace_s, minimum=0
        ),
    )


def load_database_pool(env: Mapping[str, str]) -> PoolOptions:
    return PoolOptions(
        size=_positive_int(env, "DB_POOL_SIZE", PoolOptions.size),
        max_overflow=_positive_int(env, "DB_MAX_OVERFLOW", PoolOptions.max_overflow, minimum=0),
        timeout_s=_seconds(env, "DB_POOL_TIMEOUT_S", PoolOptions.timeout_s, minimum=1),
        connect_timeout_s=_seconds(
            env, "DB_CONNECT_TIMEOUT_S", PoolOptions.connect_timeout_s, minimum=1
        ),
    )


def _azure_settings(env: Mapping[str, str], endpoint: str) -> tuple[str, str | None, str]:
    deployment = _first(env, "AZURE_OPENAI_DEPLOYMENT", "OPENAI_GPT_DEPLOYMENT")
    if not deployment:
        raise ConfigError(
            "AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_DEPLOYMENT is not. "
            "Set it to the name of your model deployment."
        )
    if not endpoint.startswith("https://") and not endpoint.startswith("http://"):
        raise ConfigError("AZURE_OPENAI_ENDPOINT must start with https://.")
    base = endpoint.rstrip("/")
    if not base.endswith("/openai/v1"):
        base = base.removesuffix("/openai") + "/openai/v1"
    return base + "/", _first(env, "AZURE_OPENAI_API_KEY", "OPENAI_KEY"), deployment


def load_core_settings(env: Mapping[str, str] | None = None) -> CoreSettings:
    env = os.environ if env is None else env
    azure_endpoint = _first(env, "AZURE_OPENAI_ENDPOINT", "OPENAI_URI")
    openai_key = _first(env, "OPENAI_API_KEY")
    if azure_endpoint and openai_key and not _first(env, "AZURE_OPENAI_API_KEY", "OPENAI_KEY"):
        raise ConfigError(
            "Both OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT are set. Unset one of them: "
            "OPENAI_API_KEY selects OpenAI, AZURE_OPENAI_ENDPOINT selects Azure OpenAI."
        )
    if azure_endpoint:
        base_url, api_key, model = _azure_settings(env, azure_endpoint)
        provider: Provider = "azure"
    else:
        api_key = openai_key or _first(env, "OPENAI_KEY")
        if not api_key:
            raise ConfigError(
                "No model provider is configured. Set OPENAI_API_KEY for OpenAI, or "
                "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT for Azure OpenAI."
            )
        base_url = _first(env, "OPENAI_BASE_URL")
        model = _first(env, "OPENAI_MODEL") or DEFAULT_MODEL
        provider = "openai"
    database_url = normalise_database_url(_first(env, "DATABASE_URL") or DEFAULT_DATABASE_URL)
    return CoreSettings(
        provider=provider,
        model=model,
        api_key=api_key,
        base_url=base_url,
        database_url=database_url,
        email_uri=_first(env, "EMAIL_URI"),
        limits=load_limits(env),
        database_pool=load_database_pool(env),
        cluster=load_cluster(env),
    )
