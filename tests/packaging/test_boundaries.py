"""Packaging boundaries: the agent stays light and never imports the collector."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "sqlmodel", "sqlalchemy", "starlette", "uvicorn", "collector")


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (pip install classprobe[dev])")
    return found


def test_lint_rule_rejects_collector_imports_inside_agent(tmp_path: Path) -> None:
    offender = ROOT / "agent" / "_lint_probe_tmp.py"
    offender.write_text("from collector.app import create_app\n\nprint(create_app)\n")
    try:
        out = subprocess.run([_ruff(), "check", "--no-cache", str(offender)], cwd=ROOT,
                             capture_output=True, text=True)
    finally:
        offender.unlink()
    assert out.returncode != 0
    assert "TID251" in out.stdout and "agent/ must not import collector/" in out.stdout


def test_lint_rule_allows_collector_imports_outside_agent() -> None:
    out = subprocess.run([_ruff(), "check", "--no-cache", "--select", "TID251",
                          str(ROOT / "collector" / "wire_validation.py")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_agent_extra_pulls_no_web_framework_or_orm() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    agent_deps = " ".join(meta["optional-dependencies"]["agent"]).lower()
    for heavy in ("fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "starlette"):
        assert heavy not in agent_deps
    assert meta["scripts"]["classprobe"] == "classprobe.cli:main"


def test_importing_the_agent_cli_loads_nothing_from_the_collector_side() -> None:
    code = (
        "import sys, agent.cli, agent.wire, agent.metrics, classprobe.cli\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
