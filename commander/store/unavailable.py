"""Why a connection to the database failed, in one sentence a person can act on.

Start-up turns these failures into `DatabaseUnavailable` instead of a traceback. Only
connection failures are explained; anything else (a bug) is left to surface as it is.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
from collections.abc import Iterator

import asyncpg

from commander.store.urls import DatabaseTarget

CHECK = "Check DATABASE_URL."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def explain(exc: BaseException, target: DatabaseTarget) -> str | None:
    """One sentence for a failed connection, or None if `exc` is not one."""
    message = _explain(exc, target)
    password = target.url.password or target.connect_args.get("password")
    if message and password:
        message = message.replace(str(password), "***")
    return message


def _explain(exc: BaseException, target: DatabaseTarget) -> str | None:
    where = target.where
    if target.is_sqlite:
        failure = _first(exc, sqlite3.Error) or _first(exc, OSError)
        return f"Cannot open {where} ({failure}). {CHECK}" if failure else None
    user = target.connect_args.get("user", target.url.username) or "postgres"
    if _first(exc, asyncpg.InvalidPasswordError):
        return f"The database at {where} rejected the password of user {user!r}. {CHECK}"
    if refused := _first(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"The database at {where} refused the login ({refused}). {CHECK}"
    if _first(exc, asyncpg.InvalidCatalogNameError):
        name = target.connect_args.get("database", target.url.database) or user
        return f"The database {name!r} does not exist on the server at {where}. {CHECK}"
    if server := _first(exc, asyncpg.PostgresError):
        return f"The database at {where} refused the connection ({server}). {CHECK}"
    if unverified := _first(exc, ssl.SSLCertVerificationError):
        reason = getattr(unverified, "verify_message", None) or unverified
        return (
            f"Cannot verify the SSL certificate of the database at {where} ({reason}). "
            "Check sslmode and sslrootcert in DATABASE_URL."
        )
    if broken := _first(exc, ssl.SSLError):
        return f"The SSL connection to the database at {where} failed ({broken}). {CHECK}"
    return _network(exc, target)


def _network(exc: BaseException, target: DatabaseTarget) -> str | None:
    where = target.where
    if _first(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif _first(exc, socket.gaierror):
        reason = "host name not found"
    elif _first(exc, TimeoutError):
        seconds = target.connect_args.get("timeout")
        reason = f"no answer within {seconds:g} s" if seconds else "timed out"
    elif (closed := _first(exc, ConnectionError)) and "SSL" in str(closed):
        return (
            f"The database at {where} does not accept SSL connections, but DATABASE_URL "
            "asks for them (sslmode). Enable SSL on the server or change sslmode."
        )
    elif mismatch := _first(exc, asyncpg.exceptions.TargetServerAttributeNotMatched):
        return f"No database server at {where} fits target_session_attrs ({mismatch}). {CHECK}"
    elif failure := _first(exc, OSError):
        reason = getattr(failure, "strerror", None) or str(failure) or type(failure).__name__
    elif failure := _first(exc, asyncpg.InterfaceError):
        reason = str(failure)
    else:
        return None
    return f"Cannot reach the database at {where} ({reason}). {CHECK}"
