"""Throw-away PostgreSQL databases for tests, on the server TEST_POSTGRES_URL names.

    name = new_database_name()                 # t_<unix time>_<random>
    url = create_postgres_database(name)       # postgresql://…/t_…, empty
    drop_postgres_database(name)               # also ends connections left open
    drop_stale_postgres_databases(before)      # test databases named before that time

Both are synchronous (they run their own event loop in a thread), so sync fixtures and
async tests can use them alike.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 5

T = TypeVar("T")


def test_postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL


def postgres_unavailable() -> str | None:
    """Why the test server cannot be used, or None when it can."""
    try:
        _run(lambda: _admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {_safe(test_postgres_url())} is not reachable ({type(exc).__name__})"
    return None


def new_database_name(prefix: str = "t") -> str:
    """A fresh name that records when it was made, so that databases a killed test run
    left behind can be told from those of a run still going."""
    return f"{prefix}_{int(time.time())}_{uuid.uuid4().hex[:16]}"


def create_postgres_database(name: str) -> str:
    """Create an empty database and return its URL (postgresql://, as users write it)."""
    _check_name(name)
    _run(lambda: _admin(f'CREATE DATABASE "{name}"'))
    return make_url(test_postgres_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    _check_name(name)
    _run(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_stale_postgres_databases(before: float, prefix: str = "t") -> list[str]:
    """Drop the test databases named before `before` (a Unix time) by
    `new_database_name(prefix)` or a longer prefix (`t_nolock` for "t"); returns their
    names."""
    pattern = re.compile(rf"{re.escape(prefix)}(?:_[a-z0-9_]+)?_(\d+)_[0-9a-f]{{16}}")
    rows = _run(
        lambda: _admin("SELECT datname FROM pg_database WHERE NOT datistemplate", rows=True)
    )
    stale = [
        name
        for (name,) in rows
        if (made := pattern.fullmatch(name)) is not None and int(made.group(1)) < before
    ]
    for name in stale:
        drop_postgres_database(name)
    return stale


async def _admin(sql: str, *, rows: bool = False) -> list[tuple[object, ...]]:
    url = make_url(test_postgres_url())
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
        timeout=CONNECT_TIMEOUT_S,
    )
    try:
        if rows:
            return [tuple(row) for row in await conn.fetch(sql)]
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a loop of its own, whatever loop the caller is in."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(_awaited(make)))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a safe database name: {name!r}")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
