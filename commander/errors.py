"""Typed errors. Each carries `user_message`: one short sentence a person can read."""

from __future__ import annotations


class ConfigError(Exception):
    """A missing or contradictory setting; the message says what to set."""


class DatabaseUnavailable(Exception):
    """The database cannot be used at start-up (unreachable, login refused, missing, or
    held by another process). The message is one sentence without the password."""


class CommanderError(Exception):
    user_message = "Something went wrong."

    def __init__(self, user_message: str | None = None) -> None:
        if user_message:
            self.user_message = user_message
        super().__init__(self.user_message)


class InvalidInput(CommanderError):
    user_message = "That input is not valid."


class NoAssistant(CommanderError):
    user_message = "You don't have an assistant yet. Create one with /assistant-create."


class AssistantExists(CommanderError):
    user_message = (
        "You already have an assistant. Use /assistant-delete first if you want a new one."
    )


class PendingEmailNotFound(CommanderError):
    user_message = "That email draft no longer exists or was already handled."


class ProviderError(CommanderError):
    """The model provider refused or failed; `kind` says how."""

    user_message = "The AI service failed to answer. Please try again in a moment."

    def __init__(self, kind: str, user_message: str | None = None, *, status: int | None = None):
        self.kind = kind
        self.status = status
        super().__init__(user_message)


class ProviderAuthError(ProviderError):
    user_message = "The AI service rejected our credentials. Please tell your Slack admin."


class ProviderNotFound(ProviderError):
    user_message = "The AI service could not find something it needs (a model or deployment)."


class ProviderRateLimited(ProviderError):
    user_message = "The AI service is busy right now. Please try again in a minute."


class ProviderUnavailable(ProviderError):
    user_message = "The AI service is unavailable right now. Please try again in a minute."


class ProviderBadRequest(ProviderError):
    user_message = "The AI service refused the request."


class TurnFailedError(ProviderError):
    user_message = "The assistant could not finish its answer. Please try again."
