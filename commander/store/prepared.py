"""Hot-path statements built once and run with parameters.

Building a SQLAlchemy statement (`update(...).where(...).values(...)`) and computing its
cache key costs more Python than running it: 50–150 µs per statement, and a turn writes
a dozen. The hot path's statements are built once, with a bound parameter for every
value, so a call only binds its values (SQLAlchemy memoizes the cache key per object).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import BindParameter


@dataclass(frozen=True, slots=True)
class Write:
    """One statement and its parameters, to run in some transaction."""

    stmt: Executable
    params: Mapping[str, Any]

    def run(self, conn: Connection) -> CursorResult[Any]:
        return conn.execute(self.stmt, dict(self.params))


VALUE = "v_"  # SQLAlchemy reserves a column's own name for its implicit parameter


def values_of(table: Table, columns: tuple[str, ...]) -> dict[str, BindParameter[Any]]:
    """For `.values()`: a bound parameter per column, typed like it (see `bound`)."""
    return {name: bindparam(VALUE + name, type_=table.c[name].type) for name in columns}


def bound(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for a statement whose `.values()` came from `values_of`."""
    return {VALUE + name: value for name, value in values.items()}
