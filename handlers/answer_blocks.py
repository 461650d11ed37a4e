"""Blocks that end an answer (feedback buttons) and the "What went wrong?" modal."""

from __future__ import annotations

from typing import Any

from handlers import ids

Block = dict[str, Any]
UP, DOWN = "up", "down"
COMMENT_MAX_CHARS = 2000
STOPPED_NOTE = "\n\n_(Stopped.)_"
SEPARATOR = ":"


def feedback_block(answer_id: str) -> Block:
    """A `context_actions` block with 👍/👎 `feedback_buttons` for one answer."""
    return {
        "type": "context_actions",
        "block_id": f"feedback_{answer_id}"[:255],
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ids.FEEDBACK,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "accessibility_label": "This answer was helpful",
                    "value": f"{UP}{SEPARATOR}{answer_id}",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "accessibility_label": "This answer was not helpful",
                    "value": f"{DOWN}{SEPARATOR}{answer_id}",
                },
            }
        ],
    }


def parse_feedback(value: str) -> tuple[str, str] | None:
    """(vote, answer id) from a feedback button's value; None when it is not ours."""
    vote, _, answer_id = (value or "").partition(SEPARATOR)
    if vote not in (UP, DOWN) or not answer_id.isalnum() or len(answer_id) > 32:
        return None
    return vote, answer_id


def comment_modal(answer_id: str) -> Block:
    return {
        "type": "modal",
        "callback_id": ids.FEEDBACK_MODAL,
        "private_metadata": answer_id,
        "title": {"type": "plain_text", "text": "What went wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {
                "type": "input",
                "block_id": ids.FEEDBACK_COMMENT_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Tell us what was wrong (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": COMMENT_MAX_CHARS,
                },
            }
        ],
    }


def read_comment(values: dict[str, Any]) -> str:
    field = (values.get(ids.FEEDBACK_COMMENT_BLOCK) or {}).get("value") or {}
    return str(field.get("value") or "") if isinstance(field, dict) else ""


def sources_footer(citations: list[tuple[str, str]]) -> str:
    """Files by name, web pages as Slack links `<url|title>`."""
    if not citations:
        return ""
    shown = [f"<{url}|{_link_label(name)}>" if url else name for name, url in citations]
    return f"\n\n_Sources: {', '.join(shown)}_"


def _link_label(title: str) -> str:
    label = title.replace("|", "¦").replace(">", "›").replace("<", "‹").strip()
    return label[:100] or "link"
