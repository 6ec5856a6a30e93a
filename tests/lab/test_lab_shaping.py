"""tbf on the gateway sets the true bottleneck: plain TCP goodput = rate × 1448/1514 ± 1 %."""

from __future__ import annotations

import pytest

from tests.lab.measure import tcp_goodput
from tests.lab.netlab import Lab
from tests.lab.truth import GOODPUT_REL_TOLERANCE, tcp_goodput_mbps

pytestmark = pytest.mark.lab
RATE_MBIT = 20
ATTEMPTS = 3
"""A 3 s transfer on 2 shared cores sometimes loses a few percent to a CPU stall (the
user-space wire, other suites' leftovers); the lab's claim is that a clean run recovers the
rate within 1 %, so up to three runs are made and the closest must be within it."""


def _closest_goodput(lab: Lab, direction: str) -> float:
    truth = tcp_goodput_mbps(RATE_MBIT)
    runs: list[float] = []
    for _ in range(ATTEMPTS):
        runs.append(tcp_goodput(lab, direction, seconds=3, warmup_s=1).mbps)
        if abs(runs[-1] - truth) <= GOODPUT_REL_TOLERANCE * truth:
            break
    print(f"{direction}: goodput runs {[round(r, 3) for r in runs]} Mbit/s, truth {truth:.3f}")
    return min(runs, key=lambda r: abs(r - truth))


@pytest.mark.parametrize("direction", ["down", "up"])
def test_tbf_20mbit_plain_tcp_goodput(lab: Lab, direction: str) -> None:
    lab.shape(direction, RATE_MBIT)  # type: ignore[arg-type]
    measured = _closest_goodput(lab, direction)
    assert measured == pytest.approx(tcp_goodput_mbps(RATE_MBIT), rel=GOODPUT_REL_TOLERANCE)


@pytest.mark.parametrize("direction", ["down", "up"])
def test_tbf_and_wire_combine(lab: Lab, direction: str) -> None:
    """Through the TUN wire (20 ms each way) the up shaper sits on the TUN device."""
    lab.shape("both", RATE_MBIT)
    lab.set_path(20)
    measured = _closest_goodput(lab, direction)
    assert measured == pytest.approx(tcp_goodput_mbps(RATE_MBIT), rel=GOODPUT_REL_TOLERANCE)


def test_shaping_only_limits_its_own_direction_and_unshape_lifts_it(lab: Lab) -> None:
    lab.shape("down", 5)
    assert lab.shaping == {"down": 5}
    assert tcp_goodput(lab, "up", seconds=1.5, warmup_s=0.5).mbps > 200
    lab.unshape()
    assert lab.shaping == {}
    assert tcp_goodput(lab, "down", seconds=1.5, warmup_s=0.5).mbps > 200
    qdiscs = lab.run("gw", ["tc", "qdisc", "show"], check=True).stdout
    assert "tbf" not in qdiscs
