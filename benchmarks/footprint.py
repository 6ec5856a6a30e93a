"""The agent's footprint over a simulated lesson hour: RSS and CPU against idle Python.

    .venv/bin/python -m benchmarks.footprint [--minutes 5] [--speedup 12] [--json]
    .venv/bin/python -m benchmarks.footprint --speedup 1 --minutes 60     # a real hour

A real collector on 127.0.0.1 (uvicorn, temporary SQLite), a site whose timetable has one
period covering the run, an enrolled agent whose targets are all the collector, and the
real ``classprobe agent run`` with every cadence interval divided by ``--speedup`` K:
M minutes of wall time do the work of M × K minutes at the real cadence. psutil samples
the supervisor and its workers every 50 ms; an idle ``python -c "import time; ..."``
(baseline) and a ``python -c "import psutil, httpx; ..."`` (reference) run alongside.
The printed notes say what each figure means. A benchmark reports, it does not judge:
the exit code is 0 even when a goal is missed (1 only if the run itself broke).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import AgentConfig, load_config, save_config  # noqa: E402
from tests.e2e.conftest import ROOT, Collector, cli  # noqa: E402

MB = 1024 * 1024
SAMPLE_S = 0.05
LINE_BPS = 100e6
"""The school line the bandwidth byte cap models: 100 Mbit/s."""
IDLE_GOAL_MB, PEAK_GOAL_MB, CPU_GOAL_PCT = 30.0, 80.0, 0.5
CADENCE_KEYS = ("passive_interval_s", "interval_s", "path_interval_s", "bandwidth_interval_s",
                "inventory_interval_s")
REAL_RUNS_PER_HOUR = {"passive": 60, "latency": 12, "path": 2, "bandwidth": 1,
                      "inventory": 1 / 24}
"""Runs per lesson hour at the default cadence (inventory: once a day)."""
LOCAL_HOUR = 8
"""The timetable's zone is chosen so that the run starts around 08:00 local time: a period
of up to 15 hours then never crosses midnight, whatever the time of day in UTC."""


# -- setup ------------------------------------------------------------------------------------
def lesson_timetable(now: datetime, minutes: float) -> str:
    """A timetable (TOML) with one period, every day, covering ``now`` .. ``now + minutes``."""
    offset = (LOCAL_HOUR - now.astimezone(UTC).hour + 12) % 24 - 12  # local = UTC + offset
    zone = "Etc/GMT" + (f"{-offset:+d}" if offset else "")  # Etc/GMT-3 is UTC+3
    local = now.astimezone(UTC) + timedelta(hours=offset)
    start = local.replace(second=0, microsecond=0) - timedelta(minutes=2)
    end = min(start + timedelta(minutes=minutes + 10),
              start.replace(hour=23, minute=59))
    days = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
    return (f'timezone = "{zone}"\nweekdays = {days}\n\n[[periods]]\nname = "Benchmark"\n'
            f'start = "{start:%H:%M}"\nend = "{end:%H:%M}"\n')


def enrol_agent(collector: Collector, work: Path, minutes: float, speedup: float) -> Path:
    """Site, timetable, enrolled agent config with the compressed cadence; the config path."""
    token = collector.create_site("footprint")
    tt = work / "timetable.toml"
    tt.write_text(lesson_timetable(datetime.now(UTC), minutes), encoding="utf-8")
    cli("collector", "timetable", "set", "--site", "footprint", str(tt), "--db", collector.db)
    config = work / "agent" / "agent.toml"
    cli("agent", "enroll", "--collector", collector.url, "--token", token, "--room",
        "Room 12", "--config", str(config))
    cfg = load_config(config, environ={})
    cfg.targets = [f"{collector.url}/speed/ping", f"127.0.0.1:{collector.port}"]
    cfg.path_targets = [f"{collector.url}/"]
    cfg.bandwidth_max_bytes = line_cap_bytes(cfg.bandwidth_seconds)
    for key in CADENCE_KEYS:
        setattr(cfg, key, getattr(cfg, key) / speedup)
    # the watchdog judges CPU per wall-clock hour: K times the work per hour is expected
    cfg.watchdog_max_cpu_pct = min(100.0, cfg.watchdog_max_cpu_pct * speedup)
    cfg.busy_cpu_pct = 100.0  # a busy shared test machine must not pause the bandwidth run
    save_config(config, cfg)
    return config


def line_cap_bytes(seconds: float) -> int:
    return int(LINE_BPS / 8 * seconds)


# -- sampling ---------------------------------------------------------------------------------
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
    workers: dict[int, Worker] = field(default_factory=dict)
    live_cpu_s: float = 0.0
    """CPU of the worker running at the last sample (not yet in the supervisor's times)."""


def worker_of(cmdline: list[str]) -> Worker:
    probes = cmdline[cmdline.index("--probes") + 1] if "--probes" in cmdline else "?"
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
    tree_rss, live, current = 0, 0.0, []
    for pid, (ppid, cmd, rss, cpu) in found.items():
        if cmd == cmds.get(ppid):
            continue
        tree_rss += rss
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
    for worker in current:
        worker.peak_rss = max(worker.peak_rss, tree_rss)


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


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Result:
    wall_s: float
    samples: Samples
    agent_cpu_s: float
    own_cpu_s: float
    """The supervisor's own CPU (no workers)."""
    started: float
    base_rss: int
    base_cpu_s: float
    ref_rss: int
    log: str
    in_lesson: Counter[str]
    load_avg: tuple[float, float]
    """The host's 1-minute load average at the start and at the end."""


def sleeper(code: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"{code}import time; time.sleep({seconds})"],
                            start_new_session=True)


def stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM (the agent finishes its run), then SIGKILL to the process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def lesson_counts(db_file: Path) -> Counter[str]:
    """How the collector tagged the stored measurements: in lesson or not."""
    try:
        with sqlite3.connect(db_file) as db:
            rows = db.execute("SELECT in_lesson, COUNT(*) FROM measurement "
                              "GROUP BY in_lesson").fetchall()
    except sqlite3.Error as exc:
        return Counter({f"unknown ({exc})": 0})
    names = {1: "in lesson", 0: "outside lessons", None: "no timetable"}
    return Counter({names.get(flag, str(flag)): n for flag, n in rows})


def run(minutes: float, speedup: float) -> Result:
    wall_s = minutes * 60.0
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        work = Path(tmp)
        collector = Collector(data_dir=work / "collector")
        collector.data_dir.mkdir()
        collector.start()
        load_start = os.getloadavg()[0]
        try:
            config = enrol_agent(collector, work, minutes, speedup)
            life = wall_s + 600
            base = sleeper("", life)
            ref = sleeper("import psutil, httpx; ", life)
            log_path = work / "agent.log"
            with log_path.open("wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "classprobe.cli", "agent", "run", "--config",
                     str(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
                started = time.monotonic()
                samples = Samples()
                try:
                    sup = psutil.Process(agent.pid)
                    try:
                        sample_until(sup, started + wall_s, samples)
                    except RuntimeError as exc:
                        log.flush()
                        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                        raise RuntimeError(f"{exc}; the end of its log:\n{tail}") from exc
                    times = sup.cpu_times()
                    agent_cpu = cpu_total(times) + samples.live_cpu_s
                    elapsed = time.monotonic() - started
                    base_rss = psutil.Process(base.pid).memory_info().rss
                    base_cpu = cpu_total(psutil.Process(base.pid).cpu_times())
                    ref_rss = psutil.Process(ref.pid).memory_info().rss
                finally:
                    stop(agent, 30.0)
                    stop(base, 5.0)
                    stop(ref, 5.0)
            return Result(elapsed, samples, agent_cpu, times.user + times.system, started,
                          base_rss, base_cpu,
                          ref_rss, log_path.read_text(encoding="utf-8", errors="replace"),
                          lesson_counts(collector.data_dir / "classprobe.db"),
                          (load_start, os.getloadavg()[0]))
        finally:
            collector.stop()


# -- the report -------------------------------------------------------------------------------
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
    worker = max((w.peak_rss for w in res.samples.workers.values()), default=0) / MB or None
    median = statistics.median(idle) if idle else None
    top = max(idle) if idle else None
    return [
        Row("supervisor RSS between cycles, median", median, "MB", IDLE_GOAL_MB,
            _ratio(median, base_mb)),
        Row("supervisor RSS between cycles, max", top, "MB", IDLE_GOAL_MB, _ratio(top, base_mb)),
        Row("supervisor + worker RSS, peak of a cycle", peak, "MB", PEAK_GOAL_MB,
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
        + ", ".join(f"{k} {v}" for k, v in sorted(res.in_lesson.items())) + f"); {root}.",
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
        "includes its children; supervisor + worker is a sum, so pages they share (the "
        "Python binary, libraries) count twice. Per-run CPU in the worker table is the last "
        "sample before the worker exited.",
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock minutes (default 5)")
    p.add_argument("--speedup", type=float, default=12.0,
                   help="divide every cadence interval by this (default 12: an hour in 5 min)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 600 or not math.isfinite(args.minutes):
        p.error(f"--minutes {args.minutes:g}: expected more than 0, at most 600")
    if not 1 <= args.speedup <= 3600 or not math.isfinite(args.speedup):
        p.error(f"--speedup {args.speedup:g}: expected 1 to 3600")
    try:
        res = run(args.minutes, args.speedup)
    except RuntimeError as exc:
        print(f"footprint: {exc}", file=sys.stderr)
        return 1
    report(res, args.minutes, args.speedup, AgentConfig().bandwidth_seconds, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
