"""What every service definition shares: the command line, the privileges and the limits.

The systemd unit, the launchd plist and the Windows task are generated from one
:class:`AgentService`, built from the agent's config by :func:`service_of`, so they agree on
what runs and why it gets a raw-socket privilege.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePath

from agent.config import AgentConfig
from agent.install.paths import AgentPaths, pure_path

SUPERVISOR_ALLOWANCE_MB = 100
"""Memory above one worker's limit for the supervisor (≤ 30 MB idle), the spool's page
cache and a margin: the service manager's hard limit is a backstop behind the watchdog,
which kills an oversized worker first."""


@dataclass(frozen=True)
class AgentService:
    python: str
    """Absolute path of the interpreter that has classprobe installed."""
    paths: AgentPaths
    raw_socket_reasons: tuple[str, ...]
    """Why the agent needs raw sockets (CAP_NET_RAW, root or Administrator); empty: never."""
    memory_max_mb: int
    spool_dir: PurePath
    """The spool the config names (the state dir's ``spool`` unless set otherwise)."""
    packet_sockets: bool = False
    """scapy probes are enabled: on Linux they send and sniff through AF_PACKET sockets."""

    def argv(self) -> list[str]:
        return [self.python, "-m", "classprobe.cli", "agent", "run",
                "--config", str(self.paths.config_file)]

    @property
    def needs_raw_sockets(self) -> bool:
        return bool(self.raw_socket_reasons)


def raw_socket_reasons(cfg: AgentConfig) -> tuple[str, ...]:
    """The enabled probes that need a raw socket, each as the config setting and why.

    ICMP first tries an unprivileged datagram socket, which ``net.ipv4.ping_group_range``
    often forbids; the scapy probes (the monitor-mode sniffer and traceroute) always need
    raw or packet sockets."""
    reasons = []
    if cfg.icmp:
        reasons.append("icmp = true (ICMP echo uses a raw socket where unprivileged ICMP "
                       "is not allowed)")
    if cfg.monitor_interface:
        reasons.append(f"monitor_interface = {cfg.monitor_interface!r} (the scapy "
                       "monitor-mode sniffer)")
    if cfg.traceroute and cfg.path_targets:
        reasons.append("traceroute = true with path_targets (scapy sends TTL-limited probes)")
    return tuple(reasons)


def service_of(cfg: AgentConfig, paths: AgentPaths, python: str) -> AgentService:
    worker_mb = math.ceil(cfg.watchdog_max_rss_mb)
    spool = pure_path(paths.platform, cfg.spool_dir) if cfg.spool_dir else paths.spool_dir
    return AgentService(python=python, paths=paths, raw_socket_reasons=raw_socket_reasons(cfg),
                        memory_max_mb=worker_mb + SUPERVISOR_ALLOWANCE_MB, spool_dir=spool,
                        packet_sockets=bool(cfg.monitor_interface)
                        or bool(cfg.traceroute and cfg.path_targets))
