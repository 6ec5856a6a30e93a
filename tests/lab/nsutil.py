"""Low-level network-namespace helpers: availability, setns, naming, stale cleanup.

Every namespace the lab creates is called ``cpl<id>-<role>`` (``cpl3a9f-cls``). The
owner of lab ``<id>`` is recorded in ``/run/classprobe-lab/<id>.json`` (its pid), so a
later run can tell a live lab of a parallel run from one left behind by a killed run
and remove only the latter (``cleanup_stale``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

PREFIX = "cpl"
STATE_DIR = Path("/run/classprobe-lab")
NETNS_RUN_DIR = Path("/var/run/netns")
ETC_NETNS = Path("/etc/netns")
CLONE_NEWNET = 0x40000000
_NAME_RE = re.compile(rf"^{PREFIX}([0-9a-f]{{4,12}})-[a-z0-9]+$")

_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """A lab command failed; the message names the command and its stderr."""


def ip(*args: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; on failure raise LabError naming the command and stderr."""
    return run_cmd(["ip", *args], check=check, timeout=timeout)


def run_cmd(argv: list[str], *, check: bool = True,
            timeout: float = 15) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise LabError(f"{' '.join(argv)!r} exited {out.returncode}: {out.stderr.strip()}")
    return out


def setns(netns: str) -> None:
    """Move the calling *thread* into network namespace ``netns`` (by ``ip netns`` name)."""
    fd = os.open(NETNS_RUN_DIR / netns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns!r}): {os.strerror(err)}")
    finally:
        os.close(fd)


def set_timer_slack_ns(ns: int) -> None:
    """Ask the kernel to wake this thread within ``ns`` of its timers (default 50 us)."""
    pr_set_timerslack = 29
    _libc.prctl(pr_set_timerslack, ctypes.c_ulong(ns), 0, 0, 0)


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None. Creates and deletes one probe namespace."""
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, tc, /dev/net/tun)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the network lab needs {tool!r} (Debian package iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "the network lab needs /dev/net/tun (CONFIG_TUN)"
    probe = f"{PREFIX}{os.getpid() % 0xFFFF:04x}-probe"
    out = ip("netns", "add", probe, check=False)
    if out.returncode != 0:
        return f"'ip netns add' does not work here: {out.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def lab_namespaces() -> list[str]:
    """Names of all existing ``cpl*`` network namespaces (any run)."""
    out = ip("netns", "list", check=False)
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    return [n for n in names if _NAME_RE.match(n)]


def lab_id_of(netns: str) -> str | None:
    m = _NAME_RE.match(netns)
    return m.group(1) if m else None


def write_owner(lab_id: str, namespaces: list[str]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "created": time.time(), "namespaces": namespaces}
    (STATE_DIR / f"{lab_id}.json").write_text(json.dumps(record))


def owner_alive(lab_id: str) -> bool:
    path = STATE_DIR / f"{lab_id}.json"
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_netns_processes(netns: str) -> None:
    """SIGKILL every process still inside ``netns`` (servers, wires of a dead run)."""
    out = ip("netns", "pids", netns, check=False)
    for token in out.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(token), signal.SIGKILL)


def delete_netns(netns: str) -> None:
    """Kill what runs inside, delete the namespace and its /etc/netns directory."""
    kill_netns_processes(netns)
    ip("netns", "del", netns, check=False)
    shutil.rmtree(ETC_NETNS / netns, ignore_errors=True)


def forget(lab_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (STATE_DIR / f"{lab_id}.json").unlink()


def cleanup_stale() -> list[str]:
    """Delete ``cpl*`` namespaces whose owning process is gone; return their names.

    Labs of live processes (parallel runs) are left alone.
    """
    removed = []
    for netns in lab_namespaces():
        lab_id = lab_id_of(netns)
        if lab_id is None or owner_alive(lab_id):
            continue
        delete_netns(netns)
        removed.append(netns)
    live = {lab_id_of(n) for n in lab_namespaces()}
    if STATE_DIR.is_dir():
        for record in STATE_DIR.glob("*.json"):
            if record.stem not in live and not owner_alive(record.stem):
                forget(record.stem)
    if ETC_NETNS.is_dir():
        existing = set(lab_namespaces())
        for d in ETC_NETNS.iterdir():
            if _NAME_RE.match(d.name) and d.name not in existing:
                shutil.rmtree(d, ignore_errors=True)
    return removed


def congestion_control_allowed(name: str) -> bool:
    """Whether a lab namespace may select TCP congestion control ``name``."""
    allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
    return name in allowed


def check_congestion_control(name: str) -> None:
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    if name not in available:
        raise LabError(f"congestion control {name!r} is not in this kernel ({' '.join(available)})")
    if not congestion_control_allowed(name):
        raise LabError(
            f"congestion control {name!r} is available but not in the host's "
            "net.ipv4.tcp_allowed_congestion_control, and a non-initial network namespace may "
            "only choose allowed ones; on the host (CI setup) run: sysctl -w "
            f"net.ipv4.tcp_allowed_congestion_control=\"reno bbr {name}\" (or use 'reno')")
