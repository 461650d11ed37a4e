"""Prometheus metrics of one process, on prometheus_client's default registry.

Labels take only short, code-like values, and at most MAX_LABEL_VALUES distinct ones per
metric: anything else counts as "other", so an odd error code from a server cannot grow
the registry without bound.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

MAX_LABEL_VALUES = 40
OTHER = "other"
_LABEL = re.compile(r"[A-Za-z0-9_]{1,48}")

# Seconds: from a few milliseconds (an ack) to minutes (a long turn with tools).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

TURNS = Counter("commander_turns", "Turns finished, by outcome.", ["outcome"])
QUEUE_DEPTH = Gauge("commander_queue_depth", "Jobs queued or running (whole cluster).")
QUEUE_OLDEST_AGE = Gauge(
    "commander_queue_oldest_age_seconds", "Age of the oldest queued job; 0 when none is queued."
)
LEASE_TAKEOVERS = Counter(
    "commander_lease_takeovers", "Jobs this instance took over after their lease expired."
)
ACK_SECONDS = Histogram(
    "commander_ack_seconds",
    "From a Slack request's arrival to its acknowledgement.",
    buckets=_LATENCY_BUCKETS,
)
FIRST_TEXT_SECONDS = Histogram(
    "commander_first_text_seconds",
    "From a turn's start to its first text shown in Slack.",
    buckets=_LATENCY_BUCKETS,
)
TURN_SECONDS = Histogram(
    "commander_turn_seconds",
    "From a turn's start to its reply being finished in Slack.",
    buckets=_LATENCY_BUCKETS,
)
MODEL_ERRORS = Counter(
    "commander_model_errors", "Failed model turns, by error class.", ["error_class"]
)
SLACK_ERRORS = Counter(
    "commander_slack_errors", "Slack API calls that failed, by error class.", ["error_class"]
)

_seen: dict[str, set[str]] = {}


def _label(metric: str, value: str) -> str:
    if not _LABEL.fullmatch(value):
        return OTHER
    seen = _seen.setdefault(metric, set())
    if value not in seen:
        if len(seen) >= MAX_LABEL_VALUES:
            return OTHER
        seen.add(value)
    return value


def record_turn(outcome: str) -> None:
    """One turn ended: answered, failed, refused, stopped, ..."""
    TURNS.labels(outcome=_label("turns", outcome)).inc()


def record_takeover() -> None:
    LEASE_TAKEOVERS.inc()


def observe_ack(seconds: float) -> None:
    ACK_SECONDS.observe(max(0.0, seconds))


def observe_first_text(seconds: float) -> None:
    FIRST_TEXT_SECONDS.observe(max(0.0, seconds))


def observe_turn(seconds: float) -> None:
    TURN_SECONDS.observe(max(0.0, seconds))


def record_model_error(error_class: str) -> None:
    MODEL_ERRORS.labels(error_class=_label("model_errors", error_class)).inc()


def record_slack_error(exc: BaseException) -> None:
    """Labelled with Slack's error code (`ratelimited`, `msg_too_long`, ...) when Slack
    answered, else with the exception's class (a timeout, a refused connection)."""
    error_class = _slack_error_code(exc) or type(exc).__name__
    SLACK_ERRORS.labels(error_class=_label("slack_errors", error_class)).inc()


def _slack_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


# --- queue gauges, filled when /metrics is scraped ---------------------------------

QueueStats = Callable[[], Awaitable[tuple[int, float | None]]]
QUEUE_STATS_TIMEOUT_S = 2.0


async def refresh_queue_gauges(stats: QueueStats) -> bool:
    """Set the queue gauges from `stats`; on failure keep the last values (False)."""
    try:
        async with asyncio.timeout(QUEUE_STATS_TIMEOUT_S):
            depth, oldest = await stats()
    except Exception as exc:
        log.warning("could not read the job queue for /metrics: %s", type(exc).__name__)
        return False
    QUEUE_DEPTH.set(depth)
    QUEUE_OLDEST_AGE.set(oldest or 0.0)
    return True
