"""Ground truth of the lab: what a correct measurement must find, and the tolerances.

- Goodput through tbf: each full TCP segment carries 1448 payload bytes (1500 MTU − 20 IP
  − 20 TCP − 12 timestamp option) and costs 1514 bytes of the shaper's budget (+14
  Ethernet header), so true goodput = rate × 1448/1514 ≈ 0.956 × rate (lab-facts §3).
- Loss: the wire drops each direction independently; a request/response pair survives
  with probability (1 − p)².
- Jitter: uniform ±J per direction gives a mean |ΔRTT| of 14/15 · J for sparse probes.
"""

from __future__ import annotations

ETHERNET_HEADER = 14
TCP_IP_HEADERS = 52  # IPv4 20 + TCP 20 + timestamps option 12
# Tolerances the lab's self-tests assert, measured on this machine kind (README).
GOODPUT_REL_TOLERANCE = 0.01
"""Plain TCP through tbf (3 s, 1 s warm-up) vs ``tcp_goodput_mbps``: measured within 0.6 %."""
WIRE_RTT_TOLERANCE_MS = {"icmp": (-0.2, 0.6), "tcp_connect": (-0.2, 1.0)}
"""Median RTT through the wire minus (veth baseline + 2 × delay): measured +0.1..+0.45 ms."""


def tcp_goodput_mbps(rate_mbit: float, mtu: int = 1500) -> float:
    """True TCP goodput through a tbf of ``rate_mbit`` on Ethernet: payload / frame bytes."""
    return rate_mbit * (mtu - TCP_IP_HEADERS) / (mtu + ETHERNET_HEADER)


def round_trip_loss_pct(loss_pct: float) -> float:
    """Loss of a request/response pair when each direction loses ``loss_pct`` independently."""
    return 100 * (1 - (1 - loss_pct / 100) ** 2)


def loss_sigma_pct(loss_pct: float, count: int) -> float:
    """Standard deviation, in percentage points, of a loss rate observed over ``count``
    independent trials whose true rate is ``loss_pct`` (binomial)."""
    p = loss_pct / 100
    return 100 * (p * (1 - p) / count) ** 0.5


def rtt_jitter_ms(jitter_ms: float) -> float:
    """Expected mean |RTT_i - RTT_(i-1)| (RFC 3550 style) through the wire.

    Each direction adds U(-J, +J); consecutive RTT difference is a sum of four independent
    U(-J, J), whose mean absolute value is 14/15 · J. Valid for probes spaced more than
    2J apart with delay_ms >= jitter_ms (no flooring, no queueing behind each other).
    """
    return 14 / 15 * jitter_ms
