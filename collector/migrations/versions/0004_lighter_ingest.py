"""lighter ingest: five measurement indexes instead of eight; proberun without its key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Every index on ``measurement`` is written for every row stored, and on PostgreSQL the
eight of them were most of the database's CPU per upload (a binary ``COPY`` of the table
with only its primary key costs ~6 µs a row; with all eight, ~30 µs). Kept:

- the primary key; ``report_pk`` (monotonic, so cheap to extend: a report's and a probe
  run's values are found through it); ``agent_id`` (which devices have data, per-device
  dashboards); the covering readiness index;
- new: ``(room_id, time)``, which serves everything ``room_id`` alone did (the room page's
  timeline, which rooms have data, the Grafana room panels) and also their time ranges.

Dropped: ``probe_run_id`` (its queries also filter on the run's ``report_pk``),
``room_id`` (superseded), ``(site_id, time)`` and ``(site_id, metric, time)`` (the site-wide
reads go through the covering index, whose key starts with ``(site_id, metric)``, or are
whole-site exports that read every row anyway).

``proberun.report_pk`` loses its foreign key, as ``measurement``'s five did in 0002 and for
the same reasons: ingest, the only writer, takes it from the report row it has just
written, nothing is deleted, and the per-row check (a locking look-up in ``report``) was
about half of the ``COPY``'s cost for probe runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {
    "ix_measurement_probe_run_id": ["probe_run_id"],
    "ix_measurement_room_id": ["room_id"],
    "ix_measurement_site_time": ["site_id", "time"],
    "ix_measurement_site_metric_time": ["site_id", "metric", "time"],
}


RUN_KEY = "proberun_report_pk_fkey"
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
"""PostgreSQL's own name for it; SQLite's batch mode names the reflected key the same."""


def upgrade() -> None:
    with op.batch_alter_table("proberun", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(RUN_KEY, type_="foreignkey")
    op.create_index("ix_measurement_room_time", "measurement", ["room_id", "time"],
                    unique=False)
    for name in DROPPED:
        op.drop_index(name, table_name="measurement")


def downgrade() -> None:
    for name, columns in DROPPED.items():
        op.create_index(name, "measurement", columns, unique=False)
    op.drop_index("ix_measurement_room_time", table_name="measurement")
    with op.batch_alter_table("proberun", naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(RUN_KEY, "report", ["report_pk"], ["id"])
