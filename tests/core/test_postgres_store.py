"""The store on a real PostgreSQL server (TEST_POSTGRES_URL), and connection failures as
Database reports them: one sentence, never the password."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, select, text

from commander.errors import DatabaseUnavailable
from commander.store import db as db_module
from commander.store.db import MIGRATIONS, Database
from commander.store.models import Assistant, Base
from commander.store.urls import DEFAULT_POOL, PoolOptions
from tests.conftest import fresh_database
from tests.fakes.postgres_door import Certificates, PostgresDoor, write_certificates

PASSWORD = "s3cr@t/pa ss"


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    db = Database(pg_url)
    await db.migrate()
    yield db
    await db.close()


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def test_migrations_match_the_models_on_postgres(pg: Database) -> None:
    def diff(sync_conn):
        return compare_metadata(MigrationContext.configure(sync_conn), Base.metadata)

    async with pg.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_json_and_timestamps_round_trip(pg: Database) -> None:
    async with pg.transaction() as session:
        session.add(Assistant(team_id="T", user_id="U", name="n", instructions="i", model="m"))
        session.add(
            Assistant(
                team_id="T", user_id="V", name="n", instructions="i", model="m", tools=["a", "é"]
            )
        )
    async with pg.session() as session:
        rows = (await session.scalars(select(Assistant).order_by(Assistant.user_id))).all()
    assert [r.tools for r in rows] == [[], ["a", "é"]]
    assert all(r.created_at.tzinfo is not None for r in rows)


async def test_a_dropped_idle_connection_is_replaced_before_use(
    pg: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def backend_pid(conn):
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()

    first = await pg.run_read(backend_pid)
    admin = Database(pg_url)
    try:  # the server drops that connection, as a restart would
        await admin.execute(text(f"SELECT pg_terminate_backend({int(first)})"))
    finally:
        await admin.close()
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.0)  # "idle long enough" without a sleep
    assert await pg.run_read(backend_pid) != first  # no error: pinged, replaced


async def test_busy_connections_are_not_pinged(pg: Database) -> None:
    statements: list[str] = []
    listen = event.listens_for(pg.engine.sync_engine, "before_cursor_execute")
    listen(lambda _c, _cur, statement, *_rest: statements.append(statement))
    for _ in range(3):
        await pg.run_read(lambda conn: conn.execute(text("SELECT 1")).all())
    assert statements == ["SELECT 1"] * 3  # the pool's ping would be a statement of its own


async def test_instances_starting_together_migrate_one_after_another(pg_url: str) -> None:
    databases = [Database(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(db.migrate() for db in databases))
        async with databases[0].engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert versions == [(head_revision(),)]
        await databases[1].migrate()  # and again: nothing to do
    finally:
        for db in databases:
            await db.close()


async def test_url_parameters_and_pool_settings_reach_the_server(pg_url: str) -> None:
    options = quote("-c statement_timeout=4321 -c search_path=public")
    url = f"{pg_url}?application_name=commander-test&options={options}&connect_timeout=5"
    db = Database(url, PoolOptions(size=3, max_overflow=1, timeout_s=7, connect_timeout_s=9))
    try:
        await db.migrate()
        async with db.session() as session:
            shown = [
                (await session.execute(text(f"SHOW {name}"))).scalar_one()
                for name in ("application_name", "statement_timeout", "search_path")
            ]
        assert shown == ["commander-test", "4321ms", "public"]
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 1, 7)  # type: ignore[attr-defined]
        assert db.target.connect_args["timeout"] == 5.0  # the URL's wins over the setting
    finally:
        await db.close()


async def failure(url: str, pool: PoolOptions = DEFAULT_POOL) -> str:
    db = Database(url, pool)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.migrate()
    finally:
        await db.close()
    message = str(caught.value)
    assert "\n" not in message and quote(PASSWORD, safe="") not in message
    assert PASSWORD not in message
    return message


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connection() -> None:
    port = closed_port()
    url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/db"
    assert await failure(url) == (
        f"Cannot reach the database at 127.0.0.1:{port} (connection refused). Check DATABASE_URL."
    )


async def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts into the backlog, never answers
        port = silent.getsockname()[1]
        message = await failure(
            f"postgresql://app@127.0.0.1:{port}/db", PoolOptions(connect_timeout_s=1)
        )
    assert message == (
        f"Cannot reach the database at 127.0.0.1:{port} (no answer within 1 s). Check DATABASE_URL."
    )


async def test_unknown_role_and_missing_database(pg_url: str) -> None:
    # The test server trusts every login from 127.0.0.1 (any password is accepted), so a
    # refused login is shown with a role that does not exist; a refused password below.
    role = pg_url.replace("postgresql://postgres", f"postgresql://nobody_x:{quote(PASSWORD)}")
    assert 'refused the login (role "nobody_x" does not exist)' in await failure(role)
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_db_x"
    assert await failure(missing) == (
        "The database 'no_such_db_x' does not exist on the server at 127.0.0.1:5432. "
        "Check DATABASE_URL."
    )


async def test_sslmode_require_against_a_server_without_ssl(pg_url: str) -> None:
    message = await failure(pg_url + "?sslmode=require")
    assert message.startswith("The database at 127.0.0.1:5432 does not accept SSL connections")


async def test_rejected_password() -> None:
    with PostgresDoor() as door:
        url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:{door.port}/db"
        message = await failure(url)
    assert door.passwords == [PASSWORD]  # special characters arrive intact
    assert message == (
        f"The database at 127.0.0.1:{door.port} rejected the password of user 'app'. "
        "Check DATABASE_URL."
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return write_certificates(tmp_path_factory.mktemp("certs"))


async def test_verified_ssl_gets_through_to_the_login(certs: Certificates) -> None:
    with PostgresDoor(tls=certs.server) as door:
        url = f"postgresql://app:pw@localhost:{door.port}/db"
        message = await failure(f"{url}?sslmode=verify-full&sslrootcert={certs.ca}")
    assert "rejected the password" in message
    assert door.passwords == ["pw"]  # sent only inside the verified TLS session


async def test_untrusted_certificate(certs: Certificates, tmp_path: Path) -> None:
    other = write_certificates(tmp_path)  # a different authority
    with PostgresDoor(tls=certs.server) as door:
        url = f"postgresql://app:pw@localhost:{door.port}/db"
        message = await failure(f"{url}?sslmode=verify-ca&sslrootcert={other.ca}")
    assert message.startswith(
        f"Cannot verify the SSL certificate of the database at localhost:{door.port} ("
    )
    assert door.passwords == []
