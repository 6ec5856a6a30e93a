"""Installed browsers and their versions, from each platform's standard places.

- Linux: ``<binary> --version`` of the usual launchers (``google-chrome``, ``chromium``,
  ``firefox``, ``microsoft-edge``…) found on PATH. Only stdout is read: Debian's
  ``chromium`` wrapper prints shell noise on stderr.
- Windows: the ``DisplayVersion`` the installers write under the Uninstall keys
  (``reg query ... /v DisplayVersion``; 64-bit Chrome and Edge register under
  ``WOW6432Node``; a per-user Chrome under HKCU), and Firefox's
  ``HKLM\\SOFTWARE\\Mozilla\\Mozilla Firefox`` ``CurrentVersion`` ("128.0 (x64 en-GB)").
- macOS: ``CFBundleShortVersionString`` in ``/Applications/<Name>.app/Contents/Info.plist``.

Each browser becomes one text metric (``browser_chrome`` …). A browser that is not found is
simply not listed; the result says which were looked for.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Callable
from pathlib import Path

from agent.probes.device_cmd import CommandError, Runner
from agent.probes.device_os import parse_reg_query

BROWSERS = ("chrome", "edge", "firefox", "safari", "chromium")
"""Metric suffixes: ``browser_<name>``."""

_VERSION = re.compile(r"(\d+(?:\.\d+)+)")

LINUX_BINARIES: tuple[tuple[str, str], ...] = (
    ("chrome", "google-chrome"), ("chrome", "google-chrome-stable"),
    ("chromium", "chromium"), ("chromium", "chromium-browser"),
    ("firefox", "firefox"), ("firefox", "firefox-esr"),
    ("edge", "microsoft-edge"), ("edge", "microsoft-edge-stable"),
)


def version_in(text: str) -> str | None:
    """The first dotted version number in ``text`` (``Mozilla Firefox 128.0.3`` -> 128.0.3)."""
    match = _VERSION.search(text)
    return match[1] if match else None


def linux_browsers(runner: Runner, which: Callable[[str], str | None]
                   ) -> tuple[dict[str, str], list[str]]:
    """({browser: version}, notes) from the ``--version`` of launchers on PATH."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for name, binary in LINUX_BINARIES:
        if name in found or which(binary) is None:
            continue
        try:
            out = runner([binary, "--version"])
        except CommandError as exc:
            notes.append(f"{binary}: {exc}")
            continue
        version = version_in(out.stdout)
        if version:
            found[name] = version
        else:
            notes.append(f"{binary} --version printed no version ({out.first_line()})")
    return found, notes


_UNINSTALL = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
_UNINSTALL_32 = r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"
WINDOWS_KEYS: tuple[tuple[str, str, str], ...] = (
    ("chrome", rf"HKLM\{_UNINSTALL_32}\Google Chrome", "DisplayVersion"),
    ("chrome", rf"HKLM\{_UNINSTALL}\Google Chrome", "DisplayVersion"),
    ("chrome", rf"HKCU\{_UNINSTALL}\Google Chrome", "DisplayVersion"),
    ("edge", rf"HKLM\{_UNINSTALL_32}\Microsoft Edge", "DisplayVersion"),
    ("edge", rf"HKLM\{_UNINSTALL}\Microsoft Edge", "DisplayVersion"),
    ("firefox", r"HKLM\SOFTWARE\Mozilla\Mozilla Firefox", "CurrentVersion"),
    ("firefox", r"HKLM\SOFTWARE\WOW6432Node\Mozilla\Mozilla Firefox", "CurrentVersion"),
)


def windows_browsers(runner: Runner) -> tuple[dict[str, str], list[str]]:
    """({browser: version}, notes) from the registry. A missing key is "not installed"."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for name, key, value in WINDOWS_KEYS:
        if name in found:
            continue
        try:
            out = runner(["reg", "query", key, "/v", value])
        except CommandError as exc:
            return found, [str(exc)]
        if not out.ok:
            continue  # "ERROR: The system was unable to find the specified registry key"
        data = next((vals[value] for vals in parse_reg_query(out.stdout).values()
                     if value in vals), None)
        version = version_in(data or "")
        if version:
            found[name] = version
        else:
            notes.append(f"{key} {value} holds no version ({data!r})")
    return found, notes


MACOS_APPS: tuple[tuple[str, str], ...] = (
    ("chrome", "Google Chrome.app"), ("edge", "Microsoft Edge.app"),
    ("firefox", "Firefox.app"), ("safari", "Safari.app"), ("chromium", "Chromium.app"),
)


def macos_browsers(apps_root: Path = Path("/Applications")) -> tuple[dict[str, str], list[str]]:
    """({browser: version}, notes) from each app bundle's Info.plist (XML or binary)."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for name, bundle in MACOS_APPS:
        plist = apps_root / bundle / "Contents" / "Info.plist"
        if not plist.exists():
            continue
        try:
            with plist.open("rb") as fh:
                info = plistlib.load(fh)
        except (OSError, plistlib.InvalidFileException, ValueError) as exc:
            notes.append(f"{bundle}: Info.plist unreadable ({exc})")
            continue
        version = info.get("CFBundleShortVersionString") if isinstance(info, dict) else None
        if isinstance(version, str) and version_in(version):
            found[name] = version.strip()
        else:
            notes.append(f"{bundle}: Info.plist has no CFBundleShortVersionString")
    return found, notes
