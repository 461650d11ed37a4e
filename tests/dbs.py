"""Throw-away PostgreSQL databases for tests, on the server TEST_POSTGRES_URL names.

    url = create_postgres_database("t_abc")   # postgresql://…/t_abc, empty
    drop_postgres_database("t_abc")            # also ends connections left open

Both are synchronous (they run their own event loop in a thread), so sync fixtures and
async tests can use them alike.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
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
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def create_postgres_database(name: str) -> str:
    """Create an empty database and return its URL (postgresql://, as users write it)."""
    _check_name(name)
    _run(lambda: _admin(f'CREATE DATABASE "{name}"'))
    return make_url(test_postgres_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    _check_name(name)
    _run(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
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
        await conn.execute(sql)
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
