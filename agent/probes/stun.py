"""UDP reachability: a STUN Binding request (RFC 5389) to the target, retransmitted.

Wire format: a 20-byte header — type (0x0001 Binding request, 0x0101 success, 0x0111
error), body length, magic cookie 0x2112A442, 12-byte random transaction id — then
attributes (type, length, value padded to 4 bytes). The success response carries
XOR-MAPPED-ADDRESS (0x0020): the address and port the server saw, XORed with the cookie
(and, for IPv6, the transaction id); old RFC 3489 servers send MAPPED-ADDRESS (0x0001).

``udp_reachable`` (method ``stun_binding:OUTCOME``):

- 1, ``stun_binding:answer``: a success (or error) response with our transaction id came
  back — UDP to the server and back works. The reason has ``mapped=ADDR:PORT`` and ``rtt_ms=``.
- 0, ``stun_binding:no_answer``: nothing within the retransmission schedule. UDP is
  blocked on the path **or** the server is down: a client cannot tell which.
- 0, ``stun_binding:port_unreachable``: an ICMP port unreachable came back (the server
  host, or a filter that rejects rather than drops).

Retransmission: ``attempts`` requests, waiting ``rto_s`` then doubling (RFC 5389 §7.2.1
uses 500 ms and 7 attempts; the default here is 3 to keep a probe short). The same
transaction id is used for every retransmission, as the RFC says.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass

from agent.probes.pathnet import PathTarget, Resolver, describe, lookup
from agent.probes.results import ResultBuilder, flag
from agent.wire import ProbeResult

NAME = "udp"
MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST, BINDING_SUCCESS, BINDING_ERROR = 0x0001, 0x0101, 0x0111
MAPPED_ADDRESS, XOR_MAPPED_ADDRESS, FINGERPRINT = 0x0001, 0x0020, 0x8028
FINGERPRINT_XOR = 0x5354554E
HEADER = struct.Struct("!HHI12s")


class StunError(ValueError):
    """A datagram that is not the STUN response we wait for; the message says why."""


def binding_request(txid: bytes) -> bytes:
    """A Binding request with no attributes (20 bytes)."""
    if len(txid) != 12:
        raise StunError(f"transaction id must be 12 bytes, got {len(txid)}")
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, txid)


@dataclass(frozen=True)
class StunResponse:
    kind: int
    txid: bytes
    mapped: tuple[str, int] | None
    """The reflexive (address, port), or None when the response has neither attribute."""
    fingerprint_ok: bool | None
    """None when the response has no FINGERPRINT attribute."""


def _address(value: bytes, txid: bytes, xored: bool) -> tuple[str, int] | None:
    if len(value) < 4:
        return None
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    raw = value[4:]
    if xored:
        port ^= MAGIC_COOKIE >> 16
        mask = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(b ^ m for b, m in zip(raw, mask, strict=False))
    if family == 1 and len(raw) >= 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4]), port
    if family == 2 and len(raw) >= 16:
        return socket.inet_ntop(socket.AF_INET6, raw[:16]), port
    return None


def parse_response(data: bytes) -> StunResponse:
    """Header and mapped address of a STUN response; StunError for anything else."""
    if len(data) < HEADER.size:
        raise StunError(f"{len(data)} bytes is shorter than a STUN header")
    kind, length, cookie, txid = HEADER.unpack_from(data)
    if cookie != MAGIC_COOKIE:
        raise StunError(f"magic cookie 0x{cookie:08x} is not 0x{MAGIC_COOKIE:08x}")
    if kind not in (BINDING_SUCCESS, BINDING_ERROR):
        raise StunError(f"message type 0x{kind:04x} is not a Binding response")
    if HEADER.size + length > len(data) or length % 4:
        raise StunError(f"body length {length} does not fit the {len(data)}-byte datagram")
    mapped: dict[int, tuple[str, int] | None] = {}
    fingerprint_ok: bool | None = None
    pos, end = HEADER.size, HEADER.size + length
    while pos + 4 <= end:
        attr, alen = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4:pos + 4 + alen]
        if attr in (XOR_MAPPED_ADDRESS, MAPPED_ADDRESS) and attr not in mapped:
            mapped[attr] = _address(value, txid, xored=attr == XOR_MAPPED_ADDRESS)
        elif attr == FINGERPRINT and len(value) == 4:
            expected = (zlib.crc32(data[:pos]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            fingerprint_ok = struct.unpack("!I", value)[0] == expected
        pos += 4 + alen + (-alen % 4)
    best = mapped.get(XOR_MAPPED_ADDRESS) or mapped.get(MAPPED_ADDRESS)
    return StunResponse(kind, bytes(txid), best, fingerprint_ok)


@dataclass(frozen=True)
class StunOptions:
    timeout_s: float = 5.0
    """For the DNS lookup."""
    attempts: int = 3
    rto_s: float = 0.5


@dataclass(frozen=True)
class Exchange:
    outcome: str
    """answer | no_answer | port_unreachable"""
    response: StunResponse | None = None
    rtt_ms: float | None = None
    sent: int = 0
    waited_s: float = 0.0


def exchange(address: str, port: int, opts: StunOptions, txid: bytes | None = None) -> Exchange:
    """Send the request up to ``opts.attempts`` times; wait for a response with our id."""
    txid = txid if txid is not None else os.urandom(12)
    request = binding_request(txid)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    started = time.perf_counter()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((address, port))  # connected: ICMP errors surface as ECONNREFUSED
        sock.setblocking(False)
        wait, sent = opts.rto_s, 0
        for _ in range(opts.attempts):
            sock.send(request)
            sent_at, sent = time.perf_counter(), sent + 1
            deadline = sent_at + wait
            while (remaining := deadline - time.perf_counter()) > 0:
                ready, _, _ = select.select([sock], [], [], remaining)
                if not ready:
                    break
                try:
                    data = sock.recv(2048)
                except ConnectionRefusedError:
                    return Exchange("port_unreachable", sent=sent,
                                    waited_s=time.perf_counter() - started)
                arrived = time.perf_counter()
                try:
                    response = parse_response(data)
                except StunError:
                    continue  # not for us
                if response.txid == txid:
                    return Exchange("answer", response, (arrived - sent_at) * 1000.0, sent,
                                    arrived - started)
            wait *= 2
    return Exchange("no_answer", sent=sent, waited_s=time.perf_counter() - started)


def check_udp(target: PathTarget, opts: StunOptions, resolver: Resolver) -> ProbeResult:
    """The ``udp`` result for a ``stun:host[:port]`` target."""
    r = ResultBuilder(NAME, target=target.raw)
    if target.scheme != "stun":
        return r.skipped(f"{target.raw} is not a stun: target")
    addresses, problem = lookup(target, resolver, opts.timeout_s)
    if problem:
        return r.failed(problem)
    address = addresses[0]
    try:
        ex = exchange(address, target.port, opts)
    except OSError as exc:  # no route, network unreachable: nothing was measured
        return r.failed(f"cannot send UDP to {address}:{target.port}: {describe(exc)}")
    where = f"{address}:{target.port}"
    if ex.outcome == "answer" and ex.response is not None and ex.rtt_ms is not None:
        kind = "success" if ex.response.kind == BINDING_SUCCESS else "error"
        mapped = ex.response.mapped
        r.note(f"Binding {kind} response from {where}")
        r.note(f"mapped={mapped[0]}:{mapped[1]}" if mapped else "mapped=none")
        r.note(f"rtt_ms={ex.rtt_ms:.3f}")
        if ex.response.fingerprint_ok is False:
            r.note("FINGERPRINT attribute does not match (altered on the path?)")
        r.add(flag("udp_reachable", "stun_binding:answer", True))
    elif ex.outcome == "port_unreachable":
        r.note(f"ICMP port unreachable from {where} after {ex.sent} request(s): the server "
               "host or a filter rejects UDP to that port")
        r.add(flag("udp_reachable", "stun_binding:port_unreachable", False))
    else:
        r.note(f"no STUN answer from {where} to {ex.sent} request(s) in {ex.waited_s:.1f} s: "
               "UDP blocked on the path or the server is down; cannot tell which")
        r.add(flag("udp_reachable", "stun_binding:no_answer", False))
    return r.ok()
