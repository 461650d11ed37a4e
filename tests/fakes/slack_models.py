"""Records kept by the fake Slack Web API (overview in ``tests.fakes.slack_server``)."""

from __future__ import annotations

import mimetypes
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

JsonDict = dict[str, Any]

# Pseudo-method names for the non-API endpoints; usable in faults and calls_to().
UPLOAD = "upload"
DOWNLOAD = "download"
RESPONSE_URL = "response_url"

CHUNK_SIZE = 256 * 1024

_FILETYPES = {
    "txt": "text",
    "md": "markdown",
    "py": "python",
    "js": "javascript",
    "jpeg": "jpg",
    "yml": "yaml",
}


class ApiError(Exception):
    """A Slack ``{"ok": false, "error": ...}`` answer (HTTP 200)."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)

    def body(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


def random_id(prefix: str, length: int = 10) -> str:
    """A Slack-looking id such as ``F07ABCDEF12``."""
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def filetype_for(name: str) -> str:
    ext = PurePosixPath(name).suffix.lstrip(".").lower()
    return _FILETYPES.get(ext, ext or "binary")


def mimetype_for(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def ts_key(ts: str) -> tuple[int, int]:
    sec, _, micro = ts.partition(".")
    return int(sec or 0), int(micro or 0)


class TsClock:
    """Unique, increasing message timestamps ("1700000000.000123")."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(int(time.time() * 1_000_000), self._last + 1)
            sec, micro = divmod(self._last, 1_000_000)
        return f"{sec}.{micro:06d}"


@dataclass
class Call:
    """One request the fake received (API method, upload, download or response_url)."""

    method: str
    args: JsonDict
    token: str | None
    headers: dict[str, str]
    at: float = field(default_factory=time.time)
    http_method: str = "POST"
    status: int = 200
    response: JsonDict | None = None
    fault: str | None = None

    def to_json(self) -> JsonDict:
        data = asdict(self)
        data["headers"] = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        return data


@dataclass
class Message:
    """A message in a channel as the fake stores it."""

    channel: str
    ts: str
    text: str = ""
    thread_ts: str | None = None
    user: str | None = None
    bot_id: str | None = None
    blocks: list[JsonDict] = field(default_factory=list)
    streaming: bool = False
    chunks: list[JsonDict] = field(default_factory=list)
    stopped: bool = False
    ephemeral_user: str | None = None
    attachments: list[JsonDict] = field(default_factory=list)
    files: list[JsonDict] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    metadata: JsonDict | None = None
    edited: bool = False
    stream_mode: str | None = None
    started_at: float | None = None
    stopped_by_user: bool = False

    def to_json(self, team_id: str = "") -> JsonDict:
        """The message as Slack's APIs show it."""
        data: JsonDict = {"type": "message", "ts": self.ts, "text": self.text}
        optional = {
            "user": self.user,
            "bot_id": self.bot_id,
            "thread_ts": self.thread_ts,
            "blocks": self.blocks,
            "attachments": self.attachments,
            "files": self.files,
            "metadata": self.metadata,
        }
        data.update({k: v for k, v in optional.items() if v})
        if team_id:
            data["team"] = team_id
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": users, "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.edited:
            data["edited"] = {"user": self.user, "ts": self.ts}
        return data


@dataclass
class StoredFile:
    """A file the fake can serve at its url_private_download."""

    id: str
    name: str
    title: str
    mimetype: str
    filetype: str
    size: int
    user: str
    created: int = field(default_factory=lambda: int(time.time()))
    data: bytes | None = None
    generator: Callable[[], Iterable[bytes]] | None = None

    def iter_bytes(self) -> Iterator[bytes]:
        """The content in chunks; generated files are never held whole."""
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK_SIZE):
                yield self.data[start : start + CHUNK_SIZE]
            return
        source = self.generator() if self.generator else pattern_chunks(self.size)
        yield from source


def pattern_chunks(size: int) -> Iterator[bytes]:
    """Deterministic filler content: bytes 0..255 repeated, ``size`` bytes in all."""
    block = bytes(range(256)) * (CHUNK_SIZE // 256)
    remaining = size
    while remaining > 0:
        piece = block[: min(remaining, CHUNK_SIZE)]
        remaining -= len(piece)
        yield piece


@dataclass
class PendingUpload:
    """A files.getUploadURLExternal ticket, before files.completeUploadExternal."""

    file_id: str
    filename: str
    length: int
    ticket: str
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None
    posts: int = 0


@dataclass
class Upload:
    """A completed files_upload_v2 upload."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    mimetype: str = "application/octet-stream"

    @property
    def bytes(self) -> bytes:
        return self.data


@dataclass
class AssistantThread:
    """State set through assistant.threads.* for one (channel, thread_ts)."""

    status: str = ""
    loading_messages: list[str] = field(default_factory=list)
    status_history: list[str] = field(default_factory=list)
    prompts: list[JsonDict] = field(default_factory=list)
    prompts_title: str | None = None
    title: str | None = None


@dataclass
class Timing:
    """First-visible-text timing of one (channel, thread_ts), for benchmarks."""

    channel: str
    thread_ts: str | None
    first_call_at: float
    first_text_at: float | None = None
    first_text_method: str | None = None
    last_text_at: float | None = None

    def to_json(self) -> JsonDict:
        return asdict(self)
