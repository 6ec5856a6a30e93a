"""measurement: metric, stat and target compared byte by byte on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

The three text columns of the covering readiness index's key take ``COLLATE "C"``
(``collector.models.bytewise``). Every stored measurement is inserted into that index,
and each comparison on the way down compared the texts with the database's collation
(``strcoll``). Byte order is cheaper, and it is Python's string order (a linguistic
collation such as ``en_US`` orders case and punctuation differently). PostgreSQL's CPU
per 20-report upload (in process, one connection, median of 4 runs of 300 uploads):
15.8 ms with this machine's ``C.UTF-8``, 16.6 ms with ICU's ``en-US``, 14.3 ms with
``C`` (docs/deploy-collector.md §5).

PostgreSQL keeps the rows (same type), rebuilds the indexes on these columns once and
analyses the table again: run it in a maintenance window on a big database. SQLite
compares bytes already: nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("metric", "varchar(64)"), ("stat", "varchar(10)"), ("target", "varchar"))


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _alter(collation: str) -> None:
    """One statement, so the covering index (it holds all three) is rebuilt once, not
    three times; then fresh statistics, which a change of type discards."""
    changes = ", ".join(f'ALTER COLUMN {column} TYPE {sql_type} COLLATE "{collation}"'
                        for column, sql_type in COLUMNS)
    op.execute(f"ALTER TABLE measurement {changes}")
    op.execute("ANALYZE measurement")


def upgrade() -> None:
    if _postgresql():
        _alter("C")


def downgrade() -> None:
    if _postgresql():
        _alter("default")
