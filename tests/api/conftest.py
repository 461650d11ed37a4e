from collections.abc import AsyncIterator

import pytest

from tests.api.harness import Api, open_api
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def api(fake_openai: FakeOpenAI, database_url: str) -> AsyncIterator[Api]:
    async for harness in open_api(fake_openai, database_url, TURNS_PER_MINUTE="5"):
        yield harness
