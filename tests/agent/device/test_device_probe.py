"""The device probe end to end: pretend Windows, macOS and Linux hosts, the CLI, the wire."""

import argparse
import json
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.probes import device
from agent.probes.device import Host, battery, collect, collect_all
from agent.probes.device_battery import BatteryHealth
from agent.probes.device_inventory import browsers_result, nic_results, screen_result
from agent.probes.device_nics import Counters, NicStat
from agent.wire import ProbeResult, new_report, semantic_errors, to_jsonable
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")
REG_CV = ("reg", "query", r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion")
REG_CPU = ("reg", "query", r"HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0", "/v",
           "ProcessorNameString")
POWERCFG = ("powercfg", "/batteryreport", "/xml", "/output", "...")


def values(result: ProbeResult) -> dict[str, float | str | None]:
    return {m.metric: (m.value if m.text is None else m.text) for m in result.measurements}


def write_report(argv: Sequence[str]) -> None:
    Path(argv[-1]).write_text(read("battery-report_laptop.xml"))


def windows_host(**replies: Reply) -> Host:
    table: dict[tuple[str, ...], Reply | list[Reply]] = {
        REG_CV: Reply(read("reg_currentversion_win11_23h2_education.txt")),
        REG_CPU: Reply(read("reg_cpu_processorname.txt")),
        POWERCFG: Reply("saved", effect=write_report),
        ("netsh", "wlan", "show", "interfaces"): Reply(
            (Path(__file__).parents[1] / "wifi" / "fixtures" /
             "netsh_interfaces_en_win11.txt").read_text()),
        ("powershell", "...",): Reply(read("win_videocontroller_ps.txt")),
        ("reg", "query", "..."): Reply("", read("reg_not_found.stderr.txt"), 1),
    }
    return Host(platform="win32", runner=FakeRunner(table), today=date(2026, 11, 27))


def test_windows_device_result(monkeypatch: pytest.MonkeyPatch):
    import psutil

    monkeypatch.setattr(psutil, "sensors_battery",
                        lambda: SimpleNamespace(percent=64.0, power_plugged=True))
    dev, bat = collect(cpu_busy_interval_s=0.01, host=windows_host())
    v = values(dev)
    assert v["cpu_model"] == "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz"
    assert (v["os_name"], v["os_version"], v["os_build"]) == (
        "Windows 11 Education", "23H2", "22631.3425")
    assert (v["os_support_end"], v["os_supported"]) == ("2026-11-10", 0.0)
    support = next(m for m in dev.measurements if m.metric == "os_supported")
    assert support.method == ("Microsoft Lifecycle: Windows 11 Enterprise and Education, 23H2, "
                              "on 2026-11-27")
    assert dev.reason is not None and "disk_usage(C:\\)" in dev.reason
    assert values(bat) == {"battery_pct": 64.0, "battery_plugged": 1.0,
                           "battery_health_pct": 72.0, "battery_cycles": 487.0}
    health = next(m for m in bat.measurements if m.metric == "battery_health_pct")
    assert health.method == "powercfg /batteryreport: 41050/57020 mWh"
    texts = list(_texts([to_jsonable(dev), to_jsonable(bat)]))
    assert "powercfg /batteryreport: 41050/57020 mWh" in texts  # the walk sees the texts
    for private in ("Mrs Example Teacher", "Northfield Academy Trust", "ROOM12-PC07", "5123",
                    "00328-00000"):
        assert not [t for t in texts if private in t], private
    assert 5123 not in [m["value"] for r in (dev, bat) for m in to_jsonable(r)["measurements"]]


def _texts(node: object) -> Iterator[str]:
    """Every text a result carries, but its times: a real clock's microseconds (or this
    host's psutil figures, as numbers) may contain the digits of the fixture's 4-digit
    battery serial by chance, which is no leak (CI once saw '5123' in a timestamp)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in ("started_at", "finished_at"):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def test_macos_device_result():
    runner = FakeRunner({("sw_vers",): Reply(read("sw_vers_macos14.txt")),
                         ("sysctl", "-n", "machdep.cpu.brand_string"): Reply("Apple M1\n")})
    dev, _ = collect(cpu_busy_interval_s=0.01, host=Host(platform="darwin", runner=runner))
    v = values(dev)
    assert (v["cpu_model"], v["os_name"], v["os_version"], v["os_build"]) == (
        "Apple M1", "macOS", "14.4.1", "23E224")
    assert "os_supported" not in v
    assert "Apple publishes no end-of-support dates" in (dev.reason or "")


def test_linux_device_result_with_supported_distro(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="20.04"\n')
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor : 0\nmodel name : Test CPU\n")
    host = Host(platform="linux", proc_root=tmp_path / "proc", etc_root=tmp_path / "etc",
                today=date(2025, 5, 31))
    dev, _ = collect(cpu_busy_interval_s=0.01, host=host)
    v = values(dev)
    assert (v["cpu_model"], v["os_version"], v["os_support_end"], v["os_supported"]) == (
        "Test CPU", "20.04", "2025-05-31", 1.0)
    kernel = next(m for m in dev.measurements if m.metric == "os_build")
    assert kernel.method == "uname -r (kernel)"


def test_pretend_windows_without_reg_gets_no_linux_answer():
    host = Host(platform="win32", runner=FakeRunner({}, missing={"reg"}))
    dev, _ = collect(cpu_busy_interval_s=0.01, host=host)
    v = values(dev)
    assert "os_name" not in v
    assert "reg is not installed" in (dev.reason or "")


def test_battery_health_note_when_unreadable():
    result = battery(SimpleNamespace(percent=50, power_plugged=False),
                     (None, "the battery report lists no battery (a desktop)"))
    assert values(result) == {"battery_pct": 50.0, "battery_plugged": 0.0}
    assert result.reason == ("battery_health_pct not measured: the battery report lists no "
                             "battery (a desktop)")
    two = battery(SimpleNamespace(percent=50, power_plugged=None),
                  (BatteryHealth(5.0, 6.0, "µAh", "sysfs", None, 2), None))
    assert next(m for m in two.measurements if m.metric == "battery_health_pct").method == \
        "sysfs: 5/6 µAh, 2 batteries"


def test_windows_screen_browsers_and_nics():
    host = windows_host()
    screen = screen_result(host)
    assert values(screen) == {"screen": "1920x1080", "screen_width_px": 1920.0,
                              "screen_height_px": 1080.0}
    assert browsers_result(host).reason == (
        "no browser found (looked for Chrome, Edge, Firefox, Safari, Chromium)")
    stats = {"Wi-Fi": NicStat(True, 1201, False), "Ethernet": NicStat(True, 1000, False),
             "Loopback Pseudo-Interface 1": NicStat(True, 1073, True)}
    samples = iter([{"Wi-Fi": Counters(0, 0), "Ethernet": Counters(0, 0)},
                    {"Wi-Fi": Counters(5_000_000, 500_000), "Ethernet": Counters(0, 0)}])
    clock = iter([10.0, 12.0])
    results = nic_results(host, 2.0, stats=lambda: stats, counters=lambda: next(samples),
                          sleep=lambda s: None, clock=lambda: next(clock))
    assert [(r.target, values(r)) for r in results] == [
        ("Ethernet", {"nic_wireless": 0.0, "nic_link_mbps": 1000.0, "nic_rx_mbps": 0.0,
                      "nic_tx_mbps": 0.0}),
        ("Wi-Fi", {"nic_wireless": 1.0, "nic_link_mbps": 1201.0, "nic_rx_mbps": 20.0,
                   "nic_tx_mbps": 2.0})]


def test_linux_nic_kinds_from_sys(tmp_path: Path):
    for name, wireless, hardware in (("wlp2s0", True, True), ("enp0s31f6", False, True),
                                     ("tun0", False, False)):
        d = tmp_path / "class" / "net" / name
        d.mkdir(parents=True)
        if wireless:
            (d / "wireless").mkdir()
        if hardware:
            (d / "device").mkdir()
    stats = {n: NicStat(True, 0, False) for n in ("wlp2s0", "enp0s31f6", "tun0")}
    host = Host(platform="linux", sys_root=tmp_path)
    results = nic_results(host, 0.0, stats=lambda: stats, counters=dict,
                          sleep=lambda s: None, clock=lambda: 1.0)
    methods = {r.target: r.measurements[0].method for r in results}
    assert methods == {"enp0s31f6": "linux wireless check (hardware)",
                       "tun0": "linux wireless check (virtual)",
                       "wlp2s0": "linux wireless check (hardware)"}
    assert values(results[2]) == {"nic_wireless": 1.0}
    assert results[2].reason == ("nic_link_mbps not measured: the OS reports no link speed; "
                                 "nic_rx_mbps/nic_tx_mbps not measured: no byte counters for "
                                 "this NIC")


def test_collect_all_here_fits_the_wire():
    results = collect_all(cpu_busy_interval_s=0.01, nic_interval_s=0.05)
    assert [r.probe for r in results][:4] == ["device", "battery", "screen", "browsers"]
    assert {r.probe for r in results[4:]} <= {"nic"}
    assert semantic_errors(new_report("a", "0", results)) == []


def test_device_cli_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    parser = argparse.ArgumentParser()
    device.add_device_arguments(parser)
    monkeypatch.setattr(device, "CPU_BUSY_INTERVAL_S", 0.01)
    monkeypatch.setattr(device, "NIC_INTERVAL_S", 0.01)
    host = Host(platform="darwin", runner=FakeRunner({
        ("sw_vers",): Reply(read("sw_vers_macos14.txt")),
        ("sysctl", "-n", "machdep.cpu.brand_string"): Reply("Apple M1\n"),
        ("system_profiler", "SPDisplaysDataType"): Reply(read("sp_displays_m1_external.txt")),
        ("networksetup", "-listallhardwareports"): Reply(
            read("networksetup_listallhardwareports.txt")),
    }), apps_root=Path("/nonexistent"))
    assert device.run_device_cli(parser.parse_args(["--json"]), host) == 0
    out = json.loads(capsys.readouterr().out)["results"]
    screen = next(r for r in out if r["probe"] == "screen")
    assert [m["text"] for m in screen["measurements"] if m["metric"] == "screen"] == [
        "2560x1600, 1920x1080"]


def test_windows_nic_kind_unknown_when_netsh_refuses():
    refused = (Path(__file__).parents[1] / "wifi" / "fixtures" /
               "netsh_interfaces_location_refused.txt").read_text()
    host = Host(platform="win32", runner=FakeRunner({
        ("netsh", "wlan", "show", "interfaces"): Reply(refused, returncode=1)}))
    (result,) = nic_results(host, 0.0, stats=lambda: {"Wi-Fi": NicStat(True, 0, False)},
                            counters=dict, sleep=lambda s: None, clock=lambda: 1.0)
    assert result.measurements == []
    assert result.reason is not None and result.reason.startswith(
        "nic_wireless not measured: Windows refuses Wi-Fi details without Location permission")
    no_wifi = Host(platform="win32", runner=FakeRunner({
        ("netsh", "wlan", "show", "interfaces"): Reply(
            "There is no wireless interface on the system.\n", returncode=1)}))
    (wired,) = nic_results(no_wifi, 0.0, stats=lambda: {"Ethernet": NicStat(True, 100, False)},
                           counters=dict, sleep=lambda s: None, clock=lambda: 1.0)
    assert values(wired) == {"nic_wireless": 0.0, "nic_link_mbps": 100.0}
