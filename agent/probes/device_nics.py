"""Network interfaces: wired or wireless, link speed, and the traffic they carry.

One result per interface that is up and not loopback (``probe`` ``nic``, ``target`` the
interface name): ``nic_wireless`` (flag), ``nic_link_mbps`` (the speed the OS reports; 0
means unknown and is not reported), and ``nic_rx_mbps`` / ``nic_tx_mbps``: the byte
counters' difference over a short interval, i.e. what the PC is really using during the
lesson.

Which interfaces are wireless: Linux ``/sys/class/net/IF/wireless`` or ``phy80211``;
Windows the names ``netsh wlan show interfaces`` lists; macOS the devices whose hardware
port ``networksetup -listallhardwareports`` calls Wi-Fi. Linux interfaces without a
``device`` link (bridges, VPN tunnels, veth) are marked virtual in the method.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.probes.device_cmd import CommandError, Runner


@dataclass(frozen=True)
class NicStat:
    """What ``psutil.net_if_stats()`` says about one interface."""

    isup: bool
    speed_mbps: int
    loopback: bool


@dataclass(frozen=True)
class Counters:
    """``psutil.net_io_counters(pernic=True)[name]`` bytes."""

    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class Rate:
    rx_mbps: float | None
    tx_mbps: float | None
    note: str | None = None


def nic_rate(before: Counters, after: Counters, seconds: float) -> Rate:
    """Mbps from two counter samples ``seconds`` apart; a counter that went backwards
    (wrapped, or the interface was reset) gives no rate, with a note."""
    if seconds <= 0:
        return Rate(None, None, f"sample interval {seconds:g} s is not positive")
    drx, dtx = after.rx_bytes - before.rx_bytes, after.tx_bytes - before.tx_bytes
    if drx < 0 or dtx < 0:
        return Rate(None, None, "byte counters went backwards (reset or wrapped) during "
                    "the sample")
    return Rate(round(drx * 8 / seconds / 1e6, 3), round(dtx * 8 / seconds / 1e6, 3))


def is_loopback(name: str, flags: str) -> bool:
    return "loopback" in flags.split(",") or name == "lo" or name.lower().startswith(
        "loopback")


def linux_wireless(sys_root: Path, name: str) -> bool:
    net = sys_root / "class" / "net" / name
    return (net / "wireless").exists() or (net / "phy80211").exists()


def linux_virtual(sys_root: Path, name: str) -> bool:
    return not (sys_root / "class" / "net" / name / "device").exists()


def parse_networksetup_ports(text: str) -> dict[str, str]:
    """``networksetup -listallhardwareports`` as {device: hardware port}::

        Hardware Port: Wi-Fi
        Device: en0
        Ethernet Address: aa:bb:cc:dd:ee:ff
    """
    ports: dict[str, str] = {}
    port = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() == "Hardware Port":
            port = val.strip()
        elif key.strip() == "Device" and port:
            ports[val.strip()] = port
    return ports


def macos_wireless_devices(runner: Runner) -> tuple[set[str], str | None]:
    try:
        out = runner(["networksetup", "-listallhardwareports"])
    except CommandError as exc:
        return set(), str(exc)
    ports = parse_networksetup_ports(out.stdout)
    return {dev for dev, port in ports.items()
            if re.search(r"wi-?fi|airport", port, re.IGNORECASE)}, None


@dataclass(frozen=True)
class NicInfo:
    name: str
    wireless: bool | None
    virtual: bool
    speed_mbps: int
    rate: Rate | None


def describe_nics(stats: Mapping[str, NicStat], before: Mapping[str, Counters],
                  after: Mapping[str, Counters], seconds: float,
                  wireless: set[str] | None, virtual: set[str]) -> list[NicInfo]:
    """NicInfo for every interface that is up and not loopback, in name order.

    ``wireless`` None means the platform could not say which are wireless.
    """
    infos: list[NicInfo] = []
    for name in sorted(stats):
        st = stats[name]
        if not st.isup or st.loopback:
            continue
        rate = (nic_rate(before[name], after[name], seconds)
                if name in before and name in after else None)
        infos.append(NicInfo(name, None if wireless is None else name in wireless,
                             name in virtual, st.speed_mbps, rate))
    return infos


StatsFn = Callable[[], Mapping[str, NicStat]]
CountersFn = Callable[[], Mapping[str, Counters]]


def psutil_nic_stats() -> dict[str, NicStat]:
    """Each interface's up flag, link speed and loopback-ness, from psutil."""
    import psutil

    return {name: NicStat(s.isup, int(s.speed or 0), is_loopback(name, getattr(s, "flags", "")))
            for name, s in psutil.net_if_stats().items()}


def psutil_nic_counters() -> dict[str, Counters]:
    """Each interface's byte counters (received, sent), from psutil."""
    import psutil

    return {name: Counters(c.bytes_recv, c.bytes_sent)
            for name, c in psutil.net_io_counters(pernic=True).items()}
