"""The supervisor's watchdog (osquery style): limits on workers and on the agent's CPU.

- Memory and time: :func:`run_watched` runs one worker, samples the resident memory of its
  process tree with psutil, and kills it when it goes over ``watchdog_max_rss_mb`` or
  over its time limit (:func:`time_limit`). The caller records the kill as a ``failed``
  result, so the collector sees why that run has no figures.
- CPU: :class:`CpuWindow` keeps the agent's CPU seconds (supervisor + finished workers)
  over the last hour; while their average is above ``watchdog_max_cpu_pct`` of one core,
  :func:`stretch_factor` says 2 and the supervisor stretches every interval that much
  (:meth:`agent.schedule.Cadence.scaled`) until the average is under the limit again.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.config import AgentConfig
from agent.wire import Job

log = logging.getLogger(__name__)

BASE_LIMIT_S = 120.0
CPU_WINDOW_S = 3600.0
MIN_CPU_SPAN_S = 600.0
"""Do not judge the CPU average on less than this: start-up alone would look expensive."""
BACKOFF_FACTOR = 2.0
STOP_GRACE_S = 10.0
"""How long a running worker may finish after the agent is asked to stop."""
MB = 1024 * 1024


def time_limit(cfg: AgentConfig, probes: Sequence[str], job: Job | None,
               lead_s: float = 0.0) -> float:
    """Seconds a worker may run: a base budget plus what its probes are known to need."""
    limit = BASE_LIMIT_S + max(0.0, lead_s)
    if "path" in probes:
        limit += cfg.websocket_hold_s
    if "wifi" in probes and cfg.monitor_interface:
        limit += cfg.monitor_seconds
    if "bandwidth" in probes:
        limit += 2 * cfg.bandwidth_seconds
    if job is not None and job.kind == "room_test":
        limit += len(job.directions) * (job.duration_s + 2.0 * cfg.timeout_s + 5.0)
    return limit


def rss_message(rss_bytes: int, max_mb: float) -> str:
    return f"watchdog: worker used {rss_bytes / MB:.0f} MB > {max_mb:g} MB, killed"


def time_message(limit_s: float) -> str:
    return f"watchdog: worker still running after its {limit_s:g} s limit, killed"


STOP_MESSAGE = "the agent was asked to stop while this run was in progress; run ended"


@dataclass
class Watched:
    returncode: int
    stdout: str
    stderr: str
    killed: str | None = None
    """Why the watchdog ended the worker (None: it exited by itself)."""
    peak_rss: int = 0


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (0 once it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue  # exited between listing and reading
    return total


def run_watched(cmd: Sequence[str], *, limit_s: float, max_rss_mb: float,
                stopped: Callable[[], bool], sample_s: float = 0.2,
                clock: Callable[[], float] = time.monotonic,
                rss: Callable[[int], int] = tree_rss) -> Watched:
    """Run ``cmd`` to the end, or kill it over the memory or time limit or on a stop."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    started = clock()
    stop_seen: float | None = None
    killed: str | None = None
    peak = 0
    while True:
        try:
            out, err = proc.communicate(timeout=sample_s)
            break
        except subprocess.TimeoutExpired:
            pass  # still running: check the limits (no output is lost by retrying)
        now = clock()
        used = rss(proc.pid)
        peak = max(peak, used)
        if used > max_rss_mb * MB:
            killed = rss_message(used, max_rss_mb)
        elif now - started > limit_s:
            killed = time_message(limit_s)
        elif stopped():
            stop_seen = now if stop_seen is None else stop_seen
            if now - stop_seen > STOP_GRACE_S:
                killed = STOP_MESSAGE
        if killed:
            log.warning("%s (pid %d)", killed, proc.pid)
            proc.kill()
            out, err = proc.communicate()
            break
    return Watched(proc.returncode, out or "", err or "", killed, peak)


def agent_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (waited-for) children."""
    import psutil

    t = psutil.Process().cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


class CpuWindow:
    """CPU seconds sampled over time; the average use over the last ``window_s``."""

    def __init__(self, window_s: float = CPU_WINDOW_S) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, cpu_s: float) -> None:
        self.samples.append((now, cpu_s))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()  # keep one sample at or before the window's start

    def span(self) -> float:
        return self.samples[-1][0] - self.samples[0][0] if self.samples else 0.0

    def percent(self) -> float | None:
        """Average % of one core between the oldest and newest sample (None: no span)."""
        span = self.span()
        if span <= 0:
            return None
        return 100.0 * (self.samples[-1][1] - self.samples[0][1]) / span


def stretch_factor(cpu_pct: float | None, limit_pct: float, span_s: float,
                   min_span_s: float = MIN_CPU_SPAN_S) -> float:
    """How much to stretch every interval: 2 while the average is over the limit, else 1.

    Nothing is judged on a span under ``min_span_s`` (the agent's start-up would dominate)
    or with no limit (``limit_pct <= 0``)."""
    if cpu_pct is None or limit_pct <= 0 or span_s < min_span_s:
        return 1.0
    return BACKOFF_FACTOR if cpu_pct > limit_pct else 1.0
