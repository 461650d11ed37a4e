"""LOG_FORMAT=json: one JSON object a line, the job id on a job's lines, no message text
and no secrets; checked on the output of a real `python -m bot`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commander.logs import JobIdFilter, JsonFormatter, current_job_id, job_context
from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_events import message_im
from tests.fakes.slack_requests import SlackRequestSender
from tests.fakes.slack_server import FakeSlack
from tests.spawn import Spawned, spawn_bot
from tests.test_bot_process import wait_for, wait_healthy

# Loggers that only log while a message job runs.
JOB_LOGGERS = {"handlers.replies", "commander.turn"}


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in records)
    return records


@pytest.fixture
def json_bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str
) -> Iterator[Spawned]:
    with spawn_bot(fake_openai, fake_slack, tmp_path, database_url, LOG_FORMAT="json") as spawned:
        yield spawned


async def test_json_logs_of_a_real_process_carry_job_ids_and_no_text_or_secrets(
    json_bot: Spawned, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    process, url = json_bot
    secret_texts = ["my locker code is 7731-walrus", "tell nobody: plum-orbit-55"]
    await wait_healthy(process, url)
    async with SlackRequestSender(url, SIGNING_SECRET) as send:
        await send.command(
            "/assistant-create",
            "Instructions nobody may read: amber-kettle.",
            "U1",
            "C1",
            response_url=fake_slack.response_url("create"),
        )
        await wait_for(lambda: fake_slack.response_posts["create"], "the create result")
        # Streaming refused (a warning from the reply), then a model error (from the turn).
        fake_slack.faults.add("chat.startStream", error="not_allowed_token_type")
        first = message_im("U1", secret_texts[0])
        await send.event(first)
        await wait_for(
            lambda: "7731-walrus" in fake_slack.thread_text("D1", first["ts"]), "the answer"
        )
        fake_openai.faults.add(path="/v1/responses", status=400)
        second = message_im("U1", secret_texts[1])
        await send.event(second)
        await wait_for(
            lambda: ":warning:" in fake_slack.thread_text("D1", second["ts"]), "the failure"
        )
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0
    output = process.stdout.read() if process.stdout else ""

    records = json_lines(output)
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    job_records = [r for r in records if r["logger"] in JOB_LOGGERS]
    assert {r["logger"] for r in job_records} == JOB_LOGGERS
    untagged = [r for r in job_records if not isinstance(r.get("job_id"), int | str)]
    assert not untagged, "a job's log lines need its id: run jobs inside logs.job_context"
    for secret in (*secret_texts, "amber-kettle", BOT_TOKEN, SIGNING_SECRET, API_KEY):
        assert secret not in output
    assert "Traceback" not in output


def test_job_context_tags_records_also_in_tasks_it_starts() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    async def task() -> None:
        logger.info("in a task it started")

    async def job() -> None:
        logger.info("in the job")
        await asyncio.create_task(task())

    try:
        with job_context(42):
            asyncio.run(job())
        logger.info("after the job, %d", 7)
    finally:
        logger.removeHandler(handler)
    records = json_lines(stream.getvalue())
    assert [r.get("job_id") for r in records] == [42, 42, None]
    assert records[-1]["message"] == "after the job, 7"
    assert records[0]["level"] == "INFO" and records[0]["logger"] == "tests.json_logs"
    assert current_job_id() is None


@pytest.mark.parametrize("value", ["text", "", "xml"])
def test_other_log_formats_stay_plain_text(value: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, os\n"
            "from commander.logs import configure_logging\n"
            f"configure_logging({{'LOG_FORMAT': {value!r}}})\n"
            "logging.getLogger('x').warning('plain')\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0
    assert done.stderr.splitlines()[-1].endswith("WARNING x: plain")
    assert not done.stderr.lstrip().startswith("{")
