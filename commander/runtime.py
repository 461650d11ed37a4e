"""Wire the core together from settings: database, provider client, tools, service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openai import AsyncOpenAI

from commander.backend import ModelBackend, build_client
from commander.leases import PersonLocks, new_instance_id
from commander.logs import quiet_http_loggers  # noqa: F401 (re-exported)
from commander.service import Commander
from commander.settings import CoreSettings
from commander.store.db import Database
from commander.tools import EmailWebhook, MarketData, YFinanceMarketData, build_tools


async def build_commander(
    settings: CoreSettings,
    *,
    client: AsyncOpenAI | None = None,
    market: MarketData | None = None,
    instance_id: str | None = None,
) -> Commander:
    db = Database(settings.database_url, settings.database_pool)
    try:
        await db.migrate()
    except BaseException:
        await db.close()
        raise
    client = client or build_client(settings)
    endpoint_key = str(client.base_url)
    backend = ModelBackend(client, db, endpoint_key)
    email = EmailWebhook(settings.email_uri) if settings.email_uri else None
    functions = build_tools(market or YFinanceMarketData(), email_enabled=email is not None)
    locks = PersonLocks(db, instance_id or new_instance_id(), settings.cluster.job_lease_s)
    return Commander(settings, db, backend, functions, email, locks)


async def close_commander(commander: Commander) -> None:
    await commander.backend.client.close()
    await commander.db.close()


@asynccontextmanager
async def open_commander(settings: CoreSettings, **kwargs: object) -> AsyncIterator[Commander]:
    commander = await build_commander(settings, **kwargs)  # type: ignore[arg-type]
    try:
        yield commander
    finally:
        await close_commander(commander)
