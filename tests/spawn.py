"""`python -m bot` as a child process with extra environment, for tests of its output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_bot_process import bot_env, free_port

Spawned = tuple[subprocess.Popen[str], str]


@contextmanager
def spawn_bot(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, database_url: str, **env: str
) -> Iterator[Spawned]:
    """The process (stdout and stderr together, running in tmp_path) and its base URL."""
    full_env = bot_env(fake_openai, fake_slack, database_url, port := free_port())
    full_env.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
