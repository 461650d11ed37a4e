"""Fault injection for the fake Slack (usage in ``tests.fakes.slack_server``)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from tests.fakes.slack_models import UPLOAD, JsonDict

_DEFAULT_ERRORS = {
    408: "request_timeout",
    429: "ratelimited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass
class Fault:
    """One injected fault; fires ``times`` times (None: every time)."""

    method: str = "*"
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    apply: bool = False
    times: int | None = 1
    match: JsonDict | None = None
    fired: int = 0

    @property
    def fails(self) -> bool:
        """True when the fault replaces the answer (otherwise it only delays)."""
        return self.status != 200 or self.error is not None

    def error_code(self) -> str:
        return self.error or _DEFAULT_ERRORS.get(self.status, "fatal_error")

    def headers(self) -> dict[str, str]:
        if self.status == 429:
            return {"Retry-After": str(1 if self.retry_after is None else self.retry_after)}
        return {}

    def describe(self) -> str:
        return f"status={self.status} error={self.error_code()}" if self.fails else "delay"

    def matches(self, method: str, args: JsonDict) -> bool:
        if self.method not in ("*", method):
            return False
        if self.method == "*" and "." not in method:
            return False
        return all(args.get(k) == v for k, v in (self.match or {}).items())

    def to_json(self) -> JsonDict:
        return asdict(self)


class Faults:
    """Thread-safe list of pending faults: ``slack.faults.add(...)``."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        method: str = "*",
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        apply: bool = False,
        upload_408: bool = False,
        times: int | None = 1,
        match: JsonDict | None = None,
    ) -> Fault:
        """Queue a fault for ``method`` ("*" = every Web API method)."""
        if upload_408:
            method, status, apply = UPLOAD, 408, True
        fault = Fault(method, status, error, retry_after, delay, apply, times, match)
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_json(self, spec: dict[str, Any]) -> Fault:
        return self.add(**spec)

    def take(self, method: str, args: JsonDict) -> Fault | None:
        """The first matching fault, counted as fired; None when none applies."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, args):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
