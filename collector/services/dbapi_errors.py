"""A raw DBAPI error as SQLAlchemy itself would raise it.

Ingest talks to the database through the DBAPI connection of a SQLAlchemy session
(:mod:`collector.services.ingest_read`, :mod:`collector.services.ingest_write`). Its
errors must look exactly like the ORM's (``IntegrityError`` on a raced ``report_id``,
``OperationalError`` when the database is gone), so the retry in
:mod:`collector.services.ingest` and the 503 handler see no difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


@contextmanager
def as_sqlalchemy_error(conn: Connection, statement: str) -> Iterator[None]:
    """A DBAPI error as SQLAlchemy raises it, including what SQLAlchemy does on a lost
    connection: the connection is invalidated (the pool then drops every older one) and
    the error says so (``connection_invalidated``), so ingest tries again on a new one."""
    base: Any = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, base, dialect=conn.dialect,
                                  connection_invalidated=lost) from exc
