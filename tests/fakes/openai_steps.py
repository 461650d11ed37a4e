"""Scripted model behaviours ("steps") for the fake OpenAI server.

A turn is what one POST /v1/responses does: a step, a list of steps, or a callable
that takes the request JSON and returns either. See openai_server for the overview.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG of the given size, all red."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


TINY_PNG = tiny_png()
DEFAULT_CHART_CODE = (
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3], [2, 4, 8])\n"
    "plt.savefig('/mnt/data/{filename}')\n"
)


@dataclass(frozen=True)
class Text:
    """An assistant message, streamed in deltas of `chunk` characters."""

    text: str
    chunk: int = 4


@dataclass(frozen=True)
class FunctionCall:
    """A function_call output item; the next request must carry its output."""

    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


@dataclass(frozen=True)
class CodeInterpreterChart:
    """A code_interpreter_call that saves `content` as a container file, then a message
    citing it (container_file_citation) with a sandbox:/mnt/data/<filename> link."""

    text: str
    filename: str = "chart.png"
    content: bytes = TINY_PNG
    code: str | None = None


@dataclass(frozen=True)
class FileSearch:
    """A file_search_call, then a message with a file_citation of a vector store file."""

    text: str
    filename: str | None = None


@dataclass(frozen=True)
class Fail:
    """The stream ends with response.failed (non-streaming: a response with status failed)."""

    code: str = "server_error"
    message: str = "The model failed to generate a response."


@dataclass(frozen=True)
class Incomplete:
    """The stream ends with response.incomplete; `text` is the partial answer, if any."""

    reason: str = "max_output_tokens"
    text: str = ""


@dataclass(frozen=True)
class ErrorEvent:
    """An `error` SSE event ends the stream (non-streaming: HTTP 500)."""

    code: str = "server_error"
    message: str = "An error occurred while processing your request."


@dataclass(frozen=True)
class SeeInputs:
    """A message describing every image and file input the model has in its context
    (this turn's and earlier ones in the thread): "I see: a 3x5 png image; ..."."""

    prefix: str = "I see: "


@dataclass(frozen=True)
class WebSearch:
    """A web_search_call (action "search"), then a message citing `sources` (title, url)
    with url_citation annotations."""

    text: str
    sources: tuple[tuple[str, str], ...] = (("Example", "https://example.com/"),)


@dataclass(frozen=True, eq=False)
class Gate:
    """The stream waits here until `event` (a threading.Event) is set or the client
    leaves; a client that leaves is recorded in FakeOpenAI.client_left."""

    event: Any


Step: TypeAlias = (
    Text
    | FunctionCall
    | CodeInterpreterChart
    | FileSearch
    | Fail
    | Incomplete
    | ErrorEvent
    | SeeInputs
    | WebSearch
    | Gate
)
STEP_TYPES = (
    Text,
    FunctionCall,
    CodeInterpreterChart,
    FileSearch,
    Fail,
    Incomplete,
    ErrorEvent,
    SeeInputs,
    WebSearch,
    Gate,
)
Behaviour: TypeAlias = Callable[[dict[str, Any]], "Step | Sequence[Step]"]
Turn: TypeAlias = "Step | Sequence[Step] | Behaviour"
TERMINAL_STEPS = (Fail, Incomplete, ErrorEvent)


def as_steps(value: Step | Sequence[Step]) -> list[Step]:
    steps = [value] if isinstance(value, STEP_TYPES) else list(value)
    for step in steps:
        if not isinstance(step, STEP_TYPES):
            raise TypeError(f"not a scripted step: {step!r}")
    return steps


def resolve_turn(turn: Turn, request_json: dict[str, Any]) -> list[Step]:
    if isinstance(turn, STEP_TYPES):
        return [turn]
    if callable(turn):
        return as_steps(turn(request_json))
    return as_steps(turn)


_JSON_STEPS: dict[str, type] = {
    "text": Text,
    "function_call": FunctionCall,
    "code_interpreter_chart": CodeInterpreterChart,
    "file_search": FileSearch,
    "fail": Fail,
    "incomplete": Incomplete,
    "error": ErrorEvent,
}


def step_from_json(data: dict[str, Any]) -> Step:
    """{"type": "text", "text": "hi"}; a chart's bytes come as base64 in "content_b64"."""
    fields = dict(data)
    kind = fields.pop("type", None)
    if kind not in _JSON_STEPS:
        raise ValueError(f"unknown step type {kind!r}; expected one of {sorted(_JSON_STEPS)}")
    if "content_b64" in fields:
        fields["content"] = base64.b64decode(fields.pop("content_b64"))
    return _JSON_STEPS[kind](**fields)


def turn_from_json(data: dict[str, Any] | list[dict[str, Any]]) -> list[Step]:
    if isinstance(data, dict):
        return [step_from_json(data)]
    return [step_from_json(item) for item in data]
