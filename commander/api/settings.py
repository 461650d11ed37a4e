"""API settings: `API_KEYS` (bearer keys, each naming its tenant) and fetch limits.

API users live in the same tables as Slack users, under the team id `api:<tenant>`.
Slack team ids (`T…`, enterprise `E…`) are letters and digits only, so no Slack
workspace can ever share an id with an API tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from commander.settings import ConfigError

TEAM_PREFIX = "api:"
TENANT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,28}")  # "api:" + 28 fits the 32-char team_id
MIN_KEY_CHARS = 16
DEFAULT_FETCH_TIMEOUT_S = 60.0


def team_id(tenant: str) -> str:
    return TEAM_PREFIX + tenant


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class ApiKeys:
    """Bearer keys and the tenant each one names. Only digests are kept in memory."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        # A client may send the whole entry (`tenant:KEY`) or just KEY.
        self._digests = [
            (tenant, _digest(secret), _digest(f"{tenant}:{secret}")) for tenant, secret in entries
        ]

    @property
    def tenants(self) -> set[str]:
        return {tenant for tenant, _, _ in self._digests}

    def tenant_for(self, token: str) -> str | None:
        """The tenant whose key this is. Every key is compared, in constant time each,
        so the time taken says nothing about which key came close."""
        given = _digest(token)
        found: str | None = None
        for tenant, bare, full in self._digests:
            if hmac.compare_digest(given, bare) | hmac.compare_digest(given, full):
                found = tenant
        return found

    def __repr__(self) -> str:  # never show a key, not even in a traceback
        return f"ApiKeys(tenants={sorted(self.tenants)})"


@dataclass(frozen=True)
class ApiSettings:
    keys: ApiKeys
    fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S


def parse_api_keys(raw: str) -> ApiKeys:
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    for position, item in enumerate(re.split(r"[,\s]+", raw.strip()), start=1):
        tenant, sep, secret = item.partition(":")
        if not sep or not TENANT_PATTERN.fullmatch(tenant):
            raise ConfigError(
                f"API_KEYS entry {position} must look like tenant:KEY, the tenant being 1-28 "
                "letters, digits, '-' or '_'."
            )
        if len(secret) < MIN_KEY_CHARS:
            raise ConfigError(
                f"API_KEYS entry {position} (tenant {tenant}) has a key shorter than "
                f"{MIN_KEY_CHARS} characters."
            )
        if secret in seen:
            raise ConfigError(f"API_KEYS entry {position} repeats a key already given.")
        seen.add(secret)
        entries.append((tenant, secret))
    return ApiKeys(entries)


def load_api_settings(env: Mapping[str, str]) -> ApiSettings | None:
    """None when API_KEYS is unset: the API is not served at all."""
    raw = env.get("API_KEYS", "").strip()
    if not raw:
        return None
    timeout_raw = env.get("API_FETCH_TIMEOUT_S", "").strip()
    timeout = DEFAULT_FETCH_TIMEOUT_S
    if timeout_raw:
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise ConfigError(
                f"API_FETCH_TIMEOUT_S must be a number, got {timeout_raw!r}."
            ) from None
        if not 0 < timeout <= 3600:
            raise ConfigError("API_FETCH_TIMEOUT_S must be between 0 and 3600 seconds.")
    return ApiSettings(parse_api_keys(raw), timeout)
