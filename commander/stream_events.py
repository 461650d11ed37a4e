"""The Responses event stream of a turn, read with less work than the SDK's reader.

A 300-token answer is 300+ server-sent events, so per-event costs add up to most of a
turn's CPU. `TurnStream` is the SDK's own extension point (a custom `AsyncStream`
subclass, given as `stream_cls`) with a leaner body:
- SSE framing is split per network chunk, not per line in Python;
- a text delta, most of the events, becomes a two-field object without validation, and
  so do the events whose content a turn does not read (only their type, or the id of
  the response that started);
- the events it reads in full are validated against the one model their `type` names,
  not against the union of ~60 models pydantic cannot discriminate (30× slower);
- anything unusual (an unknown type, a payload that does not validate) goes the SDK's
  own way, and errors surface as the same SDK exceptions the SDK's reader raises.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pydantic
from openai import AsyncOpenAI
from openai.types.responses import ResponseStreamEvent

TEXT_DELTA = "response.output_text.delta"


# The events commander/turn.py acts on; it reads nothing else from the rest.
READ_IN_FULL = frozenset(
    {
        "response.output_text.annotation.added",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    }
)
STARTED = frozenset({"response.created", "response.in_progress"})


@dataclass(slots=True)
class OutputTextDelta:
    """The two fields a turn reads from `response.output_text.delta`."""

    delta: str
    type: str = TEXT_DELTA


@dataclass(slots=True)
class ResponseRef:
    id: str


@dataclass(slots=True)
class ResponseStarted:
    """`response.created` / `response.in_progress`: a turn reads the response's id."""

    type: str
    response: ResponseRef


@dataclass(slots=True)
class PassingEvent:
    """Any other event (e.g. `response.content_part.added`): only its type is read."""

    type: str


def _event_models() -> dict[str, type[pydantic.BaseModel]]:
    union = typing.get_args(ResponseStreamEvent)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing.get_args(union):
        for value in typing.get_args(model.model_fields["type"].annotation):
            models[value] = model
    return models


EVENT_MODELS = _event_models()


def parse_event(data: object) -> Any:
    """The event for one decoded SSE payload; None when the SDK should decide."""
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    if not isinstance(kind, str):
        return None
    if kind == TEXT_DELTA:
        delta = data.get("delta")
        return OutputTextDelta(delta) if isinstance(delta, str) else None
    if kind in STARTED:
        response = data.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        return ResponseStarted(kind, ResponseRef(response_id)) if response_id else None
    model = EVENT_MODELS.get(kind)
    if kind not in READ_IN_FULL or model is None:
        return PassingEvent(kind)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError:
        return None


def sse_payloads(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """The `data` of each event completed by `chunk`, and the bytes still pending.

    Lines may end in LF, CRLF or CR; an event's `data` lines are joined with LF; other
    fields (event, id, retry) and comments are not needed here."""
    text = pending + chunk
    held = b""
    if text.endswith(b"\r"):  # its LF may come in the next chunk
        text, held = text[:-1], b"\r"
    text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    *blocks, rest = text.split(b"\n\n")
    payloads = []
    for block in blocks:
        data = [
            line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
        ]
        if data:
            payloads.append(b"\n".join(data).decode())
    return payloads, rest + held


class TurnStream(openai.AsyncStream[ResponseStreamEvent]):
    """`responses.create(stream=True)`'s stream, read as described above."""

    _pump: asyncio.Task[None] | None = None

    async def __stream__(self) -> AsyncIterator[Any]:  # type: ignore[override]
        try:
            async for data in self._payloads():
                if data.startswith("[DONE]"):
                    break
                event = json.loads(data)
                if isinstance(event, dict) and event.get("error"):
                    self._raise_error(event["error"])
                parsed = parse_event(event)
                if parsed is None:
                    parsed = self._client._process_response_data(
                        data=event, cast_to=ResponseStreamEvent, response=self.response
                    )
                yield parsed
        finally:
            await self.close()

    async def _payloads(self) -> AsyncIterator[str]:
        # An event cut off by the end of the body is dropped, as the SSE spec says.
        pending = b""
        try:
            async for chunk in self._chunks():
                payloads, pending = sse_payloads(pending, chunk)
                for payload in payloads:
                    yield payload
        except httpx2.TimeoutException as err:
            raise openai.APITimeoutError(request=self.response.request) from err
        except (httpx2.RequestError, ssl.SSLError) as err:
            raise openai.APIConnectionError(request=self.response.request) from err

    async def _chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks, read ahead of the consumer by a task of their own.

        aiohttp drops bytes it has received but not yet handed out once the connection
        breaks; while the consumer is away (say, in a Slack call), the answer's last
        words before a cut would be lost. A reader always waiting on the socket gets
        every byte that arrived. An answer is at most a few hundred kB."""
        queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for chunk in self.response.aiter_bytes():
                    queue.put_nowait(chunk)
            except Exception as exc:
                queue.put_nowait(exc)
            else:
                queue.put_nowait(None)

        self._pump = asyncio.create_task(pump())
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        await super().close()

    def _raise_error(self, error: Any) -> typing.NoReturn:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise openai.APIError(message=message, request=self.response.request, body=error)


def warm_up(client: AsyncOpenAI) -> None:
    """Pay the SDK's first-use costs now, at startup, instead of inside the first turn.

    The SDK imports its Responses and Conversations resources on first access, and
    pydantic builds each event model's validator on first use: together about 0.3 s in
    which the first turn would hold the event loop (every other request waits)."""
    _ = client.responses, client.conversations, client.files
    for model in set(EVENT_MODELS.values()):
        model.model_rebuild()
