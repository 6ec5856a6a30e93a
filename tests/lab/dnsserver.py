"""A tiny DNS server for the lab: a zone of A records, NXDOMAIN and sinkhole rules, forwarding.

The far side runs it as the lab's resolver (the "internet" DNS); a gateway filter runs
a second one that answers blocked names itself and forwards the rest upstream::

    python -m tests.lab.dnsserver --bind 10.77.1.1:53 --nxdomain blocked.lab.test \\
        --sinkhole ads.lab.test=10.77.1.1 --upstream 10.77.10.1:53

A rule for a name also covers its subdomains. Names the zone knows but with no record of
the asked type get NOERROR with no answer (NODATA); unknown names get NXDOMAIN (or are
forwarded when there is an upstream). UDP only, one question per query.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from dataclasses import dataclass, field

TYPE_A = 1
CLASS_IN = 1
RCODE_NXDOMAIN = 3
RCODE_SERVFAIL = 2
TTL = 60


class DnsError(ValueError):
    """A datagram that is not a query this server understands."""


@dataclass
class Rules:
    """What to answer: ``zone`` and ``sinkhole`` map names to IPv4 addresses."""

    zone: dict[str, str] = field(default_factory=dict)
    nxdomain: set[str] = field(default_factory=set)
    sinkhole: dict[str, str] = field(default_factory=dict)
    upstream: tuple[str, int] | None = None

    def match(self, table: dict[str, str] | set[str], name: str) -> str | None:
        """The rule key in ``table`` that covers ``name`` (itself or a parent), or None."""
        labels = name.split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in table:
                return candidate
        return None


def parse_query(data: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, qname, qtype, end of question) of a standard query."""
    if len(data) < 12:
        raise DnsError(f"{len(data)} bytes is shorter than a DNS header")
    qid, flags, qdcount = struct.unpack_from("!HHH", data)
    if flags & 0x8000 or qdcount != 1:
        raise DnsError(f"not a single-question query (flags 0x{flags:04x}, qdcount {qdcount})")
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            raise DnsError("question name runs past the end of the datagram")
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0:
            raise DnsError("compressed names in a question are not supported")
        labels.append(data[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    if pos + 4 > len(data):
        raise DnsError("question has no type/class")
    qtype, _qclass = struct.unpack_from("!HH", data, pos)
    return qid, flags, ".".join(labels), qtype, pos + 4


def response(query: bytes, qend: int, rcode: int, addrs: list[str]) -> bytes:
    qid, flags = struct.unpack_from("!HH", query)
    out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode  # QR, opcode+RD kept, RA
    header = struct.pack("!HHHHHH", qid, out_flags, 1, len(addrs), 0, 0)
    answers = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4)
                       + socket.inet_aton(a) for a in addrs)
    return header + query[12:qend] + answers


def forward(query: bytes, upstream: tuple[str, int], timeout: float = 3.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, upstream)
        try:
            return s.recv(4096)
        except TimeoutError:
            return None


def resolve(rules: Rules, query: bytes) -> bytes | None:
    """The reply to one datagram, or None to stay silent (not a query)."""
    try:
        _qid, _flags, name, qtype, qend = parse_query(query)
    except DnsError:
        return None
    if rules.match(rules.nxdomain, name):
        return response(query, qend, RCODE_NXDOMAIN, [])
    hole = rules.match(rules.sinkhole, name)
    if hole is not None:
        return response(query, qend, 0, [rules.sinkhole[hole]] if qtype == TYPE_A else [])
    if name in rules.zone:
        return response(query, qend, 0, [rules.zone[name]] if qtype == TYPE_A else [])
    if rules.upstream is not None:
        reply = forward(query, rules.upstream)
        return reply if reply is not None else response(query, qend, RCODE_SERVFAIL, [])
    return response(query, qend, RCODE_NXDOMAIN, [])


def serve(sock: socket.socket, rules: Rules) -> None:
    """Answer queries on a bound UDP socket forever (run it in a thread or a process)."""
    while True:
        data, peer = sock.recvfrom(4096)
        reply = resolve(rules, data)
        if reply is not None:
            sock.sendto(reply, peer)


def build_query(name: str, qtype: int = TYPE_A, qid: int = 0x4C41) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def parse_reply(reply: bytes, query_len: int) -> tuple[int, int, list[str]]:
    """(id, rcode, IPv4 answers) of a reply whose question is ``query_len`` bytes long."""
    qid, flags, ancount = struct.unpack_from("!HHxxH", reply)
    pos, addrs = query_len, []
    for _ in range(ancount):
        atype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", reply, pos + 2)
        if atype == TYPE_A and rdlen == 4:
            addrs.append(socket.inet_ntoa(reply[pos + 12:pos + 16]))
        pos += 12 + rdlen
    return qid, flags & 0x000F, addrs


def query(name: str, server: tuple[str, int], qtype: int = TYPE_A,
          timeout: float = 2.0) -> tuple[int, list[str]]:
    """(rcode, IPv4 answers) for ``name`` from ``server``: a client for the lab's own tests."""
    packet = build_query(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, server)
        reply = s.recv(4096)
    _qid, rcode, addrs = parse_reply(reply, len(packet))
    return rcode, addrs


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, addr = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} {item!r} is not NAME=ADDRESS")
        out[name.lower().rstrip(".")] = addr
    return out


def _hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    host, _, port = text.partition(":")
    return host, int(port or default_port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lab.dnsserver", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", required=True, help="ADDRESS[:PORT], port 53 by default")
    p.add_argument("--zone", action="append", default=[], help="NAME=ADDRESS (A record)")
    p.add_argument("--nxdomain", action="append", default=[], help="NAME (and subdomains)")
    p.add_argument("--sinkhole", action="append", default=[], help="NAME=ADDRESS")
    p.add_argument("--upstream", help="forward other names to ADDRESS[:PORT]")
    args = p.parse_args(argv)
    rules = Rules(_pairs(args.zone, "--zone"), {n.lower().rstrip(".") for n in args.nxdomain},
                  _pairs(args.sinkhole, "--sinkhole"),
                  _hostport(args.upstream) if args.upstream else None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(_hostport(args.bind))
    print("ready", flush=True)
    serve(sock, rules)
    return 0


if __name__ == "__main__":
    sys.exit(main())
