"""Device probe: what the classroom PC is (CPU, memory, disk, OS, battery) and how busy.

Two results: ``device`` (everything but the battery; metrics that could not be read are
named in the reason) and ``battery`` (skipped, with the reason, on a machine without one:
a desktop's battery is missing, not 0 %).

The ``/proc`` and ``/etc`` roots are parameters, so tests read recorded files.
Sizes in ``GB`` are GiB (2**30 bytes), as the metric catalogue defines them.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.probes.results import ResultBuilder, flag, text, value
from agent.wire import ProbeResult

NAME = "device"
GIB = 2**30
CPU_BUSY_INTERVAL_S = 0.5


@dataclass(frozen=True)
class CpuInfo:
    model: str | None
    mhz: float | None
    logical: int


def parse_cpuinfo(content: str) -> CpuInfo:
    """Parse Linux ``/proc/cpuinfo``.

    x86 lists ``model name`` and ``cpu MHz`` per processor::

        processor	: 0
        vendor_id	: AuthenticAMD
        model name	: AMD EPYC
        cpu MHz		: 2445.434

    Arm boards (Raspberry Pi) have no ``model name`` but a ``Model`` (or ``Hardware``)
    line at the end and no MHz. ``mhz`` is the highest ``cpu MHz`` seen (cores differ).
    """
    model: str | None = None
    fallback: dict[str, str] = {}
    mhz: list[float] = []
    logical = 0
    for line in content.splitlines():
        key, sep, val = line.partition(":")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and model is None and val:
            model = val
        elif key == "cpu MHz":
            try:
                mhz.append(float(val))
            except ValueError:
                continue
        elif key in ("Model", "Hardware", "Processor", "cpu model") and val:
            fallback.setdefault(key, val)
    if model is None:
        model = next((fallback[k] for k in ("Model", "cpu model", "Processor", "Hardware")
                      if k in fallback), None)
    return CpuInfo(model=model, mhz=max(mhz) if mhz else None, logical=logical)


def parse_os_release(content: str) -> dict[str, str]:
    """Parse ``os-release`` (``KEY=value`` lines, values optionally quoted)::

        PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
        NAME="Debian GNU/Linux"
        VERSION_ID="12"
    """
    out: dict[str, str] = {}
    for line in content.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, val = line.partition("=")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[key.strip()] = val
    return out


def os_name_version(release: dict[str, str]) -> tuple[str | None, str | None]:
    """``(NAME, VERSION_ID)`` with ``VERSION``/``BUILD_ID`` as version fallbacks."""
    name = release.get("NAME") or release.get("ID")
    version = release.get("VERSION_ID") or release.get("VERSION") or release.get("BUILD_ID")
    return name, version


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _os_identity(etc_root: Path) -> tuple[str | None, str | None, str]:
    if sys.platform.startswith("linux"):
        for path in (etc_root / "os-release", etc_root.parent / "usr/lib/os-release"):
            content = _read(path)
            if content is not None:
                name, version = os_name_version(parse_os_release(content))
                if name:
                    return name, version, str(path)
    if sys.platform == "darwin":
        return "macOS", platform.mac_ver()[0] or None, "platform.mac_ver"
    if sys.platform == "win32":
        release, version, _, _ = platform.win32_ver()
        return f"Windows {release}".strip(), version or None, "platform.win32_ver"
    return platform.system() or None, platform.release() or None, "platform"


def _cpu_model_other_os() -> tuple[str | None, str]:
    if sys.platform == "win32":
        import winreg  # type: ignore[import-not-found,unused-ignore]

        key_path = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:  # type: ignore[attr-defined,unused-ignore]
                name = winreg.QueryValueEx(key, "ProcessorNameString")[0]  # type: ignore[attr-defined,unused-ignore]
                return str(name).strip(), "registry ProcessorNameString"
        except OSError:
            pass
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=5, check=True)
            return out.stdout.strip() or None, "sysctl machdep.cpu.brand_string"
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or None, "platform.processor"


def _system_disk() -> str:
    if sys.platform == "win32":
        return os.environ.get("SYSTEMDRIVE", "C:") + "\\"
    return "/"


def collect(proc_root: Path = Path("/proc"), etc_root: Path = Path("/etc"),
            cpu_busy_interval_s: float = CPU_BUSY_INTERVAL_S) -> list[ProbeResult]:
    import psutil

    r = ResultBuilder(NAME)
    cpuinfo = None
    if sys.platform.startswith("linux"):
        content = _read(proc_root / "cpuinfo")
        cpuinfo = parse_cpuinfo(content) if content is not None else None
    if cpuinfo is not None and cpuinfo.model:
        r.add(text("cpu_model", "proc_cpuinfo", cpuinfo.model))
    else:
        model, method = _cpu_model_other_os()
        if model:
            r.add(text("cpu_model", method, model))
        else:
            r.note("cpu_model not measured: no model string from the OS")

    logical = psutil.cpu_count(logical=True)
    physical = psutil.cpu_count(logical=False)
    for metric, count in (("cpu_cores", logical), ("cpu_physical_cores", physical)):
        if count:
            r.add(value(metric, "psutil.cpu_count", count))
        else:
            r.note(f"{metric} not measured: psutil.cpu_count returned {count!r}")

    freq = psutil.cpu_freq() if hasattr(psutil, "cpu_freq") else None
    if freq is not None and freq.max > 0:
        r.add(value("cpu_mhz", "psutil.cpu_freq.max", round(freq.max, 1)))
    elif cpuinfo is not None and cpuinfo.mhz:
        r.add(value("cpu_mhz", "proc_cpuinfo.current", round(cpuinfo.mhz, 1)))
    elif freq is not None and freq.current > 0:
        r.add(value("cpu_mhz", "psutil.cpu_freq.current", round(freq.current, 1)))
    else:
        r.note("cpu_mhz not measured: the OS reports no CPU frequency")

    mem = psutil.virtual_memory()
    r.add(value("ram_total_gb", "psutil.virtual_memory", round(mem.total / GIB, 3)))
    r.add(value("ram_used_pct", "psutil.virtual_memory", round(mem.percent, 1)))
    disk_path = _system_disk()
    try:
        disk = psutil.disk_usage(disk_path)
        r.add(value("disk_total_gb", f"psutil.disk_usage({disk_path})",
                    round(disk.total / GIB, 3)))
        r.add(value("disk_free_gb", f"psutil.disk_usage({disk_path})",
                    round(disk.free / GIB, 3)))
    except OSError as exc:
        r.note(f"disk_total_gb/disk_free_gb not measured: disk_usage({disk_path}): {exc}")

    name, version, method = _os_identity(etc_root)
    if name:
        r.add(text("os_name", method, name))
    if version:
        r.add(text("os_version", method, version))
    else:
        r.note("os_version not measured: the OS names no version")
    if platform.machine():
        r.add(text("arch", "platform.machine", platform.machine()))
    r.add(value("uptime_s", "psutil.boot_time", round(max(0.0, time.time() -
                                                            psutil.boot_time()), 1)))
    busy = psutil.cpu_percent(interval=cpu_busy_interval_s)
    r.add(value("cpu_busy_pct", f"psutil.cpu_percent({cpu_busy_interval_s:g} s)",
                round(busy, 1)))
    return [r.ok(), battery(psutil.sensors_battery()
                            if hasattr(psutil, "sensors_battery") else None)]


def battery(state: object | None) -> ProbeResult:
    """The battery result from ``psutil.sensors_battery()`` (None: no battery)."""
    r = ResultBuilder("battery")
    if state is None:
        return r.skipped("no battery found (psutil.sensors_battery() returned None)")
    percent = getattr(state, "percent", None)
    plugged = getattr(state, "power_plugged", None)
    if percent is None:
        return r.skipped("the OS reports a battery without a charge level")
    r.add(value("battery_pct", "psutil.sensors_battery", round(float(percent), 1)))
    if plugged is None:
        r.note("battery_plugged not measured: the OS does not say if mains is connected")
    else:
        r.add(flag("battery_plugged", "psutil.sensors_battery", bool(plugged)))
    return r.ok()


def run(cfg: AgentConfig) -> list[ProbeResult]:
    return collect()
