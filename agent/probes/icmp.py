"""ICMP echo ("ping") with the standard library, reporting which method it could use.

Methods, tried in order:

1. ``icmp_dgram``: an unprivileged ICMP datagram socket
   (``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``). Linux allows it only to groups inside
   ``net.ipv4.ping_group_range`` (off by default on Debian: ``1 0``); macOS allows it.
   The kernel sets the echo identifier and strips the IP header from replies.
2. ``icmp_raw``: a raw ICMP socket, which needs root / CAP_NET_RAW (Administrator on
   Windows). It sees every ICMP packet, so replies are matched on source, identifier and
   sequence. scapy would need the very same privilege and ~40 MB more memory, so it is
   not used here.
3. Neither: the ICMP result is ``skipped`` with the reason.

The RTT is ``perf_counter`` from just before ``sendto`` to the matching reply being read.
IPv4 only.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ECHO_REQUEST = 8
ECHO_REPLY = 0
PAYLOAD = b"classprobe-icmp-echo-" + bytes(range(35))  # 56 bytes, as ping(8) sends


class IcmpUnavailable(Exception):  # noqa: N818 - it is a reason, not a crash
    """No ICMP socket can be opened here; the message is the skip reason."""


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum (one's complement of the one's complement sum)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = PAYLOAD) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


@dataclass(frozen=True)
class IcmpHeader:
    type: int
    code: int
    ident: int
    seq: int


def parse_icmp(packet: bytes, has_ip_header: bool) -> IcmpHeader | None:
    """The ICMP header of a received packet (raw sockets include the IPv4 header)."""
    offset = 0
    if has_ip_header:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8:
        return None
    kind, code, _csum, ident, seq = struct.unpack_from("!BBHHH", packet, offset)
    return IcmpHeader(kind, code, ident, seq)


def ping_group_range(proc_root: Path = Path("/proc")) -> tuple[int, int] | None:
    """``net.ipv4.ping_group_range`` as (low, high); None where it cannot be read."""
    try:
        low, high = (proc_root / "sys/net/ipv4/ping_group_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def unavailable_reason(dgram_error: OSError, raw_error: OSError,
                       group_range: tuple[int, int] | None, is_root: bool) -> str:
    if group_range is not None:
        low, high = group_range
        groups = {os.getgid(), *os.getgroups()} if hasattr(os, "getgroups") else set()
        allowed = any(low <= g <= high for g in groups)
        if not allowed and not is_root:
            return (f"unprivileged ICMP disabled by net.ipv4.ping_group_range ({low} {high}) "
                    "and not root")
    return (f"no ICMP socket allowed: datagram socket: {dgram_error.strerror or dgram_error}; "
            f"raw socket: {raw_error.strerror or raw_error}")


SocketOpener = Callable[[], tuple[socket.socket, str]]


def open_icmp_socket() -> tuple[socket.socket, str]:
    """An ICMP socket and its method name; raises :class:`IcmpUnavailable`."""
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), \
            "icmp_dgram"
    except OSError as dgram_error:
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), \
                "icmp_raw"
        except OSError as raw_error:
            is_root = hasattr(os, "geteuid") and os.geteuid() == 0
            group_range = ping_group_range() if sys.platform.startswith("linux") else None
            raise IcmpUnavailable(unavailable_reason(dgram_error, raw_error, group_range,
                                                     is_root)) from raw_error


@dataclass
class EchoRun:
    method: str
    rtts_ms: list[float | None]
    """One entry per request, in order; None where no reply came in time."""
    send_errors: list[str]
    """Requests the OS refused to send (no route...): not loss, and not in ``rtts_ms``."""

    @property
    def received(self) -> list[float]:
        return [r for r in self.rtts_ms if r is not None]

    @property
    def loss_pct(self) -> float:
        if not self.rtts_ms:
            raise ValueError("no echo request was sent")
        return 100.0 * (len(self.rtts_ms) - len(self.received)) / len(self.rtts_ms)


def _await_reply(sock: socket.socket, raw: bool, address: str, ident: int, seq: int,
                 deadline: float) -> float | None:
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return None
        packet, source = sock.recvfrom(65535)
        arrived = time.perf_counter()
        header = parse_icmp(packet, has_ip_header=raw)
        if header is None or header.type != ECHO_REPLY or header.seq != seq:
            continue
        if raw and (source[0] != address or header.ident != ident):
            continue  # someone else's ping, or our own request seen on loopback
        return arrived


def echo(address: str, count: int, timeout_s: float, interval_s: float = 0.1,
         opener: SocketOpener = open_icmp_socket) -> EchoRun:
    """Send ``count`` echo requests to the IPv4 ``address``, one at a time."""
    sock, method = opener()
    raw = method == "icmp_raw"
    ident = random.randrange(1, 0xFFFF)
    base_seq = random.randrange(0, 0xFFFF)
    rtts: list[float | None] = []
    errors: list[str] = []
    with sock:
        sock.setblocking(False)
        for i in range(count):
            if i and interval_s > 0:
                time.sleep(interval_s)
            seq = (base_seq + i) & 0xFFFF
            packet = echo_request(ident, seq)
            sent = time.perf_counter()
            try:
                sock.sendto(packet, (address, 0))
            except OSError as exc:  # e.g. network unreachable: nothing left the machine
                errors.append(f"sendto {address}: {exc.strerror or exc}")
                continue
            arrived = _await_reply(sock, raw, address, ident, seq, sent + timeout_s)
            rtts.append(None if arrived is None else (arrived - sent) * 1000.0)
    return EchoRun(method=method, rtts_ms=rtts, send_errors=errors)
