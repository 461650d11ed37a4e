"""A durable job queue on the database, shared by every instance.

Accepted work survives crashes and restarts, and any instance may run it:
- Enqueueing is idempotent on `dedupe_key`, so a redelivered request adds nothing.
- An instance *claims* a person's oldest unfinished job atomically, with a lease it
  renews while it works; `running` means owned. A job is taken over only once its lease
  has expired, and the old owner's writes are then refused (fencing by `lease_token`).
- Only a person's oldest unfinished job can be claimed, so one person's jobs run one at
  a time, in arrival order, cluster-wide. Different people run in parallel.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, bindparam, delete, exists, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from commander.leases import DEFAULT_LEASE_S, LeaseKeeper, LeaseLost
from commander.logs import job_context
from commander.metrics import record_takeover
from commander.store.db import Database
from commander.store.dialect import insert
from commander.store.group_commit import GroupCommit
from commander.store.models import FollowedThread, Job, aware, utcnow
from commander.store.prepared import Write, bound, values_of

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UNFINISHED = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED)
WAKE_CHANNEL = "commander_jobs"
SWEEP_LIMIT = 500
JOBS = Job.__table__
# Statements of a job's other bookkeeping, written in the transaction that finishes it.
Closing = list[Write]
JOB_INSERT_COLUMNS = (
    "dedupe_key",
    "team_id",
    "user_id",
    "kind",
    "payload",
    "progress",
    "status",
    "attempts",
    "lease_token",
    "created_at",
    "updated_at",
)


class JobStore:
    def __init__(
        self,
        db: Database,
        instance_id: str = "local",
        lease_s: float = DEFAULT_LEASE_S,
        *,
        max_attempts: int | None = None,
    ) -> None:
        """`max_attempts`: claims count the attempt they start in the same write, up to
        this many (a job that has had them all is claimed uncounted, to be given up)."""
        self.db = db
        self.instance_id = instance_id
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._intake: GroupCommit[Job, int | None] = GroupCommit(self._insert)

    async def enqueue(
        self, dedupe_key: str, team_id: str, user_id: str, kind: str, payload: dict[str, Any]
    ) -> Job | None:
        """Store a job; None when a job with this key was already accepted.

        Enqueues that arrive together are committed together (group commit): Slack waits
        for this write before it sees the acknowledgement, and in a burst each message
        then waits for about two commits, not for every message before it."""
        now = utcnow()
        job = Job(
            dedupe_key=dedupe_key[:200],
            team_id=team_id,
            user_id=user_id,
            kind=kind,
            payload=payload,
            progress={},
            status=QUEUED,
            attempts=0,
            lease_token=0,
            created_at=now,
            updated_at=now,
        )
        job_id = await self._intake.submit(job)
        if job_id is None:
            return None
        job.id = job_id
        return job

    async def _insert(self, jobs: list[Job]) -> list[int | None]:
        """One transaction for the batch; a key met twice (or already stored) is None."""
        first: dict[str, Job] = {}
        for job in jobs:
            first.setdefault(job.dedupe_key, job)
        rows = [
            {column: getattr(job, column) for column in JOB_INSERT_COLUMNS}
            for job in first.values()
        ]
        stmt = (
            insert(self.db, Job)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[Job.dedupe_key])
            .returning(Job.id, Job.dedupe_key)
        )
        people = sorted({(job.team_id, job.user_id) for job in jobs})

        def store(conn: Connection) -> dict[str, int]:
            self._people_order(conn, people)
            return {key: job_id for job_id, key in conn.execute(stmt).all()}

        # urgent: acknowledgements wait for it, so it goes before turn bookkeeping.
        stored = await self.db.run_write(store, urgent=True)
        return [
            stored.get(job.dedupe_key) if first[job.dedupe_key] is job else None for job in jobs
        ]

    async def claim_next(self, team_id: str, user_id: str) -> Job | None:
        """Claim the person's oldest unfinished job, if nobody holds a live lease on it.

        The job returned keeps the status it had before: RUNNING means it is taken over
        from an instance whose lease expired. Its `owner` and `lease_token` are this
        claim's, and every later write names them."""
        now = utcnow()

        def claim(conn: Connection) -> tuple[Job, bool] | None:
            self._people_order(conn, [(team_id, user_id)])
            row = conn.execute(_HEAD, {"team_id": team_id, "user_id": user_id}).first()
            head = None if row is None else Job(**row._mapping)
            if head is None or (head.status == RUNNING and not _expired(head.lease_until, now)):
                return None
            counted = self.max_attempts is not None and head.attempts < self.max_attempts
            taken = {
                "status": RUNNING,
                "owner": self.instance_id,
                "lease_until": now + timedelta(seconds=self.lease_s),
                "lease_token": head.lease_token + 1,
                "updated_at": now,
                "attempts": head.attempts + 1 if counted else head.attempts,
            }
            result = conn.execute(
                _CLAIM, {"job_id": head.id, "job_token": head.lease_token, **bound(taken)}
            )  # `head` keeps its status: whether this claim is a takeover
            return (head, counted) if result.rowcount == 1 else None

        claimed = await self.db.run_write(claim)
        if claimed is None:
            return None
        head, counted = claimed
        head.owner, head.lease_token = self.instance_id, head.lease_token + 1
        # `attempts` stays the count before this claim until start(), as without counting.
        head.attempt_counted = counted  # type: ignore[attr-defined]
        return head

    async def claimable_people(self) -> list[tuple[str, str]]:
        """People whose oldest unfinished job nobody holds: new work, or a dead owner's."""
        now = utcnow()
        live = aliased(Job)
        held = exists().where(
            live.team_id == Job.team_id,
            live.user_id == Job.user_id,
            live.status == RUNNING,
            live.lease_until >= now,
        )
        async with self.db.session() as session:
            rows = await session.execute(
                select(Job.team_id, Job.user_id)
                .where(Job.status.in_(UNFINISHED), ~held)
                .group_by(Job.team_id, Job.user_id)
                .limit(SWEEP_LIMIT)
            )
            return [(team, user) for team, user in rows.all()]

    async def start(self, job: Job) -> None:
        job.attempts += 1
        if getattr(job, "attempt_counted", False):
            return  # the claim wrote it
        await self._write(job, attempts=job.attempts)

    async def save_progress(self, job: Job, also: Closing | None = None, **progress: Any) -> None:
        """`also`: other statements to write in the same transaction (see finish)."""
        job.progress = {**job.progress, **progress}
        await self._write(job, progress=job.progress, also=also)

    async def finish(
        self,
        job: Job,
        *,
        error: str | None = None,
        also: Closing | None = None,
        **progress: Any,
    ) -> None:
        """Done (or failed); `progress` is saved in the same write.

        `also`: statements of the job's other bookkeeping (e.g. its usage), written in the
        same transaction, even when the job itself turns out to be another instance's
        now (LeaseLost is raised after). The list is emptied as they are handed over."""
        job.status = FAILED if error else DONE
        values: dict[str, Any] = {"status": job.status, "error": error}
        if progress:
            job.progress = {**job.progress, **progress}
            values["progress"] = job.progress
        await self._write(job, **values, owner=None, lease_until=None, also=also)

    async def write_apart(self, closing: Closing) -> None:
        """Write a job's other end-of-job statements without it (e.g. its lease was lost)."""
        statements = _hand_over(closing)
        await self.db.run_write(lambda conn: _execute_each(conn, statements))

    async def renew(self, job: Job) -> bool:
        try:
            await self._write(job, lease_until=utcnow() + timedelta(seconds=self.lease_s))
        except LeaseLost:
            return False
        return True

    async def release(self, job: Job) -> None:
        """Give the job up unfinished (shutting down): another instance takes it over now."""
        await self._write(job, lease_until=utcnow(), owner=None)
        await self.notify(job.team_id, job.user_id)

    async def _write(self, job: Job, also: Closing | None = None, **values: Any) -> None:
        fenced = Write(
            _fenced_update(tuple(sorted(values))),
            {"job_id": job.id, "job_owner": job.owner, "job_token": job.lease_token}
            | bound(values),
        )
        others = _hand_over(also or [])

        def write(conn: Connection) -> int:
            _execute_each(conn, others)
            return fenced.run(conn).rowcount

        if (await self.db.run_write(write)) != 1:
            raise LeaseLost(f"job {job.id}")

    async def streams_in_use(self, *, exclude_job: int) -> set[str]:
        """Slack streams that running jobs (on any instance) have open."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Job.progress).where(Job.status == RUNNING, Job.id != exclude_job)
            )
            return {str(p["stream_ts"]) for p in rows.all() if p and p.get("stream_ts")}

    async def notify(self, team_id: str, user_id: str) -> None:
        """Tell the other instances that this person's work is free to claim."""
        if self.db.is_sqlite:
            return
        try:
            await self.db.execute(
                text("SELECT pg_notify(:channel, :person)").bindparams(
                    channel=WAKE_CHANNEL, person=f"{team_id}\t{user_id}"
                )
            )
        except SQLAlchemyError as exc:  # the others' polling finds the work anyway
            log.warning("could not notify other instances (%s)", type(exc).__name__)

    async def queue_stats(self) -> tuple[int, float | None]:
        """(jobs not finished, age in seconds of the oldest queued one)."""
        async with self.db.session() as session:
            depth = await session.scalar(
                select(func.count()).select_from(Job).where(Job.status.in_(UNFINISHED))
            )
            oldest = await session.scalar(
                select(func.min(Job.created_at)).where(Job.status == QUEUED)
            )
        age = None if oldest is None else (utcnow() - aware(oldest)).total_seconds()
        return int(depth or 0), age

    async def listing(self, *, unfinished_only: bool = True, limit: int = 200) -> list[Job]:
        query = select(Job).order_by(Job.id).limit(limit)
        if unfinished_only:
            query = query.where(Job.status.in_(UNFINISHED))
        async with self.db.session() as session:
            return list((await session.scalars(query)).all())

    async def purge(self, older_than: timedelta) -> int:
        """Forget finished jobs (message text included) once retries can no longer come."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(Job)
                .where(Job.status.in_(FINISHED))
                .where(Job.updated_at < utcnow() - older_than)
            )
        return result.rowcount or 0

    def _people_order(self, conn: Connection, people: list[tuple[str, str]]) -> None:
        """On PostgreSQL, a person's enqueues and claims take turns (a transaction lock on
        the person), so ids follow arrival and a claim never skips a job being stored.
        SQLite writers hold the whole file, which gives the same order.

        One round trip for all `people`, locked in the order given (sorted: two batches
        never wait for each other's locks in a circle)."""
        if not self.db.is_sqlite and people:
            conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(person, 0)) "
                    "FROM unnest(CAST(:people AS text[])) WITH ORDINALITY AS p(person, n) "
                    "ORDER BY n"
                ),
                {"people": [f"jobs\t{team_id}\t{user_id}" for team_id, user_id in people]},
            )


Process = Callable[[Job], Awaitable[None]]


class JobRunner:
    """Runs this instance's share of the queue: for each person it drains their jobs in
    order as long as it can claim them; another instance's sweep or notification picks
    up what this one gives up."""

    def __init__(self, store: JobStore, process: Process, *, poll_s: float = 2.0) -> None:
        self.store = store
        self.process = process
        self.poll_s = poll_s
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._again: set[tuple[str, str]] = set()
        self._running: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    def wake(self, team_id: str, user_id: str) -> None:
        if self._closing:
            return
        key = (team_id, user_id)
        self._again.add(key)
        if key not in self._active:
            self._active[key] = asyncio.create_task(
                self._drain(key), name=f"jobs:{team_id}:{user_id}"
            )

    async def recover(self) -> int:
        """Claim what nobody holds: new work, and that of instances whose lease ran out."""
        people = await self.store.claimable_people()
        for team_id, user_id in people:
            self.wake(team_id, user_id)
        return len(people)

    def start_sweeping(self) -> None:
        """Listen for other instances' notifications (PostgreSQL), and poll for claimable
        work: the fallback that also finds the jobs of an instance that died."""
        self._sweeper = asyncio.create_task(self._sweep(), name="jobs:sweep")
        if not self.store.db.is_sqlite:
            self._listener = asyncio.create_task(self._listen(), name="jobs:listen")

    @property
    def busy(self) -> bool:
        return bool(self._active)

    async def idle(self) -> None:
        while self._active:
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop claiming; let running jobs finish for up to `grace_s`, then stop them and
        hand them to the other instances at once (no waiting for their leases)."""
        self._closing = True
        background = [t for t in (self._sweeper, self._listener) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self._active and grace_s > 0:
            await asyncio.wait(list(self._active.values()), timeout=grace_s)
        left = list(self._running.values())
        for task in self._active.values():
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
        self._active.clear()
        for job, _task in left:
            try:
                await self.store.release(job)
            except (LeaseLost, SQLAlchemyError) as exc:
                log.info("job %s was not released (%s); its lease will expire", job.id, exc)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.recover()
            except SQLAlchemyError as exc:
                log.warning("could not look for claimable jobs (%s)", type(exc).__name__)

    async def _listen(self) -> None:
        """LISTEN on a connection of its own; when it breaks, polling covers the gap."""
        while True:
            try:
                async with self.store.db.engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    closed = asyncio.Event()
                    raw.add_termination_listener(lambda _conn, ev=closed: ev.set())
                    await raw.add_listener(WAKE_CHANNEL, self._on_notify)
                    try:
                        await closed.wait()
                    finally:
                        if not raw.is_closed():
                            await raw.remove_listener(WAKE_CHANNEL, self._on_notify)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("job notifications interrupted (%s)", type(exc).__name__)
            await asyncio.sleep(self.poll_s)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        team_id, _, user_id = payload.partition("\t")
        if team_id and user_id:
            self.wake(team_id, user_id)

    async def _drain(self, key: tuple[str, str]) -> None:
        try:
            while not self._closing:
                self._again.discard(key)
                job = await self.store.claim_next(*key)
                if job is None:
                    if key in self._again:
                        continue
                    return
                await self._run(job)
        except SQLAlchemyError as exc:
            log.warning("could not claim jobs of %s/%s (%s)", *key, type(exc).__name__)
        finally:
            self._active.pop(key, None)

    async def _run(self, job: Job) -> None:
        if job.status == RUNNING:
            log.info("taking over job %s: its owner's lease expired", job.id)
            record_takeover()
        work = asyncio.create_task(self._process(job), name=f"job:{job.id}")
        self._running[job.id] = (job, work)
        try:
            async with LeaseKeeper(
                lambda: self.store.renew(job), self.store.lease_s, work, f"job {job.id}"
            ) as keeper:
                try:
                    await work
                except asyncio.CancelledError:
                    if not keeper.lost or _cancelling():
                        raise
        finally:
            self._running.pop(job.id, None)

    async def _process(self, job: Job) -> None:
        try:
            with job_context(job.id):
                await self.process(job)
        except LeaseLost:
            log.warning("job %s: another instance owns it now; this one stopped", job.id)
        except Exception:
            log.exception("job %s (%s) failed", job.id, job.kind)
            try:
                await self.store.finish(job, error="crashed")
            except (LeaseLost, SQLAlchemyError) as exc:
                log.warning("job %s: could not record the failure (%s)", job.id, exc)


class ThreadFollower:
    """Remembers threads the bot answered in."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def follow(self, team_id: str, channel: str, thread_ts: str) -> bool:
        """Remember the thread; True if it is new (also when two people start it at once)."""
        stmt = (
            insert(self.db, FollowedThread)
            .values(team_id=team_id, channel=channel, thread_ts=thread_ts, created_at=utcnow())
            .on_conflict_do_nothing()
        )
        return await self.db.execute(stmt) == 1

    async def follows(self, team_id: str, channel: str, thread_ts: str) -> bool:
        followed = FollowedThread.__table__.c
        rows = await self.db.rows(
            select(followed.team_id).where(
                followed.team_id == team_id,
                followed.channel == channel,
                followed.thread_ts == thread_ts,
            )
        )
        return bool(rows)


def _hand_over(closing: Closing) -> Closing:
    """Take the statements out of `closing` before writing them: on SQLite a write whose
    caller is cancelled still commits, and usage must never be counted twice."""
    statements = list(closing)
    closing.clear()
    return statements


def _execute_each(conn: Connection, statements: Closing) -> None:
    for write in statements:
        write.run(conn)


# The person's oldest unfinished job, and its claim (see commander/store/prepared.py).
_HEAD = (
    select(JOBS)
    .where(JOBS.c.team_id == bindparam("team_id"), JOBS.c.user_id == bindparam("user_id"))
    .where(JOBS.c.status.in_(UNFINISHED))
    .order_by(JOBS.c.id)
    .limit(1)
)
_CLAIM = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job_id"), JOBS.c.lease_token == bindparam("job_token"))
    .values(
        values_of(JOBS, ("status", "owner", "lease_until", "lease_token", "updated_at", "attempts"))
    )
)


@functools.cache
def _fenced_update(columns: tuple[str, ...]) -> Update:
    """A write to a running job that only its current owner's lease can make."""
    return (
        update(JOBS)
        .where(JOBS.c.id == bindparam("job_id"), JOBS.c.owner == bindparam("job_owner"))
        .where(JOBS.c.lease_token == bindparam("job_token"), JOBS.c.status == RUNNING)
        .values(values_of(JOBS, columns))
    )


def _expired(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or aware(lease_until) < now


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
