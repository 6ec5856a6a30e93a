"""The passive sample the supervisor takes itself, and when its reports are uploaded."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from agent import passive
from agent.config import load_config, save_config
from agent.spool import Spool
from tests.agent.standin import SITE_SALT, write_config
from tests.agent.supervisor_fakes import (
    MONDAY_0900,
    QUIET,
    FakeTime,
    calls,
    control_with,
    option,
    quick_passive,
    spooled,
    supervisor,
)


def run_passive_lesson(tmp_path: Path, fake_worker: Path, latency_interval_s: float,
                       max_runs: int) -> None:
    """A supervisor with a passive sample every minute and uploads every 5 minutes, run
    until ``max_runs`` workers have started."""
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          **{**QUIET, "passive_interval_s": 60.0,
                             "interval_s": latency_interval_s,
                             "upload_interval_s": 300.0, "jitter": 0.0})
    supervisor(config, fake_worker, FakeTime(), max_runs=max_runs,
               sample_passive=quick_passive).run()


def test_passive_samples_are_taken_here_and_uploaded_together(tmp_path: Path,
                                                               fake_worker: Path):
    run_passive_lesson(tmp_path, fake_worker, latency_interval_s=1000.0, max_runs=16)
    runs = [(option(argv, "--probes"), "--upload" in argv) for argv in calls(tmp_path)]
    assert ("load,wifi", False) not in runs and ("load,wifi", True) not in runs  # no worker
    passive = [r for r in spooled(tmp_path) if r["results"][0]["probe"] == "load"]
    assert len(passive) >= 8, runs
    uploads_only = [up for probes, up in runs if probes == ""]
    assert uploads_only and all(uploads_only), runs  # an upload-only worker: --probes ""
    assert len(uploads_only) < len(passive) // 2  # then about one upload per 5 minutes
    assert all(up for probes, up in runs if probes == "latency")  # other runs: at once


def test_no_upload_only_worker_when_a_worker_that_uploads_is_due_soon(tmp_path: Path,
                                                                      fake_worker: Path):
    run_passive_lesson(tmp_path, fake_worker, latency_interval_s=300.0, max_runs=30)
    probes = [option(argv, "--probes") for argv in calls(tmp_path)]
    latency = probes.count("latency")
    assert latency >= 2, probes
    # every 5 minutes the latency worker uploads; the passive samples in between never
    # start a worker of their own once the first upload has happened
    assert probes.count("") <= 1, probes


def test_with_a_monitor_interface_the_passive_task_runs_in_a_worker(tmp_path: Path,
                                                                    fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          **{**QUIET, "passive_interval_s": 60.0,
                             "monitor_interface": "mon0"})
    t = FakeTime()
    sup = supervisor(config, fake_worker, t, sample_passive=quick_passive)
    assert sup.run() == 1
    [argv] = calls(tmp_path)
    assert option(argv, "--probes") == "load,wifi"  # scapy stays out of the supervisor
    assert spooled(tmp_path) == []


def test_the_real_passive_sample_is_spooled_with_the_site_salt(tmp_path: Path,
                                                              fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          **{**QUIET, "passive_interval_s": 60.0, "site_salt": ""})
    t = FakeTime()
    seen: list[str] = []

    def real(cfg: Any, spool: Spool, salt: str, offset: float | None) -> Any:
        seen.append(salt)
        return passive.sample(cfg, spool, salt, offset)

    sup = supervisor(config, fake_worker, t, sample_passive=real,
                     poll=lambda cfg, off: control_with([]))
    assert sup.run() == 2  # the sample, then the upload-only worker
    [report] = spooled(tmp_path)
    assert seen == [SITE_SALT] and report["trigger"] == "scheduled"
    by_probe = {r["probe"]: r for r in report["results"]}
    assert by_probe["load"]["status"] == "ok"
    busy = {m["metric"]: m["value"] for m in by_probe["load"]["measurements"]}["cpu_busy_pct"]
    assert busy is not None and 0.0 <= busy <= 100.0
    wifi = by_probe["wifi"]  # this machine has no Wi-Fi adapter: skipped, with the reason
    assert wifi["status"] == "ok" or (wifi["status"] in ("skipped", "failed")
                                      and wifi["reason"])


def test_a_config_change_takes_effect_without_a_restart(tmp_path: Path, fake_worker: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9", **QUIET)
    t = FakeTime()

    def edit() -> None:
        cfg = load_config(config, environ={})
        cfg.passive_interval_s = 2.0
        save_config(config, cfg)
        os.utime(config, ns=(time.time_ns(), time.time_ns() + 10**9))

    t.on_wait.append(edit)
    sup = supervisor(config, fake_worker, t, sample_passive=quick_passive, max_runs=2)
    assert sup.run() == 2  # the sample, then a worker that only uploads it
    assert [r["results"][0]["probe"] for r in spooled(tmp_path)] == ["load"]
    assert [option(argv, "--probes") for argv in calls(tmp_path)] == [""]
    assert t.now - MONDAY_0900 < 62.0  # one 60 s sleep, then the new cadence, not 1e6 s
    assert sup.cfg.passive_interval_s == 2.0
