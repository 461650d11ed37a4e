"""In-memory objects of the fake OpenAI server and their JSON shapes."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.fakes.openai_wire import make_id, not_found, now

SPOOL_LIMIT = 8 * 1024 * 1024
DEFAULT_CHUNKING = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: int
    data: bytes | None = None
    path: Path | None = None

    @property
    def content(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        return self.data or b""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": None,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileSink:
    """Receives an upload chunk by chunk; spills to disk past SPOOL_LIMIT bytes."""

    def __init__(self, directory: Path, limit: int = SPOOL_LIMIT) -> None:
        self._directory = directory
        self._limit = limit
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self.path: Path | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)
        if self._file is None and len(self._buffer) + len(chunk) <= self._limit:
            self._buffer += chunk
            return
        if self._file is None:
            handle = tempfile.NamedTemporaryFile(dir=self._directory, delete=False)
            self._file, self.path = handle, Path(handle.name)
            self._file.write(self._buffer)
            self._buffer = bytearray()
        self._file.write(chunk)

    def finish(self, file_id: str, filename: str, purpose: str) -> StoredFile:
        if self._file is not None:
            self._file.close()
        return StoredFile(
            id=file_id,
            filename=filename,
            purpose=purpose,
            bytes=self.size,
            sha256=self._hash.hexdigest(),
            created_at=now(),
            data=None if self.path else bytes(self._buffer),
            path=self.path,
        )

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class VectorStoreFileRecord:
    """Answers `in_progress` until it is read once more, then its final status."""

    file_id: str
    vector_store_id: str
    size: int
    attributes: dict[str, Any]
    chunking_strategy: dict[str, Any]
    failure: dict[str, str] | None = None
    created_at: int = field(default_factory=now)
    status: str = "in_progress"
    last_error: dict[str, str] | None = None

    def settle(self) -> None:
        if self.status == "in_progress":
            self.status = "failed" if self.failure else "completed"
            self.last_error = self.failure

    @property
    def usage_bytes(self) -> int:
        return self.size if self.status == "completed" else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.file_id,
            "object": "vector_store.file",
            "attributes": self.attributes,
            "chunking_strategy": self.chunking_strategy,
            "created_at": self.created_at,
            "last_error": self.last_error,
            "status": self.status,
            "usage_bytes": self.usage_bytes,
            "vector_store_id": self.vector_store_id,
        }


@dataclass
class VectorStoreRecord:
    id: str
    name: str
    metadata: dict[str, str]
    expires_after: dict[str, Any] | None = None
    created_at: int = field(default_factory=now)
    files: dict[str, VectorStoreFileRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        statuses = [f.status for f in self.files.values()]
        counts = {s: statuses.count(s) for s in ("in_progress", "completed", "failed", "cancelled")}
        return {
            "id": self.id,
            "object": "vector_store",
            "created_at": self.created_at,
            "expires_after": self.expires_after,
            "expires_at": None,
            "file_counts": {**counts, "total": len(statuses)},
            "last_active_at": self.created_at,
            "metadata": self.metadata,
            "name": self.name,
            "status": "in_progress" if counts["in_progress"] else "completed",
            "usage_bytes": sum(f.usage_bytes for f in self.files.values()),
        }


@dataclass
class ConversationRecord:
    id: str
    metadata: dict[str, str]
    created_at: int = field(default_factory=now)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@dataclass
class ResponseRecord:
    """`body` is the Response JSON; `context` the items the model saw (history + input)."""

    id: str
    body: dict[str, Any]
    context: list[dict[str, Any]]
    request: dict[str, Any]
    stored: bool

    @property
    def output(self) -> list[dict[str, Any]]:
        return list(self.body["output"])


@dataclass
class ContainerFileRecord:
    id: str
    container_id: str
    path: str
    content: bytes
    source: str
    created_at: int = field(default_factory=now)

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class ContainerRecord:
    id: str
    name: str
    created_at: int = field(default_factory=now)
    files: dict[str, ContainerFileRecord] = field(default_factory=dict)

    def add_file(self, filename: str, content: bytes, source: str) -> ContainerFileRecord:
        record = ContainerFileRecord(
            id=make_id("cfile"),
            container_id=self.id,
            path=f"/mnt/data/{filename}",
            content=content,
            source=source,
        )
        self.files[record.id] = record
        return record


class State:
    """Every object the fake holds; lookups raise the real API's 404s."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.vector_stores: dict[str, VectorStoreRecord] = {}
        self.conversations: dict[str, ConversationRecord] = {}
        self.responses: dict[str, ResponseRecord] = {}
        self.containers: dict[str, ContainerRecord] = {}
        self._upload_dir: Path | None = None

    @property
    def upload_dir(self) -> Path:
        if self._upload_dir is None:
            self._upload_dir = Path(tempfile.mkdtemp(prefix="fake-openai-"))
        return self._upload_dir

    def file(self, file_id: str) -> StoredFile:
        if file_id not in self.files:
            raise not_found(f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    def vector_store(self, vector_store_id: str) -> VectorStoreRecord:
        if vector_store_id not in self.vector_stores:
            raise not_found(f"No vector store found with id '{vector_store_id}'.")
        return self.vector_stores[vector_store_id]

    def conversation(self, conversation_id: str) -> ConversationRecord:
        if conversation_id not in self.conversations:
            raise not_found(f"Conversation with id '{conversation_id}' not found.")
        return self.conversations[conversation_id]

    def stored_response(self, response_id: str) -> ResponseRecord:
        record = self.responses.get(response_id)
        if record is None or not record.stored:
            raise not_found(f"Response with id '{response_id}' not found.")
        return record

    def container(self, container_id: str) -> ContainerRecord:
        if container_id not in self.containers:
            raise not_found(f"Container with id '{container_id}' not found.")
        return self.containers[container_id]

    def new_container(self, file_ids: list[str]) -> ContainerRecord:
        container = ContainerRecord(id=make_id("cntr"), name="Code Interpreter container")
        for file_id in file_ids:
            stored = self.file(file_id)
            container.add_file(stored.filename, stored.content, source="user")
        self.containers[container.id] = container
        return container

    def delete_file(self, file_id: str) -> None:
        stored = self.files.pop(file_id)
        if stored.path is not None:
            stored.path.unlink(missing_ok=True)

    def clear(self) -> None:
        for mapping in (self.files, self.vector_stores, self.conversations, self.responses):
            mapping.clear()
        self.containers.clear()
        if self._upload_dir is not None:
            shutil.rmtree(self._upload_dir, ignore_errors=True)
            self._upload_dir = None
