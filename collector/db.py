"""Engine and sessions. SQLite (WAL, foreign keys) by default; any SQLAlchemy URL works."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from collector import models  # noqa: F401  (registers the tables on SQLModel.metadata)

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 15
POOL_SIZE = 10
"""Connections a process keeps open to a server database (as many more may open in a
burst); 4 workers stay within PostgreSQL's default 100 connections."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Pool as large as a process's usual concurrency (ingest_concurrency writers plus
        # pages and control polls): a connection opened past the pool is closed after its
        # request, and a new PostgreSQL backend costs a fork and a cold catalogue cache.
        # No ping before each use (a round trip per checkout, ~10 % of ingest's CPU in the
        # load benchmark): a connection found dead makes SQLAlchemy drop every pooled one
        # older than it, and the agents' requests try once more (retry_if_connection_lost).
        return create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    }
    database = parsed.database or ""
    if database in ("", ":memory:"):
        kwargs["poolclass"] = StaticPool  # one shared in-memory database for all threads
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def retry_if_connection_lost(work: Callable[[], T]) -> T:
    """``work()``, and once more if its pooled connection turned out to be dead (the
    database restarted or failed over since the pool opened it): the retry gets a fresh
    connection. Any other error, and a second loss, propagate (a 503 for the client)."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return work()


def init_db(engine: Engine) -> None:
    """Migrate the database to the newest schema (``alembic upgrade head``).

    A database made by ``create_all`` before migrations existed is stamped at head when it
    matches the models, and refused (:class:`collector.migrations.run.SchemaMismatch`,
    naming the differences) when it does not.
    """
    from collector.migrations.run import upgrade_head  # alembic: only where a database opens

    upgrade_head(engine)


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
