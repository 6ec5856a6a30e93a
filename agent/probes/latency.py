"""Latency probe: DNS, TCP connect, TLS handshake, HTTP TTFB and ICMP echo per target.

A target is a URL (``https://host[:port]/path``, ``http://...``) or ``host[:port]``
(port 443 by default; TCP connect only, since it is not known to speak TLS or HTTP).
The collector's ``/speed/ping`` is always a target when the agent is enrolled.

Per target, each phase takes N samples, summarised as min / p50 / p95 / max (nearest
rank, :mod:`agent.stats`). Methods:

- ``dns_ms`` / ``getaddrinfo``: ``socket.getaddrinfo`` timed with ``perf_counter``
  (through the OS resolver and its cache: the first lookup may be the only uncached one).
  Not measured for IP literals.
- ``tcp_connect_ms`` / ``tcp_connect``: a fresh socket's ``connect()`` (≈ 1 RTT). One
  untimed connect first picks the address that answers and warms ARP/neighbour caches.
- ``jitter_ms`` / ``tcp_connect``: mean |difference| of consecutive TCP-connect RTTs.
- ``tls_handshake_ms`` / ``tls_handshake``: ``SSLSocket.do_handshake()`` on a freshly
  connected socket; full handshakes (no session resumption), certificate checked against
  the system store or ``ca_bundle``.
- ``http_ttfb_ms`` / ``httpx_trace_ttfb``: on one keep-alive httpx connection, from
  ``http11.send_request_headers.started`` to ``http11.receive_response_headers.complete``
  (httpx ``trace`` extension). Requests that opened a connection are excluded, so the
  first request never counts.
- ICMP echo: a separate ``icmp`` result per host (``icmp_rtt_ms``, ``jitter_ms``,
  ``loss_pct``), method ``icmp_dgram`` or ``icmp_raw`` (:mod:`agent.probes.icmp`),
  skipped with the reason where no ICMP socket is allowed.

A failed sample is never a number. All samples of a phase failing makes the target
``failed`` (TCP) or is named in the reason (TLS, HTTP); some failing is named in the
reason. Loss is reported only for ICMP, where a missing reply is genuinely loss.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from agent.config import AgentConfig
from agent.probes.icmp import IcmpUnavailable, SocketOpener, echo, open_icmp_socket
from agent.probes.net import (
    Address,
    Target,
    describe,
    describe_httpx,
    getaddrinfo_bounded,
    is_ip_literal,
    parse_target,
    ssl_context,
)
from agent.probes.results import ResultBuilder, summary, value
from agent.stats import jitter
from agent.wire import ProbeResult

NAME = "latency"
TTFB_METHOD = "httpx_trace_ttfb"
_TTFB_START = "http11.send_request_headers.started"
_TTFB_END = "http11.receive_response_headers.complete"


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.values) + len(self.errors)

    def failure_note(self, what: str) -> str | None:
        if not self.errors:
            return None
        return f"{len(self.errors)} of {self.attempts} {what} failed: {self.errors[-1]}"


def _getaddrinfo(host: str, port: int, timeout_s: float) -> list[Address]:
    """``getaddrinfo`` bounded by a timeout (it has none of its own), de-duplicated."""
    infos = getaddrinfo_bounded(host, port, timeout_s)
    seen: list[Address] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    return seen


def time_dns(host: str, port: int, count: int, timeout_s: float
             ) -> tuple[Samples, list[Address]]:
    """Time ``count`` lookups; stops after a first failure (a dead resolver is slow)."""
    samples, addresses = Samples(), list[Address]()
    for _ in range(count):
        start = time.perf_counter()
        try:
            found = _getaddrinfo(host, port, timeout_s)
        except OSError as exc:
            samples.errors.append(describe(exc, timeout_s))
            if not samples.values:
                break
            continue
        samples.values.append((time.perf_counter() - start) * 1000.0)
        addresses = addresses or found
    return samples, addresses


def _connect(address: Address, timeout_s: float) -> socket.socket:
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def pick_address(addresses: list[Address], timeout_s: float) -> tuple[Address | None, str]:
    """The first address that accepts a connection (untimed), or None and the error."""
    error = "no address"
    for address in addresses:
        try:
            _connect(address, timeout_s).close()
        except OSError as exc:
            error = describe(exc, timeout_s)
            continue
        return address, ""
    return None, error


def time_tcp_connect(address: Address, count: int, timeout_s: float) -> Samples:
    samples = Samples()
    for _ in range(count):
        family, sockaddr = address
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            start = time.perf_counter()
            sock.connect(sockaddr)
            samples.values.append((time.perf_counter() - start) * 1000.0)
        except OSError as exc:
            samples.errors.append(describe(exc, timeout_s))
        finally:
            sock.close()
    return samples


def time_tls_handshake(address: Address, server_name: str, count: int, timeout_s: float,
                       context: ssl.SSLContext) -> Samples:
    samples = Samples()
    for _ in range(count):
        try:
            raw = _connect(address, timeout_s)
        except OSError as exc:
            samples.errors.append(f"TCP connect: {describe(exc, timeout_s)}")
            continue
        try:
            tls = context.wrap_socket(raw, server_hostname=server_name,
                                      do_handshake_on_connect=False)
            with tls:
                start = time.perf_counter()
                tls.do_handshake()
                samples.values.append((time.perf_counter() - start) * 1000.0)
        except OSError as exc:
            samples.errors.append(describe(exc, timeout_s))
        finally:
            raw.close()
    return samples


@dataclass
class TtfbSamples(Samples):
    warm: bool = True
    """False when the server closed every connection, so no request reused one."""
    statuses: set[int] = field(default_factory=set)


def time_ttfb(url: str, count: int, timeout_s: float,
              verify: ssl.SSLContext | bool = True) -> TtfbSamples:
    """``count`` warm TTFB samples on a keep-alive connection (plus one opening request)."""
    import httpx

    marks: dict[str, float] = {}

    def trace(event: str, info: Any) -> None:
        marks[event] = time.perf_counter()

    warm: list[float] = []
    cold: list[float] = []
    errors: list[str] = []
    statuses: set[int] = set()
    with httpx.Client(verify=verify, timeout=timeout_s, trust_env=False,
                      follow_redirects=False) as client:
        for _ in range(count + 1):
            marks.clear()
            try:
                response = client.get(url, extensions={"trace": trace})
                response.read()
            except httpx.HTTPError as exc:
                errors.append(describe_httpx(exc, timeout_s))
                continue
            statuses.add(response.status_code)
            if _TTFB_START not in marks or _TTFB_END not in marks:
                errors.append("httpx trace gave no request/response timing")
                continue
            ms = (marks[_TTFB_END] - marks[_TTFB_START]) * 1000.0
            opened = any(e.startswith("connection.connect_tcp") for e in marks)
            (cold if opened else warm).append(ms)
    if warm:
        return TtfbSamples(values=warm[:count], errors=errors, statuses=statuses)
    # The server closes every connection: report fresh-connection requests, but not the first.
    return TtfbSamples(values=cold[1:], errors=errors, warm=False, statuses=statuses)


@dataclass(frozen=True)
class LatencyOptions:
    samples: int = 5
    timeout_s: float = 5.0
    ca_bundle: str = ""
    icmp: bool = True
    icmp_interval_s: float = 0.1
    icmp_opener: SocketOpener = open_icmp_socket


def measure_target(target: Target, opts: LatencyOptions,
                   context: ssl.SSLContext) -> tuple[ProbeResult, list[Address]]:
    """The ``latency`` result for one target, and the addresses its name resolved to."""
    r = ResultBuilder(NAME, target=target.raw)
    n, timeout = opts.samples, opts.timeout_s
    if is_ip_literal(target.host):
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        addresses: list[Address] = [(family, (target.host, target.port))]
        r.note(f"dns_ms not measured: {target.host} is an IP literal")
    else:
        dns, addresses = time_dns(target.host, target.port, n, timeout)
        if not dns.values:
            return r.failed(f"DNS lookup of {target.host} failed: {dns.errors[0]}"), []
        r.extend(summary("dns_ms", "getaddrinfo", dns.values))
        _note(r, dns.failure_note("DNS lookups"))
    address, error = pick_address(addresses, timeout)
    if address is None:
        return r.failed(f"TCP connect to {target.hostport} failed: {error}"), addresses
    tcp = time_tcp_connect(address, n, timeout)
    if not tcp.values:
        return r.failed(f"TCP connect to {target.hostport} failed: {tcp.errors[0]}"), addresses
    r.extend(summary("tcp_connect_ms", "tcp_connect", tcp.values))
    _note(r, tcp.failure_note("TCP connects"))
    if len(tcp.values) >= 2:
        r.add(value("jitter_ms", "tcp_connect", round(jitter(tcp.values), 3),
                    samples=len(tcp.values)))
    if target.scheme == "https":
        tls = time_tls_handshake(address, target.host, n, timeout, context)
        _phase(r, tls, "tls_handshake_ms", "tls_handshake", "TLS handshakes")
    if target.url is not None:
        ttfb = time_ttfb(target.url, n, timeout, verify=context)
        method = TTFB_METHOD if ttfb.warm else TTFB_METHOD + "_new_connection"
        _phase(r, ttfb, "http_ttfb_ms", method, "HTTP requests")
        if not ttfb.warm and ttfb.values:
            r.note("the server closes each connection: http_ttfb_ms is on new connections")
        odd = sorted(s for s in ttfb.statuses if s >= 400)
        if odd:
            r.note(f"HTTP status {', '.join(map(str, odd))} from {target.url}")
    return r.ok(), addresses


def _note(r: ResultBuilder, message: str | None) -> None:
    if message:
        r.note(message)


def _phase(r: ResultBuilder, samples: Samples, metric: str, method: str, what: str) -> None:
    if samples.values:
        r.extend(summary(metric, method, samples.values))
        _note(r, samples.failure_note(what))
    elif samples.errors:
        r.note(f"{metric} not measured: all {samples.attempts} {what} failed: "
               f"{samples.errors[0]}")
    else:
        r.note(f"{metric} not measured: no usable sample")


def icmp_result(host: str, addresses: list[Address], resolve_error: str | None,
                opts: LatencyOptions, unavailable: str | None) -> ProbeResult:
    r = ResultBuilder("icmp", target=host)
    if unavailable:
        return r.skipped(unavailable)
    if resolve_error:
        return r.failed(resolve_error)
    v4 = [a[1][0] for a in addresses if a[0] == socket.AF_INET]
    if not v4:
        return r.skipped(f"{host} has no IPv4 address; the ICMP probe is IPv4 only")
    try:
        run = echo(v4[0], opts.samples, opts.timeout_s, opts.icmp_interval_s,
                        opener=opts.icmp_opener)
    except IcmpUnavailable as exc:
        return r.skipped(str(exc))
    if not run.rtts_ms:
        return r.failed(f"no echo request could be sent to {v4[0]}: {run.send_errors[0]}")
    if not run.received:
        return r.failed(f"no ICMP echo reply from {v4[0]} to {len(run.rtts_ms)} requests "
                        f"within {opts.timeout_s:g} s (lost, or ICMP filtered on the path)")
    r.extend(summary("icmp_rtt_ms", run.method, run.received))
    if len(run.received) >= 2:
        r.add(value("jitter_ms", run.method, round(jitter(run.received), 3),
                    samples=len(run.received)))
    r.add(value("loss_pct", run.method, round(run.loss_pct, 2), samples=len(run.rtts_ms)))
    if run.send_errors:
        r.note(f"{len(run.send_errors)} requests could not be sent: {run.send_errors[0]}")
    return r.ok()


def icmp_unavailable(opener: SocketOpener) -> str | None:
    """The skip reason when no ICMP socket can be opened, else None."""
    try:
        sock, _method = opener()
    except IcmpUnavailable as exc:
        return str(exc)
    sock.close()
    return None


def measure(raw_targets: list[str], opts: LatencyOptions) -> list[ProbeResult]:
    """One ``latency`` result per target and (with ``opts.icmp``) one ``icmp`` per host."""
    context = ssl_context(opts.ca_bundle)
    unavailable = icmp_unavailable(opts.icmp_opener) if opts.icmp else None
    results: list[ProbeResult] = []
    pinged: set[str] = set()
    for raw in dict.fromkeys(raw_targets):
        try:
            target = parse_target(raw)
        except ValueError as exc:
            results.append(ResultBuilder(NAME, target=raw).failed(str(exc)))
            continue
        result, addresses = measure_target(target, opts, context)
        results.append(result)
        if opts.icmp and target.host not in pinged:
            pinged.add(target.host)
            resolve_error = result.reason if not addresses else None
            results.append(icmp_result(target.host, addresses, resolve_error, opts,
                                       unavailable))
    return results


def collector_ping_url(collector_url: str) -> str:
    return collector_url.rstrip("/") + "/speed/ping"


def targets_of(cfg: AgentConfig) -> list[str]:
    targets = list(cfg.targets)
    if cfg.collector_url:
        targets.append(collector_ping_url(cfg.collector_url))
    return targets


def options_of(cfg: AgentConfig) -> LatencyOptions:
    return LatencyOptions(samples=cfg.latency_samples, timeout_s=cfg.timeout_s,
                          ca_bundle=cfg.ca_bundle, icmp=cfg.icmp)


def run(cfg: AgentConfig) -> list[ProbeResult]:
    targets = targets_of(cfg)
    if not targets:
        return [ResultBuilder(NAME).skipped("no targets configured and not enrolled")]
    return measure(targets, options_of(cfg))

