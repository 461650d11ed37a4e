"""Fault injection for the fake OpenAI server (the API is described in openai_server)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from tests.fakes.openai_wire import ApiError

FaultKind = Literal["http", "cut", "vector_store_file"]

_DEFAULT_TARGETS: dict[FaultKind, tuple[str, str]] = {
    "http": ("*", "*"),
    "cut": ("/v1/responses", "POST"),
    "vector_store_file": ("/v1/vector_stores/*/files", "POST"),
}

_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    408: ("Request timed out.", "timeout", None),
    409: ("The request conflicted with another request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


@dataclass
class Fault:
    """One injected fault; fires `times` times on matching requests, then disappears.

    `path` and `method` are fnmatch patterns ("*" = any). Exactly one kind:
    - "http": `status` (error answer with the real body, `retry_after` seconds in a
      Retry-After header) and/or `delay` seconds of latency before answering;
    - "cut": `cut_after_deltas=N` closes a streamed response abruptly after N text deltas
      (or before its terminal event, if it has fewer); the turn is lost unless
      `finish_after_cut=True`, which completes it server-side (it lands in the conversation);
    - "vector_store_file": `vector_store_file_fails=True` makes the next file added to a
      vector store end `failed` with last_error (`code`, `message`).
    """

    path: str | None = None
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    cut_after_deltas: int | None = None
    finish_after_cut: bool = False
    vector_store_file_fails: bool = False
    message: str | None = None
    code: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        kinds = [
            self.cut_after_deltas is not None,
            self.vector_store_file_fails,
            self.status is not None or self.delay > 0,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "a fault needs exactly one of: status/delay, cut_after_deltas, "
                "vector_store_file_fails"
            )
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {self.status}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        default_path, default_method = _DEFAULT_TARGETS[self.kind]
        self.path = self.path or default_path
        self.method = (self.method or default_method).upper()

    @property
    def kind(self) -> FaultKind:
        if self.cut_after_deltas is not None:
            return "cut"
        if self.vector_store_file_fails:
            return "vector_store_file"
        return "http"

    def matches(self, method: str, path: str, kind: FaultKind) -> bool:
        return (
            kind == self.kind
            and fnmatchcase(method.upper(), self.method or "*")
            and fnmatchcase(path, self.path or "*")
        )

    def error(self) -> ApiError:
        assert self.status is not None
        default_message, error_type, default_code = _STATUS_ERRORS.get(
            self.status,
            (
                f"Injected HTTP {self.status}.",
                "server_error" if self.status >= 500 else "invalid_request_error",
                None,
            ),
        )
        headers = {}
        if self.retry_after is not None:
            headers["retry-after"] = f"{self.retry_after:g}"
        return ApiError(
            self.status,
            self.message or default_message,
            type=error_type,
            code=self.code or default_code,
            headers=headers,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Faults:
    """The pending faults of one fake server; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault | None = None, **fields: Any) -> Fault:
        """add(path="/v1/responses", status=429, retry_after=1.5), or add(Fault(...))."""
        fault = fault or Fault(**fields)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, kind: FaultKind) -> Fault | None:
        """Consumes one firing of the first matching fault."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, kind):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def __len__(self) -> int:
        return len(self.pending)
