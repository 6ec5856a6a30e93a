"""The lab's pure parts, without root: codecs, parsers, ground-truth formulas, the wire's queue."""

from __future__ import annotations

import os
import random
import statistics
from pathlib import Path

import pytest

from tests.lab import dnsserver, stun
from tests.lab.measure import EchoResult, parse_ping, slope
from tests.lab.netlab import burst_bytes
from tests.lab.truth import round_trip_loss_pct, rtt_jitter_ms, tcp_goodput_mbps
from tests.lab.tunwire import Direction, WireSpec

FIXTURES = Path(__file__).parent / "fixtures"

# RFC 5769 §2.2 sample IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1 port 32853.
RFC5769_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "00200008" "0001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96")
RFC5769_TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")


def test_stun_parses_the_rfc5769_sample_response() -> None:
    assert stun.parse_success(RFC5769_RESPONSE, RFC5769_TXID) == ("192.0.2.1", 32853)


def test_stun_responder_round_trip_and_refusals() -> None:
    txid = bytes(range(12))
    request = stun.binding_request(txid)
    assert request[:8] == bytes.fromhex("000100002112a442")
    reply = stun.answer(request, ("10.77.1.2", 40000))
    assert reply is not None
    assert stun.parse_success(reply, txid) == ("10.77.1.2", 40000)
    assert stun.answer(b"GET / HTTP/1.1\r\n\r\n", ("10.77.1.2", 1)) is None
    with pytest.raises(stun.StunError, match="does not match"):
        stun.parse_success(reply, bytes(12))


def test_dns_rules_answer_zone_nxdomain_sinkhole_and_nodata() -> None:
    rules = dnsserver.Rules(zone={"far.lab.test": "10.77.10.1"}, nxdomain={"blocked.lab.test"},
                            sinkhole={"ads.lab.test": "10.77.1.1"})

    def ask(name: str, qtype: int = dnsserver.TYPE_A) -> tuple[int, int, list[str]]:
        query = dnsserver.build_query(name, qtype, qid=7)
        reply = dnsserver.resolve(rules, query)
        assert reply is not None
        return dnsserver.parse_reply(reply, len(query))

    assert ask("far.lab.test") == (7, 0, ["10.77.10.1"])
    assert ask("FAR.lab.test") == (7, 0, ["10.77.10.1"])
    assert ask("far.lab.test", qtype=28) == (7, 0, [])
    assert ask("blocked.lab.test") == (7, dnsserver.RCODE_NXDOMAIN, [])
    assert ask("www.blocked.lab.test") == (7, dnsserver.RCODE_NXDOMAIN, [])
    assert ask("x.ads.lab.test") == (7, 0, ["10.77.1.1"])
    assert ask("unknown.example") == (7, dnsserver.RCODE_NXDOMAIN, [])
    assert dnsserver.resolve(rules, b"\x00\x07\x81\x80" + bytes(8)) is None


def test_parse_ping_recorded_output_with_loss() -> None:
    result = parse_ping((FIXTURES / "ping_iputils_wire20ms_loss.txt").read_text())
    assert (result.transmitted, result.received) == (10, 5)
    assert result.rtts_ms == (41.8, 40.3, 40.5, 40.3, 40.4)
    assert result.loss_pct == 50.0
    assert result.median_ms == 40.4
    with pytest.raises(ValueError, match="no ping summary"):
        parse_ping("ping: connect: Network is unreachable\n")


def test_echo_result_counts_loss_and_reordering() -> None:
    result = EchoResult(sent=6, arrivals=(0, 2, 1, 3, 5))
    assert result.received == 5
    assert result.loss_pct == pytest.approx(100 / 6)
    assert result.reordered == 1


def test_ground_truth_formulas() -> None:
    assert tcp_goodput_mbps(20) == pytest.approx(20 * 1448 / 1514)
    assert tcp_goodput_mbps(100, mtu=9000) == pytest.approx(100 * 8948 / 9014)
    assert round_trip_loss_pct(5) == pytest.approx(9.75)
    assert burst_bytes(5) == 15000
    assert burst_bytes(100) == 125000
    assert slope([(0.0, 0), (1.0, 10), (2.0, 20)]) == pytest.approx(10)


def test_rtt_jitter_constant_matches_simulation() -> None:
    rng = random.Random(11)
    rtts = [rng.uniform(-1, 1) + rng.uniform(-1, 1) for _ in range(200_000)]
    simulated = statistics.fmean(abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False))
    assert simulated == pytest.approx(rtt_jitter_ms(1.0), rel=0.01)


def _direction(spec: WireSpec) -> tuple[Direction, int]:
    r, w = os.pipe()
    return Direction("a_to_b", fd_in=-1, fd_out=w, spec=spec, rng=random.Random(spec.seed)), r


def test_wire_direction_keeps_fifo_order_under_jitter_unless_reorder() -> None:
    for reorder, expect_sorted in ((False, True), (True, False)):
        d, r = _direction(WireSpec(delay_ms=10, jitter_ms=5, seed=4, reorder=reorder))
        for i in range(50):
            d.accept(bytes([i]), now=i * 0.0001)
        d.flush(now=1.0)
        out = list(os.read(r, 100))
        os.close(r)
        os.close(d.fd_out)
        assert sorted(out) == list(range(50))
        assert (out == list(range(50))) is expect_sorted


def test_wire_direction_loss_is_seeded_and_delay_is_exact() -> None:
    def drops(seed: int) -> int:
        d, r = _direction(WireSpec(delay_ms=20, loss_pct=5, seed=seed))
        for _ in range(2000):
            d.accept(b"x", now=0.0)
        os.close(r)
        os.close(d.fd_out)
        assert d.next_due() == pytest.approx(0.020)
        return d.dropped

    assert drops(1) == drops(1)
    assert drops(1) != drops(2)
    assert 100 * drops(1) / 2000 == pytest.approx(5, abs=3 * 100 * (0.05 * 0.95 / 2000) ** 0.5)


def test_wire_spec_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="loss_pct=120"):
        WireSpec(loss_pct=120)
    with pytest.raises(ValueError, match="delay_ms=-1"):
        WireSpec(delay_ms=-1)
    assert WireSpec(5, 1, 2, 3, True).argv() == [
        "--delay-ms", "5", "--jitter-ms", "1", "--loss-pct", "2", "--seed", "3", "--reorder"]


def test_unavailable_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.lab import nsutil

    monkeypatch.setattr(nsutil.os, "geteuid", lambda: 1000)
    assert nsutil.unavailable_reason() == "the network lab needs root (ip netns, tc, /dev/net/tun)"
    monkeypatch.setattr(nsutil.os, "geteuid", lambda: 0)
    monkeypatch.setattr(nsutil.shutil, "which", lambda tool: None if tool == "tc" else "/x")
    assert nsutil.unavailable_reason() == "the network lab needs 'tc' (Debian package iproute2)"


def test_loss_sigma_is_the_binomial_standard_deviation_in_points() -> None:
    from tests.lab.truth import loss_sigma_pct

    assert loss_sigma_pct(50, 100) == pytest.approx(5.0)
    assert loss_sigma_pct(9.75, 200) == pytest.approx(100 * (0.0975 * 0.9025 / 200) ** 0.5)
    assert loss_sigma_pct(0, 500) == 0
