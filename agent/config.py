"""Agent configuration: a TOML file plus ``CLASSPROBE_*`` environment overrides.

The file is written by ``classprobe agent enroll`` and holds the agent's credential, so it
is saved with mode 0600 and replaced atomically. Every key is a field of
:class:`AgentConfig`; the environment variable for a key is ``CLASSPROBE_`` + the key in
upper case (``CLASSPROBE_INTERVAL_S=60``, ``CLASSPROBE_TARGETS=https://a,b:443``).

Default location: ``$CLASSPROBE_AGENT_CONFIG`` or ``~/.config/classprobe/agent.toml``; the
spool defaults to a ``spool`` directory next to the file. Example::

    collector_url = "https://collector.school.example"
    agent_id = "7f0c..."
    credential = "..."
    site = "Northfield Primary"
    room = "IT suite"
    targets = ["https://teams.microsoft.com", "meet.google.com:443"]
    interval_s = 300.0
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.durable import atomic_write

ENV_PREFIX = "CLASSPROBE_"
CONFIG_ENV = "CLASSPROBE_AGENT_CONFIG"


class ConfigError(ValueError):
    """A configuration problem; the message names the file or variable, key and value."""


@dataclass
class AgentConfig:
    collector_url: str = ""
    agent_id: str = ""
    credential: str = ""
    site: str = ""
    room: str = ""
    spool_dir: str = ""
    """Empty: ``spool`` next to the config file."""
    interval_s: float = 300.0
    """In lessons (or without a timetable) the latency probe runs about this often."""
    passive_interval_s: float = 60.0
    """Cheap passive samples (device load, NIC counters, Wi-Fi) in lessons."""
    path_interval_s: float = 1800.0
    """The path probe (TLS interception, blocking, WebSocket hold...) in lessons."""
    inventory_interval_s: float = 86400.0
    """The full device inventory (CPU, OS, browsers, screens...)."""
    idle_factor: float = 5.0
    """Outside lessons every interval is this many times longer (on a day without school:
    three times that again)."""
    jitter: float = 0.2
    """Each interval is stretched or shrunk at random by up to this fraction (0 <= j < 1),
    so a room's PCs never measure in step."""
    daily_byte_budget: int = 2_000_000_000
    """Bytes the heavy tests (bandwidth, room tests) may move per day; 0: no limit."""
    busy_cpu_pct: float = 80.0
    """Heavy tests pause while the PC's CPU is at least this busy."""
    pause_on_battery: bool = True
    """Heavy tests pause while the PC runs on battery."""
    watchdog_max_rss_mb: float = 150.0
    """A measurement worker using more memory than this is stopped (recorded as failed)."""
    watchdog_max_cpu_pct: float = 5.0
    """% of one core the whole agent may use, averaged over the last hour; above it every
    interval is stretched until it is under again."""
    targets: list[str] = field(default_factory=list)
    """URLs or host[:port]; the collector's ``/speed/ping`` is always measured as well."""
    latency_samples: int = 5
    timeout_s: float = 5.0
    ca_bundle: str = ""
    """PEM file of trusted roots for TLS to targets and collector; empty: system store."""
    icmp: bool = True
    path_targets: list[str] = field(default_factory=list)
    """Path checks (TLS interception, blocking, WebSocket hold, STUN): https/wss URLs and
    ``stun:host:port``; empty: the path probe is skipped with that reason."""
    websocket_hold_s: float = 60.0
    """How long the path probe holds a WebSocket open (Kahoot asks for 60 s)."""
    traceroute: bool = True
    traceroute_interval_s: float = 86400.0
    """``agent run`` traces the route to each path target this often, in a worker of its
    own: scapy alone is ~45 MB, which must not add to the path checks' worker."""
    bandwidth: bool = True
    bandwidth_interval_s: float = 3600.0
    """In lessons the bandwidth probe runs about this often (it loads the school network;
    the guardrails can pause it)."""
    bandwidth_seconds: float = 8.0
    bandwidth_streams: int = 4
    bandwidth_max_bytes: int = 500_000_000
    """Per direction. A fast LAN reaches it before 1 s of measuring: result 'too short'."""
    bandwidth_backend: str = "http"
    """``http`` (multi-stream HTTP, the collector's ``/speed/``) or ``speedtest``
    (speedtest-cli against its ``/speedtest/`` endpoints; needs the ``agent-extra`` extra;
    ``bandwidth_streams`` and ``bandwidth_max_bytes`` apply to ``http`` only)."""
    site_salt: str = ""
    """Key for hashing Wi-Fi SSIDs/BSSIDs (HMAC-SHA256), the same on every PC of a site so
    the collector can group PCs by access point; empty: no SSID/BSSID hash is reported."""
    wifi_interface: str = ""
    """The Wi-Fi adapter to measure (``wlan0``, ``Wi-Fi``, ``en0``); empty: all adapters."""
    wifi_fresh_scan: bool = True
    """Linux as root: run ``iw scan`` when no cached scan exists (briefly leaves channel)."""
    monitor_interface: str = ""
    """A Linux interface already in monitor mode for the scapy sniffer; empty: skipped."""
    monitor_seconds: float = 10.0
    """How long the monitor-mode sniffer listens per cycle (header fields only)."""
    spool_max_reports: int = 2000
    spool_max_bytes: int = 50_000_000
    upload_batch: int = 20
    upload_interval_s: float = 300.0
    """``agent run``: the minute-by-minute passive samples are uploaded together at most
    this often (starting an HTTPS client every minute costs more CPU than measuring);
    every other run uploads at once."""
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 600.0

    @property
    def enrolled(self) -> bool:
        return bool(self.collector_url and self.agent_id and self.credential)


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(AgentConfig)}

_POSITIVE = {"interval_s", "websocket_hold_s", "latency_samples", "timeout_s", "bandwidth_seconds",
             "bandwidth_streams", "bandwidth_max_bytes", "spool_max_reports",
             "spool_max_bytes", "upload_batch", "backoff_base_s", "backoff_cap_s",
             "monitor_seconds", "passive_interval_s", "path_interval_s",
             "bandwidth_interval_s", "inventory_interval_s", "idle_factor",
             "watchdog_max_rss_mb", "upload_interval_s", "traceroute_interval_s"}
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "jitter": (lambda v: 0 <= v < 1, "a fraction from 0 up to (not including) 1"),
    "daily_byte_budget": (lambda v: v >= 0, "0 (no limit) or a positive number of bytes"),
    "busy_cpu_pct": (lambda v: 0 < v <= 100, "a percentage above 0, at most 100"),
    "watchdog_max_cpu_pct": (lambda v: 0 < v <= 100, "a percentage above 0, at most 100"),
}
_CHOICES: dict[str, tuple[str, ...]] = {"bandwidth_backend": ("http", "speedtest")}


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CLASSPROBE_AGENT_CONFIG``, else the per-user config from platformdirs
    (``~/.config/classprobe/agent.toml`` on Linux, ``%LOCALAPPDATA%\\classprobe\\agent.toml``
    on Windows, ``~/Library/Application Support/classprobe/agent.toml`` on macOS). A service
    installed by ``classprobe agent install`` passes its own config with ``--config``."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    from agent.install.paths import default_config_file

    return default_config_file()


def spool_path(cfg: AgentConfig, config_path: Path) -> Path:
    return Path(cfg.spool_dir).expanduser() if cfg.spool_dir else config_path.parent / "spool"


def _coerce(name: str, raw: Any, where: str, from_env: bool) -> Any:
    """Check (file) or convert (environment string) one value to the field's type."""
    kind = FIELDS[name].type
    bad = f"{where}: key {name!r} has bad value {raw!r}"
    if kind == "bool":
        if from_env:
            low = str(raw).strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{bad}: expected true or false")
        if not isinstance(raw, bool):
            raise ConfigError(f"{bad}: expected true or false")
        return raw
    if kind in {"int", "float"}:
        value: Any = raw
        if from_env:
            try:
                value = int(raw) if kind == "int" else float(raw)
            except ValueError as exc:
                raise ConfigError(f"{bad}: expected a number") from exc
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind == "int" and not isinstance(value, int)):
            raise ConfigError(f"{bad}: expected {'an integer' if kind == 'int' else 'a number'}")
        if not math.isfinite(value) or (name in _POSITIVE and value <= 0):
            raise ConfigError(f"{bad}: expected a positive number")
        if name in _RANGES and not _RANGES[name][0](value):
            raise ConfigError(f"{bad}: expected {_RANGES[name][1]}")
        return float(value) if kind == "float" else value
    if kind == "list[str]":
        if from_env:
            return [part.strip() for part in str(raw).split(",") if part.strip()]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{bad}: expected a list of strings")
        return list(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{bad}: expected a string")
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise ConfigError(f"{bad}: expected one of {', '.join(_CHOICES[name])}")
    return raw


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read ``path`` (missing file: defaults) and apply ``CLASSPROBE_<KEY>`` overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        for key, raw in data.items():
            if key not in FIELDS:
                raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(FIELDS)})")
            values[key] = _coerce(key, raw, str(path), from_env=False)
    for name in FIELDS:
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _coerce(name, env[var], f"environment {var}", from_env=True)
    cfg = AgentConfig(**values)
    if cfg.backoff_cap_s < cfg.backoff_base_s:
        raise ConfigError(f"{path}: backoff_cap_s {cfg.backoff_cap_s} is below "
                          f"backoff_base_s {cfg.backoff_base_s}")
    return cfg


def _toml_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot save key {name!r}: value {value!r} is not finite")
        return repr(value)
    if isinstance(value, str):
        # A JSON string without ASCII escaping is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(name, v) for v in value) + "]"
    raise ConfigError(f"cannot save key {name!r}: unsupported value {value!r}")


def dumps(cfg: AgentConfig) -> str:
    lines = ["# classprobe agent configuration (written by `classprobe agent enroll`).",
             "# Holds the agent credential: keep it private (mode 0600)."]
    lines += [f"{name} = {_toml_value(name, getattr(cfg, name))}" for name in FIELDS]
    return "\n".join(lines) + "\n"


def save_config(path: Path, cfg: AgentConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, dumps(cfg).encode("utf-8"), mode=0o600)
