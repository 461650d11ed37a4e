"""DATABASE_URL as people write it, turned into what SQLAlchemy and asyncpg accept.

PostgreSQL URLs carry libpq's query parameters (`?sslmode=require&connect_timeout=5`,
what managed services hand out). asyncpg takes different keyword arguments, and
SQLAlchemy would pass the query through unchanged, so each parameter is translated here
and the rest refused by name.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from commander.errors import ConfigError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
# Connection parameters libpq also accepts in the query string; asyncpg takes them as is.
PASSED_THROUGH = {"host": "host", "port": "port", "user": "user", "password": "password"}
PASSED_THROUGH_RENAMED = {"dbname": "database"}
SSL_FILES = ("sslrootcert", "sslcert", "sslkey")
TRANSLATED = {
    "sslmode",
    *SSL_FILES,
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
}


@dataclass(frozen=True)
class PoolOptions:
    """Connection pool of a PostgreSQL engine (SQLite keeps SQLAlchemy's defaults)."""

    size: int = 10
    max_overflow: int = 10
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0


DEFAULT_POOL = PoolOptions()


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the engine connects: the URL without libpq parameters, plus asyncpg's
    keyword arguments. `where` names the place for messages, never the password."""

    url: URL
    is_sqlite: bool
    where: str
    connect_args: dict[str, Any] = field(default_factory=dict)


def _parse(raw: str) -> URL:
    try:
        return make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            "DATABASE_URL is not a valid database URL. "
            "Use sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname."
        ) from None


def normalise_database_url(raw: str) -> str:
    """Pick the async driver (sqlite+aiosqlite, postgresql+asyncpg) and check every
    parameter; the libpq parameters stay in the URL and are translated on connect."""
    url = _parse(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
        translate_postgres_query(url, connect_timeout_s=PoolOptions.connect_timeout_s)
    else:
        raise ConfigError(
            f"DATABASE_URL uses {backend!r}; only sqlite and postgresql are supported."
        )
    return url.render_as_string(hide_password=False)


def database_target(raw: str, pool: PoolOptions = DEFAULT_POOL) -> DatabaseTarget:
    url = make_url(normalise_database_url(raw))
    if url.get_backend_name() == "sqlite":
        return DatabaseTarget(url, True, f"the SQLite database {url.database or ':memory:'}")
    connect_args = translate_postgres_query(url, connect_timeout_s=pool.connect_timeout_s)
    host = connect_args.get("host", url.host) or "localhost"
    port = connect_args.get("port", url.port) or 5432
    return DatabaseTarget(url.set(query={}), False, f"{host}:{port}", connect_args)


def translate_postgres_query(url: URL, *, connect_timeout_s: float) -> dict[str, Any]:
    """asyncpg.connect() keyword arguments for the URL's libpq query parameters."""
    query: dict[str, str] = {}
    for name, value in url.query.items():
        if not isinstance(value, str):
            raise ConfigError(f"DATABASE_URL gives the parameter {name!r} more than once.")
        query[name] = value
    unknown = sorted(set(query) - TRANSLATED - set(PASSED_THROUGH) - set(PASSED_THROUGH_RENAMED))
    if unknown:
        raise ConfigError(
            f"DATABASE_URL has the parameter {unknown[0]!r}, which is not supported. "
            f"Supported: {', '.join(sorted(TRANSLATED | set(PASSED_THROUGH)))}, dbname."
        )
    args: dict[str, Any] = {
        asyncpg_name: query[name]
        for name, asyncpg_name in {**PASSED_THROUGH, **PASSED_THROUGH_RENAMED}.items()
        if name in query
    }
    if "port" in args:
        args["port"] = _port(args["port"])
    args["timeout"] = _connect_timeout(query.get("connect_timeout"), connect_timeout_s)
    server_settings = _options(query.get("options", ""))
    if "application_name" in query:
        server_settings["application_name"] = query["application_name"]
    if server_settings:
        args["server_settings"] = server_settings
    attrs = query.get("target_session_attrs")
    if attrs is not None:
        if attrs not in SESSION_ATTRS:
            raise ConfigError(
                f"DATABASE_URL has target_session_attrs={attrs!r}; "
                f"use one of {', '.join(SESSION_ATTRS)}."
            )
        args["target_session_attrs"] = attrs
    ssl_arg = _ssl(query)
    if ssl_arg is not None:
        args["ssl"] = ssl_arg
    return args


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"DATABASE_URL has port={raw!r}; use a number from 1 to 65535.")
    return int(raw)


def _connect_timeout(raw: str | None, default_s: float) -> float | None:
    if raw is None:
        return default_s
    try:
        seconds = int(raw)
    except ValueError:
        raise ConfigError(
            f"DATABASE_URL has connect_timeout={raw!r}; use a whole number of seconds."
        ) from None
    # As in libpq: zero or less waits forever, and anything shorter than 2 s means 2 s.
    return None if seconds <= 0 else float(max(seconds, 2))


def _options(raw: str) -> dict[str, str]:
    """libpq's `options`: server settings as command-line switches, `-c name=value` or
    `--name=value`, separated by spaces (a backslash escapes a space)."""
    settings: dict[str, str] = {}
    words = _split_options(raw)
    while words:
        word = words.pop(0)
        if word == "-c" and words:
            setting = words.pop(0)
        elif word.startswith("-c") and len(word) > 2:
            setting = word[2:]
        elif word.startswith("--"):
            setting = word[2:]
        else:
            raise ConfigError(
                f"DATABASE_URL options has {word!r}; only '-c name=value' settings are supported."
            )
        name, equals, value = setting.partition("=")
        if not equals or not name:
            raise ConfigError(f"DATABASE_URL options has {setting!r}; write it as name=value.")
        settings[name.replace("-", "_")] = value
    return settings


def _split_options(raw: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def _ssl(query: dict[str, str]) -> ssl.SSLContext | str | None:
    """asyncpg's `ssl`. A context of our own where certificates are involved (asyncpg
    would only look for them in ~/.postgresql); its own sslmode handling otherwise, since
    only that can fall back to plain connections for allow/prefer."""
    mode = query.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise ConfigError(f"DATABASE_URL has sslmode={mode!r}; use one of {', '.join(SSL_MODES)}.")
    files = {name: query[name] for name in SSL_FILES if name in query}
    if mode is None:
        if not files:
            return None  # asyncpg's default is libpq's: prefer
        mode = "require"  # certificates given without a mode: use them
    if mode in ("disable", "allow", "prefer"):
        if files:
            raise ConfigError(
                f"DATABASE_URL sets {', '.join(files)} with sslmode={mode}; "
                "certificates need sslmode=require, verify-ca or verify-full."
            )
        return mode
    return _ssl_context(mode, files)


def _ssl_context(mode: str, files: dict[str, str]) -> ssl.SSLContext:
    for name, path in files.items():
        if not (name == "sslrootcert" and path == "system") and not Path(path).is_file():
            raise ConfigError(f"DATABASE_URL {name}: the file {path} does not exist.")
    if "sslkey" in files and "sslcert" not in files:
        raise ConfigError("DATABASE_URL sets sslkey without sslcert; give both.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    root = files.get("sslrootcert")
    # As in libpq, require with a root certificate checks the chain like verify-ca.
    verify = mode != "require" or root is not None
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    if verify:
        libpq_default = Path.home() / ".postgresql" / "root.crt"
        if root is None and libpq_default.is_file():
            root = str(libpq_default)
        if root is None or root == "system":
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            _load("sslrootcert", root, lambda: context.load_verify_locations(cafile=root))
    if "sslcert" in files:
        cert, key = files["sslcert"], files.get("sslkey")
        _load("sslcert", cert, lambda: context.load_cert_chain(cert, keyfile=key))
    return context


def _load(name: str, path: str, load: Callable[[], None]) -> None:
    try:
        load()
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise ConfigError(f"DATABASE_URL {name}: cannot use the file {path} ({reason}).") from None
