"""Metering and budgets.

Every turn adds its tokens (from the provider's usage blocks), tool calls by kind and
files added to one row per person, workspace, model and UTC day, with an
`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`: instances never overwrite each
other's counts.

Budgets are read from those rows before a turn starts: TOKENS_PER_DAY per person (UTC
day), WORKSPACE_TOKENS_PER_MONTH per owner scope (UTC calendar month). A turn's cost is
known only when it ends, so the cap is "no turn starts once the total has reached it";
it can be exceeded by at most the turns already running when it was reached (for one
person at most one: a person's turns run one at a time, cluster-wide).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql import Executable

from commander.errors import CommanderError, ConfigError
from commander.events import ToolProgress, Usage
from commander.store.db import Database
from commander.store.dialect import upsert_insert
from commander.store.models import utcnow
from commander.store.prepared import Write, bound, values_of
from commander.store.tenancy_models import UsageDay
from commander.tenancy_settings import TenancySettings

BUILTIN_TOOLS = {"file_search", "code_interpreter", "web_search"}
TOKEN_FIELDS = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")
COUNT_FIELDS = (
    "turns",
    "file_search_calls",
    "code_interpreter_calls",
    "web_search_calls",
    "function_calls",
    "files_added",
)


class BudgetExceeded(CommanderError):
    user_message = "You have used your allowance of tokens for now."


@dataclass
class TurnUsage:
    """What one turn used; fed the turn's events as they pass."""

    turns: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    file_search_calls: int = 0
    code_interpreter_calls: int = 0
    web_search_calls: int = 0
    function_calls: int = 0
    files_added: int = 0
    _tools_seen: set[str] = field(default_factory=set, repr=False)

    def see(self, event: Any) -> None:
        if isinstance(event, Usage):
            self.input_tokens += event.input_tokens
            self.cached_tokens += event.cached_tokens
            self.output_tokens += event.output_tokens
            self.reasoning_tokens += event.reasoning_tokens
        elif isinstance(event, ToolProgress) and event.status in ("completed", "failed"):
            key = event.id or f"{event.tool}:{len(self._tools_seen)}"
            if key in self._tools_seen:
                return
            self._tools_seen.add(key)
            kind = event.tool if event.tool in BUILTIN_TOOLS else "function"
            setattr(self, f"{kind}_calls", getattr(self, f"{kind}_calls") + 1)

    @property
    def tokens(self) -> int:
        """Tokens billed: input (cached included) and output (reasoning included)."""
        return self.input_tokens + self.output_tokens

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in (*TOKEN_FIELDS, *COUNT_FIELDS)}


@dataclass(frozen=True)
class Totals:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    turns: int = 0
    file_search_calls: int = 0
    code_interpreter_calls: int = 0
    web_search_calls: int = 0
    function_calls: int = 0
    files_added: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def tool_calls(self) -> int:
        return (
            self.file_search_calls
            + self.code_interpreter_calls
            + self.web_search_calls
            + self.function_calls
        )


SUMS = [func.coalesce(func.sum(getattr(UsageDay, f.name)), 0) for f in fields(Totals)]


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


USAGE_KEY = ("scope", "user_id", "day", "workspace", "model")


@functools.cache
def _adding_usage(sqlite: bool) -> Executable:
    """Insert a person's day of usage on a model, or add to it (commander/store/prepared.py)."""
    table = UsageDay.__table__
    counts = (*TOKEN_FIELDS, *COUNT_FIELDS)
    stmt = upsert_insert(sqlite, table).values(values_of(table, (*USAGE_KEY, *counts)))
    return stmt.on_conflict_do_update(
        index_elements=list(USAGE_KEY),
        set_={name: table.c[name] + stmt.excluded[name] for name in counts},
    )


class UsageBook:
    def __init__(
        self, db: Database, settings: TenancySettings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def record(
        self, scope: str, workspace: str, user_id: str, model: str, usage: TurnUsage
    ) -> None:
        await self.db.execute(self.recording(scope, workspace, user_id, model, usage))

    def recording(
        self, scope: str, workspace: str, user_id: str, model: str, usage: TurnUsage
    ) -> Write:
        """The statement that adds a turn's usage, for a caller that writes it with others."""
        row = {
            "scope": scope,
            "user_id": user_id,
            "day": self.clock().date(),
            "workspace": workspace,
            "model": model[:100],
            **usage.counts(),
        }
        return Write(_adding_usage(self.db.is_sqlite), bound(row))

    async def totals(self, *where: Any) -> Totals:
        (row,) = await self.db.rows(select(*SUMS).where(*where))
        return Totals(*(int(v) for v in row))

    async def person_today(self, scope: str, user_id: str) -> Totals:
        today = self.clock().date()
        return await self.totals(
            UsageDay.scope == scope, UsageDay.user_id == user_id, UsageDay.day == today
        )

    async def person_month(self, scope: str, user_id: str) -> Totals:
        start = month_start(self.clock().date())
        return await self.totals(
            UsageDay.scope == scope, UsageDay.user_id == user_id, UsageDay.day >= start
        )

    async def scope_month(self, scope: str) -> Totals:
        start = month_start(self.clock().date())
        return await self.totals(UsageDay.scope == scope, UsageDay.day >= start)

    async def top_users(self, scope: str, limit: int = 5) -> list[tuple[str, int]]:
        start = month_start(self.clock().date())
        tokens = func.sum(UsageDay.input_tokens + UsageDay.output_tokens)
        async with self.db.session() as session:
            rows = await session.execute(
                select(UsageDay.user_id, tokens)
                .where(UsageDay.scope == scope, UsageDay.day >= start)
                .group_by(UsageDay.user_id)
                .order_by(tokens.desc(), UsageDay.user_id)
                .limit(limit)
            )
        return [(user, int(total or 0)) for user, total in rows.all()]

    async def check(self, scope: str, user_id: str) -> None:
        """Refuse a new turn when the person's or the workspace's budget is used up."""
        now = self.clock()
        per_day = self.settings.tokens_per_day
        if per_day is not None:
            used = (await self.person_today(scope, user_id)).tokens
            if used >= per_day:
                resets = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
                raise BudgetExceeded(
                    f"You've used today's allowance of {per_day:,} tokens. It resets at "
                    f"midnight UTC, {_in(resets - now)}; ask me again then."
                )
        per_month = self.settings.workspace_tokens_per_month
        if per_month is not None:
            used = (await self.scope_month(scope)).tokens
            if used >= per_month:
                resets = next_month(now.date())
                raise BudgetExceeded(
                    f"Your workspace has used this month's allowance of {per_month:,} tokens. "
                    f"It resets on {resets:%B} 1 (UTC); ask me again then."
                )


def _in(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


@dataclass(frozen=True)
class Price:
    """Money per million tokens, in the prices file's currency."""

    input: Decimal
    cached_input: Decimal
    output: Decimal


def load_prices(path: Path) -> dict[str, Price]:
    """PRICES_FILE: {"currency": "USD", "models": {"gpt-5.5": {"input": 1.25,
    "cached_input": 0.125, "output": 10}}}; cached_input defaults to input."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        models = raw["models"]
        return {
            str(model): Price(
                Decimal(str(p["input"])),
                Decimal(str(p.get("cached_input", p["input"]))),
                Decimal(str(p["output"])),
            )
            for model, p in models.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"PRICES_FILE {str(path)!r} is not a prices file ({type(exc).__name__}: {exc}). "
            'Expected {"models": {"<model>": {"input": …, "cached_input": …, "output": …}}}.'
        ) from None


def cost(price: Price, input_tokens: int, cached_tokens: int, output_tokens: int) -> Decimal:
    million = Decimal(1_000_000)
    fresh = max(0, input_tokens - cached_tokens)
    return (
        price.input * fresh + price.cached_input * cached_tokens + price.output * output_tokens
    ) / million
