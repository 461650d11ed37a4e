import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from commander.jobs import JobRunner, JobStore, ThreadFollower
from commander.leases import LeaseLost
from commander.settings import normalise_database_url
from commander.store.db import Database
from commander.store.models import Base, Job


@pytest.fixture
async def db(database_url: str):
    database = Database(normalise_database_url(database_url))
    await database.migrate()
    yield database
    await database.close()


async def test_migrations_match_the_models(db: Database) -> None:
    def diff(sync_conn):
        return compare_metadata(MigrationContext.configure(sync_conn), Base.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_migrate_is_idempotent(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert {"assistants", "files", "jobs", "pending_emails", "followed_threads"} <= set(tables)


@pytest.mark.sqlite_only("about the SQLite database file")
async def test_sqlite_file_is_created_in_a_new_folder(tmp_path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/new/dir/x.db")
    await database.migrate()
    await database.close()
    assert (tmp_path / "new/dir/x.db").exists()


async def test_enqueue_is_idempotent(db: Database) -> None:
    jobs = JobStore(db)
    first = await jobs.enqueue("k1", "T", "U", "message", {"a": 1})
    again = await jobs.enqueue("k1", "T", "U", "message", {"a": 2})
    assert first is not None and again is None


async def test_a_burst_of_enqueues_is_committed_together_in_arrival_order(db: Database) -> None:
    jobs = JobStore(db)
    commits: list[int] = []
    for engine in db.write_engines():
        event.listen(engine, "commit", lambda _conn: commits.append(1))
    arrivals = [(f"k{n}", f"U{n % 5}") for n in range(50)] + [("k7", "U2"), ("k7", "U2")]
    stored = await asyncio.gather(
        *(jobs.enqueue(key, "T", user, "message", {"key": key}) for key, user in arrivals)
    )
    assert [job is not None for job in stored] == [True] * 50 + [False, False]
    assert len(commits) == 1  # all 52 arrived before the first write began
    for user in {user for _, user in arrivals}:
        mine = [job for job in stored[:50] if job is not None and job.user_id == user]
        assert [job.id for job in mine] == sorted(job.id for job in mine)
    async with db.session() as session:
        rows = (await session.scalars(select(Job).order_by(Job.id))).all()
    assert [row.dedupe_key for row in rows] == [key for key, _ in arrivals[:50]]


async def test_one_bad_message_in_a_burst_does_not_refuse_the_others(db: Database) -> None:
    jobs = JobStore(db)
    good = [jobs.enqueue(f"g{n}", "T", "U", "message", {"n": n}) for n in range(3)]
    bad = jobs.enqueue("bad", "T", "U", "message", {"not json": {1, 2}})
    results = await asyncio.gather(*good[:2], bad, good[2], return_exceptions=True)
    assert isinstance(results[2], SQLAlchemyError)
    assert all(isinstance(job, Job) for job in (results[0], results[1], results[3]))
    async with db.session() as session:
        keys = (await session.scalars(select(Job.dedupe_key).order_by(Job.id))).all()
    assert keys == ["g0", "g1", "g2"]


async def test_runner_keeps_per_user_order_and_runs_users_in_parallel(db: Database) -> None:
    jobs = JobStore(db)
    seen: list[tuple[str, int]] = []
    gate_b = asyncio.Event()
    a_started = asyncio.Event()

    async def process(job: Job) -> None:
        await jobs.start(job)
        if job.user_id == "A" and job.payload["n"] == 0:
            a_started.set()
            await gate_b.wait()  # A's first job waits until B has run: users are parallel
        if job.user_id == "B":
            gate_b.set()
        seen.append((job.user_id, job.payload["n"]))
        await jobs.finish(job)

    runner = JobRunner(jobs, process)
    for n in range(3):
        await jobs.enqueue(f"a{n}", "T", "A", "m", {"n": n})
        runner.wake("T", "A")
    await a_started.wait()
    await jobs.enqueue("b0", "T", "B", "m", {"n": 0})
    runner.wake("T", "B")
    await runner.idle()
    assert [n for u, n in seen if u == "A"] == [0, 1, 2]
    assert seen.index(("B", 0)) < seen.index(("A", 0))


async def test_recover_resumes_unfinished_jobs(db: Database) -> None:
    jobs = JobStore(db, "dead-instance", lease_s=30)
    await jobs.enqueue("k", "T", "U", "m", {})
    job = await jobs.claim_next("T", "U")
    await jobs.start(job)  # the instance "crashed" here: its lease is still live
    done: list[int] = []

    async def process(j: Job) -> None:
        done.append(j.attempts)
        await survivor.finish(j)

    survivor = JobStore(db, "survivor", lease_s=30)
    runner = JobRunner(survivor, process)
    assert await runner.recover() == 0  # a live lease is never taken
    await db_set_lease_expired(db, job.id)
    assert await runner.recover() == 1
    await runner.idle()
    assert done == [1]
    assert await survivor.claim_next("T", "U") is None
    with pytest.raises(LeaseLost):  # the old owner is fenced off
        await jobs.save_progress(job, answered=True)


async def db_set_lease_expired(db: Database, job_id: int) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    async with db.transaction() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_followed_threads(db: Database) -> None:
    threads = ThreadFollower(db)
    assert await threads.follow("T", "C", "1.0") is True
    assert await threads.follow("T", "C", "1.0") is False
    assert await threads.follows("T", "C", "1.0")
    assert not await threads.follows("T2", "C", "1.0")


async def test_purge_forgets_only_old_finished_jobs(db: Database) -> None:
    from datetime import timedelta

    jobs = JobStore(db)
    await jobs.enqueue("done", "T", "U", "m", {"text": "secret"})
    await jobs.finish(await jobs.claim_next("T", "U"))
    await jobs.enqueue("queued", "T", "U", "m", {})
    assert await jobs.purge(timedelta(days=3)) == 0
    assert await jobs.purge(timedelta(seconds=-1)) == 1
    assert (await jobs.claim_next("T", "U")).dedupe_key == "queued"


async def test_a_counting_claim_records_the_attempt_it_starts_up_to_the_maximum(
    db: Database,
) -> None:
    jobs = JobStore(db, lease_s=0, max_attempts=2)  # leases expire at once: claims retake
    await jobs.enqueue("k", "T", "U", "m", {})

    async def stored_attempts() -> int:
        async with db.session() as session:
            return (await session.scalars(select(Job.attempts))).one()

    seen = []
    for _ in range(3):
        job = await jobs.claim_next("T", "U")
        seen.append((job.attempts, await stored_attempts()))
        if job.attempts < 2:
            await jobs.start(job)  # no write of its own: the claim counted it
            assert job.attempts == await stored_attempts()
    assert seen == [(0, 1), (1, 2), (2, 2)]  # the third claim finds it exhausted
