"""The pieces added for speed behave exactly like what they replace (no timing here)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai._models import construct_type
from openai.types.responses import ResponseStreamEvent

from commander.store.db import WriteLock
from commander.stream_events import (
    EVENT_MODELS,
    OutputTextDelta,
    PassingEvent,
    ResponseRef,
    ResponseStarted,
    parse_event,
    sse_payloads,
)

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "gpt-5.5",
    "status": "completed",
    "output": [
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_stock_price",
            "arguments": '{"symbol": "MSFT"}',
            "status": "completed",
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}
EVENTS: list[dict[str, Any]] = [
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hello",
        "sequence_number": 3,
        "logprobs": [],
    },
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "sequence_number": 1,
        "item": RESPONSE["output"][0],
    },
    {"type": "response.completed", "sequence_number": 9, "response": RESPONSE},
]


def test_events_parse_to_what_the_sdk_builds() -> None:
    ours = parse_event(EVENTS[1])
    sdks = construct_type(type_=ResponseStreamEvent, value=EVENTS[1])
    assert type(ours) is type(sdks)
    assert ours == sdks


def test_a_delta_keeps_the_fields_a_turn_reads() -> None:
    ours = parse_event(EVENTS[0])
    sdks = construct_type(type_=ResponseStreamEvent, value=EVENTS[0])
    assert isinstance(ours, OutputTextDelta)
    assert (ours.type, ours.delta) == (sdks.type, sdks.delta)  # type: ignore[union-attr]


def test_events_a_turn_only_glances_at_are_not_validated() -> None:
    started = {"type": "response.created", "sequence_number": 0, "response": RESPONSE}
    assert parse_event(started) == ResponseStarted("response.created", ResponseRef("resp_1"))
    part = {"type": "response.content_part.added", "item_id": "msg_1", "part": {}}
    assert parse_event(part) == PassingEvent("response.content_part.added")
    assert parse_event({"type": "response.some_future_event"}) == PassingEvent(
        "response.some_future_event"
    )


def test_unusual_events_are_left_to_the_sdk() -> None:
    assert parse_event({"type": "response.output_text.delta", "delta": 5}) is None
    assert parse_event({"type": "response.created", "response": "not a response"}) is None
    assert parse_event({"type": 7}) is None
    assert parse_event(EVENTS[2]) is None  # RESPONSE lacks fields the model requires
    assert parse_event(["not", "an", "event"]) is None
    assert "response.output_text.delta" in EVENT_MODELS


def test_sse_framing_follows_the_spec_across_chunks() -> None:
    body = (
        b': a comment\r\nevent: one\r\ndata: {"a":\r\ndata:  1}\r\n\r\n'
        b"data: two\n\ndata:three\r\rid: 7\nretry: 5\n\n"
        b"data: cut off"
    )
    for size in (1, 2, 3, 7, len(body)):
        payloads, pending = [], b""
        for start in range(0, len(body), size):
            found, pending = sse_payloads(pending, body[start : start + size])
            payloads += found
        assert payloads == ['{"a":\n 1}', "two", "three"], size
        assert pending == b"data: cut off"


async def test_urgent_writers_go_before_queued_routine_ones() -> None:
    lock = WriteLock()
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def writer(name: str, urgent: bool) -> None:
        async with lock.hold(urgent=urgent):
            order.append(name)
            if name == "first":
                holding.set()
                await release.wait()

    first = asyncio.create_task(writer("first", False))
    await holding.wait()
    others = [
        asyncio.create_task(writer("routine-1", False)),
        asyncio.create_task(writer("routine-2", False)),
        asyncio.create_task(writer("urgent", True)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *others)
    assert order == ["first", "urgent", "routine-1", "routine-2"]


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = WriteLock()
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(lock.hold(urgent=True).__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(1):
        async with lock.hold():
            pass
