import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agent.probes.icmp import (
    EchoRun,
    IcmpUnavailable,
    checksum,
    echo,
    echo_request,
    open_icmp_socket,
    parse_icmp,
    unavailable_reason,
)
from agent.probes.latency import LatencyOptions, icmp_result, measure


def test_rfc1071_checksum_example():
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 after folding
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert checksum(b"\x01") == 0xFEFF  # odd length is padded with a zero byte


def test_echo_request_bytes():
    assert echo_request(0x1234, 1, b"") == bytes.fromhex("0800e5ca12340001")
    packet = echo_request(7, 65536 + 3)  # seq wraps at 16 bits
    assert checksum(packet) == 0
    assert struct.unpack("!HH", packet[4:8]) == (7, 3)


def test_parse_reply_with_and_without_ip_header():
    icmp = bytes.fromhex("0000edca12340001")
    ip = bytes.fromhex("4500001c000040004001") + b"\x00\x00" + bytes([127, 0, 0, 1]) * 2
    for packet, raw in ((icmp, False), (ip + icmp, True)):
        header = parse_icmp(packet, has_ip_header=raw)
        assert header is not None
        assert (header.type, header.code, header.ident, header.seq) == (0, 0, 0x1234, 1)
    assert parse_icmp(b"\x00\x00", has_ip_header=False) is None
    assert parse_icmp(b"\x60" + b"\x00" * 40, has_ip_header=True) is None  # IPv6: not ours


def test_reason_when_ping_group_range_excludes_us():
    reason = unavailable_reason(OSError(errno.EACCES, "Permission denied"),
                                OSError(errno.EPERM, "Operation not permitted"),
                                (1, 0), is_root=False)
    assert reason == ("unprivileged ICMP disabled by net.ipv4.ping_group_range (1 0) "
                      "and not root")


def test_reason_otherwise_names_both_errors():
    reason = unavailable_reason(OSError(errno.EACCES, "Permission denied"),
                                OSError(errno.EPERM, "Operation not permitted"),
                                None, is_root=False)
    assert reason == ("no ICMP socket allowed: datagram socket: Permission denied; "
                      "raw socket: Operation not permitted")


def test_loss_pct():
    run = EchoRun(method="icmp_raw", rtts_ms=[1.0, None, 2.0, None], send_errors=[])
    assert run.received == [1.0, 2.0]
    assert run.loss_pct == 50.0


def _refuse() -> tuple[socket.socket, str]:
    raise IcmpUnavailable("unprivileged ICMP disabled by net.ipv4.ping_group_range (1 0) "
                          "and not root")


def test_no_icmp_socket_means_skipped_with_reason(closed_port: int):
    results = measure([f"127.0.0.1:{closed_port}"],
                      LatencyOptions(samples=2, timeout_s=1, icmp_opener=_refuse))
    icmp = [r for r in results if r.probe == "icmp"]
    assert len(icmp) == 1
    assert icmp[0].status == "skipped"
    assert icmp[0].target == "127.0.0.1"
    assert icmp[0].reason == ("unprivileged ICMP disabled by net.ipv4.ping_group_range (1 0) "
                              "and not root")
    assert icmp[0].measurements == []


def test_no_reply_is_failed_not_100_percent_loss():
    class BlackHole(socket.socket):
        """Swallows every request; nothing ever becomes readable."""

        def sendto(self, data, address):  # type: ignore[override]
            return len(data)

    def opener() -> tuple[socket.socket, str]:
        return BlackHole(socket.AF_INET, socket.SOCK_DGRAM), "icmp_dgram"

    opts = LatencyOptions(samples=2, timeout_s=0.05, icmp_interval_s=0, icmp_opener=opener)
    result = icmp_result("127.0.0.1", [(socket.AF_INET, ("127.0.0.1", 0))], None, opts, None)
    assert result.status == "failed"
    assert result.reason == ("no ICMP echo reply from 127.0.0.1 to 2 requests within 0.05 s "
                             "(lost, or ICMP filtered on the path)")


def test_real_echo_to_loopback():
    try:
        sock, method = open_icmp_socket()
    except IcmpUnavailable as exc:
        pytest.skip(f"no ICMP socket here: {exc}")
    sock.close()
    run = echo("127.0.0.1", 3, timeout_s=1.0, interval_s=0)
    assert run.method == method
    assert len(run.received) == 3
    assert run.loss_pct == 0.0
    assert all(0 < rtt < 100 for rtt in run.received)


DGRAM_IN_NETNS = """
import subprocess
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:  # per network namespace
    f.write("0 2147483647")
from agent.probes.icmp import echo
run = echo("127.0.0.1", 3, timeout_s=1.0, interval_s=0)
print(run.method, len(run.received))
"""


@pytest.mark.lab
def test_unprivileged_datagram_icmp_where_ping_group_range_allows_it():
    """In a private network namespace whose ping_group_range admits us, the datagram
    socket is used (not the raw one, even as root)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare(1) and ip(8) to make a private network namespace")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(["unshare", "--net", "--", sys.executable, "-c", DGRAM_IN_NETNS],
                         capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, PYTHONPATH=str(root)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["icmp_dgram", "3"]
