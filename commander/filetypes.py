"""Which files each tool accepts, safe names, and a sniff of the content."""

from __future__ import annotations

import re
import unicodedata

FILE_SEARCH = "file_search"
CODE_INTERPRETER = "code_interpreter"

# From OpenAI's supported-file lists for file_search and code_interpreter.
FILE_SEARCH_TYPES = frozenset(
    "c cpp cs css doc docx go html java js json md pdf php pptx py rb sh tex ts txt".split()
)
CODE_INTERPRETER_TYPES = frozenset(
    (
        "c cs cpp csv doc docx html java json md pdf php pptx py rb tex txt css js sh ts "
        "jpeg jpg gif pkl png tar xlsx xml zip"
    ).split()
)
_TEXT_TYPES = frozenset(
    "c cpp cs css csv go html java js json md php py rb sh tex ts txt xml".split()
)
_MAGIC = {
    "pdf": (b"%PDF",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "docx": (b"PK\x03\x04",),
    "pptx": (b"PK\x03\x04",),
    "xlsx": (b"PK\x03\x04",),
    "doc": (b"\xd0\xcf\x11\xe0",),
}
MAX_NAME_CHARS = 120


def extension(filename: str) -> str:
    _, dot, ext = filename.rpartition(".")
    return ext.lower() if dot else ""


def safe_filename(raw: str) -> str:
    """Only the last path component, no control characters, bounded length."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if not name:
        name = "file"
    if len(name) > MAX_NAME_CHARS:
        ext = extension(name)
        keep = MAX_NAME_CHARS - len(ext) - 1 if ext and len(ext) < 10 else MAX_NAME_CHARS
        name = name[:keep] + ("." + ext if keep < MAX_NAME_CHARS else "")
    return name


def route(filename: str, enabled_tools: list[str]) -> tuple[list[str], str | None]:
    """Which enabled tools take this file, or why none does."""
    ext = extension(filename)
    targets = [
        tool
        for tool, types in (
            (FILE_SEARCH, FILE_SEARCH_TYPES),
            (CODE_INTERPRETER, CODE_INTERPRETER_TYPES),
        )
        if tool in enabled_tools and ext in types
    ]
    if targets:
        return targets, None
    if FILE_SEARCH not in enabled_tools and CODE_INTERPRETER not in enabled_tools:
        return [], "file search and code interpreter are both turned off for your assistant"
    if not ext:
        return [], "it has no file extension, so its type is unknown"
    return [], f"“.{ext}” files are not supported by your assistant's tools"


def content_problem(filename: str, head: bytes) -> str | None:
    """A reason to refuse when the first bytes contradict the file's type."""
    ext = extension(filename)
    if ext != "html" and re.match(rb"\s*<(!doctype html|html)", head[:64], re.IGNORECASE):
        return "it is a web page, not a file of its stated type"
    magic = _MAGIC.get(ext)
    if magic and not head.startswith(magic):
        return f"its content does not look like a .{ext} file"
    if ext in _TEXT_TYPES and b"\x00" in head:
        return f"it contains binary data, which a .{ext} file should not"
    return None
