"""The figures :mod:`benchmarks.footprint` prints: goals, rows, the worker table, notes."""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.footprint_sampling import MB, SAMPLE_S, Samples, Worker

if TYPE_CHECKING:
    from benchmarks.footprint import Result

LINE_BPS = 100e6
"""The school line the bandwidth byte cap models: 100 Mbit/s."""
IDLE_GOAL_MB, PEAK_GOAL_MB, CPU_GOAL_PCT = 30.0, 80.0, 0.5
REAL_RUNS_PER_HOUR = {"passive": 60, "latency": 12, "path": 2, "bandwidth": 1,
                      "inventory": 1, "route": 1}
"""Runs per lesson hour at the default cadence (inventory and route: once a day at the
real cadence, once per run here)."""


def line_cap_bytes(seconds: float) -> int:
    return int(LINE_BPS / 8 * seconds)



@dataclass
class Row:
    measure: str
    value: float | None
    unit: str
    goal: float | None = None
    """Upper bound; None: for information."""
    ratio: float | None = None
    """value / the idle Python baseline's."""

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "info"
        return "MISS" if self.value is None or self.value > self.goal else "PASS"

    def cells(self) -> list[str]:
        return [self.measure, "-" if self.value is None else f"{self.value:.2f} {self.unit}",
                "-" if self.goal is None else f"<= {self.goal:g} {self.unit}",
                "-" if self.ratio is None else f"x{self.ratio:.1f}", self.verdict]


HEADER = ["measure", "value", "goal", "vs idle python", "verdict"]


def _ratio(value: float | None, base: float) -> float | None:
    return None if value is None or base <= 0 else value / base


def rows_of(res: Result, speedup: float) -> list[Row]:
    idle = [b / MB for b in res.samples.idle_rss]
    base_mb = res.base_rss / MB
    base_pct = 100.0 * res.base_cpu_s / res.wall_s
    hour_pct = 100.0 * res.agent_cpu_s / (res.wall_s * speedup)
    raw_pct = 100.0 * res.agent_cpu_s / res.wall_s
    peak = res.samples.cycle_peak / MB if res.samples.workers else None
    peak_pss = res.samples.cycle_peak_pss / MB if res.samples.cycle_peak_pss else None
    worker = max((w.peak_rss for w in res.samples.workers.values()), default=0) / MB or None
    median = statistics.median(idle) if idle else None
    top = max(idle) if idle else None
    return [
        Row("supervisor RSS between cycles, median", median, "MB", IDLE_GOAL_MB,
            _ratio(median, base_mb)),
        Row("supervisor RSS between cycles, max", top, "MB", IDLE_GOAL_MB, _ratio(top, base_mb)),
        Row("supervisor + worker PSS, peak of a cycle", peak_pss, "MB", PEAK_GOAL_MB,
            _ratio(peak_pss, base_mb)),
        Row("supervisor + worker RSS, peak of a cycle (shared pages twice)", peak, "MB", None,
            _ratio(peak, base_mb)),
        Row("largest worker tree RSS (peak)", worker, "MB", None, _ratio(worker, base_mb)),
        Row("agent CPU, % of one core, per hour of real cadence", hour_pct, "%", CPU_GOAL_PCT,
            _ratio(hour_pct, base_pct)),
        Row("agent CPU, % of one core, raw over the run (upper bound)", raw_pct, "%", None,
            _ratio(raw_pct, base_pct)),
        Row("agent CPU seconds in the run: supervisor itself", res.own_cpu_s, "s"),
        Row("agent CPU seconds in the run: workers", res.agent_cpu_s - res.own_cpu_s, "s"),
        Row("baseline: idle python RSS", base_mb, "MB", None, 1.0),
        Row("baseline: idle python CPU, % of one core", base_pct, "%", None, None),
        Row("reference: python + psutil + httpx RSS (lab-facts: ~26 MB)", res.ref_rss / MB,
            "MB", None, _ratio(res.ref_rss / MB, base_mb)),
    ]


def worker_table(samples: Samples) -> list[dict[str, Any]]:
    """Per set of probes a worker ran: runs, peak RSS (median, max) and CPU seconds."""
    groups: dict[str, list[Worker]] = {}
    for w in samples.workers.values():
        groups.setdefault(w.probes, []).append(w)
    return [{"probes": probes, "runs": len(ws),
             "peak_rss_mb_median": statistics.median(w.peak_rss for w in ws) / MB,
             "peak_rss_mb_max": max(w.peak_rss for w in ws) / MB,
             "cpu_s_per_run": statistics.mean(w.cpu_s for w in ws),
             "cpu_s_total": sum(w.cpu_s for w in ws)}
            for probes, ws in sorted(groups.items(), key=lambda kv: -sum(w.cpu_s for w in kv[1]))]


def idle_trend(res: Result, buckets: int = 12) -> list[float | None]:
    """Median idle supervisor RSS (MB) in each of ``buckets`` equal slices of the run."""
    slices: list[list[int]] = [[] for _ in range(buckets)]
    for at, rss in zip(res.samples.idle_at, res.samples.idle_rss, strict=True):
        slices[min(buckets - 1, int((at - res.started) / res.wall_s * buckets))].append(rss)
    return [statistics.median(s) / MB if s else None for s in slices]


def log_counts(log: str, pattern: str) -> Counter[str]:
    """Items of the comma-separated lists the agent logged after ``pattern``: the tasks
    of ``due: passive, latency`` or the results of ``report <id>: load ok, wifi skipped``."""
    return Counter(t.strip() for m in re.finditer(pattern + r"(.+)$", log, re.MULTILINE)
                   for t in m.group(1).split(","))


def print_table(header: list[str], table: list[list[str]]) -> None:
    table = [header, *table]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def notes_of(res: Result, speedup: float, bandwidth_s: float) -> list[str]:
    hours = res.wall_s * speedup / 3600
    polls = int(res.wall_s // 60) + 1
    root = "as root: the path probe's traceroute imports scapy" if os.geteuid() == 0 \
        else "not as root: the path probe's traceroute is skipped (no scapy)"
    return [
        f"Run: {res.wall_s:.0f} s of wall time at every cadence interval / {speedup:g} = "
        f"{hours:.2f} h of lesson at the real cadence (a timetable period covered the run; "
        f"the collector tagged the measurements: "
        + ", ".join(f"{k} {v}" for k, v in sorted(res.in_lesson.items())) + f"); {root}. "
        "The daily tasks (device inventory, traceroute) are made to run once in the run, so "
        "their memory peak is always measured; at the real cadence they run once a day, so "
        "the CPU figure is an upper bound by their share.",
        "Targets: latency to the collector's /speed/ping and its port, path to its URL, "
        f"bandwidth to its /speed/ endpoints capped at {line_cap_bytes(bandwidth_s):,} bytes "
        f"per direction = what a {LINE_BPS / 1e6:g} Mbit/s school line moves in "
        f"{bandwidth_s:g} s, so a bandwidth run moves (and costs the CPU of) a real run's "
        "bytes, not a loopback flood's. Loopback moves them inside the probe's warm-up, so "
        "its result is 'failed: too short'. The collector's own CPU is not counted.",
        f"CPU per hour of real cadence = agent CPU seconds (supervisor + every worker, start-up "
        f"included) / {res.wall_s * speedup:.0f} s: the compressed run does the measuring work "
        "of that much real time. Idle wake-ups do not scale this way: the control poll stays "
        f"every 60 s of wall time (about {polls} polls here, 60 in a real hour) and the "
        "supervisor's sleeps are shorter, so the raw figure (CPU / wall time of the run) is "
        "the upper bound; at --speedup 1 the two are the same.",
        f"The watchdog's CPU limit was multiplied by {speedup:g} for the run, so its back-off "
        "(judged per wall-clock hour) does not hide work the real cadence would do; "
        "busy_cpu_pct = 100, so other work on this machine does not pause the bandwidth run.",
        f"Host load average (1 min) {res.load_avg[0]:.2f} at the start, {res.load_avg[1]:.2f} "
        f"at the end, on {os.cpu_count()} cores: CPU seconds grow when other work competes "
        "for the cores and caches, so compare runs made on a quiet machine.",
        f"RSS sampled every {SAMPLE_S * 1000:.0f} ms with psutil (a peak shorter than that can "
        "be missed); 'between cycles' = samples with no worker process; a worker's RSS "
        "includes its children. The peak of a cycle is judged as PSS (proportional set "
        "size: a page shared by k processes counts 1/k in each), summed over the supervisor "
        "and the worker tree: what the agent's processes together take from the PC. The RSS "
        "sum beside it counts the pages they share (the Python binary, libraries) twice, "
        "so it is an upper bound. Per-run CPU in the worker table is the last sample before "
        "the worker exited.",
    ]


def report(res: Result, minutes: float, speedup: float, bandwidth_s: float,
           as_json: bool) -> None:
    rows = rows_of(res, speedup)
    workers = worker_table(res.samples)
    hours = res.wall_s * speedup / 3600
    tasks = log_counts(res.log, r"due: ")
    results = log_counts(res.log, r"report \S+: ")
    skips = Counter(s for w in res.samples.workers.values() for s in w.skips)
    expected = {t: n * hours for t, n in REAL_RUNS_PER_HOUR.items()}
    notes = notes_of(res, speedup, bandwidth_s)
    misses = [r for r in rows if r.verdict == "MISS"]
    if as_json:
        print(json.dumps({
            "minutes": minutes, "speedup": speedup, "wall_s": res.wall_s,
            "rows": [{"measure": r.measure, "value": r.value, "unit": r.unit, "goal": r.goal,
                      "ratio": r.ratio, "verdict": r.verdict} for r in rows],
            "workers": workers, "tasks": dict(tasks), "expected_tasks": expected,
            "statuses": dict(results), "in_lesson": dict(res.in_lesson),
            "guardrail_skips": dict(skips), "load_avg": res.load_avg,
            "idle_rss_mb_trend": idle_trend(res),
            "notes": notes}, indent=2))
        return
    print_table(HEADER, [r.cells() for r in rows])
    print()
    print_table(["worker probes", "runs", "peak RSS median", "peak RSS max", "CPU s/run",
                 "CPU s total"],
                [[w["probes"], str(w["runs"]), f"{w['peak_rss_mb_median']:.1f} MB",
                  f"{w['peak_rss_mb_max']:.1f} MB", f"{w['cpu_s_per_run']:.3f}",
                  f"{w['cpu_s_total']:.2f}"] for w in workers])
    print("\nruns by task (expected at the real cadence): " + ", ".join(
        f"{t} {tasks.get(t, 0)} ({expected[t]:.2g})" for t in REAL_RUNS_PER_HOUR))
    print("supervisor RSS between cycles, median per twelfth of the run: " + ", ".join(
        "-" if v is None else f"{v:.1f}" for v in idle_trend(res)) + " MB")
    print("probe results: " + ", ".join(
        f"{s} x{n}" for s, n in sorted(results.items())))
    if skips:
        print("paused by the guardrails: " + "; ".join(f"{s} (x{n})" for s, n in skips.items()))
    print("\n" + "\n".join(f"- {note}" for note in notes))
    for r in misses:
        got = "no sample" if r.value is None else f"{r.value:.2f} {r.unit}"
        print(f"MISS: {r.measure}: {got} > goal {r.goal:g} {r.unit}")
    if not misses:
        print("all goals met")
