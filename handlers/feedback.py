"""👍/👎 on answers, and the optional "What went wrong?" comment after a 👎.

Anyone who can see an answer may rate it; the vote is stored under the voter, and a
changed vote replaces their earlier one."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from commander.feedback import DOWN
from handlers import answer_blocks, ids
from handlers.actions import Origin, Reply, guarded
from handlers.context import Deps
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)

Body = dict[str, Any]


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_feedback(
        ack: AsyncAck, body: Body, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        origin = Origin.of_action(body, deps.slack.team_id)
        action = (body.get("actions") or [{}])[0]
        parsed = answer_blocks.parse_feedback(str(action.get("value") or ""))
        if parsed is None or not origin.user_id:
            log.info("feedback with an unknown value ignored")
            await ack()
            return
        vote, answer_id = parsed
        if vote == DOWN:  # trigger ids last 3 s: open the modal before acknowledging
            await _open_comment_modal(client, str(body.get("trigger_id") or ""), answer_id)
        await ack()
        reply = Reply(deps, client, respond, origin)
        work = deps.commander.answers.vote(
            answer_id, origin.team_id, origin.user_id, vote, str(action.get("action_ts") or "")
        )
        deps.spawn(guarded(work, reply, "feedback"), "feedback")

    async def on_comment(ack: AsyncAck, body: Body) -> None:
        await ack()
        user = body.get("user") or {}
        view = body.get("view") or {}
        answer_id = str(view.get("private_metadata") or "")
        comment = answer_blocks.read_comment((view.get("state") or {}).get("values") or {})
        if not user.get("id") or not answer_id or not comment.strip():
            return
        team = str(user.get("team_id") or (body.get("team") or {}).get("id") or "")
        work = deps.commander.answers.comment(answer_id, team, str(user["id"]), comment)
        deps.spawn(work, "feedback_comment")

    app.action(ids.FEEDBACK)(on_feedback)
    app.view(ids.FEEDBACK_MODAL)(on_comment)


async def _open_comment_modal(client: AsyncWebClient, trigger_id: str, answer_id: str) -> None:
    if not trigger_id:
        return
    try:
        await client.views_open(trigger_id=trigger_id, view=answer_blocks.comment_modal(answer_id))
    except SLACK_ERRORS as exc:  # the vote still counts; only the comment is lost
        log.warning("could not open the feedback modal: %s", exc)
