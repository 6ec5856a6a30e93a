from pathlib import Path

from agent.probes.wifi_macos import WITHHELD, parse_airport, parse_wdutil, read_macos
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")
SP = ("system_profiler", "SPAirPortDataType")


def test_system_profiler_connected_and_neighbours():
    ((link, networks),) = parse_airport(read("sp_airport_sonoma_connected.txt"))
    assert link.interface == "en0" and link.connected
    assert link.ssid == "SchoolNet" and link.bssid is None
    assert (link.channel, link.band_ghz, link.width_mhz, link.freq_mhz) == (36, 5.0, 80, 5180.0)
    assert (link.rssi_dbm, link.noise_dbm, link.tx_rate_mbps, link.rx_rate_mbps) == (
        -52.0, -93.0, 1200.0, None)
    assert [(n.ssid, n.channel, n.band_ghz, n.signal_dbm, n.associated) for n in networks] == [
        ("SchoolNet", 36, 5.0, -52.0, True),
        ("Cafe: Free WiFi", 36, 5.0, -71.0, False),
        ("Library", 37, 6.0, -67.0, False),
        ("SchoolNet", 6, 2.4, -61.0, False)]


def test_system_profiler_redacted_ssid_is_withheld_not_named():
    ((link, networks),) = parse_airport(read("sp_airport_redacted.txt"))
    assert link.connected and link.ssid is None and link.ssid_withheld == WITHHELD
    assert all(n.ssid is None for n in networks)
    assert link.rssi_dbm == -52.0


def test_system_profiler_wifi_off_on_en1():
    ((link, networks),) = parse_airport(read("sp_airport_off.txt"))
    assert (link.interface, link.connected, link.state, networks) == ("en1", False, "Off", [])


def test_wdutil_wifi_section():
    values = parse_wdutil(read("wdutil_info.txt"))
    assert values["BSSID"] == "0c:8d:db:00:00:36"
    assert values["CCA"] == "37 %"
    assert values["Channel"] == "5g36/80"
    assert "Address" not in values  # BLUETOOTH section is not mixed in
    assert values["Power"] == "On [On]"


def test_read_macos_as_root_adds_bssid_and_cca():
    runner = FakeRunner({SP: Reply(read("sp_airport_sonoma_connected.txt")),
                         ("wdutil", "info"): Reply(read("wdutil_info.txt"))})
    (adapter,) = read_macos(runner, is_root=True).adapters
    link = adapter.link
    assert (link.bssid, link.rssi_dbm, link.noise_dbm) == ("0c:8d:db:00:00:36", -51.0, -94.0)
    assert (link.rssi_method, link.source) == ("wdutil RSSI", "wdutil info")
    assert (link.channel, link.band_ghz, link.width_mhz) == (36, 5.0, 80)
    assert adapter.busy is not None and adapter.busy.busy_pct == 37.0
    assert adapter.scan is not None and not adapter.scan.shows_elements
    assert len(adapter.scan.bsses) == 4


def test_read_macos_without_root_has_no_bssid_and_says_why():
    runner = FakeRunner({SP: Reply(read("sp_airport_sonoma_connected.txt"))})
    (adapter,) = read_macos(runner).adapters
    assert adapter.link.bssid is None
    assert adapter.busy is None and adapter.busy_reason == "wdutil info (CCA, BSSID) needs root"
    assert any("system_profiler shows no BSSID" in n for n in adapter.link.notes)
    assert runner.calls == [SP]


def test_read_macos_odd_cases():
    no_wifi = FakeRunner({SP: Reply("")})
    assert read_macos(no_wifi).reason == "no Wi-Fi adapter (system_profiler lists no Wi-Fi)"
    odd = FakeRunner({SP: Reply("Wi-Fi:\n\n      Interfaces:\n        weird0:\n")})
    reading = read_macos(odd)
    assert reading.failed and "no enN interface" in (reading.reason or "")
    assert read_macos(FakeRunner({}, missing={"system_profiler"})).reason == (
        "cannot run system_profiler: system_profiler is not installed (not found on PATH)")
    wd_fail = FakeRunner({SP: Reply(read("sp_airport_sonoma_connected.txt")),
                          ("wdutil", "info"): Reply("", "wdutil: must be run as root", 1)})
    (adapter,) = read_macos(wd_fail, is_root=True).adapters
    assert adapter.busy_reason == "wdutil info gave no WIFI section (wdutil: must be run as root)"
