"""Settings resolution, engine setup and UTC time storage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, select

from collector.db import init_db, make_engine
from collector.models import Site
from collector.settings import Settings


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLASSPROBE_DATABASE_URL", raising=False)
    monkeypatch.setenv("CLASSPROBE_DATA_DIR", str(tmp_path / "d"))
    settings = Settings()
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path}/d/classprobe.db"
    assert (settings.max_body_bytes, settings.max_download_bytes) == (4 * 2**20, 2**30)
    monkeypatch.setenv("CLASSPROBE_DATABASE_URL", "postgresql://db.invalid/x")
    assert Settings().resolved_database_url() == "postgresql://db.invalid/x"
    assert Settings(database_url="sqlite://").resolved_database_url() == "sqlite://"


def test_sqlite_file_gets_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/new/dir/x.db")
    init_db(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "new" / "dir" / "x.db").exists()


def test_in_memory_database_is_shared_across_threads() -> None:
    engine = make_engine("sqlite://")
    init_db(engine)
    with Session(engine) as session:
        session.add(Site(name="mem", token_hash="h"))
        session.commit()
    names: list[str] = []

    def read() -> None:
        with Session(engine) as session:
            names.extend(s.name for s in session.exec(select(Site)).all())

    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    assert names == ["mem"]


def test_times_are_stored_as_utc_and_naive_times_refused() -> None:
    engine = make_engine("sqlite://")
    init_db(engine)
    plus_two = datetime(2025, 3, 3, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    with Session(engine) as session:
        session.add(Site(name="tz", token_hash="h1", created_at=plus_two))
        session.commit()
        site = session.exec(select(Site)).one()
        assert site.created_at == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
        assert site.created_at.tzinfo is UTC
        session.add(Site(name="naive", token_hash="h2", created_at=datetime(2025, 3, 3)))
        with pytest.raises(StatementError, match="naive datetime 2025-03-03T00:00:00"):
            session.commit()
