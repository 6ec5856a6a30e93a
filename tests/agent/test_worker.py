from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import worker
from agent.config import load_config
from agent.control import poll
from agent.probes.results import ResultBuilder, value
from agent.spool import Spool
from agent.wire import Job
from tests.agent.standin import StandInServer, write_config

ROOT = Path(__file__).resolve().parents[2]


def spawn(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agent.worker", "--config", str(config),
                             *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    summary: dict[str, Any] = json.loads(lines[0])
    return summary


def spooled(config: Path) -> list[dict[str, Any]]:
    spool = Spool(config.parent / "spool")
    return [spool.load(item) for item in spool.pending()]


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_aligned_start_and_bytes_used():
    start = datetime(2026, 10, 5, 9, 5, tzinfo=UTC)
    assert worker.aligned_start(start, 30.0) == start.timestamp() - 30.0
    assert worker.aligned_start(start, None) == start.timestamp()
    down = ResultBuilder("bandwidth")
    down.add(value("bytes", "m", 1_500_000), value("duration_s", "m", 2.0))
    up = ResultBuilder("bandwidth")
    up.add(value("bytes", "m", 500_000))
    other = ResultBuilder("latency")
    other.add(value("tcp_connect_ms", "m", 3.0))
    assert worker.bandwidth_bytes([down.ok(), up.ok(), other.ok()]) == 2_000_000


def test_sleep_until_ends_on_time_with_a_fake_clock():
    now = [100.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    worker.sleep_until(103.5, lambda: now[0], sleep)
    assert now[0] >= 103.5 and now[0] - 103.5 < 0.003
    assert sleeps[0] == 1.0 and all(s > 0 for s in sleeps)


def test_guardrail_skip_is_a_skipped_result_and_the_report_is_uploaded(
        tmp_path: Path, server: StandInServer):
    config = write_config(tmp_path, server.url, bandwidth=True)
    summary = finish(spawn(config, "--probes", "latency", "--trigger", "scheduled",
                           "--skip", "bandwidth=paused: on battery (43 %)", "--upload",
                           "--clock-offset", "-1.5"))
    assert summary["trigger"] == "scheduled" and summary["job_id"] is None
    assert [(r["probe"], r["status"]) for r in summary["results"]] == \
        [("latency", "ok"), ("bandwidth", "skipped")]
    assert summary["results"][1]["reason"] == "paused: on battery (43 %)"
    assert summary["bandwidth_bytes"] == 0
    assert summary["upload"] == {"ok": True, "error": None, "accepted": 1, "duplicates": 0,
                                 "pending": 0, "retry_after_s": None}
    stored = server.state.stored[summary["report_id"]]
    assert (stored["trigger"], stored["job_id"], stored["clock_offset_s"]) == \
        ("scheduled", None, -1.5)
    skipped = stored["results"][1]
    assert (skipped["probe"], skipped["status"], skipped["reason"], skipped["measurements"]) \
        == ("bandwidth", "skipped", "paused: on battery (43 %)", [])


def room_job(start_at: datetime, duration_s: float, job_id: str = "rt-1") -> str:
    return json.dumps({"job_id": job_id, "kind": "room_test", "start_at": start_at.isoformat(),
                       "duration_s": duration_s, "directions": ["download"], "streams": 2})


def test_room_test_starts_on_the_collectors_clock_in_step_with_the_room(
        tmp_path: Path, server: StandInServer):
    server.state.clock_skew_s = 30.0  # the collector's clock is 30 s ahead of this PC's
    server.state.rate_bps = 20e6  # keep two workers' transfers light on the test machine
    configs = [write_config(tmp_path / name, server.url) for name in ("pc1", "pc2")]
    measured = poll(load_config(configs[0], environ={}))
    assert measured.offset_s is not None and abs(measured.offset_s - 30.0) < 0.1
    offset = f"{measured.offset_s:.3f}"
    start_at = datetime.fromtimestamp(server.state.now() + 5.0, UTC)  # collector clock
    job = room_job(start_at, 2.0)
    procs = [spawn(c, "--job", job, "--trigger", "job", "--clock-offset", offset)
             for c in configs]
    summaries = [finish(p) for p in procs]
    started = []
    for config, summary in zip(configs, summaries, strict=True):
        [report] = spooled(config)
        assert (report["trigger"], report["job_id"]) == ("job", "rt-1")
        assert report["clock_offset_s"] == float(offset)
        [result] = report["results"]
        assert result["probe"] == "bandwidth" and summary["results"][0]["probe"] == "bandwidth"
        started.append(stamp(result["started_at"]) + float(offset))  # on the collector clock
    target = start_at.timestamp()
    assert all(abs(s - target) < 0.5 for s in started), [s - target for s in started]
    assert abs(started[0] - started[1]) < 0.3
    # the stand-in saw the first download request at the aligned time, on its own clock
    first_request = min(server.state.speed_starts)
    assert -0.05 < first_request - target < 0.5


def test_late_room_test_measures_what_is_left_and_says_so(tmp_path: Path,
                                                          server: StandInServer):
    server.state.rate_bps = 20e6
    cfg = load_config(write_config(tmp_path, server.url), environ={})
    now = datetime.now(UTC)
    job = Job(job_id="late", kind="room_test", start_at=now - timedelta(seconds=4),
              duration_s=7.0, directions=["download"], streams=1)
    [late] = worker.room_test(cfg, job, None)
    assert late.reason is not None
    assert re.match(r"started 4\.\d s late \(aligned start \d\d:\d\d:\d\d\.\d{3} UTC on the "
                    r"collector's clock\); measured the last [23]\.\d s of the 7 s window",
                    late.reason), late.reason
    duration = (late.finished_at - late.started_at).total_seconds()
    assert 2.0 < duration < 4.5
    over = Job(job_id="over", kind="room_test",
               start_at=datetime.now(UTC) - timedelta(seconds=20), duration_s=5.0,
               directions=["download"], streams=1)
    [gone] = worker.room_test(cfg, over, None)
    assert gone.status == "skipped" and gone.reason is not None
    assert re.fullmatch(r"room test download window ended 15\.\d s before this agent could "
                        r"start \(20\.\d s after the aligned start\)", gone.reason)


def test_room_test_paused_by_a_guardrail_is_one_skipped_result(tmp_path: Path):
    config = write_config(tmp_path, "http://127.0.0.1:9")
    cfg = load_config(config, environ={})
    spool = Spool(tmp_path / "spool")
    job = Job(job_id="rt", kind="room_test", start_at=datetime.now(UTC), duration_s=20,
              directions=["download", "upload"])
    req = worker.WorkerRequest(trigger="job", job=job, clock_offset_s=0.25,
                               skips={"bandwidth": "paused: exam window (GCSE maths)"})
    summary = worker.execute(cfg, spool, req)
    assert summary.report is not None and summary.upload is None
    assert (summary.report.trigger, summary.report.job_id) == ("job", "rt")
    [result] = summary.report.results
    assert (result.probe, result.status, result.reason) == \
        ("bandwidth", "skipped", "paused: exam window (GCSE maths)")


def test_spool_that_cannot_be_written_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = write_config(tmp_path, "http://127.0.0.1:9", spool_dir=str(blocker / "spool"))
    assert worker.main(["--config", str(config), "--skip", "latency=test"]) == 1
    assert "cannot write the report to the spool" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--probes", "latency,teleport"], "--probes: unknown probe(s) teleport (known: "),
    (["--skip", "bandwidth"], "--skip 'bandwidth': expected NAME=REASON"),
    (["--job", "{}"], "--job: job.kind: missing"),
    (["--job", room_job(datetime(2026, 1, 1, tzinfo=UTC), 5)],
     "--job of kind room_test needs --trigger job, got scheduled"),
    (["--clock-offset", "nan"], "--clock-offset nan is not a finite number"),
])
def test_usage_errors_name_the_bad_value(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str], message: str):
    config = write_config(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(SystemExit) as info:
        worker.main(["--config", str(config), *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_burst_job_runs_the_light_probes_by_default():
    parser = worker._parser()
    burst = json.dumps({"job_id": "b1", "kind": "burst", "start_at": "2026-10-05T09:04:00Z"})
    req = worker.request_of(parser, parser.parse_args(
        ["--config", "x.toml", "--job", burst, "--trigger", "burst"]))
    assert req.job is not None and req.job.job_id == "b1"
    assert req.probes == ("load", "wifi", "latency", "path")


def test_no_results_means_no_report(tmp_path: Path):
    cfg = load_config(write_config(tmp_path, "http://127.0.0.1:9"), environ={})
    spool = Spool(tmp_path / "spool")
    summary = worker.execute(cfg, spool, worker.WorkerRequest())
    assert summary.report is None and spool.pending() == []
    assert summary.to_json()["report_id"] is None


def test_worker_process_starts_quickly(tmp_path: Path):
    """The supervisor spawns a room-test worker a few seconds early: startup must fit."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    began = time.monotonic()
    finish(spawn(config, "--skip", "latency=test"))
    assert time.monotonic() - began < 5.0
