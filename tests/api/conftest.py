from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.harness import Api, open_api
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def api(fake_openai: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in open_api(fake_openai, tmp_path, TURNS_PER_MINUTE="5"):
        yield harness
