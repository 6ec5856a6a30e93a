"""Installed browsers and their versions, from each platform's standard places.

- Linux: the package database first (``dpkg-query`` for the usual packages:
  ``google-chrome-stable``, ``chromium``, ``firefox-esr``, ``microsoft-edge-stable``…), so
  no browser is started on a classroom PC: ``chromium --version`` loads the whole browser
  (63 MB resident for 0.3 s here) and a snap's wrapper may start the snap. A browser the
  packages do not know (snap, flatpak, tarball) falls back to ``<binary> --version`` of
  the usual launchers found on PATH; only its stdout is read (Debian's ``chromium``
  wrapper prints shell noise on stderr). A package version whose upstream part is not a
  dotted number (Ubuntu's ``1snap1`` transitional packages) is not trusted.
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


LINUX_PACKAGES: tuple[tuple[str, str], ...] = (
    ("chrome", "google-chrome-stable"), ("chrome", "google-chrome-beta"),
    ("chromium", "chromium"), ("chromium", "chromium-browser"),
    ("firefox", "firefox"), ("firefox", "firefox-esr"),
    ("edge", "microsoft-edge-stable"), ("edge", "microsoft-edge-beta"),
)
DPKG_FORMAT = "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"
"""One line per package: name, version, status ("ii " = installed, "un " = known, absent)."""


def parse_dpkg_query(stdout: str) -> dict[str, str]:
    """{package: upstream version} of the installed packages in ``dpkg-query -W`` output."""
    installed: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].startswith(("ii", "hi")):
            continue
        upstream = parts[1].split(":", 1)[-1].split("-", 1)[0]  # epoch:upstream-revision
        version = version_in(upstream)
        if version is not None and upstream.startswith(version):
            installed[parts[0]] = version
    return installed


def packaged_browsers(runner: Runner, which: Callable[[str], str | None]
                      ) -> tuple[dict[str, str], list[str]]:
    """({browser: version}, notes) from dpkg's database; nothing where there is no dpkg.

    ``dpkg-query`` exits 1 when one of the packages is unknown, and still prints the
    others: the exit code is not an error here."""
    if which("dpkg-query") is None:
        return {}, []
    try:
        out = runner(["dpkg-query", "-W", DPKG_FORMAT, *(pkg for _, pkg in LINUX_PACKAGES)])
    except CommandError as exc:
        return {}, [f"dpkg-query: {exc}"]
    installed = parse_dpkg_query(out.stdout)
    found: dict[str, str] = {}
    for name, package in LINUX_PACKAGES:
        if name not in found and package in installed:
            found[name] = installed[package]
    return found, []


PACKAGE_METHOD = "dpkg-query"
LAUNCHER_METHOD = "--version"


def linux_browsers(runner: Runner, which: Callable[[str], str | None]
                   ) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """({browser: version}, notes, {browser: how its version was read}): packages first
    (:data:`PACKAGE_METHOD`), else ``--version`` of launchers on PATH
    (:data:`LAUNCHER_METHOD`)."""
    found, notes = packaged_browsers(runner, which)
    methods = dict.fromkeys(found, PACKAGE_METHOD)
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
            found[name], methods[name] = version, LAUNCHER_METHOD
        else:
            notes.append(f"{binary} --version printed no version ({out.first_line()})")
    return found, notes, methods


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
