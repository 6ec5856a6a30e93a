"""``classprobe collector timetable set|show|clear --site S``: a site's timetable from the CLI.

``set`` reads a TOML file (the :mod:`agent.timetable` format), validates it and stores it;
a bad file is refused with the message naming the key and the value. ``collector.cli``'s
``build_parser`` calls :func:`register`.
"""

from __future__ import annotations

import argparse
from typing import Any

from agent.timetable import TimetableError, load_timetable_toml, to_document
from collector.cli_common import CliError, command, open_session, print_json, read_text_file
from collector.models import utcnow
from collector.services import sites as site_service
from collector.services import timetables


def cmd_set(args: argparse.Namespace) -> int:
    path, text = read_text_file(args.file, "timetable")
    try:
        document = to_document(load_timetable_toml(text, str(path)))
    except TimetableError as exc:
        raise CliError(str(exc)) from exc
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        stored = timetables.set_timetable(session, site, document, utcnow())
    print(f"timetable of site {args.site!r} set from {str(path)!r}: "
          f"{len(stored.get('periods', []))} period(s), timezone {stored.get('timezone')}")
    return 0


def _entry(item: dict[str, Any], first: tuple[str, ...]) -> str:
    head = [str(item[k]) for k in first if k in item]
    rest = [f"{k}={v}" if not isinstance(v, list) else f"{k}={','.join(map(str, v))}"
            for k, v in item.items() if k not in first]
    return "  " + "  ".join(head + rest)


SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("periods", ("name", "start", "end")),
    ("terms", ("name", "start", "end")),
    ("exceptions", ("date",)),
    ("exam_windows", ("start", "end")),
)


def timetable_text(site: str, document: dict[str, Any], updated: str) -> str:
    lines = [f"timetable of site {site!r} (updated {updated})",
             f"timezone: {document.get('timezone')}",
             f"school days: {' '.join(document.get('weekdays', []))}"]
    for key, first in SECTIONS:
        items = document.get(key) or []
        lines.append(f"{key.replace('_', ' ')}: {len(items) or 'none'}")
        lines += [_entry(item, first) for item in items]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        assert site.id is not None
        row = timetables.timetable_row(session, site.id)
        document = timetables.load_document(session, site.id)
    if row is None or document is None:
        raise CliError(f"site {args.site!r} has no timetable "
                            "(set one with 'classprobe collector timetable set')")
    if args.json:
        print_json(document)
    else:
        print(timetable_text(args.site, document,
                             row.updated_at.isoformat(timespec="seconds")))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        had = timetables.clear_timetable(session, site_service.get_site(session, args.site))
    print(f"timetable of site {args.site!r} removed" if had
          else f"site {args.site!r} had no timetable; nothing removed")
    return 0


def register(sub: Any) -> None:
    """Add ``timetable set|show|clear`` to the ``collector`` subcommands ``sub``."""
    text = "set, show or clear a site's timetable (periods, terms, closures, exam windows)"
    parser: argparse.ArgumentParser = sub.add_parser("timetable", help=text, description=text)
    actions = parser.add_subparsers(dest="timetable_action", required=True)
    set_ = command(actions, "set", cmd_set, "validate a timetable TOML file and store it")
    set_.add_argument("--site", required=True)
    set_.add_argument("file", metavar="FILE.toml")
    show = command(actions, "show", cmd_show, "print the site's timetable")
    show.add_argument("--site", required=True)
    show.add_argument("--json", action="store_true", help="print the stored JSON document")
    clear = command(actions, "clear", cmd_clear, "remove the site's timetable")
    clear.add_argument("--site", required=True)
