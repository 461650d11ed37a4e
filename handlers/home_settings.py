"""App Home pickers: tools, model and reasoning effort, applied as soon as they change.

A Home tab is only ever shown to its owner, so the actor changes their own assistant."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers import ids
from handlers.actions import Origin, Reply, guarded
from handlers.blocks import tool_list
from handlers.context import Deps
from handlers.settings_blocks import DEFAULT_EFFORT

Body = dict[str, Any]


def register(app: AsyncApp, deps: Deps) -> None:
    def listener(kind: str) -> Any:
        async def on_change(
            ack: AsyncAck, body: Body, client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await ack()
            origin = Origin.of_action(body, deps.slack.team_id)
            if not origin.user_id:
                return
            action = (body.get("actions") or [{}])[0]
            reply = Reply(deps, client, respond, origin)
            deps.spawn(guarded(apply(deps, reply, kind, action), reply, kind), kind)

        return on_change

    app.action(ids.HOME_TOOLS)(listener("tools"))
    app.action(ids.HOME_MODEL)(listener("model"))
    app.action(ids.HOME_EFFORT)(listener("effort"))


async def apply(deps: Deps, reply: Reply, kind: str, action: dict[str, Any]) -> None:
    origin, commander = reply.origin, deps.commander
    if kind == "tools":
        chosen = [str(o.get("value")) for o in action.get("selected_options") or []]
        assistant = await commander.configure(origin.team_id, origin.user_id, tools=chosen)
        text = f"Tools: {tool_list(assistant.tools)}."
    else:
        value = str((action.get("selected_option") or {}).get("value") or "")
        if kind == "model":
            assistant = await commander.configure(origin.team_id, origin.user_id, model=value)
        else:
            assistant = await commander.configure(
                origin.team_id,
                origin.user_id,
                reasoning_effort=None if value == DEFAULT_EFFORT else value,
                clear_effort=value == DEFAULT_EFFORT,
            )
        effort = assistant.reasoning_effort or "model default"
        text = f"Model: {assistant.model}, reasoning effort: {effort}."
    await reply.changed(text)
