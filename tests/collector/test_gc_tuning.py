"""A serving collector process tunes Python's GC (collector/gc_tuning.py); nothing else does.

Each case runs in a child process: freezing or re-thresholding the test process's GC
would change every test after it."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.gc_tuning import tune_for_serving

ROOT = Path(__file__).resolve().parents[2]
REPORT_GC = ("import gc, json; print(json.dumps({'threshold': gc.get_threshold(), "
             "'frozen': gc.get_freeze_count()}))")


def _child(tmp_path: Path, code: str, **env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLASSPROBE_")}
    environ.update(CLASSPROBE_DATABASE_URL=f"sqlite:///{tmp_path}/gc.db",
                   CLASSPROBE_DATA_DIR=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _python_default(tmp_path: Path) -> list[int]:
    return _child(tmp_path, REPORT_GC)["threshold"]  # type: ignore[return-value]


def test_the_uvicorn_factory_freezes_start_up_and_raises_the_young_threshold(
        tmp_path: Path) -> None:
    default = _python_default(tmp_path)
    state = _child(tmp_path, "from collector.app import app_from_env; app_from_env(); "
                   + REPORT_GC)
    assert state["threshold"] == [10_000, *default[1:]]
    assert isinstance(state["frozen"], int) and state["frozen"] > 10_000  # start-up's objects


def test_the_threshold_is_a_setting_and_zero_leaves_python_alone(tmp_path: Path) -> None:
    default = _python_default(tmp_path)
    factory = "from collector.app import app_from_env; app_from_env(); " + REPORT_GC
    assert _child(tmp_path, factory, CLASSPROBE_GC_YOUNG_THRESHOLD="2500")["threshold"] \
        == [2_500, *default[1:]]
    untouched = _child(tmp_path, factory, CLASSPROBE_GC_YOUNG_THRESHOLD="0")
    assert untouched == {"threshold": default, "frozen": 0}


def test_collector_serve_tunes_before_it_serves(tmp_path: Path) -> None:
    """``collector serve`` (uvicorn.run replaced by a report of the GC it would serve with)."""
    state = _child(tmp_path, "import uvicorn; uvicorn.run = lambda *a, **k: exec("
                   f"{REPORT_GC!r}); from collector.cli import main; "
                   "main(['collector', 'serve', '--port', '1'])",
                   CLASSPROBE_GC_YOUNG_THRESHOLD="4321")
    assert state["threshold"][0] == 4321  # type: ignore[index]
    assert state["frozen"] > 0  # type: ignore[operator]


def test_create_app_alone_leaves_the_process_gc_as_it_was(tmp_path: Path) -> None:
    state = _child(tmp_path, "from collector.app import create_app; create_app(); "
                   + REPORT_GC)
    assert state == {"threshold": _python_default(tmp_path), "frozen": 0}


def test_a_negative_threshold_is_refused_by_name_before_anything_changes() -> None:
    before = (gc.get_threshold(), gc.get_freeze_count())
    with pytest.raises(ValueError, match="young_threshold must be >= 0, not -5"):
        tune_for_serving(-5)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
