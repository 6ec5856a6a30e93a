import argparse
import json
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.probes import wifi
from agent.probes.wifi_model import hash_identifier
from agent.wire import ProbeResult, new_report, semantic_errors, to_jsonable
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")
SALT = "northfield-2026"
NETSH_IF = ("netsh", "wlan", "show", "interfaces")
NETSH_NETS = ("netsh", "wlan", "show", "networks", "mode=bssid")


def values(result: ProbeResult) -> dict[str, float | str | None]:
    return {m.metric: (m.value if m.text is None else m.text) for m in result.measurements}


def by_probe(results: list[ProbeResult]) -> dict[tuple[str, str | None], ProbeResult]:
    return {(r.probe, r.target): r for r in results}


def windows_runner(interfaces: str = "netsh_interfaces_en_win11.txt") -> FakeRunner:
    return FakeRunner({NETSH_IF: Reply(read(interfaces)),
                       NETSH_NETS: Reply(read("netsh_networks_en.txt"))})


def linux_runner() -> FakeRunner:
    return FakeRunner({
        ("iw", "dev"): Reply(read("iw_dev_6ghz.txt")),
        ("iw", "dev", "wlp0s20f3", "link"): Reply(read("iw_link_6ghz_iw6.txt")),
        ("iw", "dev", "wlp0s20f3", "station", "dump"): Reply("", "", 0),
        ("iw", "dev", "wlp0s20f3", "scan", "dump"): Reply(read("iw_scan_dump.txt")),
        ("iw", "dev", "wlp0s20f3", "survey", "dump"): Reply(
            "", "command failed: Operation not supported (-95)", 161),
    })


def collect(platform: str, runner: FakeRunner, cfg: AgentConfig | None = None,
            is_root: bool = False, proc: Path = Path("/nonexistent")) -> list[ProbeResult]:
    return wifi.collect(cfg or AgentConfig(site_salt=SALT), platform=platform, runner=runner,
                        proc_root=proc, is_root=is_root)


def test_windows_link_load_and_scan():
    res = by_probe(collect("win32", windows_runner()))
    assert list(res) == [("wifi", "Wi-Fi"), ("wifi_bss_load", "Wi-Fi"), ("wifi_scan", "Wi-Fi"),
                         ("wifi_channel_busy", "Wi-Fi")]
    link = res[("wifi", "Wi-Fi")]
    assert link.status == "ok"
    assert values(link) == {
        "ssid_hash": hash_identifier(SALT, "SchoolNet"),
        "bssid_hash": hash_identifier(SALT, "0c:8d:db:00:00:36"),
        "band_ghz": 5.0, "channel": 36.0, "rssi_dbm": -48.0, "signal_pct": 96.0,
        "tx_rate_mbps": 960.7, "rx_rate_mbps": 1201.0}
    assert link.reason is not None and "snr_db not measured: no noise floor" in link.reason
    assert values(res[("wifi_bss_load", "Wi-Fi")]) == {
        "bss_station_count": 23.0, "bss_channel_utilisation_pct": 45.1}
    assert values(res[("wifi_scan", "Wi-Fi")]) == {"visible_aps": 4.0, "co_channel_aps": 1.0}
    busy = res[("wifi_channel_busy", "Wi-Fi")]
    assert (busy.status, busy.reason) == (
        "skipped", "channel busy time not measured: Windows reports no channel busy time")


def test_windows_ap_without_bss_load_is_not_advertised_not_zero():
    runner = FakeRunner({NETSH_IF: Reply(read("netsh_interfaces_fr_win10.txt")),
                         NETSH_NETS: Reply(read("netsh_networks_fr.txt"))})
    res = by_probe(collect("win32", runner))
    load = res[("wifi_bss_load", "Wi-Fi")]
    assert (load.status, load.reason, load.measurements) == (
        "skipped", "AP does not advertise BSS Load", [])
    assert values(res[("wifi_scan", "Wi-Fi")]) == {"visible_aps": 2.0, "co_channel_aps": 1.0}


def test_windows_disconnected_adapter():
    runner = FakeRunner({NETSH_IF: Reply(read("netsh_interfaces_disconnected.txt")),
                         NETSH_NETS: Reply(read("netsh_networks_en.txt"))})
    res = by_probe(collect("win32", runner))
    link = res[("wifi", "Wi-Fi")]
    assert (link.status, link.reason) == (
        "skipped", "Wi-Fi is not connected (netsh wlan show interfaces: disconnected)")
    assert res[("wifi_bss_load", "Wi-Fi")].reason == "Wi-Fi is not connected"
    scan = res[("wifi_scan", "Wi-Fi")]
    assert values(scan) == {"visible_aps": 4.0}
    assert scan.reason == "co_channel_aps not measured: not connected, so no channel of our own"


def test_windows_no_adapter_is_one_skipped_result():
    runner = FakeRunner({NETSH_IF: Reply(read("netsh_interfaces_no_adapter.txt"), returncode=1)})
    (only,) = collect("win32", runner)
    assert (only.probe, only.status, only.reason) == (
        "wifi", "skipped", "no Wi-Fi adapter (netsh: no wireless interface on the system)")


def test_windows_unknown_output_is_a_failure():
    runner = FakeRunner({NETSH_IF: Reply("??\n")})
    (only,) = collect("win32", runner)
    assert only.status == "failed" and "unrecognised output: '??'" in (only.reason or "")


def test_linux_6ghz_link_scan_and_monitor_skip():
    res = by_probe(collect("linux", linux_runner()))
    link = values(res[("wifi", "wlp0s20f3")])
    assert (link["band_ghz"], link["channel"], link["width_mhz"]) == (6.0, 1.0, 160.0)
    assert link["rssi_dbm"] == -61.0 and "noise_dbm" not in link
    # 7e:00:00:00:06:e5 is in the scan without a BSS Load element
    assert res[("wifi_bss_load", "wlp0s20f3")].reason == "AP does not advertise BSS Load"
    assert values(res[("wifi_scan", "wlp0s20f3")]) == {"visible_aps": 4.0, "co_channel_aps": 0.0}
    mon = res[("wifi_monitor", None)]
    assert (mon.status, mon.reason) == (
        "skipped", "no monitor_interface configured (a Linux adapter already in monitor mode)")


def test_linux_connected_ap_missing_from_scan():
    runner = linux_runner()
    runner.replies[("iw", "dev", "wlp0s20f3", "scan", "dump")] = Reply(  # type: ignore[index]
        read("iw_scan_dump.txt").replace("7e:00:00:00:06:e5", "7e:00:00:00:06:e6"))
    res = by_probe(collect("linux", runner))
    assert res[("wifi_bss_load", "wlp0s20f3")].reason == (
        "BSS Load not measured: the connected AP is not in the scan results "
        "(iw scan dump (cached, <= 60 s old))")


def test_macos_has_no_bss_load_and_says_why():
    runner = FakeRunner({("system_profiler", "SPAirPortDataType"): Reply(
        read("sp_airport_sonoma_connected.txt"))})
    res = by_probe(collect("darwin", runner))
    link = values(res[("wifi", "en0")])
    assert link["snr_db"] == 41.0  # -52 - (-93)
    assert "bssid_hash" not in link
    assert res[("wifi_bss_load", "en0")].reason == (
        "BSS Load not available: system_profiler SPAirPortDataType (networks in range) does "
        "not show the APs' information elements")
    assert values(res[("wifi_scan", "en0")]) == {"visible_aps": 4.0, "co_channel_aps": 1.0}


def test_no_salt_means_no_identifier_at_all():
    results = collect("win32", windows_runner(), cfg=AgentConfig())
    link = by_probe(results)[("wifi", "Wi-Fi")]
    assert "ssid_hash" not in values(link) and "bssid_hash" not in values(link)
    assert "no site_salt configured" in (link.reason or "")


@pytest.mark.parametrize("platform", ["win32", "linux", "darwin"])
def test_results_fit_the_wire_and_carry_no_names(platform: str):
    runner = {"win32": windows_runner("netsh_interfaces_two_adapters.txt"),
              "linux": linux_runner(),
              "darwin": FakeRunner({("system_profiler", "SPAirPortDataType"): Reply(
                  read("sp_airport_sonoma_connected.txt"))})}[platform]
    results = collect(platform, runner)
    assert semantic_errors(new_report("a", "0", results)) == []
    dumped = json.dumps([to_jsonable(r) for r in results]).lower()
    for secret in ("schoolnet", "library", "cafe", "0c:8d:db", "7e:00:00", "3c:a9:f4",
                   "intel(r)"):
        assert secret not in dumped


def test_cli_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "agent.toml"
    config.write_text(f'site_salt = "{SALT}"\n')
    parser = argparse.ArgumentParser()
    wifi.add_wifi_arguments(parser)
    args = parser.parse_args(["--config", str(config), "--json", "--interface", "Wi-Fi 2"])
    runner = windows_runner("netsh_interfaces_two_adapters.txt")
    assert wifi.run_wifi_cli(args, runner=runner, platform="win32") == 0
    skipped = json.loads(capsys.readouterr().out)["results"][0]
    assert (skipped["target"], skipped["status"]) == ("Wi-Fi 2", "skipped")
    text_args = parser.parse_args(["--config", str(config)])
    assert wifi.run_wifi_cli(text_args, runner=windows_runner(), platform="win32") == 0
    text = capsys.readouterr().out
    assert "wifi Wi-Fi: ok" in text and "bss_channel_utilisation_pct 45.1 %" in text
    args = parser.parse_args(["--config", str(config), "--json"])
    assert wifi.run_wifi_cli(args, runner=windows_runner(), platform="win32") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["probe"] for r in out["results"]] == ["wifi", "wifi_bss_load", "wifi_scan",
                                                    "wifi_channel_busy"]
    assert out["results"][0]["measurements"][0] == {
        "metric": "ssid_hash", "unit": "text", "method": "HMAC-SHA256 with the site salt, "
        "first 16 hex", "value": None, "text": hash_identifier(SALT, "SchoolNet"),
        "stat": "value", "samples": 1}


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    parser = argparse.ArgumentParser()
    wifi.add_wifi_arguments(parser)
    assert wifi.run_wifi_cli(parser.parse_args(["--seconds", "0"])) == 2
    assert "--seconds must be positive, got 0" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("monitor_seconds = -1\n")
    assert wifi.run_wifi_cli(parser.parse_args(["--config", str(bad)])) == 2
    assert "monitor_seconds" in capsys.readouterr().err
