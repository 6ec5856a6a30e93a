"""Readiness evaluation (pure): exact values for every verdict rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from collector.services.profiles import Profile, Requirement, Source, load_profiles
from collector.services.readiness import (
    evaluate,
    evaluate_requirement,
    percentile,
    statistic,
    target_host,
    target_matches,
)
from collector.services.rows import FailureRow, MeasurementRow

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SRC = Source("test source", "P")
TEAMS = ("teams.microsoft.com", "*.teams.microsoft.com")


def req(**changes: object) -> Requirement:
    base = Requirement(id="rtt", title="RTT", metric="tcp_connect_ms", stat="p50",
                       statistic="p95", op="<", threshold=100.0, unit="ms", severity="must",
                       source=SRC, min_samples=5, targets=TEAMS)
    return replace(base, **changes)  # type: ignore[arg-type]


def row(value: float, agent: str = "a1", minute: int = 0, target: str = "teams.microsoft.com",
        stat: str = "p50", metric: str = "tcp_connect_ms", room: str = "R1") -> MeasurementRow:
    return MeasurementRow(time=T0 + timedelta(minutes=minute), agent_id=agent, room=room,
                          probe="latency", target=target, metric=metric, value=value, unit="ms",
                          method="tcp", report_id=f"r{minute}", stat=stat, samples=5)


def rows(values: list[float], agent: str = "a1", **kw: object) -> list[MeasurementRow]:
    return [row(v, agent, minute=i, **kw) for i, v in enumerate(values)]  # type: ignore[arg-type]


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == pytest.approx(19.05)
    assert percentile(values, 50) == pytest.approx(10.5)
    assert statistic("p10", values) == pytest.approx(2.9)
    assert statistic("mean", values) == 10.5
    assert statistic("min", values) == 1.0
    assert statistic("max", values) == 20.0
    assert percentile([7.0], 95) == 7.0


def test_pass_with_full_evidence() -> None:
    v = evaluate_requirement(req(), rows([10, 20, 30, 40, 50]), [])
    assert v.status == "pass"
    ev = v.evidence
    assert ev is not None
    assert (ev.statistic, ev.value, ev.unit, ev.samples, ev.devices) == ("p95", 48.0, "ms", 5, 1)
    assert (ev.first, ev.last) == (T0, T0 + timedelta(minutes=4))
    assert [(d.agent_id, d.value, d.samples, d.passes) for d in ev.worst_devices] == [
        ("a1", 48.0, 5, True)]
    assert v.reason == ("p95 of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com is 48 ms over 5 samples from 1 device(s); "
                        "needs < 100 ms")


def test_warn_when_one_device_fails_on_its_own() -> None:
    data = rows([10.0] * 19, "a1") + [row(150.0, "a2", minute=30, room="R2")]
    v = evaluate_requirement(req(), data, [])
    assert v.status == "warn"
    assert v.evidence is not None
    assert v.evidence.value == pytest.approx(17.0)  # 10 + 0.05 * 140
    assert v.evidence.failing_devices == 1
    assert [(d.agent_id, d.room, d.value, d.passes) for d in v.evidence.worst_devices] == [
        ("a2", "R2", 150.0, False), ("a1", "R1", 10.0, True)]
    assert "1 of 2 device(s) fail on their own, worst a2 in R2: 150 ms" in v.reason


def test_warn_within_margin_of_threshold() -> None:
    v = evaluate_requirement(req(warn_within_pct=10.0), rows([95.0] * 5), [])
    assert v.status == "warn"
    assert v.reason.endswith("within 10% of the threshold")
    assert evaluate_requirement(req(warn_within_pct=10.0), rows([89.0] * 5), []).status == "pass"
    assert evaluate_requirement(req(), rows([95.0] * 5), []).status == "pass"


def test_fail_names_value_and_threshold() -> None:
    v = evaluate_requirement(req(), rows([90, 100, 110, 120, 130]), [])
    assert v.status == "fail"
    assert v.evidence is not None and v.evidence.value == pytest.approx(128.0)
    assert "is 128 ms over 5 samples" in v.reason and "needs < 100 ms" in v.reason


def test_greater_than_requirement_sorts_lowest_devices_first() -> None:
    r = req(metric="download_mbps", unit="Mbps", op=">=", threshold=20.0, statistic="p10",
            stat="value", targets=())
    data = [replace(x, metric="download_mbps", unit="Mbps", stat="value", target=None)
            for x in rows([30, 40, 50], "a1") + rows([35, 36], "a2")]
    v = evaluate_requirement(r, data, [])
    assert v.status == "pass"
    assert v.evidence is not None
    assert [d.agent_id for d in v.evidence.worst_devices] == ["a1", "a2"]
    assert v.evidence.value == pytest.approx(32.0)  # p10 of 30,35,36,40,50


def test_too_few_samples_is_unknown_never_pass() -> None:
    v = evaluate_requirement(req(), rows([10, 10, 10, 10]), [])
    assert v.status == "unknown"
    assert v.evidence is None
    assert v.reason == ("only 4 samples of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com; at least 5 needed")


def test_no_data_is_unknown_with_latest_failure_reasons_of_matching_runs() -> None:
    failures = [
        FailureRow(T0, "a1", "latency", "teams.microsoft.com", "failed", "old reason"),
        FailureRow(T0 + timedelta(minutes=5), "a1", "latency", "teams.microsoft.com", "failed",
                   "DNS lookup failed: [Errno -3] Temporary failure in name resolution"),
        FailureRow(T0 + timedelta(minutes=6), "a1", "latency", "example.org", "failed", "nope"),
        FailureRow(T0 + timedelta(minutes=4), "a2", "latency", "https://eu.teams.microsoft.com/",
                   "skipped", "timed out"),
    ]
    v = evaluate_requirement(req(targets=("teams.microsoft.com", "*.teams.microsoft.com")),
                             [], failures)
    assert v.status == "unknown"
    assert v.reason == (
        "no measurements of tcp_connect_ms (p50) to teams.microsoft.com, *.teams.microsoft.com "
        "yet; at least 5 needed; recent probe failures: latency to teams.microsoft.com failed: "
        "DNS lookup failed: [Errno -3] Temporary failure in name resolution; "
        "latency to https://eu.teams.microsoft.com/ skipped: timed out")


@pytest.mark.parametrize(("target", "host"), [
    ("teams.microsoft.com", "teams.microsoft.com"),
    ("Teams.Microsoft.com.", "teams.microsoft.com"),
    ("teams.microsoft.com:443", "teams.microsoft.com"),
    ("https://eu.teams.microsoft.com:8443/path?q=1", "eu.teams.microsoft.com"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"),
    (None, None),
])
def test_target_host(target: str | None, host: str | None) -> None:
    assert target_host(target) == host


def test_target_filtering_counts_only_matching_hosts() -> None:
    data = (rows([10] * 5, target="https://teams.microsoft.com/")
            + rows([20] * 5, "a2", target="eu.teams.microsoft.com:443")
            + rows([500] * 5, "a3", target="example.org")
            + rows([500] * 5, "a4", target="teams.microsoft.com.evil.example"))
    v = evaluate_requirement(req(), data, [])
    assert v.status == "pass"
    assert v.evidence is not None
    assert (v.evidence.samples, v.evidence.devices) == (10, 2)
    assert not target_matches("example.org", TEAMS)
    assert target_matches(None, ()) and not target_matches("x.org", ())


def test_stat_selection_ignores_other_summaries_and_metrics() -> None:
    data = (rows([10] * 5)
            + rows([900] * 5, stat="max")
            + rows([900] * 5, metric="tls_handshake_ms"))
    v = evaluate_requirement(req(), data, [])
    assert v.evidence is not None
    assert (v.status, v.evidence.value, v.evidence.samples) == ("pass", 10.0, 5)
    assert evaluate_requirement(req(stat="max"), data, []).status == "fail"


def _profile(*reqs: Requirement) -> Profile:
    return Profile(id="p", title="P", description="", note="", source=SRC, requirements=reqs)


def test_overall_is_worst_of_must_requirements() -> None:
    good = rows([10] * 5)
    should_fail = req(id="s", severity="should", threshold=5.0)
    assert evaluate(_profile(req(), should_fail), good, [], T0).status == "pass"
    assert evaluate(_profile(req(), req(id="f", threshold=5.0)), good, [], T0).status == "fail"
    unknown = req(id="u", metric="jitter_ms")
    assert evaluate(_profile(req(), unknown), good, [], T0).status == "unknown"
    assert evaluate(_profile(unknown, req(id="f", threshold=5.0)), good, [], T0).status == "fail"
    warn = req(id="w", warn_within_pct=95.0)
    verdict = evaluate(_profile(req(), warn), good, [], T0)
    assert verdict.status == "warn"
    assert verdict.evaluated_at == T0
    assert [v.status for v in verdict.requirements] == ["pass", "warn"]


def test_teams_profile_on_site_data() -> None:
    teams = load_profiles()["microsoft-teams-media"]
    jitter = [replace(r, metric="jitter_ms", stat="value") for r in rows([3.0] * 6)]
    verdict = evaluate(teams, rows([40.0] * 6, target="https://teams.microsoft.com/") + jitter,
                       [], T0)
    by_id = {v.requirement.id: v.status for v in verdict.requirements}
    assert by_id == {"rtt": "pass", "jitter": "pass", "loss": "unknown"}
    assert verdict.status == "unknown"
