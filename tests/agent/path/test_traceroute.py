import os
import socket
from typing import Any

import pytest

from agent.probes import traceroute
from agent.probes.pathnet import parse_path_target
from agent.probes.traceroute import (
    Hop,
    Reply,
    TraceOptions,
    attribute,
    build_hops,
    check_traceroute,
    scapy_trace,
)
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.path.conftest import FakeResolver, nxdomain

DEST = "203.0.113.10"
# A school path: Wi-Fi AP/router, school core, school firewall, ISP, destination.
SCHOOL = [
    *(Reply(1, "192.168.10.1", rtt, False) for rtt in (4.0, 9.0, 5.0)),
    *(Reply(2, "10.0.0.1", rtt, False) for rtt in (5.5, 6.0, 5.2)),
    *(Reply(3, "172.16.0.1", rtt, False) for rtt in (7.0, 7.5, 8.0)),
    *(Reply(4, "100.64.3.1", rtt, False) for rtt in (12.0, 11.0)),  # ISP CGNAT, one lost
    *(Reply(6, DEST, rtt, True) for rtt in (31.0, 30.0, 33.0)),
    Reply(7, DEST, 30.5, True),  # beyond the destination: ignored
]


def test_build_hops_groups_by_ttl_and_stops_at_the_destination():
    hops = build_hops(SCHOOL)
    assert [(h.ttl, h.address, h.reached) for h in hops] == [
        (1, "192.168.10.1", False), (2, "10.0.0.1", False), (3, "172.16.0.1", False),
        (4, "100.64.3.1", False), (5, None, False), (6, DEST, True)]
    assert hops[0].rtts_ms == [4.0, 5.0, 9.0]


def test_attribute_school_path():
    attr = attribute(build_hops(SCHOOL))
    assert attr.hops == 6
    assert attr.first is not None and attr.first.address == "192.168.10.1"
    assert attr.gateway is not None and attr.gateway.address == "172.16.0.1"
    assert attr.target is not None and attr.target.address == DEST
    assert attr.notes == ()


def test_all_private_path_takes_the_last_hop_before_the_destination():
    hops = build_hops([Reply(1, "10.77.1.1", 0.2, False), Reply(2, "10.77.10.1", 0.4, True)])
    attr = attribute(hops)
    assert attr.gateway is not None and (attr.gateway.ttl, attr.hops) == (1, 2)


def test_public_first_hop_and_unreached_destination():
    hops = [Hop(1, "198.51.100.1", [1.0]), Hop(2, "198.51.100.9", [3.0])]
    attr = attribute(hops)
    assert (attr.gateway, attr.target, attr.hops) == (None, None, None)
    assert attr.notes == ("destination did not answer: hops and target_rtt_ms not measured",
                          "hop 1 has a public address: school gateway not identified")


def test_destination_at_hop_1():
    attr = attribute(build_hops([Reply(1, "127.0.0.1", 0.1, True)]))
    assert (attr.hops, attr.gateway) == (1, None)
    assert attr.notes == ("no router answered before the destination: no gateway hop",)


def by_metric(result: ProbeResult) -> dict[tuple[str, str], tuple[float | None, str, int]]:
    return {(m.metric, m.stat): (m.value, m.method, m.samples) for m in result.measurements}


def test_check_with_a_recorded_trace():
    def tracer(address: str, port: int, proto: str, max_hops: int, queries: int,
               timeout_s: float) -> list[Reply]:
        assert (address, port, proto, max_hops, queries) == (DEST, 443, "tcp_syn", 30, 3)
        return SCHOOL

    resolver = FakeResolver({"quiz.example": [DEST, "2001:db8::1"]})
    result = check_traceroute(parse_path_target("https://quiz.example/"), TraceOptions(),
                              resolver, tracer, lambda: None)
    assert result.status == "ok"
    got = by_metric(result)
    assert got[("hops", "value")] == (6.0, "traceroute_tcp_syn", 1)
    assert got[("first_hop_rtt_ms", "min")] == (4.0, "traceroute_tcp_syn:hop=1,addr=192.168.10.1",
                                                3)
    assert got[("first_hop_rtt_ms", "p50")][0] == 5.0
    assert got[("gateway_rtt_ms", "min")] == \
        (7.0, "traceroute_tcp_syn:hop=3,addr=172.16.0.1,rule=last_private", 3)
    assert got[("target_rtt_ms", "p50")] == (31.0, f"traceroute_tcp_syn:hop=6,addr={DEST}", 3)
    hop_rtts = [(m.method, m.value) for m in result.measurements if m.metric == "hop_rtt_ms"]
    assert hop_rtts == [
        ("traceroute_tcp_syn:hop=1,addr=192.168.10.1", 4.0),
        ("traceroute_tcp_syn:hop=2,addr=10.0.0.1", 5.2),
        ("traceroute_tcp_syn:hop=3,addr=172.16.0.1", 7.0),
        ("traceroute_tcp_syn:hop=4,addr=100.64.3.1", 11.0),
        (f"traceroute_tcp_syn:hop=6,addr={DEST}", 30.0)]
    assert result.reason == (f"path 1:192.168.10.1 2:10.0.0.1 3:172.16.0.1 4:100.64.3.1 5:* "
                             f"6:{DEST}")
    assert semantic_errors(new_report("a", "0", [result])) == []


def test_stun_targets_are_traced_with_icmp():
    seen = []

    def tracer(*args: object) -> list[Reply]:
        seen.append(args[2])
        return [Reply(1, "127.0.0.1", 0.1, True)]

    check_traceroute(parse_path_target("stun:127.0.0.1:3478"), TraceOptions(), FakeResolver({}),
                     tracer, lambda: None)
    assert seen == ["icmp_echo"]


def test_skips_and_failures():
    target = parse_path_target("https://quiz.example/")
    skipped = check_traceroute(target, TraceOptions(), FakeResolver({}), scapy_trace,
                               lambda: "traceroute needs root")
    assert (skipped.status, skipped.reason) == ("skipped", "traceroute needs root")
    dns = check_traceroute(target, TraceOptions(), FakeResolver({"quiz.example": nxdomain()}),
                           scapy_trace, lambda: None)
    assert (dns.status, dns.reason) == ("failed", "DNS lookup of quiz.example failed: "
                                                  "Name or service not known")
    v6 = check_traceroute(target, TraceOptions(), FakeResolver({"quiz.example": ["::1"]}),
                          scapy_trace, lambda: None)
    assert v6.status == "skipped"
    silent = check_traceroute(target, TraceOptions(max_hops=5),
                              FakeResolver({"quiz.example": [DEST]}),
                              lambda *a: [], lambda: None)
    assert (silent.status, silent.reason) == (
        "failed", f"no reply from any hop to {DEST} within 5 hops (probes filtered, or no route)")


def test_unavailable_without_root_or_cap_net_raw(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(traceroute, "raw_sockets_allowed", lambda: False)
    assert traceroute.unavailable() == \
        "traceroute needs root or CAP_NET_RAW (raw sockets for TTL-limited probes)"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_scapy_trace_on_loopback():
    pytest.importorskip("scapy")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = check_traceroute(parse_path_target(f"127.0.0.1:{port}"),
                                  TraceOptions(max_hops=2, queries=2, timeout_s=1.0),
                                  FakeResolver({}))
    assert result.status == "ok", result.reason
    got = by_metric(result)
    assert got[("hops", "value")] == (1.0, "traceroute_tcp_syn", 1)
    rtt, method, samples = got[("target_rtt_ms", "min")]
    assert method == "traceroute_tcp_syn:hop=1,addr=127.0.0.1" and samples == 2
    assert rtt is not None and 0 < rtt < 50


def test_the_agent_traces_each_host_once_in_a_probe_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.config import AgentConfig
    from agent.probes import path
    from agent.wire import utcnow

    traced: list[str] = []

    def fake_runner(check: str, target: Any, opts: Any) -> Any:
        assert check == "traceroute"
        traced.append(target.host)
        now = utcnow()
        return lambda: ProbeResult(probe="traceroute", status="ok", started_at=now,
                                        finished_at=now, target=target.raw)

    monkeypatch.setattr(path, "_runner", fake_runner)
    cfg = AgentConfig(path_targets=["https://quiz.example/", "wss://quiz.example/live",
                                    "stun:stun.example:3478", "ftp://x"])
    results = path.trace(cfg)
    assert traced == ["quiz.example", "stun.example"]
    assert [(r.status, r.target) for r in results][:2] == [
        ("ok", "https://quiz.example/"), ("ok", "stun:stun.example:3478")]
    assert results[2].status == "failed"
    assert path.trace(AgentConfig(traceroute=False))[0].reason == \
        "traceroute disabled in the configuration"
    assert path.trace(AgentConfig())[0].reason == "no path_targets configured"
    # the path checks themselves no longer trace (scapy stays out of their worker)
    monkeypatch.setattr(path, "run_path", lambda targets, opts: [] if not opts.traceroute
                        else pytest.fail("path.run traced"))
    path.run(cfg)
