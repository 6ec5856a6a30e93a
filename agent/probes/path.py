"""Path probe: what stands between the classroom and a service, check by check.

Per target (see :mod:`agent.probes.pathnet` for the target forms), the checks that apply:

=================  =====================================================================
check (probe name)  runs for / reports
=================  =====================================================================
``block``           http(s), ws(s), host[:port] — ``blocked`` (:mod:`block_check`)
``tls``             https, wss — ``tls_intercepted`` (:mod:`tls_check`)
``websocket``       ws, wss — ``websocket_hold_s`` (:mod:`websocket_check`)
``udp``             stun:host[:port] — ``udp_reachable`` (:mod:`stun`)
``traceroute``      each distinct host — ``hops``, ``*_rtt_ms`` (:mod:`traceroute`)
``proxy``           once per run, no target — ``proxy`` (:mod:`proxy_check`)
=================  =====================================================================

Each check is independent and yields one result: ok with measurements, ``failed`` with
the reason (unreachable, or evidence that cannot be attributed), or ``skipped`` with the
reason (needs root, package missing, not applicable). A check that crashes becomes a
``failed`` result and the others still run. WebSocket holds (up to ``hold_s`` each) run
in parallel threads while the other checks run.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from agent.config import AgentConfig
from agent.probes.block_check import BlockOptions, check_block
from agent.probes.blockpage import Expectation
from agent.probes.pathnet import PathTarget, Resolver, parse_path_target, system_resolver
from agent.probes.proxy_check import check_proxy
from agent.probes.results import ResultBuilder
from agent.probes.stun import StunOptions, check_udp
from agent.probes.tls_check import TlsOptions, check_tls, parse_pin
from agent.probes.traceroute import TraceOptions, Tracer, check_traceroute, scapy_trace
from agent.probes.traceroute import unavailable as trace_unavailable
from agent.probes.websocket_check import HoldOptions, check_websocket
from agent.wire import ProbeResult

NAME = "path"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathOptions:
    timeout_s: float = 10.0
    ca_bundle: str = ""
    pins: tuple[bytes, ...] = ()
    sinkholes: frozenset[str] = frozenset()
    expect: Expectation = field(default_factory=Expectation)
    hold_s: float = 60.0
    ping_interval_s: float = 5.0
    stun_attempts: int = 3
    stun_rto_s: float = 0.5
    traceroute: bool = True
    max_hops: int = 30
    proxy: bool = True
    resolver: Resolver = system_resolver
    environ: Mapping[str, str] | None = None
    """For the proxy check; None: ``os.environ``."""
    tracer: Tracer = scapy_trace
    trace_unavailable: Callable[[], str | None] = trace_unavailable


def checks_for(target: PathTarget) -> list[str]:
    """The check names that apply to a target, in the order they run."""
    if target.scheme == "stun":
        return ["udp"]
    names = ["block"]
    if target.tls:
        names.append("tls")
    if target.scheme in ("ws", "wss"):
        names.append("websocket")
    return names


def _guarded(check: str, target: str | None, run: Callable[[], ProbeResult]) -> ProbeResult:
    try:
        return run()
    except Exception as exc:  # one broken check must not cost the others their results
        log.exception("path check %s on %s crashed", check, target)
        return ResultBuilder(check, target=target).failed(
            f"check crashed: {type(exc).__name__}: {exc}")


def _runner(check: str, target: PathTarget, opts: PathOptions) -> Callable[[], ProbeResult]:
    resolver = opts.resolver
    if check == "block":
        block = BlockOptions(timeout_s=opts.timeout_s, sinkholes=opts.sinkholes,
                             expect=opts.expect)
        return lambda: check_block(target, block, resolver)
    if check == "tls":
        tls = TlsOptions(timeout_s=opts.timeout_s, ca_bundle=opts.ca_bundle, pins=opts.pins)
        return lambda: check_tls(target, tls, resolver)
    if check == "websocket":
        hold = HoldOptions(hold_s=opts.hold_s, ping_interval_s=opts.ping_interval_s,
                           ping_timeout_s=opts.ping_interval_s, timeout_s=opts.timeout_s)
        return lambda: check_websocket(target, hold, resolver)
    if check == "udp":
        stun = StunOptions(timeout_s=opts.timeout_s, attempts=opts.stun_attempts,
                           rto_s=opts.stun_rto_s)
        return lambda: check_udp(target, stun, resolver)
    if check == "traceroute":
        trace = TraceOptions(max_hops=opts.max_hops)
        return lambda: check_traceroute(target, trace, resolver, opts.tracer,
                                        opts.trace_unavailable)
    raise ValueError(f"unknown path check {check!r}")


def run_path(targets: list[str], opts: PathOptions = PathOptions()) -> list[ProbeResult]:
    """Every applicable check for every target, plus the proxy check (see the docstring)."""
    planned: list[tuple[str, str, Callable[[], ProbeResult] | ProbeResult]] = []
    traced: set[str] = set()
    for raw in dict.fromkeys(targets):
        try:
            target = parse_path_target(raw)
        except ValueError as exc:
            planned.append(("path", raw, ResultBuilder(NAME, target=raw).failed(str(exc))))
            continue
        for check in checks_for(target):
            planned.append((check, target.raw, _runner(check, target, opts)))
        if opts.traceroute and target.host not in traced:
            traced.add(target.host)
            planned.append(("traceroute", target.raw, _runner("traceroute", target, opts)))
    results: list[ProbeResult | Future[ProbeResult]] = []
    holds = [p for p in planned if p[0] == "websocket"]
    with ThreadPoolExecutor(max_workers=max(1, len(holds)),
                            thread_name_prefix="ws-hold") as pool:
        if opts.proxy:
            results.append(_guarded("proxy", None, lambda: check_proxy(opts.environ)))
        for check, raw, job in planned:
            if isinstance(job, ProbeResult):
                results.append(job)
            elif check == "websocket":
                results.append(pool.submit(_guarded, check, raw, job))
            else:
                results.append(_guarded(check, raw, job))
        return [r.result() if isinstance(r, Future) else r for r in results]


# ------------------------------------------------------------------ agent and CLI entry


def run(cfg: AgentConfig) -> list[ProbeResult]:
    """The agent's path probe: the configured targets with the config's roots and timeout.
    The route is traced by :func:`trace`, a probe of its own (its own worker and cadence)."""
    opts = PathOptions(timeout_s=max(cfg.timeout_s, 5.0), ca_bundle=cfg.ca_bundle,
                       hold_s=cfg.websocket_hold_s, traceroute=False)
    results = run_path(list(cfg.path_targets), opts)  # the proxy check needs no target
    if not cfg.path_targets:
        results.append(ResultBuilder(NAME).skipped("no path_targets configured"))
    return results


def trace(cfg: AgentConfig) -> list[ProbeResult]:
    """The agent's traceroute: each distinct host of the path targets, once."""
    if not cfg.traceroute:
        return [ResultBuilder("traceroute").skipped("traceroute disabled in the configuration")]
    if not cfg.path_targets:
        return [ResultBuilder("traceroute").skipped("no path_targets configured")]
    opts = PathOptions(timeout_s=max(cfg.timeout_s, 5.0), traceroute=True)
    results: list[ProbeResult] = []
    traced: set[str] = set()
    for raw in dict.fromkeys(cfg.path_targets):
        try:
            target = parse_path_target(raw)
        except ValueError as exc:
            results.append(ResultBuilder("traceroute", target=raw).failed(str(exc)))
            continue
        if target.host not in traced:
            traced.add(target.host)
            results.append(_guarded("traceroute", target.raw,
                                    _runner("traceroute", target, opts)))
    return results


probe = run
"""The registry entry point (``ProbeSpec(path.NAME, path.probe, ...)``)."""


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``classprobe probe path``."""
    parser.add_argument("targets", nargs="+", metavar="TARGET",
                        help="http(s)://, ws(s):// URL, stun:host[:port] or host[:port]")
    parser.add_argument("--ca-bundle", default="",
                        help="PEM roots that count as legitimate (default: system store)")
    parser.add_argument("--pin", action="append", default=[], metavar="SHA256",
                        help="expected SHA-256 of the leaf's public key (SPKI) or certificate, "
                             "hex or base64; repeatable")
    parser.add_argument("--sinkhole", action="append", default=[], metavar="ADDRESS",
                        help="an address the school's DNS answers for blocked names")
    parser.add_argument("--expect-status", type=int, default=None,
                        help="HTTP status the targets really return")
    parser.add_argument("--expect-text", default=None,
                        help="text the targets' real page contains")
    parser.add_argument("--hold", type=float, default=60.0,
                        help="seconds to hold each WebSocket open (default 60)")
    parser.add_argument("--ping-interval", type=float, default=5.0,
                        help="seconds between WebSocket pings (and pong timeout)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--max-hops", type=int, default=30)
    parser.add_argument("--no-traceroute", action="store_true")
    parser.add_argument("--json", action="store_true")


def options_from_args(args: argparse.Namespace) -> PathOptions:
    """PathOptions from parsed arguments; ValueError naming the bad argument."""
    for name in ("hold", "ping_interval", "timeout", "max_hops"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, "
                             f"got {getattr(args, name):g}")
    for address in args.sinkhole:
        try:
            ipaddress.ip_address(address)
        except ValueError as exc:
            raise ValueError(f"--sinkhole {address!r} is not an IP address") from exc
    return PathOptions(
        timeout_s=args.timeout, ca_bundle=args.ca_bundle,
        pins=tuple(parse_pin(p) for p in args.pin), sinkholes=frozenset(args.sinkhole),
        expect=Expectation(args.expect_status, args.expect_text), hold_s=args.hold,
        ping_interval_s=args.ping_interval, traceroute=not args.no_traceroute,
        max_hops=args.max_hops)


def run_path_cli(args: argparse.Namespace, opts: PathOptions | None = None) -> int:
    """``classprobe probe path``: print the results (text or ``--json``); exit code.

    0 all checks ok or skipped, 1 some check failed, 2 bad arguments. ``opts`` overrides
    the options built from ``args`` (tests inject a resolver this way).
    """
    import sys

    from agent.render import results_text
    from agent.wire import to_jsonable

    if opts is None:
        try:
            opts = options_from_args(args)
        except ValueError as exc:
            print(f"classprobe: {exc}", file=sys.stderr)
            return EXIT_USAGE
    results = run_path(args.targets, opts)
    if args.json:
        print(json.dumps({"results": [to_jsonable(r) for r in results]}, indent=2))
    else:
        print(results_text(results))
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK
