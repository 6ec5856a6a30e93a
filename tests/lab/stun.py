"""STUN binding (RFC 5389): the lab's responder and a minimal client codec.

A Binding request is a 20-byte header: type 0x0001, length, magic cookie 0x2112A442 and a
12-byte transaction id. The success response (0x0101) carries XOR-MAPPED-ADDRESS (0x0020):
family 1, port XOR 0x2112, IPv4 address XOR the cookie, so the client learns the address
and port the server saw.
"""

from __future__ import annotations

import os
import socket
import struct

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
XOR_MAPPED_ADDRESS = 0x0020
MAPPED_ADDRESS = 0x0001
SOFTWARE = 0x8022
HEADER = struct.Struct("!HHI12s")


class StunError(ValueError):
    """A datagram that is not the STUN message we expected; the message says why."""


def binding_request(txid: bytes | None = None) -> bytes:
    txid = txid if txid is not None else os.urandom(12)
    if len(txid) != 12:
        raise StunError(f"transaction id must be 12 bytes, got {len(txid)}")
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, txid)


def _attr(kind: int, value: bytes) -> bytes:
    pad = b"\0" * (-len(value) % 4)
    return struct.pack("!HH", kind, len(value)) + value + pad


def binding_success(txid: bytes, addr: str, port: int, software: str = "classprobe-lab") -> bytes:
    """The success response telling the client it was seen as ``addr:port`` (IPv4)."""
    xaddr = struct.unpack("!I", socket.inet_aton(addr))[0] ^ MAGIC_COOKIE
    body = _attr(XOR_MAPPED_ADDRESS, struct.pack("!BBHI", 0, 1, port ^ (MAGIC_COOKIE >> 16), xaddr))
    body += _attr(SOFTWARE, software.encode())
    return HEADER.pack(BINDING_SUCCESS, len(body), MAGIC_COOKIE, txid) + body


def parse_request(data: bytes) -> bytes:
    """Transaction id of a Binding request; StunError for anything else."""
    if len(data) < HEADER.size:
        raise StunError(f"{len(data)} bytes is shorter than a STUN header")
    kind, _length, cookie, txid = HEADER.unpack_from(data)
    if cookie != MAGIC_COOKIE or kind != BINDING_REQUEST:
        raise StunError(f"not a Binding request (type 0x{kind:04x}, cookie 0x{cookie:08x})")
    return bytes(txid)


def parse_success(data: bytes, txid: bytes) -> tuple[str, int]:
    """The (address, port) in a Binding success response to ``txid``."""
    if len(data) < HEADER.size:
        raise StunError(f"{len(data)} bytes is shorter than a STUN header")
    kind, length, cookie, got = HEADER.unpack_from(data)
    if kind != BINDING_SUCCESS or cookie != MAGIC_COOKIE:
        raise StunError(f"not a Binding success (type 0x{kind:04x}, cookie 0x{cookie:08x})")
    if got != txid:
        raise StunError(f"transaction id {got.hex()} does not match {txid.hex()}")
    pos, end = HEADER.size, HEADER.size + length
    while pos + 4 <= end:
        attr, alen = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4:pos + 4 + alen]
        if attr == XOR_MAPPED_ADDRESS and len(value) >= 8 and value[1] == 1:
            xport, xaddr = struct.unpack_from("!HI", value, 2)
            return (socket.inet_ntoa(struct.pack("!I", xaddr ^ MAGIC_COOKIE)),
                    xport ^ (MAGIC_COOKIE >> 16))
        pos += 4 + alen + (-alen % 4)
    raise StunError("response has no IPv4 XOR-MAPPED-ADDRESS")


def answer(data: bytes, peer: tuple[str, int]) -> bytes | None:
    """The responder's reply to one datagram from ``peer``, or None to ignore it."""
    try:
        txid = parse_request(data)
    except StunError:
        return None
    return binding_success(txid, peer[0], peer[1])
