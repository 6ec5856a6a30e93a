"""Where the load benchmark's CPU went: the generator, the collector's processes, the
database server's processes and the whole machine, as cores busy on average."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass
class Cpu:
    """Cores busy on average during the run (1.0 = one core all the time)."""

    generator: float = 0.0
    collector: float = 0.0
    database: float = 0.0
    """The PostgreSQL server's processes (SQLite runs inside the collector)."""
    machine: float = 0.0
    """Every process on the machine, other jobs included."""
    load_average: float = 0.0
    """The 1-minute load average at the end of the run."""

    def ms_per_report(self, reports_s: float) -> float:
        """CPU milliseconds the collector and its database spent per stored report."""
        return (self.collector + self.database) / reports_s * 1000 if reports_s else 0.0


def _tree_times(pid: int | None) -> dict[int, float]:
    """CPU seconds used so far by ``pid`` and each of its descendants, by process id."""
    if pid is None:
        return {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue  # exited between listing and reading
        out[proc.pid] = times.user + times.system
    return out


class TreeCpu:
    """CPU seconds a process tree uses from now on, counting the processes that start and
    exit meanwhile: a PostgreSQL backend lives as long as its connection, and one opened
    and closed during the run took its CPU time with it when the tree was read only at
    the start and the end (the database's share then read ~0.15 cores where the machine
    showed ~0.8). Sampled every :data:`SAMPLE_S`: a process loses at most its last
    interval, and one that lives less than an interval is missed."""

    SAMPLE_S = 0.25

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = _tree_times(pid)
        self.last = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.SAMPLE_S):
            self.last.update(_tree_times(self.pid))

    def used_s(self) -> float:
        """Stop sampling; the CPU seconds used since the meter started."""
        self._stop.set()
        self._thread.join()
        self.last.update(_tree_times(self.pid))
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times)) - times.idle - getattr(times, "iowait", 0.0)


def cpu_meter(collector_pid: int, database_pid: int | None) -> Callable[[], Cpu]:
    """Start measuring; the returned function gives the cores busy since then."""
    collector, database = TreeCpu(collector_pid), TreeCpu(database_pid)
    first = (time.monotonic(), time.process_time(), _machine_busy_s())

    def stop() -> Cpu:
        wall = time.monotonic() - first[0]
        gen = (time.process_time() - first[1]) / wall
        coll, db = collector.used_s() / wall, database.used_s() / wall
        machine = (_machine_busy_s() - first[2]) / wall
        return Cpu(gen, coll, db, machine, os.getloadavg()[0])
    return stop
