"""Proxy in use: the environment, and the OS proxy settings where the OS exposes them.

Sources (each a pure parser of recorded output, run only on its own OS):

- ``env``: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` (any case) and ``NO_PROXY``.
- ``gsettings`` (Linux desktops): ``gsettings list-recursively org.gnome.system.proxy``;
  mode ``manual`` (host/port per protocol) or ``auto`` (``autoconfig-url``, or WPAD
  discovery when empty).
- ``windows_registry``: ``reg query`` of the current user's ``Internet Settings``
  (``ProxyEnable``/``ProxyServer``, ``AutoConfigURL``) and the auto-detect (WPAD) flag,
  byte 8 bit 0x08 of ``Connections\\DefaultConnectionSettings``.
- ``scutil`` (macOS): ``scutil --proxy`` (``HTTPEnable``/``HTTPProxy``...,
  ``ProxyAutoConfigEnable``/``ProxyAutoConfigURLString``, ``ProxyAutoDiscoveryEnable``).

``proxy`` (text) is ``none``, or the kinds found joined with ``+`` in this order: ``env``
(environment variables), ``manual`` (a fixed proxy in the OS settings), ``pac`` (a PAC URL,
or WPAD auto-discovery, which finds one). The method is ``proxy_config:SOURCES``: the
sources actually read, so ``none`` says where nobody was found. The reason lists each
setting. Credentials are never recorded: proxy URLs are cut to ``scheme://host:port``, PAC
URLs lose user info and query string (vendors put tokens there).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent.probes.results import ResultBuilder, text
from agent.wire import ProbeResult

NAME = "proxy"
KIND_ORDER = ("env", "manual", "pac")
ENV_KEYS = ("http_proxy", "https_proxy", "all_proxy")
WIN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
WPAD_FLAG = 0x08

Runner = Callable[[list[str]], str]
"""Runs a command and returns its stdout; raises OSError or CalledProcessError."""


@dataclass(frozen=True)
class ProxySetting:
    source: str
    kind: str
    detail: str


def safe_proxy(value: str) -> str:
    """A proxy address as ``scheme://host[:port]``: user info, path and query dropped."""
    raw = value.strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def safe_pac(url: str) -> str:
    """A PAC URL without user info or query string."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{safe_proxy(url).split('://', 1)[1]}{parts.path}"


def from_environ(environ: Mapping[str, str]) -> list[ProxySetting]:
    lowered = {k.lower(): (k, v) for k, v in environ.items() if k.lower() in
               (*ENV_KEYS, "no_proxy")}
    found = [ProxySetting("env", "env", f"{lowered[k][0]}={safe_proxy(lowered[k][1])}")
             for k in ENV_KEYS if k in lowered and lowered[k][1].strip()]
    if found and "no_proxy" in lowered:
        name, hosts = lowered["no_proxy"]
        found.append(ProxySetting("env", "env", f"{name}={hosts.strip()}"))
    return found


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_gsettings(output: str) -> list[ProxySetting]:
    """``gsettings list-recursively org.gnome.system.proxy`` output → settings.

    Sample::

        org.gnome.system.proxy autoconfig-url 'http://wpad.school.lan/wpad.dat'
        org.gnome.system.proxy mode 'auto'
        org.gnome.system.proxy.http host 'proxy.school.lan'
        org.gnome.system.proxy.http port 3128
    """
    values: dict[tuple[str, str], str] = {}
    for line in output.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith("org.gnome.system.proxy"):
            values[(parts[0].removeprefix("org.gnome.system.proxy").lstrip("."),
                    parts[1])] = _unquote(parts[2])
    mode = values.get(("", "mode"), "none")
    if mode == "auto":
        url = values.get(("", "autoconfig-url"), "")
        return [ProxySetting("gsettings", "pac",
                             f"pac={safe_pac(url)}" if url else "wpad=auto-detect")]
    if mode != "manual":
        return []
    found = []
    for proto in ("http", "https", "socks"):
        host, port = values.get((proto, "host"), ""), values.get((proto, "port"), "0")
        if host:
            address = safe_proxy(f"{host}:{port}" if port not in ("", "0") else host)
            found.append(ProxySetting("gsettings", "manual",
                                      f"{proto}={address.split('://', 1)[1]}"))
    return found


_REG_LINE = re.compile(r"^\s+(\S.*?)\s{2,}(REG_\w+)(?:\s{2,}(.*))?$")


def parse_reg_values(output: str) -> dict[str, str]:
    """Values of the first key in ``reg query KEY`` output (subkeys are ignored)."""
    values: dict[str, str] = {}
    seen_key = False
    for line in output.splitlines():
        if line.startswith("HKEY_"):
            if seen_key:
                break
            seen_key = True
            continue
        match = _REG_LINE.match(line)
        if match:
            values[match.group(1)] = (match.group(3) or "").strip()
    return values


def parse_reg_internet_settings(output: str) -> list[ProxySetting]:
    """``reg query "HKCU\\...\\Internet Settings"`` output → settings."""
    values = parse_reg_values(output)
    found = []
    if values.get("ProxyEnable", "0x0").lower() not in ("0x0", "0") and values.get("ProxyServer"):
        for entry in values["ProxyServer"].split(";"):
            proto, sep, address = entry.strip().partition("=")
            label = proto if sep else "all"
            target = address if sep else proto
            if target:
                found.append(ProxySetting("windows_registry", "manual",
                                          f"{label}={safe_proxy(target).split('://', 1)[1]}"))
    if values.get("AutoConfigURL"):
        found.append(ProxySetting("windows_registry", "pac",
                                  f"pac={safe_pac(values['AutoConfigURL'])}"))
    return found


def parse_reg_connections(output: str) -> list[ProxySetting]:
    """``reg query ...\\Connections /v DefaultConnectionSettings``: the WPAD flag."""
    blob = parse_reg_values(output).get("DefaultConnectionSettings", "")
    try:
        flags = bytes.fromhex(blob)[8]
    except (ValueError, IndexError):
        return []
    return [ProxySetting("windows_registry", "pac", "wpad=auto-detect")] \
        if flags & WPAD_FLAG else []


def parse_scutil(output: str) -> list[ProxySetting]:
    """``scutil --proxy`` output → settings.

    Sample::

        <dictionary> {
          HTTPEnable : 1
          HTTPPort : 8080
          HTTPProxy : proxy.school.lan
          ProxyAutoConfigEnable : 1
          ProxyAutoConfigURLString : http://wpad.school.lan/proxy.pac
        }
    """
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, val = line.strip().partition(" : ")
        if sep and not val.startswith("<"):
            values[key] = val.strip()
    found = []
    for proto in ("HTTP", "HTTPS", "SOCKS"):
        if values.get(f"{proto}Enable") == "1" and values.get(f"{proto}Proxy"):
            port = values.get(f"{proto}Port", "")
            address = safe_proxy(f"{values[proto + 'Proxy']}:{port}" if port
                                 else values[proto + "Proxy"])
            found.append(ProxySetting("scutil", "manual",
                                      f"{proto.lower()}={address.split('://', 1)[1]}"))
    if values.get("ProxyAutoConfigEnable") == "1" and values.get("ProxyAutoConfigURLString"):
        found.append(ProxySetting("scutil", "pac",
                                  f"pac={safe_pac(values['ProxyAutoConfigURLString'])}"))
    if values.get("ProxyAutoDiscoveryEnable") == "1":
        found.append(ProxySetting("scutil", "pac", "wpad=auto-detect"))
    return found


def run_command(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


OS_READERS: dict[str, list[tuple[str, list[str], Callable[[str], list[ProxySetting]]]]] = {
    "linux": [("gsettings", ["gsettings", "list-recursively", "org.gnome.system.proxy"],
               parse_gsettings)],
    "win32": [("windows_registry", ["reg", "query", WIN_KEY], parse_reg_internet_settings),
              ("windows_registry", ["reg", "query", WIN_KEY + r"\Connections", "/v",
                                    "DefaultConnectionSettings"], parse_reg_connections)],
    "darwin": [("scutil", ["scutil", "--proxy"], parse_scutil)],
}


@dataclass
class Detection:
    settings: list[ProxySetting] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """Sources read successfully, in order."""
    unread: list[str] = field(default_factory=list)
    """Sources that could not be read, each with the reason."""

    @property
    def kinds(self) -> str:
        found = {s.kind for s in self.settings}
        return "+".join(k for k in KIND_ORDER if k in found) or "none"


def detect(environ: Mapping[str, str], platform: str, run: Runner = run_command) -> Detection:
    found = Detection(settings=from_environ(environ), sources=["env"])
    os_key = "linux" if platform.startswith("linux") else platform
    for source, argv, parse in OS_READERS.get(os_key, []):
        try:
            output = run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            why = "not found" if isinstance(exc, FileNotFoundError) else str(exc).strip()
            found.unread.append(f"{source} ({argv[0]}: {why})")
            continue
        found.settings.extend(parse(output))
        if source not in found.sources:
            found.sources.append(source)
    return found


def check_proxy(environ: Mapping[str, str] | None = None, platform: str | None = None,
                run: Runner = run_command) -> ProbeResult:
    """The ``proxy`` result for this machine (no target)."""
    r = ResultBuilder(NAME)
    found = detect(os.environ if environ is None else environ,
                   sys.platform if platform is None else platform, run)
    for setting in found.settings:
        r.note(f"{setting.source} {setting.detail}")
    if found.unread:
        r.note("not read: " + ", ".join(found.unread))
    r.add(text("proxy", "proxy_config:" + ",".join(found.sources), found.kinds))
    return r.ok()
