from pathlib import Path

import pytest

from agent.probes.device_cmd import decode_console
from agent.probes.wifi_bssload import BssLoad
from agent.probes.wifi_windows import (
    link_from_block,
    parse_interfaces,
    parse_networks,
    read_windows,
    refusal,
)
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")
NETWORKS = ("netsh", "wlan", "show", "networks", "mode=bssid")
INTERFACES = ("netsh", "wlan", "show", "interfaces")


def link_of(name: str):
    (block,) = parse_interfaces(read(name))
    return link_from_block(block)


def test_english_windows_11_with_band_and_rssi():
    link = link_of("netsh_interfaces_en_win11.txt")
    assert link.connected and link.interface == "Wi-Fi"
    assert (link.ssid, link.bssid) == ("SchoolNet", "0c:8d:db:00:00:36")
    assert (link.band_ghz, link.band_method, link.channel, link.freq_mhz) == (
        5.0, "netsh Band", 36, 5180.0)
    assert (link.rx_rate_mbps, link.tx_rate_mbps, link.signal_pct) == (1201.0, 960.7, 96.0)
    assert (link.rssi_dbm, link.rssi_method) == (-48.0, "netsh Rssi")
    assert link.noise_dbm is None and link.width_mhz is None


def test_english_windows_10_without_band_or_rssi_line():
    link = link_of("netsh_interfaces_en_win10.txt")
    assert link.bssid == "0c:8d:db:00:00:06"
    assert (link.band_ghz, link.channel) == (2.4, 6)
    assert link.band_method == "band from channel (this netsh prints no Band line)"
    assert link.rssi_dbm == -65.0  # -100 + 70/2
    assert link.rssi_method.startswith("netsh Signal % as RSSI")


def test_german_labels_and_decimal_commas():
    link = link_of("netsh_interfaces_de_win11.txt")
    assert link.connected and link.interface == "WLAN"
    assert (link.ssid, link.bssid, link.channel, link.band_ghz) == (
        "Schulnetz", "0c:8d:db:00:00:2c", 44, 5.0)
    assert (link.rx_rate_mbps, link.tx_rate_mbps, link.rssi_dbm) == (573.5, 480.4, -56.0)


def test_german_output_decoded_from_the_oem_code_page():
    raw = read("netsh_interfaces_de_win11.txt").encode("cp850")
    text = raw.decode("cp850")  # what decode_console does with Windows' "oem" codec
    (block,) = parse_interfaces(text)
    assert link_from_block(block).tx_rate_mbps == 480.4


def test_french_labels_accents_and_full_signal():
    link = link_of("netsh_interfaces_fr_win10.txt")
    assert link.connected and link.interface == "Wi-Fi"
    assert (link.channel, link.band_ghz, link.rx_rate_mbps, link.tx_rate_mbps) == (
        11, 2.4, 144.4, 130.0)
    assert link.signal_pct == 100.0 and link.rssi_dbm is None
    assert "signal 100 % is the end of the quality scale" in " ".join(link.notes)


def test_crlf_line_ends_parse_the_same():
    text = read("netsh_interfaces_en_win11.txt").replace("\n", "\r\n")
    (block,) = parse_interfaces(text)
    assert link_from_block(block).bssid == "0c:8d:db:00:00:36"


def test_two_adapters_one_disconnected():
    blocks = parse_interfaces(read("netsh_interfaces_two_adapters.txt"))
    links = [link_from_block(b) for b in blocks]
    assert [(lk.interface, lk.connected, lk.state) for lk in links] == [
        ("Wi-Fi", True, ""), ("Wi-Fi 2", False, "disconnected")]


def test_refusals_are_recognised():
    assert str(refusal(read("netsh_interfaces_location_refused.txt"))).startswith(
        "Windows refuses Wi-Fi details without Location permission")
    assert refusal(read("netsh_interfaces_no_adapter.txt")) == (
        "no Wi-Fi adapter (netsh: no wireless interface on the system)")
    assert refusal("The Wireless AutoConfig Service (wlansvc) is not running.") == (
        "the WLAN AutoConfig service (wlansvc) is not running")
    assert refusal(read("netsh_interfaces_en_win11.txt")) is None


def test_networks_english_bss_load_hidden_ssid_and_6ghz():
    (bsses,) = parse_networks(read("netsh_networks_en.txt")).values()
    assert [(b.bssid, b.ssid, b.channel, b.band_ghz) for b in bsses] == [
        ("0c:8d:db:00:00:36", "SchoolNet", 36, 5.0),
        ("0c:8d:db:00:00:06", "SchoolNet", 6, 2.4),
        ("4a:5b:6c:00:00:24", None, 36, 5.0),
        ("7e:00:00:00:06:e5", "Library", 37, 6.0)]
    assert [b.load for b in bsses] == [BssLoad(23, 115, 12500), BssLoad(9, 204, 0), None,
                                       BssLoad(2, 10, 31250)]
    assert bsses[0].signal_pct == 96.0


def test_networks_localised_bss_load_found_by_its_own_arithmetic():
    # The German labels of the Bss Load block are not known (see fixtures/README.md): the
    # block is recognised by "150 (58 %)" being 150/255 as a percentage.
    nets = parse_networks(read("netsh_networks_de.txt"))
    assert list(nets) == ["WLAN"]
    school, staff = nets["WLAN"]
    assert school.load == BssLoad(31, 150, None)
    assert (school.channel, staff.channel, staff.load, staff.load_problem) == (44, 44, None,
                                                                            None)


def test_networks_localised_block_that_does_not_add_up_is_not_guessed():
    text = read("netsh_networks_de.txt").replace("150 (58 %)", "150 (12 %)")
    school = parse_networks(text)["WLAN"][0]
    assert school.load is None
    assert school.load_problem is not None
    assert school.load_problem.startswith("BSS Load lines not recognised")


def test_networks_french_without_band_line():
    (bsses,) = parse_networks(read("netsh_networks_fr.txt")).values()
    assert [(b.ssid, b.channel, b.band_ghz, b.signal_pct, b.load) for b in bsses] == [
        ("Ecole", 11, 2.4, 100.0, None), ("Voisin", 11, 2.4, 30.0, None)]


def _runner(interfaces: str, networks: Reply | None = None) -> FakeRunner:
    return FakeRunner({INTERFACES: Reply(read(interfaces)),
                       NETWORKS: networks or Reply(read("netsh_networks_en.txt"))})


def test_read_windows_connected():
    reading = read_windows(_runner("netsh_interfaces_en_win11.txt"))
    (adapter,) = reading.adapters
    assert adapter.scan is not None and len(adapter.scan.bsses) == 4
    assert adapter.busy is None and adapter.busy_reason == "Windows reports no channel busy time"


def test_read_windows_scan_refused_for_location_keeps_the_link():
    refused = Reply(read("netsh_interfaces_location_refused.txt"), returncode=1)
    reading = read_windows(_runner("netsh_interfaces_en_win11.txt", refused))
    (adapter,) = reading.adapters
    assert adapter.link.connected and adapter.scan is None
    assert adapter.scan_reason is not None and "Location permission" in adapter.scan_reason


@pytest.mark.parametrize(("fixture", "rc", "expected", "failed"), [
    ("netsh_interfaces_no_adapter.txt", 1,
     "no Wi-Fi adapter (netsh: no wireless interface on the system)", False),
    ("netsh_interfaces_location_refused.txt", 1,
     "Windows refuses Wi-Fi details without Location permission (Settings > Privacy & "
     "security > Location: Location services and desktop apps)", False),
])
def test_read_windows_nothing_to_read(fixture: str, rc: int, expected: str, failed: bool):
    runner = FakeRunner({INTERFACES: Reply(read(fixture), returncode=rc)})
    reading = read_windows(runner)
    assert (reading.adapters, reading.reason, reading.failed) == ([], expected, failed)
    assert runner.calls == [INTERFACES]


def test_read_windows_unknown_output_fails_with_the_text():
    runner = FakeRunner({INTERFACES: Reply("Le service de configuration est bizarre\n")})
    reading = read_windows(runner)
    assert reading.failed
    assert reading.reason == ("netsh wlan show interfaces printed no adapter block "
                              "(unrecognised output: 'Le service de configuration est "
                              "bizarre')")


def test_read_windows_missing_netsh_and_unknown_interface():
    assert read_windows(FakeRunner({}, missing={"netsh"})).reason == (
        "cannot run netsh: netsh is not installed (not found on PATH)")
    reading = read_windows(_runner("netsh_interfaces_two_adapters.txt"), interface="Wi-Fi 3")
    assert reading.reason == "no Wi-Fi interface named 'Wi-Fi 3' (netsh)"


def test_decode_console_handles_utf16_from_wmic():
    data = "CurrentHorizontalResolution=1920\r\n".encode("utf-16-le")
    assert decode_console(b"\xff\xfe" + data, "win32").startswith("CurrentHorizontal")
    assert decode_console(data, "linux").startswith("CurrentHorizontal")
    assert decode_console("Übertragungsrate".encode(), "linux") == "Übertragungsrate"


def test_read_windows_two_adapters_scan_belongs_to_its_own_adapter():
    reading = read_windows(_runner("netsh_interfaces_two_adapters.txt"))
    first, second = reading.adapters
    assert first.scan is not None and len(first.scan.bsses) == 4
    assert second.scan is None
    assert second.scan_reason == "netsh wlan show networks listed nothing for Wi-Fi 2"
