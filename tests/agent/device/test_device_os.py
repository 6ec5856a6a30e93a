from datetime import date
from pathlib import Path

import pytest

from agent.probes.device_os import (
    OsIdentity,
    macos_identity,
    parse_reg_query,
    parse_sw_vers,
    reg_int,
    support_status,
    windows_identity,
    windows_identity_from_reg,
    windows_product,
)
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")
REG_CV = ("reg", "query", r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion")


def test_reg_query_values_subkeys_and_empty_data():
    keys = parse_reg_query(read("reg_currentversion_win11_23h2_education.txt"))
    cv = keys[r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion"]
    assert cv["CurrentBuild"] == "22631"
    assert cv["UBR"] == "0xd61" and reg_int(cv["UBR"]) == 3425
    assert cv["EditionSubManufacturer"] == ""
    assert cv["SystemRoot"] == r"C:\WINDOWS"
    assert keys[r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"] == {}
    assert reg_int("22631") == 22631 and reg_int("") is None and reg_int("0xzz") is None


def test_windows_11_is_named_by_build_not_by_the_stale_product_name():
    ident, reason = windows_identity(FakeRunner({REG_CV: Reply(
        read("reg_currentversion_win11_23h2_education.txt"))}))
    assert reason is None and ident is not None
    assert (ident.name, ident.version, ident.build, ident.edition) == (
        "Windows 11 Education", "23H2", "22631.3425", "Education")


def test_windows_identity_failures():
    missing, why = windows_identity(FakeRunner({}, missing={"reg"}))
    assert missing is None and why == "reg is not installed (not found on PATH)"
    refused, why = windows_identity(FakeRunner({REG_CV: Reply(
        "", read("reg_not_found.stderr.txt"), 1)}))
    assert refused is None and why == ("reg query CurrentVersion failed: ERROR: The system was "
                                       "unable to find the specified registry key or value.")
    empty, why = windows_identity(FakeRunner({REG_CV: Reply("\nHKEY_LOCAL_MACHINE\\X\\"
                                                           "CurrentVersion\n")}))
    assert empty is None and why == "reg query CurrentVersion printed no CurrentBuild value"


@pytest.mark.parametrize(("build", "product"), [
    (26100, "Windows 11"), (22000, "Windows 11"), (19045, "Windows 10"), (10240, "Windows 10"),
    (9600, "Windows 8.1"), (7601, "Windows 7"), (6002, None)])
def test_windows_product(build: int, product: str | None):
    assert windows_product(build) == product


def win(build: int, edition: str, version: str = "") -> OsIdentity:
    ident = windows_identity_from_reg({"CurrentBuild": str(build), "EditionID": edition,
                                       "DisplayVersion": version})
    assert ident is not None
    return ident


@pytest.mark.parametrize(("build", "edition", "today", "ends", "supported"), [
    (19045, "Professional", date(2025, 10, 14), date(2025, 10, 14), True),
    (19045, "Education", date(2025, 10, 15), date(2025, 10, 14), False),
    (22631, "Education", date(2026, 11, 27), date(2026, 11, 10), False),
    (22631, "Enterprise", date(2026, 11, 10), date(2026, 11, 10), True),
    (22631, "Core", date(2025, 11, 12), date(2025, 11, 11), False),
    (26100, "Professional", date(2026, 10, 13), date(2026, 10, 13), True),
    (26100, "Education", date(2026, 11, 27), date(2027, 10, 12), True),
    (19044, "EnterpriseS", date(2026, 11, 27), date(2027, 1, 12), True),
    (7601, "Professional", date(2026, 11, 27), date(2020, 1, 14), False),
])
def test_windows_support_table(build: int, edition: str, today: date, ends: date,
                               supported: bool):
    status = support_status(win(build, edition), today)
    assert (status.ends, status.supported, status.unknown_reason) == (ends, supported, None)
    assert status.method.startswith("Microsoft Lifecycle: ")


def test_old_windows_10_is_unsupported_without_inventing_its_date():
    status = support_status(win(18363, "Professional"), date(2026, 11, 27))
    assert (status.ends, status.supported) == (None, False)
    assert status.method.startswith("Microsoft Lifecycle: Windows 10 (22H2 was the last")
    before = support_status(win(18363, "Professional"), date(2025, 1, 1))
    assert before.supported is None
    assert before.unknown_reason == ("end of support unknown for Windows 10 Pro "
                                     "(build 18363 is not in the table)")


def test_unknown_windows_cases_say_unknown():
    iot = support_status(win(26100, "IoTEnterpriseS"), date(2026, 11, 27))
    assert iot.unknown_reason == ("end of support unknown for Windows 11 IoTEnterpriseS: "
                                  "edition IoTEnterpriseS is not in the table")
    future = support_status(win(26200, "Professional", "25H2"), date(2026, 11, 27))
    assert future.unknown_reason == ("end of support unknown for Windows 11 Pro 25H2 "
                                     "(build 26200 is not in the table)")


def test_linux_and_macos_support():
    ubuntu = OsIdentity("Ubuntu", "20.04", "5.4.0", "os-release", "linux", distro="ubuntu")
    assert support_status(ubuntu, date(2026, 1, 1)).supported is False
    jammy = OsIdentity("Ubuntu", "22.04", "6.8.0", "os-release", "linux", distro="ubuntu")
    assert support_status(jammy, date(2026, 1, 1)).unknown_reason == (
        "end of support unknown for Ubuntu 22.04 (not in classprobe's table of "
        "vendor-published dates)")
    mac = OsIdentity("macOS", "14.4.1", "23E224", "sw_vers", "macos")
    assert support_status(mac, date(2026, 1, 1)).unknown_reason == (
        "end of support unknown for macOS 14.4.1: Apple publishes no end-of-support dates")


def test_sw_vers():
    assert parse_sw_vers(read("sw_vers_macos14.txt")) == {
        "ProductName": "macOS", "ProductVersion": "14.4.1", "BuildVersion": "23E224"}
    ident, reason = macos_identity(FakeRunner({("sw_vers",): Reply(read("sw_vers_macos14.txt"))}))
    assert reason is None and ident is not None
    assert (ident.name, ident.version, ident.build) == ("macOS", "14.4.1", "23E224")
    bad, reason = macos_identity(FakeRunner({("sw_vers",): Reply("garbage\n")}))
    assert bad is None and reason == "sw_vers printed no ProductVersion (garbage)"


def test_cap_net_raw_is_read_from_the_effective_set() -> None:
    from agent.probes.device_cmd import cap_net_raw_in

    # a service user granted AmbientCapabilities=CAP_NET_RAW (bit 13) and an ordinary user
    granted = "Name:\tpython3\nCapInh:\t0000000000002000\nCapEff:\t0000000000002000\n"
    plain = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\n"
    root = "CapEff:\t000001ffffffffff\n"
    assert [cap_net_raw_in(t) for t in (granted, plain, root, "CapEff:\tzz\n", "")] == [
        True, False, True, False, False]
