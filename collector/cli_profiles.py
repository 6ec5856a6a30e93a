"""``classprobe profiles add FILE`` and ``classprobe profiles list [--json]``.

``add`` validates a supplier's TOML profile and stores it in the collector's database; a
bad file is refused with the message naming the file, the key and the value, and an id
already in use (by a built-in or a stored profile) is refused naming both.
``collector.cli``'s ``build_parser`` calls :func:`register` with its top-level commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli_common import CliError, command, open_session, print_json, read_text_file
from collector.services.profiles import (
    ProfileError,
    RegistryEntry,
    add_profile,
    profile_summary,
    registry_entries,
)


def cmd_add(args: argparse.Namespace) -> int:
    path, text = read_text_file(args.file, "profile")
    with open_session(args) as session:
        try:
            profile = add_profile(session, text, str(path))
        except ProfileError as exc:
            raise CliError(str(exc)) from exc
    print(f"profile {profile.id!r} version {profile.version} added from {str(path)!r}: "
          f"{len(profile.requirements)} requirement(s)")
    return 0


def _entries(args: argparse.Namespace) -> list[RegistryEntry]:
    with open_session(args) as session:
        try:
            return registry_entries(session)
        except ProfileError as exc:
            raise CliError(str(exc)) from exc


def listing_text(summaries: list[dict[str, Any]]) -> str:
    """The ``profiles list`` table: one line per profile."""
    width = max([len("id")] + [len(s["id"]) for s in summaries])
    lines = [f"{'id':{width}}  {'version':10}  {'kind':8}  reqs  conf  title"]
    for s in summaries:
        kind = "built-in" if s["builtin"] else "stored"
        lines.append(f"{s['id']:{width}}  {s['version']:10}  {kind:8}  {s['requirements']:4}  "
                     f"{s['source']['confidence']:4}  {s['title']}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    summaries = [profile_summary(e) for e in _entries(args)]
    if args.json:
        print_json(summaries)
    else:
        print(listing_text(summaries))
    return 0


def register(commands: Any) -> None:
    """Add ``profiles add|list`` to the top-level ``classprobe`` commands."""
    profiles = commands.add_parser("profiles", help="requirement profiles: add, list",
                                   description="requirement profiles: built-in and suppliers'")
    sub = profiles.add_subparsers(dest="action", required=True)
    add = command(sub, "add", cmd_add, "validate a TOML profile file and store it")
    add.add_argument("file", help="the profile's TOML file")
    listing = command(sub, "list", cmd_list, "list the built-in and stored profiles")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
