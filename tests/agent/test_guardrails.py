"""Heavy-test guardrails: the reasons, the daily byte budget file, sampling the PC."""

import json
import logging
import stat
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.guardrails import (
    ByteBudget,
    GuardInputs,
    heavy_block_reason,
    read_guard_inputs,
    sustained_busy_pct,
)

CFG = AgentConfig()
GB = 1_000_000_000


def inputs(**change: Any) -> GuardInputs:
    base: dict[str, Any] = {"on_battery": False, "battery_pct": 90.0, "cpu_busy_pct": 20.0,
                            "exam": False, "bytes_today": 0, "byte_budget": 2 * GB}
    base.update(change)
    return GuardInputs(**base)


def test_allowed_when_nothing_stands_in_the_way():
    assert heavy_block_reason(inputs(), CFG) is None
    assert heavy_block_reason(inputs(on_battery=None, battery_pct=None, cpu_busy_pct=None),
                              CFG) is None  # a desktop, CPU not measured


@pytest.mark.parametrize(("change", "reason"), [
    ({"on_battery": True, "battery_pct": 43.0}, "paused: on battery (43 %)"),
    ({"on_battery": True, "battery_pct": None}, "paused: on battery (charge unknown)"),
    ({"cpu_busy_pct": 91.0}, "paused: PC busy (CPU 91 % >= 80 %)"),
    ({"cpu_busy_pct": 80.0}, "paused: PC busy (CPU 80 % >= 80 %)"),
    ({"cpu_busy_pct": 85.25}, "paused: PC busy (CPU 85.2 % >= 80 %)"),
    ({"exam": True, "exam_note": "GCSE maths"}, "paused: exam window (GCSE maths)"),
    ({"exam": True}, "paused: exam window"),
    ({"bytes_today": 1_020_000_000, "byte_budget": GB},
     "paused: daily byte budget used (1.02 GB of 1.00 GB)"),
    ({"bytes_today": 50_000_000, "byte_budget": 50_000_000},
     "paused: daily byte budget used (50.00 MB of 50.00 MB)"),
    # The exam outranks everything else.
    ({"exam": True, "exam_note": "SATs", "on_battery": True, "cpu_busy_pct": 99.0},
     "paused: exam window (SATs)"),
])
def test_block_reasons_name_the_value(change, reason):
    assert heavy_block_reason(inputs(**change), CFG) == reason


def test_config_switches():
    assert heavy_block_reason(inputs(on_battery=True, battery_pct=43.0),
                              AgentConfig(pause_on_battery=False)) is None
    assert heavy_block_reason(inputs(cpu_busy_pct=91.0), AgentConfig(busy_cpu_pct=95)) is None
    assert heavy_block_reason(inputs(bytes_today=10 * GB, byte_budget=0), CFG) is None
    assert heavy_block_reason(inputs(bytes_today=GB - 1, byte_budget=GB), CFG) is None


def test_read_guard_inputs_from_the_pc():
    laptop = read_guard_inputs(False, 5, 10, battery=lambda: SimpleNamespace(
        percent=43, power_plugged=False), cpu_busy=lambda s: 12.5 if s == 1.0 else -1)
    assert laptop == GuardInputs(True, 43.0, 12.5, False, 5, 10)
    desktop = read_guard_inputs(True, 0, 0, "GCSE", battery=lambda: None,
                                cpu_busy=lambda s: 3.0, sample_s=0.2)
    assert desktop == GuardInputs(None, None, 3.0, True, 0, 0, "GCSE")
    unknown_mains = read_guard_inputs(False, 0, 0, battery=lambda: SimpleNamespace(
        percent=80, power_plugged=None), cpu_busy=lambda s: 0.0)
    assert (unknown_mains.on_battery, unknown_mains.battery_pct) == (None, 80.0)


def test_read_guard_inputs_with_psutil_here():
    sampled = read_guard_inputs(False, 0, 0, sample_s=0.05)
    assert sampled.cpu_busy_pct is not None and 0 <= sampled.cpu_busy_pct <= 100


def test_byte_budget_counts_per_day_and_persists(tmp_path: Path):
    path = tmp_path / "state" / "budget.json"
    budget = ByteBudget(path)
    day = date(2026, 11, 26)
    assert budget.used_today(day) == 0
    assert budget.add(day, 300) == 300
    assert budget.add(day, 200) == 500
    assert ByteBudget(path).used_today(day) == 500  # another process reads the same file
    assert json.loads(path.read_text()) == {"date": "2026-11-26", "bytes": 500}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["budget.json"]  # no temp left
    assert budget.used_today(date(2026, 11, 27)) == 0  # a new day
    assert budget.add(date(2026, 11, 27), 7) == 7
    assert budget.used_today(day) == 0  # yesterday's count is gone


@pytest.mark.parametrize("content", [
    "{not json", '{"date": "2026-13-01", "bytes": 5}', '{"bytes": 5}', "[1, 2]",
    '{"date": "2026-11-26", "bytes": -5}', '{"date": "2026-11-26", "bytes": "5"}',
    '{"date": 20261126, "bytes": 5}', '{"date": "2026-11-26", "bytes": true}',
])
def test_damaged_budget_file_counts_from_zero_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str):
    path = tmp_path / "budget.json"
    path.write_text(content)
    budget = ByteBudget(path)
    day = date(2026, 11, 26)
    with caplog.at_level(logging.WARNING, logger="agent.guardrails"):
        assert budget.used_today(day) == 0
    assert f"byte budget {path} is damaged" in caplog.text
    assert budget.add(day, 10) == 10
    assert budget.used_today(day) == 10


def test_budget_file_binary_garbage_and_unwritable(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture):
    path = tmp_path / "budget.json"
    path.write_bytes(b"\xff\xfe\x00")
    with caplog.at_level(logging.WARNING, logger="agent.guardrails"):
        assert ByteBudget(path).used_today(date(2026, 1, 1)) == 0
    assert "unreadable" in caplog.text
    blocked = ByteBudget(tmp_path / "budget.json" / "sub" / "b.json")  # parent is a file
    with caplog.at_level(logging.WARNING, logger="agent.guardrails"):
        assert blocked.add(date(2026, 1, 1), 5) == 5
    assert "not saved" in caplog.text


def test_budget_rejects_bad_counts(tmp_path: Path):
    budget = ByteBudget(tmp_path / "b.json")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"byte count {bad!r}: expected a whole number"):
            budget.add(date(2026, 1, 1), bad)  # type: ignore[arg-type]


def test_busy_is_judged_on_the_fresh_sample_tempered_by_the_recent_median():
    assert sustained_busy_pct(95.0, []) == 95.0  # nothing recent: the fresh sample alone
    assert sustained_busy_pct(None, [90.0]) is None  # not measured now: never a pause
    assert sustained_busy_pct(95.0, [10.0, 12.0, 99.0]) == 12.0  # a spike, not a busy PC
    assert sustained_busy_pct(95.0, [85.0, 90.0, 10.0, 92.0]) == 87.5  # busy for minutes
    assert sustained_busy_pct(20.0, [90.0]) == 20.0  # calm now: the lower one
