"""Function-tool plumbing: tool definitions, the per-call context, and a safe runner."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailDraft:
    to: list[str]
    subject: str
    content: str


@dataclass
class ToolContext:
    team_id: str
    user_id: str
    # Stores a pending email and returns its pending id; tools never send mail themselves.
    propose_email: Callable[[EmailDraft], Awaitable[str]]


class ToolError(Exception):
    """A failure whose message is safe and useful to show the model (bad input, no data)."""


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[str]]


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: ToolHandler
    timeout_s: float = 20.0

    def schema(self) -> dict[str, Any]:
        """The Responses API function-tool definition."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
            "strict": _strict_compatible(self.parameters),
        }


def _strict_compatible(parameters: dict[str, Any]) -> bool:
    # Strict mode requires every property to be required and no extra properties;
    # tools with optional parameters (e.g. a defaulted period) must run non-strict.
    return parameters.get("additionalProperties") is False and set(
        parameters.get("required", [])
    ) == set(parameters.get("properties", {}))


def str_arg(args: dict[str, Any], key: str, default: str | None = None) -> str:
    """Fetch a string argument, raising ToolError if it is missing or not a string."""
    value = args.get(key, default)
    if value is None:
        raise ToolError(f"missing required argument '{key}'")
    if not isinstance(value, str):
        raise ToolError(f"argument '{key}' must be a string")
    return value


async def run_tool(tool: FunctionTool, arguments_json: str, ctx: ToolContext) -> str:
    """Run one tool call and return its output text; failures become "error: ..." strings."""
    try:
        args = json.loads(arguments_json or "{}")
    except (ValueError, TypeError):
        return f"error: arguments for {tool.name} are not valid JSON"
    if not isinstance(args, dict):
        return f"error: arguments for {tool.name} must be a JSON object"

    try:
        async with asyncio.timeout(tool.timeout_s):
            return await tool.handler(args, ctx)
    except TimeoutError:
        logger.warning(
            "tool %s timed out after %ss (user %s)", tool.name, tool.timeout_s, ctx.user_id
        )
        return f"error: {tool.name} timed out after {tool.timeout_s:g}s; try again later"
    except ToolError as exc:
        logger.info("tool %s rejected the call: %s", tool.name, exc)
        return f"error: {exc}"
    except Exception as exc:
        # Arguments are not logged: they may hold email content. The exception text
        # is kept out of the model's output since it may carry internal details.
        logger.exception("tool %s failed (team %s, user %s)", tool.name, ctx.team_id, ctx.user_id)
        return f"error: {tool.name} failed unexpectedly ({type(exc).__name__})"


class ToolRegistry:
    def __init__(self, tools: Iterable[FunctionTool] = ()) -> None:
        self._tools: dict[str, FunctionTool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name: {tool.name}")
            self._tools[tool.name] = tool

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self._tools.values()]

    def get(self, name: str) -> FunctionTool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def only(self, names: Iterable[str]) -> ToolRegistry:
        wanted = set(names)
        return ToolRegistry(t for n, t in self._tools.items() if n in wanted)

    async def run(self, name: str, arguments_json: str, ctx: ToolContext) -> str:
        tool = self._tools.get(name)
        if tool is None:
            logger.warning("model called unknown tool %r", name)
            return f"error: unknown tool '{name}'"
        return await run_tool(tool, arguments_json, ctx)
