"""The whole path with real processes: enrol, measure, upload, store, judge, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import load_config, save_config
from tests.e2e.conftest import Collector, cli, closed_port_url

pytestmark = pytest.mark.slow


def enrol(collector: Collector, tmp_path: Path, site: str, room: str, targets: list[str]) -> Path:
    token = collector.create_site(site)
    config = tmp_path / "agent" / "agent.toml"
    out = cli(
        "agent",
        "enroll",
        "--collector",
        collector.url,
        "--token",
        token,
        "--room",
        room,
        "--config",
        str(config),
    )
    assert token not in out.stdout + out.stderr
    cfg = load_config(config, environ={})
    assert cfg.credential and cfg.credential not in out.stdout
    cfg.targets = targets
    cfg.bandwidth_seconds = 5.0
    cfg.bandwidth_max_bytes = 20_000_000_000  # loopback: let time, not bytes, end the test
    cfg.latency_samples = 5
    save_config(config, cfg)
    return config


def test_agent_measures_and_collector_stores_and_judges(
    collector: Collector, tmp_path: Path
) -> None:
    unreachable = closed_port_url()
    config = enrol(collector, tmp_path, "north-school", "Room 12", [unreachable])
    agent_id = load_config(config, environ={}).agent_id

    once = cli("agent", "once", "--config", str(config), "--json")
    summary = json.loads(once.stdout)
    assert summary["upload"]["accepted"] == 1

    rows = collector.export("north-school")
    assert {r["agent"] for r in rows} == {agent_id}
    assert {r["room"] for r in rows} == {"Room 12"}
    metrics = {(r["probe"], r["metric"]) for r in rows}
    # device facts, latency to the collector itself, and throughput against its endpoints
    for expected in [
        ("device", "ram_total_gb"),
        ("device", "cpu_cores"),
        ("latency", "tcp_connect_ms"),
        ("latency", "http_ttfb_ms"),
        ("bandwidth", "download_mbps"),
        ("bandwidth", "upload_mbps"),
    ]:
        assert expected in metrics, f"{expected} missing from {sorted(metrics)}"
    # nothing was invented for the unreachable endpoint
    assert not [r for r in rows if r["target"] and str(r["target"]).startswith(unreachable)]
    for r in rows:
        assert r["method"], r
        assert r["report_id"] == summary["report"]["report_id"]

    # the verdict is visible through the CLI and the API, with the reason for 'unknown'
    report = json.loads(
        cli("report", "--site", "north-school", "--format", "json", "--db", collector.db).stdout
    )
    api = collector.get_json("/api/v1/sites/north-school/readiness")
    assert _without_clock(report) == _without_clock(api)
    teams = _profile(report, "microsoft-teams-media")
    assert teams["status"] == "unknown"
    rtt = next(r for r in teams["requirements"] if r["metric"] == "tcp_connect_ms")
    assert rtt["status"] == "unknown" and rtt["reason"]

    html = cli("report", "--site", "north-school", "--format", "html", "--db", collector.db)
    assert "microsoft-teams-media" in html.stdout.lower() or "teams" in html.stdout.lower()


def _profile(report: object, profile_id: str) -> dict[str, object]:
    profiles = report["profiles"] if isinstance(report, dict) else report
    assert isinstance(profiles, list)
    found = [p for p in profiles if p["profile"] == profile_id]
    assert found, f"{profile_id} not in {profiles}"
    out: dict[str, object] = found[0]
    return out


def _without_clock(doc: object) -> object:
    """The report minus the moments it was generated, which differ between two calls."""
    if isinstance(doc, dict):
        return {k: _without_clock(v) for k, v in doc.items()
                if k not in {"generated_at", "evaluated_at"}}
    if isinstance(doc, list):
        return [_without_clock(v) for v in doc]
    return doc
