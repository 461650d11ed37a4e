"""Property-based fuzzing of the API from its own /api/openapi.json (schemathesis):
valid and invalid requests, with a key; no 5xx and nothing that breaks the document.

Bounded (a fixed number of derandomised examples) so it finishes in seconds. The file
fetcher runs on a closed test network: every name is unknown and no address is reachable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from commander.api import AddressPolicy, UrlFetcher, standalone_app
from commander.api.settings import ApiSettings, parse_api_keys
from commander.runtime import build_commander, close_commander
from commander.settings import load_core_settings
from tests.api.harness import ACME_KEY, API_KEYS, FakeDns, serve
from tests.conftest import core_env, openai_client
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI

EXAMPLES = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class ApiInThread:
    """The API on its own event loop in a background thread, since schemathesis calls it
    synchronously."""

    def __init__(self, fake_openai: FakeOpenAI, database_url: str) -> None:
        self.fake_openai = fake_openai
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""
        self._stop: Any = None

    def __enter__(self) -> ApiInThread:
        self.thread.start()
        self.url = self._run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=60)

    async def _start(self) -> str:
        settings_ = load_core_settings(core_env(self.fake_openai, self.database_url))
        commander = await build_commander(
            settings_, client=openai_client(self.fake_openai), market=FakeMarket()
        )
        fetcher = UrlFetcher(
            timeout_s=2.0, policy=AddressPolicy(internet=False), resolver=FakeDns()
        )
        app = standalone_app(commander, ApiSettings(parse_api_keys(API_KEYS)), fetcher=fetcher)
        runner, url = await serve(app)

        async def stop() -> None:
            await runner.cleanup()
            await close_commander(commander)

        self._stop = stop
        return url


@pytest.fixture
def api_thread(fake_openai: FakeOpenAI, database_url: str) -> Iterator[ApiInThread]:
    with ApiInThread(fake_openai, database_url) as running:
        yield running


def test_fuzzing_finds_no_server_error_and_no_response_outside_the_contract(
    api_thread: ApiInThread,
) -> None:
    document = httpx.get(api_thread.url + "/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    # A user that exists, so that process/status/delete also answer 200 now and then.
    created = httpx.post(
        api_thread.url + "/api/create",
        json={"userName": "alice", "name": "n", "instructions": "i", "fileURLs": []},
        headers=auth,
    )
    assert created.status_code == 200
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Any) -> None:
        response = case.call(base_url=api_thread.url, headers=auth, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()
    assert 200 in seen and 400 in seen, seen
