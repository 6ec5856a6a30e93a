"""Device results beyond CPU/memory/OS: screens, browsers, network interfaces.

Each ``*_result`` takes a :class:`Host` (roots, command runner, platform), so tests run the
Windows and macOS paths on Linux with recorded output. Results: ``screen`` (``screen``,
``screen_width_px``/``screen_height_px`` of the largest), ``browsers`` (``browser_<name>``),
and one ``nic`` result per interface (see :mod:`agent.probes.device_nics`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from agent.probes.device_browsers import (
    BROWSERS,
    linux_browsers,
    macos_browsers,
    windows_browsers,
)
from agent.probes.device_cmd import CommandError, Runner, run_command
from agent.probes.device_nics import (
    CountersFn,
    StatsFn,
    describe_nics,
    linux_virtual,
    linux_wireless,
    macos_wireless_devices,
    psutil_nic_counters,
    psutil_nic_stats,
)
from agent.probes.device_screen import linux_screens, macos_screens, windows_screens
from agent.probes.results import ResultBuilder, flag, text, value
from agent.wire import ProbeResult


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Host:
    """Where the device readers look: tests point every field at recorded data."""

    platform: str = sys.platform
    proc_root: Path = Path("/proc")
    sys_root: Path = Path("/sys")
    etc_root: Path = Path("/etc")
    apps_root: Path = Path("/Applications")
    runner: Runner = run_command
    which: Callable[[str], str | None] = shutil.which
    has_display: bool = field(default_factory=_has_display)
    today: date = field(default_factory=_today)

    @property
    def family(self) -> str:
        if self.platform.startswith("linux"):
            return "linux"
        return {"win32": "windows", "darwin": "macos"}.get(self.platform, self.platform)


def screen_result(host: Host) -> ProbeResult:
    r = ResultBuilder("screen")
    if host.family == "linux":
        screens, method, reason = linux_screens(host.runner, host.sys_root, host.has_display)
    elif host.family == "windows":
        screens, method, reason = windows_screens(host.runner)
    elif host.family == "macos":
        screens, method, reason = macos_screens(host.runner)
    else:
        return r.skipped(f"no screen reader for {host.platform}")
    if not screens:
        return r.skipped(reason or "no screen found")
    r.add(text("screen", method, ", ".join(s.text for s in screens)))
    largest = max(screens, key=lambda s: s.width * s.height)
    r.add(value("screen_width_px", f"{method}, largest of {len(screens)}", largest.width))
    r.add(value("screen_height_px", f"{method}, largest of {len(screens)}", largest.height))
    return r.ok()


def browsers_result(host: Host) -> ProbeResult:
    r = ResultBuilder("browsers")
    if host.family == "linux":  # per browser: the package database or the launcher
        found, notes, methods = linux_browsers(host.runner, host.which)
    elif host.family == "windows":
        found, notes = windows_browsers(host.runner)
        methods = dict.fromkeys(found, "registry DisplayVersion/CurrentVersion")
    elif host.family == "macos":
        found, notes = macos_browsers(host.apps_root)
        methods = dict.fromkeys(found, "Info.plist CFBundleShortVersionString")
    else:
        return r.skipped(f"no browser reader for {host.platform}")
    for name in BROWSERS:
        if name in found:
            r.add(text(f"browser_{name}", methods[name], found[name]))
    for note in notes:
        r.note(note)
    if not found:
        return r.skipped("; ".join(["no browser found (looked for Chrome, Edge, Firefox, "
                                    "Safari, Chromium)", *notes]))
    return r.ok()


def _windows_wireless(runner: Runner) -> tuple[set[str] | None, str | None]:
    """Names of the Wi-Fi adapters netsh lists; None (unknown) when netsh will not say."""
    from agent.probes.wifi_windows import NO_ADAPTER, parse_interfaces, refusal

    try:
        out = runner(["netsh", "wlan", "show", "interfaces"])
    except CommandError as exc:
        return None, str(exc)
    names = {b["name"] for b in parse_interfaces(out.stdout) if "name" in b}
    if names:
        return names, None
    why = refusal(out.stdout + out.stderr)
    if why == NO_ADAPTER:
        return set(), None
    return None, why or f"netsh listed no adapter ({out.first_line()})"


def wireless_names(host: Host, names: list[str]) -> tuple[set[str] | None, set[str],
                                                           str | None]:
    """(wireless interface names or None if unknown, virtual names, note)."""
    if host.family == "linux":
        return ({n for n in names if linux_wireless(host.sys_root, n)},
                {n for n in names if linux_virtual(host.sys_root, n)}, None)
    if host.family == "windows":
        wireless, note = _windows_wireless(host.runner)
        return wireless, set(), note
    if host.family == "macos":
        devices, note = macos_wireless_devices(host.runner)
        return (devices if note is None else None), set(), note
    return None, set(), f"no wireless detection for {host.platform}"


def nic_results(host: Host, interval_s: float = 1.0, stats: StatsFn = psutil_nic_stats,
                counters: CountersFn = psutil_nic_counters,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> list[ProbeResult]:
    current = stats()
    t0, before = clock(), counters()
    sleep(interval_s)
    after, t1 = counters(), clock()
    wireless, virtual, note = wireless_names(host, sorted(current))
    infos = describe_nics(current, before, after, t1 - t0, wireless, virtual)
    if not infos:
        return [ResultBuilder("nic").skipped("no network interface is up (besides loopback)")]
    results: list[ProbeResult] = []
    for info in infos:
        r = ResultBuilder("nic", info.name)
        kind = "virtual" if info.virtual else "hardware"
        if info.wireless is None:
            r.note(f"nic_wireless not measured: {note or 'unknown for this OS'}")
        else:
            r.add(flag("nic_wireless", f"{host.family} wireless check ({kind})", info.wireless))
        if info.speed_mbps > 0:
            r.add(value("nic_link_mbps", "psutil.net_if_stats speed", info.speed_mbps))
        else:
            r.note("nic_link_mbps not measured: the OS reports no link speed")
        if info.rate is None:
            r.note("nic_rx_mbps/nic_tx_mbps not measured: no byte counters for this NIC")
        elif info.rate.rx_mbps is None or info.rate.tx_mbps is None:
            r.note(f"nic_rx_mbps/nic_tx_mbps not measured: {info.rate.note}")
        else:
            method = f"psutil.net_io_counters delta over {t1 - t0:.2f} s"
            r.add(value("nic_rx_mbps", method, info.rate.rx_mbps))
            r.add(value("nic_tx_mbps", method, info.rate.tx_mbps))
        results.append(r.ok())
    return results
