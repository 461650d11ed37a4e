"""A durable job queue on the database: accepted work survives crashes and restarts.

Enqueueing is idempotent on `dedupe_key`, so a redelivered request adds nothing.
Jobs of one user run in id order; the runner that drains them lives with the front end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from commander.store.db import Database
from commander.store.models import FollowedThread, Job

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(
        self, dedupe_key: str, team_id: str, user_id: str, kind: str, payload: dict[str, Any]
    ) -> Job | None:
        """Store a job; None when a job with this key was already accepted."""
        job = Job(
            dedupe_key=dedupe_key[:200],
            team_id=team_id,
            user_id=user_id,
            kind=kind,
            payload=payload,
            progress={},
        )
        try:
            # urgent: Slack waits for this write before it sees the acknowledgement.
            async with self.db.transaction(urgent=True) as session:
                session.add(job)
        except IntegrityError:
            return None
        return job

    async def next_for(self, team_id: str, user_id: str) -> Job | None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(Job)
                .where(Job.team_id == team_id, Job.user_id == user_id)
                .where(Job.status.in_((QUEUED, RUNNING)))
                .order_by(Job.id)
                .limit(1)
            )
            return rows.scalar_one_or_none()

    async def unfinished_owners(self) -> list[tuple[str, str]]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(Job.team_id, Job.user_id)
                .where(Job.status.in_((QUEUED, RUNNING)))
                .group_by(Job.team_id, Job.user_id)
            )
            return [(team, user) for team, user in rows.all()]

    async def purge(self, older_than: timedelta) -> int:
        """Forget finished jobs (message text included) once retries can no longer come."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(Job)
                .where(Job.status.in_((DONE, FAILED)))
                .where(Job.updated_at < datetime.now(UTC) - older_than)
            )
        return result.rowcount or 0

    async def start(self, job: Job) -> None:
        job.attempts += 1
        job.status = RUNNING
        await self._write(job.id, status=RUNNING, attempts=job.attempts)

    async def save_progress(self, job: Job, **progress: Any) -> None:
        job.progress = {**job.progress, **progress}
        await self._write(job.id, progress=job.progress)

    async def finish(self, job: Job, *, error: str | None = None) -> None:
        job.status = FAILED if error else DONE
        await self._write(job.id, status=job.status, error=error)

    async def _write(self, job_id: int, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(**values))


Process = Callable[[Job], Awaitable[None]]


class JobRunner:
    """Drains each user's jobs in order, one user per task; users run in parallel."""

    def __init__(self, store: JobStore, process: Process) -> None:
        self.store = store
        self.process = process
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._again: set[tuple[str, str]] = set()

    def wake(self, team_id: str, user_id: str) -> None:
        key = (team_id, user_id)
        self._again.add(key)
        if key not in self._active:
            self._active[key] = asyncio.create_task(
                self._drain(key), name=f"jobs:{team_id}:{user_id}"
            )

    async def recover(self) -> int:
        """Resume what a previous process accepted but did not finish."""
        owners = await self.store.unfinished_owners()
        for team_id, user_id in owners:
            self.wake(team_id, user_id)
        return len(owners)

    @property
    def busy(self) -> bool:
        return bool(self._active)

    async def idle(self) -> None:
        while self._active:
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in self._active.values():
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
        self._active.clear()

    async def _drain(self, key: tuple[str, str]) -> None:
        try:
            while True:
                self._again.discard(key)
                job = await self.store.next_for(*key)
                if job is None:
                    if key in self._again:
                        continue
                    return
                await self._run(job)
        finally:
            self._active.pop(key, None)

    async def _run(self, job: Job) -> None:
        try:
            await self.process(job)
        except Exception:
            log.exception("job %s (%s) failed", job.id, job.kind)
            await self.store.finish(job, error="crashed")


class ThreadFollower:
    """Remembers threads the bot answered in."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def follow(self, team_id: str, channel: str, thread_ts: str) -> bool:
        """Remember the thread; True if it is new."""
        async with self.db.transaction() as session:
            if await session.get(FollowedThread, (team_id, channel, thread_ts)) is not None:
                return False
            session.add(FollowedThread(team_id=team_id, channel=channel, thread_ts=thread_ts))
        return True

    async def follows(self, team_id: str, channel: str, thread_ts: str) -> bool:
        async with self.db.session() as session:
            return await session.get(FollowedThread, (team_id, channel, thread_ts)) is not None
