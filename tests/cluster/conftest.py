"""Fixtures of the multi-instance tests: a new PostgreSQL database per test (as the shared
`fresh_database` makes them: skipped with the reason when the server TEST_POSTGRES_URL
names is unreachable, an error with REQUIRE_POSTGRES=1) and the cluster of bot processes
on it (left behind by no test: every process is killed at teardown)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.conftest import fresh_database
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
def cluster_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


MakeCluster = Callable[..., Cluster]


@pytest.fixture
async def make_cluster(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path, cluster_database: str
) -> AsyncIterator[MakeCluster]:
    """make_cluster(size=3, **env): a Cluster on this test's database (not started)."""
    made: list[Cluster] = []

    def make(size: int = 3, **env: str) -> Cluster:
        cluster = Cluster(fake_openai, fake_slack, tmp_path, cluster_database, size=size, **env)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        await cluster.close()
