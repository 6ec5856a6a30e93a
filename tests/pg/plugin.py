"""pytest fixtures: ``pg_server`` (session) and ``pg_url`` (a fresh database per test).

Both skip with the reason when PostgreSQL or psycopg is missing (a user's laptop);
``.ci/run`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.pg.server import PgServer, throwaway_server, unavailable_reason

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    return pg_server.create_database(f"test_{next(_names)}")
