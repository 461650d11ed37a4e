"""What every listener needs, handed in by the composition root (bot/)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.request.internals import extract_enterprise_id, extract_is_enterprise_install

from commander.jobs import JobRunner, JobStore, ThreadFollower
from commander.service import Commander
from commander.tenancy import Departures
from commander.usage import UsageBook
from handlers.downloads import SlackFiles
from handlers.workspaces import Where, Workspaces

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str
    api_url: str
    bot_user_id: str
    team_id: str


@dataclass
class Deps:
    commander: Commander
    jobs: JobStore
    slack: SlackConfig
    files: SlackFiles
    threads: ThreadFollower
    runner: JobRunner | None = None
    workspaces: Workspaces | None = None
    departures: Departures | None = None
    usage: UsageBook | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run work after the acknowledgement, tracked so shutdown and tests can wait."""
        task = asyncio.create_task(_logged(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def where(self, body: dict[str, Any]) -> Where:
        """The installation a request came through."""
        team = body.get("team_id") or (body.get("team") or {}).get("id") or self.slack.team_id
        return Where(
            str(team), extract_enterprise_id(body), bool(extract_is_enterprise_install(body))
        )

    def scope(self, body: dict[str, Any], person_team: str) -> str:
        """The owner scope of the person who acted (see handlers.workspaces)."""
        if self.workspaces is None:
            return person_team
        return self.workspaces.scope(self.where(body), person_team)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def wake(self, team_id: str, user_id: str) -> None:
        if self.runner is not None:
            self.runner.wake(team_id, user_id)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _logged(coro: Coroutine[Any, Any, Any], name: str) -> Any:
    try:
        return await coro
    except Exception:
        log.exception("background task %s failed (ref %s)", name, error_ref())
        return None


def error_ref() -> str:
    """A short id a user can quote and an admin can find in the logs."""
    return uuid.uuid4().hex[:8]
