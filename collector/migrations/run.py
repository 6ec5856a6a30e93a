"""Run the collector's Alembic migrations from code (no ``alembic.ini``).

:func:`upgrade_head` brings a database to the newest revision. A database made by
``create_all`` before migrations existed (the collector's tables, no ``alembic_version``)
is stamped at head when its schema matches the models, and refused with
:class:`SchemaMismatch` naming the differences when it does not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from collector import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from collector.measurement_runs import schema_metadata

MIGRATIONS = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
PG_LOCK_KEY = 0x636C_7072  # "clpr": one migrator at a time across collector processes


class SchemaMismatch(RuntimeError):
    """An unversioned database whose tables differ from the models."""


def alembic_config(url: str | None = None, connection: Connection | None = None,
                   stdout: TextIO | None = None) -> Config:
    """A Config for the package's migrations, on ``connection`` (online) or ``url``."""
    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def schema_differences(connection: Connection) -> list[Any]:
    """Alembic's autogenerate diff between the database and the newest schema on its
    dialect (empty: same): the models', with PostgreSQL's ``measurement_run`` table in
    place of ``measurement`` (a view there, which autogenerate does not see: its absence
    is reported as ``("add_view", "measurement")``)."""
    expected = schema_metadata(connection.dialect.name)
    found = list(compare_metadata(MigrationContext.configure(connection), expected))
    if (connection.dialect.name == "postgresql"
            and "measurement" not in inspect(connection).get_view_names()):
        found.append(("add_view", "measurement"))
    return found


_WORDS = {"add": "missing", "remove": "unexpected", "modify": "different"}


def describe(diff: Any) -> str:
    """One autogenerate difference in words, e.g. ``missing column site.salt`` (the
    database lacks what the models have), ``unexpected table leftover``."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return "; ".join(describe(d) for d in diff)
    op, *rest = diff
    verb, _, what = str(op).partition("_")
    names = [n for n in (_name(x) for x in rest) if n]
    return f"{_WORDS.get(verb, verb)} {what} {'.'.join(names[:2])}".strip()


def _name(x: Any) -> str:
    if isinstance(x, str):
        return x
    name = getattr(x, "name", None)
    return name if isinstance(name, str) else ""


def _lock(connection: Connection) -> None:
    """Serialise migrators: a PostgreSQL transaction-level advisory lock, or SQLite's
    write lock taken up front (others wait up to the busy timeout)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _adopt_unversioned(connection: Connection) -> None:
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or not tables & set(SQLModel.metadata.tables):
        return
    differences = schema_differences(connection)
    if differences:
        listed = "; ".join(describe(d) for d in differences)
        raise SchemaMismatch(
            "this database was made before migrations existed and its tables differ from "
            f"this version's models ({len(differences)} difference(s): {listed}); back it "
            "up (or export its measurements) and recreate it with "
            "`classprobe collector migrate` on an empty database")
    command.stamp(alembic_config(connection=connection), "head")


def upgrade_head(engine: Engine) -> str | None:
    """Migrate ``engine``'s database to head in one transaction; returns the revision."""
    with engine.begin() as connection:
        _lock(connection)
        _adopt_unversioned(connection)
        command.upgrade(alembic_config(connection=connection), "head")
        return current_revision(connection)
