"""What every ``classprobe collector`` command module shares: the database options, the
session they open, JSON output and the one-line error (:class:`CliError`, exit 1)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from collector.db import init_db, make_engine
from collector.settings import Settings

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A failure to report in one line and exit 1."""


def settings_of(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None):
        overrides["database_url"] = args.db
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


def open_session(args: argparse.Namespace) -> Session:
    engine = make_engine(settings_of(args).resolved_database_url())
    init_db(engine)
    return Session(engine)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def read_text_file(raw: str, what: str) -> tuple[Path, str]:
    """A UTF-8 file named on the command line, or a CliError naming it and why."""
    path = Path(raw)
    try:
        return path, path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} file {str(path)!r}: {exc}") from exc


def db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy database URL (default: CLASSPROBE_DATABASE_URL, "
                                     "then classprobe.db in the data directory)")
    parser.add_argument("--data-dir", help="data directory (default: CLASSPROBE_DATA_DIR or "
                                           "./classprobe-data)")


def command(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    """A subcommand with the database options that runs ``handler``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    db_options(parser)
    parser.set_defaults(handler=handler)
    return parser
