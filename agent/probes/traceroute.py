"""Traceroute with per-hop RTT, and where the delay is: first hop, school gateway, beyond.

Probes are TCP SYNs to the target's port (what a browser's traffic looks like to a
firewall; ICMP echo for ``stun:`` targets) with TTL 1..``max_hops``, sent ``queries``
times with scapy. Each router on the way answers ICMP time-exceeded; the destination
answers the SYN (SYN-ACK or RST) or the echo. RTT = the reply's capture timestamp minus
the probe's send timestamp (scapy's ``rcv.time - snd.sent_time``, lab-facts §5), never
wall time around ``sr()``. Needs root or CAP_NET_RAW (raw sockets) and scapy; otherwise ``skipped``.
Only ``scapy.layers.inet`` and ``scapy.sendrecv`` are imported, when the check runs.

Measurements (method ``traceroute_PROTO:hop=N,addr=A[,rule=...]``):

- ``hops``: the TTL at which the destination answered (method ``traceroute_PROTO``).
- ``hop_rtt_ms`` (stat ``min``) for every hop that answered.
- ``first_hop_rtt_ms`` (min, p50): hop 1 — the LAN / Wi-Fi segment.
- ``gateway_rtt_ms`` (min, p50): the school's edge, taken as the last hop with a private
  address (RFC 1918, ULA; not CGNAT 100.64/10) before the first public one
  (``rule=last_private``); when the whole path is private (lab, on-site server), the last
  private hop before the destination. Not reported when hop 1 is already public or no
  intermediate hop answered.
- ``target_rtt_ms`` (min, p50): the destination.

Delay attribution is then: LAN/Wi-Fi ≈ first_hop; school network ≈ gateway − first_hop;
beyond the school ≈ target − gateway (min values are the least queued, the usual choice).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.probes.device_cmd import raw_sockets_allowed
from agent.probes.pathnet import PathTarget, Resolver, describe, lookup
from agent.probes.results import ResultBuilder, unit_of, value
from agent.stats import percentile
from agent.wire import Measurement, ProbeResult

NAME = "traceroute"


@dataclass(frozen=True)
class Reply:
    ttl: int
    source: str
    rtt_ms: float
    reached: bool
    """The destination itself answered (not a router on the way)."""


@dataclass
class Hop:
    ttl: int
    address: str | None
    """None: no reply at this TTL (``*``)."""
    rtts_ms: list[float] = field(default_factory=list)
    reached: bool = False


def build_hops(replies: list[Reply]) -> list[Hop]:
    """One hop per TTL up to the first that reached the destination (or the last reply)."""
    if not replies:
        return []
    by_ttl: dict[int, list[Reply]] = {}
    for reply in replies:
        by_ttl.setdefault(reply.ttl, []).append(reply)
    reached = sorted(t for t, rs in by_ttl.items() if any(r.reached for r in rs))
    last = reached[0] if reached else max(by_ttl)
    hops = []
    for ttl in range(1, last + 1):
        got = by_ttl.get(ttl, [])
        if not got:
            hops.append(Hop(ttl, None))
            continue
        dest = [r for r in got if r.reached]
        chosen = dest or got
        address = max({r.source for r in chosen}, key=[r.source for r in chosen].count)
        hops.append(Hop(ttl, address, sorted(r.rtt_ms for r in chosen if r.source == address),
                        bool(dest)))
    return hops


PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
"""Where a school's own network lives: RFC 1918 and IPv6 ULA (not CGNAT 100.64/10, which
is the ISP's, nor documentation or loopback ranges)."""


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in PRIVATE_NETS)


@dataclass(frozen=True)
class Attribution:
    hops: int | None
    first: Hop | None
    gateway: Hop | None
    target: Hop | None
    notes: tuple[str, ...] = ()


def attribute(hops: list[Hop]) -> Attribution:
    """First hop, school gateway and destination of a trace (see the module docstring)."""
    target = hops[-1] if hops and hops[-1].reached else None
    first = hops[0] if hops and hops[0].address else None
    notes = []
    if target is None:
        notes.append("destination did not answer: hops and target_rtt_ms not measured")
    between = [h for h in hops if h.address and not h.reached]
    gateway: Hop | None = None
    for hop in between:
        assert hop.address is not None
        if not is_private(hop.address):
            break
        gateway = hop
    if between and not is_private(between[0].address or "0.0.0.0"):
        notes.append("hop 1 has a public address: school gateway not identified")
    elif not between:
        notes.append("no router answered before the destination: no gateway hop")
    return Attribution(target.ttl if target else None, first, gateway, target, tuple(notes))


def _rtt(metric: str, method: str, stat: str, number: float, n: int) -> Measurement:
    return Measurement(metric=metric, unit=unit_of(metric), method=method,
                       value=round(number, 3), stat=stat, samples=n)  # type: ignore[arg-type]


def measurements(hops: list[Hop], attr: Attribution, proto: str) -> list[Measurement]:
    method = f"traceroute_{proto}"
    out: list[Measurement] = []
    if attr.hops is not None:
        out.append(value("hops", method, attr.hops))
    for hop in hops:
        if hop.address:
            out.append(_rtt("hop_rtt_ms", f"{method}:hop={hop.ttl},addr={hop.address}", "min",
                            min(hop.rtts_ms), len(hop.rtts_ms)))
    roles = (("first_hop_rtt_ms", attr.first, ""),
             ("gateway_rtt_ms", attr.gateway, ",rule=last_private"),
             ("target_rtt_ms", attr.target, ""))
    for metric, role, rule in roles:
        if role is not None and role.address:
            where = f"{method}:hop={role.ttl},addr={role.address}{rule}"
            n = len(role.rtts_ms)
            out.append(_rtt(metric, where, "min", min(role.rtts_ms), n))
            out.append(_rtt(metric, where, "p50", percentile(role.rtts_ms, 50), n))
    return out


Tracer = Callable[[str, int, str, int, int, float], list[Reply]]
"""``trace(address, port, proto, max_hops, queries, timeout_s) -> replies``."""


def scapy_trace(address: str, port: int, proto: str, max_hops: int, queries: int,
                timeout_s: float) -> list[Reply]:
    """TTL-limited probes with scapy (root); replies with capture-timestamp RTTs."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.sendrecv import sr
    from scapy.volatile import RandShort

    layer = TCP(sport=RandShort(), dport=port, flags="S") if proto == "tcp_syn" else ICMP()
    probes = IP(dst=address, ttl=(1, max_hops)) / layer
    replies = []
    for _ in range(queries):
        answered, _unanswered = sr(probes, timeout=timeout_s, verbose=0)
        for sent, got in answered:
            source = str(got[IP].src)
            icmp_type = got[ICMP].type if got.haslayer(ICMP) else None
            reached = source == address and bool(got.haslayer(TCP) or icmp_type in (0, 3))
            rtt_s = float(got.time) - float(sent.sent_time or 0.0)
            replies.append(Reply(int(sent.ttl), source, rtt_s * 1000.0, reached))
    return replies


def unavailable() -> str | None:
    """Why the traceroute cannot run here, or None."""
    if not hasattr(os, "geteuid"):
        return "traceroute needs raw sockets (scapy with Npcap and Administrator): " \
               "not supported on this OS yet"
    if not raw_sockets_allowed():
        return "traceroute needs root or CAP_NET_RAW (raw sockets for TTL-limited probes)"
    try:
        import scapy  # noqa: F401
    except ImportError:
        return "scapy is not installed (pip install 'classprobe[agent-extra]')"
    return None


@dataclass(frozen=True)
class TraceOptions:
    max_hops: int = 30
    queries: int = 3
    timeout_s: float = 2.0


def check_traceroute(target: PathTarget, opts: TraceOptions, resolver: Resolver,
                     trace: Tracer = scapy_trace,
                     why_not: Callable[[], str | None] = unavailable) -> ProbeResult:
    """The ``traceroute`` result for one target's host."""
    r = ResultBuilder(NAME, target=target.raw)
    reason = why_not()
    if reason:
        return r.skipped(reason)
    found, problem = lookup(target, resolver, opts.timeout_s)
    if problem:
        return r.failed(problem)
    addresses = [a for a in found if ":" not in a]
    if not addresses:
        return r.skipped(f"{target.host} has no IPv4 address; traceroute is IPv4 only")
    proto = "icmp_echo" if target.scheme == "stun" else "tcp_syn"
    try:
        replies = trace(addresses[0], target.port, proto, opts.max_hops, opts.queries,
                        opts.timeout_s)
    except OSError as exc:
        return r.failed(f"traceroute to {addresses[0]} could not send: {describe(exc)}")
    hops = build_hops(replies)
    if not hops:
        return r.failed(f"no reply from any hop to {addresses[0]} within {opts.max_hops} "
                        "hops (probes filtered, or no route)")
    attr = attribute(hops)
    path = " ".join(f"{h.ttl}:{h.address or '*'}" for h in hops)
    r.note(f"path {path}")
    for note in attr.notes:
        r.note(note)
    r.extend(measurements(hops, attr, proto))
    return r.ok()
