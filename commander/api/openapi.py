"""The OpenAPI 3.1 document, generated from the models the handlers validate with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from commander.api.models import (
    USER_NAME_PATTERN,
    CreateRequest,
    CreateResponse,
    DeleteResponse,
    ErrorResponse,
    Message,
    ProcessRequest,
    StatusResponse,
)

_MODELS: list[type[BaseModel]] = [
    CreateRequest,
    CreateResponse,
    DeleteResponse,
    ErrorResponse,
    Message,
    ProcessRequest,
    StatusResponse,
]
_ERRORS = {
    "400": "Missing or invalid fields, or a request the service refuses.",
    "401": "Missing or wrong API key.",
    "404": "No assistant for this userName (in the caller's tenant).",
    "409": "This userName already has an assistant.",
    "413": "The request body is too large.",
    "429": "A usage limit was hit; see Retry-After.",
    "502": "The model provider failed.",
    "503": "The model provider is busy or unavailable; see Retry-After.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for code in ("400", "401", "413", *codes):
        out[code] = {"description": _ERRORS[code], "content": _json(_ref(ErrorResponse))}
        if code in ("429", "503"):
            out[code]["headers"] = _RETRY_AFTER
    return dict(sorted(out.items()))


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": _json(_ref(model))}


_USER_PARAM = {
    "name": "userName",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": USER_NAME_PATTERN},
}
_SSE = (
    "Server-sent events: `delta` {text}, `tool` {tool, label, status}, `image` (a Message), "
    "`citation` {filename}, then `done` (the list of Messages) or `error` {detail}."
)


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    messages = {"type": "array", "items": _ref(Message)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Assistant Commander API",
            "version": "1.0.0",
            "description": "Per-user assistants for non-Slack clients. Every call needs "
            "`Authorization: Bearer <tenant>:<key>`; userNames are scoped to the tenant.",
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/create": {
                "post": {
                    "operationId": "create",
                    "summary": "Create the user's assistant, adding the files at fileURLs.",
                    "requestBody": _body(CreateRequest),
                    "responses": _responses(
                        {"description": "Created.", "content": _json(_ref(CreateResponse))},
                        "409",
                        "429",
                        "502",
                        "503",
                    ),
                }
            },
            "/api/process": {
                "post": {
                    "operationId": "process",
                    "summary": "Send a prompt; answers with the turn's messages, or streams it.",
                    "requestBody": _body(ProcessRequest),
                    "responses": _responses(
                        {
                            "description": "The answer. With `Accept: text/event-stream`, " + _SSE,
                            "content": {
                                **_json(messages),
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        "404",
                        "429",
                        "502",
                        "503",
                    ),
                }
            },
            "/api/delete/{userName}": {
                "delete": {
                    "operationId": "delete",
                    "summary": "Delete the assistant, its conversation and files, everywhere.",
                    "parameters": [_USER_PARAM],
                    "responses": _responses(
                        {"description": "Deleted.", "content": _json(_ref(DeleteResponse))},
                        "404",
                        "502",
                        "503",
                    ),
                }
            },
            "/api/status/{userName}": {
                "get": {
                    "operationId": "status",
                    "summary": "The assistant, its files, and whether a turn is running.",
                    "parameters": [_USER_PARAM],
                    "responses": _responses(
                        {"description": "Status.", "content": _json(_ref(StatusResponse))},
                        "404",
                    ),
                }
            },
        },
    }
