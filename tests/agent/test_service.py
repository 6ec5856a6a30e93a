"""The supervisor (``agent run``): planning, jobs, guardrails, watchdog, config reload.

Most tests drive :class:`agent.service.Supervisor` in this process with a fake clock and a
fake worker script (it records its arguments and prints a summary); the last ones run the
real ``agent run`` as a subprocess with real workers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent import watchdog
from agent.config import load_config
from agent.control import PollResult
from agent.guardrails import ByteBudget, GuardInputs
from agent.schedule import cadence_of
from agent.service import JOB_LEAD_S, Supervisor
from agent.spool import Spool
from agent.state import load_state, state_path, write_flag_burst
from agent.uploader import Backoff
from agent.worker import salt_from_state
from tests.agent.standin import SITE_SALT, StandInServer, write_config
from tests.agent.supervisor_fakes import (
    MONDAY_0900,
    QUIET,
    ROOT,
    FakeTime,
    calls,
    control_with,
    option,
    quick_passive,
    sense_with,
    supervisor,
)


def test_a_paused_heavy_task_becomes_a_skip_with_the_reason(tmp_path: Path, fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **{**QUIET,
                                                             "bandwidth_interval_s": 10.0})
    t = FakeTime()
    sup = supervisor(config, fake_worker, t, sense=sense_with(True, 43.0))
    assert sup.run() == 1
    [argv] = calls(tmp_path)
    assert option(argv, "--probes") == "bandwidth"
    assert option(argv, "--trigger") == "scheduled"
    assert option(argv, "--skip") == "bandwidth=paused: on battery (43 %)"
    assert "--upload" in argv and "--clock-offset" not in argv
    assert 0 < t.now - MONDAY_0900 <= 10.0  # the first run falls within the first interval


def test_bytes_count_against_the_budget_and_a_failed_upload_backs_off(
        tmp_path: Path, fake_worker: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_BYTES", "1234")
    monkeypatch.setenv("FAKE_UPLOAD_OK", "0")
    config = write_config(tmp_path, "http://127.0.0.1:9", **{**QUIET,
                                                             "bandwidth_interval_s": 10.0})
    t = FakeTime()
    sup = supervisor(config, fake_worker, t, max_runs=2)
    sup.backoff = Backoff(100.0, 1000.0, uniform=lambda lo, hi: hi)
    assert sup.run() == 2
    first, second = calls(tmp_path)
    assert "--upload" in first and "--upload" not in second  # 100 s backoff after a failure
    today = datetime.fromtimestamp(time.time()).date()
    assert ByteBudget(tmp_path / "spool" / "byte-budget.json").used_today(today) == 2468


def test_the_collectors_retry_after_outlasts_a_shorter_backoff(
        tmp_path: Path, fake_worker: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_UPLOAD_OK", "0")
    monkeypatch.setenv("FAKE_RETRY_AFTER", "500")  # a 429/503 asked for 500 s
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          **{**QUIET, "bandwidth_interval_s": 10.0, "jitter": 0.0})
    t = FakeTime()
    sup = supervisor(config, fake_worker, t)
    sup.backoff = Backoff(100.0, 1000.0, uniform=lambda lo, hi: hi)  # 100 s on its own
    assert sup.run() == 1 and "--upload" in calls(tmp_path)[0]
    assert sup.upload_after - sup.mono() == pytest.approx(500.0, abs=0.5)
    monkeypatch.setenv("FAKE_RETRY_AFTER", "30")  # shorter than the backoff: backoff wins
    sup.upload_after, sup.max_runs = 0.0, 2
    sup.run()
    assert sup.upload_after - sup.mono() == pytest.approx(200.0, abs=0.5)  # 2nd failure


def test_the_state_keeps_the_least_uncertain_recent_clock_offset(tmp_path: Path,
                                                                fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    t = FakeTime()
    answers = iter([(0.30, 0.20), (0.12, 0.02), (0.25, 0.15)])

    def poll(cfg: Any, offset: float | None) -> PollResult:
        offset, uncertainty = next(answers)
        return replace(control_with([]), offset_s=offset, uncertainty_s=uncertainty)

    sup = supervisor(config, fake_worker, t, poll=poll)
    for _ in range(3):
        sup.next_poll = sup.mono()
        sup.poll_if_due(sup.mono())
        t.now += 30.0
    saved = load_state(state_path(tmp_path / "spool"))
    assert (saved.clock_offset_s, saved.clock_uncertainty_s) == (0.12, 0.02)


def test_a_bad_config_edit_keeps_the_previous_settings(tmp_path: Path, fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    t = FakeTime()
    sup = supervisor(config, fake_worker, t)
    config.write_text(config.read_text() + "interval_s = -5\n")
    os.utime(config, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert sup.reload_if_changed() is False
    assert sup.cfg.interval_s == 1e6


def test_a_room_test_worker_starts_ahead_of_the_aligned_start(tmp_path: Path,
                                                              fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    t = FakeTime()
    start_local = MONDAY_0900 + 100.0
    job = {"job_id": "rt-9", "kind": "room_test", "duration_s": 20,
           "directions": ["download", "upload"], "streams": 4,
           "start_at": datetime.fromtimestamp(start_local + 30.0, UTC).isoformat()}
    sup = supervisor(config, fake_worker, t, poll=lambda c, o: control_with([job], offset=30.0))
    assert sup.run() == 1
    assert t.now == pytest.approx(start_local - JOB_LEAD_S)
    [argv] = calls(tmp_path)
    assert (option(argv, "--trigger"), option(argv, "--probes")) == ("job", "bandwidth")
    assert option(argv, "--clock-offset") == "30.0" and "--skip" not in argv
    sent = json.loads(option(argv, "--job") or "{}")
    assert (sent["job_id"], sent["duration_s"], sent["directions"]) == \
        ("rt-9", 20.0, ["download", "upload"])
    assert load_state(state_path(tmp_path / "spool")).done_jobs == ["rt-9"]


@pytest.mark.parametrize(("recent", "skipped"), [(7.0, False), (93.0, True)])
def test_a_cpu_spike_alone_does_not_skip_a_room_test(tmp_path: Path, fake_worker: Path,
                                                     recent: float, skipped: bool):
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          **{**QUIET, "passive_interval_s": 60.0})
    t = FakeTime()
    job = {"job_id": "rt-busy", "kind": "room_test", "duration_s": 20,
           "directions": ["download"],
           "start_at": datetime.fromtimestamp(MONDAY_0900 + 200.0, UTC).isoformat()}

    def sampled(cfg: Any, spool: Spool, salt: str, offset: float | None) -> Any:
        report = quick_passive(cfg, spool, salt, offset)
        report.results[0].measurements[0] = replace(report.results[0].measurements[0],
                                                    value=recent)
        return report

    def busy_now(exam: bool, used: int, budget: int, note: str) -> GuardInputs:
        return GuardInputs(on_battery=None, battery_pct=None, cpu_busy_pct=95.0, exam=exam,
                           bytes_today=used, byte_budget=budget, exam_note=note)

    sup = supervisor(config, fake_worker, t, poll=lambda c, o: control_with([job]),
                     sense=busy_now, sample_passive=sampled, max_runs=20)
    sup.run()
    [argv] = [a for a in calls(tmp_path) if option(a, "--trigger") == "job"]
    assert ("--skip" in argv) is skipped
    if skipped:
        assert option(argv, "--skip") == "bandwidth=paused: PC busy (CPU 93 % >= 80 %)"


def test_a_room_test_in_an_exam_window_is_skipped_with_the_exam_named(tmp_path: Path,
                                                                      fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    t = FakeTime()
    timetable = {"timezone": "UTC", "periods": [{"name": "P1", "start": "09:00",
                                                 "end": "10:00"}],
                 "exam_windows": [{"start": "2026-10-05T08:30", "end": "2026-10-05T12:00",
                                   "note": "GCSE maths"}]}
    job = {"job_id": "rt-exam", "kind": "room_test", "duration_s": 20,
           "directions": ["download"],
           "start_at": datetime.fromtimestamp(MONDAY_0900 + 30, UTC).isoformat()}
    sup = supervisor(config, fake_worker, t, poll=lambda c, o: control_with([job], timetable))
    assert sup.run() == 1
    [argv] = calls(tmp_path)
    assert option(argv, "--skip") == "bandwidth=paused: exam window (GCSE maths)"
    assert sup.slot() is not None and sup.slot().period == "P1"  # type: ignore[union-attr]


def test_a_burst_already_run_by_flag_is_not_repeated(tmp_path: Path, fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    write_flag_burst(tmp_path / "spool", "b-flagged-here")
    t = FakeTime()
    now = datetime.fromtimestamp(MONDAY_0900, UTC).isoformat()
    jobs = [{"job_id": "b-flagged-here", "kind": "burst", "start_at": now},
            {"job_id": "b-other-pc", "kind": "burst", "start_at": now}]
    sup = supervisor(config, fake_worker, t, poll=lambda c, o: control_with(jobs))
    assert sup.run() == 1
    [argv] = calls(tmp_path)
    assert option(argv, "--trigger") == "burst"
    assert json.loads(option(argv, "--job") or "{}")["job_id"] == "b-other-pc"
    assert option(argv, "--probes") == "load,wifi,latency,path"
    assert sup.state.done_jobs == ["b-flagged-here", "b-other-pc"]


def test_the_watchdog_kills_a_worker_over_its_memory_limit(
        tmp_path: Path, fake_worker: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_WORKER_MODE", "hog")
    config = write_config(tmp_path, "http://127.0.0.1:9", watchdog_max_rss_mb=60.0,
                          **{**QUIET, "bandwidth_interval_s": 10.0})
    t = FakeTime()
    began = time.monotonic()
    assert supervisor(config, fake_worker, t).run() == 1
    assert time.monotonic() - began < 20
    spool = Spool(tmp_path / "spool")
    [item] = spool.pending()
    report = spool.load(item)
    assert report["trigger"] == "scheduled"
    [result] = report["results"]
    assert (result["probe"], result["status"]) == ("bandwidth", "failed")
    used = int(result["reason"].split()[3])
    assert used > 60
    assert result["reason"] == f"watchdog: worker used {used} MB > 60 MB, killed"


def test_run_watched_ends_a_worker_over_its_time_limit_or_on_stop(
        monkeypatch: pytest.MonkeyPatch):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    began = time.monotonic()
    out = watchdog.run_watched(sleeper, limit_s=0.5, max_rss_mb=1000, stopped=lambda: False)
    assert out.killed == "watchdog: worker still running after its 0.5 s limit, killed"
    monkeypatch.setattr(watchdog, "STOP_GRACE_S", 0.3)
    out = watchdog.run_watched(sleeper, limit_s=60, max_rss_mb=1000, stopped=lambda: True)
    assert out.killed == watchdog.STOP_MESSAGE and out.returncode != 0
    assert time.monotonic() - began < 10
    done = watchdog.run_watched([sys.executable, "-c", "print('hi')"], limit_s=60,
                                max_rss_mb=1000, stopped=lambda: False)
    assert (done.killed, done.returncode, done.stdout) == (None, 0, "hi\n")


def test_cpu_window_and_back_off_decision():
    w = watchdog.CpuWindow(window_s=3600)
    assert w.percent() is None
    for i in range(0, 5000, 100):
        w.add(float(i), i * 0.06)  # 6 % of a core throughout
    assert w.span() == 3600.0  # one sample at the window's start is kept
    assert w.percent() == pytest.approx(6.0)
    assert watchdog.stretch_factor(6.0, 5.0, 3600) == 2.0
    assert watchdog.stretch_factor(4.9, 5.0, 3600) == 1.0
    assert watchdog.stretch_factor(50.0, 5.0, 300) == 1.0  # too short a span to judge
    assert watchdog.stretch_factor(None, 5.0, 3600) == 1.0


def test_the_supervisor_stretches_its_cadence_while_over_the_cpu_limit(
        tmp_path: Path, fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", watchdog_max_cpu_pct=5.0, **QUIET)
    t = FakeTime()
    cpu = {"s": 0.0}
    sup = supervisor(config, fake_worker, t, cpu_seconds=lambda: cpu["s"])
    base = cadence_of(sup.cfg)
    for _ in range(12):  # 10 % of a core for 12 minutes
        t.now += 60
        cpu["s"] += 6.0
        sup.check_cpu(t.mono())
    assert sup.stretch == 2.0 and sup.planner.cadence == base.scaled(2.0)
    for _ in range(120):  # then idle: the hour's average falls under 5 %
        t.now += 60
        sup.check_cpu(t.mono())
    assert sup.stretch == 1.0 and sup.planner.cadence == base


def test_poll_keeps_the_clock_offset_and_the_salt_for_the_workers(tmp_path: Path,
                                                                  server: StandInServer):
    server.state.clock_skew_s = -12.0
    server.state.poll_interval_s = 25.0
    config = write_config(tmp_path, server.url, **QUIET)
    assert load_config(config, environ={}).site_salt == ""
    t = FakeTime(start=time.time())
    # seeded: a new agent's first inventory and route runs fall at random within 10 and
    # 60 minutes (FIRST_RUN_WITHIN_S), and unseeded one came first in ~5 % of runs
    sup = Supervisor(config, wait=t.wait, wall=t.wall, max_runs=1,
                     cpu_seconds=lambda: 0.0, rng=random.Random(7))
    delay = sup.step()
    assert sup.planner.next_due(time.monotonic(), sup.slot()) > 30.0
    assert delay == pytest.approx(25.0, abs=1.0)  # the collector's poll interval wins
    state = load_state(state_path(tmp_path / "spool"))
    assert state.clock_offset_s is not None and abs(state.clock_offset_s + 12.0) < 0.1
    assert state.control is not None and state.control["room"] == "Lab 1"
    # the config may be read-only under a service manager: it is left alone, and a worker
    # takes the salt from the state
    assert load_config(config, environ={}).site_salt == ""
    assert salt_from_state(tmp_path / "spool") == SITE_SALT


def heavy_modules_script(config: Path, cycles: int) -> str:
    return ("import json, sys\n"
            "from agent.cli import main\n"
            f"code = main(['agent', 'run', '--cycles', '{cycles}', '--config', r'{config}'])\n"
            "print(json.dumps(sorted(m for m in ('httpx', 'pydantic', 'scapy') "
            "if m in sys.modules)))\n"
            "sys.exit(code)\n")


def test_supervisor_keeps_spooling_while_the_collector_is_down_and_stays_small(
        tmp_path: Path, closed_port: int):
    config = write_config(tmp_path, f"http://127.0.0.1:{closed_port}",
                          **{**QUIET, "interval_s": 0.3, "jitter": 0.0})
    out = subprocess.run([sys.executable, "-c", heavy_modules_script(config, 3)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    spool = Spool(tmp_path / "spool")
    reports = [spool.load(i) for i in spool.pending()]
    assert len(reports) == 3
    for report in reports:
        assert report["trigger"] == "scheduled"
        assert [r["probe"] for r in report["results"]] == ["latency"]
    assert "control poll: collector unreachable" in out.stderr
    assert "upload failed (collector unreachable" in out.stderr


def test_sigterm_stops_the_supervisor_cleanly(tmp_path: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    proc = subprocess.Popen([sys.executable, "-m", "classprobe.cli", "agent", "run",
                             "--config", str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopping after the current run" in err
    assert "agent stopped after 0 run(s)" in err


def test_the_supervisor_polls_a_room_test_and_a_real_worker_runs_it_on_the_collectors_clock(
        tmp_path: Path, server: StandInServer):
    server.state.clock_skew_s = 30.0
    server.state.rate_bps = 20e6
    start_at = datetime.fromtimestamp(server.state.now() + 6.0, UTC)  # collector clock
    server.state.jobs = [{"job_id": "rt-live", "kind": "room_test",
                          "start_at": start_at.isoformat(), "duration_s": 2.0,
                          "directions": ["download"], "streams": 2}]
    config = write_config(tmp_path, server.url, **QUIET)
    # real clock, real poll, real worker; the guardrails' inputs are fixed (a busy test
    # machine would otherwise pause the test, rightly)
    sup = Supervisor(config, wait=threading.Event().wait, max_runs=1,
                     sense=sense_with(), cpu_seconds=lambda: 0.0)
    assert sup.run() == 1
    [report] = server.state.stored.values()
    assert (report["trigger"], report["job_id"]) == ("job", "rt-live")
    assert abs(report["clock_offset_s"] - 30.0) < 0.1
    [result] = report["results"]
    assert result["probe"] == "bandwidth" and "late" not in (result["reason"] or "")
    started = datetime.fromisoformat(result["started_at"]).timestamp() + 30.0
    assert abs(started - start_at.timestamp()) < 0.5
    assert load_state(state_path(tmp_path / "spool")).done_jobs == ["rt-live"]
