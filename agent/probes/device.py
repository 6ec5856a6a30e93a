"""Device probe: the full inventory of the classroom PC (the agent runs it about daily).

Results: ``device`` (CPU model, cores, max MHz, RAM, disk, OS name/version/build/arch and
vendor end of support, uptime, CPU busy %, RAM used %; metrics that could not be read are
named in the reason), ``battery`` (charge, mains, health = full/design capacity; skipped on
a desktop: its battery is missing, not 0 %), ``screen``, ``browsers`` and one ``nic`` per
network interface (:mod:`agent.probes.device_inventory`). The cheap sample of how busy the
PC is, taken every minute in lessons, is the ``load`` probe (:mod:`agent.probes.load`); the
inventory still carries one such sample of its own.

Everything the OS is asked goes through a :class:`Host` (``/proc``, ``/sys``, ``/etc`` and
``/Applications`` roots, a command runner, the platform, today's date), so tests read
recorded files and run the Windows and macOS paths on Linux. Cores/threads are
``cpu_physical_cores``/``cpu_cores`` (logical CPUs). Sizes in ``GB`` are GiB (2**30 bytes),
as the metric catalogue defines them.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.probes.device_battery import (
    HealthOrReason,
    battery,
    linux_battery_health,
    macos_battery_health,
    windows_battery_health,
)
from agent.probes.device_cmd import CommandError
from agent.probes.device_inventory import Host
from agent.probes.device_os import (
    OsIdentity,
    macos_identity,
    parse_reg_query,
    support_status,
    windows_identity,
)
from agent.probes.results import ResultBuilder, flag, print_results, text, value
from agent.wire import ProbeResult

NAME = "device"
GIB = 2**30
CPU_BUSY_INTERVAL_S = 0.5
NIC_INTERVAL_S = 1.0
EXIT_OK, EXIT_FAILED = 0, 1


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


def linux_identity(etc_root: Path, kernel: str) -> OsIdentity | None:
    """os-release (``/etc``, then ``/usr/lib``) as an OsIdentity; the kernel is the build."""
    for path in (etc_root / "os-release", etc_root.parent / "usr/lib/os-release"):
        content = _read(path)
        if content is not None:
            release = parse_os_release(content)
            name, version = os_name_version(release)
            if name:
                return OsIdentity(name, version, kernel or None, str(path), "linux",
                                  distro=release.get("ID"))
    return None


def os_identity(host: Host) -> tuple[OsIdentity | None, str | None]:
    """(identity, None) or, when the OS's own source fails, Python's view and a note
    (only for the OS this runs on: a test's pretend Windows gets no Linux fallback)."""
    reason: str | None = None
    if host.family == "linux":
        ident = linux_identity(host.etc_root, platform.release())
        if ident is not None:
            return ident, None
        reason = f"no os-release under {host.etc_root}"
    elif host.family == "windows":
        found, reason = windows_identity(host.runner)
        if found is not None:
            return found, None
    elif host.family == "macos":
        found, reason = macos_identity(host.runner)
        if found is not None:
            return found, None
    if host.platform != sys.platform:
        return None, reason
    return OsIdentity(platform.system() or None, platform.release() or None, None,
                      "platform", host.family), reason


def cpu_model(host: Host, cpuinfo: CpuInfo | None) -> tuple[str | None, str]:
    """(model, method) from /proc/cpuinfo, the Windows registry or macOS sysctl."""
    if cpuinfo is not None and cpuinfo.model:
        return cpuinfo.model, "proc_cpuinfo"
    argv, method = {
        "windows": (["reg", "query", r"HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0",
                     "/v", "ProcessorNameString"], "registry ProcessorNameString"),
        "macos": (["sysctl", "-n", "machdep.cpu.brand_string"],
                  "sysctl machdep.cpu.brand_string"),
    }.get(host.family, ([], ""))
    if argv:
        try:
            out = host.runner(argv)
        except CommandError:
            out = None
        if out is not None and out.ok:
            if host.family == "windows":
                values = next(iter(parse_reg_query(out.stdout).values()), {})
                model = values.get("ProcessorNameString", "").strip()
            else:
                model = out.stdout.strip()
            if model:
                return model, method
    return platform.processor() or None, "platform.processor"


def _system_disk(host: Host) -> str:
    if host.family == "windows":
        return os.environ.get("SYSTEMDRIVE", "C:") + "\\"
    return "/"


def _os_measurements(r: ResultBuilder, host: Host) -> None:
    ident, problem = os_identity(host)
    if problem:
        r.note(f"OS identity from Python's platform module: {problem}")
    if ident is None:
        return
    for metric, content in (("os_name", ident.name), ("os_version", ident.version),
                            ("os_build", ident.build)):
        if content:
            r.add(text(metric, ident.method if metric != "os_build" or ident.family != "linux"
                       else "uname -r (kernel)", content))
        else:
            r.note(f"{metric} not measured: the OS names none")
    status = support_status(ident, host.today)
    if status.unknown_reason:
        r.note(status.unknown_reason)
        return
    if status.ends is not None:
        r.add(text("os_support_end", status.method, status.ends.isoformat()))
    if status.supported is not None:
        r.add(flag("os_supported", f"{status.method}, on {host.today.isoformat()}",
                   status.supported))


def collect(proc_root: Path = Path("/proc"), etc_root: Path = Path("/etc"),
            cpu_busy_interval_s: float = CPU_BUSY_INTERVAL_S,
            host: Host | None = None) -> list[ProbeResult]:
    """The ``device`` and ``battery`` results (see :func:`run` for the rest)."""
    import psutil

    host = host or Host(proc_root=proc_root, etc_root=etc_root)
    r = ResultBuilder(NAME)
    cpuinfo = None
    if host.family == "linux":
        content = _read(host.proc_root / "cpuinfo")
        cpuinfo = parse_cpuinfo(content) if content is not None else None
    model, method = cpu_model(host, cpuinfo)
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
    disk_path = _system_disk(host)
    try:
        disk = psutil.disk_usage(disk_path)
        r.add(value("disk_total_gb", f"psutil.disk_usage({disk_path})",
                    round(disk.total / GIB, 3)))
        r.add(value("disk_free_gb", f"psutil.disk_usage({disk_path})",
                    round(disk.free / GIB, 3)))
    except OSError as exc:
        r.note(f"disk_total_gb/disk_free_gb not measured: disk_usage({disk_path}): {exc}")

    _os_measurements(r, host)
    if platform.machine():
        r.add(text("arch", "platform.machine", platform.machine()))
    r.add(value("uptime_s", "psutil.boot_time", round(max(0.0, time.time() -
                                                            psutil.boot_time()), 1)))
    busy = psutil.cpu_percent(interval=cpu_busy_interval_s)
    r.add(value("cpu_busy_pct", f"psutil.cpu_percent({cpu_busy_interval_s:g} s)",
                round(busy, 1)))
    state = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
    return [r.ok(), battery(state, battery_health(host) if state is not None else None)]


def battery_health(host: Host) -> HealthOrReason:
    if host.family == "linux":
        return linux_battery_health(host.sys_root)
    if host.family == "windows":
        return windows_battery_health(host.runner)
    if host.family == "macos":
        return macos_battery_health(host.runner)
    return None, f"no battery health reader for {host.platform}"


def collect_all(host: Host | None = None, cpu_busy_interval_s: float | None = None,
                nic_interval_s: float | None = None) -> list[ProbeResult]:
    """Every device result: device, battery, screen, browsers, one per NIC."""
    from agent.probes.device_inventory import browsers_result, nic_results, screen_result

    host = host or Host()
    busy_s = CPU_BUSY_INTERVAL_S if cpu_busy_interval_s is None else cpu_busy_interval_s
    return [*collect(cpu_busy_interval_s=busy_s, host=host),
            screen_result(host), browsers_result(host),
            *nic_results(host, NIC_INTERVAL_S if nic_interval_s is None else nic_interval_s)]


def run(cfg: AgentConfig) -> list[ProbeResult]:
    return collect_all()


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``classprobe probe device``."""
    parser.add_argument("--json", action="store_true")


def run_device_cli(args: argparse.Namespace, host: Host | None = None) -> int:
    """``classprobe probe device``: print every device result; exit 1 if one failed."""
    return print_results(collect_all(host), args.json)


