"""Group commit: many small writes that arrive together share one transaction.

The first item starts a batch at once (no waiting to fill it); items that arrive while a
batch is being written go into the next one. In a burst of N writes each caller then
waits for about two commits instead of queueing behind N-1 of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """`write(items)` stores a batch in one transaction and returns one result per item.

    A batch that fails is written again one item at a time, so one bad item cannot
    refuse the others; each caller then gets its own item's result or error."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        self._write = write
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a caller that went away leaves no warning
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        # The batch is written even if this caller goes away (e.g. Slack hung up).
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        finally:
            self._writer = None
            left, self._pending = self._pending, []
            for _, done in left:  # only when cancelled (shutting down)
                _settle(done, error=asyncio.CancelledError())

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for one in batch:
                await self._write_batch([one])
            return
        except BaseException as exc:  # cancelled: nobody may wait forever
            for _, done in batch:
                _settle(done, error=exc)
            raise
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)


def _settle(done: asyncio.Future[Result], *, error: BaseException) -> None:
    if done.done():
        return
    if isinstance(error, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(error)


def _retrieved(done: asyncio.Future[object]) -> None:
    if not done.cancelled():
        done.exception()
