"""PostgreSQL: samples fetched in binary, and their devices' hashes mapped to agents.

Readiness ships samples from PostgreSQL as fixed-width big-endian blobs (``string_agg`` of
``*send``, :func:`binary_agg`), each device as a 64-bit hash of its id
(``hashtextextended``): :func:`binary_rows` fetches them as bytes, and
:func:`agent_codes` maps the hashes back to agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary, func, literal, select, type_coerce
from sqlalchemy.orm import Session as OrmSession

from collector.models import Agent, Site


def binary_agg(column: Any) -> Any:
    """``string_agg`` of a binary ``*send`` per row: fixed-width big-endian values."""
    return type_coerce(func.string_agg(column, literal(b"", LargeBinary)), LargeBinary)


PG_EPOCH_MICROS = 946_684_800_000_000
"""PostgreSQL's binary timestamps count µs from 2000-01-01 UTC."""


def agent_hashes(session: OrmSession, site: Site, unknown: Sequence[int] = ()) -> dict[int, str]:
    """The site's agents by ``hashtextextended(id, 0)`` (with ``unknown``: the agents of
    any site with those hashes). Raises :class:`Unmapped` if two share a hash."""
    agents = Agent.__table__.c  # type: ignore[attr-defined]
    hashed = func.hashtextextended(agents.id, 0)
    query = select(agents.id, hashed).where(
        hashed.in_(list(unknown)) if unknown else agents.site_id == site.id)
    out: dict[int, str] = {}
    for agent_id, h in session.execute(query):
        if out.setdefault(h, agent_id) != agent_id:
            raise Unmapped(f"agents {out[h]!r} and {agent_id!r} share a hash")
    return out


class Unmapped(Exception):
    """A sample's device hash names no single agent: two ids hash alike (about 1 in 10^13
    for 1,000 agents) or no agent has it. The rows then stream into cells instead."""


def agent_codes(session: OrmSession, site: Site, hashes: Any) -> tuple[Any, list[str]]:
    """Each sample's agent as a code into the returned names."""
    known = agent_hashes(session, site)
    unique, codes = np.unique(hashes, return_inverse=True)
    missing = [h for h in unique.tolist() if h not in known]
    if missing:
        known |= agent_hashes(session, site, missing)
        if any(h not in known for h in missing):
            raise Unmapped(f"no agent has the hash of some samples' device: {missing[:3]}")
    return codes, [known[h] for h in unique.tolist()]


def binary_rows(session: OrmSession, query: Any) -> list[tuple[Any, ...]]:
    """PostgreSQL: ``query``'s rows in binary (bytea as bytes, not hex) on the session's
    own psycopg connection, hash-aggregated whatever the estimate (a sort of millions
    of rows by their cells costs several times more)."""
    compiled = query.compile(dialect=session.get_bind().dialect,
                             compile_kwargs={"render_postcompile": True})
    driver = session.connection().connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute("SELECT current_setting('enable_sort'), "
                       "set_config('enable_sort', 'off', true)")
        (before, _off), = cursor.fetchall()
        cursor.execute(str(compiled), compiled.params)
        found = cursor.fetchall()
        cursor.execute("SELECT set_config('enable_sort', %s, true)", (before,))
        return found
