"""``classprobe collector migrate``: bring the database to the newest schema (Alembic
``upgrade head``) and print the revision, or with ``--sql`` print that upgrade's SQL for
the database's dialect without connecting (for a DBA to review and run)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from collector.cli_common import CliError, command, settings_of


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic import command as alembic_command
    from alembic.util import CommandError

    from collector.db import make_engine
    from collector.migrations.run import SchemaMismatch, alembic_config, upgrade_head

    url = settings_of(args).resolved_database_url()
    if args.sql:
        alembic_command.upgrade(alembic_config(url=url, stdout=sys.stdout), "head", sql=True)
        return 0
    engine = make_engine(url)
    try:
        revision = upgrade_head(engine)
    except (SchemaMismatch, CommandError) as exc:  # CommandError: an unknown revision
        raise CliError(str(exc)) from exc
    finally:
        engine.dispose()
    print(f"database at revision {revision} (head)")
    return 0


def register(sub: Any) -> None:
    migrate = command(sub, "migrate", cmd_migrate,
                      "upgrade the database to the newest schema (Alembic)")
    migrate.add_argument("--sql", action="store_true",
                         help="print the SQL of the upgrade from empty instead of running it")
