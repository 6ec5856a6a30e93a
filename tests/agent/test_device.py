from pathlib import Path
from types import SimpleNamespace

from agent.probes.device import (
    battery,
    collect,
    os_name_version,
    parse_cpuinfo,
    parse_os_release,
)
from agent.wire import semantic_errors

FIXTURES = Path(__file__).parent / "fixtures"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_cpuinfo_x86_recorded():
    info = parse_cpuinfo(read("cpuinfo_amd_epyc_2cpu.txt"))
    assert info.model == "AMD EPYC"
    assert info.mhz == 2445.434
    assert info.logical == 2


def test_cpuinfo_raspberry_pi_uses_model_line_and_has_no_mhz():
    info = parse_cpuinfo(read("cpuinfo_raspberry_pi4.txt"))
    assert info.model == "Raspberry Pi 4 Model B Rev 1.4"
    assert info.mhz is None
    assert info.logical == 4


def test_cpuinfo_mhz_is_the_highest_core():
    text = "processor : 0\ncpu MHz : 800.000\n\nprocessor : 1\ncpu MHz : 3400.5\n"
    assert parse_cpuinfo(text).mhz == 3400.5


def test_os_release_debian():
    release = parse_os_release(read("os-release_debian12.txt"))
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert os_name_version(release) == ("Debian GNU/Linux", "12")


def test_os_release_ubuntu_and_arch_fallback_to_build_id():
    assert os_name_version(parse_os_release(read("os-release_ubuntu2204.txt"))) == \
        ("Ubuntu", "22.04")
    assert os_name_version(parse_os_release(read("os-release_arch.txt"))) == \
        ("Arch Linux", "rolling")


def test_os_release_quotes_comments_and_escapes():
    text = "# comment\nNAME='Single'\nVERSION_ID=\"1 \\\"x\\\"\"\nBROKEN\n"
    assert parse_os_release(text) == {"NAME": "Single", "VERSION_ID": '1 "x"'}


def test_no_battery_is_skipped_never_zero():
    result = battery(None)
    assert result.status == "skipped"
    assert result.reason == "no battery found (psutil.sensors_battery() returned None)"
    assert result.measurements == []


def test_battery_values():
    result = battery(SimpleNamespace(percent=57.456, power_plugged=False, secsleft=100))
    values = {m.metric: m.value for m in result.measurements}
    assert result.status == "ok"
    assert values == {"battery_pct": 57.5, "battery_plugged": 0.0}


def test_collect_reads_recorded_roots(tmp_path: Path):
    proc = tmp_path / "proc"
    etc = tmp_path / "etc"
    proc.mkdir()
    etc.mkdir()
    (proc / "cpuinfo").write_text(read("cpuinfo_raspberry_pi4.txt"))
    (etc / "os-release").write_text(read("os-release_ubuntu2204.txt"))
    device, _battery = collect(proc_root=proc, etc_root=etc, cpu_busy_interval_s=0.01)
    texts = {m.metric: m.text for m in device.measurements if m.text is not None}
    assert texts["cpu_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert texts["os_name"] == "Ubuntu"
    assert texts["os_version"] == "22.04"
    numbers = {m.metric for m in device.measurements if m.value is not None}
    assert {"cpu_cores", "ram_total_gb", "disk_free_gb", "uptime_s", "cpu_busy_pct",
            "ram_used_pct"} <= numbers


def test_device_results_fit_the_wire_format():
    from agent.wire import new_report

    results = collect(cpu_busy_interval_s=0.01)
    assert semantic_errors(new_report("a", "0", results)) == []
