"""``classprobe probe path`` names every gateway filter correctly and never flags a clean path.

Each case switches on one behaviour of ``lab.filters`` on the gateway, runs the CLI from
the classroom as a user would (names resolve through the lab DNS, ``--ca-bundle`` = the
lab CA, the legitimate roots), and checks the verdict and the mechanism in ``method``.
The same targets through the unfiltered gateway must come out clean. Traceroute has its
own lab test (tests/agent/path/test_lab_traceroute.py), so it is off here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.lab import probe_runner as pr
from tests.lab.certs import FILTER_CA_ORG, LAB_CA_ORG, CertSet
from tests.lab.netlab import Lab

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("iptables") is None,
                                 reason="gateway filters need iptables (Debian package iptables)")]

SEVER_AFTER_S = 2.0
HOLD_S = 3.0
HOLD_TOLERANCE_S = 0.3
"""``websocket_hold_s`` vs the filter's timer: the filter counts from its TCP accept, the
probe from the end of the WebSocket handshake (one local round trip later) and sees the
RST at once (it is blocked in recv); 0.3 s covers both processes' scheduling on a busy VM."""
STEP_TIMEOUT_S = 10.0
"""The CLI's own default per step. No case here waits for a timeout (each filter answers
at once, the dropped STUN requests end after their retransmissions), so on a clean path
it only bounds how slow a busy machine may be; 3 s failed once in CI (a wss handshake)."""
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")


def targets(lab: Lab) -> dict[str, str]:
    name = lab.far_name
    return {"http": f"http://{name}/", "https": f"https://{name}/",
            "ws": f"ws://{name}:8765/", "wss": f"wss://{name}:8766/",
            "stun": f"stun:{lab.far_addr}:3478"}


def path(lab: Lab, certs: CertSet, *args: str, hold_s: float = HOLD_S,
         env: dict[str, str] | None = None) -> list[pr.Result]:
    """The CLI with ``env``'s proxy variables and none other (the host's are blanked)."""
    given = {name.lower() for name in env or {}}
    blank = {name: "" for name in PROXY_VARIABLES if name.lower() not in given}
    return pr.cli(lab, "path", *args, "--ca-bundle", str(certs.ca_bundle), "--no-traceroute",
                  "--timeout", f"{STEP_TIMEOUT_S:g}", "--hold", f"{hold_s:g}",
                  "--ping-interval", "0.5",
                  env={**blank, **(env or {})})


def measured(results: list[pr.Result], probe: str, target: str | None,
             metric: str) -> tuple[Any, str, str]:
    """(value, method, reason) of ``metric`` in the ok result of ``probe`` for ``target``."""
    result = pr.one(results, probe, target)
    assert result["status"] == "ok", f"{probe} {target}: {result['reason']}"
    value, method = pr.by_metric(result)[(metric, "value")]
    return value, method, result.get("reason") or ""


def test_clean_path_is_never_flagged(lab: Lab, lab_endpoints: object,
                                     lab_certs: CertSet) -> None:
    t = targets(lab)
    results = path(lab, lab_certs, *t.values())
    for kind, layer in (("http", "http"), ("https", "http"), ("ws", "tcp"), ("wss", "tls")):
        assert measured(results, "block", t[kind], "blocked")[:2] == (0.0, f"clean:{layer}")
    for kind in ("https", "wss"):
        value, method, reason = measured(results, "tls", t[kind], "tls_intercepted")
        assert value == 0.0
        assert method.startswith("tls_chain:issuer=") and f"O={LAB_CA_ORG}" in method
        assert reason.startswith("chain verified by the legitimate roots")
    for kind in ("ws", "wss"):
        value, method, _ = measured(results, "websocket", t[kind], "websocket_hold_s")
        assert method == "websocket_ping:held"
        assert HOLD_S <= value <= HOLD_S + 1.0  # a final ping at the end (0.5 s timeout)
    assert measured(results, "udp", t["stun"], "udp_reachable")[:2] == \
        (1.0, "stun_binding:answer")
    assert measured(results, "proxy", None, "proxy")[0] == "none"


def sinkhole_to_block_page(lab: Lab) -> None:
    lab.filters.dns(sinkhole={lab.far_name: lab.gw_cls_addr})
    lab.filters.block_page()


@dataclass(frozen=True)
class Case:
    """A filter behaviour, the target kind it acts on, and what the probe must report."""

    switch_on: Callable[[Lab], object]
    kind: str
    expected: dict[tuple[str, str], tuple[float | str, str]]
    """(probe, metric) → (value, method, or its prefix when it ends with '*')."""
    args: Callable[[Lab], list[str]] = field(default=lambda lab: [])


CASES = {
    "dns_nxdomain": Case(lambda lab: lab.filters.dns(nxdomain=[lab.far_name]), "https",
                         {("block", "blocked"): (1.0, "dns:nxdomain")}),
    "dns_sinkhole": Case(lambda lab: lab.filters.dns(sinkhole={lab.far_name: "0.0.0.0"}),
                         "https", {("block", "blocked"): (1.0, "dns:sinkhole=0.0.0.0")}),
    # the school's own sinkhole address, which serves its block page: named with --sinkhole
    "dns_sinkhole_to_block_page": Case(
        sinkhole_to_block_page, "http",
        {("block", "blocked"): (1.0, "dns:sinkhole=10.77.1.1")},
        lambda lab: ["--sinkhole", lab.gw_cls_addr]),
    "tcp_reset_on_sni": Case(lambda lab: lab.filters.reset_tcp(443, sni=lab.far_name), "https",
                             {("block", "blocked"): (1.0, "reset:tls_handshake")}),
    "http_block_page": Case(lambda lab: lab.filters.block_page(80), "http",
                            {("block", "blocked"): (1.0, "block_page:heading=blocked")}),
    "tls_interception": Case(
        lambda lab: lab.filters.intercept_tls(443), "https",
        {("tls", "tls_intercepted"): (1.0, "tls_chain:issuer=*"),
         ("block", "blocked"): (0.0, "clean:http")}),  # content still relayed: not a block
    "udp_dropped": Case(lambda lab: lab.filters.drop_udp(), "stun",
                        {("udp", "udp_reachable"): (0.0, "stun_binding:no_answer")}),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_filter_is_named(lab: Lab, lab_endpoints: object, lab_certs: CertSet,
                         case: str) -> None:
    spec = CASES[case]
    spec.switch_on(lab)
    target = targets(lab)[spec.kind]
    results = path(lab, lab_certs, target, *spec.args(lab))
    for (probe, metric), (value, method) in spec.expected.items():
        got_value, got_method, reason = measured(results, probe, target, metric)
        assert got_value == value, f"{probe}.{metric}: {got_value} ({got_method}): {reason}"
        if method.endswith("*"):
            assert got_method.startswith(method[:-1]), got_method
        else:
            assert got_method == method, reason
    if case == "tls_interception":
        _, method, reason = measured(results, "tls", target, "tls_intercepted")
        assert f"O={FILTER_CA_ORG}" in method
        assert reason.startswith("intercepted by OU=") and FILTER_CA_ORG in reason


def test_websocket_severed_after_n_seconds(lab: Lab, lab_endpoints: object,
                                          lab_certs: CertSet) -> None:
    lab.filters.sever(after_s=SEVER_AFTER_S)
    target = targets(lab)["ws"]
    results = path(lab, lab_certs, target, hold_s=SEVER_AFTER_S + 3)
    value, method, reason = measured(results, "websocket", target, "websocket_hold_s")
    assert method == "websocket_ping:severed", reason
    assert value == pytest.approx(SEVER_AFTER_S, abs=HOLD_TOLERANCE_S)


def test_reset_to_the_syn_is_failed_not_blocked(lab: Lab, lab_endpoints: object,
                                               lab_certs: CertSet) -> None:
    """A RST to our SYN reads the same from a closed port as from a filter: the probe says
    it cannot tell (failed, with the reason) and never reports blocked=1 for it."""
    lab.filters.reset_tcp(443)
    target = targets(lab)["https"]
    block = pr.one(path(lab, lab_certs, target), "block", target)
    assert block["status"] == "failed"
    assert "refused (TCP RST to our SYN)" in block["reason"]


def test_explicit_proxy_is_detected_from_the_environment(lab: Lab, lab_endpoints: object,
                                                         lab_certs: CertSet) -> None:
    """Direct connections are reset (only the proxy gets out); the proxy check names the
    proxy from the environment a classroom PC would be given."""
    url = lab.filters.explicit_proxy(enforce=True)
    target = targets(lab)["http"]
    results = path(lab, lab_certs, target, env={"http_proxy": url, "https_proxy": url})
    value, method, reason = measured(results, "proxy", None, "proxy")
    assert value == "env"
    assert method.startswith("proxy_config:env")
    assert f"env http_proxy={url}" in reason and f"env https_proxy={url}" in reason
    direct = pr.one(results, "block", target)
    assert direct["status"] == "failed" and "refused" in direct["reason"]
