"""Admin CLI: `python -m commander {chat,list,show,delete,doctor,prune,jobs,feedback,serve}`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any, TextIO

from dotenv import load_dotenv

from commander.api import ApiSettings, load_api_settings, serve_api, standalone_app
from commander.errors import CommanderError, DatabaseUnavailable
from commander.events import (
    Citation,
    EmailPending,
    GeneratedFile,
    TextDelta,
    ToolProgress,
    TurnFailed,
)
from commander.feedback_report import report, since_date
from commander.jobs import RUNNING, JobStore
from commander.logs import configure_logging
from commander.runtime import open_commander
from commander.service import Commander, thread_label
from commander.settings import ConfigError, load_core_settings
from commander.store.models import aware, utcnow
from commander.tenancy import departure_lines
from commander.tenancy_settings import load_tenancy_settings
from commander.usage import UsageBook, load_prices
from commander.usage_report import usage_rows, write_report

Command = Callable[[Commander, argparse.Namespace, TextIO], Coroutine[Any, Any, int]]


async def cmd_list(commander: Commander, _args: argparse.Namespace, out: TextIO) -> int:
    assistants = await commander.list_all()
    for a in assistants:
        out.write(f"{a.team_id}\t{a.user_id}\t{a.name}\t{a.model}\t{','.join(a.tools)}\n")
    out.write(f"{len(assistants)} assistant(s)\n")
    for line in await departure_lines(commander):
        out.write(line + "\n")
    return 0


async def cmd_show(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    status = await commander.status(args.team, args.user)
    if status is None:
        out.write(f"No assistant for {args.team}/{args.user}.\n")
        return 1
    a = status.assistant
    out.write(
        f"name: {a.name}\nmodel: {a.model}\ntools: {', '.join(a.tools) or '-'}\n"
        f"thread: {thread_label(a)}\nvector store: {a.vector_store_id or '-'}\n"
        f"created: {a.created_at:%Y-%m-%d %H:%M}\ninstructions: {a.instructions}\n"
        f"files: {len(status.files)}\n"
    )
    for f in status.files:
        out.write(f"  {f.original_name}\t{f.size} bytes\t{','.join(f.attached_to)}\n")
    return 0


async def cmd_delete(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    report = await commander.delete(args.team, args.user)
    if not report.assistant:
        out.write(f"No assistant for {args.team}/{args.user}; removed leftovers only.\n")
    out.write(
        f"conversation: {report.conversation}; vector store: {report.vector_store}; "
        f"files deleted: {report.files_deleted} (already gone: {report.files_already_gone}); "
        f"rows deleted: {report.rows_deleted}\n"
    )
    return 0


async def cmd_doctor(commander: Commander, _args: argparse.Namespace, out: TextIO) -> int:
    settings = commander.settings
    out.write(f"provider: {settings.provider} ({commander.backend.client.base_url})\n")
    out.write(f"model: {settings.model}\ndatabase: ok (migrated)\n")
    out.write(f"email: {'configured' if commander.email else 'off'}\n")
    try:
        await commander.backend.check(settings.model)
    except CommanderError as exc:
        out.write(f"provider check FAILED: {exc.user_message}\n")
        return 1
    out.write("provider: reachable, credentials accepted, model found\n")
    supported = await commander.backend.conversations_supported()
    out.write(f"threads: {'conversations' if supported else 'chained responses'}\n")
    return 0


async def cmd_prune(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    status_rows = [await commander.status(a.team_id, a.user_id) for a in await commander.list_all()]
    known_files = {f.provider_file_id for s in status_rows if s for f in s.files}
    known_stores = {s.assistant.vector_store_id for s in status_rows if s}
    orphans = [
        ("file", fid) for fid in await commander.backend.list_file_ids() if fid not in known_files
    ] + [
        ("vector store", vid)
        for vid in await commander.backend.list_vector_store_ids()
        if vid not in known_stores
    ]
    for kind, object_id in orphans:
        out.write(f"orphan {kind}: {object_id}\n")
        if args.delete:
            remove = (
                commander.backend.delete_file
                if kind == "file"
                else commander.backend.delete_vector_store
            )
            await remove(object_id)
    verb = "deleted" if args.delete else "found (run with --delete to remove them)"
    out.write(f"{len(orphans)} orphan(s) {verb}\n")
    return 0


async def cmd_chat(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    if await commander.get(args.team, args.user) is None:
        await commander.create(args.team, args.user, instructions=args.instructions)
        out.write("Created an assistant for this user.\n")
    out.write("Type a message; an empty line or Ctrl-D quits.\n")
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line.strip():
            return 0
        await _print_turn(commander, args, line, out)


async def _print_turn(
    commander: Commander, args: argparse.Namespace, line: str, out: TextIO
) -> None:
    try:
        async for event in commander.ask(args.team, args.user, line):
            if isinstance(event, TextDelta):
                out.write(event.text)
            elif isinstance(event, ToolProgress) and event.status == "in_progress":
                out.write(f"\n[{event.label}…]\n")
            elif isinstance(event, GeneratedFile):
                out.write(f"\n[file: {event.filename}, {len(event.content)} bytes]\n")
            elif isinstance(event, Citation):
                out.write(f"\n[source: {event.filename}]")
            elif isinstance(event, EmailPending):
                out.write(f"\n[email draft to {', '.join(event.to)} awaits confirmation]\n")
            elif isinstance(event, TurnFailed):
                out.write(f"\n{event.user_message}")
            out.flush()
    except CommanderError as exc:
        out.write(exc.user_message)
    out.write("\n")


async def cmd_serve(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    """The REST API alone, without Slack, until SIGINT or SIGTERM."""
    settings: ApiSettings = args.api_settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    usage = UsageBook(commander.db, args.tenancy)
    app = standalone_app(commander, settings, usage=usage)
    await serve_api(app, args.host, args.port, stop)
    return 0


def _serve_options(args: argparse.Namespace) -> None:
    """Check what `serve` needs before anything is built; ConfigError says what is missing."""
    api = load_api_settings(os.environ)
    if api is None:
        raise ConfigError("API_KEYS is not set: `serve` serves only the REST API, which needs it.")
    args.api_settings = api
    args.tenancy = load_tenancy_settings(os.environ)  # budgets hold for API users too
    args.host = os.environ.get("HOST", "").strip() or "0.0.0.0"
    raw_port = os.environ.get("PORT", "").strip() or "3000"
    if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
        raise ConfigError(f"PORT must be a number between 1 and 65535, got {raw_port!r}.")
    args.port = int(raw_port)


async def cmd_feedback(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    return await report(commander.answers, args.since, args.csv, out)


async def cmd_jobs(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    """The shared job queue: who owns what, until when, how old, how often tried."""
    jobs = await JobStore(commander.db).listing(unfinished_only=not args.all)
    now = utcnow()
    out.write("id\tstate\towner\tlease\tage\tattempts\tperson\n")
    for job in jobs:
        lease = "-"
        if job.status == RUNNING and job.lease_until is not None:
            left = (aware(job.lease_until) - now).total_seconds()
            lease = f"{left:.0f} s left" if left >= 0 else f"expired {-left:.0f} s ago"
        age = (now - aware(job.created_at)).total_seconds()
        out.write(
            f"{job.id}\t{job.status}\t{job.owner or '-'}\t{lease}\t{age:.0f} s\t"
            f"{job.attempts}\t{job.team_id}/{job.user_id}\n"
        )
    depth, oldest = await JobStore(commander.db).queue_stats()
    waiting = "" if oldest is None else f"; oldest queued {oldest:.0f} s"
    out.write(f"{depth} unfinished job(s){waiting}\n")
    return 0


async def cmd_usage(commander: Commander, args: argparse.Namespace, out: TextIO) -> int:
    try:
        tenancy = load_tenancy_settings()
        prices = load_prices(tenancy.prices_file) if tenancy.prices_file else None
    except ConfigError as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        return 2
    rows = await usage_rows(commander.db, args.by, args.since, prices)
    write_report(rows, args.by, out, as_csv=args.csv, priced=prices is not None)
    return 0


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {raw!r}") from None


COMMANDS: dict[str, Command] = {
    "jobs": cmd_jobs,
    "feedback": cmd_feedback,
    "chat": cmd_chat,
    "list": cmd_list,
    "show": cmd_show,
    "delete": cmd_delete,
    "doctor": cmd_doctor,
    "prune": cmd_prune,
    "serve": cmd_serve,
    "usage": cmd_usage,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m commander", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    for name in ("chat", "show", "delete"):
        p = sub.add_parser(name)
        p.add_argument("--team", required=True)
        p.add_argument("--user", required=True)
        if name == "chat":
            p.add_argument("--instructions", default="You are a helpful assistant.")
    sub.add_parser("list")
    usage = sub.add_parser("usage", help="tokens, tool calls and files used")
    usage.add_argument("--since", type=_date, help="from this UTC day on (YYYY-MM-DD)")
    usage.add_argument("--by", choices=("user", "workspace", "day"), default="user")
    usage.add_argument("--csv", action="store_true", help="comma-separated, every column")
    sub.add_parser("doctor")
    jobs = sub.add_parser("jobs", help="the job queue: state, owner, lease, age, attempts")
    jobs.add_argument("--all", action="store_true", help="finished jobs too (kept 3 days)")
    sub.add_parser("serve", help="serve the REST API alone (needs API_KEYS; PORT, HOST)")
    prune = sub.add_parser("prune")
    prune.add_argument("--delete", action="store_true", help="remove what is found")
    feedback = sub.add_parser("feedback", help="votes on answers, and recent 👎 with comments")
    feedback.add_argument("--since", type=since_date, help="YYYY-MM-DD")
    feedback.add_argument("--csv", action="store_true", help="CSV instead of a table")
    return root


async def run(argv: list[str], out: TextIO, **build: Any) -> int:
    args = parser().parse_args(argv)
    load_dotenv()
    try:
        settings = load_core_settings()
        if args.command == "serve":
            _serve_options(args)
    except ConfigError as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        return 2
    # A server reports that it is listening; one-shot admin commands stay quiet.
    configure_logging(default_level="INFO" if args.command == "serve" else "WARNING")
    try:
        async with open_commander(settings, **build) as commander:
            return await COMMANDS[args.command](commander, args, out)
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 2
    except CommanderError as exc:
        sys.stderr.write(f"Error: {exc.user_message}\n")
        return 1


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:], sys.stdout)))
