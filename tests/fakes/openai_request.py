"""Validation of POST /v1/responses bodies and of input items, as the real API does it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.openai_media import check_file, check_image
from tests.fakes.openai_state import ConversationRecord, ResponseRecord, State
from tests.fakes.openai_wire import (
    ApiError,
    invalid_type,
    invalid_value,
    make_id,
    missing,
)

ROLES = ("user", "assistant", "system", "developer")
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "file_search_call",
    "code_interpreter_call",
    "reasoning",
)
CONTENT_TYPES = ("input_text", "input_image", "input_file", "output_text", "refusal")
TOOL_TYPES = (
    "function",
    "file_search",
    "code_interpreter",
    "web_search",
    "web_search_preview",
    "image_generation",
    "mcp",
    "computer_use_preview",
    "local_shell",
    "shell",
    "custom",
    "apply_patch",
)
TOOL_CHOICES = ("none", "auto", "required")
IMAGE_DETAILS = ("low", "high", "auto", "original")
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class ParsedRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    store: bool
    truncation: str
    tool_choice: Any
    tools: list[dict[str, Any]]
    include: list[str]
    input_items: list[dict[str, Any]]
    history: list[dict[str, Any]]
    conversation: ConversationRecord | None
    previous: ResponseRecord | None

    @property
    def context(self) -> list[dict[str, Any]]:
        return self.history + self.input_items

    def tool(self, kind: str) -> dict[str, Any] | None:
        if self.tool_choice == "none":
            return None
        return next((t for t in self.tools if t["type"] == kind), None)

    def function_names(self) -> set[str]:
        if self.tool_choice == "none":
            return set()
        return {t["name"] for t in self.tools if t["type"] == "function"}


def parse_request(body: dict[str, Any], state: State, context_window: int) -> ParsedRequest:
    model = _model(body)
    if body.get("conversation") is not None and body.get("previous_response_id") is not None:
        raise ApiError(
            400,
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    tools = [_tool(raw, index, state) for index, raw in enumerate(_list(body, "tools"))]
    previous = _previous(body, state)
    conversation = _conversation(body, state)
    input_items = _input(body, required=conversation is None)
    if conversation is not None:
        history = list(conversation.items)
    elif previous is not None:
        history = previous.context + previous.output
    else:
        history = []
    check_tool_outputs(history + input_items)
    truncation = _choice(body, "truncation", ("auto", "disabled"), "disabled")
    instructions = body.get("instructions")
    budget = context_window - tokens(instructions if isinstance(instructions, str) else "")
    return ParsedRequest(
        body=body,
        model=model,
        stream=_bool(body, "stream", False),
        store=_bool(body, "store", True),
        truncation=truncation,
        tool_choice=_tool_choice(body),
        tools=tools,
        include=[str(value) for value in _list(body, "include")],
        input_items=input_items,
        history=_fit(history, input_items, truncation, budget),
        conversation=conversation,
        previous=previous,
    )


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise missing("model")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    return model


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_type(name, "a boolean", value)
    return value


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_type(name, "an array", value)
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        raise invalid_value(name, value, choices)
    return str(value)


def _tool_choice(body: dict[str, Any]) -> Any:
    value = body.get("tool_choice", "auto")
    if isinstance(value, str) and value not in TOOL_CHOICES:
        raise invalid_value("tool_choice", value, TOOL_CHOICES)
    if not isinstance(value, str | dict):
        raise invalid_type("tool_choice", "a string or an object", value)
    return value


def _previous(body: dict[str, Any], state: State) -> ResponseRecord | None:
    response_id = body.get("previous_response_id")
    if response_id is None:
        return None
    record = state.responses.get(response_id)
    if record is None or not record.stored:
        raise ApiError(
            400,
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return record


def _conversation(body: dict[str, Any], state: State) -> ConversationRecord | None:
    raw = body.get("conversation")
    if raw is None:
        return None
    if isinstance(raw, dict):
        if "id" not in raw:
            raise missing("conversation.id")
        raw = raw["id"]
    if not isinstance(raw, str):
        raise invalid_type("conversation", "a string or an object", raw)
    return state.conversation(raw)


def _input(body: dict[str, Any], *, required: bool) -> list[dict[str, Any]]:
    raw = body.get("input")
    if raw is None:
        if required:
            raise missing("input")
        return []
    if isinstance(raw, str):
        return [normalize_item({"role": "user", "content": raw}, "input[0]")]
    if not isinstance(raw, list):
        raise invalid_type("input", "a string or an array", raw)
    return [normalize_item(item, f"input[{index}]") for index, item in enumerate(raw)]


def normalize_item(raw: Any, where: str) -> dict[str, Any]:
    """An input item as the API stores it (with an id and a status)."""
    if not isinstance(raw, dict):
        raise invalid_type(where, "an object", raw)
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind is None:
        raise missing(f"{where}.type")
    if kind not in ITEM_TYPES:
        raise invalid_value(f"{where}.type", kind, ITEM_TYPES)
    if kind == "message":
        return _message(raw, where)
    if kind == "function_call":
        _require(raw, where, "call_id", "name", "arguments")
        return {"id": make_id("fc"), "status": "completed", **raw}
    if kind == "function_call_output":
        _require(raw, where, "call_id", "output")
        return {"id": make_id("fco"), "status": "completed", **raw}
    return dict(raw)


def _require(raw: dict[str, Any], where: str, *names: str) -> None:
    for name in names:
        if raw.get(name) is None:
            raise missing(f"{where}.{name}")


def _message(raw: dict[str, Any], where: str) -> dict[str, Any]:
    _require(raw, where, "role", "content")
    role, content = raw["role"], raw["content"]
    if role not in ROLES:
        raise invalid_value(f"{where}.role", role, ROLES)
    if isinstance(content, str):
        kind = "output_text" if role == "assistant" else "input_text"
        parts = [_part({"type": kind, "text": content}, f"{where}.content[0]")]
    elif isinstance(content, list):
        parts = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    else:
        raise invalid_type(f"{where}.content", "a string or an array", content)
    return {
        "id": raw.get("id") or make_id("msg"),
        "type": "message",
        "status": "completed",
        "role": role,
        "content": parts,
    }


def _part(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid_type(where, "an object", raw)
    kind = raw.get("type")
    if kind not in CONTENT_TYPES:
        raise invalid_value(f"{where}.type", kind, CONTENT_TYPES)
    if kind in ("input_text", "output_text") and not isinstance(raw.get("text"), str):
        raise missing(f"{where}.text")
    if kind == "output_text":
        return {"annotations": [], **raw}
    if kind == "input_image":
        if not raw.get("image_url") and not raw.get("file_id"):
            raise missing(f"{where}.image_url")
        if raw.get("detail", "auto") not in IMAGE_DETAILS:
            raise invalid_value(f"{where}.detail", raw.get("detail"), IMAGE_DETAILS)
        if raw.get("image_url"):
            check_image(str(raw["image_url"]), f"{where}.image_url")
        return {"detail": "auto", **raw}
    if kind == "input_file":
        check_file(raw, where)
    return dict(raw)


def _tool(raw: Any, index: int, state: State) -> dict[str, Any]:
    where = f"tools[{index}]"
    if not isinstance(raw, dict):
        raise invalid_type(where, "an object", raw)
    kind = raw.get("type")
    if kind is None:
        raise missing(f"{where}.type")
    if kind not in TOOL_TYPES:
        raise invalid_value(f"{where}.type", kind, TOOL_TYPES)
    if kind == "function":
        return _function_tool(raw, where)
    if kind == "file_search":
        return _file_search_tool(raw, where, state)
    if kind == "code_interpreter":
        return _code_interpreter_tool(raw, where, state)
    return dict(raw)


def _function_tool(raw: dict[str, Any], where: str) -> dict[str, Any]:
    if not raw.get("name"):
        raise missing(f"{where}.name")
    if not _FUNCTION_NAME.match(str(raw["name"])):
        raise ApiError(
            400,
            f"Invalid '{where}.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'.",
            param=f"{where}.name",
            code="invalid_value",
        )
    if "parameters" not in raw:
        raise missing(f"{where}.parameters")
    return {
        "type": "function",
        "name": raw["name"],
        "description": raw.get("description"),
        "parameters": raw["parameters"],
        "strict": raw.get("strict", True),
    }


def _file_search_tool(raw: dict[str, Any], where: str, state: State) -> dict[str, Any]:
    ids = raw.get("vector_store_ids")
    if ids is None:
        raise missing(f"{where}.vector_store_ids")
    if not isinstance(ids, list):
        raise invalid_type(f"{where}.vector_store_ids", "an array", ids)
    for vector_store_id in ids:
        state.vector_store(vector_store_id)
    return {
        "type": "file_search",
        "vector_store_ids": ids,
        "filters": raw.get("filters"),
        "max_num_results": raw.get("max_num_results", 20),
        "ranking_options": {"ranker": "auto", "score_threshold": 0.0},
    }


def _code_interpreter_tool(raw: dict[str, Any], where: str, state: State) -> dict[str, Any]:
    container = raw.get("container")
    if container is None:
        raise missing(f"{where}.container")
    if isinstance(container, str):
        state.container(container)
    elif isinstance(container, dict):
        if container.get("type") != "auto":
            raise invalid_value(f"{where}.container.type", container.get("type"), ("auto",))
        for file_id in container.get("file_ids") or []:
            state.file(file_id)
    else:
        raise invalid_type(f"{where}.container", "a string or an object", container)
    return {"type": "code_interpreter", "container": container}


def check_tool_outputs(items: list[dict[str, Any]]) -> None:
    calls = [item["call_id"] for item in items if item.get("type") == "function_call"]
    outputs = [item["call_id"] for item in items if item.get("type") == "function_call_output"]
    for call_id in outputs:
        if call_id not in calls:
            raise ApiError(
                400,
                f"No tool call found for function call output with call_id {call_id}.",
                param="input",
            )
    for call_id in calls:
        if call_id not in outputs:
            raise ApiError(400, f"No tool output found for function call {call_id}.", param="input")


def item_text(item: dict[str, Any]) -> str:
    if item.get("type") == "function_call":
        return str(item.get("arguments", ""))
    if item.get("type") == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else _parts_text(output or [])
    return _parts_text(item.get("content") or [])


def _parts_text(parts: list[Any]) -> str:
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def tokens(text: str) -> int:
    """The fake's tokenizer: four characters a token."""
    return math.ceil(len(text) / 4)


def _fit(
    history: list[dict[str, Any]], input_items: list[dict[str, Any]], truncation: str, budget: int
) -> list[dict[str, Any]]:
    """The history the model sees: all of it, or (truncation="auto") its newest part."""
    need = sum(tokens(item_text(item)) for item in history + input_items)
    if need <= budget:
        return history
    if truncation == "auto":
        kept = list(history)
        while kept and need > budget:
            need -= tokens(item_text(kept.pop(0)))
        if need <= budget:
            return kept
    raise ApiError(
        400,
        "Your input exceeds the context window of this model. "
        "Please adjust your input and try again.",
        param="input",
        code="context_length_exceeded",
    )
