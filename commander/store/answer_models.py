"""Answers shown in Slack, with the votes people gave them and stop requests.

An answer row exists from the moment a turn starts streaming: it is how any instance
finds the answer a "stop" refers to, and what feedback buttons point at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commander.store.models import Base, new_id, utcnow

STREAMING, ANSWERED, STOPPED, FAILED = "streaming", "answered", "stopped", "failed"


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_thread", "team_id", "user_id", "channel", "thread_ts", "status"),
        Index("ix_answers_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace: Mapped[str] = mapped_column(String(32))  # the channel's workspace
    team_id: Mapped[str] = mapped_column(String(32))  # the author's, keying the assistant
    user_id: Mapped[str] = mapped_column(String(32))
    assistant_name: Mapped[str] = mapped_column(String(80))
    model: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    response_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=STREAMING)
    stop_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class FeedbackVote(Base):
    """The last vote one person gave one answer (Slack sends every toggle, no "unset")."""

    __tablename__ = "feedback_votes"
    __table_args__ = (UniqueConstraint("answer_id", "voter_team", "voter_user", name="uq_vote"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    answer_id: Mapped[str] = mapped_column(String(32), index=True)
    voter_team: Mapped[str] = mapped_column(String(32))
    voter_user: Mapped[str] = mapped_column(String(32))
    vote: Mapped[str] = mapped_column(String(10))  # "up" | "down"
    comment: Mapped[str | None] = mapped_column(Text)
    # Slack's action_ts of the click this vote came from: a click handled late (another
    # instance, a slow database) never overwrites a later one.
    voted_ts: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
