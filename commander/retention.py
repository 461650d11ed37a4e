"""RETENTION_DAYS: assistants unused that long lose their conversation, files and vector
store at the provider; their settings stay, so the person can start afresh.

"Unused" means the assistant row has not changed (every turn moves its thread cursor).
The person is told once, RETENTION_NOTICE_DAYS (default 3) before; the data is cleared
no earlier than that many days after the notice, even if the assistant was idle longer
when retention was switched on. Using the assistant after the notice calls it off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from commander.service import Commander
from commander.store.models import Assistant, aware, utcnow
from commander.store.tenancy_models import RetentionNotice
from commander.tenancy_settings import TenancySettings

log = logging.getLogger(__name__)

# notify(scope, user_id, assistant name, when its data will be cleared) -> told?
Notify = Callable[[str, str, str, datetime], Awaitable[bool]]
# Our own clearing changes the row a moment before the notice records it.
SAME_MOMENT = timedelta(seconds=5)


@dataclass
class RetentionReport:
    warned: int = 0
    cleared: int = 0
    called_off: int = 0


class Retention:
    def __init__(
        self,
        commander: Commander,
        settings: TenancySettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.commander = commander
        self.db = commander.db
        self.settings = settings
        self.clock = clock

    async def run(self, notify: Notify) -> RetentionReport:
        report = RetentionReport()
        days = self.settings.retention_days
        if days is None:
            return report
        keep, notice = timedelta(days=days), timedelta(days=self.settings.retention_notice_days)
        now = self.clock()
        async with self.db.session() as session:
            assistants = (await session.scalars(select(Assistant))).all()
            notices = {
                (n.scope, n.user_id): n for n in (await session.scalars(select(RetentionNotice)))
            }
        for assistant in assistants:
            key = (assistant.team_id, assistant.user_id)
            last_used = aware(assistant.updated_at)
            told = notices.get(key)
            if told is not None and last_used > aware(told.warned_at) + SAME_MOMENT:
                await self._forget_notice(*key)  # used since: start counting again
                report.called_off += not told.cleared
                continue
            if told is not None and told.cleared:
                continue
            clear_at = last_used + keep
            if told is None:
                if now < clear_at - notice or not _holds_data(assistant):
                    continue
                when = max(clear_at, now + notice)
                if await notify(assistant.team_id, assistant.user_id, assistant.name, when):
                    await self._note(*key, warned_at=now, cleared=False)
                    report.warned += 1
                continue
            if now >= max(clear_at, aware(told.warned_at) + notice):
                await self.commander.clear_stored_data(*key)
                await self._note(*key, warned_at=self.clock(), cleared=True)
                log.info("retention: cleared the data of %s/%s", *key)
                report.cleared += 1
        return report

    async def _note(self, scope: str, user_id: str, *, warned_at: datetime, cleared: bool) -> None:
        async with self.db.transaction() as session:
            found = await session.get(RetentionNotice, (scope, user_id))
            if found is None:
                session.add(
                    RetentionNotice(
                        scope=scope, user_id=user_id, warned_at=warned_at, cleared=cleared
                    )
                )
            else:
                await session.execute(
                    update(RetentionNotice)
                    .where(RetentionNotice.scope == scope, RetentionNotice.user_id == user_id)
                    .values(warned_at=warned_at, cleared=cleared)
                )

    async def _forget_notice(self, scope: str, user_id: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                delete(RetentionNotice).where(
                    RetentionNotice.scope == scope, RetentionNotice.user_id == user_id
                )
            )


def _holds_data(assistant: Assistant) -> bool:
    return bool(assistant.last_item_id or assistant.last_response_id or assistant.vector_store_id)
