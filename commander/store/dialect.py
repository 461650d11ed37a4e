"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from commander.store.db import Database


def insert(db: Database, table: Any) -> Any:
    """An INSERT that knows `ON CONFLICT` (upsert) for the database in use."""
    return upsert_insert(db.is_sqlite, table)


def upsert_insert(is_sqlite: bool, table: Any) -> Any:
    """The same, for statements built once per kind of database."""
    return (sqlite.insert if is_sqlite else postgresql.insert)(table)
