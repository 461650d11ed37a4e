"""Images and PDFs attached to a message, given to the model as input in that turn.

Limits are the providers' documented ones for image and file inputs:
- image input: PNG, JPEG, WEBP and non-animated GIF; at most 50 MB of payload in one
  request (OpenAI, "Images and vision"); Azure OpenAI takes at most 20 MB an image and
  10 images a request, so those bounds hold for both;
- file input: PDFs, at most 32 MB a file (OpenAI, "File inputs").
Inputs travel base64-encoded in the request (works on OpenAI and Azure alike, and the
conversation keeps them, so later turns can refer to them without a new upload); the
encoded size counts against the request's 50 MB.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from commander.errors import CommanderError
from commander.filetypes import content_problem, extension, safe_filename

MiB = 1024 * 1024
IMAGE, PDF = "image", "pdf"
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})
MAX_IMAGE_BYTES = 20 * MiB
MAX_PDF_BYTES = 32 * MiB
MAX_IMAGES = 10
MAX_PAYLOAD_BYTES = 48 * MiB  # of base64; the rest of the 50 MB is left for the text
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
# A GIF frame starts with a graphic control extension; two of them make it animated.
_GIF_FRAME = b"\x21\xf9\x04"


class InputIncoming:
    """One attachment to read: its name, its bytes as they download, a declared size."""

    def __init__(
        self, name: str, chunks: AsyncIterator[bytes], size: int | None, key: str = ""
    ) -> None:
        self.name = safe_filename(name)
        self.chunks = chunks
        self.size = size
        self.key = key or self.name


@dataclass(frozen=True)
class ModelInput:
    name: str
    kind: str  # IMAGE | PDF
    mime: str
    data: bytes = field(repr=False)

    def item(self) -> dict[str, Any]:
        """The Responses API content part (input_image / input_file)."""
        encoded = base64.b64encode(self.data).decode("ascii")
        if self.kind == IMAGE:
            return {
                "type": "input_image",
                "image_url": f"data:{self.mime};base64,{encoded}",
                "detail": "auto",
            }
        return {
            "type": "input_file",
            "filename": self.name,
            "file_data": f"data:application/pdf;base64,{encoded}",
        }


@dataclass
class InputsResult:
    inputs: list[ModelInput] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    shown_keys: set[str] = field(default_factory=set)
    refused_keys: set[str] = field(default_factory=set)

    def refuse(self, incoming: InputIncoming, reason: str) -> None:
        self.refused.append((incoming.name, reason))
        self.refused_keys.add(incoming.key)

    @property
    def items(self) -> list[dict[str, Any]]:
        return [one.item() for one in self.inputs]


def input_kind(filename: str) -> str | None:
    ext = extension(filename)
    if ext in IMAGE_EXTENSIONS:
        return IMAGE
    return PDF if ext == "pdf" else None


def image_type(data: bytes) -> str | None:
    """The image's real MIME type from its first bytes, whatever its name says."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _problem(name: str, kind: str, data: bytes) -> tuple[str | None, str]:
    """(a reason to refuse, or None; the MIME type to send). Content that contradicts the
    file's name is refused as for every other upload (commander.filetypes)."""
    if not data:
        return "it is empty", ""
    mismatch = content_problem(name, data[:64])
    if mismatch:
        return mismatch, ""
    if kind == PDF:
        return None, "application/pdf"
    mime = image_type(data)
    if mime is None:
        return "it is not a PNG, JPEG, GIF or WEBP image, whatever its name says", ""
    if mime == "image/gif" and data.count(_GIF_FRAME) > 1:
        return "it is an animated GIF; the model takes still images only", ""
    return None, mime


def _encoded_size(size: int) -> int:
    return (size + 2) // 3 * 4


async def _read(chunks: AsyncIterator[bytes], limit: int) -> bytes | None:
    """All the bytes, or None as soon as there are more than `limit`."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def collect(files: list[InputIncoming], max_file_bytes: int) -> InputsResult:
    """Read and check each image/PDF; refuse per file, with the reason, what breaks a limit."""
    result = InputsResult()
    budget = MAX_PAYLOAD_BYTES
    images = 0
    for incoming in files:
        kind = input_kind(incoming.name)
        if kind is None:
            continue
        limit = min(MAX_IMAGE_BYTES if kind == IMAGE else MAX_PDF_BYTES, max_file_bytes)
        label = f"{limit // MiB} MB"
        if kind == IMAGE and images >= MAX_IMAGES:
            result.refuse(incoming, f"at most {MAX_IMAGES} images go to the model in one message")
            continue
        if incoming.size is not None and incoming.size > limit:
            result.refuse(incoming, f"it is larger than the {label} the model takes")
            continue
        try:
            data = await _read(incoming.chunks, limit)
        except CommanderError as exc:
            result.refuse(incoming, exc.user_message)
            continue
        if data is None:
            result.refuse(incoming, f"it is larger than the {label} the model takes")
            continue
        problem, mime = _problem(incoming.name, kind, data)
        if problem:
            result.refuse(incoming, problem)
            continue
        if _encoded_size(len(data)) > budget:
            result.refuse(incoming, "with the other files it exceeds the 50 MB one request takes")
            continue
        budget -= _encoded_size(len(data))
        images += kind == IMAGE
        result.inputs.append(ModelInput(incoming.name, kind, mime, data))
        result.shown_keys.add(incoming.key)
    return result
