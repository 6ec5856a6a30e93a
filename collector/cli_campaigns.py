"""Campaign commands: ``classprobe campaign create|list`` and ``classprobe compare``.

- ``campaign create --site S --name C --profile P [--profile P2] --from ISO --to ISO
  [--note TEXT] [--json]``: the window is ``[from, to)``; times need their UTC offset;
- ``campaign list --site S [--json]``;
- ``compare --site S --profile P --before C1 --after C2 [--format text|json]
  [--resamples N] [--seed N]``: per requirement, the change from C1 to C2 with its 95 %
  bootstrap interval, the Mann-Whitney p-value and better / worse / no significant
  change / unknown (see :mod:`collector.services.compare`).

``collector.cli``'s ``build_parser`` calls :func:`register` with its top-level commands.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlmodel import Session

from collector.cli_common import CliError, command, open_session, print_json
from collector.models import Campaign
from collector.services import sites as site_service
from collector.services.campaigns import (
    CampaignError,
    campaign_dict,
    campaign_profiles,
    compare_campaigns,
    create_campaign,
    list_campaigns,
)
from collector.services.compare import (
    CONFIDENCE_PCT,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Comparison,
    comparison_dict,
)
from collector.services.profiles import Profile, ProfileError, profile_registry


def _profiles(session: Session) -> dict[str, Profile]:
    try:
        return profile_registry(session)
    except ProfileError as exc:
        raise CliError(str(exc)) from exc


def _time(option: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{option} {text!r} is not an ISO 8601 time "
                       "(like 2026-09-07T08:00:00+01:00)") from exc


def cmd_create(args: argparse.Namespace) -> int:
    start, end = _time("--from", args.start), _time("--to", args.end)
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        try:
            campaign = create_campaign(session, site, args.name, args.profile, start, end,
                                       _profiles(session), args.note)
        except CampaignError as exc:
            raise CliError(str(exc)) from exc
        data = campaign_dict(campaign, site.name)
    if args.json:
        print_json(data)
    else:
        print(f"campaign {args.name!r} of site {args.site!r} created: "
              f"{data['start_at']} .. {data['end_at']}, profiles {', '.join(data['profiles'])}")
    return 0


def _campaign_line(c: Campaign) -> str:
    return (f"{c.name:24}  {c.start_at.isoformat(timespec='seconds'):25}  "
            f"{c.end_at.isoformat(timespec='seconds'):25}  "
            f"{', '.join(campaign_profiles(c)):30}  {c.note or '-'}")


def cmd_list(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        campaigns = list_campaigns(session, site)
        data = [campaign_dict(c, site.name) for c in campaigns]
    if args.json:
        print_json(data)
        return 0
    if not campaigns:
        print(f"site {args.site!r} has no campaigns yet")
        return 0
    print(f"{'campaign':24}  {'from (UTC)':25}  {'to (UTC)':25}  {'profiles':30}  note")
    for c in campaigns:
        print(_campaign_line(c))
    return 0


def _value(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.4g} {unit}"


def comparison_text(comparison: Comparison) -> str:
    """A readable per-requirement table of a comparison."""
    p = comparison.profile
    lines = [f"{p.title} ({p.id}): {comparison.before!r} (before) → {comparison.after!r} "
             "(after)",
             f"  {comparison.resamples} bootstrap resamples (seed {comparison.seed}), "
             f"{CONFIDENCE_PCT:g} % intervals; Mann-Whitney U, two-sided"]
    for c in comparison.changes:
        req = c.requirement
        lines += ["", f"  [{c.verdict.upper():22}] {req.id} ({req.severity}): {req.title}",
                  f"    {c.quantity}: before {_value(c.before.value, c.unit)} "
                  f"({c.before.samples} samples, {c.before.devices} device(s)), after "
                  f"{_value(c.after.value, c.unit)} ({c.after.samples} samples, "
                  f"{c.after.devices} device(s))",
                  f"    {c.reason}"]
    summary = comparison_dict(comparison)["summary"]
    lines += ["", "summary: " + ", ".join(f"{n} {verdict}" for verdict, n in summary.items())]
    lines += [f"note: {n}" for n in comparison.notes]
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    if args.resamples < 1:
        raise CliError(f"--resamples {args.resamples} must be at least 1")
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        try:
            comparison = compare_campaigns(session, site, _profiles(session), args.profile,
                                           args.before, args.after, resamples=args.resamples,
                                           seed=args.seed)
        except CampaignError as exc:
            raise CliError(str(exc)) from exc
    if args.format == "json":
        print_json(comparison_dict(comparison))
    else:
        print(comparison_text(comparison))
    return 0


def register(commands: Any) -> None:
    campaign = commands.add_parser("campaign", help="named assessments of a site",
                                   description="named assessments of a site: profiles and "
                                               "a time window")
    sub = campaign.add_subparsers(dest="action", required=True)
    create = command(sub, "create", cmd_create, "create a campaign")
    create.add_argument("--site", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--profile", action="append", required=True,
                        help="a profile id the campaign assesses (repeat for more)")
    create.add_argument("--from", dest="start", required=True, metavar="ISO",
                        help="window start, with its UTC offset")
    create.add_argument("--to", dest="end", required=True, metavar="ISO",
                        help="window end (not included), with its UTC offset")
    create.add_argument("--note", default="")
    create.add_argument("--json", action="store_true")
    listing = command(sub, "list", cmd_list, "list a site's campaigns")
    listing.add_argument("--site", required=True)
    listing.add_argument("--json", action="store_true")

    compare = command(commands, "compare", cmd_compare,
                      "compare a re-test campaign with an earlier one, per requirement")
    compare.add_argument("--site", required=True)
    compare.add_argument("--profile", required=True)
    compare.add_argument("--before", required=True, metavar="CAMPAIGN")
    compare.add_argument("--after", required=True, metavar="CAMPAIGN")
    compare.add_argument("--format", choices=["text", "json"], default="text")
    compare.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                         help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    compare.add_argument("--seed", type=int, default=DEFAULT_SEED,
                         help="random seed of the bootstrap (same data, same seed, same answer)")
