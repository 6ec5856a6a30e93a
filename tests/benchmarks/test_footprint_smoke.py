"""Smoke test of ``python -m benchmarks.footprint``: a tiny run prints every row with a number.

No timing or size assertions: the benchmark reports, it does not judge (and a shared test
machine makes CPU figures noisy). What is checked is that the run works end to end: a
collector, an enrolled agent in a lesson, workers sampled, the baseline processes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "supervisor RSS between cycles, median",
    "supervisor RSS between cycles, max",
    "supervisor + worker PSS, peak of a cycle",
    "supervisor + worker RSS, peak of a cycle (shared pages twice)",
    "largest worker tree RSS (peak)",
    "agent CPU, % of one core, per hour of real cadence",
    "agent CPU, % of one core, raw over the run (upper bound)",
    "agent CPU seconds in the run: supervisor itself",
    "agent CPU seconds in the run: workers",
    "baseline: idle python RSS",
    "baseline: idle python CPU, % of one core",
    "reference: python + psutil + httpx RSS (lab-facts: ~26 MB)",
]
GOALS = {ROWS[0]: 30.0, ROWS[1]: 30.0, ROWS[2]: 80.0, ROWS[5]: 0.5}


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks.footprint", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_a_tiny_run_reports_every_row_with_a_number() -> None:
    out = run_benchmark("--minutes", "0.5", "--speedup", "60", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {r["measure"]: r for r in data["rows"]}
    assert list(rows) == ROWS
    for name, row in rows.items():
        assert isinstance(row["value"], float) and math.isfinite(row["value"]), row
        assert row["goal"] == GOALS.get(name), row
        assert row["verdict"] == ("info" if name not in GOALS else
                                  ("PASS" if row["value"] <= row["goal"] else "MISS")), row
    # the agent ran in a lesson and its workers were seen
    assert data["speedup"] == 60.0
    assert set(data["in_lesson"]) == {"in lesson"} and data["in_lesson"]["in lesson"] > 0
    assert data["tasks"].get("passive", 0) >= 1
    assert data["workers"] and all(w["runs"] >= 1 and w["probes"] != "?"
                                   for w in data["workers"])
    assert len(data["idle_rss_mb_trend"]) == 12
    # PSS splits the pages the supervisor and a worker share, so it is below their RSS sum
    assert rows[ROWS[2]]["value"] < rows[ROWS[3]]["value"]


def test_bad_arguments_are_refused_by_name() -> None:
    out = run_benchmark("--minutes", "0")
    assert out.returncode == 2
    assert "--minutes 0: expected more than 0, at most 600" in out.stderr
