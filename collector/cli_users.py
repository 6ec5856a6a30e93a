"""Web login accounts: ``classprobe collector admin-user create|password|disable NAME``.

- ``admin-user create NAME`` asks for the password twice (``getpass``: not echoed, not in
  the shell history); ``--password-stdin`` reads one line from standard input instead
  (for scripts: ``printf '%s\\n' "$PW" | classprobe collector admin-user create NAME
  --password-stdin``). At least 12 characters.
- ``admin-user password NAME [--password-stdin]`` sets a new password the same way and
  ends the user's open sessions.
- ``admin-user disable NAME`` stops the user logging in and ends its open sessions.

``collector.cli``'s ``build_parser`` calls :func:`register` with the ``collector``
subcommands. The password is never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from collector.cli_common import CliError, command, open_session
from collector.services.users import (
    UserError,
    check_new_password,
    check_username,
    create_user,
    disable_user,
    find_user,
    set_password,
)

Prompt = Callable[[str], str]


def read_password(from_stdin: bool, prompt: Prompt | None = None) -> str:
    """The new password: one line of stdin, or typed twice at ``prompt`` (getpass)."""
    prompt = prompt or getpass.getpass
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    try:
        first = prompt("New password (at least 12 characters): ")
        second = prompt("The same password again: ")
    except (EOFError, KeyboardInterrupt) as exc:
        raise CliError("no password given") from exc
    if first != second:
        raise CliError("the two passwords are not the same; nothing was changed")
    return first


def cmd_admin_user(args: argparse.Namespace) -> int:
    action = args.user_action
    try:
        if action == "disable":
            with open_session(args) as session:
                user = disable_user(session, args.name)
            print(f"user {user.username!r} disabled: it can no longer log in and its "
                  "open sessions have ended")
            return 0
        name = check_username(args.name)
        with open_session(args) as session:  # check the name before asking for a password
            exists = find_user(session, name) is not None
        if exists and action == "create":
            raise UserError(f"user {name!r} already exists")
        if not exists and action == "password":
            raise UserError(f"no user called {name!r}")
        password = read_password(args.password_stdin)
        check_new_password(password)
        with open_session(args) as session:
            if action == "password":
                user = set_password(session, name, password)
                print(f"user {user.username!r} has a new password; its open sessions have "
                      "ended")
                return 0
            user = create_user(session, name, password)
    except UserError as exc:
        raise CliError(str(exc)) from exc
    print(f"user {user.username!r} created: log in at /login on the collector")
    return 0


def register(sub: Any) -> None:
    parser = command(sub, "admin-user", cmd_admin_user,
                     "create a web login account (an administrator), set its password, "
                     "or disable it")
    parser.add_argument("user_action", choices=["create", "password", "disable"])
    parser.add_argument("name", help="the user name")
    parser.add_argument("--password-stdin", action="store_true",
                        help="create, password: read the password from one line of "
                             "standard input "
                             "instead of asking twice")
