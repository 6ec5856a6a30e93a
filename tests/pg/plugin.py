"""pytest fixtures: ``pg_server`` (session) and ``pg_url`` (a fresh database per test).

Both skip with the reason when PostgreSQL or psycopg is missing (a user's laptop);
``.ci/run`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg.server import PgServer, unavailable_reason

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    # not under pytest's tmp dir: that is private to root, and the server runs as postgres
    workdir = Path(tempfile.mkdtemp(prefix="classprobe-pg-"))
    try:
        server = PgServer.start(workdir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    return pg_server.create_database(f"test_{next(_names)}")
