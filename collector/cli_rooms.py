"""Room commands of ``classprobe collector``: coordinated room tests and teacher flags.

- ``room-test --site S --room R [--in SECONDS | --at ISO] [--seconds 20] [--upload]
  [--streams 4] [--url URL] [--upload-url URL] [--json]``
- ``room-test-result JOB_ID [--json]``
- ``room-link --site S --room R [--base-url URL] [--qr FILE.svg]``
- ``flags --site S [--json]``

``collector.cli``'s ``build_parser`` calls :func:`register`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector.cli_common import CliError, command, open_session, print_json, settings_of
from collector.models import utcnow
from collector.services import flags as flag_service
from collector.services import room_tests as room_service
from collector.services import sites as site_service
from collector.services.room_test_aggregate import RoomTestResult, result_dict

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _start(args: argparse.Namespace, now: datetime) -> datetime:
    if args.at is None:
        return now + timedelta(seconds=args.start_in)
    try:
        return datetime.fromisoformat(args.at)
    except ValueError as exc:
        raise CliError(f"--at {args.at!r} is not an ISO 8601 time "
                            "(like 2026-09-07T09:05:00+01:00)") from exc


def cmd_room_test(args: argparse.Namespace) -> int:
    now = utcnow()
    directions = ["download", "upload"] if args.upload else ["download"]
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        job = room_service.create_room_test(
            session, site, args.room, _start(args, now), args.seconds, directions,
            args.streams, args.url, args.upload_url, now)
        data = room_service.job_dict(job, site.name, args.room)
    if args.json:
        print_json(data)
        return 0
    wait = (job.start_at - now).total_seconds()
    print(f"room test {job.id} for room {args.room!r} of site {site.name!r}:")
    print(f"  {' and '.join(directions)} for {job.duration_s:g} s with {job.streams} "
          f"stream(s) per device, at {job.start_at.isoformat(timespec='seconds')} "
          f"(in {max(wait, 0):.0f} s)")
    expected = data["expected_agents"]
    print(f"  waiting for {len(expected)} live agent(s): {', '.join(expected)}")
    print(f"  result: classprobe collector room-test-result {job.id}")
    return 0


def _num(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def result_text(r: RoomTestResult) -> str:
    """A readable table of a room test result."""
    job = r.job
    lines = [f"room test {job.job_id} in room {job.room!r} (site {job.site!r}): "
             f"{r.status.upper()}",
             f"  start {job.start_at.isoformat(timespec='seconds')}, {job.duration_s:g} s, "
             f"{'+'.join(job.directions)}; agents expected {len(job.expected_agents)}, "
             f"reported {len(r.reported_agents)}"]
    if r.window_start and r.window_end:
        lines.append(f"  window {r.window_start.isoformat(timespec='seconds')} .. "
                     f"{r.window_end.isoformat(timespec='seconds')}, worst start skew "
                     f"{r.start_skew_s:.3f} s (collector clock)")
    lines += ["", f"{'device':36}  {'direction':9}  {'Mbps':>9}  {'share':>7}  "
                  f"{'loaded p50 ms':>13}  {'loaded max ms':>13}"]
    for d in r.devices:
        lines.append(f"{d.agent_id:36}  {d.direction:9}  {d.mbps:9.3f}  {d.share_pct:5.1f} %  "
                     f"{_num(d.loaded_latency_p50_ms, 13)}  {_num(d.loaded_latency_max_ms, 13)}")
    if not r.devices:
        lines.append("  (no device measured anything yet)")
    lines.append("")
    for t in r.totals:
        total = "not measured" if t.total_mbps is None else f"{t.total_mbps:.3f} Mbps"
        lines.append(f"room total {t.direction}: {total} from {t.devices} device(s); loaded "
                     f"latency p50 {_num(t.loaded_latency_p50_ms, 0)} ms, "
                     f"max {_num(t.loaded_latency_max_ms, 0)} ms")
    if r.failures:
        lines += ["", "failures:"]
        lines += [f"  {f.agent_id}  {f.direction or '-':9}  {f.status}: {f.reason}"
                  for f in r.failures]
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def cmd_room_test_result(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        result = room_service.room_test_result(session, args.job_id, utcnow())
    if args.json:
        print_json(result_dict(result))
    else:
        print(result_text(result))
    return 0


def cmd_room_link(args: argparse.Namespace) -> int:
    configured = args.base_url or settings_of(args).public_url
    base_url = configured or DEFAULT_BASE_URL
    with open_session(args) as session:
        site = site_service.get_site(session, args.site)
        url = flag_service.room_link(session, site, args.room, base_url)
    if not configured:
        print(f"note: the link uses {DEFAULT_BASE_URL}; pass --base-url (or set "
              "CLASSPROBE_PUBLIC_URL) to the address that phones and PCs in the room can reach",
              file=sys.stderr)
    if args.qr:
        path = Path(args.qr)
        try:
            path.write_bytes(flag_service.qr_svg(url, f"Report a problem in {args.room} "
                                                      f"({args.site})"))
        except OSError as exc:
            raise CliError(f"cannot write QR code to {str(path)!r}: {exc}") from exc
        print(f"QR code written to {path}", file=sys.stderr)
    print(url)
    return 0


def cmd_flags(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        flags = flag_service.list_flags(session, site_service.get_site(session, args.site))
    if args.json:
        print_json([{"flag_id": f.flag_id, "room": f.room,
                           "created_at": f.created_at.isoformat(), "source": f.source,
                           "note": f.note, "burst_job_id": f.burst_job_id} for f in flags])
        return 0
    if not flags:
        print(f"no problems flagged in site {args.site!r}")
        return 0
    print(f"{'flagged at (UTC)':20}  {'room':20}  {'source':6}  {'burst job':36}  note")
    for f in flags:
        print(f"{f.created_at:%Y-%m-%d %H:%M:%S}   {f.room:20}  {f.source:6}  "
              f"{f.burst_job_id or '-':36}  {f.note or '-'}")
    return 0


def register(sub: Any) -> None:
    test = command(sub, "room-test", cmd_room_test,
                   "schedule a coordinated room test (every live agent of the room at once)")
    test.add_argument("--site", required=True)
    test.add_argument("--room", required=True)
    when = test.add_mutually_exclusive_group()
    when.add_argument("--in", dest="start_in", type=float, default=90.0, metavar="SECONDS",
                      help="start this many seconds from now (default 90: agents poll every 60 s)")
    when.add_argument("--at", metavar="ISO", help="start at this time (with its UTC offset)")
    test.add_argument("--seconds", type=float, default=20.0, help="duration, 5..300 (default 20)")
    test.add_argument("--upload", action="store_true", help="test upload after download")
    test.add_argument("--streams", type=int, default=4, help="streams per device, 1..16")
    test.add_argument("--url", help="download URL (default: the collector's /speed/download)")
    test.add_argument("--upload-url", help="upload URL (default: the collector's /speed/upload)")
    test.add_argument("--json", action="store_true")

    result = command(sub, "room-test-result", cmd_room_test_result,
                     "show a room test's totals, shares, loaded latency and failures")
    result.add_argument("job_id")
    result.add_argument("--json", action="store_true")

    link = command(sub, "room-link", cmd_room_link,
                   "print a room's no-login report-a-problem link (and its QR code)")
    link.add_argument("--site", required=True)
    link.add_argument("--room", required=True)
    link.add_argument("--base-url", help="the collector's address (default: CLASSPROBE_PUBLIC_URL, "
                                         f"else {DEFAULT_BASE_URL})")
    link.add_argument("--qr", metavar="FILE.svg", help="also write the link's QR code here")

    flags = command(sub, "flags", cmd_flags, "list the problems flagged in a site's rooms")
    flags.add_argument("--site", required=True)
    flags.add_argument("--json", action="store_true")
