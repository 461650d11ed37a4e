"""`python -m commander feedback [--since DATE] [--csv]`: votes by workspace and assistant,
then recent 👎 with their comments and the provider's response id. No message text
appears but what voters typed into the "What went wrong?" form."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, date, datetime
from typing import TextIO

from commander.feedback import Answers


def since_date(raw: str) -> datetime:
    """argparse type: YYYY-MM-DD, as the start of that day in UTC."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {raw!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def report(answers: Answers, since: datetime | None, as_csv: bool, out: TextIO) -> int:
    tally = await answers.tally(since)
    negatives = await answers.negatives(since)
    if as_csv:
        writer = csv.writer(out)
        writer.writerow(
            [
                "section",
                "workspace",
                "team",
                "user",
                "assistant",
                "up",
                "down",
                "when",
                "voter",
                "model",
                "response_id",
                "comment",
            ]
        )
        for row in tally:
            writer.writerow(
                [
                    "votes",
                    row.workspace,
                    row.team_id,
                    row.user_id,
                    row.assistant_name,
                    row.up,
                    row.down,
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
        for neg in negatives:
            writer.writerow(
                [
                    "negative",
                    neg.workspace,
                    neg.team_id,
                    neg.user_id,
                    neg.assistant_name,
                    "",
                    "",
                    neg.when.isoformat(),
                    neg.voter,
                    neg.model,
                    neg.response_id,
                    neg.comment,
                ]
            )
        return 0
    out.write(f"Feedback{f' since {since:%Y-%m-%d}' if since else ''}\n")
    out.write("workspace\tassistant (team/user)\t👍\t👎\n")
    for row in tally:
        out.write(
            f"{row.workspace}\t{row.assistant_name} ({row.team_id}/{row.user_id})\t"
            f"{row.up}\t{row.down}\n"
        )
    out.write(f"{sum(r.up for r in tally)} 👍, {sum(r.down for r in tally)} 👎\n")
    out.write("\nRecent 👎\n")
    for neg in negatives:
        comment = neg.comment.replace("\n", " ") or "(no comment)"
        out.write(
            f"{neg.when:%Y-%m-%d %H:%M}\t{neg.workspace}\t{neg.assistant_name} "
            f"({neg.team_id}/{neg.user_id})\tby {neg.voter}\t{neg.model}\t"
            f"response {neg.response_id or '-'}\t{comment}\n"
        )
    if not negatives:
        out.write("none\n")
    return 0
