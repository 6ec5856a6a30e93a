"""Alembic migrations: from empty to head on SQLite and PostgreSQL the schema is exactly
the models'; every revision downgrades and upgrades; a ``create_all``-era database is
stamped when it matches and refused, naming the differences, when it does not.

``test_each_revision_upgrades_from_the_one_before`` walks every adjacent pair of
revisions; with only the initial revision it covers empty → 0001, and it tests
"upgrade from the previous revision" by itself once a second revision exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, inspect, text
from sqlmodel import SQLModel

from collector.db import init_db, make_engine
from collector.measurement_runs import schema_metadata
from collector.migrations.run import (
    SchemaMismatch,
    alembic_config,
    current_revision,
    head_revision,
    schema_differences,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/m.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def revisions_in_order() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def run(engine: Engine, action: str, target: str) -> None:
    with engine.begin() as conn:
        getattr(command, action)(alembic_config(connection=conn), target)


def test_revisions_form_one_line_ending_at_head() -> None:
    revisions = revisions_in_order()
    assert revisions[0] == "0001"
    assert revisions[-1] == head_revision()
    script = ScriptDirectory.from_config(alembic_config())
    assert [script.get_revision(r).down_revision for r in revisions] == [None, *revisions[:-1]]


def test_upgrade_from_empty_gives_the_models_schema(engine: Engine) -> None:
    init_db(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert schema_differences(conn) == []
        tables = set(inspect(conn).get_table_names())
        views = set(inspect(conn).get_view_names())
    expected = set(schema_metadata(engine.dialect.name).tables) | {"alembic_version"}
    assert tables == expected
    if engine.dialect.name == "postgresql":
        assert "measurement_run" in tables and views == {"measurement"}
    else:
        assert set(SQLModel.metadata.tables) <= tables and not views


def test_postgresql_indexes_the_runs_as_their_readers_ask(pg_url: str) -> None:
    engine = make_engine(pg_url)
    init_db(engine)
    with engine.connect() as conn:
        found = {name: definition for name, definition in conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'measurement_run'"))}
    engine.dispose()
    assert {name: definition.split(" USING btree ")[1] for name, definition in found.items()} \
        == {"measurement_run_pkey": "(id)", "ix_measurement_run_report_pk": "(report_pk)",
            "ix_measurement_run_agent_id": "(agent_id)",
            "ix_measurement_run_room_time": '(room_id, "time")',
            "ix_measurement_run_samples":
                '(site_id, probe, target, shape, "time") INCLUDE (in_lesson, agent_id, room_id,'
                ' period, report_pk, value)'}


COLLATIONS = text("SELECT a.attname, c.collname FROM pg_attribute a "
                  "JOIN pg_collation c ON c.oid = a.attcollation "
                  "WHERE a.attrelid = 'measurement'::regclass AND a.attname IN "
                  "('metric', 'stat', 'target', 'period', 'agent_id') ORDER BY a.attname")
BYTEWISE = [("agent_id", "default"), ("metric", "C"), ("period", "default"), ("stat", "C"),
            ("target", "C")]


def test_postgresql_compares_the_readiness_keys_byte_by_byte(pg_url: str) -> None:
    """Revision 0007 and the models agree: the covering index's text keys are ``C``,
    the rest keep the database's collation; downgrading gives the default back."""
    engine = make_engine(pg_url)
    try:
        init_db(engine)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(COLLATIONS)] == BYTEWISE
        run(engine, "downgrade", "0006")
        with engine.connect() as conn:
            assert {c for _, c in conn.execute(COLLATIONS)} == {"default"}
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE measurement"))
            SQLModel.metadata.tables["measurement"].create(conn)
            assert [tuple(r) for r in conn.execute(COLLATIONS)] == BYTEWISE
    finally:
        engine.dispose()


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    init_db(engine)
    run(engine, "downgrade", "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
        assert current_revision(conn) is None
    init_db(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert schema_differences(conn) == []


def test_each_revision_upgrades_from_the_one_before(engine: Engine) -> None:
    previous = "base"
    for revision in revisions_in_order():
        run(engine, "upgrade", revision)
        with engine.connect() as conn:
            assert current_revision(conn) == revision, f"{previous} -> {revision}"
        previous = revision
    with engine.connect() as conn:
        assert schema_differences(conn) == []


def test_create_all_database_is_stamped_at_head(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        pytest.skip("on PostgreSQL the models' tables are not head's schema (next test)")
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO site (name, token_hash, created_at, salt) "
                          "VALUES ('Old School', 'h', '2025-01-01 00:00:00', '')"))
    init_db(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(text("SELECT name FROM site")).scalars().all() == ["Old School"]


def test_postgresql_create_all_database_is_refused_for_its_measurement_table(
        pg_url: str) -> None:
    """Since revision 0008 PostgreSQL keeps measurements per run behind a view; a database
    made from the models alone has neither, so it is refused, naming both."""
    engine = make_engine(pg_url)
    try:
        SQLModel.metadata.create_all(engine)
        with pytest.raises(SchemaMismatch) as caught:
            init_db(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "missing table measurement_run" in message
    assert "unexpected table measurement" in message and "missing view measurement" in message


def test_mismatching_unversioned_database_is_refused(engine: Engine) -> None:
    schema_metadata(engine.dialect.name).create_all(engine)
    extra = MetaData()
    Table("leftover", extra, Column("id", Integer, primary_key=True), Column("x", String(5)))
    extra.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE flag"))
    with pytest.raises(SchemaMismatch) as caught:
        init_db(engine)
    message = str(caught.value)
    view = "; missing view measurement" if engine.dialect.name == "postgresql" else ""
    count = 5 if view else 4
    assert (f"({count} difference(s): missing table flag; missing index ix_flag_room_created; "
            f"missing index ix_flag_site_id; unexpected table leftover{view})") in message
    assert "back it up" in message
    with engine.connect() as conn:
        assert "alembic_version" not in inspect(conn).get_table_names()


def test_init_db_twice_is_a_no_op(engine: Engine) -> None:
    init_db(engine)
    init_db(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_cli_migrate_upgrades_and_prints_the_revision(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["collector", "migrate", "--db", url]) == 0
    assert capsys.readouterr().out == f"database at revision {head_revision()} (head)\n"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert schema_differences(conn) == []
    engine.dispose()


def test_cli_migrate_refuses_a_mismatching_database(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE site DROP COLUMN salt"))
    engine.dispose()
    assert main(["collector", "migrate", "--db", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("classprobe collector: this database was made before migrations")
    assert "(1 difference(s): missing column site.salt)" in err


def test_cli_migrate_sql_prints_postgresql_ddl_offline(capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    url = "postgresql+psycopg://nobody@db.invalid/none"  # never connected to: offline mode
    assert main(["collector", "migrate", "--sql", "--db", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BEGIN;")
    assert ("CREATE INDEX ix_measurement_site_metric_stat_target ON measurement "
            "(site_id, metric, stat, target, time) INCLUDE (unit, in_lesson, agent_id, "
            "room_id, period, value, report_pk);") in out
    head = head_revision()  # the first revision is inserted, each later one updates it
    assert (f"INSERT INTO alembic_version (version_num) VALUES ('{head}')" in out
            or f"UPDATE alembic_version SET version_num='{head}'" in out)
    assert out.rstrip().endswith("COMMIT;")


def test_cli_migrate_names_a_revision_this_version_does_not_know(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    url = f"sqlite:///{tmp_path}/newer.db"
    engine = make_engine(url)
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'fffe'"))
    engine.dispose()
    assert main(["collector", "migrate", "--db", url]) == 1
    assert "Can't locate revision identified by 'fffe'" in capsys.readouterr().err
