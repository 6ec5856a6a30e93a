"""Sampling the agent's process tree for :mod:`benchmarks.footprint`: RSS, PSS, CPU.

The supervisor and its children are read with psutil every :data:`SAMPLE_S`; a sample with
no child is an idle one (the supervisor between cycles), the others make the peak of a
cycle (RSS sum and PSS sum) and each worker's own figures.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

MB = 1024 * 1024
SAMPLE_S = 0.05


@dataclass
class Worker:
    probes: str
    skips: list[str] = field(default_factory=list)
    """``--skip NAME=REASON`` the supervisor passed: the guardrails paused NAME."""
    peak_rss: int = 0
    cpu_s: float = 0.0


@dataclass
class Samples:
    idle_rss: list[int] = field(default_factory=list)
    idle_at: list[float] = field(default_factory=list)
    """Monotonic time of each idle sample."""
    cycle_peak: int = 0
    cycle_peak_pss: int = 0
    """The same peak as proportional set sizes (Linux; 0 where psutil cannot read them)."""
    workers: dict[int, Worker] = field(default_factory=dict)
    live_cpu_s: float = 0.0
    """CPU of the worker running at the last sample (not yet in the supervisor's times)."""


def worker_of(cmdline: list[str]) -> Worker:
    if "--probes" not in cmdline:  # a tool the supervisor started itself (the Wi-Fi probe's)
        return Worker(f"(command {Path(cmdline[0]).name})" if cmdline else "?")
    probes = cmdline[cmdline.index("--probes") + 1] or "(upload only)"
    return Worker(probes, [v for k, v in itertools.pairwise(cmdline) if k == "--skip"])


def cpu_total(times: Any) -> float:
    return float(times.user + times.system + times.children_user + times.children_system)


def sample_once(sup: psutil.Process, sup_cmd: list[str], out: Samples) -> None:
    """One sample of the supervisor and its tree (one worker at a time runs under it).

    A child forked but not yet exec'd still shows its parent's command line and memory
    (shared, not its own): it is left out, or a worker starting would count the
    supervisor twice."""
    own = sup.memory_info().rss
    tree = sup.children(recursive=True)
    found: dict[int, tuple[int, list[str], int, float]] = {}
    for proc in tree:
        try:
            with proc.oneshot():
                ppid = proc.ppid()
                cpu = cpu_total(proc.cpu_times()) if ppid == sup.pid else 0.0
                found[proc.pid] = (ppid, proc.cmdline(), proc.memory_info().rss, cpu)
        except psutil.Error:
            continue  # exited between listing and reading
    cmds = {sup.pid: sup_cmd} | {pid: f[1] for pid, f in found.items()}
    tree_rss, live, current, counted = 0, 0.0, [], []
    for pid, (ppid, cmd, rss, cpu) in found.items():
        if cmd == cmds.get(ppid):
            continue
        tree_rss += rss
        counted.append(pid)
        if ppid == sup.pid:
            worker = out.workers.setdefault(pid, Worker("?"))
            if worker.probes == "?":  # named once its command line is readable (not mid-exec)
                named = worker_of(cmd)
                worker.probes, worker.skips = named.probes, named.skips
            worker.cpu_s = live = cpu
            current.append(worker)
    out.live_cpu_s = live
    if not tree:
        out.idle_rss.append(own)
        out.idle_at.append(time.monotonic())
        return
    out.cycle_peak = max(out.cycle_peak, own + tree_rss)
    out.cycle_peak_pss = max(out.cycle_peak_pss, pss_of([sup.pid, *counted]))
    for worker in current:
        worker.peak_rss = max(worker.peak_rss, tree_rss)


def pss_of(pids: list[int]) -> int:
    """Sum of the processes' proportional set sizes: each page shared by k processes counts
    1/k in each, so the supervisor and a worker sharing the Python binary and libraries are
    not charged twice for them (0 where the OS or psutil gives no PSS)."""
    total = 0
    for pid in pids:
        try:
            total += int(getattr(psutil.Process(pid).memory_full_info(), "pss", 0))
        except psutil.Error:
            continue  # exited (or unreadable) between listing and reading
    return total


def sample_until(sup: psutil.Process, deadline: float, out: Samples) -> None:
    next_at = time.monotonic()
    sup_cmd = sup.cmdline()
    while (now := time.monotonic()) < deadline:
        try:
            sample_once(sup, sup_cmd, out)
        except psutil.NoSuchProcess as exc:
            raise RuntimeError(f"the agent (pid {sup.pid}) exited during the run") from exc
        next_at = max(next_at + SAMPLE_S, now)
        time.sleep(max(0.0, next_at - time.monotonic()))
