"""Turn the OpenAI SDK's exceptions into our typed, user-readable errors."""

from __future__ import annotations

import openai

from commander.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderUnavailable,
)


def _api_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    message = inner.get("message") if isinstance(inner, dict) else None
    return str(message or exc.message)[:300]


def to_provider_error(exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderAuthError("auth", status=exc.status_code)
    if isinstance(exc, openai.NotFoundError):
        return ProviderNotFound("not_found", status=404)
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited("rate_limited", status=429)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable("connection")
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        detail = _api_message(exc)
        missing = _unsupported_tool(detail)
        if missing:
            return ProviderBadRequest(
                "web_search_unsupported" if missing == "web search" else "tool_unsupported",
                f"This AI endpoint does not support {missing}. Ask your Slack admin, or turn "
                f"{missing} off for your assistant.",
                status=exc.status_code,
            )
        if "context" in detail.lower() and "length" in detail.lower():
            return ProviderBadRequest(
                "context_length",
                "The conversation got too long for the model. Reset it from App Home.",
                status=exc.status_code,
            )
        return ProviderBadRequest("bad_request", status=exc.status_code)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderUnavailable("server_error", status=exc.status_code)
        return ProviderError("status", status=exc.status_code)
    return ProviderError("unknown")


_TOOL_NAMES = {
    "file_search": "file search",
    "code_interpreter": "code interpreter",
    "web_search": "web search",
}


def _unsupported_tool(detail: str) -> str | None:
    """Some endpoints (e.g. Azure resources outside Foundry) lack hosted tools."""
    lowered = detail.lower()
    if "support" not in lowered and "not available" not in lowered:
        return None
    return next((name for key, name in _TOOL_NAMES.items() if key in lowered), None)


def is_gone(exc: Exception) -> bool:
    """True when the provider says the object does not exist (already deleted)."""
    return isinstance(exc, openai.NotFoundError)
