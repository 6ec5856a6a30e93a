"""report, proberun, measurement: 64-bit ids

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

The three tables that grow with every upload had 32-bit ids (PostgreSQL ``integer``:
2,147,483,647 at most). A lesson-time upload is 6 reports, 36 probe runs and ~174
measurements per PC every 5 minutes, so 1,000 PCs use up ``measurement.id`` in about 170
school days of six lesson hours and 30,000 PCs in about a week; probe runs would follow.
They become ``bigint``, with the columns that hold them (``report_pk``, ``probe_run_id``)
and their sequences. PostgreSQL rewrites the three tables (run it in a maintenance window
on a big database); SQLite's ``INTEGER`` already holds 64 bits, so nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("report", "id"), ("proberun", "id"), ("proberun", "report_pk"),
           ("measurement", "id"), ("measurement", "report_pk"),
           ("measurement", "probe_run_id"))
SEQUENCES = ("report_id_seq", "proberun_id_seq", "measurement_id_seq")


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(),
                        existing_nullable=False)
    for sequence in SEQUENCES:  # their maximum follows the type when it was the default
        op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def downgrade() -> None:
    if not _postgresql():
        return
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS integer")
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(),
                        existing_nullable=False)
