"""The collector's command line: ``collector serve|create-site|new-token|revoke-agent|agents``,
``report`` and ``export``. ``main(argv)`` gets argv with the command word first, as
:mod:`classprobe.cli` passes it (``["report", "--site", "X"]``).

The database is ``--db URL``, else ``CLASSPROBE_DATABASE_URL``, else ``classprobe.db``
in ``--data-dir`` (default ``CLASSPROBE_DATA_DIR`` or ``./classprobe-data``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from collector import (
    cli_campaigns,
    cli_migrate,
    cli_notify,
    cli_profiles,
    cli_rooms,
    cli_share,
    cli_timetable,
    cli_users,
)
from collector.cli_common import CliError, command, open_session, print_json, settings_of
from collector.models import utcnow
from collector.services import sites as site_service
from collector.services.campaigns import CampaignError
from collector.services.export import to_csv, to_json_list
from collector.services.fleet import fleet_dict, fleet_of
from collector.services.profiles import ProfileError
from collector.services.queries import measurement_rows
from collector.services.report_formats import report_csv, report_text
from collector.services.site_report import SiteReport, readiness_report, report_dict


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from collector.app import serving_app

    settings = settings_of(args)
    app = serving_app(settings)
    print(f"classprobe collector on http://{args.host}:{args.port}/ "
          f"(database {settings.resolved_database_url()})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_create_site(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        token = site_service.create_site(session, args.name)
    _print_token(args, token, "created")
    return 0


def cmd_new_token(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        token = site_service.rotate_token(session, args.name)
    _print_token(args, token, "has a new enrolment token (the old one no longer works)")
    return 0


def _print_token(args: argparse.Namespace, token: str, what: str) -> None:
    if args.json:
        print_json({"site": args.name, "token": token})
        return
    print(f"site {args.name!r} {what}; enrolment token (shown once, keep it safe):")
    print(token)


def cmd_revoke_agent(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        agent = site_service.revoke_agent(session, args.agent_id)
    print(f"agent {agent.id} revoked: its uploads are refused from now on")
    return 0


def cmd_admin_key(args: argparse.Namespace) -> int:
    from collector.services.admin import create_admin_key, revoke_admin_key

    with open_session(args) as session:
        if args.admin_action == "revoke":
            n = revoke_admin_key(session, args.name)
            if n == 0:
                raise CliError(f"no active admin key called {args.name!r}")
            print(f"revoked {n} admin key(s) called {args.name!r}")
            return 0
        try:
            key = create_admin_key(session, args.name)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        print_json({"name": args.name, "key": key})
    else:
        print(f"admin key {args.name!r} created (shown once; send it as "
              f"'Authorization: Bearer <key>'):\n{key}")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        fleet = fleet_of(session, site_service.get_site(session, args.site), utcnow())
    if args.json:
        print_json([{**a, "revoked": a["state"] == "revoked"}
                     for a in fleet_dict(fleet)["agents"]])
        return 0
    print(f"{'agent':36}  {'room':20}  {'version':10}  {'last seen':25}  {'state':8}  warnings")
    for a in fleet.agents:
        seen = a.last_seen.isoformat(timespec="seconds") if a.last_seen else "never"
        print(f"{a.agent_id:36}  {a.room:20}  {a.agent_version:10}  {seen:25}  {a.state:8}  "
              f"{'; '.join(a.warnings) or '-'}")
    return 0


def _report_text(report: SiteReport) -> str:
    """The terminal report (:func:`collector.services.report_formats.report_text`)."""
    return report_text(report)


def cmd_report(args: argparse.Namespace) -> int:
    from collector.services.report_provenance import provenance_for

    with open_session(args) as session:
        try:
            report = readiness_report(session, args.site, args.profile, args.campaign,
                                      utcnow())
        except (CampaignError, ProfileError) as exc:
            raise CliError(str(exc)) from exc
        provenance = provenance_for(session, report) if args.format == "html" else None
    if args.format == "json":
        print_json(report_dict(report))
    elif args.format == "html":
        from collector.render import render_site_report

        print(render_site_report(report, provenance))
    elif args.format == "csv":
        sys.stdout.write(report_csv(report))
    else:
        print(_report_text(report))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        rows = measurement_rows(session, site_service.get_site(session, args.site))
    if args.format == "json":
        print_json(to_json_list(rows))
    else:
        sys.stdout.write(to_csv(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="classprobe")
    commands = top.add_subparsers(dest="command", required=True)
    collector = commands.add_parser("collector", help="run and administer the collector")
    sub = collector.add_subparsers(dest="action", required=True)

    serve = command(sub, "serve", cmd_serve, "run the collector web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    for name, handler, text in (
        ("create-site", cmd_create_site, "create a site and print its enrolment token"),
        ("new-token", cmd_new_token, "replace a site's enrolment token"),
    ):
        p = command(sub, name, handler, text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true", help="print {site, token} as JSON")
    revoke = command(sub, "revoke-agent", cmd_revoke_agent, "refuse an agent's uploads")
    revoke.add_argument("agent_id")
    admin = command(sub, "admin-key", cmd_admin_key,
                     "create or revoke an administrator API key")
    admin.add_argument("admin_action", choices=["create", "revoke"])
    admin.add_argument("name", help="who or what the key is for")
    admin.add_argument("--json", action="store_true", help="print {name, key} as JSON")
    agents = command(sub, "agents", cmd_agents, "list a site's agents")
    agents.add_argument("--site", required=True)
    agents.add_argument("--json", action="store_true")
    cli_timetable.register(sub)
    cli_rooms.register(sub)
    cli_users.register(sub)
    cli_notify.register(sub)
    cli_share.register(sub)
    cli_migrate.register(sub)
    cli_profiles.register(commands)
    cli_campaigns.register(commands)

    report = command(commands, "report", cmd_report, "print a site's readiness verdicts")
    report.add_argument("--site", required=True)
    report.add_argument("--profile", help="one profile id (default: every profile, or the "
                                          "campaign's)")
    report.add_argument("--campaign", help="only this campaign's window and profiles")
    report.add_argument("--format", choices=["text", "json", "html", "csv"], default="text")
    export = command(commands, "export", cmd_export, "print a site's raw measurements")
    export.add_argument("--site", required=True)
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["report", "verify"]:  # needs no database; `report --site S` is unchanged
        return cli_share.verify_main(argv[2:])
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (site_service.SiteError, CliError) as exc:
        print(f"classprobe {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
