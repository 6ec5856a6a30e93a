"""The room test aggregation on constructed rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.services.room_test_aggregate import (
    BandwidthRun,
    JobInfo,
    aggregate,
    direction_of,
    result_dict,
)

START = datetime(2026, 9, 7, 9, 5, tzinfo=UTC)
A, B, C = "agent-a", "agent-b", "agent-c"


def job(expected: tuple[str, ...] = (A, B), directions: tuple[str, ...] = ("download",),
        duration_s: float = 20.0) -> JobInfo:
    return JobInfo(job_id="job-1", site="Test School", room="Room 12", start_at=START,
                   duration_s=duration_s, directions=directions,
                   created_at=START - timedelta(minutes=1), expected_agents=expected)


def ok(agent: str, mbps: float, direction: str = "download", at: float = 0.0,
       p50: float | None = None, max_ms: float | None = None,
       offset: float | None = None) -> BandwidthRun:
    start = START + timedelta(seconds=at)
    return BandwidthRun(agent_id=agent, direction=direction, status="ok", reason="",
                        started_at=start, finished_at=start + timedelta(seconds=20),
                        clock_offset_s=offset, mbps=mbps, loaded_p50_ms=p50,
                        loaded_max_ms=max_ms)


def bad(agent: str, status: str, reason: str, direction: str | None = "download",
        ) -> BandwidthRun:
    return BandwidthRun(agent_id=agent, direction=direction, status=status, reason=reason,
                        started_at=START, finished_at=START + timedelta(seconds=3))


AFTER = START + timedelta(seconds=20 + 120 + 1)  # past start + duration + grace


def test_two_devices_total_and_shares() -> None:
    r = aggregate(job(), {A, B}, [ok(A, 30.0, p50=12.0, max_ms=40.0),
                                  ok(B, 10.0, p50=20.0, max_ms=90.0)], AFTER)
    assert r.status == "complete"
    assert [(d.agent_id, d.mbps, d.share_pct) for d in r.devices] == [
        (A, 30.0, 75.0), (B, 10.0, 25.0)]
    (total,) = r.totals
    assert (total.direction, total.total_mbps, total.devices) == ("download", 40.0, 2)
    assert (total.loaded_latency_p50_ms, total.loaded_latency_max_ms) == (16.0, 90.0)
    assert r.failures == ()
    body = result_dict(r)
    assert body["totals"] == {"download": {"total_mbps": 40.0, "devices": 2,
                                           "loaded_latency_ms": {"p50": 16.0, "max": 90.0}}}
    assert body["devices"][0] == {"agent_id": A, "direction": "download", "mbps": 30.0,
                                  "share_pct": 75.0, "expected": True,
                                  "loaded_latency_ms": {"p50": 12.0, "max": 40.0}}


def test_missing_device_is_a_failure_once_the_test_is_over() -> None:
    runs = [ok(A, 30.0), ok(B, 10.0)]
    during = aggregate(job((A, B, C)), {A, B}, runs, START + timedelta(seconds=30))
    assert during.status == "running"
    assert during.failures == ()
    after = aggregate(job((A, B, C)), {A, B}, runs, AFTER)
    assert after.status == "incomplete"
    assert [(f.agent_id, f.status, f.reason) for f in after.failures] == [
        (C, "missing", f"agent {C} did not report")]
    assert after.total("download") == 40.0  # the devices that did report still count


def test_pending_before_the_start_and_complete_as_soon_as_all_report() -> None:
    assert aggregate(job(), set(), [], START - timedelta(seconds=1)).status == "pending"
    early = START + timedelta(seconds=25)
    assert aggregate(job(), {A, B}, [ok(A, 5.0), ok(B, 5.0)], early).status == "complete"
    assert aggregate(job(), {A}, [ok(A, 5.0)], early).status == "running"


def test_nobody_expected_and_nobody_reported_is_incomplete_not_complete() -> None:
    r = aggregate(job(expected=()), set(), [], AFTER)
    assert r.status == "incomplete"
    assert r.totals[0].total_mbps is None  # never a total made of nothing


def test_failed_and_skipped_runs_are_listed_with_their_reasons() -> None:
    r = aggregate(job((A, B, C), directions=("download", "upload")), {A, B, C},
                  [ok(A, 30.0), ok(A, 8.0, "upload"),
                   bad(B, "failed", "download from http://x/speed/download failed: reset"),
                   bad(C, "skipped", "paused: on battery (43 %)", direction=None)],
                  AFTER)
    assert [(f.agent_id, f.direction, f.status, f.reason) for f in r.failures] == [
        (B, "download", "failed", "download from http://x/speed/download failed: reset"),
        (C, None, "skipped", "paused: on battery (43 %)"),
        (B, "upload", "missing", f"agent {B} reported no upload result"),
    ]
    assert (r.total("download"), r.total("upload")) == (30.0, 8.0)
    assert r.devices[0].share_pct == 100.0


def test_window_and_start_skew_on_the_collector_clock() -> None:
    # B's clock is 2 s behind the collector's (offset +2): its 09:04:58.5 is 09:05:00.5.
    runs = [ok(A, 10.0, at=0.2), ok(B, 10.0, at=-1.5, offset=2.0),
            bad(B, "skipped", "paused: PC busy (CPU 91 % >= 80 %)")]
    r = aggregate(job(), {A, B}, runs, AFTER)
    assert r.start_skew_s == 0.3
    assert r.window_start == START + timedelta(seconds=0.2)
    assert r.window_end == START + timedelta(seconds=20.5)


def test_a_repeated_run_counts_once_the_latest_and_an_unexpected_agent_is_noted() -> None:
    r = aggregate(job((A,)), {A, B}, [ok(A, 99.0, at=0), ok(A, 30.0, at=1), ok(B, 10.0)],
                  AFTER)
    assert [(d.agent_id, d.mbps, d.expected) for d in r.devices] == [
        (A, 30.0, True), (B, 10.0, False)]
    assert r.total("download") == 40.0
    assert r.notes == (f"agent {B} was not live when the test was made but reported; "
                       "it is counted",)


def test_runs_of_agents_that_did_not_report_the_job_are_ignored() -> None:
    r = aggregate(job((A,)), {A}, [ok(A, 30.0), ok(B, 10.0)], AFTER)
    assert r.total("download") == 30.0


@pytest.mark.parametrize(("target", "metrics", "reason", "expected"), [
    ("http://h/x", ["upload_mbps", "bytes"], "", "upload"),
    ("http://h/dl", [], "", "download"),  # the job's download URL
    ("http://h/ul", [], "", "upload"),
    ("http://h:8000/speed/upload/", [], "", "upload"),
    ("http://h/big.iso", [], "download from http://h/big.iso failed: timeout", "download"),
    (None, [], "paused: exam window (GCSE maths)", None),
])
def test_direction_of_a_run(target: str | None, metrics: list[str], reason: str,
                            expected: str | None) -> None:
    assert direction_of(target, metrics, reason, "http://h/dl", "http://h/ul") == expected
