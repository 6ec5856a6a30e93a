"""Collector down, agent killed with SIGKILL: every report still arrives exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.config import load_config, save_config
from tests.e2e.conftest import ROOT, Collector, cli

pytestmark = pytest.mark.slow


def _pending(spool: Path) -> list[Path]:
    return sorted((spool / "pending").glob("*.json"))


def _report_id(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def _wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_reports_survive_outage_and_kill_9_and_arrive_once(collector: Collector,
                                                            tmp_path: Path) -> None:
    token = collector.create_site("south-school")
    config = tmp_path / "agent" / "agent.toml"
    cli("agent", "enroll", "--collector", collector.url, "--token", token, "--room", "Lab 3",
        "--config", str(config))
    cfg = load_config(config, environ={})
    cfg.bandwidth = False  # this test is about delivery, keep cycles short
    cfg.icmp = False
    cfg.latency_samples = 2
    # `agent run`: a cheap passive sample (load, wifi) about every 0.5 s and nothing else,
    # so every report it spools has measurements of its own (the export lists those)
    cfg.passive_interval_s = 0.5
    cfg.interval_s = 1e6
    cfg.path_interval_s = 1e6
    cfg.inventory_interval_s = 1e6
    cfg.backoff_base_s = 0.2
    cfg.backoff_cap_s = 1.0
    save_config(config, cfg)
    spool = config.parent / "spool"

    collector.stop()
    for _ in range(2):  # the collector is down: reports wait in the spool
        out = cli("agent", "once", "--config", str(config))
        assert out.returncode == 0
    assert len(_pending(spool)) == 2

    # `agent run` keeps measuring while the collector is down (its supervisor starts a
    # worker process about every interval_s); kill -9 the supervisor and its worker (the
    # whole process group, as systemd's stop does) after two more reports, then once more
    # in the middle of a run
    for wanted in (4, 5):
        run = subprocess.Popen([sys.executable, "-m", "classprobe.cli", "agent", "run",
                                "--config", str(config)], cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda n=wanted: len(_pending(spool)) >= n, 60, f"{wanted} spooled")
            if wanted == 5:
                time.sleep(0.2)  # somewhere inside the next run
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    spooled = {_report_id(p) for p in _pending(spool)}
    assert len(spooled) >= 5
    kept_copy = tmp_path / "kept.json"
    first = _pending(spool)[0]
    shutil.copy(first, kept_copy)

    collector.start()
    out = cli("agent", "once", "--config", str(config))
    assert out.returncode == 0
    assert _pending(spool) == []

    rows = collector.export("south-school")
    arrived = {str(r["report_id"]) for r in rows}
    assert spooled < arrived and len(arrived) == len(spooled) + 1
    # exactly once: each report's device facts appear once, not once per upload attempt
    per_report = Counter(str(r["report_id"]) for r in rows if r["metric"] == "ram_total_gb")
    assert set(per_report.values()) == {1}

    # a crash between the collector storing a batch and the agent deleting it means a
    # re-upload: it is answered as a duplicate and nothing is counted twice
    delivered = _report_id(first)
    shutil.copy(kept_copy, spool / "pending" / first.name)
    before = len(collector.export("south-school"))
    cli("agent", "once", "--config", str(config))
    after_rows = collector.export("south-school")
    assert _pending(spool) == []
    again = Counter(str(r["report_id"]) for r in after_rows if r["metric"] == "ram_total_gb")
    assert again[delivered] == 1
    assert len(after_rows) > before  # the new cycle's report arrived, the ghost did not
