"""Traceroute and delay attribution through the network lab (root + netns).

cls ── gw (10.77.1.1) ── TUN wire adding 20 ms each way ── net (far 10.77.10.1): the
first hop (the gateway) must stay fast and the destination must carry the added 40 ms.
The far side's port 9 is closed: its RST is the destination's answer to the SYN probe.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.lab.netlab import REPO_ROOT, Lab
from tests.lab.plugin import lab, lab_required, lab_session  # noqa: F401 (fixtures)

pytestmark = pytest.mark.lab

SCRIPT = """
import json
from agent.probes.pathnet import parse_path_target
from agent.probes.traceroute import TraceOptions, check_traceroute
from agent.wire import to_jsonable

def no_dns(host, timeout):
    raise AssertionError(host)

result = check_traceroute(parse_path_target("10.77.10.1:9"),
                          TraceOptions(max_hops=4, queries=3, timeout_s=1.0), no_dns)
print(json.dumps(to_jsonable(result)))
"""

WIRE_TOLERANCE_MS = 3.0  # lab-facts §4: the wire adds +0.4–1.9 ms over its target


def trace(built: Lab) -> dict:  # type: ignore[type-arg]
    out = built.run("cls", [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, timeout=60,
                    check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_delay_is_attributed_beyond_the_gateway(lab: Lab):  # noqa: F811 (fixture)
    lab.set_path(delay_ms=20)
    result = trace(lab)
    assert result["status"] == "ok", result["reason"]
    got = {(m["metric"], m["stat"]): (m["value"], m["method"]) for m in result["measurements"]}
    assert got[("hops", "value")] == (2.0, "traceroute_tcp_syn")
    first, first_method = got[("first_hop_rtt_ms", "min")]
    assert first_method == "traceroute_tcp_syn:hop=1,addr=10.77.1.1"
    gateway, gateway_method = got[("gateway_rtt_ms", "min")]
    assert gateway_method == "traceroute_tcp_syn:hop=1,addr=10.77.1.1,rule=last_private"
    target, target_method = got[("target_rtt_ms", "min")]
    assert target_method == "traceroute_tcp_syn:hop=2,addr=10.77.10.1"
    assert first < WIRE_TOLERANCE_MS and gateway == first
    assert 40.0 <= target <= 40.0 + WIRE_TOLERANCE_MS
    assert result["reason"] == "path 1:10.77.1.1 2:10.77.10.1"
