"""``classprobe agent ...``, ``classprobe probe ...`` and ``classprobe flag``.

``main(argv)`` takes the command word first (``["agent", "once", "--json"]``). Importing
this module loads no HTTP client, psutil, scapy or collector code: each command imports
what it needs when it runs (``agent run`` stays small: see :mod:`agent.service`).

Exit codes: 0 done (``agent once`` also when the collector is down: the report stays
spooled); 1 a probe command measured a failure, the spool cannot be written, or ``flag``
could not send the flag (its burst is still spooled); 2 usage, configuration or
enrolment error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import AgentConfig, ConfigError, default_config_path, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser(probe_details: bool = True) -> argparse.ArgumentParser:
    """The parser; without ``probe_details`` the path/device/wifi probe commands (which
    import the probe modules to describe their options) are left out."""
    parser = argparse.ArgumentParser(prog="classprobe", description="classprobe agent")
    top = parser.add_subparsers(dest="command", required=True)

    agent = top.add_parser("agent", help="the classroom agent").add_subparsers(
        dest="action", required=True)
    enroll = agent.add_parser("enroll", help="enrol with a collector and save the config")
    enroll.add_argument("--collector", required=True, help="collector base URL")
    enroll.add_argument("--token", required=True, help="the site's enrolment token")
    enroll.add_argument("--room", required=True, help="the room this PC is in")
    enroll.add_argument("--ca-bundle", default=None, help="PEM roots to trust for the collector")
    enroll.add_argument("--json", action="store_true")
    once = agent.add_parser("once", help="measure once, spool the report, upload")
    once.add_argument("--json", action="store_true")
    run = agent.add_parser("run", help="the agent service: measure on the lesson-aware "
                           "cadence, run room tests and bursts, until stopped")
    run.add_argument("--cycles", type=int, default=None,
                     help="stop after N measurement runs")
    flag = top.add_parser("flag", help="report a problem in this room now: the collector "
                          "stores it and this PC measures at once")
    flag.add_argument("--note", default="", help="what went wrong (optional)")
    flag.add_argument("--json", action="store_true")
    from agent.install.cli import add_install_arguments

    add_install_arguments(agent)
    for sub in (enroll, once, run, flag):
        sub.add_argument("--config", type=Path, default=None,
                         help="config file (default $CLASSPROBE_AGENT_CONFIG or "
                              "~/.config/classprobe/agent.toml)")

    probe = top.add_parser("probe", help="run one probe by hand").add_subparsers(
        dest="action", required=True)
    lat = probe.add_parser("latency", help="DNS, TCP, TLS, HTTP TTFB and ICMP to targets")
    lat.add_argument("targets", nargs="+", metavar="TARGET", help="URL or host[:port]")
    lat.add_argument("--count", type=int, default=5, help="samples per phase")
    lat.add_argument("--timeout", type=float, default=5.0, help="seconds per sample")
    lat.add_argument("--ca-bundle", default="", help="PEM roots to trust for TLS")
    lat.add_argument("--no-icmp", action="store_true", help="skip ICMP echo")
    lat.add_argument("--interval", type=float, default=0.1,
                     help="seconds between ICMP echo requests (default 0.1)")
    lat.add_argument("--json", action="store_true")
    bw = probe.add_parser("bandwidth", help="multi-stream HTTP download/upload goodput")
    where = bw.add_mutually_exclusive_group()
    where.add_argument("--collector", help="collector base URL (its /speed/ endpoints; "
                       "/speedtest/ with --backend speedtest)")
    where.add_argument("--url", help="any URL serving a large body (download); with "
                       "--backend speedtest a speedtest-mini URL")
    bw.add_argument("--backend", choices=["http", "speedtest"], default="http",
                    help="http (default) or speedtest-cli; speedtest without --collector/--url "
                         "runs the public speedtest.net test")
    bw.add_argument("--upload-url", help="URL to POST to (upload; http backend)")
    bw.add_argument("--seconds", type=float, default=8.0, help="time cap per direction")
    bw.add_argument("--streams", type=int, default=None,
                    help="parallel streams (http: 4; speedtest: 2, or speedtest.net's)")
    bw.add_argument("--max-bytes", type=int, default=None,
                    help="byte cap per direction (http backend; default 500000000)")
    bw.add_argument("--ca-bundle", default="", help="PEM roots to trust for TLS (http backend)")
    bw.add_argument("--json", action="store_true")
    if not probe_details:
        return parser
    from agent.probes.device import add_device_arguments
    from agent.probes.path import add_path_arguments
    from agent.probes.wifi import add_wifi_arguments

    add_path_arguments(probe.add_parser(
        "path", help="TLS interception, blocking, WebSocket hold, UDP (STUN), proxy, hops"))
    add_device_arguments(probe.add_parser(
        "device", help="CPU, memory, disk, OS and support status, battery, screens, browsers"))
    add_wifi_arguments(probe.add_parser(
        "wifi", help="Wi-Fi link, BSS Load, visible APs, channel busy, or a --pcap file"))
    return parser


def _positive(parser: argparse.ArgumentParser, **values: float | None) -> None:
    for name, v in values.items():
        if v is not None and v <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {v:g}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(probe_details=argv[:1] != ["agent"] and argv[:1] != ["flag"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "probe":
            return _probe(parser, args)
        if args.command == "flag":
            return _flag(args)
        return {"enroll": _enroll, "once": _once, "run": _run, "install": _install,
                "uninstall": _install}[args.action](args)
    except ConfigError as exc:
        print(f"classprobe: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _config(args: argparse.Namespace) -> tuple[Path, AgentConfig]:
    path = args.config or default_config_path()
    return path, load_config(path)


def _enrolled_config(args: argparse.Namespace) -> tuple[Path, AgentConfig] | None:
    path, cfg = _config(args)
    if not cfg.enrolled:
        print(f"classprobe: {path} has no enrolment; run `classprobe agent enroll "
              "--collector URL --token T --room R` first", file=sys.stderr)
        return None
    return path, cfg


def _enroll(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from agent.config import save_config
    from agent.cycle import collector_client
    from agent.enrol import EnrolError, enrol

    path, cfg = _config(args)
    cfg = replace(cfg, collector_url=args.collector.rstrip("/"))
    if args.ca_bundle is not None:
        cfg = replace(cfg, ca_bundle=args.ca_bundle)
    try:
        with collector_client(cfg) as client:
            answer = enrol(client, args.token, args.room, __version__)
    except EnrolError as exc:
        print(f"classprobe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cfg = replace(cfg, agent_id=answer.agent_id, credential=answer.credential,
                  site=answer.site, room=answer.room,
                  site_salt=answer.site_salt or cfg.site_salt)
    save_config(path, cfg)
    if args.json:
        print(json.dumps({"agent_id": answer.agent_id, "site": answer.site,
                          "room": answer.room, "config": str(path)}))
    else:
        print(f"enrolled: agent {answer.agent_id} in site {answer.site!r}, room "
              f"{answer.room!r}\nconfig saved to {path} (it holds the credential, mode 0600)")
    return EXIT_OK


def _open_spool(path: Path, cfg: AgentConfig) -> Any:
    from agent.config import spool_path
    from agent.spool import Spool

    return Spool(spool_path(cfg, path), cfg.spool_max_reports, cfg.spool_max_bytes)


def _once(args: argparse.Namespace) -> int:
    from agent.cycle import collector_client, probe_and_spool
    from agent.render import results_text
    from agent.uploader import Uploader
    from agent.wire import to_jsonable

    found = _enrolled_config(args)
    if found is None:
        return EXIT_USAGE
    path, cfg = found
    spool = _open_spool(path, cfg)
    try:
        report = probe_and_spool(cfg, spool)
    except OSError as exc:
        print(f"classprobe: cannot write the report to the spool {spool.root}: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    assert report is not None  # no stop can be requested here
    with collector_client(cfg) as client:
        outcome = Uploader(client, spool, cfg.credential, cfg.upload_batch).drain()
    if args.json:
        print(json.dumps({"report": to_jsonable(report), "upload": {
            "ok": outcome.ok, "error": outcome.error, "accepted": outcome.accepted,
            "duplicates": outcome.duplicates, "quarantined": outcome.quarantined,
            "pending": outcome.pending, "notes": outcome.notes},
            "spool": str(spool.root)}, indent=2))
        return EXIT_OK
    print(results_text(report.results))
    print(f"\nreport {report.report_id}: {len(report.results)} results, spooled in {spool.root}")
    if outcome.ok:
        print(f"uploaded to {cfg.collector_url}: {outcome.accepted} accepted, "
              f"{outcome.duplicates} already there; {outcome.pending} still pending")
    else:
        print(f"not uploaded: {outcome.error}\n{outcome.pending} report(s) stay spooled and "
              "will be sent by the next `agent once` or `agent run`")
    for note in outcome.notes:
        print(f"note: {note}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from agent.service import Supervisor

    found = _enrolled_config(args)
    if found is None:
        return EXIT_USAGE
    path, cfg = found
    if args.cycles is not None and args.cycles < 1:
        print(f"classprobe: --cycles must be at least 1, got {args.cycles}", file=sys.stderr)
        return EXIT_USAGE
    from agent.install.logs import configure_logging, log_dir_for

    log_file = configure_logging(log_dir_for(path), os.environ)
    if log_file is not None:
        logging.info("agent %s logging to %s", __version__, log_file)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logging.info("signal %d: stopping after the current run", signum)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)  # a second signal stops at once

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor = Supervisor(path, wait=stop.wait, stopped=stop.is_set,
                                max_runs=args.cycles)
        runs = supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logging.info("agent stopped after %d run(s); spool %s", runs, supervisor.spool_root)
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    from agent.install.cli import run_install_cli

    return run_install_cli(args)


def _hand_flag_to_service(args: argparse.Namespace) -> int | None:
    """No usable config of one's own (a teacher's account): leave the flag in the
    service's inbox. None: there is no service inbox here either."""
    from agent.flag_inbox import hand_to_service

    inbox, error = hand_to_service(args.note)
    if inbox is None:
        return None
    if error is not None:
        print(f"classprobe flag: cannot leave the flag for the classprobe service in "
              f"{inbox}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"handed_to_service": str(inbox)}) if args.json else
          "flag handed to the classprobe service on this PC: it reports the problem and "
          "measures the network within a few seconds")
    return EXIT_OK


def _flag(args: argparse.Namespace) -> int:
    from agent.flag import raise_flag
    from agent.wire import FlagResponse

    if args.config is None:
        handed = _hand_flag_to_service(args)
        if handed is not None:
            return handed
    found = _enrolled_config(args)
    if found is None:
        return EXIT_USAGE
    path, cfg = found

    def tell(response: FlagResponse | None, error: str | None) -> None:
        if args.json:
            return
        if response is not None:
            print(f"flag {response.flag_id} raised for room {cfg.room!r}: the room's "
                  "agents measure now", flush=True)
        else:
            print(f"classprobe flag: the flag could not be sent: {error}", file=sys.stderr,
                  flush=True)
        print("measuring this PC's network now (this can take a minute)...", flush=True)

    try:
        outcome = raise_flag(cfg, path, args.note, on_sent=tell)
    except OSError as exc:
        print(f"classprobe flag: cannot write the burst report to the spool: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    code = EXIT_OK if outcome.error is None else EXIT_FAILED
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
        return code
    report, up = outcome.summary.report, outcome.summary.upload
    if report is not None:
        statuses = ", ".join(f"{r.probe} {r.status}" for r in report.results)
        print(f"measured here: report {report.report_id} ({statuses})")
    if up is not None and up.ok:
        print(f"uploaded to {cfg.collector_url}")
    else:
        why = up.error if up is not None else "no upload"
        print(f"not uploaded ({why}): the report stays spooled and is sent later"
              + ("; it records that the flag was not sent" if outcome.error else ""))
    return code


def _probe(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from agent.render import results_text
    from agent.wire import to_jsonable

    if args.action == "device":
        from agent.probes.device import run_device_cli

        return run_device_cli(args)
    if args.action == "wifi":
        from agent.probes.wifi import run_wifi_cli

        return run_wifi_cli(args)
    if args.action == "path":
        from agent.probes.path import run_path_cli

        return run_path_cli(args)
    if args.action == "latency":
        from agent.probes.latency import LatencyOptions, measure

        _positive(parser, count=args.count, timeout=args.timeout, interval=args.interval)
        results = measure(args.targets, LatencyOptions(
            samples=args.count, timeout_s=args.timeout, ca_bundle=args.ca_bundle,
            icmp=not args.no_icmp, icmp_interval_s=args.interval))
    else:
        results = _bandwidth(parser, args)
    if args.json:
        print(json.dumps({"results": [to_jsonable(r) for r in results]}, indent=2))
    else:
        print(results_text(results))
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK


def _bandwidth(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    from agent.probes.bandwidth import (
        BandwidthOptions,
        measure_download,
        measure_upload,
        speed_urls,
    )

    _positive(parser, seconds=args.seconds, streams=args.streams, max_bytes=args.max_bytes)
    if args.backend == "speedtest":
        return _speedtest(parser, args)
    if not (args.collector or args.url):
        parser.error("probe bandwidth: one of --collector or --url is required "
                     "(or --backend speedtest for the public speedtest.net test)")
    opts = BandwidthOptions(seconds=args.seconds, streams=args.streams or 4,
                            max_bytes=args.max_bytes or 500_000_000, ca_bundle=args.ca_bundle)
    if args.collector:
        down, up = speed_urls(args.collector)
        results = [measure_download(down, opts)]
        upload_url: str | None = args.upload_url or up
    else:
        results = [measure_download(args.url, opts, sized=False)]
        upload_url = args.upload_url
    if upload_url:
        results.append(measure_upload(upload_url, opts))
    return results


def _speedtest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    from agent.probes.speedtest_backend import SpeedtestOptions, measure

    for flag, given in (("--upload-url", args.upload_url), ("--max-bytes", args.max_bytes),
                        ("--ca-bundle", args.ca_bundle)):
        if given:
            parser.error(f"probe bandwidth: {flag} applies to the http backend only, "
                         "not --backend speedtest")
    url = args.collector or args.url
    if url is None:
        print("classprobe: public speedtest.net test (speedtest-cli); this contacts "
              "speedtest.net", file=sys.stderr)
    return measure(url, SpeedtestOptions(seconds=args.seconds, streams=args.streams))
