"""What the fake model "sees" in image and file inputs, decoded from their data URLs.

Images: the real API refuses anything but PNG, JPEG, GIF and WEBP ("invalid_image_format").
PDFs: text is taken from the page content's literal strings (`(...) Tj`), enough for the
uncompressed PDFs tests build with `simple_pdf`."""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from tests.fakes.openai_wire import ApiError

_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.DOTALL)
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")


def decode_data_url(url: str, where: str) -> tuple[str, bytes]:
    match = _DATA_URL.match(url)
    if not match:
        raise ApiError(
            400,
            f"Invalid '{where}': expected a base64-encoded data URL.",
            param=where,
            code="invalid_value",
        )
    try:
        return match.group(1), base64.b64decode(match.group(2), validate=True)
    except ValueError:
        raise ApiError(
            400, f"Invalid base64 data in '{where}'.", param=where, code="invalid_value"
        ) from None


def image_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(url: str, where: str) -> None:
    if not url.startswith("data:"):
        return  # a web URL: the real API fetches it
    _mime, data = decode_data_url(url, where)
    if image_format(data) is None:
        raise ApiError(
            400,
            "You uploaded an unsupported image. Please make sure your image has of one the "
            f"following formats: {list(IMAGE_FORMATS)}.",
            param=where,
            code="invalid_image_format",
        )


def check_file(part: dict[str, Any], where: str) -> None:
    sources = [k for k in ("file_data", "file_id", "file_url") if part.get(k)]
    if len(sources) != 1:
        raise ApiError(
            400,
            f"Invalid '{where}': provide exactly one of file_data, file_id or file_url.",
            param=where,
            code="invalid_value",
        )
    if part.get("file_data"):
        if not part.get("filename"):
            raise ApiError(
                400,
                f"Missing required parameter: '{where}.filename'.",
                param=f"{where}.filename",
                code="missing_required_parameter",
            )
        _mime, data = decode_data_url(str(part["file_data"]), f"{where}.file_data")
        if str(part["filename"]).lower().endswith(".pdf") and not data.startswith(b"%PDF"):
            raise ApiError(
                400, "The file you provided is not a valid PDF.", param=where, code="invalid_file"
            )


def describe(part: dict[str, Any]) -> str:
    """One line about an input part, as the fake model reports what it saw."""
    if part.get("type") == "input_image":
        url = str(part.get("image_url") or "")
        if not url.startswith("data:"):
            return f"an image at {url}"
        _mime, data = decode_data_url(url, "image_url")
        width, height = image_size(data)
        return f"a {width}x{height} {image_format(data)} image"
    if part.get("type") == "input_file" and part.get("file_data"):
        _mime, data = decode_data_url(str(part["file_data"]), "file_data")
        return f"{part.get('filename')} saying: {pdf_text(data)}"
    return "a file"


def image_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:3] == b"GIF" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return 0, 0


def pdf_text(data: bytes) -> str:
    strings = re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", data)
    return " ".join(s.decode("latin-1") for s in strings)


def simple_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (uncompressed, for tests)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
