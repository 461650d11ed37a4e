"""Leases held in the database, so that every instance sees who works on what.

A lease is renewed while its work runs. When a renewal finds it gone (taken over after
it expired), or no renewal has succeeded for long enough that it may have expired, the
work is cancelled: an instance that may have lost a lease stops before it writes or
touches Slack again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from itertools import count

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from commander.errors import CommanderError
from commander.store.db import Database
from commander.store.dialect import upsert_insert
from commander.store.models import PersonLock, aware, utcnow
from commander.store.prepared import Write, bound, values_of

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
MAX_POLL_S = 0.25
PERSON_WAIT_S = 15 * 60


def new_instance_id() -> str:
    """Names this process in leases and in `python -m commander jobs`."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseLost(Exception):
    """This instance no longer owns the work: it must stop without writing anything."""


class PersonBusy(CommanderError):
    user_message = "Your assistant is still busy with something else. Please try again in a minute."


class LeaseKeeper:
    """Renews a lease every third of its length while `work` runs; cancels `work` when
    the lease is lost, or may have been (no successful renewal for most of its length)."""

    def __init__(
        self, renew: Callable[[], Awaitable[bool]], lease_s: float, work: asyncio.Task, what: str
    ) -> None:
        self._renew = renew
        self._lease_s = lease_s
        self._work = work
        self._what = what
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> LeaseKeeper:
        self._task = asyncio.create_task(self._keep(), name=f"lease:{self._what}")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _keep(self) -> None:
        expires = time.monotonic() + self._lease_s
        while True:
            await asyncio.sleep(self._lease_s / 3)
            started = time.monotonic()
            try:
                held = await self._renew()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("could not renew the lease of %s (%s)", self._what, type(exc).__name__)
                if time.monotonic() > expires - self._lease_s / 6:
                    return self._lose("it may have expired")
                continue
            if not held:
                return self._lose("another instance took it over")
            expires = started + self._lease_s

    def _lose(self, why: str) -> None:
        log.warning("lost the lease of %s (%s): stopping that work", self._what, why)
        self.lost = True
        self._work.cancel()


# The lock's statements, built once (commander/store/prepared.py).
LOCKS = PersonLock.__table__
_HELD_BY = (
    LOCKS.c.team_id == bindparam("team_id"),
    LOCKS.c.user_id == bindparam("user_id"),
    LOCKS.c.holder == bindparam("holder"),
)
_RENEW = LOCKS.update().where(*_HELD_BY).values(values_of(LOCKS, ("lease_until",)))
_RELEASE = LOCKS.delete().where(*_HELD_BY)


@functools.cache
def _taking_lock(is_sqlite: bool) -> Executable:
    """Take the person's lock: a new row, or the row of a holder whose lease expired."""
    stmt = upsert_insert(is_sqlite, LOCKS).values(
        values_of(LOCKS, ("team_id", "user_id", "holder", "lease_until"))
    )
    return stmt.on_conflict_do_update(
        index_elements=[LOCKS.c.team_id, LOCKS.c.user_id],
        set_={"holder": stmt.excluded.holder, "lease_until": stmt.excluded.lease_until},
        where=LOCKS.c.lease_until < bindparam("now"),
    )


class PersonLocks:
    """One holder per person at a time, cluster-wide: create, delete, reset, files and
    turns of one person never overlap, whichever instance runs them. Within one instance
    they get the lock in the order they asked for it (a delete acknowledged before a
    create runs first); the database only decides between instances."""

    def __init__(self, db: Database, instance_id: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db = db
        self.instance_id = instance_id
        self.lease_s = lease_s
        self._holds = count(1)
        # This instance's holders and waiters of each person's lock, first come first
        # served (asyncio.Lock is fair), and how many use it (dropped at none).
        self._queues: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(
        self,
        team_id: str,
        user_id: str,
        *,
        wait_s: float = PERSON_WAIT_S,
        on_taking: Callable[[Connection], None] | None = None,
    ) -> AsyncIterator[None]:
        """Hold the person's lock; the task that holds it is cancelled if the lock is lost.

        `on_taking` runs in the transaction that takes the lock; if it raises, the lock
        is not taken and the error comes out of `hold`."""
        holder = f"{self.instance_id}:{next(self._holds)}"
        deadline = time.monotonic() + wait_s
        async with self._in_turn((team_id, user_id), wait_s):
            await self._acquire(team_id, user_id, holder, deadline - time.monotonic(), on_taking)
            work = asyncio.current_task()
            assert work is not None
            try:
                async with LeaseKeeper(
                    lambda: self._renew(team_id, user_id, holder),
                    self.lease_s,
                    work,
                    f"person {team_id}/{user_id}",
                ):
                    yield
            finally:
                await asyncio.shield(self._release(team_id, user_id, holder))

    @asynccontextmanager
    async def _in_turn(self, key: tuple[str, str], wait_s: float) -> AsyncIterator[None]:
        """Wait for the holders in this instance that asked first (PersonBusy after wait_s)."""
        lock, users = self._queues.get(key, (asyncio.Lock(), 0))
        self._queues[key] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(wait_s):
                    await lock.acquire()
            except TimeoutError:
                raise PersonBusy() from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._queues[key]
            if users == 1:
                del self._queues[key]
            else:
                self._queues[key] = (lock, users - 1)

    async def busy(self, team_id: str, user_id: str) -> bool:
        rows = await self.db.rows(
            select(PersonLock.lease_until).where(
                PersonLock.team_id == team_id, PersonLock.user_id == user_id
            )
        )
        until = rows[0][0] if rows else None
        return until is not None and aware(until) > utcnow()

    async def _acquire(
        self,
        team_id: str,
        user_id: str,
        holder: str,
        wait_s: float,
        on_taking: Callable[[Connection], None] | None,
    ) -> None:
        """Take the lock in the database; an earlier holder in this instance has released
        it (see _in_turn), so only another instance's release is waited for, by polling."""
        deadline = time.monotonic() + wait_s
        pause = 0.01
        while not await self._try(team_id, user_id, holder, on_taking):
            if time.monotonic() > deadline:
                raise PersonBusy()
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_POLL_S)

    async def _try(
        self,
        team_id: str,
        user_id: str,
        holder: str,
        on_taking: Callable[[Connection], None] | None,
    ) -> bool:
        now = utcnow()
        row = {
            "team_id": team_id,
            "user_id": user_id,
            "holder": holder,
            "lease_until": now + timedelta(seconds=self.lease_s),
        }
        take = Write(_taking_lock(self.db.is_sqlite), {"now": now} | bound(row))

        def taking(conn: Connection) -> bool:
            if take.run(conn).rowcount != 1:
                return False
            if on_taking is not None:
                on_taking(conn)
            return True

        return await self.db.run_write(taking)

    async def _renew(self, team_id: str, user_id: str, holder: str) -> bool:
        until = utcnow() + timedelta(seconds=self.lease_s)
        person = {"team_id": team_id, "user_id": user_id, "holder": holder}
        return await self.db.execute(Write(_RENEW, person | bound({"lease_until": until}))) == 1

    async def _release(self, team_id: str, user_id: str, holder: str) -> None:
        person = {"team_id": team_id, "user_id": user_id, "holder": holder}
        try:
            await self.db.execute(Write(_RELEASE, person))
        except SQLAlchemyError as exc:  # the lease then simply expires
            log.warning("could not release the lock of %s/%s (%s)", team_id, user_id, exc)
