"""Faithfulness of the fake OpenAI for image and file inputs and for web search: request
items as the SDK's typed params describe them, stream events and stored items checked
strictly against the SDK's models."""

from __future__ import annotations

import base64
from typing import Any

import pydantic
from openai import AsyncOpenAI
from openai.types.responses import (
    ResponseFunctionWebSearch,
    ResponseInputFile,
    ResponseInputImage,
    ResponseInputItemParam,
)
from openai.types.responses.response_output_text import AnnotationURLCitation

from tests.fakes.openai_media import simple_pdf
from tests.fakes.openai_server import TINY_PNG, FakeOpenAI
from tests.fakes.openai_steps import SeeInputs, WebSearch
from tests.test_fake_openai import KEY, Raw, client, fake, fresh, raw, strict  # noqa: F401

ITEM: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseInputItemParam)


def image_part(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def pdf_part(name: str, data: bytes) -> dict[str, Any]:
    url = f"data:application/pdf;base64,{base64.b64encode(data).decode()}"
    return {"type": "input_file", "filename": name, "file_data": url}


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    item = {"role": "user", "content": [{"type": "input_text", "text": "look"}, *parts]}
    ITEM.validate_python(item)  # the shape the SDK's typed params describe
    return item


async def test_image_and_pdf_inputs_are_seen_and_stored_typed(
    client: AsyncOpenAI,  # noqa: F811
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    conversation = await client.conversations.create()
    fake.script(SeeInputs())
    response = await client.responses.create(
        model="gpt-5.5",
        conversation=conversation.id,
        input=[user(image_part(TINY_PNG), pdf_part("a.pdf", simple_pdf("Revenue rose 7%")))],
    )
    assert response.output_text == "I see: a 2x2 png image; a.pdf saying: Revenue rose 7%"
    items = await client.conversations.items.list(conversation.id, order="asc")
    parts = items.data[0].model_dump()["content"]
    strict(ResponseInputImage, parts[1])
    strict(ResponseInputFile, parts[2])
    # A later turn still sees the earlier image: the conversation keeps it.
    fake.script(SeeInputs())
    again = await client.responses.create(
        model="gpt-5.5", conversation=conversation.id, input="compare with the one above"
    )
    assert "a 2x2 png image" in again.output_text


async def test_not_an_image_is_refused_like_the_api(raw: Raw) -> None:  # noqa: F811
    body = {"model": "gpt-5.5", "input": [user(image_part(b"MZ not an image"))]}
    error = await raw.call("POST", "/responses", status=400, json=body)
    assert error["error"]["code"] == "invalid_image_format"
    bad_pdf = {"model": "gpt-5.5", "input": [user(pdf_part("x.pdf", b"hello"))]}
    error = await raw.call("POST", "/responses", status=400, json=bad_pdf)
    assert error["error"]["code"] == "invalid_file"


async def test_web_search_stream_and_citations_are_typed(
    raw: Raw,  # noqa: F811
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    fake.script(WebSearch("It rained.", (("Weather", "https://weather.example/today"),)))
    events = await raw.stream(
        {"model": "gpt-5.5", "input": "weather?", "tools": [{"type": "web_search"}]}
    )
    types = [e["type"] for e in events]
    assert "response.web_search_call.searching" in types
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    search = strict(ResponseFunctionWebSearch, done[0])
    assert search.action.type == "search"
    notes = [e["annotation"] for e in events if e["type"].endswith("annotation.added")]
    citation = strict(AnnotationURLCitation, notes[0])
    assert citation.url == "https://weather.example/today"


async def test_web_search_needs_the_tool(raw: Raw, fake: FakeOpenAI) -> None:  # noqa: F811
    fake.script(WebSearch("x"))
    error = await raw.call("POST", "/responses", status=500, json={"model": "m", "input": "q"})
    assert error["error"]["type"] == "fake_script_error"
