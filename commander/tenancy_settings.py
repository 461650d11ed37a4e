"""Settings of multi-workspace operation: uninstall grace, budgets, prices, retention."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from commander.errors import ConfigError


@dataclass(frozen=True)
class TenancySettings:
    uninstall_grace_days: float = 0.0
    tokens_per_day: int | None = None  # per person; None: no cap
    workspace_tokens_per_month: int | None = None
    prices_file: Path | None = None
    retention_days: int | None = None  # None: off
    retention_notice_days: int = 3


def _number(env: Mapping[str, str], name: str, *, integer: bool) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}.") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}.")
    return value


def load_tenancy_settings(env: Mapping[str, str] | None = None) -> TenancySettings:
    env = os.environ if env is None else env
    grace = _number(env, "UNINSTALL_GRACE_DAYS", integer=False)
    per_day = _number(env, "TOKENS_PER_DAY", integer=True)
    per_month = _number(env, "WORKSPACE_TOKENS_PER_MONTH", integer=True)
    retention = _number(env, "RETENTION_DAYS", integer=True)
    notice = _number(env, "RETENTION_NOTICE_DAYS", integer=True)
    prices = env.get("PRICES_FILE", "").strip()
    if prices and not Path(prices).is_file():
        raise ConfigError(f"PRICES_FILE {prices!r} does not exist or is not a file.")
    return TenancySettings(
        uninstall_grace_days=grace or 0.0,
        tokens_per_day=int(per_day) if per_day else None,
        workspace_tokens_per_month=int(per_month) if per_month else None,
        prices_file=Path(prices) if prices else None,
        retention_days=int(retention) if retention else None,
        retention_notice_days=int(notice) if notice is not None else 3,
    )
