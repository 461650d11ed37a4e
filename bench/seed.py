"""Give every simulated user an assistant before the bot starts.

This is what `python -m commander` does: the core service, on the same database and
the same (fake) model provider the bot will use. It is much faster than 500
`/assistant-create` commands and keeps the benchmark about turns, not about setup.
"""

from __future__ import annotations

import asyncio

from commander.runtime import build_commander, close_commander
from commander.settings import load_core_settings
from commander.tools import HistoryRow, Quote


class _NoMarket:  # seeding never calls a tool
    def latest_price(self, symbol: str) -> Quote:
        raise NotImplementedError

    def history(self, symbol: str, period: str) -> list[HistoryRow]:
        raise NotImplementedError


async def seed_assistants(
    database_url: str, openai_base_url: str, api_key: str, team: str, users: list[str]
) -> dict[str, str]:
    """Create one assistant per user; returns user -> conversation id at the provider."""
    env = {"OPENAI_API_KEY": api_key, "OPENAI_BASE_URL": openai_base_url}
    settings = load_core_settings({**env, "DATABASE_URL": database_url})
    commander = await build_commander(settings, market=_NoMarket())
    conversations: dict[str, str] = {}
    gate = asyncio.Semaphore(16)

    async def create(user: str) -> None:
        async with gate:
            assistant = await commander.create(
                team, user, instructions="You are a concise benchmark assistant."
            )
        conversations[user] = assistant.conversation_id or ""

    try:
        await asyncio.gather(*(create(user) for user in users))
    finally:
        await close_commander(commander)
    return conversations


def main() -> None:
    """`python -m bench.seed DATABASE_URL OPENAI_BASE_URL API_KEY TEAM USER...`: prints
    {user: conversation id} as JSON. Run with the measured checkout first on PYTHONPATH,
    so its own migrations and service create the rows."""
    import json
    import sys

    database_url, base_url, api_key, team, *users = sys.argv[1:]
    conversations = asyncio.run(seed_assistants(database_url, base_url, api_key, team, users))
    print(json.dumps(conversations))


if __name__ == "__main__":
    main()
