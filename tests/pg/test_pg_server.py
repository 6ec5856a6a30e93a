"""The throwaway PostgreSQL server works, and the collector's schema and UTC times hold on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlmodel import Session, select

from collector.db import init_db, make_engine
from collector.models import Site


def test_collector_tables_and_utc_times_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    init_db(engine)
    made = datetime(2026, 11, 27, 9, 5, tzinfo=timezone(timedelta(hours=1)))
    with Session(engine) as session:
        session.add(Site(name="PG School", token_hash="0" * 64, created_at=made))
        session.commit()
        site = session.exec(select(Site)).one()
    assert site.created_at == made and site.created_at.tzinfo == UTC
    engine.dispose()
