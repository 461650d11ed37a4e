"""Helpers shared by the handler tests (they drive the whole bot through the `bot` fixture)."""

from __future__ import annotations

from typing import Any

from commander.store.models import Assistant

JsonDict = dict[str, Any]


def posts(bot: Any, key: str) -> list[JsonDict]:
    """Bodies the bot posted to the fake response_url `key`."""
    return list(bot.slack.response_posts.get(key, []))


def publishes_for(bot: Any, user_id: str) -> list[JsonDict]:
    return [
        c.args["view"]
        for c in bot.slack.calls_to("views.publish")
        if c.args.get("user_id") == user_id
    ]


def action_elements(view_or_blocks: JsonDict | list[JsonDict], action_id: str) -> list[JsonDict]:
    found = view_or_blocks["blocks"] if isinstance(view_or_blocks, dict) else view_or_blocks
    out: list[JsonDict] = []
    for block in found:
        candidates = [*block.get("elements", []), block.get("accessory") or {}]
        out += [e for e in candidates if e.get("action_id") == action_id]
    return out


def dm_texts(bot: Any, user_id: str) -> list[str]:
    return [m.text for m in bot.slack.messages.get("D" + user_id, [])]


async def make_assistant(bot: Any, user_id: str = "U1", **fields: Any) -> Assistant:
    fields.setdefault("instructions", "Be helpful.")
    return await bot.commander.create("T1", user_id, **fields)
