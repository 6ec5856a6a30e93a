"""Share links and signed reports on the command line.

- ``collector share create --site S --profile P [--campaign C] [--days 14]
  [--base-url URL] [--json]``: make a link and print its address (shown once);
- ``collector share list --site S [--json]``; ``collector share revoke ID``;
- ``collector signing-key [--json]``: the public key that signs reports (PEM);
- ``report verify FILE [--public-key PEM_FILE]``: exit 0 and "valid, signed by key <id>
  at <time>", or exit 1 naming what failed. It needs no database: :func:`verify_main`
  is called by ``collector.cli.main`` for argv ``report verify ...``, so ``report --site
  S`` keeps its meaning.

``collector.cli``'s ``build_parser`` calls :func:`register` with the ``collector``
subcommands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from collector.cli_common import CliError, command, open_session, print_json, settings_of
from collector.models import utcnow
from collector.services import sites as site_service
from collector.services.campaigns import CampaignError
from collector.services.profiles import ProfileError
from collector.services.share import (
    DEFAULT_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    create_share,
    list_shares,
    revoke_share,
    share_dict,
    share_path,
    share_url,
)


def cmd_create(args: argparse.Namespace) -> int:
    base = args.base_url or settings_of(args).public_url
    with open_session(args) as session:
        try:
            link, token = create_share(session, args.site, args.profile, args.campaign,
                                       args.days, "cli", utcnow())
        except (CampaignError, ProfileError) as exc:
            raise CliError(str(exc)) from exc
        data = share_dict(session, link, utcnow())
    address = share_url(base, token) if base else share_path(token)
    if not base:
        print("no --base-url and no CLASSPROBE_PUBLIC_URL: put the collector's address "
              "in front of the path", file=sys.stderr)
    if args.json:
        print_json({**data, "url": address})
        return 0
    print(address)
    scope = f"profile {args.profile!r}" + (f", campaign {args.campaign!r}"
                                            if args.campaign else "")
    print(f"share link {data['id']} of site {args.site!r} ({scope}) valid until "
          f"{data['expires_at']}; the address is shown only now", file=sys.stderr)
    return 0


def _line(d: dict[str, Any]) -> str:
    return (f"{d['id']:>5}  {d['profile']:28}  {d['campaign'] or '-':16}  "
            f"{d['created_at'][:19]:19}  {d['expires_at'][:19]:19}  {d['state']:8}  "
            f"{d['created_by'] or '-'}")


def cmd_list(args: argparse.Namespace) -> int:
    now = utcnow()
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        data = [share_dict(session, link, now) for link in list_shares(session, site)]
    if args.json:
        print_json(data)
        return 0
    if not data:
        print(f"site {args.site!r} has no share links")
        return 0
    print(f"{'id':>5}  {'profile':28}  {'campaign':16}  {'created (UTC)':19}  "
          f"{'expires (UTC)':19}  {'state':8}  by")
    for d in data:
        print(_line(d))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        link = revoke_share(session, args.link_id)
    print(f"share link {link.id} revoked: it no longer opens")
    return 0


def cmd_signing_key(args: argparse.Namespace) -> int:
    from collector.db import init_db, make_engine
    from collector.services.signing import key_id, public_key_pem, signing_key

    engine = make_engine(settings_of(args).resolved_database_url())
    init_db(engine)
    key = signing_key(engine)
    if args.json:
        print_json({"alg": "Ed25519", "key_id": key_id(key), "public_key_pem": public_key_pem(key)})
    else:
        sys.stdout.write(public_key_pem(key))
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{days} is out of range ({MIN_DAYS} to {MAX_DAYS})")
    return days


def register(sub: Any) -> None:
    share = sub.add_parser("share", help="read-only report links for suppliers",
                           description="read-only, expiring, revocable links to one site's "
                                       "report on one profile (and campaign)")
    actions = share.add_subparsers(dest="share_action", required=True)
    create = command(actions, "create", cmd_create, "make a share link and print it")
    create.add_argument("--site", required=True)
    create.add_argument("--profile", required=True, help="the one profile the link shows")
    create.add_argument("--campaign", help="limit the link to this campaign's window")
    create.add_argument("--days", type=_days, default=DEFAULT_DAYS,
                        help=f"how long the link works ({MIN_DAYS} to {MAX_DAYS}; default "
                             f"{DEFAULT_DAYS})")
    create.add_argument("--base-url", help="the collector's address as the supplier reaches "
                                           "it (default CLASSPROBE_PUBLIC_URL)")
    create.add_argument("--json", action="store_true")
    listing = command(actions, "list", cmd_list, "list a site's share links")
    listing.add_argument("--site", required=True)
    listing.add_argument("--json", action="store_true")
    revoke = command(actions, "revoke", cmd_revoke, "revoke a share link at once")
    revoke.add_argument("link_id", type=int, metavar="ID")
    key = command(sub, "signing-key", cmd_signing_key,
                  "print the public key that signs reports (PEM)")
    key.add_argument("--json", action="store_true")


# --- report verify (no database) -------------------------------------------------------

def verify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classprobe report verify",
        description="check a signed report (the JSON of a share link or of "
                    "/sites/SITE/report.json): unchanged since it was signed, and with "
                    "--public-key, signed by that collector")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--public-key", metavar="PEM_FILE",
                        help="the collector's public key (GET /api/v1/signing-key?format=pem "
                             "or 'classprobe collector signing-key')")
    return parser


def verify_main(argv: list[str]) -> int:
    """``classprobe report verify FILE [--public-key PEM_FILE]`` (argv after ``verify``)."""
    from collector.services.signing import load_public_pem, verify_bytes

    args = verify_parser().parse_args(argv)
    try:
        data = Path(args.file).read_bytes()
        expected = None
        if args.public_key:
            try:
                expected = load_public_pem(Path(args.public_key).read_bytes())
            except ValueError as exc:
                raise CliError(f"public key file {args.public_key!r}: {exc}") from exc
    except OSError as exc:
        print(f"classprobe report verify: cannot read {exc.filename!r}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"classprobe report verify: {exc}", file=sys.stderr)
        return 1
    result = verify_bytes(data, expected)
    if not result.valid:
        print(f"classprobe report verify: {args.file}: {result.message}", file=sys.stderr)
        return 1
    print(result.message)
    if expected is None:
        print("note: the key was not checked against the collector's; give --public-key "
              "to prove who signed it", file=sys.stderr)
    return 0
