"""The footprint benchmark's pure parts: the lesson timetable and the worker command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.timetable import load_timetable_toml, locate
from benchmarks.footprint import lesson_timetable
from benchmarks.footprint_report import line_cap_bytes, log_counts
from benchmarks.footprint_sampling import worker_of


@pytest.mark.parametrize("hour", range(24))
def test_the_timetable_puts_the_whole_run_in_one_lesson_whatever_the_utc_hour(hour: int):
    start = datetime(2026, 11, 27, hour, 59, 30, tzinfo=UTC)  # a Friday; Sat/Sun follow
    tt = load_timetable_toml(lesson_timetable(start, 600), "benchmark")
    for minutes in (0, 1, 300, 600):
        slot = locate(tt, start + timedelta(minutes=minutes))
        assert (slot.in_lesson, slot.period) == (True, "Benchmark"), (hour, minutes)


def test_a_worker_is_named_by_its_probes_and_keeps_the_guardrails_skips():
    cmd = ["python", "-m", "agent.worker", "--config", "a.toml", "--probes", "bandwidth",
           "--trigger", "scheduled", "--skip", "bandwidth=paused: on battery (43 %)",
           "--upload"]
    w = worker_of(cmd)
    assert (w.probes, w.skips) == ("bandwidth", ["bandwidth=paused: on battery (43 %)"])
    assert worker_of(["/usr/sbin/iw", "dev"]).probes == "(command iw)"  # the Wi-Fi probe's
    assert worker_of([]).probes == "?"  # not readable yet
    upload_only = ["python", "-m", "agent.worker", "--probes", "", "--upload"]
    assert worker_of(upload_only).probes == "(upload only)"


def test_the_bandwidth_cap_is_what_100_mbit_s_moves_in_the_time():
    assert line_cap_bytes(8.0) == 100_000_000


def test_log_counts_reads_the_agents_task_and_result_lines():
    log = ("2026-11-27 INFO due: passive, latency\n"
           "2026-11-27 INFO report 1f2e: load ok, wifi skipped, latency ok\n"
           "2026-11-27 INFO due: passive\n"
           "2026-11-27 INFO report 9a0b: load ok, wifi skipped\n")
    assert log_counts(log, r"due: ") == {"passive": 2, "latency": 1}
    assert log_counts(log, r"report \S+: ") == {"load ok": 2, "wifi skipped": 2,
                                                  "latency ok": 1}
