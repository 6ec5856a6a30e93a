"""report: partial index of the coordinated room tests' reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Readiness leaves room-test rows out of the samples (``report.trigger = 'job'``) and first
asks which groups hold any: without an index that is a scan of every report (10M
measurements: 457k reports, 0.1-0.2 s); the partial index holds only the few room-test
reports, so it costs ingest nothing for the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROOM_TESTS = sa.text("trigger = 'job'")


def upgrade() -> None:
    op.create_index("ix_report_room_test", "report", ["id"], unique=False,
                    postgresql_where=ROOM_TESTS, sqlite_where=ROOM_TESTS)


def downgrade() -> None:
    op.drop_index("ix_report_room_test", table_name="report")
