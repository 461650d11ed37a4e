"""Wire-level helpers of the fake OpenAI server: ids, error bodies, list pages."""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

_HEX = "0123456789abcdef"
_ALNUM = string.ascii_letters + string.digits

# kind -> (prefix, length of the random part, alphabet), as the real API spells them.
_ID_FORMATS: dict[str, tuple[str, int, str]] = {
    "file": ("file-", 22, _ALNUM),
    "vs": ("vs_", 32, _HEX),
    "conv": ("conv_", 48, _HEX),
    "resp": ("resp_", 48, _HEX),
    "msg": ("msg_", 48, _HEX),
    "fc": ("fc_", 48, _HEX),
    "fco": ("fco_", 48, _HEX),
    "ci": ("ci_", 48, _HEX),
    "fs": ("fs_", 48, _HEX),
    "ws": ("ws_", 48, _HEX),
    "cntr": ("cntr_", 48, _HEX),
    "cfile": ("cfile_", 32, _HEX),
    "call": ("call_", 24, _ALNUM),
    "req": ("req_", 32, _HEX),
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    form: dict[str, Any] | None
    headers: dict[str, str]
    # When the server began and finished handling it (time.time(); `ended` None while in
    # flight). A stream whose client left ends when the server notices.
    started: float = 0.0
    ended: float | None = None
    client_port: int | None = None  # the caller's TCP port: tells processes apart


RECORDED = web.RequestKey("recorded", RecordedRequest)
JSON_BODY = web.RequestKey("json_body", object)


def make_id(kind: str) -> str:
    prefix, length, alphabet = _ID_FORMATS[kind]
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def now() -> int:
    return int(time.time())


class ApiError(Exception):
    """An answer with the real error envelope: {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def not_found(message: str, param: str | None = None) -> ApiError:
    return ApiError(404, message, param=param)


def missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def invalid_value(param: str, value: object, supported: Sequence[str] = ()) -> ApiError:
    message = f"Invalid value: '{value}'."
    if supported:
        message += " Supported values are: " + ", ".join(f"'{s}'" for s in supported) + "."
    return ApiError(400, message, param=param, code="invalid_value")


_JSON_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a decimal",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    got = _JSON_TYPE_NAMES.get(type(value), "an unknown type")
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_type(name, "an integer", raw) from None
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def order_param(query: Mapping[str, str], default: str = "desc") -> str:
    order = query.get("order", default)
    if order not in ("asc", "desc"):
        raise invalid_value("order", order, ("asc", "desc"))
    return order


def page(
    items: Sequence[T],
    query: Mapping[str, str],
    *,
    key: Callable[[T], str],
    default_limit: int,
    max_limit: int,
    default_order: str = "desc",
) -> tuple[list[T], bool]:
    """One cursor page of `items` (oldest first): honours limit, order, after and before."""
    limit = int_param(query, "limit", default_limit, 1, max_limit)
    ordered = list(items) if order_param(query, default_order) == "asc" else list(items)[::-1]
    ids = [key(item) for item in ordered]
    if "after" in query:
        start = ids.index(query["after"]) + 1 if query["after"] in ids else len(ids)
        ordered, ids = ordered[start:], ids[start:]
    if "before" in query:
        end = ids.index(query["before"]) if query["before"] in ids else 0
        ordered = ordered[:end]
    return ordered[:limit], len(ordered) > limit


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def sse(event: Mapping[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
