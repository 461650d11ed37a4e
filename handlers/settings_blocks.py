"""Model, reasoning effort and tool pickers for the create modal and App Home."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commander.model_choice import REASONING_EFFORTS, ModelChoice
from handlers import ids

Block = dict[str, Any]
DEFAULT_EFFORT = "default"
EFFORT_LABELS = {
    DEFAULT_EFFORT: "Model default",
    "minimal": "Minimal",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
}


def _plain(text: str) -> Block:
    return {"type": "plain_text", "text": text[:75], "emoji": True}


def _option(value: str, label: str | None = None) -> Block:
    return {"text": _plain(label or value), "value": value[:150]}


def model_select(choices: Sequence[ModelChoice], current: str, action_id: str) -> Block:
    options = [_option(c.name) for c in choices][:100]
    initial = next((o for o in options if o["value"] == current), options[0])
    return {
        "type": "static_select",
        "action_id": action_id,
        "options": options,
        "initial_option": initial,
    }


def effort_select(current: str | None, action_id: str) -> Block:
    options = [_option(v, EFFORT_LABELS[v]) for v in (DEFAULT_EFFORT, *REASONING_EFFORTS)]
    initial = next((o for o in options if o["value"] == (current or DEFAULT_EFFORT)), options[0])
    return {
        "type": "static_select",
        "action_id": action_id,
        "options": options,
        "initial_option": initial,
    }


def create_form_pickers(choices: Sequence[ModelChoice]) -> list[Block]:
    """Model (when there is a choice) and reasoning effort (when a model takes one)."""
    blocks: list[Block] = []
    if len(choices) > 1:
        blocks.append(
            {
                "type": "input",
                "block_id": ids.MODEL_BLOCK,
                "label": _plain("Model"),
                "element": model_select(choices, choices[0].name, "value"),
            }
        )
    if any(c.reasoning for c in choices):
        blocks.append(
            {
                "type": "input",
                "block_id": ids.EFFORT_BLOCK,
                "optional": True,
                "label": _plain("Reasoning effort"),
                "hint": _plain("Only for models that reason; others ignore it."),
                "element": effort_select(None, "value"),
            }
        )
    return blocks


def selected(values: dict[str, Any], block_id: str) -> str:
    element = (values.get(block_id) or {}).get("value") or {}
    option = element.get("selected_option") if isinstance(element, dict) else None
    return str(option.get("value") or "") if isinstance(option, dict) else ""


def home_settings(
    choices: Sequence[ModelChoice],
    model: str,
    effort: str | None,
    tools: Sequence[str],
    available: Sequence[str],
    labels: dict[str, str],
) -> list[Block]:
    """Pickers on App Home; each change applies at once."""
    elements: list[Block] = []
    if len(choices) > 1 or model not in [c.name for c in choices]:
        elements.append(model_select(choices, model, ids.HOME_MODEL))
    current = next((c for c in choices if c.name == model), None)
    if current is not None and current.reasoning:
        elements.append(effort_select(effort, ids.HOME_EFFORT))
    options = [_option(tool, labels.get(tool, tool)) for tool in available]
    toggles: Block = {"type": "checkboxes", "action_id": ids.HOME_TOOLS, "options": options}
    chosen = [o for o in options if o["value"] in tools]
    if chosen:
        toggles["initial_options"] = chosen
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Settings*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Tools"}, "accessory": toggles},
    ]
    if elements:
        blocks.append({"type": "actions", "block_id": "assistant_model", "elements": elements})
    return blocks
