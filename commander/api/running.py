"""Which API users have a turn under way, in the database, so that every instance
sharing it gives the same answer to GET /api/status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from commander.store.db import Database
from commander.store.models import ApiTurn, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
STALE_AFTER = timedelta(seconds=60)


@contextlib.asynccontextmanager
async def running_turn(db: Database, team_id: str, user_id: str) -> AsyncIterator[None]:
    row = ApiTurn(team_id=team_id, user_id=user_id)
    async with db.transaction() as session:
        await session.execute(
            delete(ApiTurn).where(*_owner(team_id, user_id), ApiTurn.heartbeat_at < _stale())
        )
        session.add(row)
    beat = asyncio.create_task(_heartbeat(db, row.id))
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        async with db.transaction() as session:
            await session.execute(delete(ApiTurn).where(ApiTurn.id == row.id))


async def is_running(db: Database, team_id: str, user_id: str) -> bool:
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).where(*_owner(team_id, user_id), ApiTurn.heartbeat_at >= _stale())
        )
    return bool(count)


async def _heartbeat(db: Database, row_id: str) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        try:
            async with db.transaction() as session:
                await session.execute(
                    update(ApiTurn).where(ApiTurn.id == row_id).values(heartbeat_at=utcnow())
                )
        except Exception as exc:  # a missed beat only makes the row go stale sooner
            log.warning("could not refresh a running API turn: %s", type(exc).__name__)


def _owner(team_id: str, user_id: str) -> tuple[object, ...]:
    return (ApiTurn.team_id == team_id, ApiTurn.user_id == user_id)


def _stale() -> object:
    return utcnow() - STALE_AFTER
