"""Claims, leases and person locks between "instances": here, separate engines on one
database, each with its own instance id, as separate processes would have."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from commander.jobs import DONE, JobRunner, JobStore, ThreadFollower
from commander.leases import LeaseLost, PersonBusy, PersonLocks
from commander.quotas import LimitReached
from commander.settings import normalise_database_url
from commander.store.db import Database
from commander.store.models import Job, PersonLock, TurnRecord

INSTANCES = 3


@pytest.fixture
async def dbs(database_url: str) -> AsyncIterator[list[Database]]:
    """One engine per instance, all on the same database."""
    databases = [Database(normalise_database_url(database_url)) for _ in range(INSTANCES)]
    await databases[0].migrate()
    yield databases
    for db in databases:
        await db.close()


async def expire(db: Database, table: type, **where: object) -> None:
    """As if the lease's holder had died a while ago."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    conditions = [getattr(table, k) == v for k, v in where.items()]
    async with db.transaction() as session:
        await session.execute(update(table).where(*conditions).values(lease_until=past))


async def test_one_claim_wins_when_instances_race_for_a_job(dbs: list[Database]) -> None:
    stores = [JobStore(db, f"i{n}", lease_s=30) for n, db in enumerate(dbs)]
    await stores[0].enqueue("k", "T", "U", "message", {})
    claims = await asyncio.gather(*(s.claim_next("T", "U") for s in stores for _ in range(3)))
    won = [job for job in claims if job is not None]
    assert len(won) == 1 and won[0].status == "queued"  # a fresh claim, not a takeover


async def test_only_the_oldest_job_of_a_person_can_be_claimed(dbs: list[Database]) -> None:
    first, second = JobStore(dbs[0], "a"), JobStore(dbs[1], "b")
    for n in range(3):
        await first.enqueue(f"k{n}", "T", "U", "message", {"n": n})
    job = await first.claim_next("T", "U")
    assert job is not None and job.payload == {"n": 0}
    assert await second.claim_next("T", "U") is None  # the head is held: nothing else runs
    await first.finish(job)
    nxt = await second.claim_next("T", "U")
    assert nxt is not None and nxt.payload == {"n": 1}


async def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced(
    dbs: list[Database],
) -> None:
    dead, survivor = JobStore(dbs[0], "dead", lease_s=30), JobStore(dbs[1], "alive", lease_s=30)
    await dead.enqueue("k", "T", "U", "message", {})
    job = await dead.claim_next("T", "U")
    await dead.start(job)
    assert await survivor.claimable_people() == []
    await expire(dbs[1], Job, id=job.id)
    assert await survivor.claimable_people() == [("T", "U")]
    taken = await survivor.claim_next("T", "U")
    assert taken is not None and taken.status == "running"  # a takeover
    assert taken.attempts == 1 and taken.lease_token == job.lease_token + 1
    for write in (dead.save_progress(job, answered=True), dead.finish(job)):
        with pytest.raises(LeaseLost):
            await write
    assert not await dead.renew(job)
    await survivor.finish(taken)
    rows = await survivor.listing(unfinished_only=False)
    assert [(r.status, r.progress) for r in rows] == [(DONE, {})]


async def test_a_released_job_is_claimable_at_once(dbs: list[Database]) -> None:
    leaving, staying = JobStore(dbs[0], "leaving"), JobStore(dbs[1], "staying")
    await leaving.enqueue("k", "T", "U", "message", {})
    job = await leaving.claim_next("T", "U")
    await leaving.release(job)
    taken = await staying.claim_next("T", "U")
    assert taken is not None and taken.status == "running"


async def test_runner_hands_over_when_its_lease_is_taken(dbs: list[Database]) -> None:
    """A keeper that finds its lease gone cancels the work: the old owner stops."""
    store = JobStore(dbs[0], "slow", lease_s=1.5)
    await store.enqueue("k", "T", "U", "message", {})
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def process(job: Job) -> None:
        await store.start(job)
        started.set()
        try:
            await asyncio.Event().wait()  # works forever
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner = JobRunner(store, process)
    runner.wake("T", "U")
    await started.wait()
    async with dbs[1].transaction() as session:  # another instance took the job over
        await session.execute(update(Job).values(owner="other", lease_token=Job.lease_token + 1))
    await asyncio.wait_for(cancelled.wait(), 10)
    await runner.idle()
    await runner.close()


async def test_a_person_lock_is_held_by_one_instance_at_a_time(dbs: list[Database]) -> None:
    locks = [PersonLocks(db, f"i{n}", lease_s=30) for n, db in enumerate(dbs)]
    inside = 0
    most = 0
    order: list[int] = []

    async def work(n: int) -> None:
        nonlocal inside, most
        async with locks[n % INSTANCES].hold("T", "U"):
            inside += 1
            most = max(most, inside)
            order.append(n)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work(n) for n in range(9)))
    assert most == 1 and sorted(order) == list(range(9))
    assert not await locks[0].busy("T", "U")


async def test_work_refused_while_taking_a_person_lock_leaves_it_free(
    dbs: list[Database],
) -> None:
    first, other = PersonLocks(dbs[0], "i0"), PersonLocks(dbs[1], "i1")
    taken: list[str] = []

    def refuse(conn: Connection) -> None:
        conn.execute(insert(TurnRecord).values(team_id="T", user_id="U", at=datetime.now(UTC)))
        raise LimitReached("over the limit")

    with pytest.raises(LimitReached):
        async with first.hold("T", "U", on_taking=refuse):
            taken.append("first")
    assert not await first.busy("T", "U")
    async with other.hold("T", "U", wait_s=0.2, on_taking=lambda conn: taken.append("other")):
        assert await other.busy("T", "U")
    assert taken == ["other"]
    async with dbs[0].session() as session:  # the refused work was rolled back with the lock
        assert (await session.scalars(select(TurnRecord))).all() == []


async def test_a_dead_holders_person_lock_is_taken_after_it_expires(dbs: list[Database]) -> None:
    dead, alive = PersonLocks(dbs[0], "dead", lease_s=30), PersonLocks(dbs[1], "alive")
    holding = asyncio.Event()

    async def die_holding() -> None:
        async with dead.hold("T", "U"):
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(die_holding())
    await holding.wait()
    with pytest.raises(PersonBusy):
        async with alive.hold("T", "U", wait_s=0.2):
            pass
    await expire(dbs[1], PersonLock, team_id="T", user_id="U")
    async with alive.hold("T", "U", wait_s=5):
        assert await alive.busy("T", "U")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_two_people_starting_one_thread_at_once_both_follow_it(
    dbs: list[Database],
) -> None:
    followers = [ThreadFollower(db) for db in dbs]
    results = await asyncio.gather(*(f.follow("T", "C", "1.0") for f in followers * 4))
    assert results.count(True) == 1 and results.count(False) == len(results) - 1
