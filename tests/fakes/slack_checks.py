"""Argument checks shared by the fake Slack method handlers.

Limits enforced (documented by Slack): 50 blocks a message, section text
3,000 characters, header text 150, markdown blocks 12,000 characters in all,
``markdown_text`` 12,000 characters a call (per markdown chunk too).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.slack_models import ApiError, JsonDict

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
MARKDOWN_LIMIT = 12_000
CHUNK_TYPES = {"markdown_text", "task_update", "plan_update", "blocks"}
TASK_STATUSES = {"pending", "in_progress", "complete", "error"}

# Arguments Slack takes as JSON strings in form bodies; the fake decodes them.
JSON_FIELDS = {
    "attachments",
    "blocks",
    "chunks",
    "files",
    "loading_messages",
    "metadata",
    "prompts",
    "view",
}


def decode_json_fields(args: JsonDict) -> JsonDict:
    """Decode JSON-string arguments (blocks, chunks, view, ...) in place."""
    for key in JSON_FIELDS & args.keys():
        value = args[key]
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                args[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return args


def need(args: JsonDict, *keys: str) -> None:
    """Raise invalid_arguments when a required argument is missing."""
    missing = [k for k in keys if args.get(k) in (None, "")]
    if missing:
        raise ApiError(
            "invalid_arguments", *[f"[ERROR] missing required field: {k}" for k in missing]
        )


def text_arg(args: JsonDict, key: str) -> str | None:
    value = args.get(key)
    return None if value is None else str(value)


def truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def check_blocks(blocks: Any, limit: int = MAX_BLOCKS, key: str = "blocks") -> list[JsonDict]:
    """Validate a block list the way chat.postMessage does; returns it."""
    if blocks is None:
        return []
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ApiError("invalid_blocks_format")
    if len(blocks) > limit:
        raise ApiError(
            "invalid_blocks", f"[ERROR] no more than {limit} items allowed [json-pointer:/{key}]"
        )
    markdown_total = 0
    for index, block in enumerate(blocks):
        markdown_total += _check_block(block, f"/{key}/{index}")
    if markdown_total > MARKDOWN_LIMIT:
        raise ApiError(
            "invalid_blocks", f"[ERROR] markdown blocks over {MARKDOWN_LIMIT} characters"
        )
    return blocks


def _check_block(block: JsonDict, pointer: str) -> int:
    """Check one block; returns its markdown length (counted across the message)."""
    kind = block.get("type")
    if not isinstance(kind, str):
        raise ApiError(
            "invalid_blocks", f"[ERROR] missing required field: type [json-pointer:{pointer}]"
        )
    text = block.get("text")
    inner = text.get("text", "") if isinstance(text, dict) else ""
    if kind == "section" and len(inner) > SECTION_TEXT_LIMIT:
        raise ApiError("invalid_blocks", _too_long(SECTION_TEXT_LIMIT, f"{pointer}/text/text"))
    if kind == "header" and len(inner) > HEADER_TEXT_LIMIT:
        raise ApiError("invalid_blocks", _too_long(HEADER_TEXT_LIMIT, f"{pointer}/text/text"))
    if kind == "markdown":
        return len(text) if isinstance(text, str) else 0
    if kind == "context_actions":
        _check_context_actions(block, pointer)
    return 0


CONTEXT_ACTION_ELEMENTS = ("feedback_buttons", "icon_button")


def _check_context_actions(block: JsonDict, pointer: str) -> None:
    """At most 5 feedback_buttons / icon_button elements; button text 75, value 2,000."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
        raise ApiError("invalid_blocks", f"[ERROR] 1 to 5 elements [json-pointer:{pointer}]")
    for index, element in enumerate(elements):
        where = f"{pointer}/elements/{index}"
        if not isinstance(element, dict) or element.get("type") not in CONTEXT_ACTION_ELEMENTS:
            raise ApiError("invalid_blocks", f"[ERROR] unsupported element [json-pointer:{where}]")
        if element["type"] != "feedback_buttons":
            continue
        for side in ("positive_button", "negative_button"):
            button = element.get(side)
            text = (button or {}).get("text") if isinstance(button, dict) else None
            value = button.get("value") if isinstance(button, dict) else None
            if not isinstance(text, dict) or not text.get("text") or len(text["text"]) > 75:
                raise ApiError("invalid_blocks", _too_long(75, f"{where}/{side}/text"))
            if not isinstance(value, str) or not value or len(value) > 2000:
                raise ApiError("invalid_blocks", _too_long(2000, f"{where}/{side}/value"))


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def check_markdown_text(value: str | None) -> None:
    if value is not None and len(value) > MARKDOWN_LIMIT:
        raise ApiError("msg_too_long")


def check_chunks(chunks: Any) -> list[JsonDict]:
    """Validate streaming chunks (models/messages/chunk.py types)."""
    if chunks is None:
        return []
    if not isinstance(chunks, list):
        raise ApiError("invalid_chunks")
    for chunk in chunks:
        _check_chunk(chunk)
    return chunks


def _check_chunk(chunk: Any) -> None:
    if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
        raise ApiError("invalid_chunks")
    kind = chunk["type"]
    if kind == "markdown_text":
        if not isinstance(chunk.get("text"), str):
            raise ApiError("invalid_chunks")
        check_markdown_text(chunk["text"])
    elif kind == "task_update":
        if (
            not chunk.get("id")
            or not chunk.get("title")
            or chunk.get("status") not in TASK_STATUSES
        ):
            raise ApiError("invalid_chunks")
    elif kind == "plan_update":
        if not chunk.get("title"):
            raise ApiError("invalid_chunks")
    else:
        check_blocks(chunk.get("blocks"), key="chunks/blocks")


def chunk_text(chunks: list[JsonDict]) -> str:
    """Concatenated markdown_text of a chunk list."""
    return "".join(c.get("text", "") for c in chunks if c.get("type") == "markdown_text")


def check_view(view: Any, kinds: tuple[str, ...]) -> JsonDict:
    """Validate a view payload for views.open/push/update/publish."""
    if isinstance(view, str):
        raise ApiError("invalid_arguments", "[ERROR] failed to parse view")
    if not isinstance(view, dict) or view.get("type") not in kinds:
        raise ApiError("invalid_arguments", "[ERROR] view type must be one of " + ",".join(kinds))
    if view["type"] == "modal" and not view.get("title"):
        raise ApiError(
            "invalid_arguments", "[ERROR] missing required field: title [json-pointer:/view]"
        )
    check_blocks(view.get("blocks", []), MAX_MODAL_BLOCKS, key="view/blocks")
    return view
