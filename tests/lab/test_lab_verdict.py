"""A readiness verdict that follows the network's true delay (root + netns).

The agent runs in the classroom namespace; the lab DNS answers ``teams.microsoft.com``
with the far side, where the real collector listens, so the Teams profile's targets
are measured through the gateway and the TUN wire. With 20 ms added each way (RTT about
40 ms) the RTT requirement (< 100 ms) passes; after 60 ms each way (RTT about 120 ms)
dominates the runs, the p95 fails — the verdict is computed from what was measured.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import load_config, save_config
from tests.lab.certs import make_certs
from tests.lab.netlab import REPO_ROOT, Lab
from tests.lab.plugin import start_collector, start_endpoints

pytestmark = pytest.mark.lab

SUPPLIER = "teams.microsoft.com"


def _classprobe(lab: Lab, *args: str) -> str:
    out = lab.run("cls", [sys.executable, "-m", "classprobe.cli", *args], cwd=REPO_ROOT,
                  timeout=120)
    assert out.returncode == 0, f"classprobe {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _rtt_requirement(report: dict[str, object]) -> dict[str, object]:
    profiles = report["profiles"]
    assert isinstance(profiles, list)
    teams = next(p for p in profiles if p["profile"] == "microsoft-teams-media")
    return next(r for r in teams["requirements"] if r["id"] == "rtt")


def test_teams_rtt_verdict_passes_then_fails_with_the_true_delay(
        make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab()
    certs = make_certs(tmp_path / "certs", [lab.far_name, lab.far_addr])
    start_endpoints(lab, certs, zone={SUPPLIER: lab.far_addr})  # the lab DNS answers it
    collector = start_collector(lab, tmp_path / "collector")
    db = f"sqlite:///{collector.data_dir / 'classprobe.db'}"

    created = lab.run("net", [sys.executable, "-m", "classprobe.cli", "collector",
                              "create-site", "lab-school", "--json", "--db", db],
                      cwd=REPO_ROOT, check=True)
    token = json.loads(created.stdout)["token"]
    # Microsoft's targets apply under peak load: the profile judges lessons only, so the
    # school is in a lesson all day (every measurement is tagged at ingest)
    timetable = tmp_path / "timetable.toml"
    timetable.write_text('timezone = "UTC"\nweekdays = ["mon", "tue", "wed", "thu", "fri", '
                         '"sat", "sun"]\n[[periods]]\nname = "Lesson"\nstart = "00:00"\n'
                         'end = "23:59:59"\n')
    lab.run("net", [sys.executable, "-m", "classprobe.cli", "collector", "timetable", "set",
                    "--site", "lab-school", str(timetable), "--db", db],
            cwd=REPO_ROOT, check=True)
    config = tmp_path / "agent" / "agent.toml"
    _classprobe(lab, "agent", "enroll", "--collector", collector.url, "--token", token,
                "--room", "Room 12", "--config", str(config))
    cfg = load_config(config, environ={})
    cfg.targets = [f"http://{SUPPLIER}:8000/speed/ping"]
    cfg.bandwidth = False
    cfg.latency_samples = 5
    cfg.icmp = False  # the RTT requirement reads TCP connect; keep cycles short
    save_config(config, cfg)

    def cycles(n: int) -> None:
        """n latency runs, each as the service runs it: a worker that measures and uploads
        (the RTT requirement reads nothing else, so the other probes are left out)."""
        for _ in range(n):
            out = lab.run("cls", [sys.executable, "-m", "agent.worker", "--config", str(config),
                                  "--probes", "latency", "--upload"], cwd=REPO_ROOT,
                          timeout=120)
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout.splitlines()[-1])["upload"]["ok"] is True, out.stdout

    def rtt() -> dict[str, object]:
        report = json.loads(lab.run(
            "net", [sys.executable, "-m", "classprobe.cli", "report", "--site", "lab-school",
                    "--profile", "microsoft-teams-media", "--format", "json", "--db", db],
            cwd=REPO_ROOT, check=True).stdout)
        return _rtt_requirement(report)

    lab.set_path(delay_ms=20)
    cycles(5)
    good = rtt()
    assert good["status"] == "pass", good
    evidence = good["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["samples"] == 5 and evidence["devices"] == 1
    assert 40.0 <= float(evidence["value"]) <= 43.0  # 2 x 20 ms + the wire's own cost

    lab.set_path(delay_ms=60)
    cycles(5)
    bad = rtt()
    assert bad["status"] == "fail", bad
    evidence = bad["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["samples"] == 10
    assert 120.0 <= float(evidence["value"]) <= 123.5  # p95 of five ~41 ms and five ~121 ms
