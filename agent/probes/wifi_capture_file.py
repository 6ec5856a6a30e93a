"""Strict framing of pcap and pcapng capture files (no dissection; that is scapy's job).

scapy's readers are lenient: a cut-off last record comes back as a shorter packet with a
warning, and a cut-off pcapng block ends the file silently. An analysis that must not guess
needs to know, so this module walks the records itself and raises :class:`CaptureError`
naming the byte offset where the file stops making sense. It yields each frame's bytes,
its link type, its timestamp and its original (on-air) length, which may exceed the
captured bytes when the capture was taken with a small snap length (headers only).

Formats: pcap (libpcap; µs or ns timestamps, either byte order) and pcapng (SHB, IDB with
``if_tsresol``, EPB, SPB and the obsolete PB; other blocks are skipped).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_RECORD = 262_144
"""A record claiming more than this is corrupt (pcap's own snaplen ceiling)."""

LINKTYPE_IEEE802_11 = 105
LINKTYPE_RADIOTAP = 127
LINKTYPE_NAMES = {1: "Ethernet", 105: "IEEE 802.11", 113: "Linux cooked", 119: "Prism",
                  127: "802.11 RadioTap", 163: "AVS", 192: "PPI", 276: "Linux cooked v2"}


class CaptureError(ValueError):
    """The file is not a readable capture; the message says where and why."""


@dataclass(frozen=True)
class Record:
    time: float
    linktype: int
    data: bytes
    wire_len: int


class _Reader:
    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh, self.name, self.pos = fh, name, 0

    def take(self, n: int, what: str) -> bytes:
        data = self.fh.read(n)
        if len(data) < n:
            raise CaptureError(f"{self.name} is truncated: {what} at byte {self.pos} needs "
                               f"{n} bytes, only {len(data)} remain")
        self.pos += n
        return data

    def at_end(self) -> bool:
        peek = self.fh.read(1)
        if peek:
            self.fh.seek(-1, 1)
        return not peek


def read_capture(path: Path) -> Iterator[Record]:
    """Records of a pcap or pcapng file; CaptureError for anything else or any damage."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot read {path.name}: {exc.strerror}") from exc
    with fh:
        reader = _Reader(fh, path.name)
        if reader.at_end():
            raise CaptureError(f"{path.name} is empty")
        magic = fh.read(4)
        fh.seek(0)
        if magic == b"\x0a\x0d\x0d\x0a":
            yield from _pcapng(reader)
        elif magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                       b"\xa1\xb2\x3c\x4d"):
            yield from _pcap(reader, magic)
        else:
            raise CaptureError(f"{path.name} is not a pcap or pcapng file (starts with "
                               f"{magic.hex()})")


def _pcap(r: _Reader, magic: bytes) -> Iterator[Record]:
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    header = r.take(24, "the pcap file header")
    linktype = struct.unpack(endian + "I", header[20:24])[0] & 0x0FFFFFFF
    n = 0
    while not r.at_end():
        n += 1
        sec, frac, caplen, wirelen = struct.unpack(endian + "IIII",
                                                   r.take(16, f"record {n}'s header"))
        if caplen > MAX_RECORD:
            raise CaptureError(f"{r.name}: record {n} claims {caplen} bytes (corrupt)")
        data = r.take(caplen, f"record {n}'s data")
        yield Record(sec + frac * scale, linktype, data, max(wirelen, caplen))


def _pcapng(r: _Reader) -> Iterator[Record]:
    endian = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per timestamp unit)
    n = 0
    while not r.at_end():
        n += 1
        start = r.pos
        head = r.take(8, f"block {n}'s header")
        if head[:4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order may change
            bom = r.take(4, "the section's byte-order magic")
            endian = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(bom, "")
            if not endian:
                raise CaptureError(f"{r.name}: bad pcapng byte-order magic at byte {start}")
            interfaces = []
            length = struct.unpack(endian + "I", head[4:8])[0]
            body_len = length - 16
        else:
            length = struct.unpack(endian + "I", head[4:8])[0]
            body_len = length - 12
        if length % 4 or body_len < 0 or length > MAX_RECORD + 64:
            raise CaptureError(f"{r.name}: block {n} at byte {start} has bad length {length}")
        body = r.take(body_len, f"block {n}'s body")
        trailer = struct.unpack(endian + "I", r.take(4, f"block {n}'s trailing length"))[0]
        if trailer != length:
            raise CaptureError(f"{r.name}: block {n} at byte {start} is damaged (length "
                               f"{length}, trailing length {trailer})")
        btype = struct.unpack(endian + "I", head[:4])[0]
        if btype == 1:
            interfaces.append(_idb(body, endian))
        elif btype in (2, 3, 6):
            record = _packet_block(btype, body, endian, interfaces, r.name, n)
            if record is not None:
                yield record


def _idb(body: bytes, endian: str) -> tuple[int, float]:
    linktype = struct.unpack(endian + "H", body[:2])[0]
    resolution = 1e-6
    pos = 8
    while pos + 4 <= len(body):
        code, olen = struct.unpack(endian + "HH", body[pos:pos + 4])
        if code == 0:
            break
        if code == 9 and olen >= 1:  # if_tsresol
            v = body[pos + 4]
            resolution = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + olen + (-olen % 4)
    return linktype, resolution


def _packet_block(btype: int, body: bytes, endian: str, interfaces: list[tuple[int, float]],
                  name: str, n: int) -> Record | None:
    if btype == 3:  # simple packet block: no timestamp, cannot be placed in time
        return None
    if btype == 6:
        if len(body) < 20:
            raise CaptureError(f"{name}: enhanced packet block {n} is too short")
        iface, hi, lo, caplen, wirelen = struct.unpack(endian + "IIIII", body[:20])
        offset = 20
    else:
        if len(body) < 20:
            raise CaptureError(f"{name}: packet block {n} is too short")
        iface, _drops, hi, lo, caplen, wirelen = struct.unpack(endian + "HHIIII", body[:20])
        offset = 20
    if iface >= len(interfaces):
        raise CaptureError(f"{name}: block {n} names interface {iface}, which was not "
                           "described")
    if offset + caplen > len(body):
        raise CaptureError(f"{name}: block {n} claims {caplen} captured bytes, its body has "
                           f"{len(body) - offset}")
    linktype, resolution = interfaces[iface]
    return Record(((hi << 32) | lo) * resolution, linktype, body[offset:offset + caplen],
                  max(wirelen, caplen))
