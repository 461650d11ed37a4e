"""The model client's transport (aiohttp, through the SDK): which failures prove that a
request never left this process. Only those may be sent again; a server that hung up
after reading the request may have passed the user's message to the model."""

import asyncio

import openai
from openai import AsyncOpenAI

from commander.backend import http_client
from commander.turn import _never_sent
from tests.test_bot_process import free_port


async def _create(base_url: str) -> openai.APIConnectionError:
    client = AsyncOpenAI(
        base_url=base_url, api_key="sk-test", max_retries=0, http_client=http_client()
    )
    try:
        await client.responses.create(model="gpt-4.1", input="hello", stream=True)
    except openai.APIConnectionError as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError("the request did not fail")


async def test_a_refused_connection_counts_as_never_sent() -> None:
    assert _never_sent(await _create(f"http://127.0.0.1:{free_port()}/v1"))


async def test_a_server_that_hangs_up_after_the_request_may_have_received_it() -> None:
    received = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request reached the server...
        received.set()
        writer.close()  # ...which hangs up without an answer

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        exc = await _create(f"http://127.0.0.1:{port}/v1")
    assert received.is_set()
    assert not _never_sent(exc)
