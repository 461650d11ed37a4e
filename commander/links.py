"""Remove `sandbox:/mnt/data/...` links from streamed model text.

Models write links into the code interpreter's sandbox that mean nothing to a reader;
the files themselves are delivered separately. Text is streamed in small deltas, so a
link may arrive split across several of them: the scrubber holds back only the tail
that could still turn into such a link.
"""

from __future__ import annotations

import re

_MARKDOWN_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(sandbox:[^)\s]*\)")
_BARE_LINK = re.compile(r"sandbox:/mnt/data/(\S+?)(?=[\s)\]])")
_BARE_LINK_AT_END = re.compile(r"sandbox:/mnt/data/(\S+)$")
_PREFIX = "sandbox:"
_MAX_HOLD = 400


def _replace_markdown(match: re.Match[str]) -> str:
    is_image, label = match.group(1), match.group(2).strip()
    if is_image or not label:
        return ""
    return f"{label} (attached)"


def _replace_bare(match: re.Match[str]) -> str:
    return f"{match.group(1)} (attached)"


def scrub(text: str, *, final: bool = True) -> str:
    """Replace complete sandbox links; `final` also takes one that ends the text."""
    text = _MARKDOWN_LINK.sub(_replace_markdown, text)
    text = _BARE_LINK.sub(_replace_bare, text)
    return _BARE_LINK_AT_END.sub(_replace_bare, text) if final else text


def _unsafe_tail_start(text: str) -> int:
    """Index from which the text might still become a sandbox link."""
    cut = len(text)
    bracket = text.rfind("[")
    if bracket != -1 and len(text) - bracket <= _MAX_HOLD and "\n\n" not in text[bracket:]:
        tail = text[bracket:]
        closed = re.match(r"\[[^\]\n]*\]\([^)]*\)", tail)
        if not closed:
            cut = bracket - 1 if bracket > 0 and text[bracket - 1] == "!" else bracket
    bare = text.rfind(_PREFIX)
    if bare != -1 and not re.search(r"\s", text[bare:]):
        cut = min(cut, bare)
    for size in range(min(len(_PREFIX) - 1, len(text)), 0, -1):
        if text.endswith(_PREFIX[:size]):
            cut = min(cut, len(text) - size)
            break
    return cut


class LinkScrubber:
    def __init__(self) -> None:
        self._held = ""

    def feed(self, delta: str) -> str:
        text = scrub(self._held + delta, final=False)
        cut = _unsafe_tail_start(text)
        self._held = text[cut:]
        return text[:cut]

    def flush(self) -> str:
        text, self._held = scrub(self._held), ""
        return text
