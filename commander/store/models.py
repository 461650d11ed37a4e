"""Tables. Every row a user owns is keyed by (team_id, user_id): user ids are only
unique within one workspace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every one we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class Assistant(Base):
    __tablename__ = "assistants"
    __table_args__ = (UniqueConstraint("team_id", "user_id", name="uq_assistant_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    instructions: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(100))
    # "low", "medium", ... for models that reason; None: the model's default.
    reasoning_effort: Mapped[str | None] = mapped_column(String(20))
    tools: Mapped[list[str]] = mapped_column(JSON, default=list)
    vector_store_id: Mapped[str | None] = mapped_column(String(100))
    # "conversation": conversation_id holds the thread; "previous_response":
    # last_response_id chains it (endpoints without the Conversations API).
    thread_strategy: Mapped[str] = mapped_column(String(20), default="conversation")
    conversation_id: Mapped[str | None] = mapped_column(String(100))
    last_response_id: Mapped[str | None] = mapped_column(String(100))
    # Newest conversation item we know of; lets a failed turn tell whether the
    # user's message already landed before it is sent again.
    last_item_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class StoredFile(Base):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_owner", "team_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    original_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    provider_file_id: Mapped[str | None] = mapped_column(String(100))
    # Which tools see the file: a list of "file_search" and/or "code_interpreter".
    attached_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="ready")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingEmail(Base):
    __tablename__ = "pending_emails"
    __table_args__ = (Index("ix_pending_emails_owner", "team_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ProviderFlag(Base):
    """Facts learnt about the provider endpoint, e.g. that it lacks Conversations."""

    __tablename__ = "provider_flags"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Job(Base):
    """A unit of accepted work (e.g. one Slack message), stored before it is acknowledged
    so that a crash or restart never loses it. `dedupe_key` makes redelivery harmless."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status", "status", "id"),
        Index("ix_jobs_person", "team_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # `running` means owned: by `owner` (an instance id) until `lease_until`, which the
    # owner renews while it works. `lease_token` grows with every claim; the owner's
    # writes name it, so an instance whose lease was taken over cannot write (fencing).
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class PersonLock(Base):
    """Who works on a person's assistant right now, cluster-wide (create, delete, reset,
    files, a turn). A lease: the holder renews it; an expired one may be taken."""

    __tablename__ = "person_locks"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TurnRecord(Base):
    """One accepted turn, kept for a minute or so: the per-minute limit counts these."""

    __tablename__ = "turn_log"
    __table_args__ = (Index("ix_turn_log_person", "team_id", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FollowedThread(Base):
    """A thread the bot answered in, so follow-ups there reach their authors' assistants."""

    __tablename__ = "followed_threads"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Registers the install, departure and usage tables on Base.metadata.
from commander.store import slack_tables, tenancy_models  # noqa: E402,F401
