"""Which models people may pick (ALLOWED_MODELS) and which of them take a reasoning effort."""

from __future__ import annotations

import re
from dataclasses import dataclass

from commander.errors import InvalidInput

# The Responses API's `reasoning.effort` values every reasoning model accepts.
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
# OpenAI's reasoning models are named like this; an Azure deployment with another name
# is marked in ALLOWED_MODELS with a "+reasoning" suffix.
_REASONING_NAMES = re.compile(r"^(gpt-5|o\d)", re.IGNORECASE)
REASONING_MARK = "+reasoning"


@dataclass(frozen=True)
class ModelChoice:
    name: str
    reasoning: bool


def parse_allowed(raw: str | None, default: str) -> tuple[ModelChoice, ...]:
    """ALLOWED_MODELS, comma-separated, first = default; unset: just the default model."""
    names = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not names:
        names = [default]
    choices: list[ModelChoice] = []
    for name in names:
        marked = name.endswith(REASONING_MARK)
        base = name.removesuffix(REASONING_MARK).strip()
        if base and base not in [c.name for c in choices]:
            choices.append(ModelChoice(base, marked or bool(_REASONING_NAMES.match(base))))
    return tuple(choices)


def pick(
    allowed: tuple[ModelChoice, ...], model: str | None, effort: str | None
) -> tuple[str, str | None]:
    """The (model, reasoning effort) to store, or a refusal naming what is allowed."""
    choice = allowed[0] if not model else next((c for c in allowed if c.name == model), None)
    if choice is None:
        names = ", ".join(c.name for c in allowed)
        raise InvalidInput(f"The model {model[:100]!r} is not offered here. Pick one of: {names}.")
    if not effort:
        return choice.name, None
    if not choice.reasoning:
        raise InvalidInput(f"{choice.name} does not take a reasoning effort.")
    if effort not in REASONING_EFFORTS:
        raise InvalidInput(f"Reasoning effort must be one of: {', '.join(REASONING_EFFORTS)}.")
    return choice.name, effort
