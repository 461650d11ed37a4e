"""The Dockerfile and compose.yaml, checked as far as this machine can (no Docker engine
here: the image is never built). The container's health check command runs for real."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import BotHarness
from tests.test_bot_process import free_port

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_dockerfile_builds_a_slim_non_root_image_that_runs_the_bot() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    args = {instruction: value for instruction, value in steps}  # the last of each kind
    runs = [value for instruction, value in steps if instruction == "RUN"]
    assert any("pip install -r requirements.txt" in run for run in runs)
    user = args["USER"]
    assert user not in ("root", "0")
    assert any("useradd" in run and user in run for run in runs)
    assert json.loads(args["CMD"]) == ["python", "-m", "bot"]
    health = args["HEALTHCHECK"]
    assert json.loads(health.split("CMD", 1)[1]) == ["python", "-m", "bot.healthcheck", "/healthz"]
    for instruction, value in steps:
        if instruction == "COPY":
            source = value.split()[-2]
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
    # The last USER comes before CMD: the bot never runs as root.
    order = [i for i, _ in steps]
    assert order.index("USER") < order.index("CMD")


def test_compose_runs_postgres_15_and_two_socket_mode_replicas() -> None:
    services = compose()["services"]
    postgres, bot = services["postgres"], services["bot"]
    assert str(postgres["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert bot["build"] == "."
    assert bot["deploy"]["replicas"] == 2
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["env_file"] == ".env"
    environment = bot["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["SLACK_APP_TOKEN"].startswith("${SLACK_APP_TOKEN:?")  # Socket Mode
    assert "ports" not in bot  # two replicas cannot publish one host port
    assert environment["PORT"] in {str(p) for p in bot["expose"]}


async def test_the_container_health_check_command_asks_the_bot(bot: BotHarness) -> None:
    port = bot.url.rsplit(":", 1)[1]
    assert await health_check(port, "/healthz") == (0, "")
    assert await health_check(port, "/readyz") == (0, "")
    code, err = await health_check(port, "/nowhere")
    assert code == 1 and err.strip() == f"unhealthy: http://127.0.0.1:{port}/nowhere answered 404"
    closed = str(free_port())
    code, err = await health_check(closed, "/healthz")
    assert code == 1 and err.startswith(f"unhealthy: http://127.0.0.1:{closed}/healthz")


async def health_check(port: str, path: str) -> tuple[int, str]:
    env = {**os.environ, "PORT": port, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.healthcheck",
        path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), stderr.decode()
