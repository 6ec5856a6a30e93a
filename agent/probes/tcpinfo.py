"""Bytes the peer has acknowledged on a TCP connection, from the kernel (Linux ``TCP_INFO``).

An upload's own byte count (what was handed to the socket) runs ahead of delivery by the
socket buffer, and the server's confirmation comes only when a request completes. The
kernel knows continuously how much the peer has acknowledged: ``tcpi_bytes_acked``
(RFC 4898 ``tcpEStatsAppHCThruOctetsAcked``) in ``struct tcp_info``, Linux 4.1 and later,
a ``__u64`` at byte offset 120 (after the 8 bytes of state fields, 24 ``__u32`` fields and
the two ``__u64`` pacing rates). It counts every payload byte the peer's TCP received in
order (HTTP request headers included) plus 1 for the SYN. Elsewhere (macOS, Windows, old
kernels) :func:`bytes_acked` returns None and the caller falls back to what the server
confirms.
"""

from __future__ import annotations

import socket
import struct
import threading

BYTES_ACKED_OFFSET = 120
_U64 = struct.Struct("=Q")
TCP_INFO_BUFFER = 256


def parse_bytes_acked(raw: bytes) -> int | None:
    """``tcpi_bytes_acked`` from a raw ``struct tcp_info``; None if the kernel's is too short."""
    if len(raw) < BYTES_ACKED_OFFSET + _U64.size:
        return None
    return int(_U64.unpack_from(raw, BYTES_ACKED_OFFSET)[0])


def bytes_acked(sock: socket.socket) -> int | None:
    """Bytes the peer acknowledged on ``sock``; None where the OS does not say (or closed)."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, TCP_INFO_BUFFER)
    except OSError:
        return None
    return parse_bytes_acked(raw)


class AckedCounter:
    """Acknowledged bytes summed over the connections one stream opened, one after another.

    ``add(sock)`` when a connection opens; ``total()`` (any thread) reads every socket
    still open and keeps the last value read from those since closed, so call it once
    more before a socket is closed (the bandwidth probe does when a response arrives).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._last: list[int] = []
        self._base = 0

    def add(self, sock: socket.socket) -> bool:
        """Follow ``sock``; False when the OS gives no acknowledged-byte count for it."""
        first = bytes_acked(sock)
        if first is None:
            return False
        with self._lock:
            self._socks.append(sock)
            self._last.append(first)
            self._base += first
        return True

    def rewrapped(self, sock: socket.socket) -> None:
        """The last connection's socket was taken over by ``sock`` (TLS wraps detach the
        plain socket, which then reads as closed): follow ``sock`` from now on."""
        with self._lock:
            if self._socks:
                self._socks[-1] = sock

    @property
    def following(self) -> bool:
        return bool(self._socks)

    def total(self) -> int:
        with self._lock:
            for i, sock in enumerate(self._socks):
                now = bytes_acked(sock)
                if now is not None and now > self._last[i]:
                    self._last[i] = now
            return sum(self._last) - self._base
