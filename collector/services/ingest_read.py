"""What ingest asks the database before it writes a group of uploads, and the agents' update.

A group is one or more uploads (report batches, perhaps of different agents, rooms and
sites) written in one transaction (:func:`collector.services.ingest.store_group`). Before
its rows, ingest needs, for each upload: which of its report ids are stored already, which
of its job ids are jobs of the agent's own room, and its site's timetable; and every agent
of the group is marked as seen.

- :func:`read_separately`: one statement at a time, upload after upload (SQLite runs in
  process: a statement costs microseconds; and the portable reference).
- :func:`read_at_once` (PostgreSQL with psycopg 3): everything in one statement, one round
  trip for the whole group, which also draws the ids of every report and probe run the
  group may write (``nextval`` over ``generate_series``). A test holds it equal to
  :func:`read_separately`.

Agents are updated in the order of their ids, the same order in every group, so two
groups that share agents lock their rows in one order (a deadlock the database still
detects is tried again by ingest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select, update

from collector.models import Agent, Job, Report, Timetable
from collector.services.dbapi_errors import as_sqlalchemy_error


@dataclass(frozen=True)
class BatchQuery:
    """What ingest asks of the database for one upload, and its agent's update."""

    agent_id: str
    site_id: int
    room_id: int
    report_ids: list[str]
    job_ids: list[str]
    """The upload's job ids, to be checked against the agent's room."""
    agent_values: dict[str, Any]
    """The agent row's new values (``last_seen``, and ``agent_version``/``clock_offset_s``
    when the upload carries them)."""
    runs: int
    """Probe runs in the upload (at most that many run ids are needed)."""


@dataclass(frozen=True)
class BatchReads:
    known: frozenset[str]
    """Report ids of the upload already stored (duplicates)."""
    room_jobs: frozenset[str]
    """Job ids of the upload that are jobs of the agent's room and site."""
    timetable: str | None
    """The site's timetable document, None without one."""


@dataclass(frozen=True)
class GroupReads:
    """:func:`read_at_once`'s answer: each upload's reads, and ids drawn for the rows."""

    reads: list[BatchReads]
    report_ids: list[int]
    """One per report of the group (those of duplicates are never used: a sequence may
    have gaps)."""
    run_ids: list[int]
    """One per probe run of the group."""


def table_of(model: Any) -> Table:
    """A SQLModel table model's Core table (typed; ``__table__`` is not)."""
    table: Table = model.__table__
    return table


def read_separately(conn: Connection, queries: list[BatchQuery]) -> list[BatchReads]:
    """Each upload's reads and its agent's update, one statement at a time, in order."""
    return [_read_one(conn, query) for query in queries]


def _read_one(conn: Connection, query: BatchQuery) -> BatchReads:
    report, job, agent = table_of(Report).c, table_of(Job).c, table_of(Agent).c
    known = conn.execute(select(report.report_id).where(
        report.report_id.in_(query.report_ids))).scalars().all() if query.report_ids else []
    jobs = conn.execute(select(job.id).where(
        job.id.in_(query.job_ids), job.room_id == query.room_id,
        job.site_id == query.site_id)).scalars().all() if query.job_ids else []
    timetable = conn.execute(select(table_of(Timetable).c.document).where(
        table_of(Timetable).c.site_id == query.site_id)).scalar()
    conn.execute(update(table_of(Agent)).where(agent.id == query.agent_id)
                 .values(query.agent_values))
    return BatchReads(frozenset(known), frozenset(jobs), timetable)


READ_AT_ONCE = (
    "WITH agent_update AS (UPDATE agent SET last_seen = v.last_seen,"
    "  agent_version = CASE WHEN v.set_version THEN v.version ELSE agent.agent_version END,"
    "  clock_offset_s = CASE WHEN v.set_offset THEN v.clock_offset"
    "   ELSE agent.clock_offset_s END"
    "  FROM unnest(%(agents)s::text[], %(seen)s::timestamptz[], %(set_versions)s::boolean[],"
    "   %(versions)s::text[], %(set_offsets)s::boolean[], %(offsets)s::float8[])"
    "   AS v(id, last_seen, set_version, version, set_offset, clock_offset)"
    "  WHERE agent.id = v.id)"
    " SELECT ARRAY(SELECT report_id FROM report WHERE report_id = ANY(%(ids)s)),"
    " ARRAY(SELECT ARRAY[id, room_id::text, site_id::text] FROM job"
    "  WHERE id = ANY(%(jobs)s)),"
    " ARRAY(SELECT ARRAY[site_id::text, document] FROM timetable"
    "  WHERE site_id = ANY(%(sites)s)),"
    " ARRAY(SELECT nextval('report_id_seq') FROM generate_series(1, %(reports)s::integer)),"
    " ARRAY(SELECT nextval('proberun_id_seq') FROM generate_series(1, %(runs)s::integer))")
"""A group's reads in one round trip (each costs ~0.25 ms of client CPU and ~0.1 ms of the
server's here, more than parsing a report): the stored report ids, the jobs named (with
their room and site, sorted out per upload in Python), the sites' timetables, every
agent's update, and ids for every report and probe run."""


def _agent_updates(queries: list[BatchQuery]) -> list[tuple[str, dict[str, Any]]]:
    """Each agent's update, in the order of agent ids; an agent with several uploads in
    the group gets what updating it upload after upload would leave (the last value
    given for each column wins)."""
    merged: dict[str, dict[str, Any]] = {}
    for query in queries:
        merged.setdefault(query.agent_id, {}).update(query.agent_values)
    return sorted(merged.items())


def read_at_once(conn: Connection, queries: list[BatchQuery]) -> GroupReads:
    """:func:`read_separately` for a whole group in one statement (psycopg 3 only), with
    ids drawn for its rows."""
    agents = _agent_updates(queries)
    params = {
        "agents": [agent_id for agent_id, _ in agents],
        "seen": [values["last_seen"] for _, values in agents],
        "set_versions": ["agent_version" in values for _, values in agents],
        "versions": [values.get("agent_version") for _, values in agents],
        "set_offsets": ["clock_offset_s" in values for _, values in agents],
        "offsets": [values.get("clock_offset_s") for _, values in agents],
        "ids": [rid for q in queries for rid in q.report_ids],
        "jobs": sorted({job for q in queries for job in q.job_ids}),
        "sites": sorted({q.site_id for q in queries}),
        "reports": sum(len(q.report_ids) for q in queries),
        "runs": sum(q.runs for q in queries)}
    raw: Any = conn.connection.driver_connection  # a psycopg.Connection
    with raw.cursor() as cursor, as_sqlalchemy_error(conn, READ_AT_ONCE):
        cursor.execute(READ_AT_ONCE, params)
        known, jobs, timetables, report_ids, run_ids = cursor.fetchone()
    stored = frozenset(known)
    found = [(job_id, int(room), int(site)) for job_id, room, site in jobs]
    documents = {int(site): document for site, document in timetables}
    reads = [BatchReads(
        stored.intersection(q.report_ids),
        frozenset(job_id for job_id, room, site in found
                  if job_id in q.job_ids and room == q.room_id and site == q.site_id),
        documents.get(q.site_id)) for q in queries]
    return GroupReads(reads, report_ids, run_ids)
