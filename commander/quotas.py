"""Per-user limits: turns a minute, files a day, bytes stored. Friendly refusals.

Every count comes from the database, so the limits hold across instances. Callers hold
the person's lock (commander.leases.PersonLocks) while they check and count, which makes
check-then-count atomic per person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from commander.errors import CommanderError
from commander.settings import Limits, MiB
from commander.store.db import Database
from commander.store.models import StoredFile, TurnRecord, aware, utcnow

WINDOW = timedelta(minutes=1)


# take_turn's statements, built once (commander/store/prepared.py).
TURNS = TurnRecord.__table__
_PERSON = (TURNS.c.team_id == bindparam("team_id"), TURNS.c.user_id == bindparam("user_id"))
_FORGET_TURNS = TURNS.delete().where(*_PERSON, TURNS.c.at <= bindparam("before"))
_RECENT_TURNS = select(TURNS.c.at).where(*_PERSON).order_by(TURNS.c.at)
_COUNT_TURN = TURNS.insert().values(
    team_id=bindparam("team_id"), user_id=bindparam("user_id"), at=bindparam("at")
)


class LimitReached(CommanderError):
    user_message = "You have reached a usage limit. Please try again later."


class Quotas:
    def __init__(
        self, limits: Limits, db: Database, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.limits = limits
        self.db = db
        self.clock = clock

    async def take_turn(self, team_id: str, user_id: str) -> None:
        """Count one turn, or refuse it when the last minute already had the maximum."""
        await self.db.run_write(self.turn_taker(team_id, user_id))

    def turn_taker(self, team_id: str, user_id: str) -> Callable[[Connection], None]:
        """take_turn's work, for a caller that runs it in a transaction of its own (the
        person's lock takes it with the lock: one write less per turn)."""
        person = {"team_id": team_id, "user_id": user_id}

        def count(conn: Connection) -> None:
            now = self.clock()  # when the lock is taken, not when it was asked for
            conn.execute(_FORGET_TURNS, person | {"before": now - WINDOW})
            recent = conn.scalars(_RECENT_TURNS, person).all()
            if len(recent) >= self.limits.turns_per_minute:
                wait = int((aware(recent[0]) + WINDOW - now).total_seconds()) + 1
                raise LimitReached(
                    f"You've sent {self.limits.turns_per_minute} messages in the last minute. "
                    f"Please wait about {wait} s and ask again."
                )
            conn.execute(_COUNT_TURN, person | {"at": now})

        return count

    async def check_file(self, team_id: str, user_id: str, size_hint: int | None) -> None:
        files_today, stored = await self._usage(team_id, user_id)
        if files_today >= self.limits.files_per_day:
            raise LimitReached(f"you reached today's limit of {self.limits.files_per_day} files")
        if stored + (size_hint or 0) > self.limits.max_stored_bytes:
            raise LimitReached(
                f"your assistant already stores close to its "
                f"{self.limits.max_stored_bytes // MiB} MB of files; remove some in App Home"
            )

    async def _usage(self, team_id: str, user_id: str) -> tuple[int, int]:
        since = datetime.now(UTC) - timedelta(days=1)
        owner = (StoredFile.team_id == team_id, StoredFile.user_id == user_id)
        async with self.db.session() as session:
            today = await session.scalar(
                select(func.count()).where(*owner, StoredFile.created_at >= since)
            )
            total = await session.scalar(
                select(func.coalesce(func.sum(StoredFile.size), 0)).where(*owner)
            )
        return int(today or 0), int(total or 0)
