"""The test suite's own database switch: without a PostgreSQL server the PostgreSQL
variants are skipped with the reason, unless REQUIRE_POSTGRES=1 makes that an error;
databases a killed run left behind are dropped by a later one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import STALE_AFTER_S, require_postgres
from tests.dbs import (
    create_postgres_database,
    drop_postgres_database,
    drop_stale_postgres_databases,
    new_database_name,
)

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1
A_TEST = "def test_with_a_database(database_url: str) -> None:\n    assert database_url\n"


def run_pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A one-test session with the suite's fixtures (tests/conftest.py as a plugin)."""
    (tmp_path / "test_one.py").write_text(A_TEST)
    full_env = {k: v for k, v in os.environ.items() if k != "REQUIRE_POSTGRES"}
    full_env.update(env, TEST_POSTGRES_URL=NOWHERE, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:randomly", "-rs"],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_server_the_postgresql_variant_is_skipped_saying_why(tmp_path: Path) -> None:
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "PostgreSQL at postgresql://postgres@127.0.0.1:1/postgres is not reachable" in (
        done.stdout
    )
    assert "PostgreSQL variants not run" in done.stdout


def test_require_postgres_makes_a_missing_server_an_error(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, REQUIRE_POSTGRES="1")
    assert done.returncode != 0
    assert "1 passed, 1 error" in done.stdout
    assert "REQUIRE_POSTGRES=1" in done.stdout


def test_databases_left_behind_long_ago_are_dropped_and_recent_ones_kept() -> None:
    require_postgres()
    long_ago = int(time.time() - 2 * STALE_AFTER_S)
    left = [f"t_{long_ago}_{uuid.uuid4().hex[:16]}", f"t_x_{long_ago}_{uuid.uuid4().hex[:16]}"]
    recent = new_database_name()
    for name in (*left, recent):
        create_postgres_database(name)
    try:
        dropped = drop_stale_postgres_databases(time.time() - STALE_AFTER_S)
        assert set(left) <= set(dropped)
        assert recent not in dropped
    finally:
        for name in (*left, recent):
            drop_postgres_database(name)
