"""`python -m commander usage`: tokens, tool calls and files by person, workspace or day;
money too when PRICES_FILE names the price of each model."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TextIO

from sqlalchemy import func, select

from commander.store.db import Database
from commander.store.tenancy_models import UsageDay
from commander.usage import Price, cost

SUMMED = (
    "turns",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "file_search_calls",
    "code_interpreter_calls",
    "web_search_calls",
    "function_calls",
    "files_added",
)
GROUPS = {
    "user": (UsageDay.scope, UsageDay.user_id),
    "workspace": (UsageDay.workspace,),
    "day": (UsageDay.day,),
}


@dataclass
class ReportRow:
    key: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))
    cost: Decimal | None = None
    unpriced: set[str] = field(default_factory=set)

    @property
    def tokens(self) -> int:
        return self.counts["input_tokens"] + self.counts["output_tokens"]

    @property
    def tool_calls(self) -> int:
        return sum(v for k, v in self.counts.items() if k.endswith("_calls"))


async def usage_rows(
    db: Database, by: str, since: date | None, prices: dict[str, Price] | None
) -> list[ReportRow]:
    keys = GROUPS[by]
    sums = [func.sum(getattr(UsageDay, name)) for name in SUMMED]
    query = select(*keys, UsageDay.model, *sums).group_by(*keys, UsageDay.model)
    if since is not None:
        query = query.where(UsageDay.day >= since)
    async with db.session() as session:
        found = (await session.execute(query)).all()
    rows: dict[tuple[str, ...], ReportRow] = {}
    for record in found:
        key = tuple(str(v) for v in record[: len(keys)])
        model = str(record[len(keys)])
        counts = [int(v or 0) for v in record[len(keys) + 1 :]]
        row = rows.setdefault(key, ReportRow(key))
        for name, value in zip(SUMMED, counts, strict=True):
            row.counts[name] += value
        if prices is not None:
            price = prices.get(model)
            if price is None:
                row.unpriced.add(model)
                continue
            spent = cost(price, counts[1], counts[2], counts[3])
            row.cost = (row.cost or Decimal(0)) + spent
    return sorted(rows.values(), key=lambda r: (-r.tokens, r.key) if by != "day" else r.key)


def write_report(
    rows: list[ReportRow], by: str, out: TextIO, *, as_csv: bool, priced: bool
) -> None:
    key_names = {"user": ["scope", "user"], "workspace": ["workspace"], "day": ["day"]}[by]
    header = [*key_names, "tokens", *SUMMED]
    if priced:
        header.append("cost")
    lines = []
    for row in rows:
        line = [*row.key, str(row.tokens), *(str(row.counts[n]) for n in SUMMED)]
        if priced:
            line.append(_money(row))
        lines.append(line)
    if as_csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(lines)
        return
    short = [*key_names, "tokens", "turns", "input", "cached", "output", "reasoning", "tools"]
    short += ["files", "cost"] if priced else ["files"]
    out.write("\t".join(short) + "\n")
    for row in rows:
        c = row.counts
        values = [*row.key, row.tokens, c["turns"], c["input_tokens"], c["cached_tokens"]]
        values += [c["output_tokens"], c["reasoning_tokens"], row.tool_calls, c["files_added"]]
        if priced:
            values.append(_money(row))
        out.write("\t".join(str(v) for v in values) + "\n")
    total = sum(r.tokens for r in rows)
    out.write(f"{len(rows)} row(s), {total} tokens\n")


def _money(row: ReportRow) -> str:
    if row.unpriced:
        return f"? (no price for {', '.join(sorted(row.unpriced))})"
    return f"{(row.cost or Decimal(0)):.4f}"
