"""``classprobe collector notify add|list|test|disable``: a site's notification targets.

``add`` stores a webhook (signed with a secret: given, or made and printed once) or an
e-mail address, for some or all events; ``list`` shows each target with its outbox
(pending, delivered, given up, the last error); ``test`` sends a test event to a target
now and prints what happened (exit 1 when it was not delivered). ``collector.cli``'s
``build_parser`` calls :func:`register`.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlmodel import Session

from collector.cli_common import CliError, command, open_session, print_json, settings_of
from collector.models import NotifyTarget, Site, utcnow
from collector.services import notify
from collector.services import sites as site_service
from collector.services.delivery import new_client, outbox_counts, send


def cmd_add(args: argparse.Namespace) -> int:
    kind, address = ("webhook", args.webhook) if args.webhook else ("email", args.email)
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        target = notify.add_target(session, site, kind, address,
                                   notify.parse_events(args.events), args.secret, utcnow())
        made_secret = kind == "webhook" and args.secret is None
        shown = {"id": target.id, "site": args.site, "kind": kind, "address": address,
                 "events": list(notify.target_events(target))}
        secret = target.secret
    if args.json:
        print_json({**shown, **({"secret": secret} if made_secret else {})})
        return 0
    print(f"notification target {shown['id']} added to site {args.site!r}: {kind} "
          f"{address} for {', '.join(shown['events'])}")
    if made_secret:
        print("webhook secret (shown once; the receiver checks X-Classprobe-Signature "
              "with it):")
        print(secret)
    return 0


def _target_dict(session: Session, target: NotifyTarget) -> dict[str, Any]:
    assert target.id is not None
    counts = outbox_counts(session, target.id)
    return {"id": target.id, "kind": target.kind, "address": target.url_or_address,
            "events": list(notify.target_events(target)), "disabled": target.disabled,
            "created_at": target.created_at.isoformat(timespec="seconds"),
            "pending": counts.pending, "delivered": counts.delivered,
            "failed": counts.failed, "last_error": counts.last_error}


def cmd_list(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        rows = [_target_dict(session, t) for t in notify.targets_of(session, site)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"site {args.site!r} has no notification targets "
              "(add one with 'classprobe collector notify add')")
        return 0
    for r in rows:
        state = " (disabled)" if r["disabled"] else ""
        print(f"{r['id']}  {r['kind']:7}  {r['address']}{state}")
        print(f"    events: {', '.join(r['events'])}; pending {r['pending']}, delivered "
              f"{r['delivered']}, failed {r['failed']}")
        if r["last_error"]:
            print(f"    last error: {r['last_error']}")
    return 0


def _target(session: Session, target_id: int) -> tuple[NotifyTarget, Site]:
    target = session.get(NotifyTarget, target_id)
    site = session.get(Site, target.site_id) if target is not None else None
    if target is None or site is None:
        raise CliError(f"no notification target with id {target_id}")
    return target, site


def cmd_test(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with open_session(args) as session:
        target, site = _target(session, args.id)
        event = notify.trial_event(site, args.id, utcnow())
        with new_client() as client:
            outcome = send(settings, client, target, event.kind, event.payload)
    if outcome.delivered:
        print(f"test notification delivered to {target.kind} {target.url_or_address}: "
              f"{outcome.detail}")
        return 0
    print(f"test notification NOT delivered to {target.kind} {target.url_or_address}: "
          f"{outcome.detail}")
    return 1


def cmd_disable(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        target, _ = _target(session, args.id)
        target.disabled = True
        session.add(target)
        session.commit()
    print(f"notification target {args.id} disabled: it gets no new notifications and its "
          "pending ones are given up")
    return 0


def register(sub: Any) -> None:
    """Add ``notify add|list|test|disable`` to the ``collector`` subcommands ``sub``."""
    text = "webhook and e-mail notifications of a site (verdict changes, silent agents, flags)"
    parser: argparse.ArgumentParser = sub.add_parser("notify", help=text, description=text)
    actions = parser.add_subparsers(dest="notify_action", required=True)
    add = command(actions, "add", cmd_add, "send a site's events to a webhook or an address")
    add.add_argument("--site", required=True)
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--webhook", metavar="URL", help="http:// or https:// URL to POST to")
    where.add_argument("--email", metavar="ADDRESS")
    add.add_argument("--events", help="comma list of " + ",".join(notify.EVENTS)
                                      + " (default: all)")
    add.add_argument("--secret", help="webhook signing secret, at least 16 characters "
                                      "(default: a random one, printed once)")
    add.add_argument("--json", action="store_true")
    list_ = command(actions, "list", cmd_list, "list a site's targets and their outbox")
    list_.add_argument("--site", required=True)
    list_.add_argument("--json", action="store_true")
    test = command(actions, "test", cmd_test, "send a test notification to a target now")
    test.add_argument("id", type=int)
    disable = command(actions, "disable", cmd_disable, "stop sending to a target")
    disable.add_argument("id", type=int)
