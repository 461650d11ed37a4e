"""Workspaces that remove the app: their queued work stops, their installations go, and
after UNINSTALL_GRACE_DAYS everything they stored (here and at the model provider) is
deleted. Installing again within the grace period keeps the data.

A scope is the owner scope of commander/store/tenancy_models.py: a workspace id, or an
enterprise id for an org-wide Grid install. Purges are safe to repeat and to run on
several instances at once: each person's deletion holds that person's lock, and a
departure is marked purged only after all of it is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update

from commander.service import Commander
from commander.store.models import (
    Assistant,
    FollowedThread,
    Job,
    PendingEmail,
    StoredFile,
    TurnRecord,
    aware,
    utcnow,
)
from commander.store.slack_tables import bots, installations
from commander.store.tenancy_models import Departure, RetentionNotice, UsageDay

log = logging.getLogger(__name__)

PENDING, PURGED, RETURNED = "pending", "purged", "returned"
UNFINISHED_JOBS = ("queued",)


@dataclass
class PurgeReport:
    people: int = 0
    conversations: int = 0
    vector_stores: int = 0
    files_deleted: int = 0
    rows_deleted: int = 0


class Departures:
    def __init__(
        self,
        commander: Commander,
        grace: timedelta = timedelta(0),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.commander = commander
        self.db = commander.db
        self.grace = grace
        self.clock = clock

    async def left(
        self, scope: str, *, enterprise_id: str | None, team_id: str | None, reason: str
    ) -> Departure:
        """Record that `scope` removed the app: stop its queued work, delete its
        installations, and schedule the purge (due at once with no grace period)."""
        now = self.clock()
        async with self.db.transaction(urgent=True) as session:
            stopped = await session.execute(
                update(Job)
                .where(Job.team_id == scope, Job.status.in_(UNFINISHED_JOBS))
                .values(status="failed", error="uninstalled")
            )
            removed = 0
            for table in (installations, bots):
                result = await session.execute(
                    table.delete().where(_installation_of(table, enterprise_id, team_id, scope))
                )
                removed += result.rowcount or 0
            departure = await session.get(Departure, scope)
            if departure is None or departure.state != PENDING:
                departure = departure or Departure(scope=scope)
                departure.left_at = now
                departure.purge_after = now + self.grace
                session.add(departure)
            departure.enterprise_id, departure.team_id = enterprise_id, team_id
            departure.reason, departure.state = reason, PENDING
            departure.report = {"jobs_stopped": stopped.rowcount or 0}
        log.warning(
            "app removed from %s (%s): %d queued job(s) stopped, %d installation row(s) "
            "deleted; its data is deleted after %s",
            scope,
            reason,
            stopped.rowcount or 0,
            removed,
            aware(departure.purge_after).isoformat(timespec="minutes"),
        )
        return departure

    async def returned(self, scope: str) -> bool:
        """The scope installed the app again: a pending purge is called off."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Departure)
                .where(Departure.scope == scope, Departure.state == PENDING)
                .values(state=RETURNED)
            )
        if result.rowcount:
            log.info("%s installed the app again within the grace period: data kept", scope)
        return bool(result.rowcount)

    async def purge_due(self) -> list[Departure]:
        """Delete the data of every scope whose grace period has ended."""
        async with self.db.session() as session:
            due = (
                await session.scalars(
                    select(Departure).where(
                        Departure.state == PENDING, Departure.purge_after <= self.clock()
                    )
                )
            ).all()
        done = []
        for departure in due:
            report = await self.purge(departure.scope, departure.team_id)
            async with self.db.transaction() as session:
                result = await session.execute(
                    update(Departure)
                    .where(Departure.scope == departure.scope, Departure.state == PENDING)
                    .values(state=PURGED, report={**departure.report, **asdict(report)})
                )
            if result.rowcount:
                log.warning("deleted all data of %s: %s", departure.scope, report)
                done.append(departure)
        return done

    async def purge(self, scope: str, workspace: str | None = None) -> PurgeReport:
        report = PurgeReport()
        for user_id in await self._people(scope):
            deleted = await self.commander.delete(scope, user_id)
            report.people += 1
            report.conversations += deleted.conversation == "deleted"
            report.vector_stores += deleted.vector_store == "deleted"
            report.files_deleted += deleted.files_deleted
            report.rows_deleted += deleted.rows_deleted
        async with self.db.transaction() as session:
            teams = {scope, workspace} - {None}
            for table, where in (
                (FollowedThread, FollowedThread.team_id.in_(teams)),
                (UsageDay, UsageDay.scope == scope),
                (RetentionNotice, RetentionNotice.scope == scope),
                (Job, Job.team_id == scope),
                (TurnRecord, TurnRecord.team_id == scope),
            ):
                result = await session.execute(delete(table).where(where))
                report.rows_deleted += result.rowcount or 0
        return report

    async def _people(self, scope: str) -> list[str]:
        people: set[str] = set()
        async with self.db.session() as session:
            for table in (Assistant, StoredFile, PendingEmail, Job):
                found = await session.scalars(
                    select(table.user_id).where(table.team_id == scope).distinct()
                )
                people.update(found.all())
        return sorted(people)

    async def all(self) -> list[Departure]:
        async with self.db.session() as session:
            rows = await session.scalars(select(Departure).order_by(Departure.left_at))
            return list(rows.all())


def _installation_of(table, enterprise_id: str | None, team_id: str | None, scope: str):  # type: ignore[no-untyped-def]
    if enterprise_id and scope == enterprise_id:  # an org-wide install
        return and_(table.c.enterprise_id == enterprise_id, table.c.is_enterprise_install)
    return and_(
        table.c.team_id == team_id,
        or_(table.c.enterprise_id == enterprise_id, table.c.enterprise_id.is_(None))
        if enterprise_id
        else table.c.enterprise_id.is_(None),
    )


async def departure_lines(commander: Commander) -> list[str]:
    """One line per workspace that removed the app, for `python -m commander list`."""
    lines = []
    for d in await Departures(commander).all():
        when = f"{aware(d.left_at):%Y-%m-%d %H:%M}"
        if d.state == PENDING:
            fate = f"data deleted after {aware(d.purge_after):%Y-%m-%d %H:%M} UTC"
        elif d.state == PURGED:
            fate = (
                f"data deleted {aware(d.updated_at):%Y-%m-%d %H:%M} UTC "
                f"({d.report.get('people', 0)} people, {d.report.get('rows_deleted', 0)} rows)"
            )
        else:
            fate = "installed again, data kept"
        lines.append(f"removed from {d.scope} ({d.reason}) {when} UTC: {fate}")
    return lines
