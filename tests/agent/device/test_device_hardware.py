"""Battery health and screens, on each OS's recorded or hand-written output."""

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.probes.device_battery import (
    linux_battery_health,
    parse_battery_report,
    parse_ioreg_battery,
    windows_battery_health,
)
from agent.probes.device_screen import (
    Screen,
    drm_screens,
    linux_screens,
    parse_sp_displays,
    parse_windows_video_controllers,
    parse_xrandr,
    windows_screens,
)
from tests.agent.device.fakes import FakeRunner, Reply, reader

read = reader(Path(__file__).parent / "fixtures")


def supply(root: Path, name: str, **files: str) -> None:
    d = root / "class" / "power_supply" / name
    d.mkdir(parents=True)
    for key, content in files.items():
        (d / key).write_text(content + "\n")


def test_linux_energy_battery_and_ignored_supplies(tmp_path: Path):
    supply(tmp_path, "AC", type="Mains", online="1")
    supply(tmp_path, "BAT0", type="Battery", present="1", energy_full="42000000",
           energy_full_design="57020000", cycle_count="311")
    supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", energy_full="1",
           energy_full_design="2")
    health, reason = linux_battery_health(tmp_path)
    assert reason is None and health is not None
    assert (health.health_pct, health.unit, health.cycles, health.count) == (73.7, "µWh", 311, 1)


def test_linux_two_charge_batteries_are_summed(tmp_path: Path):
    supply(tmp_path, "BAT0", type="Battery", charge_full="3000000", charge_full_design="4000000",
           cycle_count="0")
    supply(tmp_path, "BAT1", type="Battery", charge_full="2000000", charge_full_design="2000000")
    health, _ = linux_battery_health(tmp_path)
    assert health is not None
    assert (health.health_pct, health.unit, health.count, health.cycles) == (83.3, "µAh", 2, None)


def test_linux_battery_without_design_capacity(tmp_path: Path):
    supply(tmp_path, "BAT0", type="Battery", capacity="80")
    health, reason = linux_battery_health(tmp_path)
    assert health is None
    assert reason == (f"no battery under {tmp_path / 'class' / 'power_supply'} reports full "
                      "and design capacity")
    assert linux_battery_health(tmp_path / "nope")[1] == (
        f"{tmp_path / 'nope' / 'class' / 'power_supply'} is not readable")


def test_linux_mixed_units_are_not_combined(tmp_path: Path):
    supply(tmp_path, "BAT0", type="Battery", energy_full="1", energy_full_design="2")
    supply(tmp_path, "BAT1", type="Battery", charge_full="1", charge_full_design="2")
    assert linux_battery_health(tmp_path) == (
        None, "batteries report different units (µWh and µAh); not combined")


def test_battery_report_reads_only_the_batteries():
    health, reason = parse_battery_report(read("battery-report_laptop.xml"))
    assert reason is None and health is not None
    assert (health.full, health.design, health.health_pct, health.cycles) == (
        41050.0, 57020.0, 72.0, 487)
    assert parse_battery_report(read("battery-report_desktop.xml")) == (
        None, "the battery report lists no battery (a desktop)")
    assert str(parse_battery_report("<html>")[1]).startswith("battery report is not valid XML")
    assert parse_battery_report("<Other/>") == (
        None, "not a battery report (root element 'Other')")


def test_windows_powercfg_writes_reads_and_cleans_up(tmp_path: Path):
    written: list[Path] = []

    def write_report(argv: Sequence[str]) -> None:
        path = Path(argv[-1])
        path.write_text(read("battery-report_laptop.xml"))
        written.append(path)

    runner = FakeRunner({("powercfg", "/batteryreport", "/xml", "/output", "..."): Reply(
        "Battery life report saved to file path C:\\x.xml.", effect=write_report)})
    health, reason = windows_battery_health(runner, tmp_path)
    assert reason is None and health is not None and health.health_pct == 72.0
    assert written and not written[0].exists()  # the report (with the PC's name) is gone


def test_windows_powercfg_failures(tmp_path: Path):
    failing = FakeRunner({("powercfg", "/batteryreport", "/xml", "/output", "..."): Reply(
        "Unable to perform operation. An unexpected error (0x10d2) has occurred: The library, "
        "drive, or media pool is empty.", returncode=1)})
    assert windows_battery_health(failing, tmp_path)[1] == (
        "powercfg /batteryreport failed: Unable to perform operation. An unexpected error "
        "(0x10d2) has occurred: The library, drive, or media pool is empty.")
    silent = FakeRunner({("powercfg", "/batteryreport", "/xml", "/output", "..."): Reply("")})
    assert windows_battery_health(silent, tmp_path)[1] == (
        "powercfg wrote no report at battery-report.xml: No such file or directory")


@pytest.mark.parametrize(("fixture", "pct", "cycles", "method"), [
    ("ioreg_applesmartbattery_m1.txt", 86.0, 212,
     "ioreg AppleSmartBattery AppleRawMaxCapacity/DesignCapacity"),
    ("ioreg_applesmartbattery_intel.txt", 71.1, 894,
     "ioreg AppleSmartBattery MaxCapacity/DesignCapacity"),
    ("ioreg_applesmartbattery_batterydata_only.txt", 86.7, 298,
     "ioreg AppleSmartBattery BatteryData.FullChargeCapacity/DesignCapacity"),
])
def test_ioreg_battery(fixture: str, pct: float, cycles: int, method: str):
    health, reason = parse_ioreg_battery(read(fixture))
    assert reason is None and health is not None
    assert (health.health_pct, health.cycles, health.method) == (pct, cycles, method)


def test_ioreg_without_usable_capacity():
    assert parse_ioreg_battery("") == (
        None, "ioreg lists no AppleSmartBattery (a Mac without a battery)")
    percent_only = '+-o AppleSmartBattery  <class AppleSmartBattery>\n  {\n    ' \
                   '"MaxCapacity" = 100\n    "DesignCapacity" = 5103\n  }\n'
    assert parse_ioreg_battery(percent_only)[0] is None  # 100 is a percentage, not mAh


def test_xrandr_recorded_on_xvfb_and_laptop_with_projector():
    assert parse_xrandr(read("xrandr_xvfb_recorded.txt")) == [Screen(1366, 768, "screen")]
    assert parse_xrandr(read("xrandr_laptop_hdmi.txt")) == [
        Screen(1366, 768, "eDP-1"), Screen(1920, 1080, "HDMI-1")]


def test_drm_connectors(tmp_path: Path):
    for name, status, modes in (("card0-eDP-1", "connected", "1920x1080\n1280x720\n"),
                                ("card0-HDMI-A-1", "disconnected", ""),
                                ("card0-DP-1", "connected", "")):
        d = tmp_path / "class" / "drm" / name
        d.mkdir(parents=True)
        (d / "status").write_text(status + "\n")
        (d / "modes").write_text(modes)
    (tmp_path / "class" / "drm" / "card0").mkdir()
    assert drm_screens(tmp_path) == [Screen(1920, 1080, "eDP-1")]
    runner = FakeRunner({}, missing={"xrandr"})
    assert linux_screens(runner, tmp_path, has_display=True) == (
        [Screen(1920, 1080, "eDP-1")], "drm connector preferred mode", None)


def test_linux_without_any_display(tmp_path: Path):
    screens, _, reason = linux_screens(FakeRunner({}), tmp_path, has_display=False)
    assert screens == [] and reason is not None and reason.startswith("no connected display")


def test_windows_video_controllers():
    assert parse_windows_video_controllers(read("win_videocontroller_ps.txt")) == [
        Screen(1920, 1080, "adapter 1")]
    assert parse_windows_video_controllers(read("win_videocontroller_wmic.txt")) == [
        Screen(1366, 768, "adapter 1")]
    ps = ("powershell", "-NoProfile", "-NonInteractive", "-Command", "...")
    wmic = ("wmic", "path", "Win32_VideoController", "get",
            "CurrentHorizontalResolution,CurrentVerticalResolution", "/format:list")
    only_wmic = FakeRunner({wmic: Reply(read("win_videocontroller_wmic.txt"))},
                           missing={"powershell"})
    assert windows_screens(only_wmic) == ([Screen(1366, 768, "adapter 1")],
                                          "Win32_VideoController (wmic)", None)
    neither = FakeRunner({ps: Reply("")}, missing={"wmic"})
    assert windows_screens(neither)[2] == ("powershell listed no adapter with a resolution "
                                           "(exit code 0); wmic is not installed (not found "
                                           "on PATH)")


def test_macos_displays():
    assert parse_sp_displays(read("sp_displays_m1_external.txt")) == [
        Screen(2560, 1600, "Color LCD"), Screen(1920, 1080, "DELL P2419H")]
