"""The cheap load probe: CPU busy, RAM used, NIC rates, battery; and the probe registry."""

import argparse
import json
import subprocess
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from agent.config import AgentConfig
from agent.probes import BY_NAME, PROBES, load
from agent.probes.device_nics import Counters, NicStat
from agent.probes.load import Sources, sample
from agent.wire import ProbeResult, new_report, semantic_errors


def values(result: ProbeResult) -> dict[str, float | str | None]:
    return {m.metric: (m.value if m.text is None else m.text) for m in result.measurements}


def sources(counters: Iterator[dict[str, Counters]], battery: object = None,
            busy: Iterator[float] | None = None) -> tuple[Sources, list[float]]:
    slept: list[float] = []
    clock = iter([100.0, 101.0])
    cpu = busy or iter([0.0, 37.46])
    stats = {"Wi-Fi": NicStat(True, 866, False), "Ethernet": NicStat(False, 1000, False),
             "lo": NicStat(True, 0, True), "vEthernet (WSL)": NicStat(True, 10000, False)}
    return Sources(cpu_percent=lambda: next(cpu), memory_pct=lambda: 61.04,
                   battery=lambda: battery, stats=lambda: stats,
                   counters=lambda: next(counters), sleep=slept.append,
                   clock=lambda: next(clock)), slept


def test_load_sample_on_a_laptop():
    counters = iter([{"Wi-Fi": Counters(1_000_000, 200_000), "lo": Counters(0, 0)},
                     {"Wi-Fi": Counters(3_500_000, 450_000), "lo": Counters(9, 9)}])
    src, slept = sources(counters, SimpleNamespace(percent=43.0, power_plugged=False))
    results = sample(src)
    assert slept == [1.0]  # one wait for CPU and NICs together
    assert [(r.probe, r.target, r.status) for r in results] == [
        ("load", None, "ok"), ("battery", None, "ok"), ("nic", "Wi-Fi", "ok"),
        ("nic", "vEthernet (WSL)", "ok")]
    assert values(results[0]) == {"cpu_busy_pct": 37.5, "ram_used_pct": 61.0}
    assert results[0].measurements[0].method == "psutil.cpu_percent over 1.00 s"
    assert values(results[1]) == {"battery_pct": 43.0, "battery_plugged": 0.0}
    assert values(results[2]) == {"nic_rx_mbps": 20.0, "nic_tx_mbps": 2.0}
    assert results[2].measurements[0].method == "psutil.net_io_counters delta over 1.00 s"
    assert results[3].measurements == []
    assert results[3].reason == ("nic_rx_mbps/nic_tx_mbps not measured: no byte counters "
                                 "for this NIC")
    assert semantic_errors(new_report("a", "0", results)) == []


def test_desktop_and_counters_going_backwards():
    counters = iter([{"Wi-Fi": Counters(5_000, 5_000)}, {"Wi-Fi": Counters(10, 6_000)}])
    src, _ = sources(counters, battery=None)
    _, bat, wifi, _ = sample(src, interval_s=0.5)
    assert (bat.status, bat.reason) == (
        "skipped", "no battery found (psutil.sensors_battery() returned None)")
    assert wifi.measurements == []
    assert wifi.reason == ("nic_rx_mbps/nic_tx_mbps not measured: byte counters went "
                           "backwards (reset or wrapped) during the sample")


def test_no_interface_up():
    src, _ = sources(iter([{}, {}]))
    src = Sources(src.cpu_percent, src.memory_pct, src.battery, stats=dict,
                  counters=src.counters, sleep=src.sleep, clock=src.clock)
    assert [(r.probe, r.status, r.reason) for r in sample(src)[2:]] == [
        ("nic", "skipped", "no network interface is up (besides loopback)")]


def test_load_here_is_quick_and_starts_no_command(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the load probe started a command: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(load, "SAMPLE_S", 0.05)
    started = time.monotonic()
    results = load.run(AgentConfig())
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert results[0].probe == "load" and results[0].status == "ok"
    assert set(values(results[0])) == {"cpu_busy_pct", "ram_used_pct"}
    assert 0 <= float(values(results[0])["cpu_busy_pct"] or 0) <= 100
    assert {r.probe for r in results[2:]} == {"nic"}
    assert semantic_errors(new_report("a", "0", results)) == []


def test_load_cli_json(capsys: pytest.CaptureFixture[str]):
    parser = argparse.ArgumentParser()
    load.add_load_arguments(parser)
    counters = iter([{"Wi-Fi": Counters(0, 0)}, {"Wi-Fi": Counters(125_000, 0)}])
    src, _ = sources(counters)
    assert load.run_load_cli(parser.parse_args(["--json"]), src) == 0
    out = json.loads(capsys.readouterr().out)["results"]
    assert [r["probe"] for r in out] == ["load", "battery", "nic", "nic"]
    assert [m["value"] for m in out[2]["measurements"]] == [1.0, 0.0]


def test_registry_order_and_names():
    assert [p.name for p in PROBES] == ["device", "load", "wifi", "latency", "path",
                                        "bandwidth", "traceroute"]
    assert BY_NAME["load"].run.__qualname__ == "lazy(load.run)"
    assert BY_NAME["path"].run.__qualname__ == "lazy(path.probe)"


def test_a_probe_module_is_imported_only_when_it_runs():
    """A worker sampling load and wifi every minute must not load every probe module."""
    import subprocess
    import sys

    script = ("import sys\nfrom agent.config import AgentConfig\n"
              "from agent.probes import BY_NAME\n"
              "before = {m for m in ('agent.probes.path', 'agent.probes.bandwidth', "
              "'agent.probes.load', 'httpx') if m in sys.modules}\n"
              "BY_NAME['load'].run(AgentConfig())\n"
              "after = {m for m in ('agent.probes.path', 'agent.probes.bandwidth', "
              "'agent.probes.load', 'httpx') if m in sys.modules}\n"
              "print(sorted(before), sorted(after))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] ['agent.probes.load']"
