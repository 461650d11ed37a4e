"""Faithfulness of the fake OpenAI server.

Every endpoint is driven through the official AsyncOpenAI client and through raw HTTP;
every JSON answer and SSE event is validated strictly against the SDK's typed models, with
no unknown keys anywhere in the tree.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import openai
import pydantic
import pytest
from openai import AsyncOpenAI
from openai.types import FileDeleted, FileObject, Model, VectorStore, VectorStoreDeleted
from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItemList,
)
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.shared import ErrorObject
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileDeleted

from tests.fakes.openai_server import (
    TINY_PNG,
    CodeInterpreterChart,
    ErrorEvent,
    Fail,
    FakeOpenAI,
    FileSearch,
    FunctionCall,
    Incomplete,
    Text,
)

KEY = "sk-test"
ROOT = Path(__file__).resolve().parents[1]
M = TypeVar("M", bound=pydantic.BaseModel)
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
CODE_INTERPRETER = {"type": "code_interpreter", "container": {"type": "auto"}}


# --- strict validation ------------------------------------------------------------------------


def assert_no_extra(value: Any, where: str = "$") -> None:
    if isinstance(value, pydantic.BaseModel):
        assert not value.model_extra, f"unknown keys at {where}: {sorted(value.model_extra)}"
        for name in type(value).model_fields:
            assert_no_extra(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            assert_no_extra(item, f"{where}[{index}]")


def strict(model: type[M], data: Any) -> M:
    parsed = model.model_validate(data, strict=True)
    assert_no_extra(parsed)
    return parsed


def strict_event(data: dict[str, Any]) -> Any:
    event = EVENTS.validate_python(data, strict=True)
    assert event.type == data["type"]
    assert_no_extra(event)
    return event


def strict_list(model: type[M], body: dict[str, Any]) -> list[M]:
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list"
    assert isinstance(body["has_more"], bool)
    ids = [item["id"] for item in body["data"]]
    assert body["first_id"] == (ids[0] if ids else None)
    assert body["last_id"] == (ids[-1] if ids else None)
    return [strict(model, item) for item in body["data"]]


def strict_error(body: dict[str, Any]) -> ErrorObject:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return strict(ErrorObject, body["error"])


def collapse(types: list[str]) -> list[str]:
    """Event types with runs of the same type folded into one."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def function_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} function.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        "strict": True,
    }


def function_output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


class Raw:
    """Plain HTTP against the fake, outside the SDK."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self, method: str, path: str, *, status: int = 200, **kwargs: Any
    ) -> dict[str, Any]:
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            assert response.status == status, await response.text()
            assert response.content_type == "application/json"
            return await response.json()

    async def stream(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """POST /responses with stream=true; every event validated strictly."""
        async with self.session.post(
            self.base_url + "/responses", json={**body, "stream": True}
        ) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/event-stream"
            text = await response.text()
        events = []
        for number, block in enumerate(text.strip().split("\n\n")):
            name_line, data_line = block.split("\n")
            data = json.loads(data_line.removeprefix("data: "))
            assert name_line == f"event: {data['type']}"
            assert data["sequence_number"] == number
            strict_event(data)
            events.append(data)
        return events


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(fake: FakeOpenAI) -> None:
    fake.reset()


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture
async def raw(fake: FakeOpenAI) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        yield Raw(session, fake.base_url)


# --- auth, routing, models ----------------------------------------------------------------------


async def test_wrong_or_missing_key_is_401_and_azure_api_key_header_works(fake: FakeOpenAI) -> None:
    wrong = AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong-key-123456", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await wrong.files.list()
    await wrong.close()
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in caught.value.message
    async with aiohttp.ClientSession() as session:
        anonymous = Raw(session, fake.base_url)
        error = strict_error(await anonymous.call("GET", "/files", status=401))
        assert error.message.startswith("You didn't provide an API key.")
        assert error.type == "invalid_request_error"
        await anonymous.call("GET", "/files", headers={"api-key": KEY})


async def test_unknown_routes_answer_invalid_url(raw: Raw) -> None:
    for method, path in [("GET", "/assistants"), ("POST", "/threads"), ("GET", "/conversations")]:
        error = strict_error(await raw.call(method, path, status=404))
        assert error.message == f"Invalid URL ({method} /v1{path})"


async def test_models_retrieve(client: AsyncOpenAI, raw: Raw) -> None:
    model = await client.models.retrieve("gpt-4.1")
    assert model.id == "gpt-4.1"
    strict(Model, await raw.call("GET", "/models/gpt-4.1"))


async def test_invalid_json_body_is_400(raw: Raw) -> None:
    error = strict_error(
        await raw.call(
            "POST",
            "/responses",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
            status=400,
        )
    )
    assert error.message.startswith("We could not parse the JSON body")


# --- files ----------------------------------------------------------------------------------


async def test_files_crud_and_cursor_pagination(
    client: AsyncOpenAI, raw: Raw, fake: FakeOpenAI
) -> None:
    uploaded = [
        await client.files.create(
            file=(f"doc{i}.txt", f"content {i}".encode()), purpose="assistants"
        )
        for i in range(3)
    ]
    assert all(f.id.startswith("file-") and f.status == "processed" for f in uploaded)
    one = strict(FileObject, await raw.call("GET", f"/files/{uploaded[0].id}"))
    assert (one.bytes, one.filename, one.purpose) == (9, "doc0.txt", "assistants")

    newest_first = [f.id for f in reversed(uploaded)]
    first_page = await raw.call("GET", "/files", params={"limit": "2"})
    assert [f.id for f in strict_list(FileObject, first_page)] == newest_first[:2]
    assert first_page["has_more"] is True
    error = strict_error(await raw.call("GET", "/vector_stores", params={"limit": "0"}, status=400))
    assert (error.code, error.param) == ("integer_below_min_value", "limit")

    fake.requests.clear()
    assert [f.id async for f in client.files.list(limit=2, purpose="assistants")] == newest_first
    assert [r.query.get("after") for r in fake.requests] == [None, newest_first[1]]

    assert (await client.files.delete(uploaded[0].id)).deleted is True
    deleted = strict(FileDeleted, await raw.call("DELETE", f"/files/{uploaded[1].id}"))
    assert deleted.id == uploaded[1].id
    with pytest.raises(openai.NotFoundError) as caught:
        await client.files.retrieve(uploaded[0].id)
    assert caught.value.message.endswith(f"No such File object: {uploaded[0].id}")
    assert caught.value.param == "id"


async def test_large_upload_streams_to_disk(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    content = bytes(range(256)) * (40 * 1024)
    uploaded = await client.files.create(file=("big.bin", content), purpose="assistants")
    stored = fake.state.files[uploaded.id]
    digest = hashlib.sha256(content).hexdigest()
    assert uploaded.bytes == stored.bytes == len(content)
    assert stored.path is not None and stored.sha256 == digest
    assert stored.content == content
    assert fake.requests[-1].form == {
        "purpose": "assistants",
        "file": {"filename": "big.bin", "bytes": len(content), "sha256": digest},
    }


async def test_raw_upload_and_its_validation(raw: Raw) -> None:
    form = aiohttp.FormData()
    form.add_field("purpose", "user_data")
    form.add_field("file", b"a,b\n1,2\n", filename="table.csv", content_type="text/csv")
    uploaded = strict(FileObject, await raw.call("POST", "/files", data=form))
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("table.csv", 8, "user_data")
    error = strict_error(await raw.call("GET", "/files/file-nope", status=404))
    assert (error.message, error.param) == ("No such File object: file-nope", "id")
    form = aiohttp.FormData()
    form.add_field("file", b"x", filename="a.txt")
    error = strict_error(await raw.call("POST", "/files", data=form, status=400))
    assert (error.code, error.param) == ("missing_required_parameter", "purpose")
    form = aiohttp.FormData()
    form.add_field("purpose", "karaoke")
    form.add_field("file", b"x", filename="a.txt")
    error = strict_error(await raw.call("POST", "/files", data=form, status=400))
    assert (error.code, error.param) == ("invalid_value", "purpose")


# --- vector stores ----------------------------------------------------------------------------


async def test_vector_store_crud(client: AsyncOpenAI, raw: Raw) -> None:
    store = await client.vector_stores.create(name="kb", metadata={"team": "T1"})
    assert store.id.startswith("vs_")
    fetched = strict(VectorStore, await raw.call("GET", f"/vector_stores/{store.id}"))
    assert (fetched.name, fetched.metadata, fetched.status) == ("kb", {"team": "T1"}, "completed")
    other = strict(VectorStore, await raw.call("POST", "/vector_stores", json={"name": "b"}))
    listed = strict_list(VectorStore, await raw.call("GET", "/vector_stores"))
    assert [s.id for s in listed] == [other.id, store.id]
    assert [s.id async for s in client.vector_stores.list(limit=1)] == [other.id, store.id]
    assert (await client.vector_stores.delete(store.id)).deleted is True
    strict(VectorStoreDeleted, await raw.call("DELETE", f"/vector_stores/{other.id}"))
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.retrieve(store.id)


async def test_create_and_poll_polls_once_and_completes(
    client: AsyncOpenAI, raw: Raw, fake: FakeOpenAI
) -> None:
    uploaded = await client.files.create(file=("notes.md", b"# notes"), purpose="assistants")
    store = await client.vector_stores.create(name="kb")
    fake.requests.clear()
    result = await client.vector_stores.files.create_and_poll(
        file_id=uploaded.id, vector_store_id=store.id, poll_interval_ms=10
    )
    assert (result.status, result.last_error, result.usage_bytes) == ("completed", None, 7)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/v1/vector_stores/{store.id}/files"),
        ("GET", f"/v1/vector_stores/{store.id}/files/{uploaded.id}"),
    ]
    second = await client.files.create(file=("b.md", b"b"), purpose="assistants")
    path = f"/vector_stores/{store.id}/files"
    created = strict(VectorStoreFile, await raw.call("POST", path, json={"file_id": second.id}))
    assert (created.status, created.usage_bytes) == ("in_progress", 0)
    settled = strict(VectorStoreFile, await raw.call("GET", f"{path}/{second.id}"))
    assert settled.status == "completed"


async def test_create_and_poll_reports_a_failed_file(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    uploaded = await client.files.create(file=("x.exe", b"MZ"), purpose="assistants")
    store = await client.vector_stores.create(name="kb")
    fake.faults.add(vector_store_file_fails=True, code="unsupported_file", message="Bad type.")
    result = await client.vector_stores.files.create_and_poll(
        file_id=uploaded.id, vector_store_id=store.id
    )
    assert result.status == "failed"
    assert result.last_error is not None
    assert (result.last_error.code, result.last_error.message) == ("unsupported_file", "Bad type.")
    refreshed = await client.vector_stores.retrieve(store.id)
    assert (refreshed.file_counts.failed, refreshed.file_counts.total) == (1, 1)
    assert not fake.faults.pending


async def test_vector_store_files_list_and_delete(client: AsyncOpenAI, raw: Raw) -> None:
    files = [
        await client.files.create(file=(f"{i}.txt", b"text"), purpose="assistants")
        for i in range(3)
    ]
    store = await client.vector_stores.create(name="kb", file_ids=[f.id for f in files])
    path = f"/vector_stores/{store.id}/files"
    listed = strict_list(VectorStoreFile, await raw.call("GET", path))
    assert [f.id for f in listed] == [f.id for f in reversed(files)]
    assert {f.status for f in listed} == {"completed"}
    paged = [f.id async for f in client.vector_stores.files.list(store.id, limit=2, order="asc")]
    assert paged == [f.id for f in files]
    deleted = strict(VectorStoreFileDeleted, await raw.call("DELETE", f"{path}/{files[0].id}"))
    assert deleted.deleted is True
    sdk_deleted = await client.vector_stores.files.delete(files[1].id, vector_store_id=store.id)
    assert sdk_deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.files.retrieve(files[0].id, vector_store_id=store.id)


# --- conversations ------------------------------------------------------------------------------


async def test_conversation_lifecycle_and_items(client: AsyncOpenAI, raw: Raw) -> None:
    conversation = await client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "first"}],
        metadata={"team_id": "T1"},
    )
    assert conversation.id.startswith("conv_")
    fetched = strict(Conversation, await raw.call("GET", f"/conversations/{conversation.id}"))
    assert fetched.metadata == {"team_id": "T1"}
    items_path = f"/conversations/{conversation.id}/items"
    added = await raw.call(
        "POST",
        items_path,
        json={
            "items": [
                {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
                {"role": "assistant", "content": "reply"},
            ]
        },
    )
    assert len(strict(ConversationItemList, added).data) == 2

    ascending = strict(
        ConversationItemList, await raw.call("GET", items_path, params={"order": "asc"})
    )
    texts = [item.content[0].text for item in ascending.data]
    assert texts == ["first", "second", "reply"]
    ids = [item.id for item in ascending.data]
    descending = strict(ConversationItemList, await raw.call("GET", items_path))
    assert [item.id for item in descending.data] == ids[::-1]

    paged = [
        i.id async for i in client.conversations.items.list(conversation.id, order="asc", limit=1)
    ]
    assert paged == ids
    after = await client.conversations.items.list(conversation.id, order="asc", after=ids[0])
    assert [i.id for i in after.data] == ids[1:]

    created = await client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "third"}]
    )
    assert created.data[0].id not in ids
    other = strict(Conversation, await raw.call("POST", "/conversations", json={}))
    assert (await client.conversations.delete(other.id)).deleted is True

    gone = strict(
        ConversationDeletedResource, await raw.call("DELETE", f"/conversations/{conversation.id}")
    )
    assert gone.deleted is True
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conversation.id)


async def test_conversation_items_are_validated(client: AsyncOpenAI) -> None:
    conversation = await client.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.conversations.items.create(
            conversation.id, items=[{"role": "robot", "content": "beep"}]
        )
    assert (caught.value.code, caught.value.param) == ("invalid_value", "items[0].role")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.conversations.items.create(
            conversation.id, items=[{"role": "user", "content": "x"}] * 21
        )
    assert caught.value.code == "array_above_max_length"


async def test_conversations_disabled_answer_404_like_azure() -> None:
    with FakeOpenAI(api_key=KEY, conversations_enabled=False) as azure:
        sdk = AsyncOpenAI(base_url=azure.base_url, api_key=KEY, max_retries=0)
        with pytest.raises(openai.NotFoundError):
            await sdk.conversations.create()
        with pytest.raises(openai.NotFoundError):
            await sdk.conversations.items.list("conv_123")
        first = await sdk.responses.create(model="gpt-4.1", input="one")
        second = await sdk.responses.create(
            model="gpt-4.1", input="two", previous_response_id=first.id
        )
        assert second.output_text == "You said: two"
        await sdk.close()


# --- responses: plain text --------------------------------------------------------------------


async def test_non_streaming_response_default_reply(client: AsyncOpenAI, raw: Raw) -> None:
    body = await raw.call(
        "POST",
        "/responses",
        json={
            "model": "gpt-4.1",
            "input": "hello there",
            "instructions": "Be brief.",
            "metadata": {"k": "v"},
        },
    )
    response = strict(Response, body)
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "You said: hello there"
    assert (response.instructions, response.metadata, response.truncation) == (
        "Be brief.",
        {"k": "v"},
        "disabled",
    )
    assert response.output[0].id.startswith("msg_")
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert await raw.call("GET", f"/responses/{response.id}") == body
    assert (await client.responses.retrieve(response.id)).output_text == response.output_text
    again = await client.responses.create(
        model="gpt-4.1", input=[{"role": "user", "content": "again"}]
    )
    assert again.output_text == "You said: again"


async def test_streaming_text_has_the_real_event_sequence(raw: Raw, fake: FakeOpenAI) -> None:
    fake.script(Text("Hello, world!", chunk=5))
    events = await raw.stream({"model": "gpt-4.1", "input": "hi"})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["delta"] for e in events if "delta" in e] == ["Hello", ", wor", "ld!"]
    created, completed = events[0]["response"], events[-1]["response"]
    assert (created["status"], created["output"], created["usage"]) == ("in_progress", [], None)
    assert completed["id"] == created["id"] and completed["status"] == "completed"
    item_id = events[2]["item"]["id"]
    assert {e["item_id"] for e in events[3:9]} == {item_id}
    assert completed["output"][0]["content"][0]["text"] == "Hello, world!"


async def test_sdk_stream_helper_accumulates_the_stream(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    fake.script(Text("Streaming works."))
    async with client.responses.stream(model="gpt-4.1", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Streaming works."


INVALID_REQUESTS = [
    ({"model": None}, 400, "missing_required_parameter", "model"),
    (
        {"conversation": "conv_1", "previous_response_id": "resp_1"},
        400,
        "mutually_exclusive_parameters",
        "conversation",
    ),
    (
        {"previous_response_id": "resp_nope"},
        400,
        "previous_response_not_found",
        "previous_response_id",
    ),
    ({"conversation": "conv_nope"}, 404, None, None),
    ({"input": None}, 400, "missing_required_parameter", "input"),
    ({"input": [{"role": "robot", "content": "x"}]}, 400, "invalid_value", "input[0].role"),
    (
        {"tools": [{"type": "function", "parameters": {}}]},
        400,
        "missing_required_parameter",
        "tools[0].name",
    ),
    (
        {"tools": [{"type": "function", "name": "f"}]},
        400,
        "missing_required_parameter",
        "tools[0].parameters",
    ),
    (
        {"tools": [{"type": "file_search"}]},
        400,
        "missing_required_parameter",
        "tools[0].vector_store_ids",
    ),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_nope"]}]}, 404, None, None),
    (
        {"tools": [{"type": "code_interpreter"}]},
        400,
        "missing_required_parameter",
        "tools[0].container",
    ),
    ({"tools": [{"type": "teleport"}]}, 400, "invalid_value", "tools[0].type"),
    ({"truncation": "sometimes"}, 400, "invalid_value", "truncation"),
]


@pytest.mark.parametrize(("override", "status", "code", "param"), INVALID_REQUESTS)
async def test_invalid_response_requests_are_rejected_without_using_the_script(
    raw: Raw,
    fake: FakeOpenAI,
    override: dict[str, Any],
    status: int,
    code: str | None,
    param: str | None,
) -> None:
    fake.script(Text("kept"))
    body = {
        k: v for k, v in {"model": "gpt-4.1", "input": "x", **override}.items() if v is not None
    }
    error = strict_error(await raw.call("POST", "/responses", json=body, status=status))
    assert (error.code, error.param) == (code, param)
    after = strict(
        Response, await raw.call("POST", "/responses", json={"model": "m", "input": "y"})
    )
    assert after.output_text == "kept"


# --- responses: tools ------------------------------------------------------------------------


async def test_function_calls_round_trip_on_a_conversation(
    client: AsyncOpenAI, raw: Raw, fake: FakeOpenAI
) -> None:
    conversation = await client.conversations.create()
    tools = [function_tool("get_weather"), function_tool("get_time")]
    fake.script(
        [
            FunctionCall("get_weather", {"city": "Paris"}),
            FunctionCall("get_time", {"tz": "CET"}, call_id="call_fixed"),
        ]
    )
    events = await raw.stream(
        {"model": "m", "input": "weather?", "conversation": conversation.id, "tools": tools}
    )
    assert collapse([e["type"] for e in events])[2:7] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
    ]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(done[0]["arguments"]) == {"city": "Paris"}
    calls = events[-1]["response"]["output"]
    assert [c["type"] for c in calls] == ["function_call", "function_call"]
    assert calls[0]["id"].startswith("fc_") and calls[0]["call_id"].startswith("call_")
    assert calls[1]["call_id"] == "call_fixed"

    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="m",
            conversation=conversation.id,
            tools=tools,
            input=[function_output(calls[0]["call_id"], "18C")],
        )
    assert caught.value.message.endswith("No tool output found for function call call_fixed.")
    assert caught.value.param == "input"

    final = await client.responses.create(
        model="m",
        conversation=conversation.id,
        tools=tools,
        input=[function_output(calls[0]["call_id"], "18C"), function_output("call_fixed", "14:00")],
    )
    assert final.output_text == "Tool said: 18C; 14:00"
    assert final.conversation is not None and final.conversation.id == conversation.id
    items = strict(
        ConversationItemList,
        await raw.call("GET", f"/conversations/{conversation.id}/items", params={"order": "asc"}),
    )
    assert [i.type for i in items.data] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]


async def test_previous_response_chain_carries_history(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    tools = [function_tool("lookup")]
    fake.script(FunctionCall("lookup", {"q": "x"}))
    first = await client.responses.create(model="m", input="look it up", tools=tools)
    call = first.output[0]
    assert call.type == "function_call"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="m",
            previous_response_id=first.id,
            tools=tools,
            input=[function_output("call_other", "x")],
        )
    assert (
        "No tool call found for function call output with call_id call_other."
        in caught.value.message
    )
    second = await client.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=tools,
        input=[function_output(call.call_id, "42")],
    )
    assert second.output_text == "Tool said: 42"
    assert second.previous_response_id == first.id
    third = await client.responses.create(model="m", previous_response_id=second.id, input="more?")
    seen = [item.get("type") for item in fake.state.responses[third.id].context]
    assert seen == ["message", "function_call", "function_call_output", "message", "message"]
    assert third.output_text == "You said: more?"


async def test_unstored_responses_cannot_be_chained_or_fetched(client: AsyncOpenAI) -> None:
    response = await client.responses.create(model="m", input="secret", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="m", input="x", previous_response_id=response.id)
    assert caught.value.code == "previous_response_not_found"


async def test_a_step_the_request_does_not_allow_is_a_script_error(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    fake.script(FunctionCall("missing", {}), CodeInterpreterChart("chart"))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.responses.create(
                model="m", input="x", tools=[function_tool("other")], tool_choice="auto"
            )
        assert caught.value.type == "fake_script_error"


async def test_code_interpreter_chart_stream_and_container_file(
    client: AsyncOpenAI, raw: Raw, fake: FakeOpenAI
) -> None:
    fake.script(CodeInterpreterChart("Here is your chart.", filename="sales.png"))
    events = await raw.stream({"model": "m", "input": "plot sales", "tools": [CODE_INTERPRETER]})
    assert collapse([e["type"] for e in events]) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    call, message = events[-1]["response"]["output"]
    assert call["id"].startswith("ci_") and call["status"] == "completed"
    annotation = next(e for e in events if e["type"] == "response.output_text.annotation.added")
    citation = annotation["annotation"]
    assert citation["type"] == "container_file_citation"
    assert citation["container_id"] == call["container_id"]
    assert citation["container_id"].startswith("cntr_") and citation["file_id"].startswith("cfile_")
    text = message["content"][0]["text"]
    assert "[sales.png](sandbox:/mnt/data/sales.png)" in text
    assert text[citation["start_index"] : citation["end_index"]] == "sandbox:/mnt/data/sales.png"
    assert message["content"][0]["annotations"] == [citation]

    content = await client.containers.files.content.retrieve(
        citation["file_id"], container_id=citation["container_id"]
    )
    assert content.content == TINY_PNG and TINY_PNG.startswith(b"\x89PNG\r\n\x1a\n")
    assert content.response.headers["content-type"].startswith("image/png")
    content_path = f"/containers/{citation['container_id']}/files/{citation['file_id']}/content"
    async with raw.session.get(raw.base_url + content_path) as answer:
        assert (answer.status, answer.content_type) == (200, "image/png")
        assert await answer.read() == TINY_PNG
    with pytest.raises(openai.NotFoundError):
        await client.containers.files.content.retrieve(
            "cfile_nope", container_id=citation["container_id"]
        )


async def test_code_interpreter_without_streaming_reuses_a_named_container(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    fake.script(CodeInterpreterChart("first"))
    first = await client.responses.create(model="m", input="x", tools=[CODE_INTERPRETER])
    container_id = first.output[0].container_id
    fake.script(CodeInterpreterChart("second", filename="b.png", content=b"\x89PNG-b"))
    second = await client.responses.create(
        model="m",
        input="y",
        include=["code_interpreter_call.outputs"],
        tools=[{"type": "code_interpreter", "container": container_id}],
    )
    assert second.output[0].container_id == container_id
    assert second.output[0].outputs is not None
    assert len(fake.state.containers[container_id].files) == 2


async def test_file_search_cites_a_vector_store_file(
    client: AsyncOpenAI, raw: Raw, fake: FakeOpenAI
) -> None:
    handbook = await client.files.create(file=("handbook.md", b"25 days off"), purpose="assistants")
    await client.files.create(file=("other.md", b"other"), purpose="assistants")
    store = await client.vector_stores.create(name="kb", file_ids=[handbook.id])
    fake.script(FileSearch("Vacation is 25 days."))
    tools = [{"type": "file_search", "vector_store_ids": [store.id]}]
    events = await raw.stream(
        {
            "model": "m",
            "input": "how many days off?",
            "tools": tools,
            "include": ["file_search_call.results"],
        }
    )
    assert collapse([e["type"] for e in events])[2:8] == [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
    ]
    search, message = events[-1]["response"]["output"]
    assert search["id"].startswith("fs_") and search["queries"] == ["how many days off?"]
    assert search["results"][0]["filename"] == "handbook.md"
    citation = message["content"][0]["annotations"][0]
    assert citation == {
        "type": "file_citation",
        "file_id": handbook.id,
        "filename": "handbook.md",
        "index": len("Vacation is 25 days."),
    }
    fake.script(FileSearch("See the other file.", filename="other.md"))
    named = await client.responses.create(model="m", input="x", tools=tools)
    assert named.output[1].content[0].annotations[0].filename == "other.md"


# --- responses: endings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "last_type", "kept_in_conversation"),
    [
        (Fail("server_error", "boom"), "response.failed", 0),
        (Incomplete("max_output_tokens", "partial"), "response.incomplete", 2),
        (ErrorEvent("rate_limit_exceeded", "slow down"), "error", 0),
    ],
)
async def test_streams_end_with_failed_incomplete_or_error(
    client: AsyncOpenAI,
    raw: Raw,
    fake: FakeOpenAI,
    step: Any,
    last_type: str,
    kept_in_conversation: int,
) -> None:
    conversation = await client.conversations.create()
    fake.script(step)
    events = await raw.stream({"model": "m", "input": "x", "conversation": conversation.id})
    last = events[-1]
    assert last["type"] == last_type
    if last_type == "error":
        assert (last["code"], last["message"]) == ("rate_limit_exceeded", "slow down")
    elif last_type == "response.failed":
        assert last["response"]["error"] == {"code": "server_error", "message": "boom"}
    else:
        assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
        assert last["response"]["output"][0]["status"] == "incomplete"
    items = await client.conversations.items.list(conversation.id)
    assert len(items.data) == kept_in_conversation


async def test_non_streaming_failed_incomplete_and_error(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    fake.script(Fail("server_error", "boom"), Incomplete(), ErrorEvent("server_error", "kaput"))
    failed = await client.responses.create(model="m", input="x")
    assert failed.status == "failed" and failed.error is not None and failed.error.message == "boom"
    incomplete = await client.responses.create(model="m", input="x")
    assert incomplete.status == "incomplete" and incomplete.output == []
    with pytest.raises(openai.InternalServerError) as caught:
        await client.responses.create(model="m", input="x")
    assert caught.value.message.endswith("kaput")


async def test_callable_turn_sees_the_request(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    seen: list[dict[str, Any]] = []

    def behaviour(request_json: dict[str, Any]) -> list[Any]:
        seen.append(request_json)
        return [Text(f"model={request_json['model']}")]

    fake.script(behaviour)
    response = await client.responses.create(model="gpt-x", input="hi")
    assert response.output_text == "model=gpt-x"
    assert seen[0]["input"] == "hi"


async def test_truncation_disabled_rejects_overflow_and_auto_drops_old_items() -> None:
    with FakeOpenAI(api_key=KEY, context_window=40) as small:
        sdk = AsyncOpenAI(base_url=small.base_url, api_key=KEY, max_retries=0)
        first = await sdk.responses.create(model="m", input="a" * 80)
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.responses.create(model="m", input="next", previous_response_id=first.id)
        assert caught.value.code == "context_length_exceeded"
        second = await sdk.responses.create(
            model="m", input="next", previous_response_id=first.id, truncation="auto"
        )
        assert second.output_text == "You said: next"
        assert len(small.state.responses[second.id].context) < 3
        await sdk.close()


# --- faults ---------------------------------------------------------------------------------------


async def test_429_carries_retry_after(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.faults.add(path="/v1/responses", status=429, retry_after=1.5)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.responses.create(model="m", input="x")
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.code == "rate_limit_exceeded"
    strict(ErrorObject, caught.value.body)
    assert (await client.responses.create(model="m", input="x")).status == "completed"


async def test_sdk_retries_honour_retry_after(fake: FakeOpenAI) -> None:
    retrying = AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=2)
    fake.faults.add(path="/v1/files", method="GET", status=429, retry_after=0.8)
    started = time.monotonic()
    await retrying.files.list()
    elapsed = time.monotonic() - started
    await retrying.close()
    assert elapsed >= 0.8  # the SDK's own first backoff is at most 0.5 s
    assert [r.path for r in fake.requests] == ["/v1/files", "/v1/files"]


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_fire_the_given_number_of_times(
    client: AsyncOpenAI, fake: FakeOpenAI, status: int
) -> None:
    fake.faults.add(path="/v1/vector_stores", method="POST", status=status, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.vector_stores.create(name="kb")
        assert caught.value.status_code == status
        strict(ErrorObject, caught.value.body)
    assert (await client.vector_stores.create(name="kb")).name == "kb"


async def test_delay_makes_the_client_time_out_and_the_left_request_is_dropped(
    fake: FakeOpenAI,
) -> None:
    impatient = AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=0.1)
    fake.script(Text("later"))
    fake.faults.add(path="/v1/responses", delay=0.4)
    with pytest.raises(openai.APITimeoutError):
        await impatient.responses.create(model="m", input="x")
    await asyncio.to_thread(fake.wait_idle)
    assert fake.state.responses == {}
    assert (await impatient.responses.create(model="m", input="x")).output_text == "later"
    await impatient.close()


async def test_stream_cut_closes_the_connection_without_a_terminal_event(
    client: AsyncOpenAI, fake: FakeOpenAI
) -> None:
    conversation = await client.conversations.create()
    fake.script(Text("abcdefghijkl", chunk=2))
    fake.faults.add(cut_after_deltas=2)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = await client.responses.create(
            model="m", input="x", conversation=conversation.id, stream=True
        )
        async for event in stream:
            received.append(event.type)
    assert received.count("response.output_text.delta") == 2
    assert not {"response.completed", "response.failed"} & set(received)
    assert (await client.conversations.items.list(conversation.id)).data == []

    fake.faults.add(cut_after_deltas=0, finish_after_cut=True)
    with pytest.raises(openai.APIConnectionError):
        stream = await client.responses.create(
            model="m", input="again", conversation=conversation.id, stream=True
        )
        async for event in stream:
            assert event.type != "response.output_text.delta"
    await asyncio.to_thread(fake.wait_idle)
    assert len((await client.conversations.items.list(conversation.id)).data) == 2


async def test_a_client_that_leaves_mid_stream_still_gets_its_turn_landed() -> None:
    with FakeOpenAI(api_key=KEY, tokens_per_second=500) as paced:
        sdk = AsyncOpenAI(base_url=paced.base_url, api_key=KEY, max_retries=0)
        conversation = await sdk.conversations.create()
        paced.script(Text("x" * 40, chunk=1))
        stream = await sdk.responses.create(
            model="m", input="hi", conversation=conversation.id, stream=True
        )
        deltas = 0
        async for event in stream:
            deltas += event.type == "response.output_text.delta"
            if deltas == 3:
                break
        await stream.close()
        await asyncio.to_thread(paced.wait_idle)
        items = await sdk.conversations.items.list(conversation.id, order="asc")
        assert [item.type for item in items.data] == ["message", "message"]
        assert items.data[1].content[0].text == "x" * 40
        await sdk.close()


async def test_container_content_fault(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(CodeInterpreterChart("chart"))
    response = await client.responses.create(model="m", input="x", tools=[CODE_INTERPRETER])
    citation = response.output[1].content[0].annotations[0]
    fake.faults.add(path="/v1/containers/*/files/*/content", status=500)
    with pytest.raises(openai.InternalServerError):
        await client.containers.files.content.retrieve(
            citation.file_id, container_id=citation.container_id
        )
    content = await client.containers.files.content.retrieve(
        citation.file_id, container_id=citation.container_id
    )
    assert content.content == TINY_PNG


# --- timings, recording, reset, standalone ----------------------------------------------------


async def test_pacing_and_timings() -> None:
    with FakeOpenAI(api_key=KEY, ttft_ms=100, tokens_per_second=50) as paced:
        sdk = AsyncOpenAI(base_url=paced.base_url, api_key=KEY, max_retries=0)
        paced.script(Text("abcdefgh", chunk=2))
        started = time.time()
        stream = await sdk.responses.create(model="m", input="x", stream=True)
        response_id = ""
        async for event in stream:
            if event.type == "response.completed":
                response_id = event.response.id
        await sdk.close()
        timing = paced.timings[response_id]
        assert timing["first_delta"] - started >= 0.1
        assert timing["last_delta"] - timing["first_delta"] >= 3 / 50 - 0.005


async def test_requests_are_recorded(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    await client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    await client.responses.create(model="m", input="hi")
    await client.files.list(limit=5)
    upload, response, listing = fake.requests
    assert (upload.method, upload.path, upload.json) == ("POST", "/v1/files", None)
    assert upload.form is not None and upload.form["file"]["filename"] == "a.txt"
    assert response.json == {"model": "m", "input": "hi"}
    assert response.headers["Authorization"] == f"Bearer {KEY}"
    assert listing.query == {"limit": "5"}


async def test_reset_forgets_everything(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    await client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    fake.script(Text("never"))
    fake.faults.add(path="/v1/responses", status=500)
    fake.reset()
    assert not (fake.state.files or fake.requests or fake.faults.pending)
    assert (await client.responses.create(model="m", input="hi")).output_text == "You said: hi"


async def test_standalone_process_with_control_routes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openai_server",
        "--port",
        "0",
        "--api-key",
        "sk-bench",
        "--no-conversations",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1\n")
        base_url = line.split()[1]
        control = base_url.removesuffix("/v1") + "/_fake"
        sdk = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        async with aiohttp.ClientSession() as session:
            turns = [{"type": "text", "text": "scripted"}, [{"type": "fail", "message": "nope"}]]
            await session.post(f"{control}/script", json=turns)
            assert (await sdk.responses.create(model="m", input="x")).output_text == "scripted"
            assert (await sdk.responses.create(model="m", input="x")).status == "failed"
            with pytest.raises(openai.NotFoundError):
                await sdk.conversations.create()
            await session.post(f"{control}/faults", json={"path": "/v1/responses", "status": 503})
            with pytest.raises(openai.InternalServerError):
                await sdk.responses.create(model="m", input="x")
            stream = await sdk.responses.create(model="m", input="x", stream=True)
            ids = [e.response.id async for e in stream if e.type == "response.completed"]
            async with session.get(f"{control}/timings") as answer:
                assert set(await answer.json()) == set(ids)
            async with session.get(f"{control}/requests") as answer:
                assert len(await answer.json()) == 5
            await session.post(f"{control}/reset")
            async with session.get(f"{control}/requests") as answer:
                assert await answer.json() == []
        await sdk.close()
    finally:
        process.terminate()
        assert await process.wait() == 0
