"""The async engine, sessions and automatic migrations."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql import Executable

from commander.errors import DatabaseUnavailable
from commander.store.prepared import Write
from commander.store.unavailable import explain
from commander.store.urls import DEFAULT_POOL, DatabaseTarget, PoolOptions, database_target

T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# pg_advisory_xact_lock key held while migrating, so that instances starting together on
# one database upgrade it one after another ("commandr" in ASCII; any fixed bigint works).
MIGRATION_LOCK_KEY = 0x636F6D6D616E6472


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer work at once; busy_timeout makes concurrent
    # writers wait for the lock instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_writer(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # We issue BEGIN ourselves (below), so the driver must not start transactions.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    # A deferred transaction that reads, then writes, fails at once with "database is
    # locked" if another process wrote in between (the busy timeout does not apply to
    # that upgrade). Taking the write lock up front makes writers wait in turn instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for connections that sat idle.

    A connection the server dropped (a restart, a proxy's idle timeout) is replaced
    before anyone uses it. pool_pre_ping pays a round trip at every checkout, and a busy
    instance checks out a connection for every statement of the hot path; one used a
    moment ago cannot have been dropped by a restart that has not finished yet."""

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:  # the pool replaces it and tries again
            raise DisconnectionError("a pooled connection no longer answers")

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


class WriteLock:
    """One holder at a time; urgent waiters are served before routine ones, each in
    order of arrival. Under load dozens of bookkeeping writes of running turns queue
    here, and an acknowledgement must not wait behind all of them."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._routine: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._hand_on()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._routine).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._hand_on()  # the lock was handed to us as we were cancelled
            raise

    def _hand_on(self) -> None:
        for queue in (self._urgent, self._routine):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes on; _held stays True
                    return
        self._held = False


class SQLiteThreads:
    """Plain (sync) SQLite engines, each used from one thread of its own: a writer and a
    reader. A whole transaction is one hop to its thread."""

    def __init__(self, url: URL) -> None:
        sync_url = url.set(drivername="sqlite")
        self.write_engine = create_engine(sync_url, poolclass=SingletonThreadPool)
        event.listen(self.write_engine, "connect", _sqlite_writer)
        event.listen(self.write_engine, "begin", _begin_immediate)
        self.read_engine = create_engine(sync_url, poolclass=SingletonThreadPool)
        event.listen(self.read_engine, "connect", _sqlite_pragmas)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._writing: Connection | None = None  # used in self.thread only
        self._reading: Connection | None = None  # used in self.reader only

    def write(self, op: Callable[[Connection], T]) -> T:
        # One connection for the thread's life: a pool checkout and reset per transaction
        # would cost about as much as the transaction's own statements.
        if self._writing is None:
            self._writing = self.write_engine.connect()
        with self._writing.begin():
            return op(self._writing)

    def read(self, op: Callable[[Connection], T]) -> T:
        if self._reading is None:
            self._reading = self.read_engine.connect()
        try:
            return op(self._reading)
        finally:
            self._reading.rollback()  # end the read transaction: WAL can then be checkpointed

    def close(self) -> None:
        def closing(connection: Connection | None, engine: Engine) -> None:
            if connection is not None:
                connection.close()
            engine.dispose()

        self.thread.submit(closing, self._writing, self.write_engine).result()
        self.reader.submit(closing, self._reading, self.read_engine).result()
        for executor in (self.thread, self.reader):  # each connection closed in its thread
            executor.shutdown()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


class Database:
    """`url`: a DATABASE_URL (sqlite or postgresql, libpq parameters included)."""

    def __init__(self, url: str, pool: PoolOptions = DEFAULT_POOL) -> None:
        self.url = url
        self.target: DatabaseTarget = database_target(url, pool)
        self.is_sqlite = self.target.is_sqlite
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(self._sqlite_file())
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self.write_engine = create_async_engine(self.target.url)
            event.listen(self.write_engine.sync_engine, "connect", _sqlite_writer)
            event.listen(self.write_engine.sync_engine, "begin", _begin_immediate)
        else:
            self.engine = create_async_engine(
                self.target.url,
                connect_args=self.target.connect_args,
                pool_size=pool.size,
                max_overflow=pool.max_overflow,
                pool_timeout=pool.timeout_s,
            )
            self.write_engine = self.engine
            _ping_when_idle(self.engine.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._write_lock = WriteLock() if self.is_sqlite else None
        self._writer = SQLiteThreads(self.target.url) if self.is_sqlite else None

    def _sqlite_file(self) -> URL:
        path = self.target.url.database
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"Cannot create the folder for {self.target.where} ({exc.strerror}). "
                    "Check DATABASE_URL."
                ) from None
        return self.target.url

    async def connect(self) -> AsyncConnection:
        """A connection of the pool; a failure to connect is `DatabaseUnavailable` with
        one sentence saying why (unreachable, login refused, no such database, SSL)."""
        try:
            return await self.engine.connect()
        except Exception as exc:
            reason = explain(exc, self.target)
            if reason is None:
                raise
            raise DatabaseUnavailable(reason) from exc

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (runs at every start). On
        PostgreSQL an advisory lock makes instances starting together take turns; DDL is
        transactional there, so the lock and the upgrade end with one commit."""
        conn = await self.connect()
        try:
            async with conn.begin():
                if not self.is_sqlite:
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
        finally:
            await conn.close()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction. On SQLite writers queue in-process first, so they wait
        politely instead of racing for the file lock; `urgent` writers (a message that
        Slack waits to see acknowledged) go ahead of the queue."""
        if self._write_lock is None:
            async with self._write_sessions.begin() as session:
                yield session
            return
        async with self._write_lock.hold(urgent=urgent), self._write_sessions.begin() as session:
            yield session

    async def run_write(self, op: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """Run `op` (Core statements on a sync connection) in one write transaction.

        The hot path's bookkeeping goes through here. On SQLite the whole transaction
        runs in one hop to a dedicated writer thread on plain sqlite3, instead of a
        thread round trip for each cursor call (aiosqlite): a few times cheaper. On
        PostgreSQL it runs on the async engine (asyncpg) through `run_sync`."""
        if self._writer is None:
            async with self.write_engine.begin() as conn:
                return await conn.run_sync(op)
        assert self._write_lock is not None
        async with self._write_lock.hold(urgent=urgent):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer.thread, self._writer.write, op)

    async def execute(self, stmt: Executable | Write, *, urgent: bool = False) -> int:
        """One write statement in a transaction of its own; the rows it matched."""
        write = stmt if isinstance(stmt, Write) else Write(stmt, {})
        return await self.run_write(lambda conn: write.run(conn).rowcount, urgent=urgent)

    async def rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> list[Row[Any]]:
        """The rows of one read statement."""
        return await self.run_read(lambda conn: list(conn.execute(stmt, params).all()))

    async def run_read(self, op: Callable[[Connection], T]) -> T:
        """Run `op` on a read connection (SQLite: the reader thread)."""
        if self._writer is None:
            async with self.engine.connect() as conn:
                return await conn.run_sync(op)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer.reader, self._writer.read, op)

    def write_engines(self) -> list[Engine]:
        """Every engine that writes, for instrumentation (e.g. counting commits)."""
        engines = [self.write_engine.sync_engine]
        return engines if self._writer is None else [*engines, self._writer.write_engine]

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
