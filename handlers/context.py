"""What every listener needs, handed in by the composition root (bot/)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from commander.jobs import JobRunner, JobStore, ThreadFollower
from commander.service import Commander
from handlers.downloads import SlackFiles

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
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run work after the acknowledgement, tracked so shutdown and tests can wait."""
        task = asyncio.create_task(_logged(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
