"""Start-up against a database that cannot be used, as an operator meets it: `python -m bot`
and `python -m commander` print one plain sentence, never the password, and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET, fresh_database
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.postgres_door import PostgresDoor
from tests.fakes.slack_server import FakeSlack
from tests.test_bot_process import free_port, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cr@t/pa ss"
QUOTED = quote(PASSWORD, safe="")


def cli_env(database_url: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PYTHONPATH=str(ROOT),
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1/",  # never called by `list`
        DATABASE_URL=database_url,
    )
    return env


def bot_env(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, database_url: str, port: int
) -> dict[str, str]:
    env = cli_env(database_url)
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_BASE_URL=fake_openai.base_url,
        PORT=str(port),
    )
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def spawn(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_one_sentence(done: subprocess.CompletedProcess[str], expected: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    assert PASSWORD not in output and QUOTED not in output
    assert expected in output


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def test_cli_on_a_closed_port(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://app:{QUOTED}@127.0.0.1:{port}/db"
    done = run(["-m", "commander", "list"], tmp_path, cli_env(url))
    assert_one_sentence(
        done,
        f"Error: Cannot reach the database at 127.0.0.1:{port} (connection refused). "
        "Check DATABASE_URL.",
    )


def test_cli_with_a_rejected_password(tmp_path: Path) -> None:
    # The test server trusts every login from 127.0.0.1, so the refusal comes from a fake
    # that speaks PostgreSQL's login protocol with password authentication.
    with PostgresDoor() as door:
        url = f"postgres://app:{QUOTED}@127.0.0.1:{door.port}/db"
        done = run(["-m", "commander", "list"], tmp_path, cli_env(url))
    assert_one_sentence(done, "rejected the password of user 'app'")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda url: url.replace("postgresql://postgres", f"postgresql://nobody_x:{QUOTED}"),
            'refused the login (role "nobody_x" does not exist)',
        ),
        (
            lambda url: url.rsplit("/", 1)[0] + "/no_such_db_x",
            "The database 'no_such_db_x' does not exist on the server at 127.0.0.1:5432.",
        ),
        (
            lambda url: url + "?sslmode=require",
            "does not accept SSL connections",
        ),
    ],
    ids=["unknown-role", "missing-database", "ssl-required"],
)
def test_cli_against_the_test_server(pg_url: str, tmp_path: Path, change, expected: str) -> None:
    done = run(["-m", "commander", "list"], tmp_path, cli_env(change(pg_url)))
    assert_one_sentence(done, expected)


def test_cli_with_an_unknown_url_parameter(tmp_path: Path) -> None:
    url = f"postgresql://app:{QUOTED}@127.0.0.1/db?sslmod=require"
    done = run(["-m", "commander", "list"], tmp_path, cli_env(url))
    assert_one_sentence(done, "DATABASE_URL has the parameter 'sslmod'")


def test_bot_on_a_closed_port(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    url = f"postgresql://app:{QUOTED}@127.0.0.1:{port}/db"
    env = bot_env(fake_openai, fake_slack, url, free_port())
    done = run(["-m", "bot"], tmp_path, env)
    assert_one_sentence(
        done, f"Startup failed: Cannot reach the database at 127.0.0.1:{port} (connection refused)."
    )


def test_three_processes_starting_together_on_an_empty_database(
    pg_url: str, tmp_path: Path
) -> None:
    env = cli_env(pg_url)
    processes = [spawn(["-m", "commander", "list"], tmp_path, env) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert all(out.strip() == "0 assistant(s)" for out in outputs), outputs


async def test_second_bot_on_one_sqlite_file_is_refused(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    sqlite = f"sqlite:///{tmp_path}/bot.db"
    first = spawn(["-m", "bot"], tmp_path, bot_env(fake_openai, fake_slack, sqlite, port))
    try:
        await wait_healthy(first, f"http://127.0.0.1:{port}")
        second_env = bot_env(fake_openai, fake_slack, sqlite, free_port())
        second = run(["-m", "bot"], tmp_path, second_env)
        assert_one_sentence(
            second,
            f"Startup failed: Another bot process is already using the SQLite database "
            f"{tmp_path}/bot.db;",
        )
        # The admin CLI may still open the file while the bot runs.
        listed = run(["-m", "commander", "list"], tmp_path, second_env)
        assert listed.returncode == 0, listed.stderr
        assert first.poll() is None  # the first one is untouched
    finally:
        first.terminate()
        first.wait(timeout=30)
    # The lock ends with the process: the same file serves a new bot at once.
    again = spawn(["-m", "bot"], tmp_path, bot_env(fake_openai, fake_slack, sqlite, port))
    try:
        await wait_healthy(again, f"http://127.0.0.1:{port}")
    finally:
        again.terminate()
        again.wait(timeout=30)
