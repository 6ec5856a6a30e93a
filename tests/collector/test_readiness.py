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
    requirement_samples,
    statistic,
    target_host,
    target_matches,
)
from collector.services.room_tests import RoomCapacity
from collector.services.rows import FailureRow, MeasurementRow

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SRC = Source("test source", "P")
TEAMS = ("teams.microsoft.com", "*.teams.microsoft.com")
HINT = "set a timetable: classprobe collector timetable set --site SITE FILE.toml"


def req(**changes: object) -> Requirement:
    base = Requirement(id="rtt", title="RTT", metric="tcp_connect_ms", stat="p50",
                       statistic="p95", op="<", threshold=100.0, unit="ms", severity="must",
                       source=SRC, min_samples=5, targets=TEAMS)
    return replace(base, **changes)  # type: ignore[arg-type]


def row(value: float, agent: str = "a1", minute: int = 0,
        target: str | None = "teams.microsoft.com", stat: str = "p50",
        metric: str = "tcp_connect_ms", room: str = "R1",
        in_lesson: bool | None = None, period: str | None = None, unit: str = "ms",
        trigger: str = "scheduled") -> MeasurementRow:
    return MeasurementRow(time=T0 + timedelta(minutes=minute), agent_id=agent, room=room,
                          probe="latency", target=target, metric=metric, value=value, unit=unit,
                          method="tcp", report_id=f"r{minute}", stat=stat, samples=5,
                          period=period, in_lesson=in_lesson, trigger=trigger)


def rows(values: list[float], agent: str = "a1", start: int = 0,
         **kw: object) -> list[MeasurementRow]:
    return [row(v, agent, minute=start + i, **kw)  # type: ignore[arg-type]
            for i, v in enumerate(values)]


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
    assert (ev.statistic, ev.value, ev.unit, ev.samples, ev.devices, ev.rooms) == (
        "p95", 48.0, "ms", 5, 1, 1)
    assert (ev.first, ev.last, ev.threshold, ev.judged) == (
        T0, T0 + timedelta(minutes=4), 100.0, "site")
    assert [(d.agent_id, d.value, d.samples, d.passes) for d in v.worst_devices] == [
        ("a1", 48.0, 5, True)]
    assert [(r.room, r.status, r.value, r.samples) for r in v.rooms] == [("R1", "pass", 48.0, 5)]
    assert v.reason == ("p95 of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com is 48 ms over 5 samples from 1 device(s); "
                        "needs < 100 ms")
    assert v.remediation is None


def test_warn_when_one_device_fails_on_its_own() -> None:
    data = rows([10.0] * 19, "a1") + [row(150.0, "a2", minute=30, room="R2")]
    v = evaluate_requirement(req(), data, [])
    assert v.status == "warn"
    assert v.evidence is not None
    assert v.evidence.value == pytest.approx(17.0)  # 10 + 0.05 * 140
    assert v.evidence.failing_devices == 1
    assert [(d.agent_id, d.room, d.value, d.passes) for d in v.worst_devices] == [
        ("a2", "R2", 150.0, False), ("a1", "R1", 10.0, True)]
    assert "1 of 2 device(s) fail on their own, worst a2 in R2: 150 ms" in v.reason
    # R2 has one sample: too few to judge the room on its own
    assert [(r.room, r.status) for r in v.rooms] == [("R1", "pass"), ("R2", "unknown")]
    assert v.remediation is not None


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
    assert v.remediation is not None and v.remediation.startswith(
        "In R1, the round-trip time (TCP connect) to teams.microsoft.com, "
        "*.teams.microsoft.com is 128 ms (p95); it should be below 100 ms.")


def test_greater_than_requirement_sorts_lowest_devices_first() -> None:
    r = req(metric="download_mbps", unit="Mbps", op=">=", threshold=20.0, statistic="p10",
            stat="value", targets=())
    data = [replace(x, metric="download_mbps", unit="Mbps", stat="value", target=None)
            for x in rows([30, 40, 50], "a1") + rows([35, 36], "a2")]
    v = evaluate_requirement(r, data, [])
    assert v.status == "pass"
    assert v.evidence is not None
    assert [d.agent_id for d in v.worst_devices] == ["a1", "a2"]
    assert v.evidence.value == pytest.approx(32.0)  # p10 of 30,35,36,40,50


def test_too_few_samples_is_unknown_never_pass() -> None:
    v = evaluate_requirement(req(), rows([10, 10, 10, 10]), [])
    assert v.status == "unknown"
    assert v.evidence is None
    assert v.reason == ("only 4 samples of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com; at least 5 needed")
    assert v.remediation is None


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
    assert {w: r.status for w, r in v.windows.items()} == {
        "in_lesson": "unknown", "out_of_hours": "unknown"}


def test_no_data_makes_every_requirement_unknown_never_pass() -> None:
    profile = _profile(req(), req(id="dl", metric="download_mbps", unit="Mbps", op=">=",
                                  threshold=10.0, stat="value", targets=()),
                       req(id="tls", metric="tls_intercepted", unit="bool", op="==",
                           threshold=0.0, statistic="max", stat="value"))
    verdict = evaluate(profile, [], [], T0)
    assert [v.status for v in verdict.requirements] == ["unknown"] * 3
    assert verdict.status == "unknown"
    assert all(v.evidence is None and v.remediation is None for v in verdict.requirements)


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


def _profile(*reqs: Requirement, class_size: int = 30) -> Profile:
    return Profile(id="p", title="P", description="", note="", source=SRC, requirements=reqs,
                   version="1", class_size=class_size)


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


def test_teams_profile_judges_lessons_only() -> None:
    teams = load_profiles()["microsoft-teams-media"]
    lesson = rows([40.0] * 6, target="https://teams.microsoft.com/", in_lesson=True,
                  period="P1")
    jitter = [replace(r, metric="jitter_ms", stat="value", value=3.0) for r in lesson]
    evening = rows([400.0] * 6, start=600, in_lesson=False)
    verdict = evaluate(teams, lesson + jitter + evening, [], T0)
    by_id = {v.requirement.id: v.status for v in verdict.requirements}
    assert by_id == {"rtt": "pass", "jitter": "pass", "loss": "unknown"}
    assert verdict.status == "unknown"
    rtt = verdict.requirements[0]
    assert rtt.windows["out_of_hours"].status == "fail"
    assert rtt.windows["in_lesson"].evidence == rtt.evidence


# ---------------------------------------------------------------- windows

def test_windows_side_by_side() -> None:
    data = (rows([150.0] * 5, in_lesson=True, period="P3")
            + rows([20.0] * 5, start=100, in_lesson=False))
    v = evaluate_requirement(req(), data, [])
    assert v.status == "fail"  # window "all": p95 of 5×20 and 5×150 is 150
    assert v.evidence is not None and v.evidence.value == 150.0
    lesson, evening = v.windows["in_lesson"], v.windows["out_of_hours"]
    assert (lesson.status, evening.status) == ("fail", "pass")
    assert lesson.evidence is not None and evening.evidence is not None
    assert (lesson.evidence.value, lesson.evidence.samples) == (150.0, 5)
    assert (evening.evidence.value, evening.evidence.first) == (20.0, T0 + timedelta(minutes=100))
    assert lesson.reason.startswith("p95 of tcp_connect_ms (p50) to teams.microsoft.com, "
                                    "*.teams.microsoft.com in lessons is 150 ms")
    assert [(p.period, p.value, p.passes) for p in v.worst_periods] == [("P3", 150.0, False)]


def test_in_lesson_window_counts_only_lesson_samples() -> None:
    data = rows([20.0] * 5, in_lesson=True) + rows([900.0] * 5, start=50, in_lesson=False)
    v = evaluate_requirement(req(window="in_lesson"), data, [])
    assert v.status == "pass"
    assert v.evidence is not None
    assert (v.evidence.value, v.evidence.samples) == (20.0, 5)
    assert v.evidence == v.windows["in_lesson"].evidence
    assert v.windows["out_of_hours"].status == "fail"
    v = evaluate_requirement(req(window="out_of_hours"), data, [])
    assert v.status == "fail"


def test_no_timetable_makes_a_lesson_window_unknown_with_the_fix() -> None:
    v = evaluate_requirement(req(window="in_lesson"), rows([20.0] * 7), [])
    assert v.status == "unknown"
    assert v.reason == ("no measurements of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com can be placed in lessons: the site had no "
                        f"timetable when its 7 sample(s) arrived; {HINT}")
    assert v.windows["out_of_hours"].reason.startswith(
        "no measurements of tcp_connect_ms (p50) to teams.microsoft.com, "
        "*.teams.microsoft.com can be placed out of hours")
    assert evaluate_requirement(req(), rows([20.0] * 7), []).status == "pass"
    named = evaluate_requirement(req(window="in_lesson"), rows([20.0] * 7), [],
                                 site="Hill School")
    assert named.reason.endswith("set a timetable: classprobe collector timetable set "
                                 "--site 'Hill School' FILE.toml")


def test_samples_from_before_the_timetable_are_named() -> None:
    data = rows([20.0] * 3, in_lesson=True) + rows([20.0] * 4, start=10)
    v = evaluate_requirement(req(window="in_lesson"), data, [])
    assert v.status == "unknown"
    assert v.reason == ("only 3 samples of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com in lessons; at least 5 needed; 4 more arrived "
                        "before the site had a timetable, so they count in no window "
                        f"({HINT})")


def test_requirement_samples_by_window_and_without_room_test_rows() -> None:
    data = (rows([10.0, 11.0], in_lesson=True, period="P1")
            + rows([12.0], start=5, in_lesson=False)
            + rows([99.0], start=9, in_lesson=True, trigger="job"))
    samples = requirement_samples(req(), data, "in_lesson")
    assert [(s.value, s.time, s.agent_id, s.room, s.period, s.in_lesson) for s in samples] == [
        (10.0, T0, "a1", "R1", "P1", True), (11.0, T0 + timedelta(minutes=1), "a1", "R1", "P1",
                                             True)]
    assert [s.value for s in requirement_samples(req(), data)] == [10.0, 11.0, 12.0]
    assert [s.value for s in requirement_samples(req(window="out_of_hours"), data)] == [12.0]
    with pytest.raises(ValueError, match="unknown window 'weekend'; known: all, in_lesson, "
                                         "out_of_hours"):
        requirement_samples(req(), data, "weekend")


# ---------------------------------------------------------------- scopes

def test_room_scope_each_room_must_pass() -> None:
    data = rows([50.0] * 5, "a1", room="R1") + rows([130.0] * 5, "a2", room="R2")
    v = evaluate_requirement(req(scope="room"), data, [])
    assert v.status == "fail"
    assert [(r.room, r.status, r.value, r.samples, r.devices) for r in v.rooms] == [
        ("R1", "pass", 50.0, 5, 1), ("R2", "fail", 130.0, 5, 1)]
    assert [r.room for r in v.worst_rooms] == ["R2", "R1"]
    assert v.evidence is not None
    assert (v.evidence.value, v.evidence.judged, v.evidence.failing_rooms) == (
        130.0, "worst room R2", 1)
    assert v.reason == ("p95 of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com judged per room; 1 of 2 room(s) fail; "
                        "worst room R2: 130 ms over 5 samples; needs < 100 ms")
    # the same rows judged at site scope: p95 of the lot fails too, but the rooms are listed
    assert evaluate_requirement(req(), data, []).status == "fail"
    assert evaluate_requirement(req(scope="room"), rows([50.0] * 5), []).status == "pass"


def test_room_scope_a_room_without_enough_samples_is_unknown() -> None:
    data = (rows([50.0] * 5, "a1", room="R1") + rows([50.0] * 2, "a2", room="R2")
            + [row(-60.0, "a3", room="R3", metric="rssi_dbm", unit="dBm", target=None,
                   stat="value")])
    v = evaluate_requirement(req(scope="room"), data, [])
    assert v.status == "unknown"
    assert [(r.room, r.status, r.samples) for r in v.rooms] == [
        ("R1", "pass", 5), ("R2", "unknown", 2), ("R3", "unknown", 0)]
    assert v.reason == ("p95 of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com judged per room; 0 of 3 room(s) fail; "
                        "2 room(s) with fewer than 5 samples are unknown: R2 (2), R3 (0); "
                        "worst room R1: 50 ms over 5 samples; needs < 100 ms")
    assert v.remediation is None
    # a failing room outranks the unknown ones
    data += rows([150.0] * 5, "a4", room="R4")
    assert evaluate_requirement(req(scope="room"), data, []).status == "fail"


def test_room_scope_warns_within_the_margin() -> None:
    data = rows([50.0] * 5, "a1", room="R1") + rows([95.0] * 5, "a2", room="R2")
    v = evaluate_requirement(req(scope="room", warn_within_pct=10.0), data, [])
    assert v.status == "warn"
    assert [(r.room, r.status) for r in v.rooms] == [("R1", "pass"), ("R2", "warn")]


def test_device_scope_each_device_must_pass() -> None:
    r = req(id="ram", metric="ram_total_gb", unit="GB", op=">=", threshold=4.0, stat="value",
            statistic="min", targets=(), scope="device", min_samples=1)
    data = [row(8.0, "a1", target=None, metric="ram_total_gb", unit="GB", stat="value"),
            row(2.0, "a2", target=None, metric="ram_total_gb", unit="GB", stat="value",
                room="R2"),
            row(16.0, "a3", target=None, metric="ram_total_gb", unit="GB", stat="value")]
    v = evaluate_requirement(r, data, [])
    assert v.status == "fail"
    assert v.evidence is not None
    assert (v.evidence.value, v.evidence.judged, v.evidence.failing_devices) == (
        2.0, "worst device a2", 1)
    assert [(d.agent_id, d.value, d.passes) for d in v.worst_devices] == [
        ("a2", 2.0, False), ("a1", 8.0, True), ("a3", 16.0, True)]
    assert v.reason == ("min of ram_total_gb (value) judged per device; 1 of 3 device(s) fail; "
                        "worst device a2: 2 GB over 1 samples; needs >= 4 GB")
    assert evaluate_requirement(r, [data[0], data[2]], []).status == "pass"
    # a device seen (any metric) but without this measurement is unknown, never a pass
    seen = [*data[:1], row(-60.0, "a9", metric="rssi_dbm", unit="dBm", target=None, stat="value")]
    v = evaluate_requirement(r, seen, [])
    assert v.status == "unknown"
    assert "1 device(s) with fewer than 1 samples are unknown: a9 (0)" in v.reason


# ---------------------------------------------------------------- share and ==

def test_share_of_samples_meeting_the_threshold() -> None:
    r = req(statistic="share", share_min_pct=95.0)
    data = rows([50.0] * 18 + [150.0] * 2)
    v = evaluate_requirement(r, data, [])
    assert v.status == "fail"
    assert v.evidence is not None
    assert (v.evidence.statistic, v.evidence.value, v.evidence.unit) == ("share", 90.0, "%")
    assert v.reason == ("90 % of 20 samples of tcp_connect_ms (p50) to teams.microsoft.com, "
                        "*.teams.microsoft.com from 1 device(s) are < 100 ms; needs at least "
                        "95 % of samples < 100 ms")
    assert evaluate_requirement(r, rows([50.0] * 19 + [150.0]), []).status == "pass"
    # the warn margin is taken of share_min_pct: 95 is within 5 % of 95
    assert evaluate_requirement(replace(r, warn_within_pct=5.0), rows([50.0] * 19 + [150.0]),
                                []).status == "warn"
    assert evaluate_requirement(replace(r, warn_within_pct=5.0), rows([50.0] * 20),
                                []).status == "pass"


def test_equals_on_a_flag_has_no_warn_margin() -> None:
    r = req(id="tls", metric="tls_intercepted", unit="bool", op="==", threshold=0.0,
            statistic="max", stat="value", targets=("kahoot.it",), warn_within_pct=10.0,
            min_samples=3)
    clean = rows([0.0] * 3, target="kahoot.it", metric="tls_intercepted", unit="bool",
                 stat="value")
    v = evaluate_requirement(r, clean, [])
    assert (v.status, v.reason) == ("pass", "max of tls_intercepted (value) to kahoot.it is 0 "
                                            "over 3 samples from 1 device(s); needs == 0")
    caught = clean + [row(1.0, "a2", target="kahoot.it", metric="tls_intercepted",
                          unit="bool", stat="value", room="R2")]
    v = evaluate_requirement(r, caught, [])
    assert v.status == "fail"
    assert [(d.agent_id, d.passes) for d in v.worst_devices] == [("a2", False), ("a1", True)]


# ---------------------------------------------------------------- per student

def _per_student(**changes: object) -> Requirement:
    return req(id="dl", metric="download_mbps", unit="Mbps", op=">=", threshold=1.0,
               stat="value", statistic="p50", targets=(), per_student=True, scope="room",
               **changes)


def _bw(values: list[float], agent: str, room: str, start: int = 0) -> list[MeasurementRow]:
    return rows(values, agent, start=start, target=None, metric="download_mbps", unit="Mbps",
                stat="value", room=room)


def test_per_student_judges_room_tests_against_threshold_times_class_size() -> None:
    caps = [RoomCapacity("R1", "job-1", T0, 45.0, 10.0, 20),
            RoomCapacity("R2", "job-2", T0 + timedelta(hours=1), 20.0, None, 18)]
    v = evaluate_requirement(_per_student(), [], [], class_size=30, capacities=caps)
    assert v.status == "fail"
    assert [(r.room, r.status, r.value, r.basis, r.devices) for r in v.rooms] == [
        ("R1", "pass", 45.0, "room test", 20), ("R2", "fail", 20.0, "room test", 18)]
    assert v.evidence is not None
    assert (v.evidence.statistic, v.evidence.value, v.evidence.threshold, v.evidence.judged) == (
        "room total", 20.0, 30.0, "worst room R2")
    assert (v.evidence.first, v.evidence.last) == (T0, T0 + timedelta(hours=1))
    assert v.reason == ("room total of download_mbps (value) against 30 Mbps (1 Mbps per "
                        "student × class of 30); 1 of 2 room(s) fail; worst room R2: 20 Mbps "
                        "(room test, 18 device(s)); needs >= 30 Mbps")
    assert evaluate_requirement(_per_student(), [], [], class_size=15,
                                capacities=caps).status == "pass"


def test_per_student_estimates_from_the_best_single_device() -> None:
    data = _bw([40, 42, 44, 46, 48], "a1", "R1") + _bw([50] * 5, "a2", "R1", start=10)
    v = evaluate_requirement(_per_student(), data, [], class_size=30)
    assert v.status == "pass"
    assert [(r.room, r.value, r.basis) for r in v.rooms] == [
        ("R1", 50.0, "estimate from single-device tests")]
    verdict = evaluate(_profile(_per_student(), class_size=30), data, [], T0, class_size=60)
    assert verdict.class_size == 60
    assert verdict.requirements[0].status == "fail"
    assert verdict.requirements[0].evidence is not None
    assert verdict.requirements[0].evidence.threshold == 60.0
    assert [(c.room, c.students_supported) for c in verdict.capacity] == [("R1", 50)]


def test_per_student_room_without_total_is_unknown() -> None:
    data = _bw([40, 42], "a1", "R1") + _bw([50] * 5, "a2", "R2", start=10)
    v = evaluate_requirement(_per_student(), data, [], class_size=30)
    assert v.status == "unknown"
    assert [(r.room, r.status) for r in v.rooms] == [("R1", "unknown"), ("R2", "pass")]
    assert "1 room(s) with fewer than 5 samples are unknown: R1 (2) and have no room test" \
        in v.reason


def test_room_test_rows_do_not_count_as_single_device_samples() -> None:
    data = _bw([3.0] * 5, "a1", "R1")
    job = [replace(r, trigger="job") for r in data]
    r = req(id="dl", metric="download_mbps", unit="Mbps", op=">=", threshold=10.0,
            stat="value", targets=())
    assert evaluate_requirement(r, data, []).status == "fail"
    assert evaluate_requirement(r, job, []).status == "unknown"


def test_worst_periods_are_sorted_worst_first() -> None:
    data = (rows([60.0] * 5, in_lesson=True, period="P1")
            + rows([90.0] * 5, start=10, in_lesson=True, period="P3")
            + rows([120.0] * 5, start=20, in_lesson=True, period="P2"))
    v = evaluate_requirement(req(window="in_lesson"), data, [])
    assert [(p.period, p.value, p.samples, p.passes) for p in v.worst_periods] == [
        ("P2", 120.0, 5, False), ("P3", 90.0, 5, True), ("P1", 60.0, 5, True)]
