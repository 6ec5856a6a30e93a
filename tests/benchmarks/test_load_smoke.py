"""The ingest load benchmark: its uploads are valid batches, and a tiny run against a real
collector on loopback stores what it says it stored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.load import (
    GOAL_MEASUREMENTS_S,
    GOAL_REPORTS_S,
    ROOT,
    Result,
    batch_body,
    report_template,
)
from collector.wire_validation import parse_batch

pytestmark = pytest.mark.slow


def test_batch_is_valid_wire_format_with_the_measurements_asked() -> None:
    batch = parse_batch(batch_body(report_template(25), "agent-7", 3))
    assert len(batch.reports) == 3
    assert len({r.report_id for r in batch.reports}) == 3
    assert {r.agent_id for r in batch.reports} == {"agent-7"}
    assert [sum(len(p.measurements) for p in r.results) for r in batch.reports] == [25] * 3


def test_goal_line() -> None:
    res = Result("sqlite", 1, 10, 1.0, 20, 25, reports_s=GOAL_REPORTS_S,
                 measurements_s=GOAL_MEASUREMENTS_S)
    assert res.goal == "PASS"
    res.measurements_s -= 1
    assert res.goal == "MISS"


def test_tiny_run_against_a_real_collector() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--agents", "3", "--seconds", "1",
         "--backend", "sqlite", "--workers", "1", "--batch", "2", "--measurements", "5",
         "--concurrency", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    [run] = json.loads(out.stdout)
    assert run["skipped"] is None
    assert run["errors"] == {}
    assert run["requests"] >= 1
    assert run["reports"] == 2 * run["requests"]
    assert run["measurements"] == 5 * run["reports"]
    assert run["goal"] in ("PASS", "MISS")
    assert run["p99_ms"] >= run["p50_ms"] > 0
