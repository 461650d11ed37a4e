"""Answers, votes and stop requests, kept in the database so every instance sees them.

A stop request is a timestamp on the answer's row: whichever instance receives the
"stop" writes it, and the instance streaming that answer reads it between flushes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, case, func, select, update

from commander.errors import InvalidInput
from commander.store.answer_models import ANSWERED, STREAMING, Answer, FeedbackVote
from commander.store.db import Database
from commander.store.dialect import insert
from commander.store.models import new_id, utcnow
from commander.store.prepared import Write, bound, values_of

UP, DOWN = "up", "down"
MAX_COMMENT_CHARS = 2000
# An answer still marked as streaming after this long was left by a process that died.
STREAM_STALE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class AnswerKey:
    workspace: str
    team_id: str
    user_id: str
    channel: str
    thread_ts: str


@dataclass(frozen=True)
class TallyRow:
    workspace: str
    team_id: str
    user_id: str
    assistant_name: str
    up: int
    down: int


@dataclass(frozen=True)
class NegativeRow:
    when: datetime
    workspace: str
    team_id: str
    user_id: str
    assistant_name: str
    voter: str
    comment: str
    response_id: str
    model: str


# The hot path's statements, built once (commander/store/prepared.py).
ANSWERS = Answer.__table__
_START = ANSWERS.insert().values(
    values_of(
        ANSWERS,
        (
            "id",
            "workspace",
            "team_id",
            "user_id",
            "channel",
            "thread_ts",
            "assistant_name",
            "model",
            "status",
        ),
    )
)
_FINISH = (
    update(ANSWERS)
    .where(ANSWERS.c.id == bindparam("answer_id"))
    .values(values_of(ANSWERS, ("status", "response_id")))
)
_STOP_REQUESTED = select(ANSWERS.c.stop_requested_at).where(ANSWERS.c.id == bindparam("answer_id"))


class Answers:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the answer's life ----------------------------------------------------------

    async def start(self, key: AnswerKey, assistant_name: str, model: str) -> str:
        answer_id, opening = self.starting(key, assistant_name, model)
        await self.db.execute(opening)
        return answer_id

    def starting(self, key: AnswerKey, assistant_name: str, model: str) -> tuple[str, Write]:
        """A new answer's id and the statement that records it, for a caller that writes
        it with others."""
        answer_id = new_id()
        row = {
            "id": answer_id,
            "workspace": key.workspace,
            "team_id": key.team_id,
            "user_id": key.user_id,
            "channel": key.channel,
            "thread_ts": key.thread_ts,
            "assistant_name": assistant_name[:80],
            "model": model[:100],
            "status": STREAMING,
        }
        return answer_id, Write(_START, bound(row))

    async def finish(self, answer_id: str, status: str, response_id: str | None) -> None:
        await self.db.execute(self.finishing(answer_id, status, response_id))

    @staticmethod
    def finishing(answer_id: str, status: str, response_id: str | None) -> Write:
        """The statement that ends the answer, for a caller that writes it with others."""
        values = {"status": status, "response_id": response_id}
        return Write(_FINISH, {"answer_id": answer_id} | bound(values))

    async def stop_requested(self, answer_id: str) -> bool:
        rows = await self.db.rows(_STOP_REQUESTED, {"answer_id": answer_id})
        return bool(rows) and rows[0][0] is not None

    async def request_stop(self, key: AnswerKey, *, any_thread: bool = False) -> str | None:
        """ "stopping" when the author's answer streams in this thread, "not_yours" when
        only someone else's does, None when nothing streams there (an ordinary message).

        `any_thread`: a "stop" sent outside a thread (a DM) stops the author's answers in
        any thread of that channel."""
        since = datetime.now(UTC) - STREAM_STALE_AFTER
        where = [
            Answer.channel == key.channel,
            Answer.status == STREAMING,
            Answer.created_at >= since,
        ]
        if not any_thread:
            where.append(Answer.thread_ts == key.thread_ts)
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(Answer.id, Answer.team_id, Answer.user_id).where(*where)
            )
            streaming = rows.all()
            mine = [
                aid for aid, team, user in streaming if (team, user) == (key.team_id, key.user_id)
            ]
            if mine:
                await session.execute(
                    update(Answer)
                    .where(Answer.id.in_(mine), Answer.stop_requested_at.is_(None))
                    .values(stop_requested_at=datetime.now(UTC))
                )
                return "stopping"
        return "not_yours" if streaming else None

    # --- votes ----------------------------------------------------------------------

    async def vote(
        self, answer_id: str, voter_team: str, voter_user: str, vote: str, voted_ts: str = ""
    ) -> None:
        """Record the voter's current vote: the one of their latest click (Slack's
        `action_ts`), whatever order the clicks are handled in. A changed vote drops the
        comment that went with the earlier one."""
        if vote not in (UP, DOWN):
            raise InvalidInput("That feedback is not understood.")
        await self._exists(answer_id)
        voted_ts = voted_ts or f"{time.time():.6f}"
        stmt = insert(self.db, FeedbackVote).values(
            id=new_id(),
            answer_id=answer_id,
            voter_team=voter_team,
            voter_user=voter_user,
            vote=vote,
            voted_ts=voted_ts,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                FeedbackVote.answer_id,
                FeedbackVote.voter_team,
                FeedbackVote.voter_user,
            ],
            set_={
                "vote": stmt.excluded.vote,
                "voted_ts": stmt.excluded.voted_ts,
                "comment": case(
                    (FeedbackVote.vote == stmt.excluded.vote, FeedbackVote.comment), else_=None
                ),
                "updated_at": stmt.excluded.updated_at,
            },
            where=FeedbackVote.voted_ts <= stmt.excluded.voted_ts,
        )
        async with self.db.transaction() as session:
            await session.execute(stmt)

    async def comment(self, answer_id: str, voter_team: str, voter_user: str, text: str) -> bool:
        """Attach the voter's comment to their 👎; False when they have no 👎 on it."""
        text = text.strip()[:MAX_COMMENT_CHARS]
        async with self.db.transaction() as session:
            result = await session.execute(
                update(FeedbackVote)
                .where(*_voter(answer_id, voter_team, voter_user), FeedbackVote.vote == DOWN)
                .values(comment=text or None)
            )
        return bool(result.rowcount)

    async def _exists(self, answer_id: str) -> None:
        async with self.db.session() as session:
            if await session.get(Answer, answer_id) is None:
                raise InvalidInput("That answer is no longer known, so the feedback was not kept.")

    # --- the report -----------------------------------------------------------------

    async def tally(self, since: datetime | None) -> list[TallyRow]:
        up = func.sum(_count(FeedbackVote.vote == UP))
        down = func.sum(_count(FeedbackVote.vote == DOWN))
        query = (
            select(
                Answer.workspace,
                Answer.team_id,
                Answer.user_id,
                func.max(Answer.assistant_name),
                up,
                down,
            )
            .join(FeedbackVote, FeedbackVote.answer_id == Answer.id)
            .group_by(Answer.workspace, Answer.team_id, Answer.user_id)
            .order_by(Answer.workspace, Answer.team_id, Answer.user_id)
        )
        if since is not None:
            query = query.where(FeedbackVote.updated_at >= since)
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return [TallyRow(w, t, u, n or "", int(a or 0), int(b or 0)) for w, t, u, n, a, b in rows]

    async def negatives(self, since: datetime | None, limit: int = 50) -> list[NegativeRow]:
        query = (
            select(FeedbackVote, Answer)
            .join(Answer, FeedbackVote.answer_id == Answer.id)
            .where(FeedbackVote.vote == DOWN)
            .order_by(FeedbackVote.updated_at.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(FeedbackVote.updated_at >= since)
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return [
            NegativeRow(
                vote.updated_at,
                answer.workspace,
                answer.team_id,
                answer.user_id,
                answer.assistant_name,
                f"{vote.voter_team}/{vote.voter_user}",
                vote.comment or "",
                answer.response_id or "",
                answer.model,
            )
            for vote, answer in rows
        ]


def _voter(answer_id: str, team: str, user: str) -> tuple:
    return (
        FeedbackVote.answer_id == answer_id,
        FeedbackVote.voter_team == team,
        FeedbackVote.voter_user == user,
    )


def _count(condition):  # type: ignore[no-untyped-def]
    from sqlalchemy import case

    return case((condition, 1), else_=0)


__all__ = ["ANSWERED", "DOWN", "UP", "AnswerKey", "Answers"]
