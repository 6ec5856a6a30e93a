"""measurement: one row per probe run on PostgreSQL, behind a view of the old rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28

A probe run's values become one row of ``measurement_run`` (the per-value columns as
parallel arrays) and ``measurement`` a view that unnests them (``collector.
measurement_runs``): a fifth of the rows and index entries, and about half the
database's CPU per upload (docs/per-run-storage.md). The view's ``id`` is ``run id << 16 |
position``; an ``INSTEAD OF INSERT`` trigger appends a row written to the view to its
run's arrays. A run's **shape** is a 64-bit hash of its metric, stat and unit arrays
(``measurement_shape()``, the same as ``collector.measurement_runs.shape_of``);
``measurement_key`` lists the shapes each (probe, target) of a site has (ingest writes
them with the runs), so readiness knows where each value sits in a run and reads only the values it
judges, from the covering index ``ix_measurement_run_samples``. ``NULLS NOT DISTINCT``:
PostgreSQL 15 or newer.

PostgreSQL copies every row into the new table (grouped by run, in id order), then drops
the old table: run it in a maintenance window on a big database, and grant Grafana's
reader the view again (``dashboards/grafana-reader.sql``). The downgrade copies them
back. SQLite keeps one row per value: nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARED = ("report_pk", "agent_id", "site_id", "room_id", "time", "probe", "target",
          "period", "in_lesson")
ARRAYS = ("metric", "value", "text", "unit", "method", "stat", "samples")
SHAPE = "measurement_shape(r.metric, r.stat, r.unit)"

CREATE_SHAPE_FUNCTION = """
CREATE FUNCTION measurement_shape(metric text[], stat text[], unit text[]) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN
    ('x' || encode(substring(sha256(convert_to(
        array_to_string(metric, E'\\x1f') || E'\\x1e' || array_to_string(stat, E'\\x1f')
        || E'\\x1e' || array_to_string(unit, E'\\x1f'), 'UTF8')) FROM 1 FOR 8), 'hex')
    )::bit(64)::bigint"""
CREATE_RUNS = """
CREATE TABLE measurement_run (
    id bigint NOT NULL PRIMARY KEY,
    report_pk bigint NOT NULL,
    agent_id varchar NOT NULL,
    site_id integer NOT NULL,
    room_id integer NOT NULL,
    "time" timestamp with time zone NOT NULL,
    probe varchar NOT NULL,
    target varchar COLLATE "C",
    period varchar(40),
    in_lesson boolean,
    shape bigint NOT NULL,
    metric text[] COLLATE "C" NOT NULL,
    value double precision[] NOT NULL,
    text text[] NOT NULL,
    unit text[] NOT NULL,
    method text[] NOT NULL,
    stat text[] COLLATE "C" NOT NULL,
    samples integer[] NOT NULL
)"""
RUN_INDEXES = (
    "CREATE INDEX ix_measurement_run_report_pk ON measurement_run (report_pk)",
    "CREATE INDEX ix_measurement_run_agent_id ON measurement_run (agent_id)",
    'CREATE INDEX ix_measurement_run_room_time ON measurement_run (room_id, "time")',
    "CREATE INDEX ix_measurement_run_samples ON measurement_run"
    ' (site_id, probe, target, shape, "time") INCLUDE (in_lesson, agent_id, room_id, period,'
    " report_pk, value)",
)
CREATE_KEYS = """
CREATE TABLE measurement_key (
    site_id integer NOT NULL,
    probe varchar NOT NULL,
    target varchar COLLATE "C",
    shape bigint NOT NULL,
    metric text[] COLLATE "C" NOT NULL,
    stat text[] COLLATE "C" NOT NULL,
    unit text[] NOT NULL
)"""
KEY_COLUMNS = ("site_id", "probe", "target", "shape", "metric", "stat", "unit")
KEY_INDEX = ("CREATE UNIQUE INDEX ux_measurement_key ON measurement_key"
             " (site_id, probe, target, shape) NULLS NOT DISTINCT")
COPY_KEYS = (f"INSERT INTO measurement_key ({', '.join(KEY_COLUMNS)})"
             f" SELECT DISTINCT ON (site_id, probe, target, shape) {', '.join(KEY_COLUMNS)}"
             " FROM measurement_run")
CREATE_VIEW = f"""
CREATE VIEW measurement AS
SELECT (r.id << 16) + u.position AS id, r.report_pk, r.id AS probe_run_id, r.agent_id,
       r.site_id, r.room_id, r."time", r.probe, r.target, u.metric, u.value, u.text, u.unit,
       u.method, u.stat, u.samples, r.period, r.in_lesson
FROM measurement_run r
CROSS JOIN LATERAL unnest({", ".join("r." + a for a in ARRAYS)})
    WITH ORDINALITY AS u({", ".join(ARRAYS)}, position)"""
CREATE_TRIGGER = f"""
CREATE FUNCTION measurement_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run measurement_run;
BEGIN
    INSERT INTO measurement_run AS r (id, {", ".join(SHARED)}, shape, {", ".join(ARRAYS)})
    VALUES (NEW.probe_run_id, {", ".join("NEW." + c for c in SHARED)},
            measurement_shape(ARRAY[NEW.metric], ARRAY[NEW.stat], ARRAY[NEW.unit]),
            {", ".join(f"ARRAY[NEW.{a}]" for a in ARRAYS)})
    ON CONFLICT (id) DO UPDATE SET
        {", ".join(f"{a} = r.{a} || EXCLUDED.{a}" for a in ARRAYS)},
        shape = measurement_shape(r.metric || EXCLUDED.metric, r.stat || EXCLUDED.stat,
                                  r.unit || EXCLUDED.unit)
        WHERE {" AND ".join(f"r.{c} IS NOT DISTINCT FROM EXCLUDED.{c}" for c in SHARED)}
    RETURNING * INTO run;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'measurement of probe run % differs from its run in report, agent,'
            ' site, room, time, probe, target or period', NEW.probe_run_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    INSERT INTO measurement_key ({", ".join(KEY_COLUMNS)})
    VALUES ({", ".join("run." + c for c in KEY_COLUMNS)}) ON CONFLICT DO NOTHING;
    NEW.id := (run.id << 16) + cardinality(run.metric);
    RETURN NEW;
END $$;
CREATE TRIGGER measurement_insert INSTEAD OF INSERT ON measurement
    FOR EACH ROW EXECUTE FUNCTION measurement_insert()"""
COPY_RUNS = f"""
INSERT INTO measurement_run (id, {", ".join(SHARED)}, shape, {", ".join(ARRAYS)})
SELECT id, {", ".join(SHARED)}, {SHAPE}, {", ".join(ARRAYS)} FROM (
    SELECT probe_run_id AS id,
           {", ".join(f"min({c}) AS {c}" for c in SHARED if c != "in_lesson")},
           bool_and(in_lesson) AS in_lesson,
           {", ".join(f"array_agg({a} ORDER BY id) AS {a}" for a in ARRAYS)}
    FROM measurement GROUP BY probe_run_id) r"""

CREATE_ROWS = """
CREATE TABLE measurement (
    id bigserial NOT NULL PRIMARY KEY,
    report_pk bigint NOT NULL,
    probe_run_id bigint NOT NULL,
    agent_id varchar NOT NULL,
    site_id integer NOT NULL,
    room_id integer NOT NULL,
    "time" timestamp with time zone NOT NULL,
    probe varchar NOT NULL,
    target varchar COLLATE "C",
    metric varchar(64) COLLATE "C" NOT NULL,
    value double precision,
    text varchar,
    unit varchar(16) NOT NULL,
    method varchar NOT NULL,
    stat varchar(10) COLLATE "C" NOT NULL,
    samples integer NOT NULL,
    period varchar(40),
    in_lesson boolean
)"""
ROW_INDEXES = (
    "CREATE INDEX ix_measurement_report_pk ON measurement (report_pk)",
    "CREATE INDEX ix_measurement_agent_id ON measurement (agent_id)",
    'CREATE INDEX ix_measurement_room_time ON measurement (room_id, "time")',
    "CREATE INDEX ix_measurement_site_metric_stat_target ON measurement"
    ' (site_id, metric, stat, target, "time")'
    " INCLUDE (unit, in_lesson, agent_id, room_id, period, value, report_pk)",
)
COLUMNS = ("report_pk", "probe_run_id", "agent_id", "site_id", "room_id", "time", "probe",
           "target", "metric", "value", "text", "unit", "method", "stat", "samples", "period",
           "in_lesson")


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    if not op.get_context().as_sql:  # offline (--sql): the reader checks the version
        version = op.get_bind().execute(text("SHOW server_version_num")).scalar_one()
        if int(version) < 150000:
            raise RuntimeError(f"revision 0008 needs PostgreSQL 15 or newer (NULLS NOT "
                               f"DISTINCT); this server is version {version}")
    op.execute(CREATE_SHAPE_FUNCTION)
    op.execute(CREATE_RUNS)
    op.execute(COPY_RUNS)
    for statement in RUN_INDEXES:
        op.execute(statement)
    op.execute(CREATE_KEYS)
    op.execute(COPY_KEYS)
    op.execute(KEY_INDEX)
    op.execute("DROP TABLE measurement")
    op.execute(CREATE_VIEW)
    op.execute(CREATE_TRIGGER)
    op.execute("ANALYZE measurement_run")
    op.execute("ANALYZE measurement_key")


def downgrade() -> None:
    if not _postgresql():
        return
    names = ", ".join(f'"{c}"' if c == "time" else c for c in COLUMNS)
    op.execute("ALTER VIEW measurement RENAME TO measurement_view")
    op.execute(CREATE_ROWS)
    op.execute(f"INSERT INTO measurement ({names}) SELECT {names} FROM measurement_view "
               "ORDER BY id")
    for statement in ROW_INDEXES:
        op.execute(statement)
    op.execute("DROP VIEW measurement_view")
    op.execute("DROP FUNCTION measurement_insert()")
    op.execute("DROP TABLE measurement_run")
    op.execute("DROP TABLE measurement_key")
    op.execute("DROP FUNCTION measurement_shape(text[], text[], text[])")
    op.execute("ANALYZE measurement")
