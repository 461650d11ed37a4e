"""Logging setup shared by `python -m bot` and `python -m commander`.

`LOG_FORMAT=json` writes one JSON object per line (time, level, logger, message, and
`job_id` while a job runs); anything else, or unset, keeps the plain text format.
Log calls pass ids, counts and error classes as arguments, never message text or secrets.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

_job_id: ContextVar[int | str | None] = ContextVar("commander_job_id", default=None)


@contextmanager
def job_context(job_id: int | str) -> Iterator[None]:
    """Tag every log record made inside the block (and in tasks it starts) with `job_id`."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def current_job_id() -> int | str | None:
    return _job_id.get()


class JobIdFilter(logging.Filter):
    """Copies the current job id onto the record, where formatters can read it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def quiet_http_loggers() -> None:
    # httpx logs full request URLs at INFO; the email webhook URL may carry a key.
    for name in ("httpx", "httpx2", "openai._base_client"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(env: Mapping[str, str] | None = None, *, default_level: str = "INFO") -> None:
    """Root logging to stderr from LOG_LEVEL and LOG_FORMAT (does nothing to a root logger
    that already has handlers, e.g. under pytest)."""
    env = os.environ if env is None else env
    level = env.get("LOG_LEVEL", default_level).strip().upper()
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else default_level,
        handlers=[handler],
    )
    logging.captureWarnings(True)  # Python warnings as log records: JSON too
    quiet_http_loggers()
    if log_format not in FORMATS:
        logging.getLogger(__name__).warning(
            "LOG_FORMAT must be one of %s; using text", ", ".join(FORMATS)
        )
