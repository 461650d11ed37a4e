"""Typed events a turn yields, in order, to whoever shows them (Slack, CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolProgress:
    tool: str  # "file_search", "code_interpreter" or a function name
    label: str  # "searching your files", "running code", "calling get_stock_price"
    status: str  # "in_progress" | "completed" | "failed"
    id: str = ""


@dataclass(frozen=True)
class GeneratedFile:
    filename: str
    mime_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class Citation:
    filename: str  # a file's name, or a web page's title
    url: str = ""  # set for web sources


@dataclass(frozen=True)
class Notice:
    """Something the user should be told once, apart from the answer."""

    text: str


@dataclass(frozen=True)
class EmailPending:
    pending_id: str
    to: tuple[str, ...]
    subject: str
    content: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int = 0  # of input_tokens
    reasoning_tokens: int = 0  # of output_tokens


@dataclass(frozen=True)
class TurnCompleted:
    text: str
    response_id: str


@dataclass(frozen=True)
class TurnFailed:
    user_message: str
    kind: str


TurnEvent = (
    TextDelta
    | ToolProgress
    | GeneratedFile
    | Citation
    | Notice
    | EmailPending
    | Usage
    | TurnCompleted
    | TurnFailed
)
