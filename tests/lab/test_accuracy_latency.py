"""``classprobe probe latency`` against the lab's TUN wire, whose delay, jitter and loss we set.

Added RTT: the issue asks for "added one-way delay 10 and 40 ms": ``lab.set_path(10)``
delays each direction by 10 ms, so the truth is +20 ms of RTT (+80 ms at 40). Each test
measures its own baseline through the same wire at 0 ms (the wire's fixed cost, ~0.2 ms,
is in both and cancels) and compares p50 − baseline p50 with 2 × delay.

Jitter is the probe's mean |ΔRTT| of consecutive samples (RFC 3550 style, ``agent.stats``);
with each direction uniform ±J, truth is 14/15 · J (``tests.lab.truth.rtt_jitter_ms``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable

import pytest

from tests.lab import nsutil
from tests.lab import probe_runner as pr
from tests.lab.netlab import Lab
from tests.lab.plugin import Endpoints
from tests.lab.truth import loss_sigma_pct, round_trip_loss_pct, rtt_jitter_ms

pytestmark = pytest.mark.lab

ADDED_RTT_ABS_MS = 1.0
ADDED_RTT_REL = 0.03
"""Added RTT recovered within max(1 ms, 3 %) (issue 3). The wire's own timer error is
+0.1…+0.3 ms on top of its target (tests/lab/README.md); p50 of 15 samples keeps the
VM's scheduling spikes out."""
JITTER_SD_PER_J = 0.79
"""Standard deviation of mean |ΔRTT| over n samples is 0.79 · J / √n (Monte Carlo of four
uniform ±J terms per difference, 4000 runs at n = 50…200); tests allow 3 of them."""
LOSS_SIGMAS = 3.0
"""Round-trip loss within 3 binomial standard deviations of 1 − (1 − p)² for n echoes."""


def added_rtt_tolerance_ms(added_ms: float) -> float:
    return max(ADDED_RTT_ABS_MS, ADDED_RTT_REL * added_ms)


def jitter_tolerance_ms(jitter_ms: float, samples: int, noise_ms: float) -> float:
    """3σ of the estimator plus the lab's own jitter: mean |Δ(X + e)| differs from mean
    |ΔX| by at most mean |Δe| (triangle inequality), and mean |Δe| is what the probe
    reads through the same wire with no jitter set (``noise_ms``)."""
    return 3 * JITTER_SD_PER_J * jitter_ms / math.sqrt(samples) + noise_ms


def p50s(lab: Lab, target: str, count: int) -> dict[str, float]:
    """p50 of TCP connect, HTTP TTFB and ICMP echo from one ``probe latency`` run."""
    results = pr.cli(lab, "latency", target, "--count", str(count))
    latency, icmp = pr.one(results, "latency"), pr.one(results, "icmp")
    assert latency["status"] == "ok" and icmp["status"] == "ok", results
    got, echo = pr.by_metric(latency), pr.by_metric(icmp)
    assert got[("tcp_connect_ms", "p50")][1] == "tcp_connect"
    assert got[("http_ttfb_ms", "p50")][1] == "httpx_trace_ttfb"
    assert echo[("icmp_rtt_ms", "p50")][1] == "icmp_raw"  # root, ping_group_range "1 0"
    assert echo[("loss_pct", "value")][0] == 0
    return {"tcp_connect": got[("tcp_connect_ms", "p50")][0],
            "http_ttfb": got[("http_ttfb_ms", "p50")][0],
            "icmp": echo[("icmp_rtt_ms", "p50")][0]}


@pytest.mark.parametrize("one_way_ms", [10, 40])
def test_added_rtt_recovered_by_tcp_connect_ttfb_and_icmp(
        lab: Lab, lab_endpoints: Endpoints, one_way_ms: float) -> None:
    target = lab_endpoints.http_url + "/speed/ping"
    lab.set_path(0)
    baseline = p50s(lab, target, 15)
    lab.set_path(one_way_ms)
    delayed = p50s(lab, target, 15)
    tolerance = added_rtt_tolerance_ms(2 * one_way_ms)
    for phase, p50 in delayed.items():
        added = p50 - baseline[phase]
        assert added == pytest.approx(2 * one_way_ms, abs=tolerance), \
            f"{phase}: p50 {p50} − baseline {baseline[phase]} = {added:.3f} ms"


def icmp_jitter(lab: Lab, samples: int) -> float:
    # one at a time, each after the last reply: requests ~45 ms apart, more than 2 J,
    # so no echo queues behind the one before
    result = pr.icmp(lab, lab.far_addr, samples, 0.005, 1.0)
    assert result["status"] == "ok", result["reason"]
    value, method = pr.by_metric(result)[("jitter_ms", "value")]
    assert method == "icmp_raw"
    return float(value)


def tcp_jitter(lab: Lab, endpoints: Endpoints, samples: int) -> float:
    results = pr.cli(lab, "latency", f"{endpoints.addr}:{endpoints.http_port}", "--count",
                     str(samples), "--no-icmp")
    value, method = pr.by_metric(pr.one(results, "latency"))[("jitter_ms", "value")]
    assert method == "tcp_connect"
    return float(value)


@pytest.mark.parametrize(("method", "samples"), [("icmp", 100), ("tcp_connect", 80)])
def test_jitter_within_the_estimators_spread_of_the_truth(
        lab: Lab, lab_endpoints: Endpoints, method: str, samples: int) -> None:
    """Wire jitter ±5 ms each way at 20 ms delay, ``reorder=True`` (each packet independent,
    as netem does). In order-keeping mode a TCP connect's SYN queues behind the previous
    connection's ACK and FIN, sent microseconds before it: its delay is the max of several
    draws, which is not the jitter we set (measured +2.6 ms on p50, jitter off by up to
    +3 ms at J = 2)."""
    measure: Callable[[], float] = (
        (lambda: icmp_jitter(lab, samples)) if method == "icmp"
        else (lambda: tcp_jitter(lab, lab_endpoints, samples)))
    lab.set_path(20, reorder=True)
    noise = measure()
    lab.set_path(20, jitter_ms=5, reorder=True)
    measured = measure()
    truth = rtt_jitter_ms(5)
    tolerance = jitter_tolerance_ms(5, samples, noise)
    assert measured == pytest.approx(truth, abs=tolerance), \
        f"{method} jitter {measured} vs {truth:.3f} ± {tolerance:.3f} (noise {noise})"


def test_icmp_loss_matches_the_wire_and_the_binomial(make_lab: Callable[..., Lab]) -> None:
    """5 % loss each way: round-trip loss 9.75 %, 200 echoes 5 ms apart.

    The wire's loss is seeded, so besides the binomial check against the nominal rate
    the probe must count exactly the round trips the wire dropped (its own counters).
    A private lab with a loss-based congestion control, as the issue asks: cubic where the
    host allows it in namespaces (``.ci/run`` adds it to
    ``net.ipv4.tcp_allowed_congestion_control``), else reno (BBR shrugs loss off); ICMP
    itself is indifferent, the rule keeps any TCP in the lab like a classroom's.
    """
    cc = "cubic" if nsutil.congestion_control_allowed("cubic") else "reno"
    lossy = make_lab(congestion_control=cc)
    assert lossy.read_sysctl("cls", "net.ipv4.tcp_congestion_control") == cc
    lossy.set_path(5, loss_pct=5, seed=7)
    count = 200
    result = pr.icmp(lossy, lossy.far_addr, count, 0.005, 0.3)
    assert result["status"] == "ok", result["reason"]
    loss, method = pr.by_metric(result)[("loss_pct", "value")]
    assert method == "icmp_raw"
    stats = lossy.wire_stats()
    dropped = sum(direction["dropped"] for direction in stats.values())
    assert loss == pytest.approx(100 * dropped / count, abs=1e-9), stats
    truth = round_trip_loss_pct(5)
    sigma = loss_sigma_pct(truth, count)
    assert loss == pytest.approx(truth, abs=LOSS_SIGMAS * sigma)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.parametrize(("allowed", "user", "expected"), [
    (True, "root", "icmp_dgram"),
    (True, "nobody", "icmp_dgram"),
    (False, "root", "icmp_raw"),
    (False, "nobody", None),
])
def test_icmp_method_is_reported_or_skipped_with_the_reason(
        lab: Lab, lab_endpoints: Endpoints, allowed: bool, user: str,
        expected: str | None) -> None:
    """``icmp_dgram`` where net.ipv4.ping_group_range allows it (checked first, root too),
    ``icmp_raw`` for root otherwise; an unprivileged user with the sysctl off: skipped."""
    lab.allow_unprivileged_icmp(allowed)
    prefix = pr.AS_NOBODY if user == "nobody" else None
    results = pr.cli(lab, "latency", f"{lab.far_addr}:{lab_endpoints.http_port}", "--count",
                     "3", prefix=prefix)
    icmp = pr.one(results, "icmp")
    if expected is None:
        assert icmp["status"] == "skipped"
        assert icmp["reason"] == ("unprivileged ICMP disabled by net.ipv4.ping_group_range "
                                  "(1 0) and not root")
        return
    assert icmp["status"] == "ok", icmp["reason"]
    assert {method for _, method in pr.by_metric(icmp).values()} == {expected}
