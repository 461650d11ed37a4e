"""Azure OpenAI: the v1 API base URL, deployments as models, Entra ID, and endpoints
without the Conversations API."""

from __future__ import annotations

from openai import AsyncOpenAI

from commander.backend import build_client
from commander.runtime import build_commander, close_commander
from commander.settings import load_core_settings
from tests.fakes.market import FakeMarket
from tests.fakes.openai_server import FakeOpenAI

KEY = "azure-test-key"


async def test_azure_endpoint_with_key_and_no_conversations(database_url: str) -> None:
    with FakeOpenAI(api_key=KEY, conversations_enabled=False) as fake:
        endpoint = fake.base_url.removesuffix("/v1")
        settings = load_core_settings(
            {
                "AZURE_OPENAI_ENDPOINT": endpoint,
                "AZURE_OPENAI_API_KEY": KEY,
                "AZURE_OPENAI_DEPLOYMENT": "my-deployment",
                "DATABASE_URL": database_url,
            }
        )
        commander = await build_commander(settings, market=FakeMarket())  # the real client
        try:
            assert str(commander.backend.client.base_url) == endpoint + "/openai/v1/"
            assistant = await commander.create("T1", "U1", instructions="x")
            assert assistant.thread_strategy == "previous_response"
            assert assistant.model == "my-deployment"
            events = [e async for e in commander.ask("T1", "U1", "hello")]
            assert events[-1].text == "You said: hello"
            post = next(r for r in fake.requests if r.path.endswith("/responses"))
            assert post.path == "/openai/v1/responses"
            assert post.json["model"] == "my-deployment"
        finally:
            await close_commander(commander)


def test_azure_without_a_key_signs_in_with_entra_id() -> None:
    settings = load_core_settings(
        {
            "AZURE_OPENAI_ENDPOINT": "https://example.openai.azure.com",
            "AZURE_OPENAI_DEPLOYMENT": "d",
        }
    )
    client = build_client(settings)
    assert isinstance(client, AsyncOpenAI)
    assert str(client.base_url) == "https://example.openai.azure.com/openai/v1/"
    # The SDK asks the token provider for a fresh bearer token before each request.
    assert callable(client._api_key_provider)  # type: ignore[attr-defined]


async def test_an_endpoint_without_a_hosted_tool_is_named_clearly(database_url: str) -> None:
    with FakeOpenAI(api_key=KEY) as fake:
        settings = load_core_settings(
            {
                "AZURE_OPENAI_ENDPOINT": fake.base_url.removesuffix("/v1"),
                "AZURE_OPENAI_API_KEY": KEY,
                "AZURE_OPENAI_DEPLOYMENT": "d",
                "DATABASE_URL": database_url,
            }
        )
        commander = await build_commander(settings, market=FakeMarket())
        try:
            await commander.create("T1", "U1", instructions="x")
            fake.faults.add(
                path="/openai/v1/responses",
                method="POST",
                status=400,
                message="The tool type 'file_search' is not supported for this resource.",
            )
            events = [e async for e in commander.ask("T1", "U1", "search my files")]
            assert events[-1].kind == "tool_unsupported"
            assert "does not support file search" in events[-1].user_message
        finally:
            await close_commander(commander)
