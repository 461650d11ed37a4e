"""SQLite is the embedded store of one bot process.

Two bot processes on one SQLite file would each take the other's queued jobs for crashed
ones; several instances need PostgreSQL. `python -m bot` therefore holds an exclusive
lock on `<file>.lock` for its lifetime and a second one is refused at start. The lock
is the kernel's (flock): it ends with the process, however it ends, so nothing stale is
left behind. The admin CLI does not take it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commander.errors import DatabaseUnavailable
from commander.store.urls import database_target

try:
    import fcntl
except ImportError:  # Windows: no flock; the guard is skipped there
    fcntl = None  # type: ignore[assignment]


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database file; None for PostgreSQL and :memory:."""
    target = database_target(database_url)
    path = target.url.database
    if not target.is_sqlite or not path or path == ":memory:":
        return None
    return Path(path + ".lock")


@contextmanager
def only_process(database_url: str) -> Iterator[None]:
    """Hold the SQLite file for this process, or raise DatabaseUnavailable."""
    path = lock_path(database_url)
    if path is None or fcntl is None:
        yield
        return
    database = path.with_suffix("")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"Cannot create {path} next to the SQLite database ({exc.strerror}). "
            "Check DATABASE_URL."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseUnavailable(
                f"Another bot process is already using the SQLite database {database}; "
                "SQLite serves one process, so stop the other one or use PostgreSQL "
                "(DATABASE_URL=postgresql://…) to run several."
            ) from None
        yield
    finally:
        os.close(fd)  # also releases the lock
