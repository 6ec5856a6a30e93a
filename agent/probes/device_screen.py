"""Screen resolution(s): can this PC show a lesson's content at the size it needs?

- Linux with a display: ``xrandr --query`` (current mode of each connected output).
  Without one (the agent as a service), ``/sys/class/drm/card*-*/status`` and ``modes``: the
  first listed mode is the panel's preferred (native) mode, not necessarily the current one.
- Windows: ``Win32_VideoController`` ``CurrentHorizontalResolution`` /
  ``CurrentVerticalResolution`` via PowerShell ``Get-CimInstance`` (``Format-List``), or
  ``wmic ... /format:list`` where PowerShell is missing. One value per display adapter: a
  second monitor on the same adapter is not listed (a documented WMI limit).
- macOS: ``system_profiler SPDisplaysDataType`` (``Resolution: 2560 x 1600 Retina``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.probes.device_cmd import CommandError, Runner


@dataclass(frozen=True)
class Screen:
    width: int
    height: int
    output: str = ""

    @property
    def text(self) -> str:
        return f"{self.width}x{self.height}"


ScreensOrReason = tuple[list[Screen], str, str | None]
"""(screens, method, reason when none were found)."""

_XRANDR_OUTPUT = re.compile(
    r"^(?P<name>\S+) connected (?:primary )?(?P<w>\d+)x(?P<h>\d+)\+\d+\+\d+")


def parse_xrandr(text: str) -> list[Screen]:
    """Connected outputs with a current mode from ``xrandr --query``::

        eDP-1 connected primary 1366x768+0+0 (normal left inverted right x axis y axis) ...
        HDMI-1 connected 1920x1080+1366+0 (normal ...) 527mm x 296mm
        DP-1 disconnected (normal left inverted right x axis y axis)

    A connected output without a geometry is switched off and is not a screen in use.
    """
    return [Screen(int(m["w"]), int(m["h"]), m["name"])
            for m in map(_XRANDR_OUTPUT.match, text.splitlines()) if m]


def drm_screens(sys_root: Path = Path("/sys")) -> list[Screen]:
    """Connected DRM connectors and their preferred (first listed) mode."""
    base = sys_root / "class" / "drm"
    screens: list[Screen] = []
    try:
        connectors = sorted(p for p in base.iterdir() if "-" in p.name)
    except OSError:
        return []
    for conn in connectors:
        try:
            status = (conn / "status").read_text().strip()
            modes = (conn / "modes").read_text().split()
        except OSError:
            continue
        match = re.fullmatch(r"(\d+)x(\d+)\w*", modes[0]) if modes else None
        if status == "connected" and match:
            screens.append(Screen(int(match[1]), int(match[2]), conn.name.split("-", 1)[1]))
    return screens


def parse_windows_video_controllers(text: str) -> list[Screen]:
    """PowerShell ``Format-List`` (``Key : value``) or ``wmic /format:list`` (``Key=value``)::

        CurrentHorizontalResolution : 1920
        CurrentVerticalResolution   : 1080

    Adapters without a display print empty values and are skipped.
    """
    screens: list[Screen] = []
    width: int | None = None
    for line in text.splitlines():
        match = re.match(r"^\s*(CurrentHorizontalResolution|CurrentVerticalResolution)\s*[:=]"
                         r"\s*(\d*)\s*$", line)
        if not match:
            continue
        number = int(match[2]) if match[2] else None
        if match[1] == "CurrentHorizontalResolution":
            width = number
        elif width and number:
            screens.append(Screen(width, number, f"adapter {len(screens) + 1}"))
            width = None
        else:
            width = None
    return screens


def parse_sp_displays(text: str) -> list[Screen]:
    """``system_profiler SPDisplaysDataType``: one ``Resolution:`` line per display::

        Color LCD:
          Display Type: Built-In Retina LCD
          Resolution: 2560 x 1600 Retina
    """
    screens: list[Screen] = []
    last_name = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and ":" not in stripped[:-1]:
            last_name = stripped[:-1]
        match = re.match(r"^Resolution:\s*(\d+)\s*x\s*(\d+)", stripped)
        if match:
            screens.append(Screen(int(match[1]), int(match[2]), last_name))
    return screens


def linux_screens(runner: Runner, sys_root: Path, has_display: bool) -> ScreensOrReason:
    if has_display:
        try:
            out = runner(["xrandr", "--query"])
            if out.ok:
                screens = parse_xrandr(out.stdout)
                if screens:
                    return screens, "xrandr current mode", None
        except CommandError:
            pass  # no xrandr: the DRM connectors below still answer
    screens = drm_screens(sys_root)
    if screens:
        return screens, "drm connector preferred mode", None
    return [], "", ("no connected display found (no X display for xrandr, no connected "
                    f"connector under {sys_root / 'class' / 'drm'})")


_PS_VIDEO = ("Get-CimInstance -ClassName Win32_VideoController | Format-List "
             "CurrentHorizontalResolution,CurrentVerticalResolution")


def windows_screens(runner: Runner) -> ScreensOrReason:
    attempts = (
        (["powershell", "-NoProfile", "-NonInteractive", "-Command", _PS_VIDEO],
         "Win32_VideoController (PowerShell)"),
        (["wmic", "path", "Win32_VideoController", "get",
          "CurrentHorizontalResolution,CurrentVerticalResolution", "/format:list"],
         "Win32_VideoController (wmic)"),
    )
    problems: list[str] = []
    for argv, method in attempts:
        try:
            out = runner(argv)
        except CommandError as exc:
            problems.append(str(exc))
            continue
        screens = parse_windows_video_controllers(out.stdout)
        if screens:
            return screens, method, None
        problems.append(f"{argv[0]} listed no adapter with a resolution ({out.first_line()})")
    return [], "", "; ".join(problems)


def macos_screens(runner: Runner) -> ScreensOrReason:
    try:
        out = runner(["system_profiler", "SPDisplaysDataType"])
    except CommandError as exc:
        return [], "", str(exc)
    screens = parse_sp_displays(out.stdout)
    if screens:
        return screens, "system_profiler SPDisplaysDataType", None
    return [], "", f"system_profiler listed no display resolution ({out.first_line()})"
