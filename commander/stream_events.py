"""Parse Responses streaming events by their `type`, not by trying the whole union.

The SDK turns every server-sent event into a `ResponseStreamEvent`: a union of ~60
models whose discriminator pydantic does not know about, so each event is validated
against the union (about 100 µs). A 300-token answer is 300+ events, which made this the
largest CPU cost of a turn. Here the model is picked from the event's `type` and
validated alone (about 3 µs) — the same object the SDK would build. Anything unusual
(an unknown type, a payload that does not validate) goes the SDK's own way.
"""

from __future__ import annotations

import typing
from typing import Any

import pydantic
from openai import AsyncOpenAI
from openai.types.responses import ResponseStreamEvent


def _event_models() -> dict[str, type[pydantic.BaseModel]]:
    union = typing.get_args(ResponseStreamEvent)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing.get_args(union):
        for value in typing.get_args(model.model_fields["type"].annotation):
            models[value] = model
    return models


EVENT_MODELS = _event_models()


def parse_event(data: object) -> pydantic.BaseModel | None:
    """The typed event for one decoded SSE payload; None when the SDK should decide."""
    if not isinstance(data, dict):
        return None
    model = EVENT_MODELS.get(data.get("type"))  # type: ignore[arg-type]
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError:
        return None


def fast_stream_events(client: AsyncOpenAI) -> AsyncOpenAI:
    """Make `client` parse Responses stream events by type (returns the same client)."""
    sdk_process = client._process_response_data

    def process(*, data: object, cast_to: Any, response: Any) -> Any:
        if cast_to is ResponseStreamEvent:
            event = parse_event(data)
            if event is not None:
                return event
        return sdk_process(data=data, cast_to=cast_to, response=response)

    client._process_response_data = process  # type: ignore[method-assign]
    return client


def warm_up(client: AsyncOpenAI) -> None:
    """Pay the SDK's first-use costs now, at startup, instead of inside the first turn.

    The SDK imports its Responses and Conversations resources on first access, and
    pydantic builds each event model's validator on first use: together about 0.3 s in
    which the first turn would hold the event loop (every other request waits)."""
    _ = client.responses, client.conversations, client.files
    for model in set(EVENT_MODELS.values()):
        model.model_rebuild()
