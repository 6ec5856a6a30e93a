"""The agent's footprint over a simulated lesson hour: RSS, PSS and CPU against idle Python.

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
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import AgentConfig, load_config, save_config  # noqa: E402
from benchmarks.footprint_report import line_cap_bytes, report  # noqa: E402
from benchmarks.footprint_sampling import Samples, cpu_total, sample_until  # noqa: E402
from tests.e2e.conftest import ROOT, Collector, cli  # noqa: E402

CADENCE_KEYS = ("passive_interval_s", "interval_s", "path_interval_s", "bandwidth_interval_s")
DAILY_KEYS = ("inventory_interval_s", "traceroute_interval_s")
"""The daily tasks (device inventory; traceroute, which imports scapy) run once in every
benchmark run, as if hourly: their memory peak is measured every time, and the CPU figure
is an upper bound by their share (23 runs a day too many)."""
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
    for key in DAILY_KEYS:  # first run within the run (schedule.FIRST_RUN_WITHIN_S caps less)
        setattr(cfg, key, minutes * 60.0)
    # the watchdog judges CPU per wall-clock hour: K times the work per hour is expected
    cfg.watchdog_max_cpu_pct = min(100.0, cfg.watchdog_max_cpu_pct * speedup)
    cfg.busy_cpu_pct = 100.0  # a busy shared test machine must not pause the bandwidth run
    save_config(config, cfg)
    return config


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
