"""Browsers and network interfaces on recorded / hand-written output for each OS."""

import plistlib
from pathlib import Path

from agent.probes.device_browsers import (
    linux_browsers,
    macos_browsers,
    parse_dpkg_query,
    version_in,
    windows_browsers,
)
from agent.probes.device_nics import (
    Counters,
    NicStat,
    describe_nics,
    is_loopback,
    macos_wireless_devices,
    nic_rate,
    parse_networksetup_ports,
)
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")


def test_version_in():
    assert version_in("Mozilla Firefox 128.5.0esr") == "128.5.0"
    assert version_in("Chromium 156.0.8078.108 built on Debian GNU/Linux 12 (bookworm)") == \
        "156.0.8078.108"
    assert version_in("no digits") is None


def test_linux_browsers_from_version_output():
    on_path = {"chromium", "firefox-esr", "google-chrome"}
    runner = FakeRunner({
        ("chromium", "--version"): Reply(read("chromium_version_debian12_recorded.txt"),
                                         read("chromium_version_debian12_recorded.stderr.txt")),
        ("firefox-esr", "--version"): Reply("Mozilla Firefox 128.5.0esr\n"),
        ("google-chrome", "--version"): Reply("", "Trace/breakpoint trap\n", 133),
    })
    found, notes, methods = linux_browsers(
        runner, lambda b: f"/usr/bin/{b}" if b in on_path else None)
    assert found == {"chromium": "156.0.8078.108", "firefox": "128.5.0"}
    assert methods == {"chromium": "--version", "firefox": "--version"}
    assert notes == ["google-chrome --version printed no version (Trace/breakpoint trap)"]


def test_linux_browsers_from_the_package_database_start_no_browser():
    on_path = {"dpkg-query", "chromium", "firefox-esr"}
    runner = FakeRunner({
        ("dpkg-query", "..."): Reply(read("dpkg_query_browsers_debian12_recorded.txt"),
                                     read("dpkg_query_browsers_debian12_recorded.stderr.txt"),
                                     1),
        ("firefox-esr", "--version"): Reply("Mozilla Firefox 128.5.0esr\n"),
    })
    found, notes, methods = linux_browsers(
        runner, lambda b: f"/usr/bin/{b}" if b in on_path else None)
    assert found == {"chromium": "156.0.8078.108", "firefox": "128.5.0"} and notes == []
    assert methods == {"chromium": "dpkg-query", "firefox": "--version"}  # what was read
    # chromium came from dpkg (it was never started); firefox-esr is not a package here
    assert [c[0] for c in runner.calls] == ["dpkg-query", "firefox-esr"]
    assert "chromium" in runner.calls[0] and "google-chrome-stable" in runner.calls[0]


def test_parse_dpkg_query_keeps_installed_packages_with_a_dotted_upstream_version():
    out = ("chromium\t156.0.8078.108-1~deb12u1\tii \n"
           "firefox\t\tun \n"
           "firefox-esr\t128.5.0esr-1~deb12u1\tii \n"
           "google-chrome-stable\t1:131.0.6778.85-1\thi \n"
           "chromium-browser\t2:1snap1-0ubuntu2\tii \n"
           "microsoft-edge-stable\t131.0.2903.70-1\trc \n")
    assert parse_dpkg_query(out) == {"chromium": "156.0.8078.108", "firefox-esr": "128.5.0",
                                     "google-chrome-stable": "131.0.6778.85"}


UNINSTALL_32 = r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"


def test_windows_browsers_from_registry():
    not_found = Reply("", read("reg_not_found.stderr.txt"), 1)
    runner = FakeRunner({
        ("reg", "query", rf"{UNINSTALL_32}\Google Chrome", "/v", "DisplayVersion"):
            Reply(read("reg_chrome_displayversion.txt")),
        ("reg", "query", rf"{UNINSTALL_32}\Microsoft Edge", "/v", "DisplayVersion"):
            Reply(read("reg_edge_displayversion.txt")),
        ("reg", "query", r"HKLM\SOFTWARE\Mozilla\Mozilla Firefox", "/v", "CurrentVersion"):
            not_found,
        ("reg", "query", r"HKLM\SOFTWARE\WOW6432Node\Mozilla\Mozilla Firefox", "/v",
         "CurrentVersion"): Reply(read("reg_firefox_currentversion.txt")),
    })
    found, notes = windows_browsers(runner)
    assert found == {"chrome": "131.0.6778.86", "edge": "131.0.2903.70", "firefox": "132.0.2"}
    assert notes == []
    assert len(runner.calls) == 4  # stops looking for a browser once found


def test_windows_browsers_without_reg():
    found, notes = windows_browsers(FakeRunner({}, missing={"reg"}))
    assert (found, notes) == ({}, ["reg is not installed (not found on PATH)"])


def test_macos_browsers_from_info_plists(tmp_path: Path):
    chrome = tmp_path / "Google Chrome.app" / "Contents"
    chrome.mkdir(parents=True)
    (chrome / "Info.plist").write_text(read("Chrome_Info.plist"))
    safari = tmp_path / "Safari.app" / "Contents"
    safari.mkdir(parents=True)
    (safari / "Info.plist").write_bytes(plistlib.dumps(
        {"CFBundleShortVersionString": "17.4.1"}, fmt=plistlib.FMT_BINARY))
    broken = tmp_path / "Firefox.app" / "Contents"
    broken.mkdir(parents=True)
    (broken / "Info.plist").write_text("not a plist")
    found, notes = macos_browsers(tmp_path)
    assert found == {"chrome": "131.0.6778.86", "safari": "17.4.1"}
    assert len(notes) == 1 and notes[0].startswith("Firefox.app: Info.plist unreadable")


def test_nic_rate_and_counter_reset():
    assert nic_rate(Counters(1_000_000, 0), Counters(3_500_000, 125_000), 2.0).rx_mbps == 10.0
    assert nic_rate(Counters(0, 0), Counters(0, 125_000), 0.5).tx_mbps == 2.0
    reset = nic_rate(Counters(5_000, 5_000), Counters(10, 6_000), 1.0)
    assert (reset.rx_mbps, reset.note) == (
        None, "byte counters went backwards (reset or wrapped) during the sample")


def test_describe_nics_skips_down_and_loopback():
    stats = {"lo": NicStat(True, 0, True), "eth0": NicStat(True, 1000, False),
             "wlan0": NicStat(True, 0, False), "eth1": NicStat(False, 100, False)}
    before = {"eth0": Counters(0, 0), "wlan0": Counters(0, 0)}
    after = {"eth0": Counters(12_500_000, 1_250_000), "wlan0": Counters(0, 0)}
    infos = describe_nics(stats, before, after, 1.0, {"wlan0"}, set())
    assert [(i.name, i.wireless, i.speed_mbps, i.rate.rx_mbps if i.rate else None)
            for i in infos] == [("eth0", False, 1000, 100.0), ("wlan0", True, 0, 0.0)]
    assert is_loopback("Loopback Pseudo-Interface 1", "")
    assert not is_loopback("Ethernet", "up,broadcast")


def test_macos_hardware_ports():
    ports = parse_networksetup_ports(read("networksetup_listallhardwareports.txt"))
    assert ports == {"en0": "Ethernet", "en1": "Wi-Fi", "bridge0": "Thunderbolt Bridge"}
    runner = FakeRunner({("networksetup", "-listallhardwareports"): Reply(
        read("networksetup_listallhardwareports.txt"))})
    assert macos_wireless_devices(runner) == ({"en1"}, None)
