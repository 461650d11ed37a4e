"""Tables of multi-workspace installs, departures and usage.

People are keyed by an *owner scope* and their user id (the `team_id` column of every
per-person table): the workspace id for a workspace install and for single-token mode,
the enterprise id for an Enterprise Grid org-wide install. Grid user ids are global
across an org, so one person seen from two workspaces of the org is one assistant.
Existing single-workspace rows were keyed by workspace id and stay valid unchanged.

The installation and OAuth state tables are in commander/store/slack_tables.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from commander.store.models import Base, utcnow


class Departure(Base):
    """A workspace (or Grid org) that removed the app. Its data is deleted at `purge_after`
    unless it installs again first; the row stays as the record of what happened."""

    __tablename__ = "departures"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(40))
    left_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    purge_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "pending", "purged" or "returned" (installed again within the grace period).
    state: Mapped[str] = mapped_column(String(20), default="pending")
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class UsageDay(Base):
    """Tokens and tool calls of one person, in one workspace, with one model, on one UTC day.
    Turns add to it with an upsert, so instances never lose each other's counts."""

    __tablename__ = "usage_days"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workspace: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    file_search_calls: Mapped[int] = mapped_column(Integer, default=0)
    code_interpreter_calls: Mapped[int] = mapped_column(Integer, default=0)
    web_search_calls: Mapped[int] = mapped_column(Integer, default=0)
    function_calls: Mapped[int] = mapped_column(Integer, default=0)
    files_added: Mapped[int] = mapped_column(Integer, default=0)


class RetentionNotice(Base):
    """A person told that their assistant's data will be cleared for lack of use."""

    __tablename__ = "retention_notices"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    warned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)
