"""Acknowledged-byte counts from Linux ``struct tcp_info``."""

import socket
import sys
import time
from pathlib import Path

import pytest

from agent.probes.tcpinfo import AckedCounter, bytes_acked, parse_bytes_acked

RECORDED = Path(__file__).parent / "fixtures" / "tcp_info_linux_6.x_acked_123457.bin"


def test_parse_recorded_tcp_info():
    # recorded after 123456 bytes were sent and read on loopback (+1 for the SYN)
    assert parse_bytes_acked(RECORDED.read_bytes()) == 123_457


def test_a_kernel_without_the_field_gives_none():
    assert parse_bytes_acked(RECORDED.read_bytes()[:120]) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")
def test_counter_follows_connections_and_keeps_closed_ones():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        counter = AckedCounter()
        peers = []
        for size in (10_000, 20_000):
            sock = socket.create_connection(srv.getsockname())
            assert counter.add(sock)
            peer, _ = srv.accept()
            peers.append(peer)
            sock.sendall(b"x" * size)
            got = 0
            while got < size:
                got += len(peer.recv(65536))
            expected = 10_000 if size == 10_000 else 30_000
            deadline = time.monotonic() + 2  # a delayed ACK may take up to ~40 ms
            while counter.total() < expected and time.monotonic() < deadline:
                time.sleep(0.01)
            assert counter.total() == expected  # read while open...
            sock.close()  # ...then closed: its last count is kept
        assert counter.total() == 30_000
        assert bytes_acked(sock) is None
        for peer in peers:
            peer.close()
